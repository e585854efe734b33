//! Project variables: checked, sealed before they are stored, opened only for a caller who may
//! read them (never a sensitive one) and for the build they are meant for.

use std::collections::BTreeMap;

use scalemesh_core::access::EnvTarget;
use scalemesh_core::job::is_allowed_env_name;
use scalemesh_core::wire;

use crate::access::{Action, ProjectAccess};
use crate::app::App;
use crate::auth::Caller;
use crate::db::{DeploymentRow, EnvRow, NewEnv, ProjectRow, TooManyKeys};
use crate::error::{ApiError, ApiResult};
use crate::secrets::RowId;

/// Longest value, in bytes.
const MAX_VALUE_BYTES: usize = 64 * 1024;

/// Refuses a name that is not a POSIX variable name or is one the platform sets, and a value
/// that is too long or holds a NUL byte.
pub fn check(name: &str, value: &str) -> ApiResult<()> {
    if !is_allowed_env_name(name) {
        return Err(ApiError::bad_request(
            "invalid_env",
            format!(
                "{:?} cannot be an environment variable name (letters, digits and '_', not starting with a digit, not SCALEMESH_*, PATH or HOME)",
                name.chars().take(300).collect::<String>()
            ),
        )
        .on_field("key"));
    }
    if value.len() > MAX_VALUE_BYTES || value.contains('\0') {
        return Err(ApiError::bad_request(
            "invalid_env",
            format!("the value of {name} is longer than 64 KiB or has a NUL byte"),
        )
        .on_field("value"));
    }
    Ok(())
}

fn too_many(_: TooManyKeys) -> ApiError {
    ApiError::bad_request(
        "invalid_env",
        format!(
            "a project has at most {} environment variables; remove some first",
            crate::db::MAX_ENV_KEYS
        ),
    )
}

/// The action that reads or writes `target`'s values.
pub fn action(target: EnvTarget, write: bool) -> Action {
    match (target, write) {
        (EnvTarget::Production, false) => Action::ReadProductionEnv,
        (EnvTarget::Production, true) => Action::WriteProductionEnv,
        (EnvTarget::Preview, false) => Action::ReadPreviewEnv,
        (EnvTarget::Preview, true) => Action::WritePreviewEnv,
    }
}

impl App {
    fn seal(&self, project_id: i64, key: &str, target: EnvTarget, value: &str) -> NewEnv {
        let row = RowId {
            project_id,
            key,
            target,
        };
        NewEnv {
            key: key.to_owned(),
            target,
            sealed: self.secrets.seal(&row, value),
            sensitive: false,
        }
    }

    fn open(&self, project_id: i64, row: &EnvRow) -> anyhow::Result<String> {
        let id = RowId {
            project_id,
            key: &row.key,
            target: row.target,
        };
        Ok(self.secrets.open(&id, &row.sealed)?)
    }

    /// Replaces all of a project's variables with `env`, for both targets, not sensitive.
    pub async fn replace_env(
        &self,
        project: &ProjectRow,
        env: &BTreeMap<String, String>,
        by: i64,
    ) -> ApiResult<()> {
        let values = env
            .iter()
            .flat_map(|(key, value)| {
                EnvTarget::ALL.map(|target| self.seal(project.id, key, target, value))
            })
            .collect();
        self.store
            .replace_env(project.id, values, by)
            .await?
            .map_err(too_many)
    }

    /// Sets `key` to `value` for `targets`.
    pub async fn put_env(
        &self,
        project: &ProjectRow,
        key: &str,
        targets: &[EnvTarget],
        value: &str,
        sensitive: bool,
        by: i64,
    ) -> ApiResult<Vec<EnvRow>> {
        check(key, value)?;
        let values = targets
            .iter()
            .map(|target| NewEnv {
                sensitive,
                ..self.seal(project.id, key, *target, value)
            })
            .collect();
        self.store
            .put_env(project.id, values, by)
            .await?
            .map_err(too_many)
    }

    /// Rows as the caller sees them: values only where they may read the target, never of a
    /// sensitive variable.
    pub fn env_view(
        &self,
        project: &ProjectAccess,
        caller: &Caller,
        rows: &[EnvRow],
    ) -> ApiResult<Vec<wire::EnvVar>> {
        rows.iter()
            .map(|row| {
                let readable = !row.sensitive && project.allows(caller, action(row.target, false));
                let value = if readable {
                    Some(self.open(project.row.id, row)?)
                } else {
                    None
                };
                Ok(wire::EnvVar {
                    key: row.key.clone(),
                    target: row.target,
                    sensitive: row.sensitive,
                    value,
                    updated_at: row.updated_at,
                    updated_by: row.updated_by.clone(),
                })
            })
            .collect()
    }

    /// The variables the build of `dep` gets: its target's (production when it is meant to go
    /// live, else preview), opened.
    pub async fn build_env(&self, dep: &DeploymentRow) -> ApiResult<BTreeMap<String, String>> {
        let target = EnvTarget::of_build(dep.promote);
        let rows = self.store.env_for_build(dep.project_id, target).await?;
        rows.iter()
            .map(|row| Ok((row.key.clone(), self.open(dep.project_id, row)?)))
            .collect()
    }
}
