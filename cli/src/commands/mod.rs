//! One module per command. Each returns the process's exit code.

pub mod alias;
pub mod cancel;
pub mod deploy;
pub mod list;
pub mod logs;
pub mod up;

use scalemesh_core::DeploymentStatus;

use crate::error::{EXIT_CANCELED, EXIT_FAILED};

/// The exit code for a finished deployment.
pub fn exit_code(status: DeploymentStatus) -> i32 {
    match status {
        DeploymentStatus::Ready => 0,
        DeploymentStatus::Canceled => EXIT_CANCELED,
        _ => EXIT_FAILED,
    }
}
