//! How long a project keeps its deployments: the policy a project sets, and [`to_remove`], the
//! one decision of which deployments it lets go. Production and the deployments production was
//! on most recently (what a rollback goes back to) are always kept, and so is anything not
//! ready: a build in flight is never removed, and a failed one costs no files.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::DeploymentId;

/// Production moves kept from removal: the rollback history.
pub const HISTORY: usize = 10;

/// Keep the newest `keep` ready deployments and those of the last `days` days; a deployment
/// is removed only when it is past both that are set. Neither set keeps everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<u32>,
}

impl Retention {
    pub fn is_unset(&self) -> bool {
        self.keep.is_none() && self.days.is_none()
    }
}

/// A deployment as the policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub id: DeploymentId,
    pub created_at: OffsetDateTime,
    pub ready: bool,
}

/// Which of `deployments` (newest first) `policy` removes at `now`, given production and the
/// deployments of its most recent moves (newest first).
pub fn to_remove(
    policy: Retention,
    deployments: &[Kept],
    production: Option<&DeploymentId>,
    history: &[DeploymentId],
    now: OffsetDateTime,
) -> Vec<DeploymentId> {
    if policy.is_unset() {
        return Vec::new();
    }
    let protected =
        |id: &DeploymentId| production == Some(id) || history.iter().take(HISTORY).any(|h| h == id);
    let mut newer_ready: u64 = 0;
    let mut out = Vec::new();
    for d in deployments {
        if !d.ready {
            continue;
        }
        let beyond_count = policy
            .keep
            .is_none_or(|keep| newer_ready >= u64::from(keep));
        let too_old = policy
            .days
            .is_none_or(|days| now - d.created_at > time::Duration::days(i64::from(days)));
        newer_ready += 1;
        if beyond_count && too_old && !protected(&d.id) {
            out.push(d.id.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: usize) -> DeploymentId {
        DeploymentId::parse(&format!("dep{n:09}")).expect("id")
    }

    /// A policy, production, the history of moves, and the deployments (by age in days)
    /// removed.
    type Case<'a> = (
        Retention,
        Option<&'a DeploymentId>,
        Vec<DeploymentId>,
        Vec<usize>,
    );

    #[test]
    fn removes_what_the_policy_lets_go_and_nothing_protected() {
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(100);
        // Deployment n was made n days ago; 3 and 7 are not ready.
        let all: Vec<Kept> = (0..12)
            .map(|n| Kept {
                id: id(n),
                created_at: now - time::Duration::days(n as i64) - time::Duration::hours(1),
                ready: n != 3 && n != 7,
            })
            .collect();
        let p = |keep, days| Retention { keep, days };
        let ids = |ns: &[usize]| ns.iter().map(|n| id(*n)).collect::<Vec<_>>();
        let prod = id(9);
        // (policy, production, history, removed)
        let table: Vec<Case> = vec![
            (p(None, None), None, vec![], vec![]),
            // The newest 3 ready are 0, 1, 2; 3 and 7 are never candidates.
            (p(Some(3), None), None, vec![], vec![4, 5, 6, 8, 9, 10, 11]),
            (
                p(Some(3), None),
                Some(&prod),
                vec![],
                vec![4, 5, 6, 8, 10, 11],
            ),
            (
                p(Some(3), None),
                Some(&prod),
                ids(&[5, 11]),
                vec![4, 6, 8, 10],
            ),
            // Older than 5 days: 5 (5d1h) and beyond.
            (p(None, Some(5)), None, vec![], vec![5, 6, 8, 9, 10, 11]),
            // Both: past the newest 8 ready (0-2, 4-6, 8, 9) and older than 5 days.
            (p(Some(8), Some(5)), None, vec![], vec![10, 11]),
            (
                p(Some(0), Some(0)),
                None,
                vec![],
                vec![0, 1, 2, 4, 5, 6, 8, 9, 10, 11],
            ),
            (p(Some(100), None), None, vec![], vec![]),
        ];
        for (policy, production, history, want) in table {
            let got = to_remove(policy, &all, production, &history, now);
            assert_eq!(
                got,
                ids(&want),
                "{policy:?} production {production:?} history {history:?}"
            );
        }
        // Only the ten most recent moves are history.
        let history = ids(&[0, 1, 2, 4, 5, 6, 8, 9, 10, 11]);
        assert!(to_remove(p(Some(0), None), &all, None, &history, now).is_empty());
        let mut longer = ids(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        longer.push(id(11));
        assert!(to_remove(p(Some(0), None), &all, None, &longer, now).contains(&id(11)));
    }
}
