//! Starting a prebuilt deployment: a folder deployed as it is, so the deployment is uploading
//! at once and its uploader (the CLI) gets the job token a builder would. The start carries
//! the digest handshake, or the whole manifest with the few small blobs the uploader read
//! again: then a redeploy that changed a little ends in the one request, when the project
//! holds every other blob.

use std::collections::{BTreeMap, HashMap};

use futures_util::{StreamExt, TryStreamExt};
use scalemesh_core::layout::{Manifest, is_sha256};
use scalemesh_core::storage::Body;
use scalemesh_core::upload::pack;
use scalemesh_core::wire::{
    BlobCheck, BlobCheckAnswer, BlobLayout, BlobWant, BuilderReport, INLINE_MAX_BLOBS,
    INLINE_MAX_BYTES, InlineBlob,
};
use scalemesh_core::{DeploymentId, DeploymentStatus};

use crate::app::App;
use crate::auth::{hash_token, new_job_token};
use crate::blobs::{NoSweep, fill_in, row_of};
use crate::db::{BlobRow, DeploymentRow, NewDeployment, PREBUILT, ProjectRow};
use crate::error::{ApiError, ApiResult};

/// Inline blobs stored at once.
const STORES_AT_ONCE: usize = 4;

/// A prebuilt deployment as its start left it.
pub struct Started {
    pub row: DeploymentRow,
    pub job_token: String,
    /// The answer to the handshake, or to the whole manifest: what is still missing.
    pub check: Option<BlobCheckAnswer>,
    /// The whole manifest was sent and nothing was missing: the deployment ended (`row`).
    pub complete: bool,
}

/// A blob sent with a manifest, decoded and checked against its digest and variants.
struct Inline {
    sha256: String,
    layout: BlobLayout,
    bytes: bytes::Bytes,
}

impl App {
    /// Starts a deployment of a prebuilt folder: no build, so it is uploading at once, and its
    /// uploader (the CLI) gets the job token a builder would, for this deployment only.
    pub async fn start_prebuilt(
        &self,
        project: &ProjectRow,
        promote: bool,
        by: i64,
    ) -> ApiResult<(DeploymentRow, String)> {
        let (row, token) = self.insert_prebuilt(project, promote, by).await?;
        self.notify(&row, crate::notify::Event::Created).await;
        Ok((row, token))
    }

    /// The deployment [`App::start_prebuilt`] makes, with its job token, before anyone is told.
    async fn insert_prebuilt(
        &self,
        project: &ProjectRow,
        promote: bool,
        by: i64,
    ) -> ApiResult<(DeploymentRow, String)> {
        let token = new_job_token();
        let new = NewDeployment {
            id: DeploymentId::generate(),
            project_id: project.id,
            source_kind: PREBUILT,
            git_url: None,
            git_ref: None,
            git_commit: None,
            promote,
            created_by: by,
            no_cache: false,
            preview_label: None,
        };
        let note = "A prebuilt folder: no install, no build".to_owned();
        let (row, lines) = self
            .store
            .insert_prebuilt(new, hash_token(&token), note)
            .await
            .map_err(|e| {
                if e.is_constraint_violation() {
                    ApiError::NotFound(format!("project {} does not exist", project.name))
                } else {
                    e.into()
                }
            })?;
        self.publish_lines(&row.id, lines);
        Ok((row, token))
    }

    /// A prebuilt deployment started with its handshake in the same request (one round trip
    /// less): the check is refused before anything is made when it is malformed, the
    /// deployment forgotten when the project's records refuse it (a blob held with another
    /// size), and failed, saying why, when it cannot be answered.
    pub async fn start_prebuilt_checked(
        &self,
        project: &ProjectRow,
        promote: bool,
        by: i64,
        check: BlobCheck,
    ) -> ApiResult<(DeploymentRow, String, BlobCheckAnswer)> {
        let no_sweep = self.sweeping.read().await;
        let (row, token, answer, _) = self
            .start_prebuilt_claimed(&no_sweep, project, promote, by, check)
            .await?;
        Ok((row, token, answer))
    }

    /// [`App::start_prebuilt_checked`] for a caller holding sweeps off, with the records of the
    /// blobs the project holds.
    async fn start_prebuilt_claimed(
        &self,
        no_sweep: &NoSweep<'_>,
        project: &ProjectRow,
        promote: bool,
        by: i64,
        check: BlobCheck,
    ) -> ApiResult<(
        DeploymentRow,
        String,
        BlobCheckAnswer,
        HashMap<String, BlobRow>,
    )> {
        crate::blobs::wanted_sizes(&check)?;
        let (row, token) = self.insert_prebuilt(project, promote, by).await?;
        match self.claim_during(no_sweep, &row, check).await {
            Ok((answer, present)) => {
                self.notify(&row, crate::notify::Event::Created).await;
                Ok((row, token, answer, present))
            }
            // Refused by what the project holds (a blob it holds with another size): as if
            // never started, and nobody was told of it.
            Err(e @ ApiError::BadRequest { .. }) => {
                match self.store.forget_started(&row.id).await {
                    Ok(true) => {
                        self.hub.close(&row.id);
                        Err(e)
                    }
                    _ => Err(self.failed(&row, "begin", e).await),
                }
            }
            Err(e) => Err(self.failed(&row, "begin", e).await),
        }
    }

