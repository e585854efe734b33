//! The JSON of people and access: who a token belongs to, users, project members, tokens,
//! environment variables, and names held after a project is deleted.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::access::{EnvTarget, EnvTargets, Role, TokenRole, UserName};

/// `GET /api/v1/me`: who the request's token belongs to and what it may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub user: User,
    pub token: Token,
    /// The server's version.
    pub server_version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub name: UserName,
    /// Admins can do everything everywhere, and add and remove users.
    pub admin: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserList {
    pub users: Vec<User>,
}

/// `POST /api/v1/users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub name: String,
    #[serde(default)]
    pub admin: bool,
}

/// A new user and the first token they sign in with; the secret is shown only this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedUser {
    pub user: User,
    pub token: Token,
    pub secret: String,
}

/// An API token as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    pub id: i64,
    pub name: String,
    /// The start of the secret (`smk_AbCd`), to tell tokens apart.
    pub prefix: String,
    pub role: TokenRole,
    /// The projects it is limited to; `None` for all of its user's projects.
    pub projects: Option<Vec<String>>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// `None`: it never expires.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenList {
    pub tokens: Vec<Token>,
}

/// `POST /api/v1/tokens`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    pub name: String,
    /// Limit it to these projects (all of the user's when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projects: Option<Vec<String>>,
    /// `full` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<TokenRole>,
    /// How long it lives: `30d`, `12h`, … or `never`; 90 days when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

/// A new token; the secret is shown only this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedToken {
    pub token: Token,
    pub secret: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub user: UserName,
    pub role: Role,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberList {
    pub members: Vec<Member>,
}

/// `POST /api/v1/projects/{name}/members`: adds a member, or changes their role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    pub user: String,
    pub role: Role,
}

/// One variable for one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvVar {
    pub key: String,
    pub target: EnvTarget,
    /// Write-only: its value is never shown again once set.
    pub sensitive: bool,
    /// The value, when the caller may read it (never for a sensitive variable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Who set it last (`None` when that user is gone).
    pub updated_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvList {
    pub env: Vec<EnvVar>,
}

/// `PUT /api/v1/projects/{name}/env/{key}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutEnv {
    pub value: String,
    /// `all` when absent.
    #[serde(default)]
    pub target: EnvTargets,
    #[serde(default)]
    pub sensitive: bool,
}

/// `GET /api/v1/deployments/{id}/env`, for the builder with its job token: the values its
/// build gets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildEnv {
    pub env: BTreeMap<String, String>,
    /// The project's deploy credential, for a build of its own repository over http(s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_credential: Option<crate::git_remote::GitCredential>,
}

/// A project name or a custom domain that stays bound to the owner of a deleted project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameHold {
    pub name: String,
    /// `project` or `domain`.
    pub kind: String,
    /// Who may take it again before it is free.
    pub held_for: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameHoldList {
    pub holds: Vec<NameHold>,
}
