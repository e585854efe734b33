//! What every runner does and reports: the [`Runner`] trait and the events a runner sends when a
//! job ends without its builder's report.

use async_trait::async_trait;
use scalemesh_core::DeploymentId;
use scalemesh_core::job::BuildJob;

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
    #[error("{0}")]
    Rejected(String),
}

#[async_trait]
pub trait Runner: Send + Sync + 'static {
    /// Hands the job over; it runs when the runner has room. Returns the runner's own name for
    /// it (an ECS task ARN), if it has one.
    async fn submit(&self, job: BuildJob) -> Result<Option<String>, RunnerError>;

    /// Stops the job (its whole process tree, or its task) or takes it out of the queue.
    /// Unknown jobs are ignored, so canceling twice is harmless.
    async fn cancel(&self, deployment: &DeploymentId, runner_ref: Option<&str>);

    /// Stops every job it owns and takes no more.
    async fn shutdown(&self);

    /// Whether jobs keep running, and can be followed again, when the server restarts.
    fn survives_restart(&self) -> bool {
        false
    }

    /// Looks at jobs the server knows by reference and reports those that ended without their
    /// builder saying so. Runners that watch their jobs themselves report nothing here.
    async fn poll(&self, _jobs: &[(DeploymentId, String)]) -> Vec<RunnerEvent> {
        Vec::new()
    }
}
