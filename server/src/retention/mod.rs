//! What storage lets go of, and when: a deployment removed by hand (`DELETE
//! /api/v1/deployments/{id}`) or by its project's retention policy, and the sweep, which runs at
//! start and then every `--sweep-interval`: it applies each project's policy, lets go of the
//! blobs of failed builds, and of prebuilt deploys that failed more than [`GRACE`] ago (one cut
//! off can be resumed until then), then deletes blobs no deployment names and what failed uploads left in
//! storage. A blob a handshake has claimed is never deleted: the handshake and the sweep of a
//! project never run at once.

use std::collections::HashSet;
use std::time::Duration;

use scalemesh_core::layout;
use scalemesh_core::retention::{self, Kept};
use scalemesh_core::wire::SweepReport;
use scalemesh_core::{DeploymentId, DeploymentStatus, ProjectName};

use crate::app::App;
use crate::db::{DeploymentRow, ProjectRow};
use crate::error::{ApiError, ApiResult};

/// How long blobs a failed or canceled prebuilt deploy had sent stay named by it (a build's
/// go at once: it is never resumed).
pub const GRACE: Duration = Duration::from_secs(3600);

type Swept = SweepReport;

fn add(total: &mut Swept, more: Swept) {
    total.deployments += more.deployments;
    total.blobs += more.blobs;
    total.files += more.files;
}

impl App {
    /// Removes a finished deployment that is not production: the database first (so nothing
    /// promotes it meanwhile), then its manifest, so its URL stops answering. What storage
    /// refuses is left to the sweep.
    pub async fn remove_deployment(&self, dep: &DeploymentRow) -> ApiResult<()> {
        if !dep.status.is_terminal() {
            return Err(ApiError::conflict(
                "not_finished",
                format!(
                    "deployment {} is {}; cancel it first (scalemesh cancel {})",
                    dep.id, dep.status, dep.id
                ),
            ));
        }
        let removed = {
            let _one_at_a_time = self.promotion.lock().await;
            self.store.delete_deployment(&dep.id).await?
        };
        if !removed {
            if self.store.deployment(&dep.id).await?.is_none() {
                return Err(ApiError::NotFound(format!(
                    "deployment {} does not exist",
                    dep.id
                )));
            }
            return Err(ApiError::conflict(
                "production",
                format!(
                    "deployment {} serves production; promote another deployment (or roll back) before removing it",
                    dep.id
                ),
            ));
        }
        self.forget_manifests(&dep.project, &dep.id).await;
        Ok(())
    }

    async fn forget_manifests(&self, project: &ProjectName, id: &DeploymentId) {
        for key in [
            layout::manifest(project, id),
            layout::pending_manifest(project, id),
        ] {
            if let Err(e) = self.storage.delete(&key).await {
                tracing::warn!(key, error = %e, "could not delete a removed deployment's manifest; the sweep will");
            }
        }
        if let Some(proxy) = &self.proxy {
            proxy.forget_deployment(project, id);
        }
    }

    /// Sweeps every project.
    pub async fn sweep(&self) -> anyhow::Result<Swept> {
        let mut swept = Swept::default();
        for (id, name) in self.store.project_ids().await? {
            let Some(project) = self.store.project(&ProjectName::parse(&name)?).await? else {
                continue;
            };
            if project.id != id {
                continue;
            }
            match self.sweep_project(&project).await {
                Ok(done) => add(&mut swept, done),
                Err(e) => {
                    tracing::warn!(project = %project.name, error = format!("{e:#}"), "sweeping a project failed");
                }
            }
        }
        if swept != Swept::default() {
            tracing::info!(
                deployments = swept.deployments,
                blobs = swept.blobs,
                files = swept.files,
                "swept storage"
            );
        }
        Ok(swept)
    }

