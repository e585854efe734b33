//! The manifest a deployment is served from. Its builder leaves a pending one; the server checks
//! that it describes the deployment, publishes it as the deployment becomes ready and takes it
//! back if it does not. Promote and rollback check the published one before production points
//! at a deployment: both paths check a manifest the same way, in [`App::checked_manifest`].

use bytes::Bytes;
use scalemesh_core::DeploymentStatus;
use scalemesh_core::layout::{self, Manifest};
use scalemesh_core::storage::{Body, ObjectMeta, StorageError};

use crate::app::App;
use crate::db::DeploymentRow;
use crate::error::{ApiError, ApiResult};

/// Why a deployment cannot be served from the manifest at a key.
#[derive(Debug, thiserror::Error)]
enum ManifestError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Unreadable, or another deployment's.
    #[error("{0}")]
    Wrong(String),
}

impl App {
    /// The manifest at `key`, read and checked to describe `dep`: its bytes, and as read.
    async fn checked_manifest(
        &self,
        dep: &DeploymentRow,
        key: &str,
    ) -> Result<(Bytes, Manifest), ManifestError> {
        let bytes = self.storage.get_bytes(key).await?;
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| ManifestError::Wrong(format!("{key} is unreadable: {e}")))?;
        if manifest.project != dep.project || manifest.deployment != dep.id {
            return Err(ManifestError::Wrong(format!(
                "{key} describes another deployment"
            )));
        }
        Ok((bytes, manifest))
    }

    /// Whether the published manifest of `dep` describes it; what is wrong if not.
    async fn check_published_manifest(&self, dep: &DeploymentRow) -> Result<(), String> {
        self.checked_manifest(dep, &layout::manifest(&dep.project, &dep.id))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// The manifest the builder left for `dep`: the pending one, or (from a builder of an earlier
    /// version) the published one already, as `None`.
    pub(crate) async fn pending_manifest(
        &self,
        dep: &DeploymentRow,
    ) -> Result<Option<Bytes>, String> {
        // A prebuilt manifest the server checked as it came, and stored.
        let checked = scalemesh_core::sync::lock(&self.checked_manifests).remove(&dep.id);
        if let Some(bytes) = checked {
            return Ok(Some(bytes));
        }
        let key = layout::pending_manifest(&dep.project, &dep.id);
        match self.checked_manifest(dep, &key).await {
            Ok((bytes, manifest)) => {
                self.verify_blobs(dep, &manifest).await?;
                Ok(Some(bytes))
            }
            Err(ManifestError::Storage(e)) if e.is_not_found() => {
                self.check_published_manifest(dep).await.map(|()| None)
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// Refuses to point production at `dep` unless it is ready and its published manifest
    /// describes it.
    pub(crate) async fn check_servable(&self, dep: &DeploymentRow) -> ApiResult<()> {
        if dep.status != DeploymentStatus::Ready {
            return Err(ApiError::conflict(
                "not_ready",
                format!(
                    "deployment {} is {}: only a ready deployment can serve production",
                    dep.id, dep.status
                ),
            ));
        }
        if let Err(problem) = self.check_published_manifest(dep).await {
            return Err(ApiError::conflict(
                "files_missing",
                format!("deployment {} cannot be served: {problem}", dep.id),
            ));
        }
        Ok(())
    }

    /// Writes the manifest proxies serve `dep` from; whether it wrote one. A storage failure is
    /// a 503, which the builder retries.
    pub(crate) async fn publish_manifest(
        &self,
        dep: &DeploymentRow,
        manifest: Option<Bytes>,
    ) -> ApiResult<bool> {
        let Some(bytes) = manifest else {
            return Ok(false);
        };
        let meta = ObjectMeta {
            content_type: Some("application/json".into()),
            cache_control: Some("no-cache".into()),
        };
        self.storage
            .put(
                &layout::manifest(&dep.project, &dep.id),
                Body::Bytes(bytes),
                &meta,
            )
            .await
            .map_err(|e| ApiError::StorageUnavailable(format!("publishing a manifest: {e}")))?;
        Ok(true)
    }

    /// Takes back the served manifest of a deployment that did not become ready, so its URL
    /// stops answering.
    pub(crate) async fn withdraw_manifest(&self, dep: &DeploymentRow) {
        let key = layout::manifest(&dep.project, &dep.id);
        if let Err(e) = self.storage.delete(&key).await {
            tracing::error!(key, error = %e, "could not withdraw the manifest of a deployment that is not ready");
        }
        if let Some(proxy) = &self.proxy {
            proxy.forget_deployment(&dep.project, &dep.id);
        }
    }
}
