//! Storing a build's output: by content through [`scalemesh_core::upload`], each missing blob put
//! straight into storage, the manifest left pending for the server to publish. Which blobs are
//! missing the server says (one handshake); with no server (tools, tests) every blob is sent.
//! [`in_folders`] writes a deployment as builders did before blobs, so the layout proxies still
//! serve keeps being tested.

use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt};
use scalemesh_core::layout::{self, Encoding, FileLayout, Manifest, ManifestEntry};
use scalemesh_core::rules::Routing;
use scalemesh_core::storage::{Body, ObjectMeta, Storage};
use scalemesh_core::upload::pack::{self, BlobBody, Packed};
use scalemesh_core::upload::{BlobSink, Progress};
use scalemesh_core::wire::{BlobCheck, BlobCheckAnswer, MissingBlob, PresignedPut};
use scalemesh_core::{DeploymentId, ProjectName, content_type};

pub use scalemesh_core::upload::{OutputFile, UploadLimits, collect, take_routing};

use crate::report::Api;

const REVALIDATE: &str = "public, max-age=0, must-revalidate";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

fn manifest_meta() -> ObjectMeta {
    ObjectMeta {
        content_type: Some("application/json".into()),
        cache_control: Some("no-cache".into()),
    }
}

/// Blobs into storage, the manifest as the pending one; the server asked which are missing.
pub struct StorageSink<'a> {
    pub storage: Arc<dyn Storage>,
    pub project: &'a ProjectName,
    pub deployment: &'a DeploymentId,
    /// The server, with the job's token; `None` sends every blob.
    pub api: Option<&'a Api>,
}

#[async_trait]
impl BlobSink for StorageSink<'_> {
    async fn check(&self, check: &BlobCheck) -> anyhow::Result<BlobCheckAnswer> {
        match self.api {
            Some(api) => api.check_blobs(check).await.map_err(anyhow::Error::from),
            None => Ok(BlobCheckAnswer {
                present: Default::default(),
                missing: check
                    .blobs
                    .iter()
                    .map(|b| MissingBlob {
                        sha256: b.sha256.clone(),
                        upload: None,
                    })
                    .collect(),
            }),
        }
    }

    async fn put(&self, blob: &Packed, _direct: Option<&PresignedPut>) -> anyhow::Result<()> {
        let body = match blob.body() {
            BlobBody::Bytes(bytes) => Body::Bytes(bytes),
            BlobBody::File { path, .. } => Body::File(path),
        };
        self.storage
            .put(
                &layout::blob(self.project, &blob.sha256),
                body,
                &ObjectMeta::default(),
            )
            .await?;
        Ok(())
    }

    fn packs(&self, _direct: bool) -> bool {
        true
    }

    async fn put_pack(&self, pack: &scalemesh_core::upload::Pack) -> anyhow::Result<()> {
        if let Some(api) = self.api {
            let request = scalemesh_core::wire::PackRequest {
                packs: vec![scalemesh_core::wire::BlobWant {
                    sha256: pack.sha256.clone(),
                    size: pack.body.len() as u64,
                }],
            };
            api.claim_packs(&request).await?;
        }
        self.storage
            .put(
                &layout::blob(self.project, &pack.sha256),
                Body::Bytes(pack.body.clone()),
                &ObjectMeta::default(),
            )
            .await?;
        Ok(())
    }

    async fn put_manifest(&self, manifest: &Manifest) -> anyhow::Result<()> {
        let body = serde_json::to_vec(manifest)?;
        self.storage
            .put(
                &layout::pending_manifest(self.project, self.deployment),
                Body::Bytes(body.into()),
                &manifest_meta(),
            )
            .await?;
        Ok(())
    }
}

/// Removes what an upload of `deployment` left that only it uses (its pending manifest, and
/// the files of a deployment stored in folders); how many objects went. Blobs it sent stay
/// for other deployments; the server's sweep removes those nobody names.
pub async fn remove(
    storage: &dyn Storage,
    project: &ProjectName,
    deployment: &DeploymentId,
) -> usize {
    let prefixes = [
        format!("__output/{project}/{deployment}/"),
        format!("__output/{project}/{deployment}.br/"),
        format!("__output/{project}/{deployment}.gz/"),
    ];
    let mut keys = vec![layout::pending_manifest(project, deployment)];
    for prefix in prefixes {
        keys.extend(storage.list(&prefix).await.unwrap_or_default());
    }
    let mut removed: usize = 0;
    for key in keys {
        if storage.delete(&key).await.is_ok() {
            removed += 1;
        }
    }
    // The pending manifest is counted whether or not it was there.
    removed.saturating_sub(1)
}

