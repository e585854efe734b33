//! The words of access control that the server, the CLI and the web page share: user names,
//! project roles, what a token may be narrowed to, the targets of environment variables, and
//! the names no project may take. Who may do what is decided by the server (`server/src/access`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A member's role on a project, weakest first: each can do what the ones before it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sees the project, its deployments, logs, domains and members.
    Viewer,
    /// Also deploys, cancels, promotes, rolls back, and sets preview variables.
    Developer,
    /// Also domains, production variables, settings, members, and deleting the project.
    Owner,
}

impl Role {
    pub const ALL: [Self; 3] = [Self::Viewer, Self::Developer, Self::Owner];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Developer => "developer",
            Self::Owner => "owner",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not a role: use owner, developer or viewer"))
    }
}

/// What a token may do, at most, of what its user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenRole {
    /// Everything its user can do, tokens and (for an admin) users included.
    #[default]
    Full,
    /// At most a developer's rights on its projects: deploy, cancel, promote, roll back.
    Deploy,
    /// At most a viewer's: read projects, deployments and logs.
    Read,
}

impl TokenRole {
    pub const ALL: [Self; 3] = [Self::Full, Self::Deploy, Self::Read];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Deploy => "deploy",
            Self::Read => "read",
        }
    }

    /// The strongest project role a token of this kind acts with.
    pub fn cap(self) -> Role {
        match self {
            Self::Full => Role::Owner,
            Self::Deploy => Role::Developer,
            Self::Read => Role::Viewer,
        }
    }
}

impl fmt::Display for TokenRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for TokenRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not a token role: use full, deploy or read"))
    }
}

/// Which builds a variable's value is given to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnvTarget {
    /// Deployments meant to go live.
    Production,
    /// Deployments made with `--preview`, which stay at their own URL.
    Preview,
}

impl EnvTarget {
    pub const ALL: [Self; 2] = [Self::Production, Self::Preview];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Production => "production",
            Self::Preview => "preview",
        }
    }

    /// The target of a build that does (or does not) mean to go live.
    pub fn of_build(promote: bool) -> Self {
        if promote {
            Self::Production
        } else {
            Self::Preview
        }
    }
}

impl fmt::Display for EnvTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The targets a request names: one of them, or both (`all`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnvTargets {
    #[default]
    All,
    Production,
    Preview,
}

impl EnvTargets {
    pub fn targets(self) -> &'static [EnvTarget] {
        match self {
            Self::All => &EnvTarget::ALL,
            Self::Production => &[EnvTarget::Production],
            Self::Preview => &[EnvTarget::Preview],
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Production => "production",
            Self::Preview => "preview",
        }
    }
}

impl std::str::FromStr for EnvTargets {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "all" => Ok(Self::All),
            "production" => Ok(Self::Production),
            "preview" => Ok(Self::Preview),
            other => Err(format!(
                "{other:?} is not a target: use production, preview or all"
            )),
        }
    }
}

/// Longest user name.
pub const MAX_USER_NAME_LEN: usize = 40;

/// A validated user name: lowercase letters, digits, `-`, `_` and `.`, 1–40 characters,
/// starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a user name: use 1–{MAX_USER_NAME_LEN} lowercase letters, digits, '-', '_' or '.', starting with a letter or digit"
)]
pub struct BadUserName(pub String);

impl UserName {
    pub fn parse(raw: &str) -> Result<Self, BadUserName> {
        let bad = || BadUserName(raw.chars().take(60).collect());
        let first_ok = raw
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let all_ok = raw
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
        if first_ok && all_ok && raw.len() <= MAX_USER_NAME_LEN {
            Ok(Self(raw.to_owned()))
        } else {
            Err(bad())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for UserName {
    type Error = BadUserName;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<UserName> for String {
    fn from(value: UserName) -> Self {
        value.0
    }
}

/// Names a platform needs for itself or that people trust by their look: no project takes them,
/// so `api.<base>` or `admin.<base>` never serves someone's site.
pub const RESERVED_PROJECT_NAMES: &[&str] = &[
    "admin",
    "api",
    "app",
    "assets",
    "auth",
    "autoconfig",
    "autodiscover",
    "cdn",
    "console",
    "dashboard",
    "ftp",
    "imap",
    "localhost",
    "login",
    "mail",
    "metrics",
    "mx",
    "ns1",
    "ns2",
    "ns3",
    "ns4",
    "pop",
    "proxy",
    "scalemesh",
    "smtp",
    "static",
    "status",
    "webmail",
    "wpad",
    "www",
];

/// Whether `name` is one no project may take. (Names like `_acme-challenge` are not project
/// names at all.)
pub fn is_reserved_project_name(name: &str) -> bool {
    RESERVED_PROJECT_NAMES.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_weakest_first() {
        assert!(Role::Viewer < Role::Developer && Role::Developer < Role::Owner);
        assert_eq!(TokenRole::Read.cap(), Role::Viewer);
        assert_eq!(TokenRole::Deploy.cap(), Role::Developer);
        assert_eq!(TokenRole::Full.cap(), Role::Owner);
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        for role in TokenRole::ALL {
            assert_eq!(role.as_str().parse::<TokenRole>(), Ok(role));
        }
        assert!("admin".parse::<Role>().is_err());
    }

    #[test]
    fn user_names_are_checked() {
        for ok in ["ada", "ada.lovelace", "ci-bot", "a_1", "9"] {
            assert!(UserName::parse(ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(41);
        for bad in [
            "",
            "Ada",
            "-ada",
            ".ada",
            "ada lovelace",
            "ada/x",
            "é",
            &long,
        ] {
            assert!(UserName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn reserved_names_are_valid_project_names_and_sorted() {
        for name in RESERVED_PROJECT_NAMES {
            assert!(crate::ProjectName::parse(name).is_ok(), "{name}");
        }
        assert!(RESERVED_PROJECT_NAMES.windows(2).all(|w| w[0] < w[1]));
        assert!(is_reserved_project_name("www"));
        assert!(!is_reserved_project_name("blog"));
    }

    #[test]
    fn targets_expand() {
        assert_eq!(EnvTargets::All.targets(), &EnvTarget::ALL);
        assert_eq!("preview".parse(), Ok(EnvTargets::Preview));
        assert!("dev".parse::<EnvTargets>().is_err());
        assert_eq!(EnvTarget::of_build(false), EnvTarget::Preview);
    }
}
