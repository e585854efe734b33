//! Runners start builder jobs somewhere: as child processes here ([`LocalRunner`]) or, later, as
//! ECS tasks. Every builder reports through the same HTTP API, so nothing else in the server
//! depends on which runner ran it; a runner only tells the server when a job ended without a
//! report it could see (it exited, timed out or never started).

mod local;

use async_trait::async_trait;
use scalemesh_core::DeploymentId;
use scalemesh_core::job::BuildJob;

pub use local::{LocalRunner, LocalSettings};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunnerEvent {
    /// The job's builder is gone. If the deployment is not finished by then, it failed.
    Ended {
        deployment: DeploymentId,
        outcome: JobOutcome,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// The builder exited; how (`exit code 1`, `killed by signal 9`).
    Exited(String),
    /// The runner stopped it at the build timeout.
    TimedOut,
    /// Stopped on request (cancel, shutdown).
    Stopped,
    /// It never ran.
    FailedToStart(String),
}

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("the runner is shutting down")]
    ShuttingDown,
}

#[async_trait]
pub trait Runner: Send + Sync + 'static {
    /// Queues the job; it runs when the runner has room.
    async fn submit(&self, job: BuildJob) -> Result<(), RunnerError>;

    /// Stops the job (its whole process tree) or takes it out of the queue. Unknown ids are
    /// ignored, so canceling twice is harmless.
    async fn cancel(&self, deployment: &DeploymentId);

    /// Stops every job and takes no more.
    async fn shutdown(&self);
}
