//! Moving a project's production alias by hand (promote, rollback) and its custom domains.
//! Storage is written after the database and the database put back when storage refuses, so
//! the two never disagree about what a project serves.

use anyhow::Context;
use scalemesh_core::hosts;
use scalemesh_core::layout::{self, DomainRoute};
use scalemesh_core::storage::{Body, ObjectMeta};

use crate::app::App;
use crate::db::{AliasAction, DeploymentRow, DomainRow, DomainTaken, ProjectRow};
use crate::error::{ApiError, ApiResult};

impl App {
    /// Makes `dep` the project's production deployment, without rebuilding it.
    pub async fn promote(&self, dep: &DeploymentRow, actor: &str) -> ApiResult<DeploymentRow> {
        self.move_alias(dep, AliasAction::Promote, actor).await
    }

    /// Puts production back on an earlier deployment: `to`, or the one live before the current.
    /// Production stays there (new builds do not go live by themselves) until a promote.
    pub async fn rollback(
        &self,
        project: &ProjectRow,
        to: Option<DeploymentRow>,
        actor: &str,
    ) -> ApiResult<DeploymentRow> {
        let target = match to {
            Some(dep) => dep,
            None => {
                let current = project.production_deployment.as_ref().ok_or_else(|| {
                    ApiError::conflict(
                        "nothing_live",
                        format!(
                            "{} has no production deployment to roll back from",
                            project.name
                        ),
                    )
                })?;
                let id = self
                    .store
                    .rollback_target(project.id, current)
                    .await?
                    .ok_or_else(|| {
                        ApiError::conflict(
                            "no_earlier_deployment",
                            format!(
                                "{} has no earlier production deployment that is ready; name one with --to",
                                project.name
                            ),
                        )
                    })?;
                self.store
                    .deployment(&id)
                    .await?
                    .ok_or_else(|| ApiError::NotFound(format!("deployment {id} does not exist")))?
            }
        };
        self.move_alias(&target, AliasAction::Rollback, actor).await
    }

    async fn move_alias(
        &self,
        dep: &DeploymentRow,
        action: AliasAction,
        actor: &str,
    ) -> ApiResult<DeploymentRow> {
        self.check_servable(dep).await?;
        let _one_at_a_time = self.promotion.lock().await;
        // A removal takes the same lock: one that went first has deleted the deployment,
        // whose manifest is then going; production never moves to it.
        if self.store.deployment(&dep.id).await?.is_none() {
            return Err(ApiError::NotFound(format!(
                "deployment {} was removed",
                dep.id
            )));
        }
        let moved = self
            .store
            .move_alias(dep.project_id, &dep.id, action, actor)
            .await?;
        if let Err(e) = self.write_route(dep).await {
            self.store.undo_alias_move(dep.project_id, &moved).await?;
            return Err(ApiError::StorageUnavailable(format!("{e:#}")));
        }
        if let Some(proxy) = &self.proxy {
            proxy.invalidate(&dep.project);
        }
        let verb = match action {
            AliasAction::Rollback => "Rolled back production to this deployment",
            _ => "Promoted to production",
        };
        let line = format!(
            "{verb} (by {actor}); live at {}",
            self.hosts.project_url(&dep.project)
        );
        let lines = self.store.append_system_lines(&dep.id, vec![line]).await?;
        self.publish_lines(&dep.id, lines);
        let moved = self
            .store
            .deployment(&dep.id)
            .await?
            .unwrap_or_else(|| dep.clone());
        self.notify(&moved, crate::notify::Event::Promoted).await;
        Ok(moved)
    }

    /// Serves the project at `host` too, for user `by`. One host belongs to one project.
    pub async fn add_domain(
        &self,
        project: &ProjectRow,
        raw: &str,
        by: i64,
    ) -> ApiResult<(String, bool)> {
        let host = hosts::normalize_domain(raw).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_domain",
                format!(
                    "{:?} is not a domain name such as www.example.com",
                    raw.chars().take(260).collect::<String>()
                ),
            )
        })?;
        if host == self.hosts.base_domain()
            || host.ends_with(&format!(".{}", self.hosts.base_domain()))
        {
            return Err(ApiError::bad_request(
                "invalid_domain",
                format!(
                    "{host} is under the base domain {}, where project names are the hosts",
                    self.hosts.base_domain()
                ),
            ));
        }
        let added = match self.store.add_domain(project.id, &host, by).await? {
            Ok(added) => added,
            // Which project has it is not said: it may be someone else's.
            Err(DomainTaken::InUse) => {
                return Err(ApiError::conflict(
                    "domain_taken",
                    format!(
                        "{host} already serves another project; remove it there first, or ask an admin"
                    ),
                ));
            }
            Err(DomainTaken::Held(held)) => {
                return Err(ApiError::conflict(
                    "name_held",
                    format!(
                        "{host} served a deleted project and is held for that project's owner until {}; an admin can release it (scalemesh holds release {host})",
                        crate::views::day(held.until)
                    ),
                ));
            }
        };
        let route = DomainRoute {
            host: host.clone(),
            project: project.name.clone(),
        };
        let written = async {
            let body = serde_json::to_vec(&route)?;
            self.storage
                .put(
                    &layout::domain(&host),
                    Body::Bytes(body.into()),
                    &ObjectMeta {
                        content_type: Some("application/json".into()),
                        cache_control: Some("no-cache".into()),
                    },
                )
                .await
                .context("writing the domain")
        }
        .await;
        if let Err(e) = written {
            if added {
                self.store.remove_domain(project.id, &host).await?;
            }
            return Err(ApiError::StorageUnavailable(format!("{e:#}")));
        }
        if let Some(proxy) = &self.proxy {
            proxy.invalidate_domain(&host);
        }
        Ok((host, added))
    }

    pub async fn remove_domain(&self, project: &ProjectRow, raw: &str) -> ApiResult<String> {
        let host = hosts::normalize_domain(raw).unwrap_or_else(|| raw.to_owned());
        if !self.domains(project).await?.iter().any(|d| d.host == host) {
            return Err(ApiError::NotFound(format!(
                "{host} is not a domain of {}",
                project.name
            )));
        }
        // Storage first: a domain is served only while its object exists.
        self.storage
            .delete(&layout::domain(&host))
            .await
            .map_err(|e| ApiError::StorageUnavailable(e.to_string()))?;
        self.store.remove_domain(project.id, &host).await?;
        if let Some(proxy) = &self.proxy {
            proxy.invalidate_domain(&host);
        }
        Ok(host)
    }

    pub async fn domains(&self, project: &ProjectRow) -> ApiResult<Vec<DomainRow>> {
        Ok(self.store.domains_of(project.id).await?)
    }
}
