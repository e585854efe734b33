//! Files by content on the server's side: the digest handshake (which blobs a deployment must
//! send, with a URL straight to storage where there is one), blobs sent through the server
//! (checked against their digest before they are stored), blobs reported stored straight to
//! storage (looked up), a prebuilt deployment's manifest, and the check of a blob manifest
//! before its deployment becomes ready: every blob it names is stored with the variants it
//! says.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use axum::body::Body as HttpBody;
use futures_util::{StreamExt, TryStreamExt};
use scalemesh_core::ProjectName;
use scalemesh_core::layout::{self, FileLayout, InPack, Manifest, is_sha256, is_site_path};
use scalemesh_core::storage::{Body, ObjectMeta};
use scalemesh_core::upload::pack;
use scalemesh_core::wire::{
    BlobCheck, BlobCheckAnswer, BlobLayout, BlobParts, MAX_FILES, MissingBlob, PackRequest,
    PackUploads, StoredBlob,
};
use tokio::io::AsyncWriteExt;

use crate::app::App;
use crate::db::{BlobRow, DeploymentRow, PREBUILT};
use crate::error::{ApiError, ApiResult};

/// Held while blobs are claimed, or stored and recorded: no sweep runs meanwhile.
pub(crate) type NoSweep<'a> = tokio::sync::RwLockReadGuard<'a, ()>;

/// How long a URL straight to storage stays good.
const DIRECT_UPLOAD_VALID: Duration = Duration::from_secs(3600);

/// Storage lookups at once.
const LOOKUPS_AT_ONCE: usize = 16;

/// A blob's body written to a temporary file as it comes; refused once longer than `total`.
/// Blobs up to this size are received in memory; larger ones go to a temporary file.
const IN_MEMORY: u64 = 256 * 1024;

/// A blob as received: in memory when small, else in a temporary file.
enum Received {
    Memory(bytes::Bytes),
    File(tempfile::NamedTempFile),
}

impl Received {
    /// Checks the bytes against their digest and variants (off the async threads).
    async fn verify(&self, sha256: &str, layout: BlobLayout) -> ApiResult<()> {
        let sha = sha256.to_owned();
        let checked = match self {
            Self::Memory(bytes) => {
                let bytes = bytes.clone();
                tokio::task::spawn_blocking(move || pack::verify(&bytes, &sha, layout)).await
            }
            Self::File(tmp) => {
                let path = tmp.path().to_path_buf();
                tokio::task::spawn_blocking(move || pack::verify_file(&path, &sha, layout)).await
            }
        };
        checked
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("checking a blob: {e}")))?
            .map_err(|problem| {
                ApiError::bad_request(
                    "blob_mismatch",
                    format!("the blob was not stored: {problem}"),
                )
            })
    }

    fn body(&self) -> Body {
        match self {
            Self::Memory(bytes) => Body::Bytes(bytes.clone()),
            Self::File(tmp) => Body::File(tmp.path().to_path_buf()),
        }
    }
}

/// Receives a blob's body of at most `total` bytes.
async fn received(body: HttpBody, total: u64) -> ApiResult<Received> {
    if total > IN_MEMORY {
        return received_to_file(body, total).await.map(Received::File);
    }
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| crate::error::body_error(&e, e.to_string()))?;
        if (bytes.len() + chunk.len()) as u64 > total {
            return Err(ApiError::bad_request(
                "wrong_length",
                format!("the body is longer than its layout's {total} bytes"),
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Received::Memory(bytes.into()))
}

async fn received_to_file(body: HttpBody, total: u64) -> ApiResult<tempfile::NamedTempFile> {
    let failed = |what: &str, e: std::io::Error| ApiError::Internal(anyhow::anyhow!("{what}: {e}"));
    let tmp = tempfile::NamedTempFile::new().map_err(|e| failed("a temporary file", e))?;
    let mut file =
        tokio::fs::File::from_std(tmp.reopen().map_err(|e| failed("a temporary file", e))?);
    let mut stream = body.into_data_stream();
    let mut received: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| crate::error::body_error(&e, e.to_string()))?;
        received += chunk.len() as u64;
        if received > total {
            return Err(ApiError::bad_request(
                "wrong_length",
                format!("the body is longer than its layout's {total} bytes"),
            ));
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| failed("writing a blob", e))?;
    }
    file.flush()
        .await
        .map_err(|e| failed("writing a blob", e))?;
    Ok(tmp)
}

