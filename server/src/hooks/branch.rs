//! A build of a branch or pull request, however it was asked for (a push, a pull request, a
//! deploy hook): served at its stable preview host once ready, production too for the
//! production branch, superseding its queued builds; and the end of such a preview.

use scalemesh_core::git::{GitRef, GitUrl};
use scalemesh_core::layout;
use scalemesh_core::wire::CommitInfo;
use scalemesh_core::{DeploymentId, DeploymentStatus};

use super::plan::LabelKind;
use crate::app::App;
use crate::db::ProjectRow;
use crate::deployments::{DeployOptions, NewSource};
use crate::error::{ApiError, ApiResult};
use crate::forge::{self, event::Commit};

/// What a delivery or hook did, for its answer and the delivery log.
pub(super) struct Done {
    pub outcome: String,
    pub deployment: Option<DeploymentId>,
    pub preview_url: Option<String>,
}

impl Done {
    pub fn nothing(why: String) -> Self {
        Self {
            outcome: why,
            deployment: None,
            preview_url: None,
        }
    }
}

/// A build to start of a branch or pull request (`kind`, `name`) from `branch`: exactly
/// `commit` when known, else the branch's head when the build fetches it.
pub(super) struct BranchBuild {
    pub kind: LabelKind,
    pub name: String,
    pub branch: String,
    pub commit: Option<Commit>,
    pub production: bool,
}

impl App {
    /// Queues `build` for `project` as user `by`, and supersedes the builds of its preview
    /// still queued.
    pub(super) async fn deploy_branch(
        &self,
        project: &ProjectRow,
        by: i64,
        build: BranchBuild,
    ) -> ApiResult<Done> {
        let BranchBuild {
            kind,
            name,
            branch,
            commit,
            production,
        } = build;
        let label = self.label_for(project, kind, &name).await?;
        let git_ref = GitRef::parse(&branch)
            .map_err(|e| ApiError::bad_request("invalid_branch", format!("branch: {e}")))?;
        let url = project
            .git_url
            .as_deref()
            .map(GitUrl::parse)
            .transpose()
            .map_err(|e| ApiError::Internal(e.into()))?
            .ok_or_else(|| ApiError::conflict("no_repository", "the project has no repository"))?;
        let source = NewSource::Git {
            url,
            git_ref: Some(git_ref),
            commit: commit.as_ref().map(|c| c.sha.clone()),
        };
        let options = DeployOptions {
            promote: production,
            no_cache: false,
            preview_label: Some(label.clone()),
        };
        let dep = self.create_deployment(project, source, options, by).await?;
        if let Some(commit) = &commit {
            let info = CommitInfo {
                sha: commit.sha.clone(),
                branch: Some(branch.clone()),
                message: commit.message.clone(),
                author: commit.author.clone(),
            };
            if let Some(info) = info.cleaned() {
                self.store.set_commit(&dep.id, info).await?;
            }
        }
        self.supersede(project, &label, &dep.id, &branch).await;
        let what = match kind {
            LabelKind::Branch if production => format!("production build of {branch:.100}"),
            LabelKind::Branch => format!("preview build of {branch:.100}"),
            LabelKind::PullRequest => format!("preview build of pull request #{name}"),
        };
        let at = commit.map_or_else(
            || "its newest commit".to_owned(),
            |c| c.sha[..12.min(c.sha.len())].to_owned(),
        );
        Ok(Done {
            outcome: format!("queued the {what} at {at}"),
            deployment: Some(dep.id),
            preview_url: Some(self.hosts.label_url(&project.name, &label)),
        })
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
    pub(super) async fn stop_preview(
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
