//! What a verified delivery says happened in the repository, the same for every forge: a push
//! to a branch (with the exact commit), a branch deleted, a pull (merge) request opened, updated
//! or closed, or something Scale Mesh does nothing with (a tag, a comment, a ping), with why.

use serde_json::Value;

use super::{Headers, Provider};

/// A commit as a deployment records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// The full 40-hex SHA-1 (or 64-hex SHA-256) name of the commit.
    pub sha: String,
    /// The first line of its message.
    pub message: String,
    pub author: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullAction {
    /// Opened, or reopened.
    Opened,
    /// New commits on its head branch.
    Updated,
    /// Closed, merged or not.
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Push {
        branch: String,
        commit: Commit,
    },
    BranchDeleted {
        branch: String,
    },
    PullRequest {
        number: u64,
        action: PullAction,
        /// The head branch and its newest commit (absent when closed).
        branch: String,
        commit: Option<Commit>,
        /// The head lives in another repository than the one connected: code from outside.
        from_fork: bool,
    },
    /// Nothing to do; why, for the delivery log.
    Ignored(String),
}

/// What a delivery is: its id (a forge sends the same id again when it retries), the
/// repository it is about (as its forge names it, `owner/name`), and the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: Option<String>,
    pub repository: Option<String>,
    pub event: Event,
}