/// Whether a blob sent with `layout` is held already as `recorded` (then it is not stored: a
/// recorded blob is never stored again, deployments read it as recorded); one recorded with
/// other variants is refused.
fn kept_already(recorded: Option<&BlobRow>, sha256: &str, layout: BlobLayout) -> ApiResult<bool> {
    match recorded {
        Some(row) if *row == row_of(layout, None) => Ok(true),
        Some(_) => Err(ApiError::conflict(
            "stored_otherwise",
            format!("the blob {sha256} is stored already, with other variants; use the stored one"),
        )),
        None => Ok(false),
    }
}

pub(crate) fn row_of(layout: BlobLayout, pack: Option<InPack>) -> BlobRow {
    BlobRow {
        size: layout.size,
        br: layout.br,
        gzip: layout.gzip,
        pack,
    }
}

fn total(row: &BlobRow) -> Option<u64> {
    BlobLayout {
        size: row.size,
        br: row.br,
        gzip: row.gzip,
    }
    .total()
}

impl App {
    /// The handshake: claims every digest for `dep` (so no sweep takes them while it uploads)
    /// and answers which the project holds.
    pub async fn check_blobs(
        &self,
        dep: &DeploymentRow,
        check: BlobCheck,
    ) -> ApiResult<BlobCheckAnswer> {
        let no_sweep = self.sweeping.read().await;
        let (answer, _) = self.claim_during(&no_sweep, dep, check).await?;
        Ok(answer)
    }

    /// [`App::check_blobs`] for a caller holding sweeps off, with the records of the blobs the
    /// project holds.
    pub(crate) async fn claim_during(
        &self,
        _no_sweep: &NoSweep<'_>,
        dep: &DeploymentRow,
        check: BlobCheck,
    ) -> ApiResult<(BlobCheckAnswer, HashMap<String, BlobRow>)> {
        let sizes = wanted_sizes(&check)?;
        let claimed = self
            .store
            .claim_blobs(&dep.id, dep.project_id, sizes.keys().cloned().collect())
            .await?;
        let mut answer = BlobCheckAnswer::default();
        for (sha, row) in &claimed.present {
            if sizes.get(sha) != Some(&row.size) {
                return Err(ApiError::bad_request(
                    "wrong_size",
                    format!(
                        "the blob {sha} is stored with {} bytes, not as many as sent",
                        row.size
                    ),
                ));
            }
            if !check.missing_only {
                let parts = BlobParts {
                    br: row.br,
                    gzip: row.gzip,
                    pack: row.pack.clone(),
                };
                answer.present.insert(sha.clone(), parts);
            }
        }
        let direct = dep.source_kind == PREBUILT;
        answer.missing = futures_util::stream::iter(claimed.missing)
            .map(|sha| async move {
                let upload = if direct {
                    self.storage
                        .presign_put(&layout::blob(&dep.project, &sha), DIRECT_UPLOAD_VALID)
                        .await
                        .map_err(|e| ApiError::StorageUnavailable(format!("presigning: {e}")))?
                } else {
                    None
                };
                ApiResult::Ok(MissingBlob {
                    sha256: sha,
                    upload,
                })
            })
            .buffered(LOOKUPS_AT_ONCE)
            .try_collect()
            .await?;
        Ok((answer, claimed.present))
    }

