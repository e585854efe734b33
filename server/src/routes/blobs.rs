//! Files by content: a prebuilt deployment's start, the digest handshake, blobs sent through the
//! server or reported sent straight to storage, a prebuilt deployment's manifest; removing a
//! deployment, and sweeping storage now.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use scalemesh_core::wire::{
    BlobCheck, BlobCheckAnswer, BlobLayout, BlobsAbsent, BlobsStored, BuilderReport,
    PrebuiltStarted, StartPrebuilt, SweepReport,
};

use super::jobs::{job_deployment, read_body};
use crate::access::Action;
use crate::app::App;
use crate::auth::{Caller, JobToken};
use crate::error::{ApiError, ApiJson, ApiQuery, ApiResult, json_object};
use crate::prebuilt::Started;

/// `POST /projects/{name}/prebuilt`
pub async fn start_prebuilt(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<StartPrebuilt>,
) -> ApiResult<(StatusCode, Json<PrebuiltStarted>)> {
    let project = app.project_for(&caller, &name, Action::Deploy).await?.row;
    let promote = body.promote.unwrap_or(true);
    let by = caller.user.id;
    let started = match (body.blobs, body.manifest) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid_start",
                "send the handshake (\"blobs\") or the whole manifest (\"manifest\"), not both",
            ));
        }
        (None, Some(manifest)) => {
            app.start_prebuilt_whole(&project, promote, by, manifest, body.inline)
                .await?
        }
        (_, None) if !body.inline.is_empty() => {
            return Err(ApiError::bad_request(
                "invalid_start",
                "blobs go with a start (\"inline\") only with the whole manifest",
            ));
        }
        (Some(blobs), None) => {
            let (row, job_token, answer) = app
                .start_prebuilt_checked(&project, promote, by, blobs)
                .await?;
            Started {
                row,
                job_token,
                check: Some(answer),
                complete: false,
            }
        }
        (None, None) => {
            let (row, job_token) = app.start_prebuilt(&project, promote, by).await?;
            Started {
                row,
                job_token,
                check: None,
                complete: false,
            }
        }
    };
    Ok((
        StatusCode::CREATED,
        Json(PrebuiltStarted {
            deployment: app.deployment_view(&started.row),
            job_token: started.job_token,
            check: started.check,
            complete: started.complete,
        }),
    ))
}

/// `POST /deployments/{id}/blobs`
pub async fn check(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    token: JobToken,
    body: Body,
) -> ApiResult<Json<BlobCheckAnswer>> {
    let dep = job_deployment(&app, &id, &token).await?;
    let check: BlobCheck = json_object(&read_body(body).await?)?;
    Ok(Json(app.check_blobs(&dep, check).await?))
}

/// `PUT /deployments/{id}/blobs/{sha256}?size=…&br=…&gzip=…`
pub async fn put(
    State(app): State<Arc<App>>,
    Path((id, sha256)): Path<(String, String)>,
    token: JobToken,
    ApiQuery(layout): ApiQuery<BlobLayout>,
    body: Body,
) -> ApiResult<StatusCode> {
    let dep = job_deployment(&app, &id, &token).await?;
    app.receive_blob(&dep, &sha256, layout, body).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /deployments/{id}/blobs/stored`
pub async fn stored(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    token: JobToken,
    body: Body,
) -> ApiResult<Json<BlobsAbsent>> {
    let dep = job_deployment(&app, &id, &token).await?;
    let stored: BlobsStored = json_object(&read_body(body).await?)?;
    let absent = app.blobs_stored(&dep, stored.blobs).await?;
    Ok(Json(BlobsAbsent { absent }))
}

/// `POST /deployments/{id}/packs`
pub async fn packs(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    token: JobToken,
    body: Body,
) -> ApiResult<Json<scalemesh_core::wire::PackUploads>> {
    let dep = job_deployment(&app, &id, &token).await?;
    let request = json_object(&read_body(body).await?)?;
    Ok(Json(app.pack_uploads(&dep, request).await?))
}

/// `POST /deployments/{id}/blobs/abandon`
pub async fn abandon(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    token: JobToken,
) -> ApiResult<Json<serde_json::Value>> {
    let dep = job_deployment(&app, &id, &token).await?;
    let removed = app.abandon_blobs(&dep).await?;
    Ok(Json(serde_json::json!({ "removed": removed })))
}

/// Largest manifest: 50,000 files with long paths.
const MANIFEST_LIMIT: usize = 64 * 1024 * 1024;

/// `PUT /deployments/{id}/manifest`
pub async fn manifest(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    token: JobToken,
    ApiQuery(q): ApiQuery<ManifestQuery>,
    body: Body,
) -> ApiResult<Response> {
    let dep = job_deployment(&app, &id, &token).await?;
    if dep.source_kind != crate::db::PREBUILT {
        return Err(ApiError::conflict(
            "not_prebuilt",
            "only a prebuilt deployment's uploader sends its manifest here; a builder stores its own",
        ));
    }
    let bytes = axum::body::to_bytes(body, MANIFEST_LIMIT)
        .await
        .map_err(|e| crate::error::body_error(&e, e.to_string()))?;
    app.receive_manifest(&dep, &bytes).await?;
    if q.ready != Some(true) {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    // `ready` in the same request (one round trip less): the deployment as it ends.
    let row = app.report(&dep, BuilderReport::Ready).await?;
    Ok(Json(app.deployment_view(&row)).into_response())
}

/// `?ready=true`: the upload is complete with this manifest.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestQuery {
    #[serde(default)]
    ready: Option<bool>,
}

/// `DELETE /deployments/{id}`
pub async fn remove(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let (dep, _) = app
        .deployment_for(&caller, &id, Action::RemoveDeployment)
        .await?;
    app.remove_deployment(&dep).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /sweep`
pub async fn sweep(State(app): State<Arc<App>>, caller: Caller) -> ApiResult<Json<SweepReport>> {
    caller.may(Action::Sweep)?;
    Ok(Json(app.sweep().await?))
}
