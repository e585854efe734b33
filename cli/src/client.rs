//! The typed API client: one method per endpoint, errors decoded from the API's error shape.
//! Projects and deployments here; users, tokens, members, variables and held names in
//! `team.rs`; what an error means for the user in `explain.rs`.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, StatusCode};
use scalemesh_core::wire::{
    AddDomain, ApiErrorBody, CreateDeployment, CreateProject, Deployment, DeploymentList, Domain,
    DomainList, Health, LogLine, Project, ProjectList, RollbackRequest,
};
use serde::de::DeserializeOwned;
use url::Url;

use crate::settings::Settings;

mod blobs;
mod explain;
mod git;
mod team;
mod tls;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("could not reach the Scale Mesh API at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{message}")]
    Api {
        status: StatusCode,
        code: String,
        message: String,
        /// `Retry-After` in seconds, when the server said how long to wait.
        retry_after: Option<u64>,
    },
    #[error("the API answered something unexpected: {0}")]
    Decode(String),
    /// Storage, reached straight with a URL the server presigned.
    #[error("could not store a file at {url}: {reason}")]
    Storage { url: String, reason: String },
}

impl ClientError {
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The API's error code (`last_owner`, `name_taken`, …).
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(StatusCode::NOT_FOUND)
    }

    /// Whether the API refused the token because it expired or was revoked (its message says
    /// which).
    pub fn token_lapsed(&self) -> bool {
        match self {
            Self::Api {
                status, message, ..
            } if *status == StatusCode::UNAUTHORIZED => {
                let message = message.to_lowercase();
                message.contains("expired") || message.contains("revoked")
            }
            _ => false,
        }
    }

    /// Whether the request may not have been completed, so sending it again (with the same
    /// idempotency key) is safe and may succeed: no connection, a connection lost, or a gateway
    /// or server that is briefly unavailable. Never a refusal (4xx).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable { .. } => true,
            Self::Storage { .. } => true,
            // The first attempt is still being handled: ask again for its answer.
            Self::Api { status, code, .. }
                if *status == StatusCode::CONFLICT && code == "idempotency_key_in_use" =>
            {
                true
            }
            Self::Api { status, .. } => matches!(
                *status,
                StatusCode::BAD_GATEWAY
                    | StatusCode::SERVICE_UNAVAILABLE
                    | StatusCode::GATEWAY_TIMEOUT
            ),
            Self::Decode(_) => false,
        }
    }
}

/// A key that makes a repeated request answer what the first one did (`Idempotency-Key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const HEADER: &str = "Idempotency-Key";

    /// 32 random hex digits.
    pub fn random() -> Self {
        Self(
            scalemesh_core::id::random_bytes::<16>()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        )
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
    settings: Settings,
}

