//! Deploy hooks: a secret URL that builds a branch when POSTed, with no token; shown once,
//! listed without it, dead once removed.

use serde_json::json;

use serde_json::Value;

use crate::helpers::{FakeBuilder, TestApp, spawn_app, status_json};

/// Project `site`, building `main`.
async fn site(app: &TestApp) {
    let url = "https://git.example.com/acme/site.git";
    let (status, body) = app
        .post(
            "/api/v1/projects",
            json!({"name": "site", "git_url": url, "git_ref": "main"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

/// POSTs a hook's URL path, with no token.
async fn run(app: &TestApp, path: &str) -> (u16, Value) {
    status_json(app.http.post(app.url(path)).send().await.expect("hook")).await
}

async fn page(app: &TestApp, host: &str) -> String {
    app.site(host, "/").await.text().await.expect("body")
}

#[tokio::test]
async fn a_deploy_hook_builds_its_branch_production_or_preview() {
    let app = spawn_app().await;
    site(&app).await;
    let (status, cms) = app
        .post(
            "/api/v1/projects/site/hooks",
            json!({"name": "cms", "branch": "main"}),
        )
        .await;
    assert_eq!(status, 201, "{cms}");
    let cms_path = cms["path"].as_str().expect("the URL, once").to_owned();
    assert!(cms_path.starts_with("/hooks/deploy/smh_"), "{cms}");
    let (status, nightly) = app
        .post(
            "/api/v1/projects/site/hooks",
            json!({"name": "nightly", "branch": "next"}),
        )
        .await;
    assert_eq!(status, 201, "{nightly}");

    // The production branch: a build that goes live.
    let (status, answer) = run(&app, &cms_path).await;
    assert_eq!(status, 202, "{answer}");
    let id = scalemesh_core::DeploymentId::parse(answer["deployment"].as_str().expect("id"))
        .expect("an id");
    let job = app.job_for(&id).await;
    assert!(
        matches!(&job.source, scalemesh_core::job::JobSource::Git { git_ref: Some(r), commit: None, .. } if r.to_string() == "main"),
        "{:?}",
        job.source
    );
    FakeBuilder::new(job)
        .succeed(&app.storage, &[("index.html", "main")])
        .await;
    app.wait_status(&id, "ready").await;
    assert_eq!(page(&app, "site.localhost").await, "main");

    // Another branch: a preview at its own host; production stays.
    let (status, answer) = run(&app, nightly["path"].as_str().expect("path")).await;
    assert_eq!(status, 202, "{answer}");
    let id = scalemesh_core::DeploymentId::parse(answer["deployment"].as_str().expect("id"))
        .expect("an id");
    FakeBuilder::new(app.job_for(&id).await)
        .succeed(&app.storage, &[("index.html", "next")])
        .await;
    app.wait_status(&id, "ready").await;
    assert_eq!(page(&app, "git-next--site.localhost").await, "next");
    assert_eq!(page(&app, "site.localhost").await, "main");

    // Listed without their URLs, with when they were last used.
    let (_, listed) = app.get("/api/v1/projects/site/hooks").await;
    let hooks = listed["hooks"].as_array().expect("hooks");
    assert_eq!(hooks.len(), 2);
    assert!(
        hooks
            .iter()
            .all(|h| h.get("path").is_none() && !h["last_used_at"].is_null()),
        "{listed}"
    );
}

#[tokio::test]
async fn a_removed_hook_s_url_builds_nothing_and_bad_hooks_are_refused() {
    let app = spawn_app().await;
    site(&app).await;
    let (status, cms) = app
        .post("/api/v1/projects/site/hooks", json!({"name": "cms"}))
        .await;
    assert_eq!(status, 201, "{cms}");
    let cms_path = cms["path"].as_str().expect("the URL, once").to_owned();
    // A URL no hook has, and a removed hook's.
    assert_eq!(run(&app, "/hooks/deploy/smh_0123456789abcdef").await.0, 401);
    let (status, _) = app
        .call(
            &app.token,
            "DELETE",
            &format!("/api/v1/projects/site/hooks/{}", cms["id"]),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, answer) = run(&app, &cms_path).await;
    assert_eq!(status, 401, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("scalemesh hooks create")
    );
    assert!(app.recorded.jobs.lock().expect("lock").is_empty());

    // Bad input: named what to do, nothing made.
    for (body, code) in [
        (json!({"name": ""}), "invalid_name"),
        (json!({"name": "x", "branch": "-oops"}), "invalid_branch"),
        (json!({"name": "x", "extra": 1}), "invalid_field"),
    ] {
        let (status, answer) = app.post("/api/v1/projects/site/hooks", body).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error"]["code"], code, "{answer}");
    }
    let (_, listed) = app.get("/api/v1/projects/site/hooks").await;
    assert_eq!(listed["hooks"], json!([]));
}
