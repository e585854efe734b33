//! What happens to deployments: created, handed to the runner, moved along by builder reports,
//! canceled or failed, made live. Every status change is a compare-and-set in the database, and
//! is published to log followers after it is stored.

use std::path::Path;

use anyhow::Context;
use scalemesh_core::git::{GitRef, GitUrl};
use scalemesh_core::going_live::GoingLive;
use scalemesh_core::job::{BuildCacheSetting, BuildJob, JobSource};
use scalemesh_core::layout::{self, Route};
use scalemesh_core::storage::{Body, ObjectMeta, StorageUrl};
use scalemesh_core::wire::{BuilderReport, LogAck, LogFrame, NewLogLine};
use scalemesh_core::{DeploymentId, DeploymentStatus, Phase, ProjectName};
use time::OffsetDateTime;

use crate::app::App;
use crate::auth::{hash_token, new_job_token};
use crate::db::{
    AppendOutcome, DeploymentRow, NewDeployment, ProjectRow, Readied, Transition, TransitionOutcome,
};
use crate::error::{ApiError, ApiResult};
use crate::notify::Event;

/// What a deploy request asked for besides its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployOptions {
    /// Move the production alias when the build is ready.
    pub promote: bool,
    /// Build without restoring the build cache.
    pub no_cache: bool,
    /// The branch or pull request preview host to serve it at once ready.
    pub preview_label: Option<String>,
}

impl Default for DeployOptions {
    fn default() -> Self {
        Self {
            promote: true,
            no_cache: false,
            preview_label: None,
        }
    }
}

