//! `/api/v1/projects/{name}/notifications`: URLs told of a project's deployment events, and the
//! log of what was sent to them.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use scalemesh_core::wire::{AddSubscription, NotificationLog, Subscription, SubscriptionList};

use crate::access::Action;
use crate::app::App;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiResult};

pub async fn add(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<AddSubscription>,
) -> ApiResult<(StatusCode, Json<Subscription>)> {
    let project = app
        .project_for(&caller, &name, Action::EditSettings)
        .await?
        .row;
    Ok((
        StatusCode::CREATED,
        Json(app.subscribe(&project, req).await?),
    ))
}

pub async fn list(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<SubscriptionList>> {
    let project = app
        .project_for(&caller, &name, Action::ViewProject)
        .await?
        .row;
    Ok(Json(SubscriptionList {
        subscriptions: app.subscriptions(&project).await?,
    }))
}

pub async fn remove(
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
            "{name} has no notification URL {id:.40} (scalemesh notify ls {name})"
        ))
    })?;
    app.unsubscribe(&project, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn log(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<NotificationLog>> {
    let project = app
        .project_for(&caller, &name, Action::ViewProject)
        .await?
        .row;
    Ok(Json(NotificationLog {
        deliveries: app.notification_log(&project).await?,
    }))
}
