//! The HTTP API. Handlers parse and authorise at the edge, then call [`App`] methods.

mod compat;
mod deployments;
mod jobs;
mod logs;
mod projects;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request};
use axum::routing::{get, post};
use axum::{Json, Router};
use scalemesh_core::wire::Health;
use scalemesh_core::{DeploymentId, ProjectName};

use crate::App;
use crate::auth::AuthUser;
use crate::db::{DeploymentRow, ProjectRow};
use crate::error::{ApiError, ApiResult};

/// Largest JSON body (builder log batches are the big ones).
const JSON_LIMIT: usize = 8 * 1024 * 1024;

pub fn router(app: Arc<App>) -> Router {
    let api = Router::new()
        .route("/projects", get(projects::list).post(projects::create))
        .route(
            "/projects/{name}",
            get(projects::show)
                .patch(projects::update)
                .delete(projects::delete),
        )
        .route(
            "/projects/{name}/deployments",
            get(deployments::list).post(deployments::create),
        )
        .route("/projects/{name}/rollback", post(projects::rollback))
        .route(
            "/projects/{name}/domains",
            get(projects::domains).post(projects::add_domain),
        )
        .route(
            "/projects/{name}/domains/{host}",
            axum::routing::delete(projects::remove_domain),
        )
        .route("/deployments/{id}", get(deployments::show))
        .route("/deployments/{id}/promote", post(deployments::promote))
        .route("/deployments/{id}/cancel", post(deployments::cancel))
        .route(
            "/deployments/{id}/logs",
            get(logs::replay).post(jobs::append_logs),
        )
        .route("/deployments/{id}/logs/stream", get(logs::stream))
        .route("/deployments/{id}/report", post(jobs::report));
    Router::new()
        .route("/health", get(health))
        .route("/project", post(compat::create_project))
        .route("/", get(crate::web::index))
        .route("/app.js", get(crate::web::script))
        .route("/app.css", get(crate::web::style))
        .route("/favicon.svg", get(crate::web::icon))
        .nest("/api/v1", api)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(JSON_LIMIT))
        .with_state(app)
}

async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

async fn not_found(req: Request) -> ApiError {
    ApiError::NotFound(format!(
        "there is no endpoint {} {}",
        req.method(),
        req.uri().path()
    ))
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::MethodNotAllowed(format!(
        "{} is not allowed on {}",
        req.method(),
        req.uri().path()
    ))
}

pub fn parse_project_name(raw: &str) -> ApiResult<ProjectName> {
    ProjectName::parse(raw).map_err(|e| ApiError::bad_request("invalid_name", e.to_string()))
}

/// The project `name` if it exists and belongs to `user`; 404 otherwise (whether it exists for
/// someone else is not told).
pub async fn owned_project(app: &App, user: &AuthUser, name: &str) -> ApiResult<ProjectRow> {
    let name = parse_project_name(name)?;
    match app.store.project(&name).await? {
        Some(row) if row.owner_id == user.0.id => Ok(row),
        _ => Err(ApiError::NotFound(format!("project {name} does not exist"))),
    }
}

pub async fn owned_deployment(app: &App, user: &AuthUser, id: &str) -> ApiResult<DeploymentRow> {
    let id =
        DeploymentId::parse(id).map_err(|e| ApiError::bad_request("invalid_id", e.to_string()))?;
    let not_found = || ApiError::NotFound(format!("deployment {id} does not exist"));
    let dep = app.store.deployment(&id).await?.ok_or_else(not_found)?;
    let project = app
        .store
        .project(&dep.project)
        .await?
        .ok_or_else(not_found)?;
    if project.owner_id != user.0.id {
        return Err(not_found());
    }
    Ok(dep)
}