impl Client {
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("scalemesh/", env!("CARGO_PKG_VERSION")))
            .tls_backend_preconfigured(tls::config()?)
            .build()?;
        Ok(Self {
            http,
            base: settings.api_url.clone(),
            token: settings.token.clone(),
            settings: settings.clone(),
        })
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The same client, sending `token` instead.
    pub fn with_token(&self, token: &str) -> Self {
        Self {
            token: Some(token.to_owned()),
            ..self.clone()
        }
    }

    /// Where this machine keeps Scale Mesh's local state.
    pub fn data_dir(&self) -> &std::path::Path {
        &self.settings.data_dir
    }

    /// The API's URL as people write it (no trailing `/`).
    pub fn display_url(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_owned()
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let url = format!("{}{}", self.base.as_str().trim_end_matches('/'), path);
        let req = self.http.request(method, url);
        match &self.token {
            Some(token) => req.bearer_auth(token),
            None => req,
        }
    }

    /// Sends `req` and returns the body of a success, or the API's error.
    async fn send_raw(&self, req: RequestBuilder) -> Result<bytes::Bytes, ClientError> {
        let unreachable = |e: reqwest::Error| ClientError::Unreachable {
            url: self.base.to_string(),
            reason: root_cause(&e),
        };
        let res = req.send().await.map_err(unreachable)?;
        let status = res.status();
        let retry_after = res
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let bytes = res.bytes().await.map_err(unreachable)?;
        if status.is_success() {
            return Ok(bytes);
        }
        Err(match serde_json::from_slice::<ApiErrorBody>(&bytes) {
            Ok(body) => ClientError::Api {
                status,
                code: body.error.code,
                message: body.error.message,
                retry_after,
            },
            Err(_) => ClientError::Api {
                status,
                code: "unknown".into(),
                message: format!("the API answered {status}"),
                retry_after,
            },
        })
    }

    async fn send<T: DeserializeOwned>(&self, req: RequestBuilder) -> Result<T, ClientError> {
        let bytes = self.send_raw(req).await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()))
    }

    pub async fn health(&self) -> Result<Health, ClientError> {
        self.send(
            self.request(Method::GET, "/health")
                .timeout(Duration::from_secs(2)),
        )
        .await
    }

    pub async fn projects(&self) -> Result<ProjectList, ClientError> {
        self.send(self.request(Method::GET, &api(&["projects"])))
            .await
    }

    pub async fn project(&self, name: &str) -> Result<Project, ClientError> {
        self.send(self.request(Method::GET, &api(&["projects", name])))
            .await
    }

    pub async fn create_project(&self, body: &CreateProject) -> Result<Project, ClientError> {
        self.send(self.request(Method::POST, &api(&["projects"])).json(body))
            .await
    }

    /// Starts a deployment from a git repository. Sent again with the same `key`, it answers
    /// the deployment the first one made.
    pub async fn deploy_git(
        &self,
        project: &str,
        body: &CreateDeployment,
        key: &IdempotencyKey,
    ) -> Result<Deployment, ClientError> {
        self.send(
            self.request(Method::POST, &api(&["projects", project, "deployments"]))
                .header(IdempotencyKey::HEADER, key.as_str())
                .json(body),
        )
        .await
    }

    /// Starts a deployment from a `.tar.gz` of a folder; idempotent by `key` as
    /// [`Client::deploy_git`].
    pub async fn deploy_archive(
        &self,
        project: &str,
        archive: bytes::Bytes,
        flags: DeployFlags,
        key: &IdempotencyKey,
    ) -> Result<Deployment, ClientError> {
        let path = api(&["projects", project, "deployments"]);
        let promote = flags.promote.to_string();
        let mut params = vec![("promote", promote.as_str())];
        if flags.no_cache {
            params.push(("no_cache", "true"));
        }
        let req = self
            .request(Method::POST, &query(path, &params))
            .header(IdempotencyKey::HEADER, key.as_str())
            .header(reqwest::header::CONTENT_TYPE, "application/gzip")
            .body(archive);
        self.send(req).await
    }

    pub async fn deployment(&self, id: &str) -> Result<Deployment, ClientError> {
        self.send(self.request(Method::GET, &api(&["deployments", id])))
            .await
    }

    pub async fn deployments(
        &self,
        project: &str,
        limit: u32,
    ) -> Result<DeploymentList, ClientError> {
        let path = api(&["projects", project, "deployments"]);
        let path = query(path, &[("limit", &limit.to_string())]);
        self.send(self.request(Method::GET, &path)).await
    }

    pub async fn promote(&self, id: &str) -> Result<Deployment, ClientError> {
        self.send(self.request(Method::POST, &api(&["deployments", id, "promote"])))
            .await
    }

    pub async fn rollback(
        &self,
        project: &str,
        to: Option<&str>,
    ) -> Result<Deployment, ClientError> {
        let body = RollbackRequest {
            to: to.map(str::to_owned),
        };
        self.send(
            self.request(Method::POST, &api(&["projects", project, "rollback"]))
                .json(&body),
        )
        .await
    }

    pub async fn domains(&self, project: &str) -> Result<DomainList, ClientError> {
        self.send(self.request(Method::GET, &api(&["projects", project, "domains"])))
            .await
    }

    pub async fn add_domain(&self, project: &str, host: &str) -> Result<Domain, ClientError> {
        self.send(
            self.request(Method::POST, &api(&["projects", project, "domains"]))
                .json(&AddDomain {
                    host: host.to_owned(),
                }),
        )
        .await
    }

    /// Deletes a project: its builds stop, its sites stop answering, its files go.
    pub async fn delete_project(&self, project: &str) -> Result<(), ClientError> {
        self.send_raw(self.request(Method::DELETE, &api(&["projects", project])))
            .await
            .map(|_| ())
    }

    pub async fn remove_domain(&self, project: &str, host: &str) -> Result<(), ClientError> {
        self.send_raw(self.request(
            Method::DELETE,
            &api(&["projects", project, "domains", host]),
        ))
        .await
        .map(|_| ())
    }

    pub async fn cancel(&self, id: &str) -> Result<Deployment, ClientError> {
        self.send(self.request(Method::POST, &api(&["deployments", id, "cancel"])))
            .await
    }

    /// Stored lines after `since`, at most `limit`.
    pub async fn log_lines(
        &self,
        id: &str,
        since: u64,
        limit: u32,
    ) -> Result<Vec<LogLine>, ClientError> {
        let path = api(&["deployments", id, "logs"]);
        let path = query(
            path,
            &[("since", &since.to_string()), ("limit", &limit.to_string())],
        );
        let req = self.request(Method::GET, &path);
        let body = self.send_raw(req).await?;
        let text = std::str::from_utf8(&body).map_err(|e| ClientError::Decode(e.to_string()))?;
        text.lines()
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_str(l).map_err(|e| ClientError::Decode(e.to_string())))
            .collect()
    }

    /// The WebSocket URL of a deployment's log, from `since`.
    pub fn log_stream_url(&self, id: &str, since: u64) -> String {
        let mut url = self.base.clone();
        let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        let _ = url.set_scheme(scheme);
        let base = url.as_str().trim_end_matches('/').to_owned();
        let path = api(&["deployments", id, "logs", "stream"]);
        let path = query(path, &[("since", &since.to_string())]);
        format!("{base}{path}")
    }
}

