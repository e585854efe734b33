//! Whether a deployment whose builder says its upload is complete goes live: one pure decision
//! from what the server knows at that moment, and the lines the deployment's log says about it.
//! The server gathers the [`Facts`] in the transaction that makes the deployment ready and only
//! applies the [`GoingLive`] it gets back.

use crate::DeploymentId;

/// How a project's production follows its builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Production {
    /// Each build asked to go live does, unless a newer one is live already.
    FollowsBuilds,
    /// Held where a rollback put it until a promote: builds stay at their own URL.
    Pinned,
}

/// What the server knows about a deployment whose upload is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    /// It was asked to go live (the default; `--no-promote` asks for a preview).
    pub asked: bool,
    pub production: Production,
    /// A deployment created after this one is live already.
    pub newer_live: bool,
    /// Its manifest was read and describes it, so its URL can answer.
    pub servable: bool,
}

/// What becomes of a deployment whose upload is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoingLive {
    /// Its files cannot be served: it fails instead of becoming ready.
    NotServable,
    /// Ready at its own URL only, as it asked.
    Preview,
    /// Ready at its own URL: production is pinned since a rollback.
    StayPinned,
    /// Ready at its own URL: a newer deployment is live, and a build never moves production back.
    NewerIsLive,
    /// Ready, and production points at it.
    GoLive,
}

impl GoingLive {
    /// The decision. A deployment that cannot be served never becomes ready; one that can goes
    /// live only when it asked to, production follows builds, and nothing newer is live.
    pub fn decide(facts: Facts) -> Self {
        match facts {
            Facts {
                servable: false, ..
            } => Self::NotServable,
            Facts { asked: false, .. } => Self::Preview,
            Facts {
                production: Production::Pinned,
                ..
            } => Self::StayPinned,
            Facts {
                newer_live: true, ..
            } => Self::NewerIsLive,
            Facts { .. } => Self::GoLive,
        }
    }

    /// The system lines deployment `id` logs as it becomes ready, `live_url` being its project's
    /// production address. None for one that is not servable: its failure says why.
    pub fn notes(self, id: &DeploymentId, live_url: &str) -> Vec<String> {
        let production = match self {
            Self::NotServable => return Vec::new(),
            Self::Preview => None,
            Self::StayPinned => Some(format!(
                "Production is pinned since a rollback: this deployment stays at its own URL; `scalemesh promote {id}` makes it live"
            )),
            Self::NewerIsLive => {
                Some("A newer deployment is live already; this one stays at its own URL".to_owned())
            }
            Self::GoLive => Some(format!("Live at {live_url}")),
        };
        std::iter::once("Deployment ready".to_owned())
            .chain(production)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::Production::{FollowsBuilds, Pinned};
    use super::*;

    #[test]
    fn decides_every_combination_as_the_table_says() {
        // asked, production, newer live, servable → decision
        let table = [
            (true, FollowsBuilds, false, true, GoingLive::GoLive),
            (true, FollowsBuilds, true, true, GoingLive::NewerIsLive),
            (true, Pinned, false, true, GoingLive::StayPinned),
            (true, Pinned, true, true, GoingLive::StayPinned),
            (false, FollowsBuilds, false, true, GoingLive::Preview),
            (false, FollowsBuilds, true, true, GoingLive::Preview),
            (false, Pinned, false, true, GoingLive::Preview),
            (false, Pinned, true, true, GoingLive::Preview),
            (true, FollowsBuilds, false, false, GoingLive::NotServable),
            (true, FollowsBuilds, true, false, GoingLive::NotServable),
            (true, Pinned, false, false, GoingLive::NotServable),
            (true, Pinned, true, false, GoingLive::NotServable),
            (false, FollowsBuilds, false, false, GoingLive::NotServable),
            (false, FollowsBuilds, true, false, GoingLive::NotServable),
            (false, Pinned, false, false, GoingLive::NotServable),
            (false, Pinned, true, false, GoingLive::NotServable),
        ];
        let mut seen = HashSet::new();
        for (asked, production, newer_live, servable, want) in table {
            let facts = Facts {
                asked,
                production,
                newer_live,
                servable,
            };
            assert!(seen.insert(format!("{facts:?}")), "{facts:?} twice");
            assert_eq!(GoingLive::decide(facts), want, "{facts:?}");
        }
        assert_eq!(seen.len(), 16, "every combination once");
    }

    #[test]
    fn says_in_the_log_what_became_of_production() {
        let id = DeploymentId::parse("abc123def456").expect("id");
        let url = "https://blog.example.com";
        let table = [
            (GoingLive::NotServable, vec![]),
            (GoingLive::Preview, vec!["Deployment ready".to_owned()]),
            (
                GoingLive::StayPinned,
                vec![
                    "Deployment ready".to_owned(),
                    "Production is pinned since a rollback: this deployment stays at its own URL; `scalemesh promote abc123def456` makes it live".to_owned(),
                ],
            ),
            (
                GoingLive::NewerIsLive,
                vec![
                    "Deployment ready".to_owned(),
                    "A newer deployment is live already; this one stays at its own URL".to_owned(),
                ],
            ),
            (
                GoingLive::GoLive,
                vec![
                    "Deployment ready".to_owned(),
                    "Live at https://blog.example.com".to_owned(),
                ],
            ),
        ];
        for (decision, want) in table {
            assert_eq!(decision.notes(&id, url), want, "{decision:?}");
        }
    }
}
