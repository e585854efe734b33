//! `/api/v1/projects/{name}/git`: connecting a project to its repository; and
//! `/hooks/git/{name}`, where its forge delivers pushes and pull requests.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use scalemesh_core::wire::{ConnectGit, GitConnection, HookAnswer};

use crate::access::Action;
use crate::app::App;
use crate::auth::Caller;
use crate::error::{ApiJson, ApiResult};

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
