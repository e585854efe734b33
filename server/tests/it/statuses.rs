//! Commit statuses: a small HTTP server on loopback stands in for the forge's REST API and
//! records what the server sets, at the documented path and body; a forge that answers 500 is
//! tried again and never fails the deployment.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode, Uri};
use scalemesh_core::DeploymentId;
use scalemesh_server::forge::signature::sign;
use serde_json::{Value, json};

use crate::helpers::{FakeBuilder, TestApp, spawn_app_with, status_json};

/// (path, authorization, body) of each request the forge got.
type Got = Arc<Mutex<Vec<(String, String, Value)>>>;

/// A forge API on 127.0.0.1 answering `status` to everything: its base URL and what it got.
async fn forge(status: u16) -> (String, Got) {
    let got: Got = Arc::default();
    let seen = got.clone();
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: String| {
        let seen = seen.clone();
        async move {
            let auth = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let body = serde_json::from_str(&body).unwrap_or(Value::Null);
            seen.lock()
                .expect("lock")
                .push((uri.path().to_owned(), auth, body));
            StatusCode::from_u16(status).expect("a status")
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}/api", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, got)
}

async fn app_and_project(api: &str) -> (TestApp, String) {
    let app = spawn_app_with(|s| {
        s.allow_private_git_hosts =
            scalemesh_core::netguard::AllowList::parse("127.0.0.1").expect("allow");
        s.notify_retry = Duration::from_millis(10);
    })
    .await;
    let (status, body) = app
        .post(
            "/api/v1/projects",
            json!({"name": "site", "git_url": "https://git.example.com/acme/site.git"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app
        .call(
            &app.token,
            "PUT",
            "/api/v1/projects/site/git",
            Some(json!({"status_token": "forge-token", "api_url": api})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(!body.to_string().contains("forge-token"), "{body}");
    (app, body["secret"].as_str().expect("secret").to_owned())
}

/// Pushes `branch` at commit `sha` as GitHub would: the deployment.
async fn push(app: &TestApp, secret: &str, branch: &str, sha: &str) -> DeploymentId {
    let body = json!({
        "ref": format!("refs/heads/{branch}"), "after": sha,
        "repository": {"full_name": "acme/site"},
        "head_commit": {"id": sha, "message": "m", "author": {"username": "a"}}
    });
    let bytes = serde_json::to_vec(&body).expect("json");
    let res = app
        .http
        .post(app.url("/hooks/git/site"))
        .header("x-github-event", "push")
        .header("x-github-delivery", sha)
        .header(
            "x-hub-signature-256",
            format!("sha256={}", sign(&bytes, secret.as_bytes())),
        )
        .body(bytes)
        .send()
        .await
        .expect("delivery");
    let (status, answer) = status_json(res).await;
    assert_eq!(status, 202, "{answer}");
    DeploymentId::parse(answer["deployment"].as_str().expect("id")).expect("an id")
}

/// Waits until the forge got `n` requests.
async fn until(got: &Got, n: usize) {
    for _ in 0..300 {
        if got.lock().expect("lock").len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the forge got {:?}", got.lock().expect("lock"));
}

#[tokio::test]
async fn a_deployment_s_state_is_set_on_its_commit_as_github_documents() {
    let (api, got) = forge(201).await;
    let (app, secret) = app_and_project(&api).await;
    let sha = "a".repeat(40);
    let id = push(&app, &secret, "feature", &sha).await;
    until(&got, 1).await;
    FakeBuilder::new(app.job_for(&id).await)
        .succeed(&app.storage, &[("index.html", "hi")])
        .await;
    app.wait_status(&id, "ready").await;
    until(&got, 2).await;
    let got = got.lock().expect("lock").clone();
    for (path, auth, _) in &got {
        assert_eq!(path, &format!("/api/repos/acme/site/statuses/{sha}"));
        assert_eq!(auth, "Bearer forge-token");
    }
    assert_eq!(got[0].2["state"], "pending");
    assert_eq!(got[0].2["context"], "scalemesh");
    assert_eq!(got[1].2["state"], "success");
    let target = got[1].2["target_url"].as_str().expect("a URL");
    assert!(
        target.starts_with("http://git-feature--site.localhost:"),
        "{target}"
    );
    let (_, shown) = app.get("/api/v1/projects/site/git").await;
    assert_eq!(shown["commit_statuses"], true, "{shown}");
}

#[tokio::test]
async fn a_forge_that_answers_500_is_tried_again_and_never_fails_the_deployment() {
    let (api, got) = forge(500).await;
    let (app, secret) = app_and_project(&api).await;
    let id = push(&app, &secret, "main", &"b".repeat(40)).await;
    FakeBuilder::new(app.job_for(&id).await)
        .succeed(&app.storage, &[("index.html", "live")])
        .await;
    app.wait_status(&id, "ready").await;
    // Success is tried six times; the pending state, if not set yet, is dropped for it.
    let states = || -> Vec<Value> {
        got.lock()
            .expect("lock")
            .iter()
            .map(|g| g.2["state"].clone())
            .collect()
    };
    let successes = |states: &[Value]| states.iter().filter(|s| **s == "success").count();
    for _ in 0..300 {
        if successes(&states()) >= 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let states = states();
    assert_eq!(successes(&states), 6, "{states:?}");
    let first = states
        .iter()
        .position(|s| *s == "success")
        .expect("a success");
    assert!(
        states[first..].iter().all(|s| *s == "success"),
        "{states:?}"
    );
    assert_eq!(app.deployment(&id).await["status"], "ready");
    assert_eq!(
        app.site("site.localhost", "/")
            .await
            .text()
            .await
            .expect("body"),
        "live"
    );
}
