//! The API's contract: auth, the error shape, validation that changes nothing.

use serde_json::json;

use crate::helpers::{spawn_app, status_json};

#[tokio::test]
async fn health_needs_no_token() {
    let app = spawn_app().await;
    let res = app
        .http
        .get(app.url("/health"))
        .send()
        .await
        .expect("health");
    let (status, body) = status_json(res).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn requests_without_a_valid_token_get_401() {
    let app = spawn_app().await;
    for token in [None, Some("smk_not-a-real-token"), Some("")] {
        let mut req = app.http.get(app.url("/api/v1/projects"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let (status, body) = status_json(req.send().await.expect("request")).await;
        assert_eq!(status, 401, "{token:?}");
        assert_eq!(body["error"]["code"], "unauthorized");
        assert!(body["error"]["message"].as_str().expect("message").len() > 10);
    }
    let (status, _) = status_json(
        app.http
            .post(app.url("/project"))
            .json(&json!({"gitURL": "https://x.org/a/b"}))
            .send()
            .await
            .expect("req"),
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn bad_input_gets_400_in_one_shape_and_changes_nothing() {
    let app = spawn_app().await;
    let cases = [
        (json!({"name": "Bad_Name"}), "invalid_name"),
        (
            json!({"name": "a--b", "git_url": "https://x.org/a/b"}),
            "invalid_name",
        ),
        (
            json!({"name": "ok", "git_url": "ext::sh -c touch% /tmp/pwned"}),
            "invalid_git_url",
        ),
        (
            json!({"name": "ok", "git_url": "file:///etc"}),
            "invalid_git_url",
        ),
        (
            json!({"name": "ok", "git_url": "--upload-pack=touch /tmp/x"}),
            "invalid_git_url",
        ),
        (
            json!({"name": "ok", "git_url": "https://x.org/a/b", "git_ref": "--orphan"}),
            "invalid_ref",
        ),
        (
            json!({"name": "ok", "build": {"outputDirectory": "../../etc"}}),
            "invalid_build_settings",
        ),
        (
            json!({"name": "ok", "env": {"PATH": "/evil"}}),
            "invalid_env",
        ),
        (json!({"name": 42}), "invalid_field"),
        (json!({"nmae": "typo"}), "invalid_field"),
        (json!({}), "missing_field"),
    ];
    for (body, code) in cases {
        let (status, answer) = app.post("/api/v1/projects", body.clone()).await;
        assert_eq!(status, 400, "{body} -> {answer}");
        assert_eq!(answer["error"]["code"], code, "{body} -> {answer}");
        assert!(answer["error"]["message"].is_string());
    }
    let res = app
        .http
        .post(app.url("/api/v1/projects"))
        .bearer_auth(&app.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("request");
    let (status, answer) = status_json(res).await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"]["code"], "invalid_json");
    let (_, list) = app.get("/api/v1/projects").await;
    assert_eq!(list["projects"], json!([]), "nothing was created");
    assert!(
        app.recorded.jobs.lock().expect("lock").is_empty(),
        "no build was started"
    );
}

#[tokio::test]
async fn a_commit_to_build_is_named_in_full() {
    let app = spawn_app().await;
    let (status, _) = app
        .post(
            "/api/v1/projects",
            json!({"name": "site", "git_url": "https://x.org/a/b"}),
        )
        .await;
    assert_eq!(status, 201);
    for commit in [
        "6113728",
        "6113728F27AE82C7B1A177C8D03F9E96E0ADF246",
        "--orphan",
    ] {
        let (status, answer) = app
            .post(
                "/api/v1/projects/site/deployments",
                json!({ "commit": commit }),
            )
            .await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (400, Some("invalid_commit")),
            "{commit}: {answer}"
        );
    }
    assert!(app.recorded.jobs.lock().expect("lock").is_empty());
    let sha = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
    let (status, answer) = app
        .post(
            "/api/v1/projects/site/deployments",
            json!({ "commit": sha }),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    let jobs = app.recorded.jobs.lock().expect("lock");
    assert!(
        matches!(&jobs[0].source, scalemesh_core::job::JobSource::Git { commit: Some(c), .. } if c == sha),
        "{:?}",
        jobs[0].source
    );
}

#[tokio::test]
async fn every_wrong_field_is_named_at_once() {
    let app = spawn_app().await;
    let (status, answer) = app
        .post(
            "/api/v1/projects",
            json!({
                "git_url": "ftp://x.org/a/b",
                "name": "Not A Name",
                "build": {"rootDirectory": "site", "outputDirectory": "../etc"},
            }),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    let error = &answer["error"];
    assert_eq!(error["code"], "invalid_git_url", "the first is the answer");
    assert_eq!(error["field"], "git_url");
    let fields: Vec<_> = error["errors"]
        .as_array()
        .expect("each error")
        .iter()
        .map(|e| (e["field"].as_str(), e["code"].as_str()))
        .collect();
    assert_eq!(
        fields,
        [
            (Some("git_url"), Some("invalid_git_url")),
            (Some("name"), Some("invalid_name")),
            (
                Some("build.outputDirectory"),
                Some("invalid_build_settings")
            ),
        ]
    );
    // One mistake is answered alone, with no list.
    let (status, answer) = app
        .post("/api/v1/projects", json!({"name": "Not A Name"}))
        .await;
    assert_eq!(status, 400);
    assert!(answer["error"].get("errors").is_none(), "{answer}");
    let (_, list) = app.get("/api/v1/projects").await;
    assert_eq!(list["projects"], json!([]), "nothing was created");
}

#[tokio::test]
async fn unknown_things_are_404_and_malformed_ids_400() {
    let app = spawn_app().await;
    let (status, body) = app.get("/api/v1/projects/nothing-here").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, _) = app.get("/api/v1/deployments/abcdefghijkl").await;
    assert_eq!(status, 404);
    let (status, body) = app.get("/api/v1/deployments/..%2F..%2Fetc").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_id"))
    );
    let (status, _) = app
        .post("/api/v1/deployments/abcdefghijkl/cancel", json!({}))
        .await;
    assert_eq!(status, 404);
    let (status, body) = app.get("/api/v1/nope").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
}

#[tokio::test]
async fn projects_are_created_listed_and_names_are_unique() {
    let app = spawn_app().await;
    let (status, project) = app
        .post(
            "/api/v1/projects",
            json!({"git_url": "https://user:s3cret@git.example.com/acme/My_Site.git"}),
        )
        .await;
    assert_eq!(status, 201, "{project}");
    assert_eq!(project["name"], "my-site", "named after the repository");
    assert!(
        !project["git_url"].as_str().expect("url").contains("s3cret"),
        "credentials are never shown"
    );
    assert_eq!(
        project["url"],
        format!("http://my-site.localhost:{}", app.sites.port())
    );
    let (status, again) = app
        .post("/api/v1/projects", json!({"name": "my-site"}))
        .await;
    assert_eq!(
        (status, again["error"]["code"].as_str()),
        (409, Some("name_taken"))
    );
    let (_, list) = app.get("/api/v1/projects").await;
    assert_eq!(list["projects"].as_array().expect("list").len(), 1);
}

#[tokio::test]
async fn deploying_needs_a_source() {
    let app = spawn_app().await;
    app.post("/api/v1/projects", json!({"name": "nosource"}))
        .await;
    let (status, body) = app
        .post("/api/v1/projects/nosource/deployments", json!({}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("missing_source")),
        "{body}"
    );
    let res = app
        .http
        .post(app.url("/api/v1/projects/nosource/deployments"))
        .bearer_auth(&app.token)
        .header("content-type", "application/gzip")
        .body("this is not gzip")
        .send()
        .await
        .expect("request");
    let (status, body) = status_json(res).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_archive")),
        "{body}"
    );
    let res = app
        .http
        .post(app.url("/api/v1/projects/nosource/deployments"))
        .bearer_auth(&app.token)
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 400);
    let (_, list) = app.get("/api/v1/projects/nosource/deployments").await;
    assert_eq!(list["deployments"], json!([]));
}

#[tokio::test]
async fn the_original_post_project_creates_and_deploys() {
    let app = spawn_app().await;
    let (status, body) = app
        .post(
            "/project",
            json!({"gitURL": "https://git.example.com/acme/shop.git"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "queued");
    assert_eq!(body["project"], "shop");
    let url = format!("http://shop.localhost:{}", app.sites.port());
    assert_eq!(body["url"], url);
    assert_eq!(body["websiteUrl"], url);
    let id = scalemesh_core::DeploymentId::parse(body["deploymentId"].as_str().expect("id"))
        .expect("id");
    let job = app.job_for(&id).await;
    let env: std::collections::BTreeMap<_, _> = job.to_env().into_iter().collect();
    assert_eq!(
        env["SCALEMESH_GIT_URL"],
        "https://git.example.com/acme/shop.git"
    );
    assert_eq!(env["SCALEMESH_PROJECT"], "shop");
    assert_eq!(env["SCALEMESH_DEPLOYMENT_ID"], id.as_str());
    assert!(env["SCALEMESH_JOB_TOKEN"].starts_with("smj_"));
    let (status, _) = app
        .post(
            "/project",
            json!({"gitURL": "https://git.example.com/acme/shop.git"}),
        )
        .await;
    assert_eq!(
        status, 200,
        "deploying the same repository again reuses the project"
    );
    let (status, body) = app
        .post(
            "/project",
            json!({"gitURL": "https://git.example.com/other/shop.git"}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = app.post("/project", json!({"gitURL": "ext::sh"})).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = app.post("/project", json!({"slug": "x"})).await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn users_see_only_their_own_projects() {
    let app = spawn_app().await;
    app.deploy("mine").await;
    // A second user, with a token of their own.
    let other = reqwest::Client::new();
    let data_dir = app.storage.root().parent().expect("data dir").to_path_buf();
    let token = scalemesh_server_token(&data_dir).await;
    let res = other
        .get(app.url("/api/v1/projects/mine"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("req");
    assert_eq!(res.status(), 404);
    let res = other
        .get(app.url("/api/v1/projects"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("req");
    let (_, body) = status_json(res).await;
    assert_eq!(body["projects"], json!([]));
}

/// Makes a token for a user "other" directly in the database, as an operator would.
async fn scalemesh_server_token(data_dir: &std::path::Path) -> String {
    let conn = rusqlite::Connection::open(data_dir.join("scalemesh.db")).expect("db");
    conn.execute(
        "INSERT INTO users (name, created_at) VALUES ('other', 0)",
        [],
    )
    .expect("user");
    let token = "smk_other_user_token_for_tests";
    let hash = <sha2::Sha256 as sha2::Digest>::digest(token.as_bytes()).to_vec();
    conn.execute(
        "INSERT INTO tokens (user_id, hash, label, created_at) VALUES ((SELECT id FROM users WHERE name = 'other'), ?1, 't', 0)",
        [hash],
    )
    .expect("token");
    token.to_owned()
}

#[tokio::test]
async fn bodies_must_be_json_objects_and_queries_well_formed() {
    let app = spawn_app().await;
    let (status, body) = app.post("/api/v1/projects", json!(["by-position"])).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_json")),
        "{body}"
    );
    let res = app
        .http
        .post(app.url("/api/v1/projects"))
        .bearer_auth(&app.token)
        .body(r#"{"name":"x"}"#)
        .send()
        .await
        .expect("request");
    let (status, body) = status_json(res).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("unsupported_content_type")),
        "{body}"
    );
    app.post("/api/v1/projects", json!({"name": "q"})).await;
    for query in [
        "limit=99999999999",
        "limit=abc",
        "since=18446744073709551616",
    ] {
        let path = if query.starts_with("since") {
            format!("/api/v1/deployments/abcdefghijkl/logs?{query}")
        } else {
            format!("/api/v1/projects/q/deployments?{query}")
        };
        let (status, body) = app.get(&path).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("invalid_query")),
            "{query}: {body}"
        );
    }
    let (_, list) = app.get("/api/v1/projects").await;
    assert_eq!(list["projects"].as_array().expect("list").len(), 1);
}

/// A body that trickles in is cut off with 408 once it falls behind, for every caller.
#[tokio::test]
async fn a_body_that_trickles_is_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = crate::helpers::spawn_app_with(|s| {
        s.body_timeout = std::time::Duration::from_secs(1);
    })
    .await;
    let addr = app.api.trim_start_matches("http://").to_owned();
    let started = std::time::Instant::now();
    let mut stream = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /api/v1/projects HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n",
        app.token
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    // One byte every 300 ms, until the server answers.
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let _ = stream.write_all(b" ").await;
        match tokio::time::timeout(std::time::Duration::from_millis(300), stream.read(&mut buf))
            .await
        {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buf[..n]);
                if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            Err(_) => {}
        }
        assert!(started.elapsed().as_secs() < 15, "never cut off");
    }
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
}

/// Builds keep their cache in the data directory, bounded by `--build-cache`; a deploy that asks
/// for no cache gets a job that does not restore it (and still saves a fresh one).
#[tokio::test]
async fn a_deploy_can_skip_the_build_cache() {
    use scalemesh_core::job::env;
    let app = spawn_app().await;
    let (_, job) = app.deploy("cached").await;
    let vars: std::collections::BTreeMap<_, _> = job.to_env().into_iter().collect();
    let location = &vars[env::BUILD_CACHE];
    assert!(
        location.starts_with("file:///") && location.ends_with("/build-cache"),
        "{location}"
    );
    assert_eq!(vars[env::BUILD_CACHE_LIMIT], (5u64 << 30).to_string());
    assert!(
        !vars.contains_key(env::BUILD_CACHE_RESTORE),
        "restored by default"
    );

    for (body, query) in [
        (json!({"no_cache": true}), ""),
        (json!({}), "?no_cache=true"),
    ] {
        let (status, dep) = app
            .post(&format!("/api/v1/projects/cached/deployments{query}"), body)
            .await;
        assert_eq!(status, 201, "{dep}");
        let id =
            scalemesh_core::DeploymentId::parse(dep["id"].as_str().expect("id")).expect("valid id");
        let job = app.job_for(&id).await;
        let vars: std::collections::BTreeMap<_, _> = job.to_env().into_iter().collect();
        assert_eq!(vars[env::BUILD_CACHE_RESTORE], "false", "{query}");
    }
}
