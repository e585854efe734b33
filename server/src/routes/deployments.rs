//! `/api/v1/projects/{name}/deployments` and `/api/v1/deployments/{id}`.

use std::sync::Arc;
use tokio::io::AsyncWriteExt;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use scalemesh_core::wire::{CreateDeployment, Deployment, DeploymentList};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::projects::{parse_git_ref, parse_git_url};
use crate::access::Action;
use crate::app::App;
use crate::auth::Caller;
use crate::db::{Claim, DeploymentRow, ProjectRow};
use crate::deployments::{DeployOptions, NewSource};
use crate::error::{ApiError, ApiQuery, ApiResult};

#[derive(Debug, Deserialize)]
pub struct DeployQuery {
    /// For archive uploads, which carry no JSON body: move the production alias when ready.
    promote: Option<bool>,
    /// For archive uploads: build without restoring the build cache.
    no_cache: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    limit: Option<u32>,
}

pub async fn list(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<DeploymentList>> {
    let project = app
        .project_for(&caller, &name, Action::ViewProject)
        .await?
        .row;
    let rows = app
        .store
        .deployments_of(project.id, q.limit.unwrap_or(20).min(500))
        .await?;
    Ok(Json(DeploymentList {
        deployments: rows.iter().map(|r| app.deployment_view(r)).collect(),
    }))
}

pub async fn show(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Deployment>> {
    let (dep, _) = app
        .deployment_for(&caller, &id, Action::ViewProject)
        .await?;
    Ok(Json(app.deployment_view(&dep)))
}

pub async fn cancel(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Deployment>> {
    let (dep, _) = app.deployment_for(&caller, &id, Action::Cancel).await?;
    let row = app.cancel(&dep, &caller.user.name).await?;
    Ok(Json(app.deployment_view(&row)))
}

/// `POST /deployments/{id}/promote`: this deployment serves production, without a rebuild.
pub async fn promote(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Deployment>> {
    let (dep, _) = app.deployment_for(&caller, &id, Action::Promote).await?;
    let row = app.promote(&dep, &caller.user.name).await?;
    Ok(Json(app.deployment_view(&row)))
}

/// Starts a deployment: from git with a JSON body, or from an uploaded `.tar.gz` of the source.
/// With an `Idempotency-Key`, the same request again answers the deployment the first made.
pub async fn create(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<DeployQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let project = app.project_for(&caller, &name, Action::Deploy).await?.row;
    let key = idempotency_key(&headers)?;
    let (source, request) = receive(&app, &project, &headers, &q, body).await?;
    match key {
        None => {
            let row = start(&app, &project, source, caller.user.id).await?;
            Ok(answer(&app, &row, false))
        }
        Some(key) => start_once(&app, &project, source, caller.user.id, key, request).await,
    }
}

/// A deploy request's source, and a digest of the whole request (project, content type, query
/// flags and body) that tells a retry from another request under the same `Idempotency-Key`.
async fn receive(
    app: &App,
    project: &ProjectRow,
    headers: &HeaderMap,
    query: &DeployQuery,
    body: Body,
) -> ApiResult<(Upload, Vec<u8>)> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let mut request = Sha256::new();
    for part in [
        &project.id.to_string(),
        &content_type,
        &format!("{:?}", query.promote),
        &format!("{:?}", query.no_cache),
    ] {
        request.update(part.as_bytes());
        request.update([0]);
    }
    let source = match content_type.as_str() {
        "application/gzip" | "application/x-gzip" | "application/x-tar+gzip" => {
            let (upload, digest) = receive_archive(app, body).await?;
            request.update(digest);
            let options = DeployOptions {
                promote: query.promote.unwrap_or(true),
                no_cache: query.no_cache.unwrap_or(false),
                preview_label: None,
            };
            Upload::Archive(upload, options)
        }
        "application/json" | "" => {
            let bytes = axum::body::to_bytes(body, super::parse::JSON_LIMIT)
                .await
                .map_err(|e| crate::error::body_error(&e, e.to_string()))?;
            request.update(&bytes);
            let req: CreateDeployment = if bytes.iter().all(u8::is_ascii_whitespace) {
                CreateDeployment::default()
            } else {
                crate::error::json_object(&bytes)?
            };
            let options = DeployOptions {
                promote: req.promote.or(query.promote).unwrap_or(true),
                no_cache: req.no_cache.or(query.no_cache).unwrap_or(false),
                preview_label: None,
            };
            Upload::Git(git_source(project, &req)?, options)
        }
        other => {
            return Err(ApiError::bad_request(
                "unsupported_content_type",
                format!(
                    "send application/json (deploy from git) or application/gzip (a .tar.gz of the source), not {other:?}"
                ),
            ));
        }
    };
    Ok((source, request.finalize().to_vec()))
}

/// Starts the deployment unless `user` sent this request under `key` before: then answers the
/// deployment the first one made.
async fn start_once(
    app: &App,
    project: &ProjectRow,
    source: Upload,
    user: i64,
    key: String,
    request: Vec<u8>,
) -> ApiResult<Response> {
    match app.store.claim_idempotency(user, &key, request).await? {
        Claim::New => match start(app, project, source, user).await {
            Ok(row) => {
                app.store.finish_idempotency(user, &key, &row.id).await?;
                Ok(answer(app, &row, false))
            }
            Err(e) => {
                app.store.drop_idempotency(user, &key).await?;
                Err(e)
            }
        },
        Claim::Replay(id) => {
            let row = app
                .store
                .deployment(&id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("deployment {id} does not exist")))?;
            Ok(answer(app, &row, true))
        }
        Claim::Mismatch => Err(ApiError::conflict(
            "idempotency_key_reused",
            "this Idempotency-Key was used for another request; send a new key for a new deployment",
        )),
        Claim::InProgress => Err(ApiError::conflict(
            "idempotency_key_in_use",
            "a request with this Idempotency-Key is still being handled; retry in a moment",
        )),
    }
}

/// A deploy request's source, received.
enum Upload {
    Git(NewSource<'static>, DeployOptions),
    Archive(tempfile::NamedTempFile, DeployOptions),
}

async fn start(
    app: &App,
    project: &ProjectRow,
    source: Upload,
    by: i64,
) -> ApiResult<DeploymentRow> {
    match source {
        Upload::Git(source, options) => app.create_deployment(project, source, options, by).await,
        Upload::Archive(file, options) => {
            app.create_deployment(project, NewSource::Archive(file.path()), options, by)
                .await
        }
    }
}

fn answer(app: &App, row: &DeploymentRow, replayed: bool) -> Response {
    let mut res = (StatusCode::CREATED, Json(app.deployment_view(row))).into_response();
    if replayed {
        res.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    res
}

/// The request's `Idempotency-Key`: 1–255 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(raw) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = raw
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()));
    match key {
        Some(key) => Ok(Some(key.to_owned())),
        None => Err(ApiError::bad_request(
            "invalid_header",
            "an Idempotency-Key is 1–255 visible ASCII characters, such as a UUID",
        )),
    }
}

fn git_source(project: &ProjectRow, req: &CreateDeployment) -> ApiResult<NewSource<'static>> {
    let url = match (&req.git_url, &project.git_url) {
        (Some(asked), Some(own)) => {
            let asked = parse_git_url(asked)?;
            if asked.as_str() != own {
                return Err(ApiError::bad_request(
                    "repository_mismatch",
                    format!(
                        "project {} deploys from another repository; update its git_url or use another project",
                        project.name
                    ),
                ));
            }
            asked
        }
        (Some(asked), None) => parse_git_url(asked)?,
        (None, Some(own)) => parse_git_url(own)?,
        (None, None) => {
            return Err(ApiError::bad_request(
                "missing_source",
                format!(
                    "project {} has no repository: give a git_url, or upload a folder",
                    project.name
                ),
            ));
        }
    };
    let git_ref = parse_git_ref(req.git_ref.as_deref().or(project.git_ref.as_deref()))?;
    let commit = match req.commit.as_deref() {
        Some(sha) if scalemesh_core::commit::is_full_sha(sha) => Some(sha.to_owned()),
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_commit",
                "name the commit in full: its 40 (or 64) lower-case hex digits, as `git rev-parse HEAD` prints them",
            )
            .on_field("commit"));
        }
        None => None,
    };
    Ok(NewSource::Git {
        url,
        git_ref,
        commit,
    })
}