    /// Fails `dep`, whose upload could not `begin` or `end` for `e`, saying so: `e`.
    async fn failed(&self, dep: &DeploymentRow, when: &str, e: ApiError) -> ApiError {
        let reason = format!("the upload could not {when}: {e}");
        let _ = self.finish(&dep.id, DeploymentStatus::Failed, reason).await;
        e
    }

    /// A prebuilt deployment started with its whole manifest and `inline` blobs: both are
    /// checked before anything is made, and a start the project's records refuse is forgotten
    /// (a 400 leaves no deployment behind; an inline blob stored meanwhile holds its digest's
    /// bytes, and goes with the next sweep unless a deployment names it); the blobs the project
    /// lacks among `inline` are stored; when nothing else is missing the manifest is accepted
    /// and the deployment made ready, else the answer says what to send. A deployment that
    /// cannot go on fails, saying why.
    pub async fn start_prebuilt_whole(
        &self,
        project: &ProjectRow,
        promote: bool,
        by: i64,
        manifest: Manifest,
        inline: Vec<InlineBlob>,
    ) -> ApiResult<Started> {
        if manifest.project != project.name {
            return Err(ApiError::bad_request(
                "invalid_manifest",
                "the manifest describes another project",
            ));
        }
        crate::blobs::check_shape(&manifest)?;
        let check = handshake_of(&manifest)?;
        // No sweep runs from the lookup of what the project holds of the inline blobs (made
        // while they are checked) until the deployment has claimed its blobs and the inline
        // ones it lacked are stored: none is taken between being found and being claimed.
        let no_sweep = self.sweeping.read().await;
        let digests = inline
            .iter()
            .take(INLINE_MAX_BLOBS)
            .map(|blob| blob.sha256.clone())
            .collect();
        let (inline, recorded) = tokio::join!(
            decoded(&check, inline),
            self.store.known_blobs(project.id, digests)
        );
        let (inline, recorded) = (inline?, recorded?);
        if inline
            .iter()
            .any(|blob| blob.bytes.len() as u64 > self.max_upload_bytes)
        {
            return Err(ApiError::PayloadTooLarge(format!(
                "a blob may have at most {} bytes",
                self.max_upload_bytes
            )));
        }
        // The deployment is made and claims its blobs while the inline ones are stored.
        let (started, stored) = tokio::join!(
            self.start_prebuilt_claimed(&no_sweep, project, promote, by, check),
            self.store_inline(&no_sweep, project, &inline, &recorded),
        );
        drop(no_sweep);
        let (row, job_token, answer, mut present) = started?;
        match stored {
            Ok(stored) => present.extend(stored),
            Err(e) => return Err(self.failed(&row, "begin", e).await),
        }
        match self.finish_whole(&row, manifest, answer, present).await {
            Ok((row, check)) => Ok(Started {
                complete: check.is_none(),
                row,
                job_token,
                check,
            }),
            Err(e) => Err(self.failed(&row, "end", e).await),
        }
    }

    /// When the project holds every blob `manifest` names (`known`: those the claim found and
    /// the inline ones stored; each inline one is one or the other, as no sweep ran between),
    /// accepts it for `dep` and makes it ready: the deployment as it ended, or as it is with
    /// what is still missing.
    async fn finish_whole(
        &self,
        dep: &DeploymentRow,
        mut manifest: Manifest,
        mut answer: BlobCheckAnswer,
        known: HashMap<String, BlobRow>,
    ) -> ApiResult<(DeploymentRow, Option<BlobCheckAnswer>)> {
        answer.missing.retain(|m| !known.contains_key(&m.sha256));
        if !answer.missing.is_empty() {
            return Ok((dep.clone(), Some(answer)));
        }
        // The deployment claimed exactly the manifest's blobs, and holds them: the records the
        // claim read, and those just stored, complete it (as `accept_manifest` would).
        manifest.deployment = dep.id.clone();
        fill_in(&mut manifest, &known)
            .map_err(|problem| ApiError::bad_request("blobs_missing", problem))?;
        self.keep_manifest(dep, &manifest)?;
        let row = self.report(dep, BuilderReport::Ready).await?;
        tracing::info!(deployment = %dep.id, "a prebuilt deployment was sent whole, in one request");
        Ok((row, None))
    }
}