/// Publishes the pending manifest of a deployment, as the server does when it becomes ready: for
/// tools and tests that upload a site with no server.
pub async fn publish(
    storage: &dyn Storage,
    project: &ProjectName,
    deployment: &DeploymentId,
) -> anyhow::Result<()> {
    let bytes = storage
        .get_bytes(&layout::pending_manifest(project, deployment))
        .await?;
    storage
        .put(
            &layout::manifest(project, deployment),
            Body::Bytes(bytes),
            &manifest_meta(),
        )
        .await
        .context("publishing the manifest")
}

/// Uploads `files` by content with no server to ask (every blob is sent), then the pending
/// manifest, calling `progress(done, total)` as blobs are sent.
pub async fn upload(
    storage: Arc<dyn Storage>,
    project: &ProjectName,
    deployment: &DeploymentId,
    files: Vec<OutputFile>,
    routing: Routing,
    progress: impl Fn(u64, u64) + Send + Sync,
) -> anyhow::Result<Manifest> {
    let sink = StorageSink {
        storage,
        project,
        deployment,
        api: None,
    };
    let progress = |p: Progress| progress(p.files, p.files_total);
    let uploaded =
        scalemesh_core::upload::upload(&sink, project, deployment, files, routing, &progress)
            .await?;
    Ok(uploaded.manifest)
}

/// Writes a deployment as builders did before blobs: each file (and its variants in `.br/` and
/// `.gz/`) under the deployment's own folder, then the pending manifest without a layout.
pub async fn in_folders(
    storage: Arc<dyn Storage>,
    project: &ProjectName,
    deployment: &DeploymentId,
    files: Vec<OutputFile>,
    routing: Routing,
) -> anyhow::Result<Manifest> {
    let entries: Vec<(String, ManifestEntry)> = futures_util::stream::iter(files)
        .map(|file| {
            let storage = storage.clone();
            async move {
                let content_type = content_type::for_path(&file.path);
                let compress = pack::compressible(&content_type, file.size);
                let source = file.source.clone();
                let packed =
                    tokio::task::spawn_blocking(move || pack::pack(&source, compress, None))
                        .await
                        .context("packing task failed")??;
                let immutable = scalemesh_core::fingerprint::is_fingerprinted(&file.path);
                let meta = ObjectMeta {
                    content_type: Some(content_type.clone()),
                    cache_control: Some(if immutable { IMMUTABLE } else { REVALIDATE }.to_owned()),
                };
                for (encoding, bytes) in &packed.variants {
                    let key = layout::output_variant(project, deployment, *encoding, &file.path);
                    storage.put(&key, Body::Bytes(bytes.clone()), &meta).await?;
                }
                let body = match &packed.bytes {
                    Some(bytes) => Body::Bytes(bytes.clone()),
                    None => Body::File(file.source.clone()),
                };
                let key = layout::output_file(project, deployment, &file.path);
                storage.put(&key, body, &meta).await?;
                let variant = |e: Encoding| {
                    packed
                        .variants
                        .iter()
                        .find(|(v, _)| *v == e)
                        .map(|(_, b)| b.len() as u64)
                };
                let entry = ManifestEntry {
                    size: file.size,
                    content_type,
                    sha256: packed.sha256.clone(),
                    immutable,
                    br: variant(Encoding::Brotli),
                    gzip: variant(Encoding::Gzip),
                    pack: None,
                };
                anyhow::Ok((file.path, entry))
            }
        })
        .buffer_unordered(16)
        .try_collect()
        .await?;
    let manifest = Manifest {
        project: project.clone(),
        deployment: deployment.clone(),
        created_at: time::OffsetDateTime::now_utc(),
        files: entries.into_iter().collect(),
        routing,
        layout: FileLayout::Folders,
    };
    storage
        .put(
            &layout::pending_manifest(project, deployment),
            Body::Bytes(serde_json::to_vec(&manifest)?.into()),
            &manifest_meta(),
        )
        .await?;
    Ok(manifest)
}
