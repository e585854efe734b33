//! What happens to deployments: created, handed to the runner, moved along by builder reports,
//! canceled or failed, made live. Every status change is a compare-and-set in the database, and
//! is published to log followers after it is stored.

use std::path::Path;

use anyhow::Context;
use scalemesh_core::git::{GitRef, GitUrl};
use scalemesh_core::job::{BuildJob, JobSource};
use scalemesh_core::layout::{self, Manifest, Route};
use scalemesh_core::storage::{Body, ObjectMeta};
use scalemesh_core::wire::{BuilderReport, LogAck, LogFrame, NewLogLine};
use scalemesh_core::{DeploymentId, DeploymentStatus, Phase};
use time::OffsetDateTime;

use crate::App;
use crate::auth::{hash_token, new_job_token};
use crate::db::{
    AppendOutcome, DeploymentRow, NewDeployment, ProjectRow, Readied, Transition, TransitionOutcome,
};
use crate::error::{ApiError, ApiResult};

/// Where a new deployment's source comes from.
pub enum NewSource<'a> {
    Git {
        url: GitUrl,
        git_ref: Option<GitRef>,
    },
    /// A `.tar.gz` the client uploaded, saved in this temporary file.
    Archive(&'a Path),
}

impl App {
    /// Refuses a repository whose host is spelled as an address that is not public, or is
    /// `localhost` (the builder checks names again, after resolving them).
    pub fn check_git_host(&self, url: &GitUrl) -> ApiResult<()> {
        let refused = |message: String| {
            ApiError::bad_request("git_host_refused", message).on_field("git_url")
        };
        let parsed = url::Url::parse(url.as_str()).map_err(|e| refused(e.to_string()))?;
        let host = parsed
            .host()
            .ok_or_else(|| refused("the repository URL has no host".into()))?;
        scalemesh_core::netguard::check_host(&host, &self.allow_private_git_hosts)
            .map(|_| ())
            .map_err(|e| refused(e.to_string()))
    }

    /// Records a deployment started by user `by` and hands it to the runner; refused while `by`
    /// has as many builds waiting in the queue as one user may.
    pub async fn create_deployment(
        &self,
        project: &ProjectRow,
        source: NewSource<'_>,
        promote: bool,
        by: i64,
    ) -> ApiResult<DeploymentRow> {
        let id = DeploymentId::generate();
        if let NewSource::Git { url, .. } = &source {
            self.check_git_host(url)?;
        }
        if self.max_queued_per_user > 0 {
            let queued = self.store.queued_by(by).await?;
            if queued >= self.max_queued_per_user {
                return Err(ApiError::TooManyRequests {
                    message: format!(
                        "you have {queued} builds waiting to start, as many as one user may; wait for some to start, or cancel some (scalemesh deployments ls, scalemesh cancel)"
                    ),
                    retry_after: 30,
                });
            }
        }
        let (source_kind, git_url, git_ref) = match source {
            NewSource::Git { url, git_ref } => (
                "git",
                Some(url.as_str().to_owned()),
                git_ref.map(|r| r.to_string()),
            ),
            NewSource::Archive(path) => {
                // Stored before the deployment exists, so a builder always finds it.
                self.storage
                    .put(
                        &layout::source_archive(&id),
                        Body::File(path.to_path_buf()),
                        &ObjectMeta::default(),
                    )
                    .await
                    .map_err(|e| {
                        tracing::warn!(error = %e, "could not store an uploaded source");
                        ApiError::StorageUnavailable(format!(
                            "the uploaded source could not be stored, nothing was deployed; try again: {e}"
                        ))
                    })?;
                ("archive", None, None)
            }
        };
        let inserted = self
            .store
            .insert_deployment(NewDeployment {
                id: id.clone(),
                project_id: project.id,
                source_kind,
                git_url,
                git_ref,
                promote,
                created_by: by,
            })
            .await;
        let row = match inserted {
            Ok(row) => row,
            Err(e) => {
                if source_kind == "archive" {
                    let _ = self.storage.delete(&layout::source_archive(&id)).await;
                }
                if e.is_constraint_violation() {
                    // The project was deleted while this request ran.
                    return Err(ApiError::NotFound(format!(
                        "project {} does not exist",
                        project.name
                    )));
                }
                return Err(e.into());
            }
        };
        self.submit(&row).await;
        Ok(self.store.deployment(&row.id).await?.unwrap_or(row))
    }

