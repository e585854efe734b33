//! The JSON the API speaks, shared by the server that writes it and the clients that read it.

mod blobs;
mod git;
mod notify;
mod team;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use crate::commit::CommitInfo;
use crate::site_config::BuildSettings;
use crate::{DeploymentId, DeploymentStatus, Phase, ProjectName};

pub use blobs::{
    BlobCheck, BlobCheckAnswer, BlobLayout, BlobParts, BlobWant, BlobsAbsent, BlobsStored,
    INLINE_MAX_BLOBS, INLINE_MAX_BYTES, InlineBlob, MAX_FILES, MissingBlob, PackRequest,
    PackUploads, PrebuiltStarted, PresignedPut, StartPrebuilt, StoredBlob, SweepReport,
};
pub use git::{
    ConnectGit, CreateDeployHook, DeployHook, DeployHookList, GitConnection, GitDelivery,
    HookAnswer, Preview,
};
pub use notify::{
    AddSubscription, NOTIFY_EVENTS, NotificationDelivery, NotificationLog, Subscription,
    SubscriptionList,
};
pub use team::{
    AddMember, BuildEnv, CreateToken, CreateUser, CreatedToken, CreatedUser, EnvList, EnvVar, Me,
    Member, MemberList, NameHold, NameHoldList, PutEnv, Token, TokenList, User, UserList,
};

/// The one error shape of the API: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    pub error: ApiErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorDetail {
    /// Stable, machine-readable: `bad_request`, `invalid_name`, `not_found`, `unauthorized`, ...
    pub code: String,
    /// For people: what went wrong and what to do about it.
    pub message: String,
    /// The request field the error is about (`git_url`, `build.outputDirectory`, ...), when
    /// it is about one: a form shows the message next to that field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// When several fields of the request are wrong: each of them (this error is the first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ApiErrorDetail>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
    pub version: String,
    /// What a project's URL looks like here (`http://<project>.localhost:8080`).
    #[serde(default)]
    pub sites: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub git_url: Option<String>,
    #[serde(default)]
    pub git_ref: Option<String>,
    /// The same keys as `scalemesh.json`.
    #[serde(default)]
    pub build: Option<BuildSettings>,
    #[serde(default)]
    pub env: Option<BTreeMap<String, String>>,
}

