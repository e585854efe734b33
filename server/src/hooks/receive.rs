//! One delivery to `/hooks/git/<project>`: verified, read, found again if it is a retry, then
//! acted on as [`super::plan`] says. The forge gets its answer as soon as the build is queued.

use scalemesh_core::git::{GitRef, GitUrl};
use scalemesh_core::layout;
use scalemesh_core::wire::{CommitInfo, HookAnswer};
use scalemesh_core::{DeploymentId, DeploymentStatus, ProjectName};
use sha2::{Digest, Sha256};

use super::plan::{LabelKind, Plan, plan, same_repository};
use super::secret_row;
use crate::app::App;
use crate::db::ProjectRow;
use crate::deployments::{DeployOptions, NewSource};
use crate::error::{ApiError, ApiResult};
use crate::forge::{self, Headers, Provider, event};

/// What a delivery did, for its answer and the delivery log.
struct Done {
    outcome: String,
    deployment: Option<DeploymentId>,
    preview_url: Option<String>,
}

impl Done {
    fn nothing(why: String) -> Self {
        Self {
            outcome: why,
            deployment: None,
            preview_url: None,
        }
    }
}

impl App {
    /// Verifies and acts on a delivery for `project` (as the path names it).
    pub async fn receive_delivery(
        &self,
        project: &str,
        headers: &(impl Headers + ?Sized),
        body: &[u8],
    ) -> ApiResult<HookAnswer> {
        // One answer for a project that does not exist and one not connected: the route is
        // open to anyone, and says nothing of which projects there are.
        let unknown = || {
            ApiError::NotFound(format!(
                "no project {project:.80} is connected to a repository here"
            ))
        };
        let name = ProjectName::parse(project).map_err(|_| unknown())?;
        let project = self.store.project(&name).await?.ok_or_else(unknown)?;
        let conn = self
            .store
            .git_connection(project.id)
            .await?
            .ok_or_else(unknown)?;
        let provider: Provider = conn
            .provider
            .parse()
            .map_err(|e: String| ApiError::Internal(anyhow::anyhow!(e)))?;
        let secret = self
            .secrets
            .open(&secret_row(project.id), &conn.secret)
            .map_err(|e| ApiError::Internal(e.into()))?;
        forge::signature::verify(provider, headers, body, secret.as_bytes())
            .map_err(|e| ApiError::Unauthorized(format!("the delivery is refused: {e}")))?;
        let delivery = event::read(provider, headers, body)
            .map_err(|e| ApiError::bad_request("unreadable_delivery", e.to_string()))?;
        check_repository(&project, delivery.repository.as_deref())?;
        // A forge sends a retry with the same id; a sender without ids, the same body.
        let id = delivery
            .id
            .clone()
            .unwrap_or_else(|| format!("sha256:{}", &hex::encode(Sha256::digest(body))[..32]));
        let id: String = id.chars().take(100).collect();
        let kind = event_name(&delivery.event);
        if let Some(first) = self.store.first_delivery(project.id, &id, kind).await? {
            return Ok(HookAnswer {
                delivery: id,
                outcome: first.outcome,
                duplicate: true,
                deployment: first.deployment,
                preview_url: None,
            });
        }
        let done = match self
            .act(
                &project,
                conn.acting_user,
                &conn.production_branch,
                &delivery.event,
            )
            .await
        {
            Ok(done) => done,
            Err(e) => {
                let failed = format!("failed: {e}");
                self.store
                    .delivery_outcome(project.id, &id, &failed, None)
                    .await?;
                return Err(e);
            }
        };
        self.store
            .delivery_outcome(project.id, &id, &done.outcome, done.deployment.as_ref())
            .await?;
        Ok(HookAnswer {
            delivery: id,
            outcome: done.outcome,
            duplicate: false,
            deployment: done.deployment,
            preview_url: done.preview_url,
        })
    }