impl App {
    /// Stores (and records) the inline blobs the project does not hold (as `recorded` says),
    /// for a caller holding sweeps off: the records of those stored. One it holds, with
    /// whatever variants, is not stored again: the deployment's claim reads its record.
    async fn store_inline(
        &self,
        no_sweep: &NoSweep<'_>,
        project: &ProjectRow,
        inline: &[Inline],
        recorded: &HashMap<String, BlobRow>,
    ) -> ApiResult<Vec<(String, BlobRow)>> {
        let blobs: Vec<(String, BlobLayout, bytes::Bytes)> = inline
            .iter()
            .map(|b| (b.sha256.clone(), b.layout, b.bytes.clone()))
            .collect();
        futures_util::stream::iter(blobs)
            .filter(|(sha256, _, _)| std::future::ready(!recorded.contains_key(sha256)))
            .map(|(sha256, layout, bytes)| async move {
                let into = (project.id, &project.name);
                self.store_blob_during(no_sweep, into, &sha256, layout, Body::Bytes(bytes))
                    .await
                    .map(|()| (sha256, row_of(layout, None)))
            })
            .buffer_unordered(STORES_AT_ONCE)
            .try_collect()
            .await
    }
}

/// The handshake a whole manifest makes: each blob it names, once, with its file's size (one
/// digest listed with two sizes is refused).
fn handshake_of(manifest: &Manifest) -> ApiResult<BlobCheck> {
    let mut sizes: BTreeMap<&str, u64> = BTreeMap::new();
    for entry in manifest.files.values() {
        if !is_sha256(&entry.sha256) {
            return Err(ApiError::bad_request(
                "invalid_digest",
                "each file is named by the lower-case hex SHA-256 of its bytes (64 digits)",
            ));
        }
        if *sizes.entry(&entry.sha256).or_insert(entry.size) != entry.size {
            return Err(ApiError::bad_request(
                "invalid_manifest",
                format!("the blob {} is listed with two sizes", entry.sha256),
            ));
        }
    }
    Ok(BlobCheck {
        blobs: sizes
            .into_iter()
            .map(|(sha256, size)| BlobWant {
                sha256: sha256.to_owned(),
                size,
            })
            .collect(),
        missing_only: true,
    })
}

/// The inline blobs decoded and checked (off the async threads): each named by the
/// manifest with its file's size, few and small, its bytes those of its digest and variants.
async fn decoded(check: &BlobCheck, inline: Vec<InlineBlob>) -> ApiResult<Vec<Inline>> {
    if inline.len() > INLINE_MAX_BLOBS {
        return Err(ApiError::bad_request(
            "too_many_inline",
            format!(
                "send at most {INLINE_MAX_BLOBS} blobs with a manifest; send the others with PUT /api/v1/deployments/{{id}}/blobs/{{sha256}}"
            ),
        ));
    }
    let mut total: u64 = 0;
    let mut blobs = Vec::with_capacity(inline.len());
    for blob in inline {
        let layout = blob.layout();
        let named = check
            .blobs
            .iter()
            .any(|b| b.sha256 == blob.sha256 && b.size == layout.size);
        if !named {
            return Err(ApiError::bad_request(
                "invalid_inline",
                format!(
                    "the blob {:.80} sent with the manifest is not one of its files",
                    blob.sha256
                ),
            ));
        }
        if blobs.iter().any(|b: &Inline| b.sha256 == blob.sha256) {
            return Err(ApiError::bad_request(
                "invalid_inline",
                format!(
                    "the blob {} is sent twice with the manifest; send each once",
                    blob.sha256
                ),
            ));
        }
        let bytes = blob.bytes().ok_or_else(|| {
            ApiError::bad_request(
                "invalid_inline",
                format!("the body of blob {} is not base64", blob.sha256),
            )
        })?;
        total = total.saturating_add(bytes.len() as u64);
        if total > INLINE_MAX_BYTES {
            return Err(ApiError::PayloadTooLarge(format!(
                "the blobs sent with a manifest hold at most {INLINE_MAX_BYTES} bytes; send larger ones with PUT /api/v1/deployments/{{id}}/blobs/{{sha256}}"
            )));
        }
        blobs.push(Inline {
            sha256: blob.sha256,
            layout,
            bytes: bytes.into(),
        });
    }
    let checked = tokio::task::spawn_blocking(move || {
        for blob in &blobs {
            pack::verify(&blob.bytes, &blob.sha256, blob.layout)
                .map_err(|problem| format!("the blob {} was not stored: {problem}", blob.sha256))?;
        }
        Ok::<_, String>(blobs)
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("checking blobs: {e}")))?;
    checked.map_err(|problem| ApiError::bad_request("blob_mismatch", problem))
}