/// A partial update: fields left out keep their value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateProject {
    #[serde(default)]
    pub git_url: Option<String>,
    #[serde(default)]
    pub git_ref: Option<String>,
    #[serde(default)]
    pub build: Option<BuildSettings>,
    /// Replaces all of the project's environment variables, for both targets, as not
    /// sensitive (the per-variable routes set one at a time).
    #[serde(default)]
    pub env: Option<BTreeMap<String, String>>,
    /// How long deployments are kept: `{"keep": 20, "days": 30}`; `{}` keeps all.
    #[serde(default)]
    pub retention: Option<crate::retention::Retention>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    pub name: ProjectName,
    /// With any credentials in it redacted.
    pub git_url: Option<String>,
    pub git_ref: Option<String>,
    pub build: BuildSettings,
    /// Names only (of every target): values are read through `/env`.
    pub env: Vec<String>,
    /// The caller's role on the project (`owner` for an admin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<crate::access::Role>,
    pub production_deployment: Option<DeploymentId>,
    /// Production stays where a rollback put it: ready deployments do not go live by
    /// themselves until one is promoted.
    #[serde(default)]
    pub pinned: bool,
    pub url: String,
    /// How long its deployments are kept (unset: all of them).
    #[serde(default, skip_serializing_if = "crate::retention::Retention::is_unset")]
    pub retention: crate::retention::Retention,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectList {
    pub projects: Vec<Project>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateDeployment {
    /// Deploy this repository instead of the project's own (which must then be unset or equal).
    #[serde(default)]
    pub git_url: Option<String>,
    #[serde(default)]
    pub git_ref: Option<String>,
    /// Build exactly this commit (its full name), reached from `git_ref` or the default branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Move the production alias when the build is ready (default true).
    #[serde(default)]
    pub promote: Option<bool>,
    /// Build without restoring the build cache (a fresh one is still saved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_cache: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DeploymentSource {
    Git {
        url: String,
        git_ref: Option<String>,
    },
    Archive,
    /// A folder deployed as it is, with no build.
    Prebuilt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    pub id: DeploymentId,
    pub project: ProjectName,
    pub status: DeploymentStatus,
    pub phase: Phase,
    pub progress: Option<Progress>,
    /// Why it failed or was canceled.
    pub reason: Option<String>,
    pub source: DeploymentSource,
    pub promote: bool,
    /// The runner's name for the build (an ECS task ARN), when it has one.
    #[serde(default)]
    pub runner_ref: Option<String>,
    /// Whether this deployment is the project's production deployment now.
    pub production: bool,
    /// The deployment's own immutable URL.
    pub url: String,
    /// The project's production URL.
    pub project_url: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub building_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub uploading_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    /// The commit it was built from, once its builder has cloned it.
    #[serde(default)]
    pub commit: Option<CommitInfo>,
}

impl Deployment {
    /// The URL to hand the user once the deployment is ready: production if it went live there.
    pub fn live_url(&self) -> &str {
        if self.production {
            &self.project_url
        } else {
            &self.url
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentList {
    pub deployments: Vec<Deployment>,
}

/// `POST /api/v1/projects/{name}/rollback`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// The deployment to serve; the one live before the current when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

/// `POST /api/v1/projects/{name}/domains`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddDomain {
    pub host: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domain {
    pub host: String,
    pub project: ProjectName,
    pub url: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainList {
    pub domains: Vec<Domain>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    Stdout,
    Stderr,
    /// Lines from Scale Mesh itself: phases, detection, failures.
    System,
}

impl LogStream {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
            Self::System => "system",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "stdout" => Some(Self::Stdout),
            "stderr" => Some(Self::Stderr),
            "system" => Some(Self::System),
            _ => None,
        }
    }
}

/// Longest line of a build log, in bytes. Builders split longer output; the server cuts what
/// still exceeds it.
pub const MAX_LOG_LINE_BYTES: usize = 16 * 1024;

/// One stored line of a build log. `seq` starts at 1 and has no gaps within a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub seq: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub ts: OffsetDateTime,
    pub stream: LogStream,
    pub text: String,
}

/// A frame on the log WebSocket. Followers get the backlog as `lines`, then `state` (unless the
/// deployment has ended), live `lines` and more `state` frames as the build moves on, and one
/// `end` frame when it is over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum LogFrame {
    Lines {
        lines: Vec<LogLine>,
    },
    State {
        status: DeploymentStatus,
        phase: Phase,
        progress: Option<Progress>,
    },
    End {
        status: DeploymentStatus,
        reason: Option<String>,
        /// Where the deployment is served, when it is ready.
        url: Option<String>,
    },
}

/// A line as the builder sends it; the server stamps the sequence number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewLogLine {
    pub stream: LogStream,
    pub text: String,
    #[serde(with = "time::serde::rfc3339")]
    pub ts: OffsetDateTime,
}

/// A batch of builder lines. `first` is the builder's own 0-based index of the first line, so a
/// retried batch is recognised and stored once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogBatch {
    pub first: u64,
    pub lines: Vec<NewLogLine>,
}

/// How many of the builder's lines the server holds: the next batch starts there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogAck {
    pub acked: u64,
}

/// What a builder tells the server about its job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum BuilderReport {
    Phase {
        phase: Phase,
        #[serde(default)]
        progress: Option<Progress>,
    },
    /// The commit the builder cloned.
    Commit(CommitInfo),
    Ready,
    Failed {
        reason: String,
    },
}

/// The original API's `POST /project` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompatCreateProject {
    #[serde(rename = "gitURL")]
    pub git_url: String,
    #[serde(default)]
    pub slug: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompatCreated {
    pub status: String,
    pub project: ProjectName,
    pub deployment_id: DeploymentId,
    pub url: String,
    /// The original's name for `url`.
    pub website_url: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_tagged() {
        let frame = LogFrame::End {
            status: DeploymentStatus::Failed,
            reason: Some("build failed".into()),
            url: None,
        };
        let json = serde_json::to_string(&frame).expect("serializes");
        assert_eq!(
            json,
            r#"{"type":"end","status":"failed","reason":"build failed","url":null}"#
        );
        let back: LogFrame = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, frame);
    }

    #[test]
    fn reports_are_tagged() {
        let r: BuilderReport = serde_json::from_str(
            r#"{"kind":"phase","phase":"uploading","progress":{"done":1,"total":3}}"#,
        )
        .expect("parses");
        assert_eq!(
            r,
            BuilderReport::Phase {
                phase: Phase::Uploading,
                progress: Some(Progress { done: 1, total: 3 })
            }
        );
    }
}
