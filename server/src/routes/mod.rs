//! The HTTP API. Handlers parse and authorise at the edge, then call [`App`] methods.

mod blobs;
mod compat;
mod deployments;
mod env;
mod git;
mod jobs;
mod logs;
mod members;
mod notify;
pub mod parse;
mod projects;
mod tokens;
mod users;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use scalemesh_core::wire::Health;

use crate::app::App;
use crate::error::ApiError;
use parse::JSON_LIMIT;

/// Every route here is in `access::ROUTES`, with the action it is; a test holds the two and
/// docs/api.md together.
pub fn router(app: Arc<App>) -> Router {
    let body_rate = app.body_rate;
    let api = Router::new()
        .route("/me", get(tokens::me))
        .route("/tokens", get(tokens::list).post(tokens::create))
        .route("/tokens/{id}", delete(tokens::revoke))
        .route("/users", get(users::list).post(users::create))
        .route("/users/{name}", delete(users::remove))
        .route("/holds", get(users::holds))
        .route("/holds/{name}", delete(users::release))
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
            delete(projects::remove_domain),
        )
        .route(
            "/projects/{name}/members",
            get(members::list).post(members::add),
        )
        .route("/projects/{name}/members/{user}", delete(members::remove))
        .route("/projects/{name}/env", get(env::list))
        .route(
            "/projects/{name}/env/{key}",
            get(env::show).put(env::put).delete(env::remove),
        )
        .route(
            "/deployments/{id}",
            get(deployments::show).delete(blobs::remove),
        )
        .route("/deployments/{id}/promote", post(deployments::promote))
        .route("/deployments/{id}/cancel", post(deployments::cancel))
        .route(
            "/deployments/{id}/logs",
            get(logs::replay).post(jobs::append_logs),
        )
        .route("/deployments/{id}/logs/stream", get(logs::stream))
        .route("/deployments/{id}/report", post(jobs::report))
        .route("/deployments/{id}/env", get(jobs::env))
        .merge(blob_routes())
        .merge(git_routes());
    Router::new()
        .route("/health", get(health))
        .route("/project", post(compat::create_project))
        .merge(forge_hooks())
        .route("/", get(crate::web::index))
        .route("/app.js", get(crate::web::script))
        .route("/app.css", get(crate::web::style))
        .route("/favicon.svg", get(crate::web::icon))
        .nest("/api/v1", api)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(JSON_LIMIT))
        .layer(axum::middleware::from_fn(move |req, next| {
            crate::slow_body::hold_to_rate(body_rate, req, next)
        }))
        .with_state(app)
}

/// Files by content: prebuilt deploys, the digest handshake, blobs, the sweep.
fn blob_routes() -> Router<Arc<App>> {
    use axum::routing::put;
    Router::new()
        .route("/projects/{name}/prebuilt", post(blobs::start_prebuilt))
        .route("/deployments/{id}/blobs", post(blobs::check))
        .route("/deployments/{id}/blobs/stored", post(blobs::stored))
        .route("/deployments/{id}/blobs/abandon", post(blobs::abandon))
        .route("/deployments/{id}/packs", post(blobs::packs))
        .route("/deployments/{id}/blobs/{sha256}", put(blobs::put))
        .route("/deployments/{id}/manifest", put(blobs::manifest))
        .route("/sweep", post(blobs::sweep))
}

/// Push to deploy and telling the world: a project's connection to its repository, its deploy
/// hooks, its notification URLs.
fn git_routes() -> Router<Arc<App>> {
    Router::new()
        .route(
            "/projects/{name}/git",
            get(git::show).put(git::connect).delete(git::disconnect),
        )
        .route(
            "/projects/{name}/hooks",
            get(git::list_hooks).post(git::create_hook),
        )
        .route("/projects/{name}/hooks/{id}", delete(git::remove_hook))
        .route(
            "/projects/{name}/notifications",
            get(notify::list).post(notify::add),
        )
        .route("/projects/{name}/notifications/log", get(notify::log))
        .route(
            "/projects/{name}/notifications/{id}",
            delete(notify::remove),
        )
}

/// What forges and deploy hooks call, outside `/api/v1`: no token, a signature or a secret URL.
fn forge_hooks() -> Router<Arc<App>> {
    Router::new()
        .route(
            "/hooks/git/{name}",
            post(git::deliver).layer(DefaultBodyLimit::max(git::DELIVERY_LIMIT)),
        )
        .route("/hooks/deploy/{secret}", post(git::run_hook))
}

async fn health(State(app): State<Arc<App>>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        sites: app.hosts.pattern(),
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
