//! Project names. A project's name is the first DNS label of its site's host name, so it must be a
//! valid DNS label on its own and leave room for the preview form `<deployment>--<project>`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest project name. A DNS label holds 63 bytes; a preview host `<deployment>--<project>`
/// spends 14 of them on the deployment id and the separator, leaving 49 — we keep 48.
pub const MAX_PROJECT_NAME_LEN: usize = 48;

/// A validated project name: `[a-z0-9-]`, 1–48 characters, no leading or trailing `-`, no `--`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProjectName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("a project name cannot be empty")]
    Empty,
    #[error("a project name is at most {MAX_PROJECT_NAME_LEN} characters (got {0})")]
    TooLong(usize),
    #[error("a project name uses only lowercase letters, digits and '-' (found {0:?})")]
    BadChar(char),
    #[error("a project name cannot start or end with '-'")]
    EdgeDash,
    #[error(
        "a project name cannot contain '--' (it separates deployment and project in preview hosts)"
    )]
    DoubleDash,
}

impl ProjectName {
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        if raw.is_empty() {
            return Err(NameError::Empty);
        }
        if let Some(c) = raw
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(NameError::BadChar(c));
        }
        if raw.len() > MAX_PROJECT_NAME_LEN {
            return Err(NameError::TooLong(raw.len()));
        }
        if raw.starts_with('-') || raw.ends_with('-') {
            return Err(NameError::EdgeDash);
        }
        if raw.contains("--") {
            return Err(NameError::DoubleDash);
        }
        Ok(Self(raw.to_owned()))
    }

    /// Turns a repository or folder name (`My_Site.git`, `hello world`) into a project name:
    /// lowercase, runs of other characters become one `-`, trimmed and shortened. `None` when
    /// nothing usable is left.
    pub fn derive(raw: &str) -> Option<Self> {
        let raw = raw.strip_suffix(".git").unwrap_or(raw);
        let mut out = String::with_capacity(raw.len());
        for c in raw.chars() {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                out.push(c);
            } else if !out.is_empty() && !out.ends_with('-') {
                out.push('-');
            }
        }
        out.truncate(MAX_PROJECT_NAME_LEN);
        let trimmed = out.trim_matches('-');
        Self::parse(trimmed).ok()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ProjectName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ProjectName {
    type Error = NameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<ProjectName> for String {
    fn from(value: ProjectName) -> Self {
        value.0
    }
}

impl std::str::FromStr for ProjectName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dns_labels() {
        for ok in [
            "a",
            "my-site",
            "0",
            "a1-b2-c3",
            &"x".repeat(MAX_PROJECT_NAME_LEN),
        ] {
            assert!(ProjectName::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_label() {
        let cases: &[(&str, NameError)] = &[
            ("", NameError::Empty),
            ("My-Site", NameError::BadChar('M')),
            ("my_site", NameError::BadChar('_')),
            ("a.b", NameError::BadChar('.')),
            ("ä", NameError::BadChar('ä')),
            ("-a", NameError::EdgeDash),
            ("a-", NameError::EdgeDash),
            ("a--b", NameError::DoubleDash),
            ("../etc", NameError::BadChar('.')),
            (" a", NameError::BadChar(' ')),
        ];
        for (raw, want) in cases {
            assert_eq!(ProjectName::parse(raw).as_ref(), Err(want), "{raw:?}");
        }
        let long = "x".repeat(MAX_PROJECT_NAME_LEN + 1);
        assert_eq!(
            ProjectName::parse(&long),
            Err(NameError::TooLong(MAX_PROJECT_NAME_LEN + 1))
        );
    }

    #[test]
    fn derives_names_from_repos_and_folders() {
        let cases = [
            ("my-site.git", Some("my-site")),
            ("My_Site", Some("my-site")),
            ("hello world!!", Some("hello-world")),
            ("--weird--", Some("weird")),
            ("___", None),
            ("日本", None),
        ];
        for (raw, want) in cases {
            assert_eq!(
                ProjectName::derive(raw).as_ref().map(ProjectName::as_str),
                want,
                "{raw:?}"
            );
        }
        let long = ProjectName::derive(&"ab-".repeat(40)).expect("derives");
        assert!(long.as_str().len() <= MAX_PROJECT_NAME_LEN);
        assert!(!long.as_str().ends_with('-'));
    }
}
