//! `/api/v1/projects/{name}/git`: connecting a project to its repository, and
//! `/hooks/git/{name}`, where its forge delivers pushes and pull requests;
//! `/api/v1/projects/{name}/hooks`: deploy hooks, run at `/hooks/deploy/{secret}`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use scalemesh_core::wire::{
    ConnectGit, CreateDeployHook, DeployHook, DeployHookList, GitConnection, HookAnswer,
};

use crate::access::Action;
use crate::app::App;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiResult};

/// Largest delivery read: GitHub sends pushes of up to 25 MB, but one whose body is that
/// large names thousands of commits, and only the head is read.
pub const DELIVERY_LIMIT: usize = 8 * 1024 * 1024;

pub async fn connect(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<ConnectGit>,
) -> ApiResult<Json<GitConnection>> {
    let project = app
        .project_for(&caller, &name, Action::EditSettings)
        .await?
        .row;
    Ok(Json(app.connect_git(&project, req, caller.user.id).await?))
}

pub async fn show(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<GitConnection>> {
    let project = app
        .project_for(&caller, &name, Action::ViewProject)
        .await?
        .row;
    Ok(Json(app.git_connection(&project).await?))
}

pub async fn disconnect(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let project = app
        .project_for(&caller, &name, Action::EditSettings)
        .await?
        .row;
    app.disconnect_git(&project).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A forge's delivery: no token, its signature instead. 202 when it queued a build.
pub async fn deliver(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<HookAnswer>)> {
    let answer = app.receive_delivery(&name, &headers, &body).await?;
    let status = if answer.deployment.is_some() && !answer.duplicate {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(answer)))
}

pub async fn create_hook(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<CreateDeployHook>,
) -> ApiResult<(StatusCode, Json<DeployHook>)> {
    let project = app
        .project_for(&caller, &name, Action::EditSettings)
        .await?
        .row;
    let hook = app
        .create_deploy_hook(&project, req, caller.user.id)
        .await?;
    Ok((StatusCode::CREATED, Json(hook)))
}

pub async fn list_hooks(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<DeployHookList>> {
    let project = app
        .project_for(&caller, &name, Action::ViewProject)
        .await?
        .row;
    Ok(Json(DeployHookList {
        hooks: app.deploy_hooks(&project).await?,
    }))
}

pub async fn remove_hook(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let project = app
        .project_for(&caller, &name, Action::EditSettings)
        .await?
        .row;
    let id = id.parse::<i64>().map_err(|_| {
        ApiError::NotFound(format!(
            "{name} has no deploy hook {id:.40} (scalemesh hooks ls {name})"
        ))
    })?;
    app.remove_deploy_hook(&project, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A deploy hook's URL was POSTed: no token, the URL's secret instead. 202 with the build.
pub async fn run_hook(
    State(app): State<Arc<App>>,
    Path(secret): Path<String>,
) -> ApiResult<(StatusCode, Json<HookAnswer>)> {
    let answer = app.run_deploy_hook(&secret).await?;
    Ok((StatusCode::ACCEPTED, Json(answer)))
}
