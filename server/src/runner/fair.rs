//! The local runner's queue, fair across owners: the next build to start is the oldest one of
//! the owner with the fewest builds running (among those, the one whose turn came longest
//! ago), so one user's tenth build waits behind another user's first, whoever queued earlier.

use std::collections::HashMap;

use scalemesh_core::DeploymentId;
use scalemesh_core::job::BuildJob;

#[derive(Default)]
pub struct FairQueue {
    /// Jobs in the order they came, each with when it came.
    jobs: Vec<(u64, BuildJob)>,
    arrivals: u64,
    /// When each owner last had a job started (a count of starts).
    last_turn: HashMap<String, u64>,
    turns: u64,
}

impl FairQueue {
    pub fn push(&mut self, job: BuildJob) {
        self.arrivals += 1;
        self.jobs.push((self.arrivals, job));
    }

    pub fn contains(&self, id: &DeploymentId) -> bool {
        self.jobs.iter().any(|(_, j)| j.deployment == *id)
    }

    pub fn remove(&mut self, id: &DeploymentId) {
        self.jobs.retain(|(_, j)| j.deployment != *id);
    }

    pub fn clear(&mut self) {
        self.jobs.clear();
    }

    /// Takes the next job to start, given how many builds each owner has running.
    pub fn pop(&mut self, running: &HashMap<String, usize>) -> Option<BuildJob> {
        let (index, _) = self
            .jobs
            .iter()
            .enumerate()
            .min_by_key(|(_, (arrival, job))| {
                (
                    running.get(&job.owner).copied().unwrap_or(0),
                    self.last_turn.get(&job.owner).copied().unwrap_or(0),
                    *arrival,
                )
            })?;
        let job = self.jobs.remove(index).1;
        self.turns += 1;
        self.last_turn.insert(job.owner.clone(), self.turns);
        if !self.jobs.iter().any(|(_, j)| j.owner == job.owner) {
            // Owners with nothing queued are not remembered for long.
            self.last_turn.retain(|owner, _| {
                self.jobs.iter().any(|(_, j)| j.owner == *owner) || *owner == job.owner
            });
        }
        Some(job)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(owner: &str, n: usize) -> BuildJob {
        BuildJob {
            deployment: DeploymentId::parse(&format!("{owner}{n:0>11}")).expect("id"),
            project: scalemesh_core::ProjectName::parse("p").expect("name"),
            source: scalemesh_core::job::JobSource::Archive { key: "k".into() },
            settings: Default::default(),
            api_url: String::new(),
            job_token: String::new(),
            storage: String::new(),
            s3_endpoint: None,
            timeout_secs: 1,
            allow_private_git_hosts: Default::default(),
            owner: owner.into(),
            limits: Default::default(),
            build_uid: None,
            node_mirror: None,
            toolchains: None,
            build_cache: None,
        }
    }

    /// Starts jobs into `slots` running places, finishing the oldest running one between
    /// starts; the owners in the order their jobs started.
    fn run(queue: &mut FairQueue, slots: usize, starts: usize) -> Vec<String> {
        let mut running: Vec<String> = Vec::new();
        let mut started = Vec::new();
        while started.len() < starts {
            if running.len() == slots {
                running.remove(0);
            }
            let mut counts = HashMap::new();
            for owner in &running {
                *counts.entry(owner.clone()).or_insert(0) += 1;
            }
            let Some(next) = queue.pop(&counts) else {
                break;
            };
            running.push(next.owner.clone());
            started.push(next.owner);
        }
        started
    }

    #[test]
    fn owners_take_turns() {
        /// Jobs queued per owner, slots, starts, and the owners in the order they start.
        type Case<'a> = (&'a [(&'a str, usize)], usize, usize, &'a [&'a str]);
        let cases: &[Case<'_>] = &[
            // a queues ten, then b one: b's starts as soon as a has one running.
            (&[("a", 10), ("b", 1)], 2, 4, &["a", "b", "a", "a"]),
            // Alone, an owner uses every slot in order.
            (&[("a", 3)], 2, 3, &["a", "a", "a"]),
            // Three owners, one slot: round robin, oldest first within an owner.
            (
                &[("a", 3), ("b", 2), ("c", 1)],
                1,
                6,
                &["a", "b", "c", "a", "b", "a"],
            ),
        ];
        for (queued, slots, starts, want) in cases {
            let mut queue = FairQueue::default();
            for (owner, n) in *queued {
                for i in 0..*n {
                    queue.push(job(owner, i));
                }
            }
            assert_eq!(run(&mut queue, *slots, *starts), *want, "{queued:?}");
        }
    }

    /// a's two builds run and eight wait when b queues one: b's is the next to start.
    #[test]
    fn a_late_owner_goes_next() {
        let mut queue = FairQueue::default();
        for i in 2..10 {
            queue.push(job("a", i));
        }
        queue.push(job("b", 0));
        let running = HashMap::from([("a".to_owned(), 1)]);
        assert_eq!(queue.pop(&running).map(|j| j.owner), Some("b".into()));
        assert_eq!(
            queue.pop(&running).map(|j| j.deployment),
            Some(job("a", 2).deployment)
        );
    }

    #[test]
    fn jobs_of_one_owner_start_in_order_and_leave_when_removed() {
        let mut queue = FairQueue::default();
        for i in 0..3 {
            queue.push(job("a", i));
        }
        queue.remove(&job("a", 1).deployment);
        assert!(!queue.contains(&job("a", 1).deployment));
        let none = HashMap::new();
        assert_eq!(
            queue.pop(&none).map(|j| j.deployment),
            Some(job("a", 0).deployment)
        );
        assert_eq!(
            queue.pop(&none).map(|j| j.deployment),
            Some(job("a", 2).deployment)
        );
        assert!(queue.pop(&none).is_none());
    }
}
