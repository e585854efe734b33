//! The JSON of projects connected to their repository: the connection, the deliveries its
//! webhook received, the previews of branches and pull requests, and the answer to a delivery.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::DeploymentId;

/// `PUT /api/v1/projects/{name}/git`: connects the project's repository (`git_url`), or
/// connects it again with a new secret.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectGit {
    /// `github`, `gitlab`, `gitea` (Forgejo too) or `generic`; `github` when left out.
    #[serde(default)]
    pub provider: Option<String>,
    /// The branch whose pushes go live; the project's `git_ref`, else `main`, when left out.
    #[serde(default)]
    pub production_branch: Option<String>,
    /// A forge token allowed to set commit statuses: each deployment's state is shown on its
    /// commit. Kept sealed, never answered.
    #[serde(default)]
    pub status_token: Option<String>,
    /// The forge's REST API, when not its default (`https://api.github.com`, or
    /// `https://<host>/api/v4` for GitLab, `/api/v1` for Gitea).
    #[serde(default)]
    pub api_url: Option<String>,
    /// List the branches this often (`60s`, `5m`) and deploy what changed, for a server the
    /// forge cannot reach.
    #[serde(default)]
    pub poll: Option<String>,
    /// For a private repository over https: a token that may read it (`<user>:<token>`, or the
    /// token alone for the forge's usual user name). Kept sealed, never answered, given only
    /// to builds (and listings) of the project's own repository.
    #[serde(default)]
    pub deploy_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitConnection {
    pub provider: String,
    pub production_branch: String,
    /// Where the forge sends its deliveries, from the API's address: `/hooks/git/<project>`.
    pub webhook_path: String,
    /// Only in the answer to connecting: the forge's webhook secret (GitLab's token). It is
    /// never shown again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub connected_at: OffsetDateTime,
    /// Whether each deployment's state is set as its commit's status on the forge.
    #[serde(default)]
    pub commit_statuses: bool,
    /// The forge's REST API statuses go to.
    #[serde(default)]
    pub api_url: Option<String>,
    /// How often the branches are listed, when polled.
    #[serde(default)]
    pub poll: Option<String>,
    /// Whether builds of the repository fetch it with a deploy credential.
    #[serde(default)]
    pub deploy_credential: bool,
    /// The newest first.
    #[serde(default)]
    pub deliveries: Vec<GitDelivery>,
    #[serde(default)]
    pub previews: Vec<Preview>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitDelivery {
    pub id: String,
    pub event: String,
    /// What came of it, in words.
    pub outcome: String,
    pub deployment: Option<DeploymentId>,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
}

/// A branch's or pull request's stable preview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preview {
    /// `branch` or `pull_request`.
    pub kind: String,
    /// The branch, or the pull request's number.
    pub name: String,
    pub url: String,
    /// What it serves; none until a build of it is ready.
    pub deployment: Option<DeploymentId>,
}

/// The answer to a delivery on `/hooks/git/<project>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookAnswer {
    pub delivery: String,
    /// What came of it, in words; a retried delivery answers what came of the first.
    pub outcome: String,
    /// The same delivery came before: nothing was done again.
    #[serde(default)]
    pub duplicate: bool,
    pub deployment: Option<DeploymentId>,
    /// The preview this delivery's deployment will serve, or the one it stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_url: Option<String>,
}

/// `POST /api/v1/projects/{name}/hooks`: a deploy hook.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateDeployHook {
    /// What it is for, as listed: `cms`, `nightly`.
    pub name: String,
    /// The branch it builds; the project's own when left out.
    #[serde(default)]
    pub branch: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployHook {
    pub id: i64,
    pub name: String,
    pub branch: Option<String>,
    /// Only in the answer to creating it: the secret URL's path, `/hooks/deploy/<secret>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployHookList {
    pub hooks: Vec<DeployHook>,
}