    /// Hands a queued deployment to the runner with a fresh job token. Whatever keeps it from
    /// running fails the deployment at once, with the reason.
    pub async fn submit(&self, dep: &DeploymentRow) {
        let submitted = async {
            let job = self.job_for(dep).await?;
            let runner_ref = self.runner.submit(job).await?;
            if let Some(runner_ref) = runner_ref {
                self.store.set_runner_ref(&dep.id, &runner_ref).await?;
                self.system_log(&dep.id, vec![format!("Build task {runner_ref}")])
                    .await?;
            }
            anyhow::Ok(())
        };
        if let Err(e) = submitted.await {
            tracing::warn!(deployment = %dep.id, error = format!("{e:#}"), "the build could not be started");
            let reason = format!("the build could not be started: {e:#}");
            if let Err(e) = self.finish(&dep.id, DeploymentStatus::Failed, reason).await {
                tracing::error!(deployment = %dep.id, error = format!("{e:#}"), "could not fail a deployment");
            }
        }
    }

    async fn job_for(&self, dep: &DeploymentRow) -> anyhow::Result<BuildJob> {
        let project = self
            .store
            .project(&dep.project)
            .await?
            .context("the deployment's project is gone")?;
        let source = match (dep.source_kind.as_str(), &dep.git_url) {
            ("git", Some(url)) => JobSource::Git {
                url: GitUrl::parse(url)?,
                git_ref: dep.git_ref.as_deref().map(GitRef::parse).transpose()?,
            },
            _ => JobSource::Archive {
                key: layout::source_archive(&dep.id),
            },
        };
        let token = new_job_token();
        self.store
            .set_job_token(&dep.id, hash_token(&token))
            .await?;
        Ok(BuildJob {
            deployment: dep.id.clone(),
            project: project.name,
            source,
            settings: project.build,
            api_url: self.builder_api_url.clone(),
            job_token: token,
            storage: self.storage.url(),
            s3_endpoint: self.s3_endpoint.clone(),
            timeout_secs: self.build_timeout.as_secs(),
            allow_private_git_hosts: self.allow_private_git_hosts.clone(),
            owner: dep.created_by.to_string(),
            limits: self.build_limits,
            build_uid: None,
        })
    }

    /// Moves a deployment to `failed` or `canceled` with `reason`, unless it is finished
    /// already.
    pub async fn finish(
        &self,
        id: &DeploymentId,
        status: DeploymentStatus,
        reason: String,
    ) -> anyhow::Result<TransitionOutcome> {
        let note = match status {
            DeploymentStatus::Canceled => format!("Canceled: {reason}"),
            _ => format!("Failed: {reason}"),
        };
        let transition = Transition {
            to: status,
            phase: Phase::Done,
            progress: None,
            reason: Some(reason),
            note: Some(note),
        };
        self.apply(id, transition).await
    }

    /// Applies a transition and tells followers about it.
    async fn apply(&self, id: &DeploymentId, t: Transition) -> anyhow::Result<TransitionOutcome> {
        let _order = self.log_order.lock().await;
        let outcome = self.store.transition(id, t).await?;
        if let TransitionOutcome::Applied { row, lines } = &outcome {
            self.publish_lines(id, lines.clone());
            if row.status.is_terminal() {
                self.ended(row);
            } else {
                self.hub.publish(
                    id,
                    LogFrame::State {
                        status: row.status,
                        phase: row.phase,
                        progress: row.progress,
                    },
                );
            }
        }
        Ok(outcome)
    }

    pub(crate) fn publish_lines(
        &self,
        id: &DeploymentId,
        lines: Vec<scalemesh_core::wire::LogLine>,
    ) {
        self.hub.publish_lines(id, lines);
    }

