//! `/api/v1/me` and `/api/v1/tokens`: who a token belongs to, and a user's own tokens.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use scalemesh_core::access::{TokenRole, UserName};
use scalemesh_core::wire::{self, CreateToken, CreatedToken, Me, TokenList};
use time::OffsetDateTime;

use crate::access::Action;
use crate::app::App;
use crate::auth::{Caller, hash_token, secret};
use crate::db::{NewToken, TokenRow, User};
use crate::error::{ApiError, ApiJson, ApiResult};

/// How long a token lives when the request does not say.
const DEFAULT_LIFETIME: time::Duration = time::Duration::days(90);
/// Longest lifetime that is not `never`.
const MAX_LIFETIME: time::Duration = time::Duration::days(3650);

pub fn user_view(user: &User) -> ApiResult<wire::User> {
    Ok(wire::User {
        name: UserName::parse(&user.name).map_err(anyhow::Error::from)?,
        admin: user.admin,
        created_at: user.created_at,
    })
}

pub fn token_view(token: &TokenRow) -> wire::Token {
    wire::Token {
        id: token.id,
        name: token.name.clone(),
        prefix: token.prefix.clone(),
        role: token.role,
        projects: token
            .projects
            .as_ref()
            .map(|p| p.iter().map(|(_, name)| name.clone()).collect()),
        created_at: token.created_at,
        last_used_at: token.last_used_at,
        expires_at: token.expires_at,
    }
}

pub async fn me(caller: Caller) -> ApiResult<Json<Me>> {
    Ok(Json(Me {
        user: user_view(&caller.user)?,
        token: token_view(&caller.token),
        server_version: env!("CARGO_PKG_VERSION").into(),
    }))
}

pub async fn list(State(app): State<Arc<App>>, caller: Caller) -> ApiResult<Json<TokenList>> {
    caller.may(Action::ManageTokens)?;
    let tokens = app.store.tokens_of(caller.user.id).await?;
    Ok(Json(TokenList {
        tokens: tokens.iter().map(token_view).collect(),
    }))
}

/// A token name: 1–100 characters, none of them control characters.
fn check_name(name: &str) -> ApiResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_name",
            "a token's name is 1–100 characters, with no control characters",
        )
        .on_field("name"));
    }
    Ok(name.to_owned())
}

/// When a token made now with `expires` (`30d`, `never`, …) expires.
fn expiry(expires: Option<&str>, now: OffsetDateTime) -> ApiResult<Option<OffsetDateTime>> {
    let lifetime = match expires.map(str::trim) {
        None => DEFAULT_LIFETIME,
        Some("never") => return Ok(None),
        Some(raw) => {
            let parsed = scalemesh_core::duration::parse(raw).map_err(|e| {
                ApiError::bad_request("invalid_field", format!("{e}, or never")).on_field("expires")
            })?;
            time::Duration::try_from(parsed).unwrap_or(MAX_LIFETIME)
        }
    };
    if lifetime < time::Duration::SECOND || lifetime > MAX_LIFETIME {
        return Err(ApiError::bad_request(
            "invalid_field",
            "a token lives from 1s to 3650d, or never expires (never)",
        )
        .on_field("expires"));
    }
    Ok(Some(now + lifetime))
}

pub async fn create(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateToken>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    caller.may(Action::ManageTokens)?;
    let name = check_name(&body.name)?;
    let expires_at = expiry(body.expires.as_deref(), OffsetDateTime::now_utc())?;
    let projects = match &body.projects {
        None => None,
        Some(names) if names.is_empty() => {
            return Err(ApiError::bad_request(
                "invalid_field",
                "give at least one project, or leave projects out for all of yours",
            )
            .on_field("projects"));
        }
        Some(names) => {
            let mut ids = Vec::with_capacity(names.len());
            for name in names {
                let project = app.project_for(&caller, name, Action::ViewProject).await?;
                ids.push(project.row.id);
            }
            Some(ids)
        }
    };
    let secret = secret::generate();
    let token = app
        .store
        .add_token(NewToken {
            user_id: caller.user.id,
            hash: hash_token(&secret),
            name,
            prefix: secret::shown(&secret),
            role: body.role.unwrap_or(TokenRole::Full),
            projects,
            expires_at,
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token: token_view(&token),
            secret,
        }),
    ))
}

/// Revokes one of the caller's tokens; any token may revoke itself.
pub async fn revoke(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let missing = || {
        ApiError::NotFound(format!(
            "you have no token {:?}",
            id.chars().take(30).collect::<String>()
        ))
    };
    let id: i64 = id.parse().map_err(|_| missing())?;
    if id != caller.token.id {
        caller.may(Action::RevokeToken)?;
    }
    if app.store.revoke_token(caller.user.id, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(missing())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes() {
        let now = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(expiry(None, now).ok(), Some(Some(now + DEFAULT_LIFETIME)));
        assert_eq!(expiry(Some("never"), now).ok(), Some(None));
        assert_eq!(
            expiry(Some("30d"), now).ok(),
            Some(Some(now + time::Duration::days(30)))
        );
        for bad in ["0", "0s", "3651d", "soon", "-1d", ""] {
            assert!(expiry(Some(bad), now).is_err(), "{bad}");
        }
    }

    #[test]
    fn token_names() {
        assert_eq!(
            check_name("  ci deploy ").ok().as_deref(),
            Some("ci deploy")
        );
        for bad in ["", "  ", "a\nb", &"x".repeat(101)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
