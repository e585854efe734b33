//! Push to deploy: a project connected to its repository (`scalemesh git connect`) gets a
//! webhook secret; each delivery to `/hooks/git/<project>` is verified with it before its body
//! is read, found again if the forge retries it, and turned into a deployment of the exact
//! commit pushed (production for the production branch, a preview for any other branch or pull
//! request, each at a stable host) or the end of a preview (`plan.rs` decides which). A preview
//! host's alias moves when a build of it is ready, never backwards.

mod branch;
mod deploy_hooks;
mod plan;
pub(crate) mod poll;
mod receive;
mod statuses;

pub(crate) use statuses::deliver_statuses;

use anyhow::Context;
use scalemesh_core::ProjectName;
use scalemesh_core::access::EnvTarget;
use scalemesh_core::git_remote::GitCredential;
use scalemesh_core::layout;
use scalemesh_core::wire::{ConnectGit, GitConnection, GitDelivery, Preview};

use crate::app::App;
use crate::db::{DeploymentRow, NewConnection, ProjectRow};
use crate::error::{ApiError, ApiResult};
use crate::forge::Provider;
use crate::secrets::RowId;

/// The row the webhook secret is sealed for: no variable can have this name.
const SECRET_ROW: &str = ":git-webhook-secret";

/// Deliveries `git show` lists.
const SHOWN_DELIVERIES: u32 = 10;

fn secret_row(project_id: i64) -> RowId<'static> {
    RowId {
        project_id,
        key: SECRET_ROW,
        target: EnvTarget::Production,
    }
}

/// The row the forge token for commit statuses is sealed for.
pub(crate) fn token_row(project_id: i64) -> RowId<'static> {
    RowId {
        project_id,
        key: ":git-status-token",
        target: EnvTarget::Production,
    }
}

/// What a connect request asks for, checked: the forge, the production branch, how often to
/// poll.
struct Checked {
    provider: Provider,
    branch: String,
    poll: Option<std::time::Duration>,
}

fn checked(project: &ProjectRow, req: &ConnectGit) -> ApiResult<Checked> {
    let provider: Provider = req
        .provider
        .as_deref()
        .unwrap_or("github")
        .parse()
        .map_err(|e: String| ApiError::bad_request("invalid_provider", e).on_field("provider"))?;
    let branch = req
        .production_branch
        .clone()
        .or_else(|| project.git_ref.clone())
        .unwrap_or_else(|| "main".into());
    scalemesh_core::git::GitRef::parse(&branch).map_err(|e| {
        ApiError::bad_request("invalid_branch", format!("production branch: {e}"))
            .on_field("production_branch")
    })?;
    let poll = req
        .poll
        .as_deref()
        .map(|raw| {
            scalemesh_core::duration::parse(raw)
                .ok()
                .filter(|d| *d >= std::time::Duration::from_secs(1))
                .ok_or_else(|| {
                    ApiError::bad_request("invalid_poll", "poll every so long, from 1s: 30s, 5m")
                        .on_field("poll")
                })
        })
        .transpose()?;
    Ok(Checked {
        provider,
        branch,
        poll,
    })
}

/// The row a deploy credential is sealed for.
fn credential_row(project_id: i64) -> RowId<'static> {
    RowId {
        project_id,
        key: ":git-deploy-token",
        target: EnvTarget::Production,
    }
}

fn credential_json(c: &GitCredential) -> String {
    serde_json::to_string(c).unwrap_or_default()
}

/// A deploy token as given: `<user>:<token>`, or the token alone with the user name its forge
/// takes with a token (GitHub `x-access-token`, GitLab `oauth2`).
fn deploy_credential(provider: Provider, raw: &str) -> GitCredential {
    match raw.split_once(':') {
        Some((username, password)) if !username.is_empty() => GitCredential {
            username: username.to_owned(),
            password: password.to_owned(),
        },
        _ => GitCredential {
            username: match provider {
                Provider::GitLab => "oauth2",
                _ => "x-access-token",
            }
            .to_owned(),
            password: raw.to_owned(),
        },
    }
}

impl App {
    /// The deploy credential of `project`, for a fetch of `git_url`: only its own
    /// repository's, never another a deploy named.
    pub(crate) async fn deploy_credential(
        &self,
        project: &ProjectName,
        git_url: Option<&str>,
    ) -> ApiResult<Option<GitCredential>> {
        let Some(own) = self.store.project(project).await? else {
            return Ok(None);
        };
        if git_url.is_none() || git_url != own.git_url.as_deref() {
            return Ok(None);
        }
        let Some(conn) = self.store.git_connection(own.id).await? else {
            return Ok(None);
        };
        let Some(sealed) = conn.deploy_token else {
            return Ok(None);
        };
        let json = self
            .secrets
            .open(&credential_row(own.id), &sealed)
            .map_err(|e| ApiError::Internal(e.into()))?;
        serde_json::from_str(&json)
            .map(Some)
            .map_err(|e| ApiError::Internal(e.into()))
    }
}

/// A forge API's URL as given: http or https, no credentials, query or fragment.
fn api_url(raw: &str) -> ApiResult<String> {
    let refused = || {
        ApiError::bad_request(
            "invalid_api_url",
            "the forge's API is an http(s) URL such as https://gitlab.example.com/api/v4",
        )
        .on_field("api_url")
    };
    let url = url::Url::parse(raw).map_err(|_| refused())?;
    let plain = matches!(url.scheme(), "http" | "https")
        && url.has_host()
        && url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none();
    if !plain {
        return Err(refused());
    }
    Ok(raw.trim_end_matches('/').to_owned())
}