    /// Tells followers a deployment is over and lets its uploaded source go.
    fn ended(&self, row: &DeploymentRow) {
        self.hub.publish(&row.id, self.end_frame(row));
        self.hub.close(&row.id);
        if row.status != DeploymentStatus::Ready {
            // Never published for a deployment that is not ready; a builder of an earlier
            // version published its own, which is taken back here.
            let storage = self.storage.clone();
            let proxy = self.proxy.clone();
            let (key, project, id) = (
                layout::manifest(&row.project, &row.id),
                row.project.clone(),
                row.id.clone(),
            );
            tokio::spawn(async move {
                if let Err(e) = storage.delete(&key).await {
                    tracing::warn!(key, error = %e, "could not withdraw a manifest");
                }
                if let Some(proxy) = proxy {
                    proxy.forget_deployment(&project, &id);
                }
            });
        }
        if row.source_kind == "archive" {
            let storage = self.storage.clone();
            let key = layout::source_archive(&row.id);
            tokio::spawn(async move {
                if let Err(e) = storage.delete(&key).await {
                    tracing::warn!(key, error = %e, "could not delete an uploaded source");
                }
            });
        }
    }

    /// Appends lines from Scale Mesh itself to a deployment's log.
    pub async fn system_log(&self, id: &DeploymentId, lines: Vec<String>) -> anyhow::Result<()> {
        let _order = self.log_order.lock().await;
        let stored = self.store.append_system_lines(id, lines).await?;
        self.publish_lines(id, stored);
        Ok(())
    }

    pub async fn append_builder_lines(
        &self,
        dep: &DeploymentRow,
        first: u64,
        lines: Vec<NewLogLine>,
    ) -> ApiResult<LogAck> {
        let _order = self.log_order.lock().await;
        match self
            .store
            .append_builder_lines(&dep.id, first, lines)
            .await?
        {
            AppendOutcome::Appended { acked, lines } => {
                self.publish_lines(&dep.id, lines);
                Ok(LogAck { acked })
            }
            // The builder resends from what the server holds.
            AppendOutcome::Gap { expected } => Ok(LogAck { acked: expected }),
            AppendOutcome::Finished(status) => Err(refused(&dep.id, status)),
            AppendOutcome::NotFound => Err(not_found(&dep.id)),
        }
    }

    pub async fn report(
        &self,
        dep: &DeploymentRow,
        report: BuilderReport,
    ) -> ApiResult<DeploymentRow> {
        match report {
            BuilderReport::Phase { phase, progress } => {
                let Some(status) = phase.status() else {
                    return Err(ApiError::bad_request(
                        "invalid_phase",
                        format!("a builder cannot report the phase {:?}", phase.as_str()),
                    ));
                };
                let t = Transition {
                    to: status,
                    phase,
                    progress,
                    reason: None,
                    note: None,
                };
                applied(&dep.id, self.apply(&dep.id, t).await?)
            }
            BuilderReport::Failed { reason } => {
                let reason: String = reason.chars().take(2000).collect();
                applied(
                    &dep.id,
                    self.finish(&dep.id, DeploymentStatus::Failed, reason)
                        .await?,
                )
            }
            BuilderReport::Ready => self.ready(dep).await,
        }
    }

