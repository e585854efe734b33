//! Outgoing notifications: a receiver on loopback (allowed for the test) gets each event it
//! subscribed to, signed so it can check it; an answer other than 2xx is tried again, up to six
//! attempts; internal addresses are refused unless the server allows them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use scalemesh_core::DeploymentId;
use scalemesh_server::notify::sign;
use serde_json::{Value, json};

use crate::helpers::{FakeBuilder, TestApp, spawn_app, spawn_app_with};

/// What a receiver got: the headers that matter and the body.
type Got = Arc<Mutex<Vec<(HeaderMap, String)>>>;

/// A receiver on 127.0.0.1 answering the statuses of `script` in turn (the last one from then
/// on): its URL and what it got.
async fn receiver(script: Vec<u16>) -> (String, Got) {
    let got: Got = Arc::default();
    let answers = Arc::new(Mutex::new(script));
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/in",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let (seen, answers) = (seen.clone(), answers.clone());
            async move {
                seen.lock().expect("lock").push((headers, body));
                let mut answers = answers.lock().expect("lock");
                let status = if answers.len() > 1 {
                    answers.remove(0)
                } else {
                    answers[0]
                };
                StatusCode::from_u16(status).expect("a status")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/in", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

async fn app_allowing_loopback() -> TestApp {
    spawn_app_with(|s| {
        s.allow_private_notify =
            scalemesh_core::netguard::AllowList::parse("127.0.0.1").expect("allow");
        s.notify_retry = Duration::from_millis(10);
    })
    .await
}

/// Project `site` with a subscription of `url` to `events`: its secret.
async fn subscribed(app: &TestApp, url: &str, events: Value) -> String {
    let git_url = "https://git.example.com/acme/site.git";
    let (status, body) = app
        .post(
            "/api/v1/projects",
            json!({"name": "site", "git_url": git_url}),
        )
        .await;
    assert!(status == 201 || status == 409, "{body}");
    let (status, sub) = app
        .post(
            "/api/v1/projects/site/notifications",
            json!({"url": url, "events": events}),
        )
        .await;
    assert_eq!(status, 201, "{sub}");
    sub["secret"].as_str().expect("the secret, once").to_owned()
}

/// Starts a build of `site` and makes it ready.
async fn deploy_ready(app: &TestApp) -> DeploymentId {
    let (status, dep) = app
        .post("/api/v1/projects/site/deployments", json!({}))
        .await;
    assert_eq!(status, 201, "{dep}");
    let id = DeploymentId::parse(dep["id"].as_str().expect("id")).expect("an id");
    FakeBuilder::new(app.job_for(&id).await)
        .succeed(&app.storage, &[("index.html", "hi")])
        .await;
    app.wait_status(&id, "ready").await;
    id
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never: {what}");
}

#[tokio::test]
async fn a_subscriber_gets_its_events_signed_and_again_after_a_failure() {
    let app = app_allowing_loopback().await;
    let (url, got) = receiver(vec![500, 200]).await;
    let secret = subscribed(&app, &url, json!(["ready", "promoted"])).await;
    let id = deploy_ready(&app).await;
    // ready (refused once, then taken) and promoted: three requests; never `created`.
    until("three requests", || got.lock().expect("lock").len() >= 3).await;
    let got = got.lock().expect("lock").clone();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut events = Vec::new();
    for (headers, body) in &got {
        let header = |name: &str| headers[name].to_str().expect("text").to_owned();
        sign::verify(
            secret.as_bytes(),
            &header("x-scalemesh-signature"),
            body.as_bytes(),
            now,
            300,
        )
        .expect("a signature the receiver can check");
        assert!(
            sign::verify(
                b"another secret",
                &header("x-scalemesh-signature"),
                body.as_bytes(),
                now,
                300
            )
            .is_err()
        );
        let json: Value = serde_json::from_str(body).expect("json");
        assert_eq!(json["event"], header("x-scalemesh-event"));
        assert_eq!(json["deployment"]["id"], id.to_string());
        events.push((header("x-scalemesh-event"), header("x-scalemesh-delivery")));
    }
    // Events reach a subscriber in the order they happened; the retry is the same delivery as
    // the request refused (the first to arrive).
    let refused = events[0].clone();
    assert_eq!(refused.0, "deployment.ready", "{events:?}");
    assert_eq!(
        events.iter().filter(|e| **e == refused).count(),
        2,
        "{events:?}"
    );
    let mut kinds: Vec<&str> = events.iter().map(|(event, _)| event.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    assert_eq!(kinds, ["deployment.promoted", "deployment.ready"]);

    let (status, log) = app.get("/api/v1/projects/site/notifications/log").await;
    assert_eq!(status, 200, "{log}");
    let retried = log["deliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .find(|d| d["event"] == refused.0.as_str())
        .expect("the delivery refused once")
        .clone();
    assert_eq!(
        (retried["state"].clone(), retried["attempts"].clone()),
        (json!("delivered"), json!(2)),
        "{log}"
    );
    assert_eq!(retried["last_status"], 200);
}

#[tokio::test]
async fn a_receiver_that_keeps_failing_is_tried_six_times_then_marked_failed() {
    let app = app_allowing_loopback().await;
    let (url, got) = receiver(vec![503]).await;
    subscribed(&app, &url, json!(["created"])).await;
    let (status, dep) = app
        .post("/api/v1/projects/site/deployments", json!({}))
        .await;
    assert_eq!(status, 201, "{dep}");
    until("six attempts", || got.lock().expect("lock").len() >= 6).await;
    let mut log = Value::Null;
    for _ in 0..100 {
        log = app.get("/api/v1/projects/site/notifications/log").await.1;
        if log["deliveries"][0]["state"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(log["deliveries"][0]["state"], "failed", "{log}");
    assert_eq!(log["deliveries"][0]["attempts"], 6);
    assert_eq!(log["deliveries"][0]["last_status"], 503);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(got.lock().expect("lock").len(), 6, "no seventh attempt");
}

#[tokio::test]
async fn internal_addresses_are_refused_unless_the_server_allows_them() {
    let app = spawn_app().await;
    let (status, body) = app.post("/api/v1/projects", json!({"name": "site"})).await;
    assert_eq!(status, 201, "{body}");
    for url in [
        "http://127.0.0.1:9000/in",
        "http://localhost/in",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/in",
        "http://10.0.0.7/in",
        "ftp://example.com/in",
        "https://user:pw@hooks.example.com/in",
    ] {
        let (status, answer) = app
            .post("/api/v1/projects/site/notifications", json!({"url": url}))
            .await;
        assert_eq!(status, 400, "{url}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_destination", "{answer}");
    }
    let (_, answer) = app
        .post(
            "/api/v1/projects/site/notifications",
            json!({"url": "http://127.0.0.1:9000/in"}),
        )
        .await;
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("--allow-private-notify"),
        "{answer}"
    );
    let (status, answer) = app
        .post(
            "/api/v1/projects/site/notifications",
            json!({"url": "https://hooks.example.com/in", "events": ["deleted"]}),
        )
        .await;
    assert_eq!(
        (status, answer["error"]["code"].clone()),
        (400, json!("invalid_events")),
        "{answer}"
    );
    let (_, listed) = app.get("/api/v1/projects/site/notifications").await;
    assert_eq!(listed["subscriptions"], json!([]));
}