/// Streams an uploaded archive to a temporary file, refusing it past the size limit or when it
/// is not gzip; also answers its SHA-256.
async fn receive_archive(app: &App, body: Body) -> ApiResult<(tempfile::NamedTempFile, [u8; 32])> {
    let file = tempfile::NamedTempFile::new().map_err(anyhow::Error::from)?;
    let handle = file.reopen().map_err(anyhow::Error::from)?;
    let mut writer = tokio::io::BufWriter::new(tokio::fs::File::from_std(handle));
    let mut stream = body.into_data_stream();
    let mut received: u64 = 0;
    let mut head: Vec<u8> = Vec::with_capacity(2);
    let mut digest = Sha256::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            if crate::slow_body::is_too_slow(&e) {
                ApiError::RequestTimeout(format!("the upload {e}; send it again, faster"))
            } else {
                ApiError::bad_request("upload_failed", format!("the upload broke off: {e}"))
            }
        })?;
        received += chunk.len() as u64;
        if received > app.max_upload_bytes {
            return Err(ApiError::PayloadTooLarge(format!(
                "the source archive is larger than {} MB; leave build output and dependencies out (.gitignore) or raise the server's --max-upload-mb",
                app.max_upload_bytes / (1024 * 1024)
            )));
        }
        if head.len() < 2 {
            head.extend(chunk.iter().take(2 - head.len()));
        }
        digest.update(&chunk);
        writer
            .write_all(&chunk)
            .await
            .map_err(anyhow::Error::from)?;
    }
    writer.flush().await.map_err(anyhow::Error::from)?;
    if head != [0x1f, 0x8b] {
        return Err(ApiError::bad_request(
            "invalid_archive",
            "the upload is not a gzip-compressed tarball",
        ));
    }
    Ok((file, digest.finalize().into()))
}
