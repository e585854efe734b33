//! Who a request comes from. API tokens belong to users, are shown once and stored only as
//! their SHA-256 (`secret`); a request carries one as `Authorization: Bearer <token>`. An
//! unknown, expired or revoked token is refused with 401 saying which, and an address that
//! keeps failing is slowed down (`throttle`). Builders get a job token valid for one
//! unfinished deployment.

pub mod secret;
pub mod throttle;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use scalemesh_core::access::TokenRole;
use time::OffsetDateTime;

use crate::app::App;
use crate::db::{NewToken, SqliteStore, TokenRow, User};
use crate::error::ApiError;
use crate::private_file::write_private;

use scalemesh_core::local::ADMIN_TOKEN_FILE;

pub use secret::hash as hash_token;

/// The first user, whose token a CLI on the server's machine finds in the data folder.
const LOCAL_ADMIN: &str = "admin";

/// A fresh job token for a build (not an API token: it is checked against one deployment).
pub fn new_job_token() -> String {
    let bytes = scalemesh_core::id::random_bytes::<32>();
    format!("smj_{}", hex::encode(bytes))
}

/// On first start, creates the user `admin` and its token, and saves the token, readable only by
/// its owner, where the CLI on this machine looks for it. When the saved token no longer works
/// (revoked, say), `admin` gets a new one, if it is still an admin; a removed `admin` is never
/// made again, nor another user named so made an admin.
pub async fn bootstrap_admin(store: &SqliteStore, data_dir: &Path) -> anyhow::Result<()> {
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    if let Ok(saved) = std::fs::read_to_string(&path)
        && let Some((user, token)) = store.token_by_hash(hash_token(saved.trim())).await?
        && user.admin
        && usable(&token, OffsetDateTime::now_utc()).is_ok()
    {
        return Ok(());
    }
    let admin = match store.user_by_name(LOCAL_ADMIN).await? {
        Some(user) if user.admin => user,
        None if store.users().await?.is_empty() => store
            .create_user(LOCAL_ADMIN, true)
            .await?
            .context("the first user could not be made")?,
        _ => {
            let _ = std::fs::remove_file(&path);
            tracing::warn!(
                "the admin user was removed or is no longer an admin: no local admin token is \
                 made; sign in as another admin (scalemesh login)"
            );
            return Ok(());
        }
    };
    let token = secret::generate();
    store
        .add_token(NewToken {
            user_id: admin.id,
            hash: hash_token(&token),
            name: "local admin".into(),
            prefix: secret::shown(&token),
            role: TokenRole::Full,
            projects: None,
            expires_at: None,
        })
        .await?;
    write_private(&path, &format!("{token}\n"))
        .with_context(|| format!("saving the admin token to {}", path.display()))?;
    tracing::info!(path = %path.display(), "created the admin token");
    Ok(())
}

/// The bearer token of a request, if it has one.
pub fn bearer(parts: &Parts) -> Option<&str> {
    bearer_header(&parts.headers)
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_header(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Why a stored token does not work now, if it does not.
fn usable(token: &TokenRow, now: OffsetDateTime) -> Result<(), String> {
    if let Some(at) = token.revoked_at {
        return Err(format!(
            "the API token {:?} was revoked on {}; sign in with another (scalemesh login)",
            token.name,
            crate::views::day(at)
        ));
    }
    match token.expires_at {
        Some(at) if at <= now => Err(format!(
            "the API token {:?} expired on {}; create a new one (scalemesh tokens create) and sign in with it",
            token.name,
            crate::views::day(at)
        )),
        _ => Ok(()),
    }
}

/// The user a request is made by, and the token it came with. Extracting it answers 401 for a
/// missing, unknown, expired or revoked token, and 429 to an address that failed too often.
pub struct Caller {
    pub user: User,
    pub token: TokenRow,
}

impl Caller {
    /// Whether the token covers the project `id`.
    pub fn covers(&self, project_id: i64) -> bool {
        match &self.token.projects {
            None => true,
            Some(projects) => projects.iter().any(|(id, _)| *id == project_id),
        }
    }

    /// The user of `token`, asked for from `client`; 401 when there is none or it does not
    /// work, 429 when it does not work and `client` has failed too often. A working token is
    /// never slowed down, so one client that keeps failing cannot lock out the others behind
    /// its address; guessing gets nowhere against 238 random bits, and the throttle bounds how
    /// often an address may try.
    pub async fn with_token(
        app: &App,
        token: Option<&str>,
        client: IpAddr,
    ) -> Result<Self, ApiError> {
        let Some(token) = token else {
            return Err(ApiError::Unauthorized(
                "this request needs an API token: send it as 'Authorization: Bearer <token>'"
                    .into(),
            ));
        };
        let found = app.store.token_by_hash(hash_token(token)).await?;
        let refusal = match found {
            Some((user, stored)) => match usable(&stored, OffsetDateTime::now_utc()) {
                Ok(()) => {
                    app.store.touch_token(&stored).await?;
                    return Ok(Self {
                        user,
                        token: stored,
                    });
                }
                Err(why) => why,
            },
            None if secret::well_formed(token) => {
                "the API token is not valid: it was never issued here, or its user was removed"
                    .to_owned()
            }
            None => "the API token is not valid: it does not look like a Scale Mesh token (smk_…); check it was copied whole".to_owned(),
        };
        let mut throttle = app.throttle();
        let now = Instant::now();
        if let Some(wait) = throttle.wait(client, now) {
            return Err(ApiError::TooManyRequests {
                message: "too many failed sign-ins from this address; wait before trying again"
                    .into(),
                retry_after: wait.as_secs().max(1),
            });
        }
        throttle.failed(client, now);
        Err(ApiError::Unauthorized(refusal))
    }
}

impl FromRequestParts<Arc<App>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<App>,
    ) -> Result<Self, Self::Rejection> {
        let client = client_of(app, parts);
        Self::with_token(app, bearer(parts), client).await
    }
}

/// The address a request comes from, as [`throttle::client_ip`] decides.
pub fn client_of(app: &App, parts: &Parts) -> IpAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let forwarded: Vec<&str> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    throttle::client_ip(peer, &forwarded, &app.trusted_proxies)
}

/// The client address of a request, for handlers that authenticate by hand.
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<Arc<App>> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<App>,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(client_of(app, parts)))
    }
}

/// The job token of a builder's request (checked against one deployment by the handler).
pub struct JobToken(pub String);

impl<S: Send + Sync> FromRequestParts<S> for JobToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        bearer(parts).map(|t| Self(t.to_owned())).ok_or_else(|| {
            ApiError::Unauthorized("this request needs the build's job token".into())
        })
    }
}
