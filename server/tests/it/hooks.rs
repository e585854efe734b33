//! Push to deploy through `/hooks/git/<project>`: deliveries shaped as GitHub, Gitea and GitLab
//! document them, signed with the project's secret or not, replayed, or about another
//! repository. Only the right ones deploy, and exactly the commit they name; each branch and
//! pull request is served at its own host once its build is ready.

use scalemesh_core::DeploymentId;
use scalemesh_server::forge::signature::sign;
use serde_json::{Value, json};

use crate::helpers::{FakeBuilder, TestApp, spawn_app, status_json};

const REPO: &str = "https://git.example.com/acme/site.git";

fn sha(c: char) -> String {
    c.to_string().repeat(40)
}

/// Creates project `name` on [`REPO`] and connects it for `provider`: the secret.
async fn connected(app: &TestApp, name: &str, provider: &str) -> String {
    let (status, body) = app
        .post("/api/v1/projects", json!({"name": name, "git_url": REPO}))
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app
        .call(
            &app.token,
            "PUT",
            &format!("/api/v1/projects/{name}/git"),
            Some(json!({"provider": provider, "production_branch": "main"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["webhook_path"], format!("/hooks/git/{name}"));
    body["secret"].as_str().expect("a secret").to_owned()
}

/// A GitHub push of `branch` to `commit`, as GitHub documents it (trimmed to what matters).
fn github_push(repository: &str, branch: &str, commit: &str) -> Value {
    json!({
        "ref": format!("refs/heads/{branch}"),
        "before": sha('0'),
        "after": commit,
        "created": false,
        "deleted": false,
        "repository": {"full_name": repository, "clone_url": REPO},
        "pusher": {"name": "octocat"},
        "head_commit": {
            "id": commit,
            "message": "Say hello\n\nwith a body",
            "author": {"name": "Octo Cat", "username": "octocat"}
        }
    })
}

fn github_pull(action: &str, number: u64, branch: &str, commit: &str, head_repo: &str) -> Value {
    json!({
        "action": action,
        "number": number,
        "pull_request": {
            "number": number,
            "title": "Add a page",
            "user": {"login": "octocat"},
            "head": {"ref": branch, "sha": commit, "repo": {"full_name": head_repo}},
            "base": {"ref": "main", "repo": {"full_name": "acme/site"}}
        },
        "repository": {"full_name": "acme/site"}
    })
}

/// Sends `body` as a GitHub delivery of `event` with id `id`, signed with `secret` (unsigned
/// when `None`).
async fn github(
    app: &TestApp,
    project: &str,
    event: &str,
    id: &str,
    body: &Value,
    secret: Option<&str>,
) -> (u16, Value) {
    let bytes = serde_json::to_vec(body).expect("json");
    let mut req = app
        .http
        .post(app.url(&format!("/hooks/git/{project}")))
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", id);
    if let Some(secret) = secret {
        req = req.header(
            "x-hub-signature-256",
            format!("sha256={}", sign(&bytes, secret.as_bytes())),
        );
    }
    status_json(req.body(bytes).send().await.expect("delivery")).await
}

/// (what, event, delivery id, body, secret, status answered)
type Refused<'a> = (&'a str, &'a str, &'a str, &'a Value, Option<&'a str>, u16);

fn deployment_of(answer: &Value) -> DeploymentId {
    DeploymentId::parse(answer["deployment"].as_str().expect("a deployment")).expect("an id")
}

/// Builds `id` with one `index.html` saying `text`.
async fn build(app: &TestApp, id: &DeploymentId, text: &str) {
    FakeBuilder::new(app.job_for(id).await)
        .succeed(&app.storage, &[("index.html", text)])
        .await;
    app.wait_status(id, "ready").await;
}

/// The branch and exact commit the runner was asked to build for `id`.
async fn built_from(app: &TestApp, id: &DeploymentId) -> (String, String) {
    match app.job_for(id).await.source {
        scalemesh_core::job::JobSource::Git {
            git_ref, commit, ..
        } => (
            git_ref.map(|r| r.to_string()).unwrap_or_default(),
            commit.unwrap_or_default(),
        ),
        other => panic!("{other:?}"),
    }
}

/// `git show`'s previews: (branch or pull request, deployment served).
fn previews(shown: &Value) -> Vec<(&str, &str)> {
    shown["previews"]
        .as_array()
        .expect("previews")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or(""),
                p["deployment"].as_str().unwrap_or(""),
            )
        })
        .collect()
}

