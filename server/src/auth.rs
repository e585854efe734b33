//! API tokens. A token is shown once and stored only as its SHA-256; requests carry it as
//! `Authorization: Bearer <token>`. Builders get a job token valid for one unfinished deployment.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::App;
use crate::db::{SqliteStore, User};
use crate::error::ApiError;

use scalemesh_core::local::ADMIN_TOKEN_FILE;

/// A fresh token: a prefix saying what it is for, then 256 random bits in hex.
pub fn new_token(prefix: &str) -> String {
    let bytes = scalemesh_core::id::random_bytes::<32>();
    format!("{prefix}_{}", hex::encode(bytes))
}

pub fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Whether `token` hashes to `expected`, compared in constant time.
pub fn token_matches(token: &str, expected: &[u8]) -> bool {
    hash_token(token).ct_eq(expected).into()
}

/// On first start (or when the saved token no longer works), creates the `admin` user's token
/// and saves it, readable only by its owner, where the CLI on this machine looks for it.
pub async fn bootstrap_admin(store: &SqliteStore, data_dir: &Path) -> anyhow::Result<()> {
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    if let Ok(saved) = std::fs::read_to_string(&path)
        && store
            .user_by_token_hash(hash_token(saved.trim()))
            .await?
            .is_some()
    {
        return Ok(());
    }
    let admin = store.ensure_user("admin").await?;
    let token = new_token("smk");
    store
        .add_token(admin.id, hash_token(&token), "local admin")
        .await?;
    write_private(&path, &format!("{token}\n"))
        .with_context(|| format!("saving the admin token to {}", path.display()))?;
    tracing::info!(path = %path.display(), "created the admin token");
    Ok(())
}

fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(content.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
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

/// The user a request is made by. Extracting it answers 401 for a missing or unknown token.
pub struct AuthUser(pub User);

impl FromRequestParts<Arc<App>> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<App>,
    ) -> Result<Self, Self::Rejection> {
        Self::with_token(app, bearer(parts)).await
    }
}

impl AuthUser {
    /// The user `token` belongs to; 401 when there is none or it is not valid.
    pub async fn with_token(app: &App, token: Option<&str>) -> Result<Self, ApiError> {
        let Some(token) = token else {
            return Err(ApiError::Unauthorized(
                "this request needs an API token: send it as 'Authorization: Bearer <token>'"
                    .into(),
            ));
        };
        match app.store.user_by_token_hash(hash_token(token)).await? {
            Some(user) => Ok(Self(user)),
            None => Err(ApiError::Unauthorized("the API token is not valid".into())),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_match_only_their_hash() {
        let a = new_token("smk");
        let b = new_token("smk");
        assert_ne!(a, b);
        assert!(a.starts_with("smk_") && a.len() == 68);
        assert!(token_matches(&a, &hash_token(&a)));
        assert!(!token_matches(&b, &hash_token(&a)));
    }
}
