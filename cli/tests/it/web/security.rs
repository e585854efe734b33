//! What the page and its log stream refuse: addresses that climb out of an API path, other
//! sites' pages, tokens that are not valid.

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use super::browser::Browser;
use crate::support::{GitServer, Stack};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_with_dot_segments_cannot_point_the_page_at_other_api_paths() {
    let stack = Stack::start();
    let browser = Browser::start(1280, 900).await;
    let b = &browser;
    b.sign_in(&stack.api, &stack.token()).await;
    // `..` in a request path climbs out of `/projects/{name}` (so would `%2e%2e`): a Deploy
    // click on `#/projects/..` would POST to `/api/v1/deployments`.
    for hash in [
        "#/projects/..",
        "#/projects/%2e%2E",
        "#/deployments/.",
        "#/deployments/%2E%2e/",
    ] {
        b.script("performance.clearResourceTimings(); location.hash = '#/nowhere'; return null;")
            .await;
        b.until("the projects page", "location.hash === '#/'").await;
        b.script(&format!(
            "performance.clearResourceTimings(); location.hash = '{hash}'; return null;"
        ))
        .await;
        b.until(
            "back on the projects page",
            "location.hash === '#/' && !document.getElementById('view-projects').hidden",
        )
        .await;
        let paths = b
            .script(
                "return performance.getEntriesByType('resource')
                     .filter(r => r.initiatorType === 'fetch' || r.initiatorType === 'other')
                     .map(r => new URL(r.name).pathname);",
            )
            .await;
        for path in paths.as_array().expect("paths") {
            let path = path.as_str().unwrap_or_default();
            assert!(
                path == "/api/v1/projects" || path.starts_with("/api/v1/projects/"),
                "{hash} made the page ask for {path}"
            );
        }
    }
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_stream_takes_a_token_subprotocol_and_refuses_other_origins() {
    let git = GitServer::start().await;
    let repo = git.repo("ws-site", &[("index.html", "<h1>ws</h1>")]);
    let stack = Stack::start();
    let out = stack.cli(&["deploy", &repo.url]);
    assert!(out.status.success(), "{}", crate::support::stderr(&out));
    let deps = stack.api_get("/api/v1/projects/ws-site/deployments").await;
    let id = deps["deployments"][0]["id"]
        .as_str()
        .expect("a deployment")
        .to_owned();
    let ws = stack.api.replacen("http://", "ws://", 1);
    let url = format!("{ws}/api/v1/deployments/{id}/logs/stream?since=0");
    let host = stack.api.trim_start_matches("http://").to_owned();
    let request = |origin: Option<String>, protocols: String| {
        let mut req = url.as_str().into_client_request().expect("request");
        let headers = req.headers_mut();
        headers.insert(
            "sec-websocket-protocol",
            HeaderValue::from_str(&protocols).expect("header"),
        );
        if let Some(origin) = origin {
            headers.insert("origin", HeaderValue::from_str(&origin).expect("header"));
        }
        req
    };
    let token = stack.token();
    let offered = format!("scalemesh.logs.v1, bearer.{token}");

    // From the server's own page: accepted, and only the stream's protocol is answered.
    let (mut socket, res) =
        tokio_tungstenite::connect_async(request(Some(format!("http://{host}")), offered.clone()))
            .await
            .expect("same origin connects");
    assert_eq!(
        res.headers()
            .get("sec-websocket-protocol")
            .map(|v| v.as_bytes()),
        Some(&b"scalemesh.logs.v1"[..]),
        "the token is never echoed"
    );
    // The deployment has ended: its stored lines come, then its end.
    let mut frames = Vec::new();
    while let Some(Ok(frame)) = socket.next().await {
        let text = frame.to_text().unwrap_or_default().to_owned();
        let end = text.contains("\"type\":\"end\"");
        frames.push(text);
        if end {
            break;
        }
    }
    assert!(
        frames
            .first()
            .is_some_and(|f| f.contains("\"type\":\"lines\"")),
        "{frames:?}"
    );
    assert!(
        frames
            .last()
            .is_some_and(|f| f.contains("\"type\":\"end\"")),
        "{frames:?}"
    );

    // Another site's page, with the same token: refused before the upgrade.
    for origin in [
        "http://evil.example",
        "null",
        "http://127.0.0.1.evil.example",
    ] {
        let err =
            tokio_tungstenite::connect_async(request(Some(origin.to_owned()), offered.clone()))
                .await
                .expect_err("another origin is refused");
        let status = match err {
            tokio_tungstenite::tungstenite::Error::Http(res) => res.status().as_u16(),
            other => panic!("unexpected error {other}"),
        };
        assert_eq!(status, 403, "{origin}");
    }

    // A wrong token in the subprotocol is a 401.
    let err = tokio_tungstenite::connect_async(request(
        None,
        "scalemesh.logs.v1, bearer.smk_wrong".to_owned(),
    ))
    .await
    .expect_err("wrong token");
    match err {
        tokio_tungstenite::tungstenite::Error::Http(res) => assert_eq!(res.status(), 401),
        other => panic!("unexpected error {other}"),
    }
}
