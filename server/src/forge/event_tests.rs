//! Deliveries shaped as GitHub, Gitea and GitLab document them, and what each one means.

use serde_json::json;

use super::*;

const SHA: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
const OLD: &str = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c";

fn commit(message: &str, author: &str) -> Option<Commit> {
    Some(Commit {
        sha: SHA.into(),
        message: message.into(),
        author: author.into(),
    })
}

fn github_push(reference: &str, after: &str, deleted: bool) -> serde_json::Value {
    json!({
        "ref": reference, "before": OLD, "after": after, "created": false, "deleted": deleted,
        "forced": false, "compare": "https://github.com/octo/site/compare/x...y",
        "commits": [],
        "head_commit": if deleted { serde_json::Value::Null } else { json!({
            "id": after, "message": "Fix the header\n\nLonger text", "timestamp": "2026-12-01T10:00:00Z",
            "author": {"name": "Mona Lisa", "email": "mona@example.com", "username": "mona"}
        })},
        "repository": {"full_name": "octo/site", "clone_url": "https://github.com/octo/site.git", "default_branch": "main"},
        "pusher": {"name": "mona", "email": "mona@example.com"}
    })
}

fn github_pull(action: &str, head_repo: &str) -> serde_json::Value {
    json!({
        "action": action, "number": 42,
        "pull_request": {
            "number": 42, "title": "Add a pricing page\nmore", "merged": false, "user": {"login": "hubot"},
            "head": {"sha": SHA, "ref": "feature/pricing", "repo": {"full_name": head_repo}},
            "base": {"sha": OLD, "ref": "main", "repo": {"full_name": "octo/site"}}
        },
        "repository": {"full_name": "octo/site"}
    })
}

fn gitlab_push(after: &str) -> serde_json::Value {
    json!({
        "object_kind": "push", "before": OLD, "after": after, "ref": "refs/heads/main",
        "checkout_sha": if after == super::ZEROS { serde_json::Value::Null } else { json!(after) },
        "user_username": "jsmith",
        "project": {"id": 15, "path_with_namespace": "group/site", "git_http_url": "https://gitlab.example.com/group/site.git", "default_branch": "main"},
        "commits": [{"id": OLD, "message": "older"}, {"id": SHA, "message": "Update the docs\n"}],
        "total_commits_count": 2
    })
}

fn gitlab_mr(action: &str, oldrev: Option<&str>, source_project: u64) -> serde_json::Value {
    let mut attrs = json!({
        "iid": 7, "action": action, "state": "opened", "title": "Dark mode",
        "source_branch": "dark-mode", "target_branch": "main",
        "source_project_id": source_project, "target_project_id": 15,
        "last_commit": {"id": SHA}, "draft": false
    });
    if let Some(rev) = oldrev {
        attrs["oldrev"] = json!(rev);
    }
    json!({
        "object_kind": "merge_request", "user": {"username": "jsmith"},
        "project": {"id": 15, "path_with_namespace": "group/site"},
        "object_attributes": attrs
    })
}

/// A provider, the headers and body it sends, and the repository and event they name.
type Case<'a> = (
    Provider,
    Vec<(&'a str, &'a str)>,
    serde_json::Value,
    &'a str,
    Event,
);

fn gh(event: &str) -> Vec<(&str, &str)> {
    vec![
        ("X-GitHub-Event", event),
        ("X-GitHub-Delivery", "72d3162e-cc78-11e3"),
    ]
}

fn gitea(event: &str) -> Vec<(&str, &str)> {
    vec![
        ("X-Gitea-Event", event),
        ("X-Gitea-Delivery", "f6266f16-1bf3"),
    ]
}

fn gl(event: &str) -> Vec<(&str, &str)> {
    vec![("X-Gitlab-Event", event), ("Idempotency-Key", "b6c2f1a0")]
}

fn pull(
    number: u64,
    action: PullAction,
    branch: &str,
    commit: Option<Commit>,
    from_fork: bool,
) -> Event {
    Event::PullRequest {
        number,
        action,
        branch: branch.into(),
        commit,
        from_fork,
    }
}

#[test]
fn deliveries_mean_what_their_forge_documents() {
    let cases = github_cases()
        .into_iter()
        .chain(gitea_cases())
        .chain(gitlab_cases());
    for (provider, headers, body, repository, event) in cases {
        let body = serde_json::to_vec(&body).expect("json");
        let read = read(provider, headers.as_slice(), &body)
            .unwrap_or_else(|e| panic!("{provider} {headers:?}: {e}"));
        assert_eq!(read.event, event, "{provider} {headers:?}");
        assert_eq!(read.repository.as_deref(), Some(repository));
        assert!(read.id.is_some(), "{provider} {headers:?}: the delivery id");
    }
}

/// GitHub's pushes (a branch, a deletion, a tag), branch deletions and pull requests.
fn github_cases() -> Vec<Case<'static>> {
    use Provider::*;
    let mut cases = vec![
        (
            GitHub,
            gh("push"),
            github_push("refs/heads/main", SHA, false),
            "octo/site",
            Event::Push {
                branch: "main".into(),
                commit: commit("Fix the header", "mona").expect("commit"),
            },
        ),
        (
            GitHub,
            gh("push"),
            github_push("refs/heads/feature/x", ZEROS, true),
            "octo/site",
            Event::BranchDeleted {
                branch: "feature/x".into(),
            },
        ),
        (
            GitHub,
            gh("push"),
            github_push("refs/tags/v1.0", SHA, false),
            "octo/site",
            Event::Ignored("refs/tags/v1.0 is not a branch".into()),
        ),
        (
            GitHub,
            gh("delete"),
            json!({"ref": "feature/x", "ref_type": "branch", "pusher_type": "user", "repository": {"full_name": "octo/site"}}),
            "octo/site",
            Event::BranchDeleted {
                branch: "feature/x".into(),
            },
        ),
    ];
    cases.extend(github_pull_cases());
    cases
}

