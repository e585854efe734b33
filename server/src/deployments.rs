//! What happens to deployments: created, handed to the runner, moved along by builder reports,
//! canceled or failed, promoted. Every status change goes through [`SqliteStore::transition`]
//! (compare-and-set) and is published to log followers after it is stored.

use std::path::Path;

use anyhow::Context;
use scalemesh_core::git::{GitRef, GitUrl};
use scalemesh_core::job::{BuildJob, JobSource};
use scalemesh_core::layout::{self, Manifest, Route};
use scalemesh_core::storage::{Body, ObjectMeta};
use scalemesh_core::wire::{self, BuilderReport, LogAck, LogFrame, NewLogLine};
use scalemesh_core::{DeploymentId, DeploymentStatus, Phase};
use time::OffsetDateTime;

use crate::App;
use crate::auth::{hash_token, new_token};
use crate::db::{
    AppendOutcome, DeploymentRow, NewDeployment, ProjectRow, Transition, TransitionOutcome,
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
    pub fn project_view(&self, row: &ProjectRow) -> wire::Project {
        wire::Project {
            name: row.name.clone(),
            git_url: row.git_url.as_deref().map(redact),
            git_ref: row.git_ref.clone(),
            build: row.build.clone(),
            env: row.env.keys().cloned().collect(),
            production_deployment: row.production_deployment.clone(),
            url: self.hosts.project_url(&row.name),
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }

    pub fn deployment_view(&self, row: &DeploymentRow) -> wire::Deployment {
        let source = match row.source_kind.as_str() {
            "git" => wire::DeploymentSource::Git {
                url: row.git_url.as_deref().map(redact).unwrap_or_default(),
                git_ref: row.git_ref.clone(),
            },
            _ => wire::DeploymentSource::Archive,
        };
        wire::Deployment {
            id: row.id.clone(),
            project: row.project.clone(),
            status: row.status,
            phase: row.phase,
            progress: row.progress,
            reason: row.reason.clone(),
            source,
            promote: row.promote,
            production: row.production,
            url: self.hosts.deployment_url(&row.project, &row.id),
            project_url: self.hosts.project_url(&row.project),
            created_at: row.created_at,
            building_at: row.building_at,
            uploading_at: row.uploading_at,
            finished_at: row.finished_at,
        }
    }

    /// The last frame a follower gets.
    pub fn end_frame(&self, row: &DeploymentRow) -> LogFrame {
        let view = self.deployment_view(row);
        LogFrame::End {
            status: row.status,
            reason: row.reason.clone(),
            url: (row.status == DeploymentStatus::Ready).then(|| view.live_url().to_owned()),
        }
    }

    pub async fn create_deployment(
        &self,
        project: &ProjectRow,
        source: NewSource<'_>,
        promote: bool,
    ) -> ApiResult<DeploymentRow> {
        let id = DeploymentId::generate();
        let (source_kind, git_url, git_ref) = match source {
            NewSource::Git { url, git_ref } => (
                "git",
                Some(url.as_str().to_owned()),
                git_ref.map(|r| r.to_string()),
            ),
            NewSource::Archive(path) => {
                // The archive is stored before the deployment exists, so a builder always finds it.
                self.storage
                    .put(
                        &layout::source_archive(&id),
                        Body::File(path.to_path_buf()),
                        &ObjectMeta::default(),
                    )
                    .await
                    .context("storing the uploaded source")?;
                ("archive", None, None)
            }
        };
        let row = self
            .store
            .insert_deployment(NewDeployment {
                id,
                project_id: project.id,
                source_kind,
                git_url,
                git_ref,
                promote,
            })
            .await?;
        self.submit(&row).await?;
        Ok(self.store.deployment(&row.id).await?.unwrap_or(row))
    }

    /// Hands a queued deployment to the runner with a fresh job token. A runner that refuses
    /// fails the deployment at once, with the runner's reason.
    pub async fn submit(&self, dep: &DeploymentRow) -> anyhow::Result<()> {
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
        let token = new_token("smj");
        self.store
            .set_job_token(&dep.id, hash_token(&token))
            .await?;
        let job = BuildJob {
            deployment: dep.id.clone(),
            project: project.name.clone(),
            source,
            settings: project.build.clone(),
            api_url: self.builder_api_url.clone(),
            job_token: token,
            storage: self.storage.url(),
            timeout_secs: self.build_timeout.as_secs(),
            build_env: project.env.clone(),
        };
        if let Err(e) = self.runner.submit(job).await {
            self.finish(
                &dep.id,
                DeploymentStatus::Failed,
                format!("the build could not be started: {e}"),
            )
            .await?;
        }
        Ok(())
    }

    /// Moves a deployment to `failed` or `canceled` with `reason`, unless it is finished
    /// already. Returns the finished row when this call finished it.
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
            if !lines.is_empty() {
                self.hub.publish(
                    id,
                    LogFrame::Lines {
                        lines: lines.clone(),
                    },
                );
            }
            if row.status.is_terminal() {
                if row.status == DeploymentStatus::Ready {
                    // Followers are told once the alias has moved; see `report`.
                } else {
                    self.hub.publish(id, self.end_frame(row));
                    self.hub.close(id);
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

    /// Appends lines from Scale Mesh itself to a deployment's log.
    pub async fn system_log(&self, id: &DeploymentId, lines: Vec<String>) -> anyhow::Result<()> {
        let _order = self.log_order.lock().await;
        let stored = self.store.append_system_lines(id, lines).await?;
        self.hub.publish(id, LogFrame::Lines { lines: stored });
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
                if !lines.is_empty() {
                    self.hub.publish(&dep.id, LogFrame::Lines { lines });
                }
                Ok(LogAck { acked })
            }
            // The builder resends from what the server holds.
            AppendOutcome::Gap { expected } => Ok(LogAck { acked: expected }),
            AppendOutcome::Finished(status) => Err(finished(&dep.id, status)),
            AppendOutcome::NotFound => Err(ApiError::NotFound(format!(
                "deployment {} does not exist",
                dep.id
            ))),
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
        if let Err(problem) = self.check_manifest(dep).await {
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
        let t = Transition {
            to: DeploymentStatus::Ready,
            phase: Phase::Done,
            progress: None,
            reason: None,
            note: Some("Deployment ready".to_owned()),
        };
        let row = applied(&dep.id, self.apply(&dep.id, t).await?)?;
        if row.promote
            && let Err(e) = self.promote(&row).await
        {
            tracing::error!(deployment = %row.id, error = format!("{e:#}"), "promotion failed");
            let _ = self
                .system_log(
                    &row.id,
                    vec![format!("Could not make this deployment live: {e}")],
                )
                .await;
        }
        let row = self.store.deployment(&row.id).await?.unwrap_or(row);
        if row.production {
            let _ = self
                .system_log(
                    &row.id,
                    vec![format!("Live at {}", self.hosts.project_url(&row.project))],
                )
                .await;
        }
        self.hub.publish(&row.id, self.end_frame(&row));
        self.hub.close(&row.id);
        Ok(row)
    }

    async fn check_manifest(&self, dep: &DeploymentRow) -> Result<(), String> {
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

    /// Points the project's production alias at `dep` unless a newer deployment is live. The
    /// route object is written first, in one put; the database follows.
    async fn promote(&self, dep: &DeploymentRow) -> anyhow::Result<bool> {
        let _one_at_a_time = self.promotion.lock().await;
        if !self.store.may_promote(dep.project_id, &dep.id).await? {
            self.system_log(
                &dep.id,
                vec!["A newer deployment is live already; this one stays a preview".into()],
            )
            .await?;
            return Ok(false);
        }
        let route = Route {
            project: dep.project.clone(),
            deployment: dep.id.clone(),
            updated_at: OffsetDateTime::now_utc(),
        };
        let body = serde_json::to_vec(&route)?;
        self.storage
            .put(
                &layout::route(&dep.project),
                Body::Bytes(body.into()),
                &ObjectMeta {
                    content_type: Some("application/json".into()),
                    cache_control: Some("no-cache".into()),
                },
            )
            .await
            .context("writing the production alias")?;
        self.store.set_production(dep.project_id, &dep.id).await?;
        if let Some(proxy) = &self.proxy {
            proxy.invalidate(&dep.project);
        }
        Ok(true)
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
        self.runner.cancel(&dep.id).await;
        Ok(row)
    }
}

fn applied(id: &DeploymentId, outcome: TransitionOutcome) -> ApiResult<DeploymentRow> {
    match outcome {
        TransitionOutcome::Applied { row, .. } => Ok(row),
        TransitionOutcome::Refused(current) => Err(finished(id, current)),
        TransitionOutcome::NotFound => Err(ApiError::NotFound(format!(
            "deployment {id} does not exist"
        ))),
    }
}

fn finished(id: &DeploymentId, status: DeploymentStatus) -> ApiError {
    ApiError::conflict(
        "deployment_finished",
        format!("deployment {id} is {status} already; nothing was changed"),
    )
}

fn redact(url: &str) -> String {
    GitUrl::parse(url)
        .map(|u| u.redacted())
        .unwrap_or_else(|_| url.to_owned())
}