/// Why a delivery cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    #[error("the delivery does not say what it is: {0} is missing")]
    NoKind(&'static str),
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    #[error("the {kind} event lacks {field}")]
    Missing { kind: String, field: &'static str },
}

/// Reads a delivery `provider` sent with `headers` and `body` (its signature checked already).
pub fn read(
    provider: Provider,
    headers: &(impl Headers + ?Sized),
    body: &[u8],
) -> Result<Delivery, Unreadable> {
    let json: Value =
        serde_json::from_slice(body).map_err(|e| Unreadable::NotJson(e.to_string()))?;
    match provider {
        Provider::GitLab => gitlab(headers, &json),
        Provider::GitHub | Provider::Gitea | Provider::Generic => {
            github_like(provider, headers, &json)
        }
    }
}

const ZEROS: &str = "0000000000000000000000000000000000000000";

fn github_like(
    provider: Provider,
    headers: &(impl Headers + ?Sized),
    json: &Value,
) -> Result<Delivery, Unreadable> {
    let (kind_header, id_headers): (&'static str, &[&str]) = match provider {
        Provider::Gitea => (
            "x-gitea-event",
            &[
                "x-gitea-delivery",
                "x-forgejo-delivery",
                "x-github-delivery",
            ],
        ),
        _ => ("x-github-event", &["x-github-delivery"]),
    };
    let kind = headers
        .get(kind_header)
        .or_else(|| headers.get("x-forgejo-event"))
        .or_else(|| headers.get("x-github-event"))
        .ok_or(Unreadable::NoKind("X-GitHub-Event (or X-Gitea-Event)"))?;
    let id = id_headers
        .iter()
        .find_map(|h| headers.get(h))
        .map(str::to_owned);
    let repository = text(json, &["repository", "full_name"]);
    let event = match kind {
        "push" => github_push(json)?,
        "delete" => match (text(json, &["ref_type"]).as_deref(), text(json, &["ref"])) {
            (Some("branch"), Some(name)) => Event::BranchDeleted {
                branch: name.strip_prefix("refs/heads/").unwrap_or(&name).to_owned(),
            },
            _ => Event::Ignored("a tag was deleted".into()),
        },
        "pull_request" => github_pull(json)?,
        "ping" => Event::Ignored("a ping: the webhook reaches Scale Mesh".into()),
        other => Event::Ignored(format!("{:.40} events are not deployed", other)),
    };
    Ok(Delivery {
        id,
        repository,
        event,
    })
}

/// The branch a push moved and its new head; or what the push is instead: a push of a tag is
/// ignored, one whose new head is all zeros (or says `deleted`) deleted the branch.
fn pushed(json: &Value, kind: &str) -> Result<Result<(String, String), Event>, Unreadable> {
    let reference = text(json, &["ref"]).ok_or_else(|| missing(kind, "ref"))?;
    let Some(branch) = reference.strip_prefix("refs/heads/") else {
        return Ok(Err(Event::Ignored(format!(
            "{reference:.80} is not a branch"
        ))));
    };
    let after = text(json, &["after"]).ok_or_else(|| missing(kind, "after"))?;
    if json["deleted"].as_bool() == Some(true) || after == ZEROS {
        return Ok(Err(Event::BranchDeleted {
            branch: branch.to_owned(),
        }));
    }
    Ok(Ok((branch.to_owned(), after)))
}

/// A delivery of `kind` that lacks `field`.
fn missing(kind: &str, field: &'static str) -> Unreadable {
    Unreadable::Missing {
        kind: kind.to_owned(),
        field,
    }
}

fn github_push(json: &Value) -> Result<Event, Unreadable> {
    let (branch, after) = match pushed(json, "push")? {
        Ok(pushed) => pushed,
        Err(event) => return Ok(event),
    };
    let head = &json["head_commit"];
    let author = text(head, &["author", "username"])
        .or_else(|| text(head, &["author", "name"]))
        .or_else(|| text(json, &["pusher", "name"]))
        .unwrap_or_default();
    Ok(Event::Push {
        branch,
        commit: Commit {
            sha: after,
            message: first_line(text(head, &["message"]).unwrap_or_default()),
            author,
        },
    })
}

fn github_pull(json: &Value) -> Result<Event, Unreadable> {
    let missing = |field| missing("pull_request", field);
    let action = text(json, &["action"]).ok_or(missing("action"))?;
    let action = match action.as_str() {
        "opened" | "reopened" => PullAction::Opened,
        // Gitea says "synchronized".
        "synchronize" | "synchronized" => PullAction::Updated,
        "closed" => PullAction::Closed,
        other => {
            return Ok(Event::Ignored(format!(
                "pull requests {other:.40} are not deployed"
            )));
        }
    };
    let pr = &json["pull_request"];
    let number = json["number"]
        .as_u64()
        .or_else(|| pr["number"].as_u64())
        .ok_or(missing("number"))?;
    let branch = text(pr, &["head", "ref"]).ok_or(missing("pull_request.head.ref"))?;
    let head_repo = text(pr, &["head", "repo", "full_name"]);
    let base_repo = text(pr, &["base", "repo", "full_name"]);
    let commit = match action {
        PullAction::Closed => None,
        _ => Some(Commit {
            sha: text(pr, &["head", "sha"]).ok_or(missing("pull_request.head.sha"))?,
            message: first_line(text(pr, &["title"]).unwrap_or_default()),
            author: text(pr, &["user", "login"]).unwrap_or_default(),
        }),
    };
    Ok(Event::PullRequest {
        number,
        action,
        branch,
        commit,
        from_fork: head_repo.is_none() || head_repo != base_repo,
    })
}

fn gitlab(headers: &(impl Headers + ?Sized), json: &Value) -> Result<Delivery, Unreadable> {
    let kind = headers
        .get("x-gitlab-event")
        .ok_or(Unreadable::NoKind("X-Gitlab-Event"))?;
    // The same key on every retry and resend; the event UUID where it is not sent.
    let id = ["idempotency-key", "x-gitlab-event-uuid"]
        .iter()
        .find_map(|h| headers.get(h))
        .map(str::to_owned);
    let repository = text(json, &["project", "path_with_namespace"]);
    let event = match kind {
        "Push Hook" => gitlab_push(json)?,
        "Merge Request Hook" => gitlab_merge_request(json)?,
        other => Event::Ignored(format!("{other:.40} events are not deployed")),
    };
    Ok(Delivery {
        id,
        repository,
        event,
    })
}

fn gitlab_push(json: &Value) -> Result<Event, Unreadable> {
    let (branch, after) = match pushed(json, "Push Hook")? {
        Ok(pushed) => pushed,
        Err(event) => return Ok(event),
    };
    let sha = text(json, &["checkout_sha"]).unwrap_or(after);
    // The commits listed (the first 20) end with the newest; the pushed head is among them.
    let message = json["commits"]
        .as_array()
        .and_then(|commits| commits.iter().find(|c| c["id"].as_str() == Some(&sha)))
        .and_then(|c| c["message"].as_str())
        .map(|m| first_line(m.to_owned()))
        .unwrap_or_default();
    Ok(Event::Push {
        branch,
        commit: Commit {
            sha,
            message,
            author: text(json, &["user_username"]).unwrap_or_default(),
        },
    })
}

fn gitlab_merge_request(json: &Value) -> Result<Event, Unreadable> {
    let missing = |field| missing("Merge Request Hook", field);
    let attrs = &json["object_attributes"];
    let action = text(attrs, &["action"]).ok_or(missing("object_attributes.action"))?;
    let action = match action.as_str() {
        "open" | "reopen" => PullAction::Opened,
        // An update carries `oldrev` only when the code changed (not for a new title or label).
        "update" if attrs.get("oldrev").is_some_and(|v| !v.is_null()) => PullAction::Updated,
        "close" | "merge" => PullAction::Closed,
        other => {
            return Ok(Event::Ignored(format!(
                "merge requests {other:.40} without new commits are not deployed"
            )));
        }
    };
    let number = attrs["iid"]
        .as_u64()
        .ok_or(missing("object_attributes.iid"))?;
    let branch =
        text(attrs, &["source_branch"]).ok_or(missing("object_attributes.source_branch"))?;
    let from_fork = attrs["source_project_id"] != attrs["target_project_id"];
    let commit = match action {
        PullAction::Closed => None,
        _ => Some(Commit {
            sha: text(attrs, &["last_commit", "id"])
                .ok_or(missing("object_attributes.last_commit.id"))?,
            message: first_line(text(attrs, &["title"]).unwrap_or_default()),
            author: text(json, &["user", "username"]).unwrap_or_default(),
        }),
    };
    Ok(Event::PullRequest {
        number,
        action,
        branch,
        commit,
        from_fork,
    })
}

/// The string at `path` in `json`, if there is one.
fn text(json: &Value, path: &[&str]) -> Option<String> {
    path.iter()
        .try_fold(json, |v, key| v.get(key))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The first line of a commit message, at most 200 characters, control characters dropped.
fn first_line(message: String) -> String {
    message
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect()
}

#[cfg(test)]
#[path = "event_tests.rs"]
mod tests;
