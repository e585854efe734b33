//! `/api/v1/users` and `/api/v1/holds`: what admins do — add and remove people, free names
//! held after a project was deleted.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use scalemesh_core::access::{TokenRole, UserName};
use scalemesh_core::wire::{CreateUser, CreatedUser, NameHold, NameHoldList, UserList};
use serde::Deserialize;

use super::tokens::{token_view, user_view};
use crate::access::Action;
use crate::app::App;
use crate::auth::{Caller, hash_token, secret};
use crate::db::{NewToken, Removal};
use crate::error::{ApiError, ApiJson, ApiQuery, ApiResult};

pub async fn list(State(app): State<Arc<App>>, caller: Caller) -> ApiResult<Json<UserList>> {
    caller.may(Action::ManageUsers)?;
    let users = app.store.users().await?;
    Ok(Json(UserList {
        users: users.iter().map(user_view).collect::<ApiResult<_>>()?,
    }))
}

/// Adds a user and makes their first token (`full`, never expiring), shown only this once.
pub async fn create(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateUser>,
) -> ApiResult<(StatusCode, Json<CreatedUser>)> {
    caller.may(Action::ManageUsers)?;
    let name = UserName::parse(&body.name)
        .map_err(|e| ApiError::bad_request("invalid_name", e.to_string()).on_field("name"))?;
    let user = app
        .store
        .create_user(name.as_str(), body.admin)
        .await?
        .ok_or_else(|| {
            ApiError::conflict(
                "name_taken",
                format!("there is a user named {name} already"),
            )
            .on_field("name")
        })?;
    let secret = secret::generate();
    let token = app
        .store
        .add_token(NewToken {
            user_id: user.id,
            hash: hash_token(&secret),
            name: "first token".into(),
            prefix: secret::shown(&secret),
            role: TokenRole::Full,
            projects: None,
            expires_at: None,
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedUser {
            user: user_view(&user)?,
            token: token_view(&token),
            secret,
        }),
    ))
}

#[derive(Debug, Deserialize)]
pub struct RemoveQuery {
    /// Who gets the removed user's projects (the caller when absent).
    transfer_to: Option<String>,
}

/// Removes a user: their tokens stop working at once; their projects pass to `transfer_to`.
pub async fn remove(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<RemoveQuery>,
) -> ApiResult<StatusCode> {
    caller.may(Action::ManageUsers)?;
    let missing = |name: &str| {
        ApiError::NotFound(format!(
            "there is no user {:?}",
            name.chars().take(60).collect::<String>()
        ))
    };
    let gone = app
        .store
        .user_by_name(&name)
        .await?
        .ok_or_else(|| missing(&name))?;
    if gone.id == caller.user.id {
        return Err(ApiError::conflict(
            "remove_self",
            "you cannot remove yourself; another admin can",
        ));
    }
    let heir = match &q.transfer_to {
        None => caller.user.clone(),
        Some(heir) => app
            .store
            .user_by_name(heir)
            .await?
            .ok_or_else(|| missing(heir))?,
    };
    if heir.id == gone.id {
        return Err(ApiError::bad_request(
            "invalid_query",
            "transfer_to must be another user than the one removed",
        ));
    }
    match app.store.remove_user(gone.id, heir.id).await? {
        Removal::Removed => Ok(StatusCode::NO_CONTENT),
        Removal::NoSuchUser => Err(missing(&name)),
        Removal::LastAdmin => Err(ApiError::conflict(
            "last_admin",
            format!("{name} is the last admin; make another user an admin first"),
        )),
    }
}

pub async fn holds(State(app): State<Arc<App>>, caller: Caller) -> ApiResult<Json<NameHoldList>> {
    caller.may(Action::ManageHolds)?;
    let holds = app.store.holds().await?;
    Ok(Json(NameHoldList {
        holds: holds
            .into_iter()
            .map(|h| NameHold {
                name: h.name,
                kind: h.kind.as_str().into(),
                held_for: h.held_for,
                until: h.until,
            })
            .collect(),
    }))
}

pub async fn release(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    caller.may(Action::ManageHolds)?;
    let name = name.trim().to_ascii_lowercase();
    if app.store.release_hold(&name).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!(
            "{:?} is not held",
            name.chars().take(260).collect::<String>()
        )))
    }
}
