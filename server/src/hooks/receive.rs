//! One delivery to `/hooks/git/<project>`: verified, read, found again if it is a retry, then
//! acted on as [`super::plan`] says. The forge gets its answer as soon as the build is queued.

use scalemesh_core::ProjectName;
use scalemesh_core::wire::HookAnswer;
use sha2::{Digest, Sha256};

use super::branch::{BranchBuild, Done};
use super::plan::{Plan, plan, same_repository};
use super::secret_row;
use crate::app::App;
use crate::db::ProjectRow;
use crate::error::{ApiError, ApiResult};
use crate::forge::{self, Headers, Provider, event};

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

    pub(super) async fn act(
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
                let build = BranchBuild {
                    kind,
                    name,
                    branch,
                    commit: Some(commit),
                    production,
                };
                self.deploy_branch(project, by, build).await
            }
        }
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

pub(super) fn event_name(event: &event::Event) -> &'static str {
    match event {
        event::Event::Push { .. } => "push",
        event::Event::BranchDeleted { .. } => "branch deleted",
        event::Event::PullRequest { .. } => "pull request",
        event::Event::Ignored(_) => "other",
    }
}
