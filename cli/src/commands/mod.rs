//! One module per command. Each returns the process's exit code.

pub mod alias;
pub mod cancel;
pub mod deploy;
pub mod env;
pub mod git;
pub mod holds;
pub mod inspect;
pub mod list;
pub mod login;
pub mod logout;
pub mod logs;
pub mod members;
pub mod notify;
pub mod prebuilt;
pub mod projects;
pub mod tokens;
pub mod up;
pub mod users;
pub mod whoami;

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

/// Prints `value` as pretty JSON on stdout (`--json`).
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// An API error explained; when the API answered `status`, with `hint`, which knows the command
/// and so says more than a hint for any request.
pub fn explained(
    client: &crate::client::Client,
    err: crate::client::ClientError,
    status: reqwest::StatusCode,
    hint: &str,
) -> crate::error::CliError {
    let matches = err.status() == Some(status);
    let err = client.explain(err);
    if matches {
        err.hint(hint.to_owned())
    } else {
        err
    }
}

/// An API error explained; when the API answered with error `code`, with `hint`.
pub fn explained_code(
    client: &crate::client::Client,
    err: crate::client::ClientError,
    code: &str,
    hint: &str,
) -> crate::error::CliError {
    let matches = err.code() == Some(code);
    let err = client.explain(err);
    if matches {
        err.hint(hint.to_owned())
    } else {
        err
    }
}