/// GitHub's pull requests, from the repository itself and from a fork.
fn github_pull_cases() -> Vec<Case<'static>> {
    use Provider::*;
    vec![
        (
            GitHub,
            gh("pull_request"),
            github_pull("opened", "octo/site"),
            "octo/site",
            pull(
                42,
                PullAction::Opened,
                "feature/pricing",
                commit("Add a pricing page", "hubot"),
                false,
            ),
        ),
        (
            GitHub,
            gh("pull_request"),
            github_pull("synchronize", "octo/site"),
            "octo/site",
            pull(
                42,
                PullAction::Updated,
                "feature/pricing",
                commit("Add a pricing page", "hubot"),
                false,
            ),
        ),
        (
            GitHub,
            gh("pull_request"),
            github_pull("closed", "octo/site"),
            "octo/site",
            pull(42, PullAction::Closed, "feature/pricing", None, false),
        ),
        (
            GitHub,
            gh("pull_request"),
            github_pull("opened", "stranger/site"),
            "octo/site",
            pull(
                42,
                PullAction::Opened,
                "feature/pricing",
                commit("Add a pricing page", "hubot"),
                true,
            ),
        ),
        (
            GitHub,
            gh("pull_request"),
            github_pull("labeled", "octo/site"),
            "octo/site",
            Event::Ignored("pull requests labeled are not deployed".into()),
        ),
    ]
}

/// Gitea's pushes and pull requests (GitHub's shape, its own headers and "synchronized").
fn gitea_cases() -> Vec<Case<'static>> {
    use Provider::*;
    vec![
        (
            Gitea,
            gitea("push"),
            github_push("refs/heads/main", SHA, false),
            "octo/site",
            Event::Push {
                branch: "main".into(),
                commit: commit("Fix the header", "mona").expect("commit"),
            },
        ),
        (
            Gitea,
            gitea("pull_request"),
            github_pull("synchronized", "octo/site"),
            "octo/site",
            pull(
                42,
                PullAction::Updated,
                "feature/pricing",
                commit("Add a pricing page", "hubot"),
                false,
            ),
        ),
    ]
}

/// GitLab's pushes and merge requests.
fn gitlab_cases() -> Vec<Case<'static>> {
    use Provider::*;
    vec![
        (
            GitLab,
            gl("Push Hook"),
            gitlab_push(SHA),
            "group/site",
            Event::Push {
                branch: "main".into(),
                commit: commit("Update the docs", "jsmith").expect("commit"),
            },
        ),
        (
            GitLab,
            gl("Push Hook"),
            gitlab_push(ZEROS),
            "group/site",
            Event::BranchDeleted {
                branch: "main".into(),
            },
        ),
        (
            GitLab,
            gl("Merge Request Hook"),
            gitlab_mr("open", None, 15),
            "group/site",
            pull(
                7,
                PullAction::Opened,
                "dark-mode",
                commit("Dark mode", "jsmith"),
                false,
            ),
        ),
        (
            GitLab,
            gl("Merge Request Hook"),
            gitlab_mr("update", Some(OLD), 15),
            "group/site",
            pull(
                7,
                PullAction::Updated,
                "dark-mode",
                commit("Dark mode", "jsmith"),
                false,
            ),
        ),
        (
            GitLab,
            gl("Merge Request Hook"),
            gitlab_mr("update", None, 15),
            "group/site",
            Event::Ignored("merge requests update without new commits are not deployed".into()),
        ),
        (
            GitLab,
            gl("Merge Request Hook"),
            gitlab_mr("merge", None, 15),
            "group/site",
            pull(7, PullAction::Closed, "dark-mode", None, false),
        ),
        (
            GitLab,
            gl("Merge Request Hook"),
            gitlab_mr("open", None, 99),
            "group/site",
            pull(
                7,
                PullAction::Opened,
                "dark-mode",
                commit("Dark mode", "jsmith"),
                true,
            ),
        ),
    ]
}

#[test]
fn deliveries_that_do_not_say_enough_are_unreadable() {
    let push = serde_json::to_vec(&github_push("refs/heads/main", SHA, false)).expect("json");
    assert_eq!(
        read(Provider::GitHub, [].as_slice(), &push),
        Err(Unreadable::NoKind("X-GitHub-Event (or X-Gitea-Event)"))
    );
    assert_eq!(
        read(
            Provider::GitLab,
            [("X-GitHub-Event", "push")].as_slice(),
            &push
        ),
        Err(Unreadable::NoKind("X-Gitlab-Event"))
    );
    assert!(matches!(
        read(
            Provider::GitHub,
            [("X-GitHub-Event", "push")].as_slice(),
            b"{not json"
        ),
        Err(Unreadable::NotJson(_))
    ));
    assert_eq!(
        read(
            Provider::GitHub,
            [("X-GitHub-Event", "push")].as_slice(),
            br#"{"ref": "refs/heads/main"}"#
        ),
        Err(Unreadable::Missing {
            kind: "push".into(),
            field: "after"
        })
    );
    let ping = read(
        Provider::GitHub,
        [("X-GitHub-Event", "ping")].as_slice(),
        b"{}",
    )
    .expect("ping");
    assert!(matches!(ping.event, Event::Ignored(_)));
    assert_eq!(ping.id, None);
}
