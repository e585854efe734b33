//! `/api/v1/projects/{name}/deployments` and `/api/v1/deployments/{id}`.

use std::sync::Arc;
use tokio::io::AsyncWriteExt;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use futures_util::StreamExt;
use scalemesh_core::wire::{CreateDeployment, Deployment, DeploymentList};
use serde::Deserialize;

use super::projects::{parse_git_ref, parse_git_url};
use super::{owned_deployment, owned_project};
use crate::App;
use crate::auth::AuthUser;
use crate::db::ProjectRow;
use crate::deployments::NewSource;
use crate::error::{ApiError, ApiQuery, ApiResult};

#[derive(Debug, Deserialize)]
pub struct DeployQuery {
    /// For archive uploads, which carry no JSON body: move the production alias when ready.
    promote: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    limit: Option<u32>,
}

pub async fn list(
    State(app): State<Arc<App>>,
    user: AuthUser,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<DeploymentList>> {
    let project = owned_project(&app, &user, &name).await?;
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
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Deployment>> {
    let dep = owned_deployment(&app, &user, &id).await?;
    Ok(Json(app.deployment_view(&dep)))
}

pub async fn cancel(
    State(app): State<Arc<App>>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Deployment>> {
    let dep = owned_deployment(&app, &user, &id).await?;
    let row = app.cancel(&dep, &user.0.name).await?;
    Ok(Json(app.deployment_view(&row)))
}

/// `POST /deployments/{id}/promote`: this deployment serves production, without a rebuild.
pub async fn promote(
    State(app): State<Arc<App>>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Deployment>> {
    let dep = owned_deployment(&app, &user, &id).await?;
    let row = app.promote(&dep, &user.0.name).await?;
    Ok(Json(app.deployment_view(&row)))
}

/// Starts a deployment: from git with a JSON body, or from an uploaded `.tar.gz` of the source.
pub async fn create(
    State(app): State<Arc<App>>,
    user: AuthUser,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<DeployQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<Deployment>)> {
    let project = owned_project(&app, &user, &name).await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let row = match content_type.as_str() {
        "application/gzip" | "application/x-gzip" | "application/x-tar+gzip" => {
            let upload = receive_archive(&app, body).await?;
            app.create_deployment(
                &project,
                NewSource::Archive(upload.path()),
                q.promote.unwrap_or(true),
            )
            .await?
        }
        "application/json" | "" => {
            let bytes = axum::body::to_bytes(body, super::JSON_LIMIT)
                .await
                .map_err(|e| ApiError::PayloadTooLarge(e.to_string()))?;
            let req: CreateDeployment = if bytes.iter().all(u8::is_ascii_whitespace) {
                CreateDeployment::default()
            } else {
                crate::error::json_object(&bytes)?
            };
            let promote = req.promote.or(q.promote).unwrap_or(true);
            let source = git_source(&project, &req)?;
            app.create_deployment(&project, source, promote).await?
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
    Ok((StatusCode::CREATED, Json(app.deployment_view(&row))))
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
    Ok(NewSource::Git { url, git_ref })
}

/// Streams an uploaded archive to a temporary file, refusing it past the size limit or when it
/// is not gzip.
async fn receive_archive(app: &App, body: Body) -> ApiResult<tempfile::NamedTempFile> {
    let file = tempfile::NamedTempFile::new().map_err(anyhow::Error::from)?;
    let handle = file.reopen().map_err(anyhow::Error::from)?;
    let mut writer = tokio::io::BufWriter::new(tokio::fs::File::from_std(handle));
    let mut stream = body.into_data_stream();
    let mut received: u64 = 0;
    let mut head: Vec<u8> = Vec::with_capacity(2);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request("upload_failed", format!("the upload broke off: {e}"))
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
    Ok(file)
}