async fn page(app: &TestApp, host: &str) -> (u16, String) {
    let res = app.site(host, "/").await;
    (res.status().as_u16(), res.text().await.expect("body"))
}

#[tokio::test]
async fn a_push_deploys_its_exact_commit_and_each_branch_has_its_own_host() {
    let app = spawn_app().await;
    let secret = connected(&app, "site", "github").await;
    let push = github_push("acme/site", "main", &sha('a'));
    let (status, answer) = github(&app, "site", "push", "d-1", &push, Some(&secret)).await;
    assert_eq!(status, 202, "{answer}");
    assert!(
        answer["outcome"]
            .as_str()
            .expect("outcome")
            .contains("production build of main"),
        "{answer}"
    );
    let main = deployment_of(&answer);
    assert_eq!(built_from(&app, &main).await, ("main".into(), sha('a')));
    // The commit is shown while it is queued, as the delivery said it.
    let dep = app.deployment(&main).await;
    assert_eq!(dep["commit"]["sha"], sha('a'), "{dep}");
    assert_eq!(dep["commit"]["message"], "Say hello");
    assert_eq!(dep["commit"]["author"], "octocat");
    build(&app, &main, "main one").await;
    assert_eq!(page(&app, "site.localhost").await, (200, "main one".into()));
    assert_eq!(
        page(&app, "git-main--site.localhost").await,
        (200, "main one".into())
    );

    let push = github_push("acme/site", "feature/X", &sha('b'));
    let (status, answer) = github(&app, "site", "push", "d-2", &push, Some(&secret)).await;
    assert_eq!(status, 202, "{answer}");
    let host = "git-feature-x--site.localhost";
    let url = answer["preview_url"].as_str().expect("a preview URL");
    assert!(url.starts_with(&format!("http://{host}:")), "{answer}");
    let feature = deployment_of(&answer);
    assert_eq!(app.deployment(&feature).await["production"], false);
    // Nothing at the branch's host until its build is ready.
    assert_eq!(page(&app, host).await.0, 404);
    build(&app, &feature, "feature one").await;
    assert_eq!(page(&app, host).await, (200, "feature one".into()));
    assert_eq!(page(&app, "site.localhost").await, (200, "main one".into()));

    // `git show`: the deliveries, newest first, and both previews.
    let (status, shown) = app.get("/api/v1/projects/site/git").await;
    assert_eq!(status, 200, "{shown}");
    assert!(
        shown.get("secret").is_none(),
        "the secret is shown once: {shown}"
    );
    assert_eq!(shown["deliveries"][0]["id"], "d-2");
    assert_eq!(shown["deliveries"][0]["deployment"], feature.to_string());
    assert_eq!(
        previews(&shown),
        [("feature/X", feature.as_str()), ("main", main.as_str())]
    );

    // The branch is deleted: its host stops, production stays.
    let deleted =
        json!({"ref": "feature/X", "ref_type": "branch", "repository": {"full_name": "acme/site"}});
    let (status, answer) = github(&app, "site", "delete", "d-3", &deleted, Some(&secret)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(page(&app, host).await.0, 404);
    assert_eq!(page(&app, "site.localhost").await, (200, "main one".into()));
}

#[tokio::test]
async fn only_signed_deliveries_for_the_project_s_repository_are_taken() {
    let app = spawn_app().await;
    let secret = connected(&app, "site", "github").await;
    let push = github_push("acme/site", "main", &sha('c'));
    let other_repo = github_push("acme/other", "main", &sha('c'));
    // (what, event, id, body, secret, status)
    let refused: Vec<Refused> = vec![
        ("unsigned", "push", "r-1", &push, None, 401),
        (
            "wrong secret",
            "push",
            "r-2",
            &push,
            Some("not-the-secret"),
            401,
        ),
        (
            "another repository",
            "push",
            "r-3",
            &other_repo,
            Some(&secret),
            400,
        ),
    ];
    for (what, event, id, body, key, want) in refused {
        let (status, answer) = github(&app, "site", event, id, body, key).await;
        assert_eq!(status, want, "{what}: {answer}");
    }
    // A body changed on the way, under the signature of the original.
    let signed = serde_json::to_vec(&push).expect("json");
    let mut changed = push.clone();
    changed["after"] = json!(sha('d'));
    let res = app
        .http
        .post(app.url("/hooks/git/site"))
        .header("x-github-event", "push")
        .header("x-github-delivery", "r-4")
        .header(
            "x-hub-signature-256",
            format!("sha256={}", sign(&signed, secret.as_bytes())),
        )
        .body(serde_json::to_vec(&changed).expect("json"))
        .send()
        .await
        .expect("delivery");
    assert_eq!(res.status().as_u16(), 401);
    // A project nobody connected, and one that does not exist, answer the same.
    let (status, body) = app
        .post(
            "/api/v1/projects",
            json!({"name": "loose", "git_url": REPO}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (a, x) = github(&app, "loose", "push", "r-5", &push, Some(&secret)).await;
    let (b, y) = github(&app, "nothing-here", "push", "r-5", &push, Some(&secret)).await;
    assert_eq!((a, b), (404, 404));
    assert_eq!(
        x["error"]["message"]
            .as_str()
            .map(|m| m.replace("loose", "P")),
        y["error"]["message"]
            .as_str()
            .map(|m| m.replace("nothing-here", "P"))
    );
    assert!(
        app.recorded.jobs.lock().expect("lock").is_empty(),
        "nothing refused deployed"
    );
}

#[tokio::test]
async fn a_retried_delivery_deploys_once_and_a_new_secret_replaces_the_old() {
    let app = spawn_app().await;
    let secret = connected(&app, "site", "github").await;
    let push = github_push("acme/site", "main", &sha('c'));

    let ping =
        json!({"zen": "Keep it logically awesome.", "repository": {"full_name": "acme/site"}});
    let (status, answer) = github(&app, "site", "ping", "p-1", &ping, Some(&secret)).await;
    assert_eq!(
        (status, answer["deployment"].clone()),
        (200, Value::Null),
        "{answer}"
    );
    let (status, first) = github(&app, "site", "push", "g-1", &push, Some(&secret)).await;
    assert_eq!(status, 202, "{first}");
    // The forge retries the same delivery: one deployment.
    let (status, again) = github(&app, "site", "push", "g-1", &push, Some(&secret)).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["deployment"], first["deployment"]);
    assert_eq!(app.recorded.jobs.lock().expect("lock").len(), 1);
    // A new secret: the old one no longer signs.
    let (status, body) = app
        .call(
            &app.token,
            "PUT",
            "/api/v1/projects/site/git",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = github(&app, "site", "push", "g-2", &push, Some(&secret)).await;
    assert_eq!(status, 401);
    let (status, _) = app
        .call(&app.token, "DELETE", "/api/v1/projects/site/git", None)
        .await;
    assert_eq!(status, 204);
    let fresh = body["secret"].as_str().expect("secret");
    let (status, _) = github(&app, "site", "push", "g-3", &push, Some(fresh)).await;
    assert_eq!(status, 404, "disconnected");
}

#[tokio::test]
async fn pull_requests_get_their_own_host_until_closed_and_forks_are_not_built() {
    let app = spawn_app().await;
    let secret = connected(&app, "site", "github").await;
    let opened = github_pull("opened", 7, "add-page", &sha('e'), "acme/site");
    let (status, answer) =
        github(&app, "site", "pull_request", "pr-a", &opened, Some(&secret)).await;
    assert_eq!(status, 202, "{answer}");
    let first = deployment_of(&answer);
    build(&app, &first, "pr one").await;
    assert_eq!(
        page(&app, "pr-7--site.localhost").await,
        (200, "pr one".into())
    );
    let updated = github_pull("synchronize", 7, "add-page", &sha('f'), "acme/site");
    let (status, answer) = github(
        &app,
        "site",
        "pull_request",
        "pr-b",
        &updated,
        Some(&secret),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let second = deployment_of(&answer);
    let job = app.job_for(&second).await;
    assert!(
        matches!(&job.source, scalemesh_core::job::JobSource::Git { commit: Some(c), .. } if *c == sha('f'))
    );
    build(&app, &second, "pr two").await;
    assert_eq!(
        page(&app, "pr-7--site.localhost").await,
        (200, "pr two".into())
    );
    assert_eq!(
        page(&app, "site.localhost").await.0,
        404,
        "production untouched"
    );

    let fork = github_pull("opened", 8, "main", &sha('1'), "stranger/site");
    let (status, answer) = github(&app, "site", "pull_request", "pr-c", &fork, Some(&secret)).await;
    assert_eq!(
        (status, answer["deployment"].clone()),
        (200, Value::Null),
        "{answer}"
    );
    assert!(
        answer["outcome"]
            .as_str()
            .expect("outcome")
            .contains("fork")
    );

    let closed = github_pull("closed", 7, "add-page", &sha('f'), "acme/site");
    let (status, answer) =
        github(&app, "site", "pull_request", "pr-d", &closed, Some(&secret)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(page(&app, "pr-7--site.localhost").await.0, 404);
    assert_eq!(app.recorded.jobs.lock().expect("lock").len(), 2);
}

#[tokio::test]
async fn a_newer_push_supersedes_a_queued_build_of_its_branch() {
    let app = spawn_app().await;
    let secret = connected(&app, "site", "github").await;
    let mut ids = Vec::new();
    for (n, c) in [('1', 'a'), ('2', 'b')] {
        let push = github_push("acme/site", "feature", &sha(c));
        let (status, answer) = github(
            &app,
            "site",
            "push",
            &format!("s-{n}"),
            &push,
            Some(&secret),
        )
        .await;
        assert_eq!(status, 202, "{answer}");
        ids.push(deployment_of(&answer));
    }
    // Another branch's queued build is not touched.
    let other = github_push("acme/site", "other", &sha('c'));
    let (status, answer) = github(&app, "site", "push", "s-3", &other, Some(&secret)).await;
    assert_eq!(status, 202, "{answer}");
    let first = app.wait_status(&ids[0], "canceled").await;
    let reason = first["reason"].as_str().expect("a reason");
    assert!(
        reason.contains(&format!("superseded by deployment {}", ids[1])),
        "{reason}"
    );
    assert_eq!(app.deployment(&ids[1]).await["status"], "queued");
    assert_eq!(
        app.deployment(&deployment_of(&answer)).await["status"],
        "queued"
    );
    assert!(
        app.recorded
            .canceled
            .lock()
            .expect("lock")
            .contains(&ids[0])
    );
}

#[tokio::test]
async fn gitea_deliveries_deploy_as_gitea_signs_them() {
    let app = spawn_app().await;
    // X-Gitea-Signature: the bare hex HMAC of the body.
    let secret = connected(&app, "tea", "gitea").await;
    let push = github_push("acme/site", "main", &sha('a'));
    let bytes = serde_json::to_vec(&push).expect("json");
    let send = |headers, bytes| deliver(&app, "tea", headers, bytes);
    let signed = vec![
        ("x-gitea-event", "push".to_owned()),
        ("x-gitea-delivery", "t-1".to_owned()),
        ("x-gitea-signature", sign(&bytes, secret.as_bytes())),
    ];
    let (status, answer) = send(signed, bytes.clone()).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        built_from(&app, &deployment_of(&answer)).await,
        ("main".into(), sha('a'))
    );
    let unsigned = vec![
        ("x-gitea-event", "push".to_owned()),
        ("x-gitea-delivery", "t-2".to_owned()),
    ];
    assert_eq!(send(unsigned, bytes).await.0, 401);
}

/// Sends a delivery of `bytes` with `headers` to `project`'s hook.
async fn deliver(
    app: &TestApp,
    project: &str,
    headers: Vec<(&'static str, String)>,
    bytes: Vec<u8>,
) -> (u16, Value) {
    let mut req = app.http.post(app.url(&format!("/hooks/git/{project}")));
    for (name, value) in headers {
        req = req.header(name, value);
    }
    status_json(req.body(bytes).send().await.expect("delivery")).await
}

#[tokio::test]
async fn gitlab_deliveries_deploy_as_gitlab_signs_them() {
    let app = spawn_app().await;
    let send = |headers, bytes| deliver(&app, "lab", headers, bytes);
    // X-Gitlab-Token: the secret itself; a merge request gets its own host.
    let token = connected(&app, "lab", "gitlab").await;
    let push = json!({
        "object_kind": "push",
        "ref": "refs/heads/main",
        "before": sha('0'),
        "after": sha('b'),
        "checkout_sha": sha('b'),
        "user_username": "jsmith",
        "project": {"path_with_namespace": "acme/site"},
        "commits": [{"id": sha('b'), "message": "Fix the header\n"}]
    });
    let merge = json!({
        "object_kind": "merge_request",
        "user": {"username": "jsmith"},
        "project": {"path_with_namespace": "acme/site"},
        "object_attributes": {
            "iid": 3, "action": "open", "title": "Header",
            "source_branch": "header", "source_project_id": 1, "target_project_id": 1,
            "last_commit": {"id": sha('c')}
        }
    });
    for (event, uuid, body, want) in [
        ("Push Hook", "l-1", &push, sha('b')),
        ("Merge Request Hook", "l-2", &merge, sha('c')),
    ] {
        let headers = vec![
            ("x-gitlab-event", event.to_owned()),
            ("x-gitlab-event-uuid", uuid.to_owned()),
            ("x-gitlab-token", token.clone()),
        ];
        let (status, answer) = send(headers, serde_json::to_vec(body).expect("json")).await;
        assert_eq!(status, 202, "{event}: {answer}");
        let job = app.job_for(&deployment_of(&answer)).await;
        assert!(
            matches!(&job.source, scalemesh_core::job::JobSource::Git { commit: Some(c), .. } if *c == want)
        );
    }
    let wrong = vec![
        ("x-gitlab-event", "Push Hook".to_owned()),
        ("x-gitlab-token", format!("{token}x")),
    ];
    assert_eq!(
        send(wrong, serde_json::to_vec(&push).expect("json"))
            .await
            .0,
        401
    );
    let (_, shown) = app.get("/api/v1/projects/lab/git").await;
    assert!(
        shown["previews"]
            .as_array()
            .expect("previews")
            .iter()
            .any(|p| p["url"]
                .as_str()
                .is_some_and(|u| u.starts_with("http://pr-3--lab.localhost:"))),
        "{shown}"
    );
}

#[tokio::test]
async fn a_branch_s_host_never_moves_back_to_an_older_build_that_ends_late() {
    let app = spawn_app().await;
    let secret = connected(&app, "site", "github").await;
    let push = |c| github_push("acme/site", "feature", &sha(c));
    let (_, answer) = github(&app, "site", "push", "o-1", &push('a'), Some(&secret)).await;
    let older = deployment_of(&answer);
    // Building already when the next push comes: not superseded, but slower.
    let slow = FakeBuilder::new(app.job_for(&older).await);
    slow.reach_uploading().await;
    let (_, answer) = github(&app, "site", "push", "o-2", &push('b'), Some(&secret)).await;
    let newer = deployment_of(&answer);
    build(&app, &newer, "newer").await;
    slow.upload(&app.storage, &[("index.html", "older")]).await;
    let (status, body) = slow
        .report(scalemesh_core::wire::BuilderReport::Ready)
        .await;
    assert_eq!(status, 200, "{body}");
    app.wait_status(&older, "ready").await;
    assert_eq!(
        page(&app, "git-feature--site.localhost").await,
        (200, "newer".into())
    );
    // Its own host serves the older build still.
    assert_eq!(
        page(&app, &format!("{older}--site.localhost")).await,
        (200, "older".into())
    );
}