    async fn sweep_project(&self, project: &ProjectRow) -> anyhow::Result<Swept> {
        let mut swept = Swept {
            deployments: self.apply_retention(project).await?,
            ..Swept::default()
        };
        let before = time::OffsetDateTime::now_utc() - GRACE;
        self.store
            .release_claims(project.id, crate::db::to_ms(before))
            .await?;
        swept.files = self.sweep_outputs(project, before).await?;
        let _no_handshake = self.sweeping.write().await;
        let mut doomed: HashSet<String> = self
            .store
            .take_unnamed_blobs(project.id)
            .await?
            .into_iter()
            .collect();
        let in_use = self.store.blobs_in_use(project.id).await?;
        // A blob no deployment names may still be the pack other blobs are read from.
        doomed.retain(|sha| !in_use.contains(sha));
        let prefix = layout::blob_prefix(&project.name);
        for key in self.storage.list(&prefix).await? {
            let sha = key.strip_prefix(&prefix).unwrap_or(&key);
            if !in_use.contains(sha) {
                doomed.insert(sha.to_owned());
            }
        }
        for sha in doomed {
            let key = layout::blob(&project.name, &sha);
            match self.storage.delete(&key).await {
                Ok(()) => swept.blobs += 1,
                Err(e) => tracing::warn!(key, error = %e, "could not delete an unnamed blob"),
            }
        }
        Ok(swept)
    }

    /// Removes the ready deployments the project's policy lets go of; how many.
    async fn apply_retention(&self, project: &ProjectRow) -> anyhow::Result<u64> {
        if project.retention.is_unset() {
            return Ok(0);
        }
        let deployments = self.store.deployments_of(project.id, u32::MAX).await?;
        let kept: Vec<Kept> = deployments
            .iter()
            .map(|d| Kept {
                id: d.id.clone(),
                created_at: d.created_at,
                ready: d.status == DeploymentStatus::Ready,
            })
            .collect();
        let history: Vec<DeploymentId> = self
            .store
            .recent_production(project.id, retention::HISTORY)
            .await?
            .iter()
            .filter_map(|id| DeploymentId::parse(id).ok())
            .collect();
        let doomed = retention::to_remove(
            project.retention,
            &kept,
            project.production_deployment.as_ref(),
            &history,
            time::OffsetDateTime::now_utc(),
        );
        let mut removed = 0;
        for dep in deployments.iter().filter(|d| doomed.contains(&d.id)) {
            match self.remove_deployment(dep).await {
                Ok(()) => {
                    removed += 1;
                    tracing::info!(project = %project.name, deployment = %dep.id, "removed by the project's retention policy");
                }
                Err(e) => {
                    tracing::info!(deployment = %dep.id, error = %e, "kept a deployment the retention policy let go")
                }
            }
        }
        Ok(removed)
    }

    /// Deletes what is under `__output/<project>/` for deployments that are gone, or that failed
    /// before `before`: manifests, and files of deployments stored in folders; how many.
    async fn sweep_outputs(
        &self,
        project: &ProjectRow,
        before: time::OffsetDateTime,
    ) -> anyhow::Result<u64> {
        let prefix = layout::project_prefix(&project.name);
        // Listed first: every deployment a key belongs to is in the rows read after.
        let keys = self.storage.list(&prefix).await?;
        let rows = self.store.deployments_of(project.id, u32::MAX).await?;
        let keep: HashSet<String> = rows
            .iter()
            .filter(|d| {
                !d.status.is_terminal()
                    || d.status == DeploymentStatus::Ready
                    || d.finished_at.is_none_or(|at| at > before)
            })
            .map(|d| d.id.to_string())
            .collect();
        let mut deleted = 0;
        for key in keys {
            let rest = key.strip_prefix(&prefix).unwrap_or(&key);
            let id = rest.split(['/', '.']).next().unwrap_or(rest);
            if keep.contains(id) {
                continue;
            }
            match self.storage.delete(&key).await {
                Ok(()) => deleted += 1,
                Err(e) => tracing::warn!(key, error = %e, "could not delete a left-over file"),
            }
        }
        Ok(deleted)
    }
}
