//! Git forges talking to Scale Mesh: a delivery to `/hooks/git/<project>` is checked to come
//! from the forge the project is connected to (`signature.rs`, before anything of its body is
//! read), then read as what happened in the repository (`event.rs`); a branch or pull request
//! gets a stable preview host label (`label.rs`). Each is a pure decision, tested against a
//! table of deliveries shaped as GitHub, GitLab and Gitea document them.

pub mod event;
pub mod label;
pub mod signature;
pub mod status;

use std::fmt;
use std::str::FromStr;

/// The forges whose webhooks Scale Mesh reads. Forgejo speaks Gitea's dialect; `Generic` is any
/// other sender that signs its body as GitHub does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    GitHub,
    GitLab,
    Gitea,
    Generic,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GitHub => "github",
            Self::GitLab => "gitlab",
            Self::Gitea => "gitea",
            Self::Generic => "generic",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Provider {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "github" => Ok(Self::GitHub),
            "gitlab" => Ok(Self::GitLab),
            "gitea" | "forgejo" => Ok(Self::Gitea),
            "generic" => Ok(Self::Generic),
            other => Err(format!(
                "{other:.40?} is not a provider: use github, gitlab, gitea or generic"
            )),
        }
    }
}

/// A delivery's headers, as the decisions here read them: names lower-case.
pub trait Headers {
    fn get(&self, name: &str) -> Option<&str>;
}

impl Headers for axum::http::HeaderMap {
    fn get(&self, name: &str) -> Option<&str> {
        axum::http::HeaderMap::get(self, name).and_then(|v| v.to_str().ok())
    }
}

impl Headers for [(&str, &str)] {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}