    async fn act(
        &self,
        project: &ProjectRow,
        by: i64,
        production_branch: &str,
        event: &event::Event,
    ) -> ApiResult<Done> {
        match plan(production_branch, event) {
            Plan::Nothing(why) => Ok(Done::nothing(why)),
            Plan::Stop { kind, name } => self.stop_preview(project, kind, &name).await,
            Plan::Deploy {
                kind,
                name,
                branch,
                commit,
                production,
            } => {
                if !scalemesh_core::commit::is_full_sha(&commit.sha) {
                    return Err(ApiError::bad_request(
                        "unreadable_delivery",
                        "the delivery names no full commit",
                    ));
                }
                let label = self.label_for(project, kind, &name).await?;
                let git_ref = GitRef::parse(&branch).map_err(|e| {
                    ApiError::bad_request("unreadable_delivery", format!("branch: {e}"))
                })?;
                let url = project
                    .git_url
                    .as_deref()
                    .map(GitUrl::parse)
                    .transpose()
                    .map_err(|e| ApiError::Internal(e.into()))?
                    .ok_or_else(|| {
                        ApiError::conflict("no_repository", "the project has no repository")
                    })?;
                let source = NewSource::Git {
                    url,
                    git_ref: Some(git_ref),
                    commit: Some(commit.sha.clone()),
                };
                let options = DeployOptions {
                    promote: production,
                    no_cache: false,
                    preview_label: Some(label.clone()),
                };
                let dep = self.create_deployment(project, source, options, by).await?;
                let info = CommitInfo {
                    sha: commit.sha.clone(),
                    branch: Some(branch.clone()),
                    message: commit.message.clone(),
                    author: commit.author.clone(),
                };
                if let Some(info) = info.cleaned() {
                    self.store.set_commit(&dep.id, info).await?;
                }
                self.supersede(project, &label, &dep.id, &branch).await;
                let what = match kind {
                    LabelKind::Branch if production => format!("production build of {branch:.100}"),
                    LabelKind::Branch => format!("preview build of {branch:.100}"),
                    LabelKind::PullRequest => format!("preview build of pull request #{name}"),
                };
                Ok(Done {
                    outcome: format!(
                        "queued the {what} at {}",
                        &commit.sha[..12.min(commit.sha.len())]
                    ),
                    deployment: Some(dep.id),
                    preview_url: Some(self.hosts.label_url(&project.name, &label)),
                })
            }
        }
    }

    /// The stable label of a branch or pull request, chosen the first time it is deployed.
    async fn label_for(
        &self,
        project: &ProjectRow,
        kind: LabelKind,
        name: &str,
    ) -> ApiResult<String> {
        let (owned, project_name) = (name.to_owned(), project.name.to_string());
        let number = name.parse::<u64>().unwrap_or(0);
        Ok(self
            .store
            .preview_label(
                project.id,
                kind.as_str(),
                name,
                move |distinct| match kind {
                    LabelKind::Branch => forge::label::branch(&owned, &project_name, distinct),
                    LabelKind::PullRequest => forge::label::pull_request(number),
                },
            )
            .await?)
    }

    /// Cancels the builds of `label` still queued behind `newest`: only the newest push of a
    /// branch is worth building.
    async fn supersede(
        &self,
        project: &ProjectRow,
        label: &str,
        newest: &DeploymentId,
        branch: &str,
    ) {
        let queued = match self.store.queued_for_label(project.id, label).await {
            Ok(queued) => queued,
            Err(e) => {
                tracing::warn!(error = %e, "could not look for builds to supersede");
                return;
            }
        };
        for id in queued.iter().filter(|id| *id != newest) {
            let reason =
                format!("superseded by deployment {newest}, of a newer push to {branch:.100}");
            match self.finish(id, DeploymentStatus::Canceled, reason).await {
                Ok(_) => self.runner.cancel(id, None).await,
                Err(e) => {
                    tracing::warn!(deployment = %id, error = format!("{e:#}"), "could not supersede a build")
                }
            }
        }
    }

    /// Stops the preview of a deleted branch or closed pull request: its host stops answering
    /// and its queued builds are canceled.
    async fn stop_preview(
        &self,
        project: &ProjectRow,
        kind: LabelKind,
        name: &str,
    ) -> ApiResult<Done> {
        let what = match kind {
            LabelKind::Branch => format!("branch {name:.100}"),
            LabelKind::PullRequest => format!("pull request #{name}"),
        };
        let Some(label) = self
            .store
            .drop_label(project.id, kind.as_str(), name)
            .await?
        else {
            return Ok(Done::nothing(format!("{what} had no preview")));
        };
        for id in self.store.queued_for_label(project.id, &label).await? {
            let reason = format!("{what} is gone");
            if self
                .finish(&id, DeploymentStatus::Canceled, reason)
                .await
                .is_ok()
            {
                self.runner.cancel(&id, None).await;
            }
        }
        self.storage
            .delete(&layout::label_route(&project.name, &label))
            .await
            .map_err(|e| ApiError::StorageUnavailable(format!("removing a preview alias: {e}")))?;
        if let Some(proxy) = &self.proxy {
            proxy.invalidate(&project.name);
        }
        Ok(Done {
            outcome: format!("stopped the preview of {what}"),
            deployment: None,
            preview_url: Some(self.hosts.label_url(&project.name, &label)),
        })
    }
}

/// Refuses a delivery about another repository than the project's.
fn check_repository(project: &ProjectRow, repository: Option<&str>) -> ApiResult<()> {
    let Some(repository) = repository else {
        return Err(ApiError::bad_request(
            "wrong_repository",
            "the delivery does not name its repository",
        ));
    };
    match &project.git_url {
        Some(url) if same_repository(url, repository) => Ok(()),
        _ => Err(ApiError::bad_request(
            "wrong_repository",
            format!(
                "the delivery is about {repository:.100}, not {}'s repository",
                project.name
            ),
        )),
    }
}

fn event_name(event: &event::Event) -> &'static str {
    match event {
        event::Event::Push { .. } => "push",
        event::Event::BranchDeleted { .. } => "branch deleted",
        event::Event::PullRequest { .. } => "pull request",
        event::Event::Ignored(_) => "other",
    }
}