/// Where a new deployment's source comes from.
pub enum NewSource<'a> {
    Git {
        url: GitUrl,
        git_ref: Option<GitRef>,
        /// A full commit name, checked.
        commit: Option<String>,
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
        options: DeployOptions,
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
        let (source_kind, git_url, git_ref, git_commit) = self.kept_source(&id, source).await?;
        let inserted = self
            .store
            .insert_deployment(NewDeployment {
                id: id.clone(),
                project_id: project.id,
                source_kind,
                git_url,
                git_ref,
                git_commit,
                promote: options.promote,
                created_by: by,
                no_cache: options.no_cache,
                preview_label: options.preview_label,
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
        let row = self.store.deployment(&row.id).await?.unwrap_or(row);
        self.notify(&row, Event::Created).await;
        Ok(row)
    }

    /// A new deployment's source as its row records it (kind, repository, ref, commit); an
    /// uploaded archive is stored first, so a builder always finds it.
    async fn kept_source(
        &self,
        id: &DeploymentId,
        source: NewSource<'_>,
    ) -> ApiResult<(&'static str, Option<String>, Option<String>, Option<String>)> {
        match source {
            NewSource::Git {
                url,
                git_ref,
                commit,
            } => Ok((
                "git",
                Some(url.as_str().to_owned()),
                git_ref.map(|r| r.to_string()),
                commit,
            )),
            NewSource::Archive(path) => {
                self.storage
                    .put(
                        &layout::source_archive(id),
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
                Ok(("archive", None, None, None))
            }
        }
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
                commit: dep.git_commit.clone(),
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
            node_mirror: self.node_mirror.clone(),
            toolchains: None,
            build_cache: self.build_cache.clone().map(|cache| BuildCacheSetting {
                restore: cache.restore && !dep.no_cache,
                ..cache
            }),
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
        self.apply(id, ending(status, reason)).await
    }

    /// Applies a transition and tells followers about it.
    pub(crate) async fn apply(
        &self,
        id: &DeploymentId,
        t: Transition,
    ) -> anyhow::Result<TransitionOutcome> {
        let _order = self.log_order.lock().await;
        self.apply_in_order(id, t).await
    }

    /// [`App::apply`] for a caller that holds `log_order`.
    async fn apply_in_order(
        &self,
        id: &DeploymentId,
        t: Transition,
    ) -> anyhow::Result<TransitionOutcome> {
        let outcome = self.store.transition(id, t).await?;
        if let TransitionOutcome::Applied { row, lines } = &outcome {
            self.publish_lines(id, lines.clone());
            if row.status.is_terminal() {
                self.ended(row);
                match row.status {
                    DeploymentStatus::Failed => self.notify(row, Event::Failed).await,
                    DeploymentStatus::Canceled => self.notify(row, Event::Canceled).await,
                    _ => {}
                }
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
        scalemesh_core::sync::lock(&self.checked_manifests).remove(&row.id);
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
            BuilderReport::Commit(commit) => {
                let Some(commit) = commit.cleaned() else {
                    return Err(ApiError::bad_request(
                        "invalid_commit",
                        "a commit is named by its full SHA (40 or 64 hex digits)",
                    ));
                };
                if !self.store.set_commit(&dep.id, commit).await? {
                    return Err(ApiError::conflict(
                        "not_building",
                        format!(
                            "deployment {} is {}: its commit is set while it builds",
                            dep.id, dep.status
                        ),
                    ));
                }
                Ok(self
                    .store
                    .deployment(&dep.id)
                    .await?
                    .unwrap_or_else(|| dep.clone()))
            }
            BuilderReport::Ready => self.ready(dep).await,
        }
    }

    /// A builder says its upload is complete: check its manifest, then apply what
    /// [`GoingLive::decide`] makes of the deployment, which the store decides as it marks it
    /// ready.
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
        let manifest = self.pending_manifest(dep).await;
        // Published before the deployment is ready, so a ready deployment always answers; taken
        // back at once if it does not become ready after all (a cancel won).
        let published = match &manifest {
            Ok(bytes) => self.publish_manifest(dep, bytes.clone()).await?,
            Err(_) => false,
        };
        let _one_at_a_time = self.promotion.lock().await;
        let _order = self.log_order.lock().await;
        let live_url = self.hosts.project_url(&dep.project);
        let servable = manifest.is_ok();
        let readied = match self.store.mark_ready(&dep.id, servable, live_url).await? {
            Ok(readied) => readied,
            Err(outcome) => return self.not_readied(dep, outcome, published).await,
        };
        match (readied.going_live, manifest) {
            // Decided only for a manifest that could not be read.
            (GoingLive::NotServable, Err(problem)) => self.unservable(dep, problem).await,
            _ => self.went_ready(readied).await,
        }
    }

    /// Answers a `ready` that did not apply; the manifest published for it is taken back only
    /// when the deployment will never be ready: a second `ready` for one that is ready already
    /// must not take its site down.
    async fn not_readied(
        &self,
        dep: &DeploymentRow,
        outcome: TransitionOutcome,
        published: bool,
    ) -> ApiResult<DeploymentRow> {
        let never_ready = matches!(
            outcome,
            TransitionOutcome::Refused(DeploymentStatus::Failed | DeploymentStatus::Canceled)
                | TransitionOutcome::NotFound
        );
        if published && never_ready {
            self.withdraw_manifest(dep).await;
        }
        applied(&dep.id, outcome)
    }

    /// Fails a deployment whose manifest cannot be served, saying why. The caller holds
    /// `log_order`.
    async fn unservable(&self, dep: &DeploymentRow, problem: String) -> ApiResult<DeploymentRow> {
        let reason =
            format!("the build reported success but its upload is not complete: {problem}");
        let failed = ending(DeploymentStatus::Failed, reason);
        applied(&dep.id, self.apply_in_order(&dep.id, failed).await?)?;
        Err(ApiError::conflict(
            "upload_incomplete",
            "the deployment's manifest is missing or wrong",
        ))
    }

    /// Carries a deployment that became ready out of the database: the production alias written
    /// to storage when it went live (and put back in the database if storage refuses), proxies
    /// told, its lines and its end published. The caller holds `promotion` and `log_order`.
    async fn went_ready(&self, readied: Readied) -> ApiResult<DeploymentRow> {
        let Readied {
            going_live,
            mut row,
            mut lines,
            previous,
        } = readied;
        if going_live == GoingLive::GoLive {
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
        if let Err(e) = self.move_preview(&row).await {
            tracing::error!(deployment = %row.id, error = format!("{e:#}"), "could not move a branch's preview");
            lines.extend(
                self.store
                    .append_system_lines(
                        &row.id,
                        vec![format!("Could not move its branch's preview host: {e:#}")],
                    )
                    .await?,
            );
        }
        self.publish_lines(&row.id, lines);
        self.ended(&row);
        self.notify(&row, Event::Ready).await;
        if row.production {
            self.notify(&row, Event::Promoted).await;
        }
        Ok(row)
    }

    /// Writes the project's production alias — one object, in one put — pointing at `dep`.
    pub(crate) async fn write_route(&self, dep: &DeploymentRow) -> anyhow::Result<()> {
        self.write_alias(dep, &layout::route(&dep.project))
            .await
            .context("writing the production alias")
    }

    /// Writes the alias at `key` (production's, or a branch's) pointing at `dep`.
    pub(crate) async fn write_alias(&self, dep: &DeploymentRow, key: &str) -> anyhow::Result<()> {
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
            .put(key, Body::Bytes(serde_json::to_vec(&route)?.into()), &meta)
            .await?;
        Ok(())
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
        self.forget_build_cache(&project.name);
        let storage = self.storage.clone();
        let name = project.name.clone();
        tokio::spawn(async move {
            // Everything of the project: manifests, blobs, files of deployments made before
            // blobs, caches.
            let mut keys = Vec::new();
            for prefix in [
                layout::project_prefix(&name),
                layout::blob_prefix(&name),
                layout::build_cache_prefix(&name),
            ] {
                keys.extend(storage.list(&prefix).await.unwrap_or_default());
            }
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

    /// Removes a deleted project's local build caches: a project made later under the same name
    /// starts from nothing of the one before.
    fn forget_build_cache(&self, project: &ProjectName) {
        let folder = self
            .build_cache
            .as_ref()
            .and_then(|cache| StorageUrl::parse(&cache.location).ok());
        if let Some(StorageUrl::Folder(root)) = folder {
            let dir = root.join(project.as_str());
            if let Err(e) = std::fs::remove_dir_all(&dir)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(folder = %dir.display(), error = %e, "could not remove a deleted project's build cache");
            }
        }
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

/// The move to `failed` or `canceled` with `reason`, and the log line saying so.
fn ending(status: DeploymentStatus, reason: String) -> Transition {
    let note = match status {
        DeploymentStatus::Canceled => format!("Canceled: {reason}"),
        _ => format!("Failed: {reason}"),
    };
    Transition {
        to: status,
        phase: Phase::Done,
        progress: None,
        reason: Some(reason),
        note: Some(note),
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