    /// A builder says its upload is complete: check the manifest, then make the deployment ready
    /// and (when asked, and no newer deployment is live) live.
    async fn ready(&self, dep: &DeploymentRow) -> ApiResult<DeploymentRow> {
        if dep.status != DeploymentStatus::Uploading {
            return Err(ApiError::conflict(
                "not_uploaded",
                format!(
                    "deployment {} is {}: it can be ready only after its upload",
                    dep.id, dep.status
                ),
            ));
        }
        let manifest = match self.pending_manifest(dep).await {
            Ok(manifest) => manifest,
            Err(problem) => {
                let reason =
                    format!("the build reported success but its upload is not complete: {problem}");
                applied(
                    &dep.id,
                    self.finish(&dep.id, DeploymentStatus::Failed, reason)
                        .await?,
                )?;
                return Err(ApiError::conflict(
                    "upload_incomplete",
                    "the deployment's manifest is missing or wrong",
                ));
            }
        };
        // Published before the deployment is ready, so a ready deployment always answers; taken
        // back at once if it does not become ready after all (a cancel won).
        let published = self.publish_manifest(dep, manifest).await?;
        let _one_at_a_time = self.promotion.lock().await;
        let _order = self.log_order.lock().await;
        let live_url = self.hosts.project_url(&dep.project);
        let Readied {
            mut row,
            mut lines,
            moved_from,
        } = match self.store.mark_ready(&dep.id, live_url).await? {
            Ok(readied) => readied,
            Err(outcome) => {
                // Taken back only when the deployment will never be ready: a second `ready` for
                // one that is ready already must not take its site down.
                let never_ready = matches!(
                    outcome,
                    TransitionOutcome::Refused(
                        DeploymentStatus::Failed | DeploymentStatus::Canceled
                    ) | TransitionOutcome::NotFound
                );
                if published && never_ready {
                    self.withdraw_manifest(dep).await;
                }
                return applied(&dep.id, outcome);
            }
        };
        if let Some(previous) = moved_from {
            if let Err(e) = self.write_route(&row).await {
                // The alias in storage did not move: neither does the database's.
                tracing::error!(deployment = %row.id, error = format!("{e:#}"), "could not move the production alias");
                self.store
                    .set_production(row.project_id, previous.as_ref())
                    .await?;
                lines.extend(
                    self.store
                        .append_system_lines(
                            &row.id,
                            vec![format!("Could not make this deployment live: {e:#}")],
                        )
                        .await?,
                );
                row = self.store.deployment(&row.id).await?.unwrap_or(row);
            } else if let Some(proxy) = &self.proxy {
                proxy.invalidate(&row.project);
            }
        } else if let Some(proxy) = &self.proxy {
            // A preview: its address may have been asked for, and found missing, while it built.
            proxy.invalidate(&row.project);
        }
        self.publish_lines(&row.id, lines);
        self.ended(&row);
        Ok(row)
    }