/// The innermost cause of a reqwest error, which is what tells the user something
/// ("Connection refused").
pub(crate) fn root_cause(err: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = err;
    while let Some(next) = source.source() {
        source = next;
    }
    if err.is_timeout() {
        "the request timed out".to_owned()
    } else {
        source.to_string()
    }
}

/// A user's word as one path segment: `..`, `/` or `?` in it can never reach another endpoint.
/// An API path: `/api/v1` and `parts`, each encoded as one path segment, so no name or id can
/// add a segment, a query or a fragment. Every request path the CLI sends is built here.
pub(crate) fn api(parts: &[&str]) -> String {
    let mut path = String::from("/api/v1");
    for part in parts {
        path.push('/');
        path.push_str(&segment(part));
    }
    path
}

/// `path` with a query of `pairs`, each value percent-encoded as a segment is.
pub(crate) fn query(mut path: String, pairs: &[(&str, &str)]) -> String {
    for (i, (name, value)) in pairs.iter().enumerate() {
        path.push(if i == 0 { '?' } else { '&' });
        path.push_str(name);
        path.push('=');
        path.push_str(&encode(value));
    }
    path
}

fn segment(raw: &str) -> String {
    if raw.is_empty() || raw.chars().all(|c| c == '.') {
        // URL parsers take `.`/`..` (even as `%2E`) for dot-segments: send a name the API
        // refuses instead.
        return raw.replace('.', "%252E") + "%2500";
    }
    encode(raw)
}

/// `raw` with everything but letters, digits and `.-_~` percent-encoded.
fn encode(raw: &str) -> String {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    const SET: &percent_encoding::AsciiSet = &NON_ALPHANUMERIC
        .remove(b'.')
        .remove(b'-')
        .remove(b'_')
        .remove(b'~');
    utf8_percent_encode(raw, SET).to_string()
}

/// What a deploy asks for besides its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeployFlags {
    /// Make the deployment live when it is ready.
    pub promote: bool,
    /// Build without restoring the build cache.
    pub no_cache: bool,
}

#[cfg(test)]
mod tests {
    use super::{api, query};

    /// Whatever a name or an id holds, it stays one segment (or one query value) of the path.
    #[test]
    fn every_part_of_a_path_stays_one_segment() {
        // (parts, path)
        let table: &[(&[&str], &str)] = &[
            (&["projects"], "/api/v1/projects"),
            (
                &["projects", "site", "deployments"],
                "/api/v1/projects/site/deployments",
            ),
            (&["projects", "a b"], "/api/v1/projects/a%20b"),
            (&["projects", "a/b?c#d"], "/api/v1/projects/a%2Fb%3Fc%23d"),
            (&["projects", ".."], "/api/v1/projects/%252E%252E%2500"),
            (&["projects", "."], "/api/v1/projects/%252E%2500"),
            (&["projects", ""], "/api/v1/projects/%2500"),
            (&["projects", "x.y-z_~"], "/api/v1/projects/x.y-z_~"),
            (&["users", "é"], "/api/v1/users/%C3%A9"),
        ];
        for (parts, path) in table {
            assert_eq!(api(parts), *path, "{parts:?}");
        }
        assert_eq!(
            query(
                api(&["deployments", "d1", "logs"]),
                &[("since", "5"), ("limit", "10")]
            ),
            "/api/v1/deployments/d1/logs?since=5&limit=10"
        );
        assert_eq!(
            query("/x".to_owned(), &[("to", "a&b=c d"), ("empty", "")]),
            "/x?to=a%26b%3Dc%20d&empty="
        );
    }
}