    /// Packs of small blobs an upload is about to store, each claimed for the deployment first;
    /// for a prebuilt deploy, a URL straight to storage for each.
    pub async fn pack_uploads(
        &self,
        dep: &DeploymentRow,
        request: PackRequest,
    ) -> ApiResult<PackUploads> {
        if request.packs.len() > 64 || request.packs.iter().any(|p| !is_sha256(&p.sha256)) {
            return Err(ApiError::bad_request(
                "invalid_digest",
                "ask for at most 64 packs at once, each named by the lower-case hex SHA-256 of its bytes",
            ));
        }
        {
            let _no_sweep = self.sweeping.read().await;
            let names = request.packs.iter().map(|p| p.sha256.clone()).collect();
            self.store
                .claim_blobs(&dep.id, dep.project_id, names)
                .await?;
        }
        let mut uploads = Vec::with_capacity(request.packs.len());
        if dep.source_kind != PREBUILT {
            // A builder stores its packs itself: they are claimed, nothing more.
            return Ok(PackUploads { uploads });
        }
        for pack in &request.packs {
            let key = layout::blob(&dep.project, &pack.sha256);
            let put = self
                .storage
                .presign_put(&key, DIRECT_UPLOAD_VALID)
                .await
                .map_err(|e| ApiError::StorageUnavailable(format!("presigning: {e}")))?
                .ok_or_else(|| {
                    ApiError::conflict(
                        "no_direct_uploads",
                        "this server's storage takes no uploads straight from clients; send each blob through the API",
                    )
                })?;
            uploads.push(put);
        }
        Ok(PackUploads { uploads })
    }

    /// A blob sent through the server: written to a temporary file as it comes, checked against
    /// its digest and layout, then stored and recorded.
    pub async fn receive_blob(
        &self,
        dep: &DeploymentRow,
        sha256: &str,
        layout: BlobLayout,
        body: HttpBody,
    ) -> ApiResult<()> {
        if !is_sha256(sha256) {
            return Err(ApiError::NotFound(format!(
                "{sha256:.80} is not a blob name (a lower-case hex SHA-256)"
            )));
        }
        let total = layout
            .total()
            .filter(|total| *total <= self.max_upload_bytes)
            .ok_or_else(|| {
                ApiError::PayloadTooLarge(format!(
                    "a blob may have at most {} bytes",
                    self.max_upload_bytes
                ))
            })?;
        {
            let _no_sweep = self.sweeping.read().await;
            self.store
                .claim_blobs(&dep.id, dep.project_id, vec![sha256.to_owned()])
                .await?;
        }
        let blob = received(body, total).await?;
        blob.verify(sha256, layout).await?;
        self.keep_blob(dep, sha256, layout, blob.body()).await
    }

    /// Stores and records a blob received and checked, unless the project holds it already.
    /// `dep` claimed it.
    async fn keep_blob(
        &self,
        dep: &DeploymentRow,
        sha256: &str,
        layout: BlobLayout,
        body: Body,
    ) -> ApiResult<()> {
        let no_sweep = self.sweeping.read().await;
        let known = self
            .store
            .known_blobs(dep.project_id, vec![sha256.to_owned()])
            .await?;
        if kept_already(known.get(sha256), sha256, layout)? {
            return Ok(());
        }
        let project = (dep.project_id, &dep.project);
        self.store_blob_during(&no_sweep, project, sha256, layout, body)
            .await
    }

    /// Stores and records a blob the project does not hold, for a caller holding sweeps off.
    pub(crate) async fn store_blob_during(
        &self,
        _no_sweep: &NoSweep<'_>,
        (project_id, project): (i64, &ProjectName),
        sha256: &str,
        layout: BlobLayout,
        body: Body,
    ) -> ApiResult<()> {
        self.storage
            .put(&layout::blob(project, sha256), body, &ObjectMeta::default())
            .await
            .map_err(|e| ApiError::StorageUnavailable(format!("storing a blob: {e}")))?;
        self.store
            .record_blobs(project_id, vec![(sha256.to_owned(), row_of(layout, None))])
            .await?;
        let bytes = layout.total();
        tracing::info!(%project, blob = sha256, bytes, "received a blob through the API");
        Ok(())
    }

