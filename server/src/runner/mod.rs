//! Runners start builder jobs somewhere: as child processes here ([`LocalRunner`]) or, later, as
//! ECS tasks. Every builder reports through the same HTTP API, so nothing else in the server
//! depends on which runner ran it; a runner only tells the server when a job ended without a
//! report it could see (it exited, timed out or never started).

mod contract;
mod ecs;
mod fair;
mod local;

pub use contract::{JobOutcome, Runner, RunnerError, RunnerEvent};
pub use ecs::{EcsRunner, EcsSettings, started_by};
pub use local::{LocalRunner, LocalSettings};
