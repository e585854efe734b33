//! What builders call, with their job token: their variables, log batches and reports.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use scalemesh_core::DeploymentId;
use scalemesh_core::wire::{BuildEnv, BuilderReport, Deployment, LogAck, LogBatch};

use crate::App;
use crate::auth::{JobToken, secret};
use crate::db::DeploymentRow;
use crate::error::{ApiError, ApiJson, ApiResult};

/// Most lines in one batch.
const MAX_BATCH_LINES: usize = 10_000;

/// The deployment a job token is valid for. Tokens of finished deployments are void.
async fn job_deployment(app: &App, id: &str, token: &JobToken) -> ApiResult<DeploymentRow> {
    let unauthorized =
        || ApiError::Unauthorized("the job token is not valid for this deployment".into());
    let id = DeploymentId::parse(id).map_err(|_| unauthorized())?;
    let dep = app.store.deployment(&id).await?.ok_or_else(unauthorized)?;
    match &dep.job_token_hash {
        Some(hash) if secret::matches(&token.0, hash) => Ok(dep),
        None if dep.status.is_terminal() => Err(ApiError::conflict(
            "deployment_finished",
            format!("deployment {id} is finished; its job token is void"),
        )),
        _ => Err(unauthorized()),
    }
}

pub async fn append_logs(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    token: JobToken,
    ApiJson(batch): ApiJson<LogBatch>,
) -> ApiResult<Json<LogAck>> {
    let dep = job_deployment(&app, &id, &token).await?;
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
    ApiJson(report): ApiJson<BuilderReport>,
) -> ApiResult<Json<Deployment>> {
    let dep = job_deployment(&app, &id, &token).await?;
    let row = app.report(&dep, report).await?;
    Ok(Json(app.deployment_view(&row)))
}

/// The variables of the job's build, opened: the builder fetches them at start, so they never
/// travel in a task's environment or overrides.
pub async fn env(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    token: JobToken,
) -> ApiResult<Json<BuildEnv>> {
    let dep = job_deployment(&app, &id, &token).await?;
    Ok(Json(BuildEnv {
        env: app.build_env(&dep).await?,
    }))
}