    /// Blobs an uploader says it stored straight into storage: each is looked up and recorded
    /// when there with the size its layout says; the answer names those that are not.
    pub async fn blobs_stored(
        &self,
        dep: &DeploymentRow,
        blobs: Vec<StoredBlob>,
    ) -> ApiResult<Vec<String>> {
        let named = |b: &StoredBlob| {
            is_sha256(&b.sha256) && b.pack.as_ref().is_none_or(|p| is_sha256(&p.sha256))
        };
        if blobs.len() > MAX_FILES || !blobs.iter().all(named) {
            return Err(ApiError::bad_request(
                "invalid_digest",
                format!("send at most {MAX_FILES} blobs, each named by its lower-case hex SHA-256"),
            ));
        }
        {
            let _no_sweep = self.sweeping.read().await;
            let digests = blobs.iter().map(|b| b.sha256.clone()).collect();
            self.store
                .claim_blobs(&dep.id, dep.project_id, digests)
                .await?;
        }
        let wanted = blobs
            .into_iter()
            .map(|b| {
                let row = row_of(b.layout(), b.pack.clone());
                (b.sha256, row)
            })
            .collect();
        let _no_abandon = self.sweeping.read().await;
        let (found, absent) = self.look_up(dep, wanted).await?;
        self.store.record_blobs(dep.project_id, found).await?;
        Ok(absent)
    }

    /// Which of `wanted` are in storage as their rows say: an object of their own of the
    /// size of their layout, or a pack that reaches at least to their end.
    async fn look_up(
        &self,
        dep: &DeploymentRow,
        wanted: Vec<(String, BlobRow)>,
    ) -> ApiResult<(Vec<(String, BlobRow)>, Vec<String>)> {
        let mut objects: BTreeMap<String, Option<u64>> = BTreeMap::new();
        for (sha, row) in &wanted {
            let name = row.pack.as_ref().map_or(sha, |p| &p.sha256);
            objects.insert(name.clone(), None);
        }
        let sizes: Vec<(String, Option<u64>)> = futures_util::stream::iter(objects.into_keys())
            .map(|name| async move {
                let size = self
                    .storage
                    .size(&layout::blob(&dep.project, &name))
                    .await
                    .map_err(|e| ApiError::StorageUnavailable(format!("looking up a blob: {e}")))?;
                ApiResult::Ok((name, size))
            })
            .buffer_unordered(LOOKUPS_AT_ONCE)
            .try_collect()
            .await?;
        let sizes: BTreeMap<String, Option<u64>> = sizes.into_iter().collect();
        let mut found = Vec::new();
        let mut absent = Vec::new();
        for (sha, row) in wanted {
            let there = match (&row.pack, total(&row)) {
                (Some(pack), Some(total)) => {
                    let end = pack.offset.checked_add(total);
                    sizes
                        .get(&pack.sha256)
                        .copied()
                        .flatten()
                        .zip(end)
                        .is_some_and(|(size, end)| size >= end)
                }
                (None, Some(total)) => sizes.get(&sha).copied().flatten() == Some(total),
                (_, None) => false,
            };
            if there {
                found.push((sha, row));
            } else {
                absent.push(sha);
            }
        }
        Ok((found, absent))
    }

    /// An upload that failed gives back what only it stored (a disk it filled is free again
    /// for the failure to be recorded); how many blobs went. Run while no handshake claims and
    /// no upload is recorded, so nothing another deployment was told is stored goes.
    pub async fn abandon_blobs(&self, dep: &DeploymentRow) -> ApiResult<usize> {
        let _alone = self.sweeping.write().await;
        let doomed = self.store.blobs_only_of(&dep.id, dep.project_id).await?;
        let removed = futures_util::stream::iter(doomed)
            .map(|sha| async move {
                let key = layout::blob(&dep.project, &sha);
                self.storage.delete(&key).await.is_ok()
            })
            .buffer_unordered(LOOKUPS_AT_ONCE)
            .filter(|gone| std::future::ready(*gone))
            .count()
            .await;
        Ok(removed)
    }

    /// A prebuilt deployment's manifest, from its uploader: checked to describe `dep` by blobs,
    /// completed with where each blob's variants are as recorded, then kept until its uploader
    /// says it is ready.
    pub async fn receive_manifest(&self, dep: &DeploymentRow, bytes: &[u8]) -> ApiResult<()> {
        let manifest: Manifest = serde_json::from_slice(bytes).map_err(|e| {
            ApiError::bad_request(
                "invalid_manifest",
                format!("the manifest is not readable: {e}"),
            )
        })?;
        if manifest.project != dep.project || manifest.deployment != dep.id {
            return Err(ApiError::bad_request(
                "invalid_manifest",
                "the manifest describes another deployment",
            ));
        }
        check_shape(&manifest)?;
        self.accept_manifest(dep, manifest).await
    }

