//! Deploy hooks: secret URLs that build a branch of a project when POSTed, with no token, as
//! Vercel's and Netlify's build hooks do (a CMS saving content, a nightly job). The URL is
//! shown once; only the SHA-256 of its secret is kept. A hook's build is its maker's.

use scalemesh_core::git::GitRef;
use scalemesh_core::wire::{CreateDeployHook, DeployHook, HookAnswer};
use sha2::{Digest, Sha256};

use super::branch::{BranchBuild, Done};
use super::plan::LabelKind;
use crate::app::App;
use crate::db::ProjectRow;
use crate::deployments::{DeployOptions, NewSource};
use crate::error::{ApiError, ApiResult};

const PREFIX: &str = "smh_";

fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

fn view(row: crate::db::DeployHookRow, path: Option<String>) -> DeployHook {
    DeployHook {
        id: row.id,
        name: row.name,
        branch: row.branch,
        path,
        created_at: row.created_at,
        last_used_at: row.last_used_at,
    }
}

impl App {
    pub async fn create_deploy_hook(
        &self,
        project: &ProjectRow,
        req: CreateDeployHook,
        by: i64,
    ) -> ApiResult<DeployHook> {
        let name = req.name.trim();
        if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
            return Err(ApiError::bad_request(
                "invalid_name",
                "a deploy hook's name is 1 to 64 printable characters, such as cms or nightly",
            )
            .on_field("name"));
        }
        if let Some(branch) = &req.branch {
            GitRef::parse(branch).map_err(|e| {
                ApiError::bad_request("invalid_branch", e.to_string()).on_field("branch")
            })?;
        }
        if project.git_url.is_none() {
            return Err(ApiError::conflict(
                "no_repository",
                format!(
                    "{} has no repository for a hook to build: deploy it from its repository once",
                    project.name
                ),
            ));
        }
        let secret = format!(
            "{PREFIX}{}",
            hex::encode(scalemesh_core::id::random_bytes::<20>())
        );
        let made = self
            .store
            .add_deploy_hook(project.id, name, req.branch.as_deref(), hash(&secret), by)
            .await?
            .ok_or_else(|| {
                ApiError::conflict(
                    "too_many_hooks",
                    format!(
                        "{} has as many deploy hooks as a project may ({}): remove one first",
                        project.name,
                        crate::db::MAX_DEPLOY_HOOKS
                    ),
                )
            })?;
        Ok(view(made, Some(format!("/hooks/deploy/{secret}"))))
    }

    pub async fn deploy_hooks(&self, project: &ProjectRow) -> ApiResult<Vec<DeployHook>> {
        let rows = self.store.deploy_hooks_of(project.id).await?;
        Ok(rows.into_iter().map(|row| view(row, None)).collect())
    }

    pub async fn remove_deploy_hook(&self, project: &ProjectRow, id: i64) -> ApiResult<()> {
        if self.store.remove_deploy_hook(project.id, id).await? {
            Ok(())
        } else {
            Err(ApiError::NotFound(format!(
                "{} has no deploy hook {id} (scalemesh hooks ls {})",
                project.name, project.name
            )))
        }
    }

    /// Runs the hook whose secret is `secret`: a build of its branch, production when that is
    /// the production branch (or the project's own branch, when it names none).
    pub async fn run_deploy_hook(&self, secret: &str) -> ApiResult<HookAnswer> {
        let unknown = || {
            ApiError::Unauthorized(
                "no deploy hook has this URL (it was removed, or never made): make one with scalemesh hooks create".into(),
            )
        };
        if !secret.starts_with(PREFIX) || secret.len() > 100 {
            return Err(unknown());
        }
        let hook = self
            .store
            .use_deploy_hook(hash(secret))
            .await?
            .ok_or_else(unknown)?;
        let project = self
            .store
            .project(&hook.project)
            .await?
            .ok_or_else(unknown)?;
        let done = match hook.branch.clone() {
            Some(branch) => {
                let production = self.production_branch(&project).await?;
                let build = BranchBuild {
                    kind: LabelKind::Branch,
                    name: branch.clone(),
                    production: production.as_deref() == Some(branch.as_str()),
                    branch,
                    commit: None,
                };
                self.deploy_branch(&project, hook.acting_user, build)
                    .await?
            }
            None => self.deploy_own_branch(&project, hook.acting_user).await?,
        };
        Ok(HookAnswer {
            delivery: format!("deploy hook {} ({:.64})", hook.id, hook.name),
            outcome: done.outcome,
            duplicate: false,
            deployment: done.deployment,
            preview_url: done.preview_url,
        })
    }

    /// The branch whose builds go live: the connection's, else the project's own.
    async fn production_branch(&self, project: &ProjectRow) -> ApiResult<Option<String>> {
        Ok(match self.store.git_connection(project.id).await? {
            Some(conn) => Some(conn.production_branch),
            None => project.git_ref.clone(),
        })
    }

    /// A build of the project's own branch, as `scalemesh deploy` makes one.
    async fn deploy_own_branch(&self, project: &ProjectRow, by: i64) -> ApiResult<Done> {
        let url = project
            .git_url
            .as_deref()
            .map(scalemesh_core::git::GitUrl::parse)
            .transpose()
            .map_err(|e| ApiError::Internal(e.into()))?
            .ok_or_else(|| ApiError::conflict("no_repository", "the project has no repository"))?;
        let git_ref = project.git_ref.as_deref().map(GitRef::parse).transpose();
        let source = NewSource::Git {
            url,
            git_ref: git_ref.map_err(|e| ApiError::Internal(e.into()))?,
            commit: None,
        };
        let dep = self
            .create_deployment(project, source, DeployOptions::default(), by)
            .await?;
        Ok(Done {
            outcome: "queued a build of the project's branch".into(),
            preview_url: None,
            deployment: Some(dep.id),
        })
    }
}