    /// The manifest the builder left for `dep`: the pending one, or (from a builder of an earlier
    /// version) the served one already, as `None`.
    async fn pending_manifest(&self, dep: &DeploymentRow) -> Result<Option<bytes::Bytes>, String> {
        let key = layout::pending_manifest(&dep.project, &dep.id);
        let bytes = match self.storage.get_bytes(&key).await {
            Ok(bytes) => bytes,
            Err(e) if e.is_not_found() => {
                self.check_manifest(dep).await?;
                return Ok(None);
            }
            Err(e) => return Err(e.to_string()),
        };
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| format!("{key} is unreadable: {e}"))?;
        if manifest.project != dep.project || manifest.deployment != dep.id {
            return Err(format!("{key} describes another deployment"));
        }
        Ok(Some(bytes))
    }

    /// Writes the manifest proxies serve `dep` from; whether it wrote one. A storage failure is
    /// a 503, which the builder retries.
    async fn publish_manifest(
        &self,
        dep: &DeploymentRow,
        manifest: Option<bytes::Bytes>,
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
    async fn withdraw_manifest(&self, dep: &DeploymentRow) {
        let key = layout::manifest(&dep.project, &dep.id);
        if let Err(e) = self.storage.delete(&key).await {
            tracing::error!(key, error = %e, "could not withdraw the manifest of a deployment that is not ready");
        }
        if let Some(proxy) = &self.proxy {
            proxy.forget_deployment(&dep.project, &dep.id);
        }
    }

    pub(crate) async fn check_manifest(&self, dep: &DeploymentRow) -> Result<(), String> {
        let key = layout::manifest(&dep.project, &dep.id);
        let bytes = self
            .storage
            .get_bytes(&key)
            .await
            .map_err(|e| e.to_string())?;
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| format!("{key} is unreadable: {e}"))?;
        if manifest.project != dep.project || manifest.deployment != dep.id {
            return Err(format!("{key} describes another deployment"));
        }
        Ok(())
    }

    /// Writes the project's production alias — one object, in one put — pointing at `dep`.
    pub(crate) async fn write_route(&self, dep: &DeploymentRow) -> anyhow::Result<()> {
        let route = Route {
            project: dep.project.clone(),
            deployment: dep.id.clone(),
            updated_at: OffsetDateTime::now_utc(),
        };
        let meta = ObjectMeta {
            content_type: Some("application/json".into()),
            cache_control: Some("no-cache".into()),
        };
        self.storage
            .put(
                &layout::route(&dep.project),
                Body::Bytes(serde_json::to_vec(&route)?.into()),
                &meta,
            )
            .await
            .context("writing the production alias")
    }

    /// Deletes a project: its builds are canceled, its site stops answering at once, then the
    /// files of its deployments (and only those) are removed.
    pub async fn delete_project(&self, project: &ProjectRow) -> anyhow::Result<()> {
        let deployments = self.store.deployments_of(project.id, u32::MAX).await?;
        for dep in &deployments {
            if !dep.status.is_terminal() {
                self.finish(
                    &dep.id,
                    DeploymentStatus::Canceled,
                    "the project was deleted".into(),
                )
                .await?;
                self.runner.cancel(&dep.id, dep.runner_ref.as_deref()).await;
            }
        }
        {
            // No promotion may write the alias again after this.
            let _one_at_a_time = self.promotion.lock().await;
            self.storage.delete(&layout::route(&project.name)).await?;
            for domain in self.store.domains_of(project.id).await? {
                self.storage.delete(&layout::domain(&domain.host)).await?;
                if let Some(proxy) = &self.proxy {
                    proxy.invalidate_domain(&domain.host);
                }
            }
            // Manifests first: without one, no deployment of the project answers anywhere.
            for dep in &deployments {
                self.storage
                    .delete(&layout::manifest(&project.name, &dep.id))
                    .await?;
            }
            if let Some(proxy) = &self.proxy {
                proxy.forget_project(&project.name);
            }
            self.store
                .delete_project(project.id, OffsetDateTime::now_utc() + self.name_hold)
                .await?;
        }
        let storage = self.storage.clone();
        let name = project.name.clone();
        tokio::spawn(async move {
            // Everything of the project: files, their compressed variants, manifests.
            let mut keys = storage
                .list(&layout::project_prefix(&name))
                .await
                .unwrap_or_default();
            keys.extend(
                deployments
                    .iter()
                    .map(|dep| layout::source_archive(&dep.id)),
            );
            {
                for key in keys {
                    if let Err(e) = storage.delete(&key).await {
                        tracing::warn!(key, error = %e, "could not delete a file of a deleted project");
                    }
                }
            }
        });
        Ok(())
    }

    pub async fn cancel(&self, dep: &DeploymentRow, by: &str) -> ApiResult<DeploymentRow> {
        let row = applied(
            &dep.id,
            self.finish(
                &dep.id,
                DeploymentStatus::Canceled,
                format!("canceled by {by}"),
            )
            .await?,
        )?;
        self.runner.cancel(&dep.id, dep.runner_ref.as_deref()).await;
        Ok(row)
    }
}

fn applied(id: &DeploymentId, outcome: TransitionOutcome) -> ApiResult<DeploymentRow> {
    match outcome {
        TransitionOutcome::Applied { row, .. } => Ok(row),
        TransitionOutcome::Refused(current) => Err(refused(id, current)),
        TransitionOutcome::NotFound => Err(not_found(id)),
    }
}

fn refused(id: &DeploymentId, status: DeploymentStatus) -> ApiError {
    if status.is_terminal() {
        ApiError::conflict(
            "deployment_finished",
            format!("deployment {id} is {status} already; nothing was changed"),
        )
    } else {
        ApiError::conflict(
            "invalid_transition",
            format!("deployment {id} is {status}; that change does not follow from there"),
        )
    }
}

fn not_found(id: &DeploymentId) -> ApiError {
    ApiError::NotFound(format!("deployment {id} does not exist"))
}
