//! `/api/v1/projects/{name}/env`: a project's variables, one key at a time. Values are sealed
//! at rest; a sensitive one is never shown again once set.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use scalemesh_core::access::EnvTargets;
use scalemesh_core::wire::{EnvList, PutEnv};
use serde::Deserialize;

use crate::access::{Action, ProjectAccess};
use crate::app::App;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiQuery, ApiResult};
use crate::variables;

#[derive(Debug, Deserialize)]
pub struct TargetQuery {
    #[serde(default)]
    target: EnvTargets,
}

/// Refuses unless the caller may write every one of `targets`.
fn may_write(project: &ProjectAccess, caller: &Caller, targets: EnvTargets) -> ApiResult<()> {
    for target in targets.targets() {
        project.check(caller, variables::action(*target, true))?;
    }
    Ok(())
}

pub async fn list(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<EnvList>> {
    let project = app.project_for(&caller, &name, Action::ViewProject).await?;
    let rows = app.store.env_of(project.row.id, None).await?;
    Ok(Json(EnvList {
        env: app.env_view(&project, &caller, &rows)?,
    }))
}

pub async fn show(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path((name, key)): Path<(String, String)>,
) -> ApiResult<Json<EnvList>> {
    let project = app.project_for(&caller, &name, Action::ViewProject).await?;
    let rows = app.store.env_of(project.row.id, Some(&key)).await?;
    if rows.is_empty() {
        return Err(not_set(&project, &key));
    }
    Ok(Json(EnvList {
        env: app.env_view(&project, &caller, &rows)?,
    }))
}

pub async fn put(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path((name, key)): Path<(String, String)>,
    ApiJson(body): ApiJson<PutEnv>,
) -> ApiResult<Json<EnvList>> {
    let project = app
        .project_for(&caller, &name, Action::WritePreviewEnv)
        .await?;
    may_write(&project, &caller, body.target)?;
    let rows = app
        .put_env(
            &project.row,
            &key,
            body.target.targets(),
            &body.value,
            body.sensitive,
            caller.user.id,
        )
        .await?;
    Ok(Json(EnvList {
        env: app.env_view(&project, &caller, &rows)?,
    }))
}

pub async fn remove(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path((name, key)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<TargetQuery>,
) -> ApiResult<StatusCode> {
    let project = app
        .project_for(&caller, &name, Action::WritePreviewEnv)
        .await?;
    may_write(&project, &caller, q.target)?;
    let removed = app
        .store
        .delete_env(project.row.id, &key, q.target.targets())
        .await?;
    if removed == 0 {
        return Err(not_set(&project, &key));
    }
    Ok(StatusCode::NO_CONTENT)
}

fn not_set(project: &ProjectAccess, key: &str) -> ApiError {
    ApiError::NotFound(format!(
        "{} has no variable {:?}",
        project.row.name,
        key.chars().take(300).collect::<String>()
    ))
}