    /// A prebuilt deployment's manifest, of the right shape and naming `dep`: completed from
    /// the records, then kept until `ready`.
    async fn accept_manifest(&self, dep: &DeploymentRow, mut manifest: Manifest) -> ApiResult<()> {
        if let Err(problem) = self.complete_from_records(dep, &mut manifest).await {
            return Err(ApiError::bad_request("blobs_missing", problem));
        }
        self.keep_manifest(dep, &manifest)?;
        // A deployment that ended meanwhile (failed, canceled) let go of what it kept before
        // this was kept: it is let go of now, or it would be held until the server stops.
        let now = self.store.deployment(&dep.id).await?;
        if now.is_none_or(|row| row.status != scalemesh_core::DeploymentStatus::Uploading) {
            scalemesh_core::sync::lock(&self.checked_manifests).remove(&dep.id);
            return Err(ApiError::conflict(
                "deployment_finished",
                format!(
                    "deployment {} ended while its manifest was sent; its job token is void",
                    dep.id
                ),
            ));
        }
        Ok(())
    }

    /// Keeps the completed manifest of `dep` until `ready` publishes it.
    pub(crate) fn keep_manifest(&self, dep: &DeploymentRow, manifest: &Manifest) -> ApiResult<()> {
        // Kept here until `ready`, which publishes it: a prebuilt deployment does not outlive a
        // restart of the server (it fails, and the deploy is run again), so it needs no pending
        // copy in storage.
        let bytes = bytes::Bytes::from(
            serde_json::to_vec(manifest).map_err(|e| ApiError::Internal(e.into()))?,
        );
        scalemesh_core::sync::lock(&self.checked_manifests).insert(dep.id.clone(), bytes);
        Ok(())
    }

    /// Fills in where the variants of each blob `manifest` names are, as recorded (what an
    /// uploader said of them is not taken); every blob must be recorded for the project with
    /// the file's size. `dep` names exactly the manifest's blobs from then on. What is wrong,
    /// if anything.
    async fn complete_from_records(
        &self,
        dep: &DeploymentRow,
        manifest: &mut Manifest,
    ) -> Result<(), String> {
        let mut digests = BTreeSet::new();
        for entry in manifest.files.values() {
            if !is_sha256(&entry.sha256) {
                return Err("a file of the manifest has no usable digest".into());
            }
            digests.insert(entry.sha256.clone());
        }
        let digests: Vec<String> = digests.into_iter().collect();
        // No sweep between finding the blobs and naming them for `dep`.
        let _no_sweep = self.sweeping.read().await;
        let known = self
            .store
            .known_blobs(dep.project_id, digests.clone())
            .await
            .map_err(|e| e.to_string())?;
        fill_in(manifest, &known)?;
        self.store
            .set_deployment_blobs(&dep.id, digests)
            .await
            .map_err(|e| e.to_string())
    }

    /// Whether every blob `manifest` names is stored with the variants it says; those stored
    /// but not recorded yet (sent straight to storage) are recorded, and `dep` names exactly
    /// the manifest's blobs from then on. What is wrong, if anything.
    pub(crate) async fn verify_blobs(
        &self,
        dep: &DeploymentRow,
        manifest: &Manifest,
    ) -> Result<(), String> {
        if manifest.layout != FileLayout::Blobs {
            return Ok(());
        }
        let mut wanted: BTreeMap<&str, BlobRow> = BTreeMap::new();
        for entry in manifest.files.values() {
            let pack_named = entry.pack.as_ref().is_none_or(|p| is_sha256(&p.sha256));
            if !is_sha256(&entry.sha256) || !pack_named {
                return Err("a file of the manifest has no usable digest".into());
            }
            let layout = BlobLayout {
                size: entry.size,
                br: entry.br,
                gzip: entry.gzip,
            };
            let row = row_of(layout, entry.pack.clone());
            if wanted
                .insert(&entry.sha256, row.clone())
                .is_some_and(|r| r != row)
            {
                return Err(format!(
                    "the blob {} is listed with two layouts",
                    entry.sha256
                ));
            }
        }
        let digests: Vec<String> = wanted.keys().map(|s| (*s).to_owned()).collect();
        let known = self
            .store
            .known_blobs(dep.project_id, digests.clone())
            .await
            .map_err(|e| e.to_string())?;
        let mut unknown = Vec::new();
        for (sha, wanted_row) in &wanted {
            match known.get(*sha) {
                Some(row) if row == wanted_row => {}
                Some(_) => {
                    return Err(format!(
                        "the blob {sha} is stored with other variants than the manifest says; deploy again"
                    ));
                }
                None => unknown.push(((*sha).to_owned(), wanted_row.clone())),
            }
        }
        if !unknown.is_empty() {
            let _no_abandon = self.sweeping.read().await;
            let (found, absent) = self
                .look_up(dep, unknown)
                .await
                .map_err(|e| e.to_string())?;
            if let Some(sha) = absent.first() {
                return Err(format!(
                    "{} of its files are not stored (the first: blob {sha})",
                    absent.len()
                ));
            }
            self.store
                .record_blobs(dep.project_id, found)
                .await
                .map_err(|e| e.to_string())?;
        }
        let named: HashSet<String> = digests.into_iter().collect();
        self.store
            .set_deployment_blobs(&dep.id, named.into_iter().collect())
            .await
            .map_err(|e| e.to_string())
    }
}

