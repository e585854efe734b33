//! Git sources as users give them. Both the server (before anything starts) and the builder (before
//! it runs git) validate them here, because a repository URL is attacker-controlled input to a
//! program with dangerous transports (`ext::`), local paths (`file://`) and option parsing (`-…`).

use std::fmt;

use serde::{Deserialize, Serialize};
use url::Url;

/// Transports a build may clone over. Also handed to git itself as `GIT_ALLOW_PROTOCOL`.
pub const ALLOWED_SCHEMES: [&str; 3] = ["https", "http", "git"];

const MAX_URL_LEN: usize = 2048;
const MAX_REF_LEN: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GitUrl(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GitUrlError {
    #[error("the repository URL is empty")]
    Empty,
    #[error("the repository URL is longer than {MAX_URL_LEN} characters")]
    TooLong,
    #[error("the repository URL cannot start with '-'")]
    LeadingDash,
    #[error("the repository URL contains whitespace, control characters or a backslash")]
    BadChar,
    #[error("{0:?} is not a URL; give an https://, http:// or git:// repository URL")]
    NotAUrl(String),
    #[error("the {0:?} scheme is not allowed; use https://, http:// or git://")]
    Scheme(String),
    #[error("the repository URL has no host")]
    NoHost,
    #[error("a repository host cannot start with '-'")]
    DashHost,
    #[error("the repository URL has no path to a repository")]
    NoPath,
    #[error("the repository URL cannot carry a query or a fragment")]
    QueryOrFragment,
}

impl GitUrl {
    pub fn parse(raw: &str) -> Result<Self, GitUrlError> {
        if raw.is_empty() {
            return Err(GitUrlError::Empty);
        }
        if raw.len() > MAX_URL_LEN {
            return Err(GitUrlError::TooLong);
        }
        if raw.starts_with('-') {
            return Err(GitUrlError::LeadingDash);
        }
        // A backslash is a path separator to the URL standard and part of the user name to
        // curl: the two would see different hosts.
        if raw
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
        {
            return Err(GitUrlError::BadChar);
        }
        // `ext::cmd`, `fd::…` and other remote helpers are spelled `<helper>::<address>`.
        if let Some((helper, _)) = raw.split_once("::")
            && helper
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        {
            return Err(GitUrlError::Scheme(helper.to_owned()));
        }
        let url = Url::parse(raw).map_err(|_| GitUrlError::NotAUrl(short(raw)))?;
        if !ALLOWED_SCHEMES.contains(&url.scheme()) {
            return Err(GitUrlError::Scheme(url.scheme().to_owned()));
        }
        match url.host_str() {
            None | Some("") => return Err(GitUrlError::NoHost),
            // ssh-style option injection through the host (`-oProxyCommand=…`), whatever the
            // scheme: never handed to any program.
            Some(host) if host.starts_with('-') => return Err(GitUrlError::DashHost),
            Some(_) => {}
        }
        if url.path().trim_matches('/').is_empty() {
            return Err(GitUrlError::NoPath);
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(GitUrlError::QueryOrFragment);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URL with any password or token in it replaced, for logs and listings.
    pub fn redacted(&self) -> String {
        match Url::parse(&self.0) {
            Ok(mut url) if !url.username().is_empty() || url.password().is_some() => {
                let _ = url.set_username("");
                let _ = url.set_password(None);
                let s = url.to_string();
                s.replacen("://", "://***@", 1)
            }
            _ => self.0.clone(),
        }
    }

    /// The URL with any user name and password removed, for the clone's saved remote.
    pub fn without_credentials(&self) -> String {
        match Url::parse(&self.0) {
            Ok(mut url) if !url.username().is_empty() || url.password().is_some() => {
                let _ = url.set_username("");
                let _ = url.set_password(None);
                url.to_string()
            }
            _ => self.0.clone(),
        }
    }

    /// The last path segment without `.git`: what a project deployed from this repository is
    /// called unless the user names it.
    pub fn repo_name(&self) -> Option<&str> {
        let path = self.0.split(['?', '#']).next()?;
        let last = path.trim_end_matches('/').rsplit('/').next()?;
        let last = last.strip_suffix(".git").unwrap_or(last);
        (!last.is_empty()).then_some(last)
    }
}

impl fmt::Display for GitUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl TryFrom<String> for GitUrl {
    type Error = GitUrlError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<GitUrl> for String {
    fn from(value: GitUrl) -> Self {
        value.0
    }
}

/// A branch or tag name to check out (`--branch`), validated like `git check-ref-format` but
/// stricter: it may never look like an option.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GitRef(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a valid branch or tag name")]
pub struct GitRefError(pub String);

impl GitRef {
    pub fn parse(raw: &str) -> Result<Self, GitRefError> {
        let ok = !raw.is_empty()
            && raw.len() <= MAX_REF_LEN
            && !raw.starts_with(['-', '/', '.'])
            && !raw.ends_with(['/', '.'])
            && !raw.ends_with(".lock")
            && !raw.contains("..")
            && !raw.contains("//")
            && !raw.contains("/.")
            && !raw.contains("@{")
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | '+'));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(GitRefError(short(raw)))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GitRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for GitRef {
    type Error = GitRefError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<GitRef> for String {
    fn from(value: GitRef) -> Self {
        value.0
    }
}

fn short(raw: &str) -> String {
    raw.chars().take(100).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_remote_repository_urls() {
        for ok in [
            "https://github.com/acme/site.git",
            "http://127.0.0.1:8123/site.git",
            "git://127.0.0.1:9418/site",
            "https://user:token@git.example.com/a/b",
            "https://[::1]:8443/site.git",
        ] {
            assert!(GitUrl::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_dangerous_or_malformed_urls() {
        let cases: &[(&str, GitUrlError)] = &[
            ("", GitUrlError::Empty),
            ("--upload-pack=touch pwned", GitUrlError::LeadingDash),
            ("-u./payload", GitUrlError::LeadingDash),
            ("ext::sh -c touch% /tmp/pwned", GitUrlError::BadChar),
            ("ext::sh", GitUrlError::Scheme("ext".into())),
            ("fd::7", GitUrlError::Scheme("fd".into())),
            ("file:///etc", GitUrlError::Scheme("file".into())),
            (
                "ssh://git@github.com/a/b",
                GitUrlError::Scheme("ssh".into()),
            ),
            ("https://github.com", GitUrlError::NoPath),
            ("https://github.com/a/b?x=1", GitUrlError::QueryOrFragment),
            ("https://github.com/a/b\n", GitUrlError::BadChar),
            ("https://-oProxyCommand=x/a/b", GitUrlError::DashHost),
            (
                "http://8.8.8.8\\@127.0.0.1:9000/a.git",
                GitUrlError::BadChar,
            ),
            (
                "https://github.com\\@169.254.169.254/a.git",
                GitUrlError::BadChar,
            ),
            ("git://-evil.example/a", GitUrlError::DashHost),
            ("http://-x:80/a.git", GitUrlError::DashHost),
            (
                "/srv/repos/site",
                GitUrlError::NotAUrl("/srv/repos/site".into()),
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(GitUrl::parse(raw).as_ref(), Err(want), "{raw:?}");
        }
        assert!(matches!(
            GitUrl::parse("git@github.com:acme/site.git"),
            Err(GitUrlError::NotAUrl(_) | GitUrlError::Scheme(_))
        ));
    }

    #[test]
    fn redacts_credentials_and_names_the_repo() {
        let url =
            GitUrl::parse("https://user:s3cret@git.example.com/acme/My_Site.git").expect("valid");
        assert!(!url.redacted().contains("s3cret"));
        assert!(!url.to_string().contains("user"));
        assert_eq!(url.repo_name(), Some("My_Site"));
        let plain = GitUrl::parse("git://127.0.0.1/site/").expect("valid");
        assert_eq!(plain.repo_name(), Some("site"));
    }

    #[test]
    fn validates_refs() {
        for ok in [
            "main",
            "release/1.2",
            "v1.0.0",
            "feature_x",
            "renovate/npm-1.x",
        ] {
            assert!(GitRef::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-b",
            "--upload-pack=x",
            "a..b",
            "a b",
            "a/",
            "/a",
            "a.lock",
            "a@{1}",
            "a//b",
            ".hidden",
            "a/.b",
            "a;rm",
        ] {
            assert!(GitRef::parse(bad).is_err(), "{bad:?}");
        }
    }
}