pub fn webhook_path(project: &ProjectName) -> String {
    format!("/hooks/git/{project}")
}

impl App {
    /// Connects `project` to its repository with a fresh secret, shown in the answer only.
    pub async fn connect_git(
        &self,
        project: &ProjectRow,
        req: ConnectGit,
        by: i64,
    ) -> ApiResult<GitConnection> {
        if project.git_url.is_none() {
            return Err(ApiError::conflict(
                "no_repository",
                format!(
                    "{} has no repository to connect: deploy it from its repository once (scalemesh deploy <git url> --project {})",
                    project.name, project.name
                ),
            ));
        }
        let Checked {
            provider,
            branch,
            poll,
        } = checked(project, &req)?;
        let credential = req
            .deploy_token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| deploy_credential(provider, t));
        let api_url = match req.api_url.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => Some(api_url(raw)?),
        };
        let secret = hex::encode(scalemesh_core::id::random_bytes::<20>());
        let new = NewConnection {
            provider: provider.as_str().to_owned(),
            production_branch: branch,
            secret: self.secrets.seal(&secret_row(project.id), &secret),
            status_token: req
                .status_token
                .filter(|t| !t.trim().is_empty())
                .map(|t| self.secrets.seal(&token_row(project.id), t.trim())),
            api_url,
            poll_ms: poll.map(|every| i64::try_from(every.as_millis()).unwrap_or(i64::MAX)),
            deploy_token: credential.as_ref().map(|c| {
                self.secrets
                    .seal(&credential_row(project.id), &credential_json(c))
            }),
        };
        // The branches as they are now: polling deploys what changes from here.
        let heads = match poll {
            Some(_) => Some(self.first_listing(project, credential.as_ref()).await?),
            None => None,
        };
        self.store.connect_git(project.id, new, by).await?;
        if let Some(heads) = heads {
            self.store.set_polled_heads(project.id, heads).await?;
        }
        let mut shown = self.git_connection(project).await?;
        shown.secret = Some(secret);
        Ok(shown)
    }

    pub async fn disconnect_git(&self, project: &ProjectRow) -> ApiResult<()> {
        if self.store.disconnect_git(project.id).await? {
            Ok(())
        } else {
            Err(not_connected(&project.name))
        }
    }

    /// The connection as `git show` prints it: its newest deliveries and the previews.
    pub async fn git_connection(&self, project: &ProjectRow) -> ApiResult<GitConnection> {
        let conn = self
            .store
            .git_connection(project.id)
            .await?
            .ok_or_else(|| not_connected(&project.name))?;
        let deliveries = self
            .store
            .deliveries(project.id, SHOWN_DELIVERIES)
            .await?
            .into_iter()
            .map(|d| GitDelivery {
                id: d.id,
                event: d.event,
                outcome: d.outcome,
                deployment: d.deployment,
                received_at: d.received_at,
            })
            .collect();
        let previews = self
            .store
            .labels_of(project.id)
            .await?
            .into_iter()
            .map(|l| Preview {
                url: self.hosts.label_url(&project.name, &l.label),
                kind: l.kind,
                name: l.name,
                deployment: l.deployment,
            })
            .collect();
        Ok(GitConnection {
            provider: conn.provider,
            production_branch: conn.production_branch,
            webhook_path: webhook_path(&project.name),
            secret: None,
            connected_at: conn.connected_at,
            commit_statuses: conn.status_token.is_some(),
            deploy_credential: conn.deploy_token.is_some(),
            poll: conn.poll_ms.map(|ms| {
                scalemesh_core::duration::display(std::time::Duration::from_millis(
                    ms.unsigned_abs(),
                ))
            }),
            api_url: conn.api_url,
            deliveries,
            previews,
        })
    }

    /// Points the preview host `dep` was built for at it, now that it is ready, unless a newer
    /// build of the same branch got there first or the branch is gone.
    pub(crate) async fn move_preview(&self, dep: &DeploymentRow) -> anyhow::Result<()> {
        let Some(label) = &dep.preview_label else {
            return Ok(());
        };
        if !self
            .store
            .move_label(dep.project_id, label, &dep.id)
            .await?
        {
            return Ok(());
        }
        self.write_alias(dep, &layout::label_route(&dep.project, label))
            .await
            .context("writing a branch's alias")?;
        if let Some(proxy) = &self.proxy {
            proxy.invalidate(&dep.project);
        }
        Ok(())
    }
}

fn not_connected(project: &ProjectName) -> ApiError {
    ApiError::NotFound(format!(
        "{project} is not connected to its repository (scalemesh git connect {project})"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deploy_token_is_read_with_or_without_its_user_name() {
        // (provider, as given, user name, password)
        let table = [
            (Provider::GitHub, "ghp_abc", "x-access-token", "ghp_abc"),
            (Provider::GitLab, "glpat-abc", "oauth2", "glpat-abc"),
            (Provider::Gitea, "deploy:abc", "deploy", "abc"),
            (Provider::GitHub, "bot:a:b", "bot", "a:b"),
            (Provider::Generic, ":abc", "x-access-token", ":abc"),
        ];
        for (provider, raw, username, password) in table {
            let c = deploy_credential(provider, raw);
            assert_eq!(
                (c.username.as_str(), c.password.as_str()),
                (username, password),
                "{raw}"
            );
        }
        assert!(
            !format!("{:?}", deploy_credential(Provider::GitHub, "ghp_abc")).contains("ghp_abc")
        );
    }
}