/// The digests a handshake names, with their sizes; refused when there are too many or one is
/// not a digest.
pub(crate) fn wanted_sizes(check: &BlobCheck) -> ApiResult<BTreeMap<String, u64>> {
    if check.blobs.len() > MAX_FILES {
        return Err(ApiError::bad_request(
            "too_many_files",
            format!("a deployment has at most {MAX_FILES} files"),
        ));
    }
    let mut sizes = BTreeMap::new();
    for want in &check.blobs {
        if !is_sha256(&want.sha256) {
            return Err(ApiError::bad_request(
                "invalid_digest",
                "each blob is named by the lower-case hex SHA-256 of its bytes (64 digits)",
            ));
        }
        sizes.insert(want.sha256.clone(), want.size);
    }
    Ok(sizes)
}

/// Refuses a manifest sent to the server that does not store its files by content, lists too
/// many files, names a path no site has, or has routing rules no rules file could give.
pub(crate) fn check_shape(manifest: &Manifest) -> ApiResult<()> {
    if manifest.layout != FileLayout::Blobs {
        return Err(ApiError::bad_request(
            "invalid_manifest",
            "a manifest sent to the server stores its files by content (\"layout\": \"blobs\")",
        ));
    }
    if manifest.files.len() > MAX_FILES {
        return Err(ApiError::bad_request(
            "too_many_files",
            format!("a deployment has at most {MAX_FILES} files"),
        ));
    }
    if let Some(path) = manifest.files.keys().find(|p| !is_site_path(p)) {
        return Err(ApiError::bad_request(
            "invalid_manifest",
            format!("{path:.200?} is not a usable file name"),
        ));
    }
    manifest.routing.validate().map_err(|problem| {
        ApiError::bad_request(
            "invalid_routing",
            format!("{problem:.300}; fix the site's _redirects, _headers or scalemesh.json"),
        )
    })
}

/// Fills in where the variants of each blob of `manifest` are, from `known` records: every blob
/// must be there, with its file's size. What is wrong, if anything.
pub(crate) fn fill_in(
    manifest: &mut Manifest,
    known: &HashMap<String, BlobRow>,
) -> Result<(), String> {
    let mut absent = manifest
        .files
        .values()
        .map(|e| &e.sha256)
        .filter(|sha| !known.contains_key(*sha))
        .collect::<BTreeSet<_>>();
    if let Some(sha) = absent.pop_first() {
        return Err(format!(
            "{} of its files are not stored (the first: blob {sha}); send them first",
            absent.len() + 1
        ));
    }
    for entry in manifest.files.values_mut() {
        let Some(row) = known.get(&entry.sha256) else {
            continue;
        };
        if row.size != entry.size {
            return Err(format!(
                "the blob {} is stored with {} bytes, not {}",
                entry.sha256, row.size, entry.size
            ));
        }
        entry.br = row.br;
        entry.gzip = row.gzip;
        entry.pack = row.pack.clone();
    }
    Ok(())
}
