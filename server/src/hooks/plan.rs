//! What a verified delivery makes the server do, as a pure decision: deploy a commit at a
//! branch's or pull request's preview (and production, for the production branch), stop a
//! preview, or nothing, with why. And whether a delivery is about the project's repository.

use crate::forge::event::{Commit, Event, PullAction};

/// What a preview label stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelKind {
    Branch,
    PullRequest,
}

impl LabelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Branch => "branch",
            Self::PullRequest => "pull_request",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Build `commit` of `branch`, served at the preview of `(kind, name)` once ready, and
    /// made production when `production`.
    Deploy {
        kind: LabelKind,
        /// The branch, or the pull request's number.
        name: String,
        branch: String,
        commit: Commit,
        production: bool,
    },
    /// The preview of `(kind, name)` stops answering; its queued builds are canceled.
    Stop {
        kind: LabelKind,
        name: String,
    },
    Nothing(String),
}

/// What to do about `event` for a project whose production branch is `production_branch`.
pub fn plan(production_branch: &str, event: &Event) -> Plan {
    match event {
        Event::Push { branch, commit } => Plan::Deploy {
            kind: LabelKind::Branch,
            name: branch.clone(),
            branch: branch.clone(),
            commit: commit.clone(),
            production: branch == production_branch,
        },
        Event::BranchDeleted { branch } if branch == production_branch => Plan::Nothing(format!(
            "the production branch {branch:.100} was deleted: production stays as it is"
        )),
        Event::BranchDeleted { branch } => Plan::Stop {
            kind: LabelKind::Branch,
            name: branch.clone(),
        },
        Event::PullRequest {
            number,
            action: PullAction::Closed,
            ..
        } => Plan::Stop {
            kind: LabelKind::PullRequest,
            name: number.to_string(),
        },
        Event::PullRequest {
            number,
            from_fork: true,
            ..
        } => Plan::Nothing(format!(
            "pull request #{number} comes from a fork: code from outside the repository is not \
             built by itself (push its branch to the repository to preview it)"
        )),
        Event::PullRequest {
            number,
            branch,
            commit: Some(commit),
            ..
        } => Plan::Deploy {
            kind: LabelKind::PullRequest,
            name: number.to_string(),
            branch: branch.clone(),
            commit: commit.clone(),
            production: false,
        },
        Event::PullRequest { number, .. } => {
            Plan::Nothing(format!("pull request #{number} names no commit"))
        }
        Event::Ignored(why) => Plan::Nothing(why.clone()),
    }
}

/// Whether `repository` (as a forge names it: `owner/name`, or a GitLab group path) is the
/// repository at `git_url`: the URL's path, without `.git`, is it or ends with `/` and it.
/// Case does not matter, as on every forge.
pub fn same_repository(git_url: &str, repository: &str) -> bool {
    let Ok(url) = url::Url::parse(git_url) else {
        return false;
    };
    let path = url.path().trim_matches('/');
    let path = path
        .strip_suffix(".git")
        .unwrap_or(path)
        .to_ascii_lowercase();
    let repository = repository.trim().trim_matches('/').to_ascii_lowercase();
    if repository.is_empty() {
        return false;
    }
    path == repository || path.ends_with(&format!("/{repository}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(sha: &str) -> Commit {
        Commit {
            sha: sha.repeat(40),
            message: "m".into(),
            author: "a".into(),
        }
    }

    fn deploy(kind: LabelKind, name: &str, branch: &str, c: &str, production: bool) -> Plan {
        Plan::Deploy {
            kind,
            name: name.into(),
            branch: branch.into(),
            commit: commit(c),
            production,
        }
    }

    fn pull(action: PullAction, c: Option<&str>, from_fork: bool) -> Event {
        Event::PullRequest {
            number: 7,
            action,
            branch: "feature/x".into(),
            commit: c.map(commit),
            from_fork,
        }
    }

    #[test]
    fn each_event_is_deployed_stopped_or_left_as_the_table_says() {
        let push = |branch: &str| Event::Push {
            branch: branch.into(),
            commit: commit("a"),
        };
        let deleted = |branch: &str| Event::BranchDeleted {
            branch: branch.into(),
        };
        let table: Vec<(Event, Plan)> = vec![
            (
                push("main"),
                deploy(LabelKind::Branch, "main", "main", "a", true),
            ),
            (
                push("feature/x"),
                deploy(LabelKind::Branch, "feature/x", "feature/x", "a", false),
            ),
            // Not the production branch, though it reads like one.
            (
                push("Main"),
                deploy(LabelKind::Branch, "Main", "Main", "a", false),
            ),
            (
                deleted("feature/x"),
                Plan::Stop {
                    kind: LabelKind::Branch,
                    name: "feature/x".into(),
                },
            ),
            (
                pull(PullAction::Opened, Some("b"), false),
                deploy(LabelKind::PullRequest, "7", "feature/x", "b", false),
            ),
            (
                pull(PullAction::Updated, Some("c"), false),
                deploy(LabelKind::PullRequest, "7", "feature/x", "c", false),
            ),
            (
                pull(PullAction::Closed, None, false),
                Plan::Stop {
                    kind: LabelKind::PullRequest,
                    name: "7".into(),
                },
            ),
            // A fork's pull request stops its preview when closed, like any other.
            (
                pull(PullAction::Closed, None, true),
                Plan::Stop {
                    kind: LabelKind::PullRequest,
                    name: "7".into(),
                },
            ),
        ];
        for (event, want) in table {
            assert_eq!(plan("main", &event), want, "{event:?}");
        }
        let nothing: Vec<(Event, &str)> = vec![
            (deleted("main"), "production stays"),
            (pull(PullAction::Opened, Some("b"), true), "fork"),
            (pull(PullAction::Updated, Some("b"), true), "fork"),
            (pull(PullAction::Opened, None, false), "names no commit"),
            (Event::Ignored("a ping".into()), "a ping"),
        ];
        for (event, why) in nothing {
            match plan("main", &event) {
                Plan::Nothing(said) => assert!(said.contains(why), "{event:?}: {said}"),
                other => panic!("{event:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_delivery_is_about_the_project_s_repository_or_refused() {
        // (git_url, repository, same)
        let table = [
            ("https://github.com/acme/site.git", "acme/site", true),
            ("https://github.com/acme/site", "Acme/Site", true),
            ("https://github.com/acme/site/", "acme/site", true),
            (
                "https://gitlab.example.com/git/group/sub/site.git",
                "group/sub/site",
                true,
            ),
            ("ssh://git@github.com/acme/site.git", "acme/site", true),
            ("git://127.0.0.1:9418/acme/site.git", "acme/site", true),
            ("https://github.com/acme/site.git", "acme/other", false),
            ("https://github.com/acme/site.git", "evil/acme/site", false),
            ("https://github.com/acme/mysite.git", "site", false),
            ("https://github.com/acme/site.git", "cme/site", false),
            ("https://github.com/acme/site.git", "", false),
            ("https://github.com/acme/site.git", "/", false),
            ("not a url", "acme/site", false),
        ];
        for (url, repository, same) in table {
            assert_eq!(same_repository(url, repository), same, "{url} {repository}");
        }
    }
}
