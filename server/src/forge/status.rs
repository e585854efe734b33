//! A commit status as each forge's REST API takes it: where to `POST` it, how the token goes,
//! and the body, for GitHub (`/repos/{owner}/{repo}/statuses/{sha}`), Gitea and Forgejo (the
//! same path under `/api/v1`, `Authorization: token`) and GitLab
//! (`/projects/{url-encoded path}/statuses/{sha}`, `PRIVATE-TOKEN`, its own state names).

use serde_json::{Value, json};

use super::Provider;

/// What a deployment's commit shows on the forge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Queued or building.
    Pending,
    Success,
    /// The build failed.
    Failure,
    /// Canceled or superseded.
    Error,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Error => "error",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "pending" => Some(Self::Pending),
            "success" => Some(Self::Success),
            "failure" => Some(Self::Failure),
            "error" => Some(Self::Error),
            _ => None,
        }
    }
}

/// The request that sets a status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRequest {
    pub url: String,
    /// The header the token goes in, and its value.
    pub auth: (&'static str, String),
    pub body: Value,
}

/// The REST API of the forge hosting `git_url`, as that forge serves it by default.
pub fn default_api(provider: Provider, git_url: &str) -> Option<String> {
    let url = url::Url::parse(git_url).ok()?;
    let host = url.host_str()?;
    match provider {
        Provider::GitHub | Provider::Generic if host == "github.com" => {
            Some("https://api.github.com".into())
        }
        Provider::GitHub | Provider::Generic => Some(format!("https://{host}/api/v3")),
        Provider::GitLab => Some(format!("https://{host}/api/v4")),
        Provider::Gitea => Some(format!("https://{host}/api/v1")),
    }
}

/// What to say of a commit: its state, the deployment's URL, a line of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report<'a> {
    pub sha: &'a str,
    pub state: State,
    pub target_url: &'a str,
    pub description: &'a str,
}

/// The status request for `report`'s commit of the repository at `git_url` (its path names
/// it), through the API at `api` with `token`.
pub fn request(
    provider: Provider,
    api: &str,
    git_url: &str,
    token: &str,
    report: &Report<'_>,
) -> Option<StatusRequest> {
    let Report {
        sha,
        state,
        target_url,
        description,
    } = *report;
    let url = url::Url::parse(git_url).ok()?;
    let path = url.path().trim_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    if path.is_empty() || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let api = api.trim_end_matches('/');
    let description: String = description.chars().take(140).collect();
    Some(match provider {
        Provider::GitLab => {
            let project: String = url::form_urlencoded::byte_serialize(path.as_bytes()).collect();
            let state = match state {
                State::Pending => "pending",
                State::Success => "success",
                State::Failure => "failed",
                State::Error => "canceled",
            };
            StatusRequest {
                url: format!("{api}/projects/{project}/statuses/{sha}"),
                auth: ("private-token", token.to_owned()),
                body: json!({"state": state, "target_url": target_url,
                    "description": description, "name": "scalemesh"}),
            }
        }
        Provider::GitHub | Provider::Gitea | Provider::Generic => {
            let (owner, repo) = path.rsplit_once('/')?;
            let auth = match provider {
                Provider::Gitea => format!("token {token}"),
                _ => format!("Bearer {token}"),
            };
            StatusRequest {
                url: format!("{api}/repos/{owner}/{repo}/statuses/{sha}"),
                auth: ("authorization", auth),
                body: json!({"state": state.as_str(), "target_url": target_url,
                    "description": description, "context": "scalemesh"}),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn each_forge_gets_its_documented_path_token_and_state() {
        // (provider, api, git url, state, url, auth header, state sent)
        let table = [
            (
                Provider::GitHub,
                "https://api.github.com",
                "https://github.com/acme/site.git",
                State::Pending,
                format!("https://api.github.com/repos/acme/site/statuses/{SHA}"),
                ("authorization", "Bearer t"),
                "pending",
            ),
            (
                Provider::GitHub,
                "https://api.github.com/",
                "https://github.com/acme/site",
                State::Failure,
                format!("https://api.github.com/repos/acme/site/statuses/{SHA}"),
                ("authorization", "Bearer t"),
                "failure",
            ),
            (
                Provider::Gitea,
                "https://git.example.com/api/v1",
                "https://git.example.com/acme/site.git",
                State::Success,
                format!("https://git.example.com/api/v1/repos/acme/site/statuses/{SHA}"),
                ("authorization", "token t"),
                "success",
            ),
            (
                Provider::GitLab,
                "https://gitlab.com/api/v4",
                "https://gitlab.com/group/sub/site.git",
                State::Failure,
                format!("https://gitlab.com/api/v4/projects/group%2Fsub%2Fsite/statuses/{SHA}"),
                ("private-token", "t"),
                "failed",
            ),
            (
                Provider::GitLab,
                "https://gitlab.com/api/v4",
                "https://gitlab.com/group/site.git",
                State::Error,
                format!("https://gitlab.com/api/v4/projects/group%2Fsite/statuses/{SHA}"),
                ("private-token", "t"),
                "canceled",
            ),
        ];
        for (provider, api, git, state, url, (header, value), sent) in table {
            let report = Report {
                sha: SHA,
                state,
                target_url: "https://x--site.example.com",
                description: "Ready",
            };
            let r = request(provider, api, git, "t", &report).expect("a request");
            assert_eq!(r.url, url);
            assert_eq!(r.auth, (header, value.to_owned()));
            assert_eq!(r.body["state"], sent);
            assert_eq!(r.body["target_url"], "https://x--site.example.com");
        }
    }

    #[test]
    fn a_repository_without_owner_or_a_commit_that_is_not_hex_sets_nothing() {
        let report = |sha| Report {
            sha,
            state: State::Success,
            target_url: "",
            description: "",
        };
        let api = "https://api.github.com";
        assert!(
            request(
                Provider::GitHub,
                api,
                "https://github.com/site",
                "t",
                &report(SHA)
            )
            .is_none()
        );
        assert!(
            request(
                Provider::GitHub,
                api,
                "https://github.com/a/b",
                "t",
                &report("../x")
            )
            .is_none()
        );
    }

    #[test]
    fn the_default_api_is_the_forge_s_own() {
        let table = [
            (
                Provider::GitHub,
                "https://github.com/acme/site.git",
                "https://api.github.com",
            ),
            (
                Provider::GitHub,
                "https://ghe.corp.example/acme/site.git",
                "https://ghe.corp.example/api/v3",
            ),
            (
                Provider::GitLab,
                "https://gitlab.com/acme/site.git",
                "https://gitlab.com/api/v4",
            ),
            (
                Provider::Gitea,
                "https://codeberg.org/acme/site.git",
                "https://codeberg.org/api/v1",
            ),
        ];
        for (provider, git, api) in table {
            assert_eq!(default_api(provider, git).as_deref(), Some(api), "{git}");
        }
    }
}
