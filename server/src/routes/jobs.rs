//! What builders call, with their job token: their variables, log batches and reports. The token
//! is checked before anything else, the body included.

use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use scalemesh_core::DeploymentId;
use scalemesh_core::wire::{BuildEnv, BuilderReport, Deployment, LogAck, LogBatch};

use crate::app::App;
use crate::auth::{JobToken, secret};
use crate::db::DeploymentRow;
use crate::error::{ApiError, ApiResult, json_object};

/// Most lines in one batch.
const MAX_BATCH_LINES: usize = 10_000;

/// The deployment a job token is valid for. The token is checked first: without it, nothing
/// about the deployment is told, not even whether it exists. A finished deployment's token is
/// void, and its builder is told so (409).
pub(super) async fn job_deployment(
    app: &App,
    id: &str,
    token: &JobToken,
) -> ApiResult<DeploymentRow> {
    let unauthorized =
        || ApiError::Unauthorized("the job token is not valid for this deployment".into());
    let id = DeploymentId::parse(id).map_err(|_| unauthorized())?;
    let dep = app.store.deployment(&id).await?.ok_or_else(unauthorized)?;
    match &dep.job_token_hash {
        Some(hash) if secret::matches(&token.0, hash) => {
            if dep.status.is_terminal() {
                Err(ApiError::conflict(
                    "deployment_finished",
                    format!("deployment {id} is {}; its job token is void", dep.status),
                ))
            } else {
                Ok(dep)
            }
        }
        _ => Err(unauthorized()),
    }
}

pub async fn append_logs(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    token: JobToken,
    body: Body,
) -> ApiResult<Json<LogAck>> {
    let dep = job_deployment(&app, &id, &token).await?;
    let batch: LogBatch = json_object(&read_body(body).await?)?;
    if batch.lines.len() > MAX_BATCH_LINES {
        return Err(ApiError::bad_request(
            "batch_too_large",
            format!("send at most {MAX_BATCH_LINES} lines per batch"),
        ));
    }
    Ok(Json(
        app.append_builder_lines(&dep, batch.first, batch.lines)
            .await?,
    ))
}

pub async fn report(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    token: JobToken,
    body: Body,
) -> ApiResult<Json<Deployment>> {
    let dep = job_deployment(&app, &id, &token).await?;
    let report: BuilderReport = json_object(&read_body(body).await?)?;
    let row = app.report(&dep, report).await?;
    Ok(Json(app.deployment_view(&row)))
}

/// A builder's body, read only once its token is known to be good.
pub(super) async fn read_body(body: Body) -> ApiResult<Bytes> {
    axum::body::to_bytes(body, super::parse::JSON_LIMIT)
        .await
        .map_err(|e| crate::error::body_error(&e, e.to_string()))
}

/// The variables of the job's build, opened: the builder fetches them at start, so they never
/// travel in a task's environment or overrides.
pub async fn env(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    token: JobToken,
) -> ApiResult<Json<BuildEnv>> {
    let dep = job_deployment(&app, &id, &token).await?;
    let git_credential = match dep.source_kind.as_str() {
        "git" => {
            app.deploy_credential(&dep.project, dep.git_url.as_deref())
                .await?
        }
        _ => None,
    };
    Ok(Json(BuildEnv {
        env: app.build_env(&dep).await?,
        git_credential,
    }))
}
