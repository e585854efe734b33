//! People sharing a server: users and their tokens, variables sealed at rest and given to the
//! right builds, names that cannot be taken over, deploys that a retry cannot repeat, sign-ins
//! that cannot be guessed at speed, and a data folder of the previous version.

use std::time::Duration;

use scalemesh_core::DeploymentId;
use scalemesh_core::wire::BuilderReport;
use serde_json::json;

use crate::helpers::{FakeBuilder, TestApp, spawn_app, spawn_app_at, spawn_app_in, spawn_app_with};

async fn create(app: &TestApp, token: &str, name: &str) {
    let (status, body) = app
        .call(
            token,
            "POST",
            "/api/v1/projects",
            Some(json!({"name": name, "git_url": format!("https://git.example.com/a/{name}.git")})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

async fn deploy(app: &TestApp, token: &str, project: &str, promote: bool) -> DeploymentId {
    let (status, dep) = app
        .call(
            token,
            "POST",
            &format!("/api/v1/projects/{project}/deployments"),
            Some(json!({"promote": promote})),
        )
        .await;
    assert_eq!(status, 201, "{dep}");
    DeploymentId::parse(dep["id"].as_str().expect("id")).expect("id")
}

#[tokio::test]
async fn a_removed_users_tokens_stop_and_their_projects_stay() {
    let app = spawn_app().await;
    let bob = app.add_user("bob", false).await;
    assert!(bob.starts_with("smk_") && bob.len() == 50, "{bob}");
    let (status, me) = app.call(&bob, "GET", "/api/v1/me", None).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["user"]["name"], "bob");
    assert_eq!(me["user"]["admin"], false);
    assert_eq!(me["token"]["name"], "first token");
    assert_eq!(me["token"]["expires_at"], serde_json::Value::Null);
    create(&app, &bob, "bobs-site").await;

    let (status, body) = app
        .call(&bob, "POST", "/api/v1/users", Some(json!({"name": "eve"})))
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("admin")),
        "{body}"
    );
    let (status, body) = app.post("/api/v1/users", json!({"name": "bob"})).await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = app
        .post("/api/v1/users", json!({"name": "Bob Smith"}))
        .await;
    assert_eq!(status, 400, "{body}");

    let (status, users) = app.get("/api/v1/users").await;
    assert_eq!(status, 200);
    let names: Vec<_> = users["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["admin", "bob"]);

    let (status, body) = app
        .call(&app.token, "DELETE", "/api/v1/users/bob", None)
        .await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = app.call(&bob, "GET", "/api/v1/me", None).await;
    assert_eq!(status, 401, "{body}");
    // The project stays, and the admin who removed bob owns it.
    let (status, members) = app.get("/api/v1/projects/bobs-site/members").await;
    assert_eq!(status, 200, "{members}");
    assert_eq!(
        members["members"],
        json!([{"user": "admin", "role": "owner", "created_at": members["members"][0]["created_at"]}])
    );
    let (status, body) = app
        .call(&app.token, "DELETE", "/api/v1/users/admin", None)
        .await;
    assert_eq!(status, 409, "{body}");
}

#[tokio::test]
async fn a_users_projects_can_pass_to_someone_else() {
    let app = spawn_app().await;
    let carol = app.add_user("carol", false).await;
    let dan = app.add_user("dan", false).await;
    create(&app, &carol, "carols").await;
    let (status, body) = app
        .call(
            &app.token,
            "DELETE",
            "/api/v1/users/carol?transfer_to=dan",
            None,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let (status, project) = app.call(&dan, "GET", "/api/v1/projects/carols", None).await;
    assert_eq!(status, 200, "{project}");
    assert_eq!(project["role"], "owner");
    let (status, _) = app
        .call(
            &app.token,
            "DELETE",
            "/api/v1/users/dan?transfer_to=nobody",
            None,
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn tokens_say_why_they_stop_working() {
    let app = spawn_app().await;
    let olivia = app.add_user("olivia", false).await;
    let (short, _) = app
        .make_token(&olivia, json!({"name": "short", "expires": "1s"}))
        .await;
    let (ci, ci_id) = app
        .make_token(&olivia, json!({"name": "ci", "role": "deploy"}))
        .await;
    a_deploy_token_lasts_90_days_and_can_revoke_itself(&app, &ci, ci_id).await;

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = app.call(&short, "GET", "/api/v1/me", None).await;
    assert_eq!(status, 401);
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("expired on")),
        "{body}"
    );

    tokens_are_listed_without_secrets(&app, &olivia, &short).await;
    malformed_token_requests_are_refused(&app, &olivia).await;
}

/// A deploy token lasts 90 days unless told otherwise; it may not mint tokens, but may revoke
/// itself, and then says so.
async fn a_deploy_token_lasts_90_days_and_can_revoke_itself(app: &TestApp, ci: &str, ci_id: i64) {
    let (status, me) = app.call(ci, "GET", "/api/v1/me", None).await;
    assert_eq!(status, 200);
    assert_eq!(me["token"]["role"], "deploy");
    let expires = me["token"]["expires_at"]
        .as_str()
        .expect("a default expiry");
    let expires =
        time::OffsetDateTime::parse(expires, &time::format_description::well_known::Rfc3339)
            .expect("a time");
    let days = (expires - time::OffsetDateTime::now_utc()).whole_days();
    assert!((89..=90).contains(&days), "{days} days");

    // A deploy token may not mint tokens, but may revoke itself.
    let (status, body) = app
        .call(ci, "POST", "/api/v1/tokens", Some(json!({"name": "x"})))
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = app
        .call(ci, "DELETE", &format!("/api/v1/tokens/{ci_id}"), None)
        .await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = app.call(ci, "GET", "/api/v1/me", None).await;
    assert_eq!(status, 401);
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("was revoked on")),
        "{body}"
    );
}

/// Listed: never a secret, never a revoked token; used ones say when.
async fn tokens_are_listed_without_secrets(app: &TestApp, olivia: &str, short: &str) {
    let (status, list) = app.call(olivia, "GET", "/api/v1/tokens", None).await;
    assert_eq!(status, 200);
    let text = list.to_string();
    assert!(!text.contains(olivia) && !text.contains(short), "{text}");
    let names: Vec<_> = list["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["short", "first token"]);
    assert!(list["tokens"][1]["last_used_at"].is_string(), "{list}");
}

/// Tokens with an empty name, a made-up expiry or role, or no project to cover are not made;
/// tokens that do not exist are not revoked.
async fn malformed_token_requests_are_refused(app: &TestApp, olivia: &str) {
    for bad in [
        json!({"name": ""}),
        json!({"name": "x", "expires": "soon"}),
        json!({"name": "x", "role": "god"}),
        json!({"name": "x", "projects": []}),
        json!({"name": "x", "projects": ["no-such-project"]}),
    ] {
        let (status, body) = app
            .call(olivia, "POST", "/api/v1/tokens", Some(bad.clone()))
            .await;
        assert!(status == 400 || status == 404, "{bad}: {status} {body}");
    }
    let (status, _) = app
        .call(olivia, "DELETE", "/api/v1/tokens/999999", None)
        .await;
    assert_eq!(status, 404);
    let (status, _) = app.call(olivia, "DELETE", "/api/v1/tokens/abc", None).await;
    assert_eq!(status, 404);
}

/// The bytes of the database, its write-ahead log and shared memory.
fn database_bytes(app: &TestApp) -> Vec<u8> {
    let mut bytes = Vec::new();
    for file in ["scalemesh.db", "scalemesh.db-wal", "scalemesh.db-shm"] {
        if let Ok(b) = std::fs::read(app.data_dir().join(file)) {
            bytes.extend(b);
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Sets the variable `key` of the project `vars` as the admin, with `body`: the answer.
async fn put_var(app: &TestApp, key: &str, body: serde_json::Value) -> serde_json::Value {
    let (status, answer) = app
        .call(
            &app.token,
            "PUT",
            &format!("/api/v1/projects/vars/env/{key}"),
            Some(body),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    answer
}

#[tokio::test]
async fn variables_are_sealed_and_reach_only_their_builds() {
    let app = spawn_app().await;
    let dave = app.add_user("dave", false).await;
    create(&app, &app.token, "vars").await;
    let (status, body) = app
        .post(
            "/api/v1/projects/vars/members",
            json!({"user": "dave", "role": "developer"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let answer = put_var(
        &app,
        "API_SECRET",
        json!({"value": "prod-secret-4f9a2c", "target": "production", "sensitive": true}),
    )
    .await;
    assert!(
        !answer.to_string().contains("prod-secret-4f9a2c"),
        "{answer}"
    );
    put_var(
        &app,
        "API_SECRET",
        json!({"value": "preview-secret-77b1", "target": "preview", "sensitive": true}),
    )
    .await;
    put_var(&app, "SITE_NAME", json!({"value": "Plain Site"})).await;
    put_var(
        &app,
        "PREVIEW_ONLY",
        json!({"value": "only-in-preview", "target": "preview"}),
    )
    .await;

    an_owner_reads_values_but_never_sensitive_ones(&app).await;
    a_developer_reads_and_writes_preview_values_only(&app, &dave).await;
    names_a_build_relies_on_are_refused(&app).await;
    // Each build gets its target's values, fetched with its job token; none are in its job.
    for (promote, secret, absent) in [
        (true, "prod-secret-4f9a2c", "only-in-preview"),
        (false, "preview-secret-77b1", "prod-secret-4f9a2c"),
    ] {
        a_build_gets_its_targets_values_while_it_runs(&app, promote, secret, absent).await;
    }
    nothing_in_the_database_files_is_in_clear(&app);
    the_whole_map_form_replaces_every_variable(&app).await;
}

/// Values an owner may read are shown, sensitive ones never.
async fn an_owner_reads_values_but_never_sensitive_ones(app: &TestApp) {
    let (status, list) = app.get("/api/v1/projects/vars/env").await;
    assert_eq!(status, 200);
    let text = list.to_string();
    assert!(
        !text.contains("prod-secret") && !text.contains("preview-secret"),
        "{text}"
    );
    assert!(
        text.contains("Plain Site") && text.contains("only-in-preview"),
        "{text}"
    );
    let (_, project) = app.get("/api/v1/projects/vars").await;
    assert_eq!(
        project["env"],
        json!(["API_SECRET", "PREVIEW_ONLY", "SITE_NAME"])
    );
}

/// A developer reads preview values only, and may not write production ones.
async fn a_developer_reads_and_writes_preview_values_only(app: &TestApp, dave: &str) {
    let (status, list) = app
        .call(dave, "GET", "/api/v1/projects/vars/env/SITE_NAME", None)
        .await;
    assert_eq!(status, 200, "{list}");
    for var in list["env"].as_array().expect("env") {
        assert_eq!(
            var.get("value").is_some(),
            var["target"] == "preview",
            "{var}"
        );
    }
    assert_eq!(list["env"][0]["updated_by"], "admin");
    let (status, _) = app
        .call(
            dave,
            "PUT",
            "/api/v1/projects/vars/env/X",
            Some(json!({"value": "v", "target": "production"})),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = app
        .call(dave, "GET", "/api/v1/projects/vars/env/NOPE", None)
        .await;
    assert_eq!(status, 404);
}

/// Names the build's own environment uses, and names no shell takes, are refused.
async fn names_a_build_relies_on_are_refused(app: &TestApp) {
    for bad in ["PATH", "SCALEMESH_JOB_TOKEN", "1ABC", "A-B"] {
        let (status, body) = app
            .call(
                &app.token,
                "PUT",
                &format!("/api/v1/projects/vars/env/{bad}"),
                Some(json!({"value": "v"})),
            )
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
}

/// A build of `vars` (to production when `promote`) gets `secret` and the plain value, but not
/// `absent`, fetched with its job token and never in its job; once finished, its token opens
/// nothing.
async fn a_build_gets_its_targets_values_while_it_runs(
    app: &TestApp,
    promote: bool,
    secret: &str,
    absent: &str,
) {
    let id = deploy(app, &app.token, "vars", promote).await;
    let job = app.job_for(&id).await;
    let in_job = format!("{:?}", job.to_env());
    assert!(
        !in_job.contains(secret) && !in_job.contains("Plain Site"),
        "{in_job}"
    );
    let (status, env) = app
        .call(
            &job.job_token,
            "GET",
            &format!("/api/v1/deployments/{id}/env"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{env}");
    assert_eq!(env["env"]["API_SECRET"], secret);
    assert_eq!(env["env"]["SITE_NAME"], "Plain Site");
    assert!(!env.to_string().contains(absent), "{env}");
    let builder = FakeBuilder::new(job);
    let (status, _) = builder
        .report(BuilderReport::Failed {
            reason: "done".into(),
        })
        .await;
    assert_eq!(status, 200);
    // A finished build's token opens nothing.
    let (status, _) = app
        .call(
            &builder.job.job_token,
            "GET",
            &format!("/api/v1/deployments/{id}/env"),
            None,
        )
        .await;
    assert_ne!(status, 200);
}

/// Nothing in the database files is in clear.
fn nothing_in_the_database_files_is_in_clear(app: &TestApp) {
    let bytes = database_bytes(app);
    for value in [
        "prod-secret-4f9a2c",
        "preview-secret-77b1",
        "Plain Site",
        "only-in-preview",
    ] {
        assert!(
            !contains(&bytes, value),
            "{value} is in the database in clear"
        );
    }
}

/// The whole-map form replaces every variable; a variable of both targets is deleted from one.
async fn the_whole_map_form_replaces_every_variable(app: &TestApp) {
    let (status, body) = app
        .call(
            &app.token,
            "PATCH",
            "/api/v1/projects/vars",
            Some(json!({"env": {"ONLY": "one-value"}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["env"], json!(["ONLY"]));
    let (status, body) = app
        .call(
            &app.token,
            "DELETE",
            "/api/v1/projects/vars/env/ONLY?target=preview",
            None,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let (_, list) = app.get("/api/v1/projects/vars/env").await;
    assert_eq!(list["env"].as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list["env"][0]["target"], "production");
}

/// Why a server with `settings` does not start.
async fn refused_start(settings: &scalemesh_server::settings::Settings) -> String {
    let listeners = scalemesh_server::Listeners {
        api: tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind"),
        proxy: None,
    };
    let err = scalemesh_server::Server::build(settings, listeners)
        .await
        .err()
        .expect("refused");
    format!("{err:#}")
}

#[tokio::test]
async fn a_server_refuses_a_key_that_does_not_open_its_variables() {
    let data = tempfile::tempdir().expect("tempdir");
    let path = data.path().to_path_buf();
    {
        let app = spawn_app_at(&path, None, |_| {}).await;
        create(&app, &app.token, "keyed").await;
        let (status, _) = app
            .call(
                &app.token,
                "PUT",
                "/api/v1/projects/keyed/env/K",
                Some(json!({"value": "v"})),
            )
            .await;
        assert_eq!(status, 200);
    }
    let other_key = path.join("other-key");
    std::fs::write(&other_key, format!("{}\n", "ab".repeat(32))).expect("write");
    let mut settings = scalemesh_server::settings::Settings::defaults();
    settings.data_dir = Some(path.clone());
    settings.secret_key_file = Some(other_key);
    settings.builder_bin = Some("/bin/true".into());
    let err = refused_start(&settings).await;
    assert!(err.contains("--secret-key-file"), "{err}");
    // Without its key file, it makes no new key that would open nothing.
    let key = path.join("secret-key");
    let kept = path.join("secret-key.kept");
    std::fs::rename(&key, &kept).expect("move the key away");
    settings.secret_key_file = None;
    let err = refused_start(&settings).await;
    assert!(err.contains("is missing"), "{err}");
    assert!(!key.exists(), "no key was made");
    std::fs::rename(&kept, &key).expect("restore the key");
    // With its own key, it opens.
    let app = spawn_app_at(&path, Some(data), |_| {}).await;
    let (_, env) = app.get("/api/v1/projects/keyed/env/K").await;
    assert_eq!(env["env"][0]["value"], "v");
}

#[tokio::test]
async fn deleted_names_and_domains_stay_with_their_owner() {
    let app = spawn_app().await;
    let olivia = app.add_user("olivia", false).await;
    let sam = app.add_user("sam", false).await;
    create(&app, &olivia, "shop").await;
    let (status, body) = app
        .call(
            &olivia,
            "POST",
            "/api/v1/projects/shop/domains",
            Some(json!({"host": "shop.example.com"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    create(&app, &sam, "sams").await;

    a_domain_in_use_is_taken_without_saying_by_whom(&app, &sam).await;
    a_deleted_name_is_held_for_its_owner(&app, &olivia, &sam).await;
    an_admin_lists_and_releases_what_is_held(&app, &sam).await;
    reserved_names_are_never_given(&app, &sam).await;
}

/// A domain in use: taken, without saying by which project.
async fn a_domain_in_use_is_taken_without_saying_by_whom(app: &TestApp, sam: &str) {
    let (status, body) = app
        .call(
            sam,
            "POST",
            "/api/v1/projects/sams/domains",
            Some(json!({"host": "shop.example.com"})),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "domain_taken");
    assert!(
        !body.to_string().contains("\"shop\"") && !body.to_string().contains(" shop "),
        "{body}"
    );
}

/// Once `shop` is deleted, neither its name nor its domain goes to anyone else; its owner takes
/// the name back.
async fn a_deleted_name_is_held_for_its_owner(app: &TestApp, olivia: &str, sam: &str) {
    let (status, _) = app
        .call(olivia, "DELETE", "/api/v1/projects/shop", None)
        .await;
    assert_eq!(status, 204);
    let (status, body) = app
        .call(
            sam,
            "POST",
            "/api/v1/projects",
            Some(json!({"name": "shop"})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "name_held");
    let (status, body) = app
        .call(
            sam,
            "POST",
            "/api/v1/projects/sams/domains",
            Some(json!({"host": "SHOP.example.com."})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "name_held");
    // Its owner takes it back.
    create(app, olivia, "shop").await;
    let (status, _) = app
        .call(olivia, "DELETE", "/api/v1/projects/shop", None)
        .await;
    assert_eq!(status, 204);
}

/// The admin sees what is held and for whom, and may release a name for anyone to take.
async fn an_admin_lists_and_releases_what_is_held(app: &TestApp, sam: &str) {
    let (status, holds) = app.get("/api/v1/holds").await;
    assert_eq!(status, 200);
    let mut held: Vec<_> = holds["holds"]
        .as_array()
        .expect("holds")
        .iter()
        .map(|h| {
            (
                h["name"].as_str().unwrap_or(""),
                h["kind"].as_str().unwrap_or(""),
                h["held_for"].as_str().unwrap_or(""),
            )
        })
        .collect();
    held.sort();
    assert_eq!(
        held,
        [
            ("shop", "project", "olivia"),
            ("shop.example.com", "domain", "olivia")
        ]
    );
    let (status, _) = app
        .call(&app.token, "DELETE", "/api/v1/holds/shop", None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = app
        .call(&app.token, "DELETE", "/api/v1/holds/shop", None)
        .await;
    assert_eq!(status, 404);
    let (status, body) = app
        .call(
            sam,
            "POST",
            "/api/v1/projects",
            Some(json!({"name": "shop"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

/// Names the server uses itself are never a project's.
async fn reserved_names_are_never_given(app: &TestApp, sam: &str) {
    for reserved in ["www", "api", "admin", "localhost"] {
        let (status, body) = app
            .call(
                sam,
                "POST",
                "/api/v1/projects",
                Some(json!({"name": reserved})),
            )
            .await;
        assert_eq!(status, 409, "{reserved}: {body}");
        assert_eq!(body["error"]["code"], "name_reserved");
    }
}

/// Starts a deployment of `once` with `body` and the idempotency key `key`: the status, the
/// answer, and whether it was replayed.
async fn deploy_once(
    app: &TestApp,
    key: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value, bool) {
    let res = app
        .http
        .post(app.url("/api/v1/projects/once/deployments"))
        .bearer_auth(&app.token)
        .header("idempotency-key", key)
        .json(&body)
        .send()
        .await
        .expect("request");
    let replayed = res.headers().get("idempotent-replayed").is_some();
    let (status, body) = crate::helpers::status_json(res).await;
    (status, body, replayed)
}

/// Uploads `body` as an archive of `once` with the idempotency key `key`: the status and answer.
async fn upload_once(app: &TestApp, key: &str, body: Vec<u8>) -> (u16, serde_json::Value) {
    let res = app
        .http
        .post(app.url("/api/v1/projects/once/deployments?promote=false"))
        .bearer_auth(&app.token)
        .header("idempotency-key", key)
        .header("content-type", "application/gzip")
        .body(body)
        .send()
        .await
        .expect("request");
    crate::helpers::status_json(res).await
}

/// A gzip header and 16 bytes of `byte`.
fn archive(byte: u8) -> Vec<u8> {
    let mut gz = vec![0x1f, 0x8b];
    gz.extend([byte; 16]);
    gz
}

#[tokio::test]
async fn a_retried_deploy_makes_one_deployment() {
    let app = spawn_app().await;
    create(&app, &app.token, "once").await;
    let (status, first, replayed) = deploy_once(&app, "key-1", json!({})).await;
    assert_eq!((status, replayed), (201, false), "{first}");
    let (status, again, replayed) = deploy_once(&app, "key-1", json!({})).await;
    assert_eq!((status, replayed), (201, true), "{again}");
    assert_eq!(first["id"], again["id"]);
    let (status, body, _) = deploy_once(&app, "key-1", json!({"promote": false})).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "idempotency_key_reused");
    let (status, other, _) = deploy_once(&app, "key-2", json!({})).await;
    assert_eq!(status, 201);
    assert_ne!(other["id"], first["id"]);
    assert_eq!(
        app.recorded.jobs.lock().expect("lock").len(),
        2,
        "two builds, not three"
    );

    archives_are_compared_by_their_bytes(&app).await;

    // A project deleted and made again: its old keys start new deployments.
    let (status, _) = app
        .call(&app.token, "DELETE", "/api/v1/projects/once", None)
        .await;
    assert_eq!(status, 204);
    create(&app, &app.token, "once").await;
    let (status, again, replayed) = deploy_once(&app, "key-1", json!({})).await;
    assert_eq!((status, replayed), (201, false), "{again}");
    assert_ne!(again["id"], first["id"]);

    malformed_keys_are_refused(&app).await;
}

/// Archives are compared by their bytes.
async fn archives_are_compared_by_their_bytes(app: &TestApp) {
    let (status, a) = upload_once(app, "key-3", archive(1)).await;
    assert_eq!(status, 201, "{a}");
    let (_, b) = upload_once(app, "key-3", archive(1)).await;
    assert_eq!(a["id"], b["id"]);
    let (status, _) = upload_once(app, "key-3", archive(2)).await;
    assert_eq!(status, 409);
}

/// An empty key, one too long, and one with a space are refused.
async fn malformed_keys_are_refused(app: &TestApp) {
    let long = "k".repeat(256);
    for bad in ["", long.as_str(), "with space"] {
        let res = app
            .http
            .post(app.url("/api/v1/projects/once/deployments"))
            .bearer_auth(&app.token)
            .header("idempotency-key", bad)
            .json(&json!({}))
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), 400, "{bad:?}");
    }
}

#[tokio::test]
async fn failed_sign_ins_from_one_address_are_slowed() {
    let app = spawn_app_with(|s| s.auth_failures = 3).await;
    for _ in 0..3 {
        let (status, _) = app.call("smk_wrong", "GET", "/api/v1/me", None).await;
        assert_eq!(status, 401);
    }
    let res = app
        .http
        .get(app.url("/api/v1/me"))
        .bearer_auth("smk_wrong")
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 429, "a fourth wrong token waits");
    let wait: u64 = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=20).contains(&wait), "{wait}");
    // A working token is never slowed down: one client cannot lock out others at its address.
    let (status, _) = app.get("/api/v1/me").await;
    assert_eq!(status, 200);
    // Requests that need no token still answer.
    let (status, _) = crate::helpers::status_json(
        app.http
            .get(app.url("/health"))
            .send()
            .await
            .expect("health"),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_trusted_proxy_names_the_client() {
    let app = spawn_app_with(|s| {
        s.auth_failures = 2;
        s.trusted_proxy = vec!["127.0.0.1/32".parse().expect("net")];
    })
    .await;
    let me = |token: String, client: &'static str| {
        let app = &app;
        async move {
            app.http
                .get(app.url("/api/v1/me"))
                .bearer_auth(token)
                .header("x-forwarded-for", format!("203.0.113.50, {client}"))
                .send()
                .await
                .expect("request")
                .status()
                .as_u16()
        }
    };
    assert_eq!(me("smk_bad".into(), "198.51.100.1").await, 401);
    assert_eq!(me("smk_bad".into(), "198.51.100.1").await, 401);
    assert_eq!(me("smk_bad".into(), "198.51.100.1").await, 429);
    assert_eq!(
        me("smk_bad".into(), "198.51.100.2").await,
        401,
        "another client"
    );
    assert_eq!(me(app.token.clone(), "198.51.100.1").await, 200);
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// `fixtures/data-v4` was made by the previous version: an admin token, a deployed project
/// with two variables in clear and a custom domain.
#[tokio::test]
async fn a_data_folder_of_the_previous_version_keeps_working() {
    let data = tempfile::tempdir().expect("tempdir");
    copy_dir(
        std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/data-v4"
        )),
        data.path(),
    );
    let app = spawn_app_in(data, |_| {}).await;
    let saved = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/data-v4/admin-token"
    ))
    .expect("token");
    assert_eq!(app.token, saved.trim(), "the old admin token is kept");
    let (status, me) = app.get("/api/v1/me").await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["user"]["admin"], true);

    let (status, project) = app.get("/api/v1/projects/legacy-site").await;
    assert_eq!(status, 200, "{project}");
    assert_eq!(project["role"], "owner");
    assert_eq!(project["env"], json!(["LEGACY_SECRET", "PUBLIC_FLAG"]));
    let (_, env) = app
        .get("/api/v1/projects/legacy-site/env/LEGACY_SECRET")
        .await;
    assert_eq!(env["env"].as_array().map(Vec::len), Some(2), "{env}");
    assert_eq!(env["env"][0]["value"], "plaintext-legacy-value-123");
    assert!(
        !contains(&database_bytes(&app), "plaintext-legacy-value-123"),
        "the old value was sealed and its clear copy scrubbed"
    );
    let (_, deployments) = app.get("/api/v1/projects/legacy-site/deployments").await;
    assert_eq!(deployments["deployments"][0]["status"], "ready");
    assert_eq!(deployments["deployments"][0]["production"], true);
    let res = app.site("legacy-site.localhost", "/").await;
    assert_eq!(res.status(), 200);
    let res = app.site("www.legacy.example", "/").await;
    assert_eq!(res.status(), 200);

    // It was deployed from a folder: deploy an archive again.
    let res = app
        .http
        .post(app.url("/api/v1/projects/legacy-site/deployments"))
        .bearer_auth(&app.token)
        .header("content-type", "application/gzip")
        .body(vec![0x1f, 0x8b, 0, 0])
        .send()
        .await
        .expect("request");
    let (status, dep) = crate::helpers::status_json(res).await;
    assert_eq!(status, 201, "{dep}");
    let id = DeploymentId::parse(dep["id"].as_str().expect("id")).expect("id");
    let job = app.job_for(&id).await;
    let (_, env) = app
        .call(
            &job.job_token,
            "GET",
            &format!("/api/v1/deployments/{id}/env"),
            None,
        )
        .await;
    assert_eq!(env["env"]["LEGACY_SECRET"], "plaintext-legacy-value-123");
}

#[tokio::test]
async fn a_removed_admin_is_not_made_again_at_start() {
    let data = tempfile::tempdir().expect("tempdir");
    let path = data.path().to_path_buf();
    let ops = {
        let app = spawn_app_at(&path, None, |_| {}).await;
        let ops = app.add_user("ops", true).await;
        let (status, body) = app.call(&ops, "DELETE", "/api/v1/users/admin", None).await;
        assert_eq!(status, 204, "{body}");
        let (status, body) = app
            .call(
                &ops,
                "POST",
                "/api/v1/users",
                Some(json!({"name": "admin"})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        ops
    };
    let app = spawn_app_at(&path, Some(data), |_| {}).await;
    assert!(
        !path.join("admin-token").exists(),
        "no token for a non-admin named admin"
    );
    let (_, users) = app.call(&ops, "GET", "/api/v1/users", None).await;
    let admin = users["users"]
        .as_array()
        .expect("users")
        .iter()
        .find(|u| u["name"] == "admin")
        .cloned()
        .expect("listed");
    assert_eq!(admin["admin"], false, "{users}");
}

/// Repositories on addresses that are not public are refused before anything starts, in any
/// spelling, unless the operator allowed them.
#[tokio::test]
async fn repositories_inside_the_network_are_refused() {
    let app = spawn_app().await;
    for url in [
        "http://169.254.169.254/latest.git",
        "http://2852039166/a.git",
        "http://[::ffff:169.254.169.254]/a.git",
        "http://127.0.0.1:9000/api/v1/projects",
        "git://0x7f000001/a",
        "http://localhost/a.git",
        "https://10.0.0.1/a.git",
    ] {
        let (status, body) = app
            .post(
                "/api/v1/projects",
                json!({"name": "inside", "git_url": url}),
            )
            .await;
        assert_eq!(status, 400, "{url}: {body}");
        assert_eq!(body["error"]["code"], "git_host_refused", "{url}");
        assert_eq!(body["error"]["field"], "git_url");
    }
    create(&app, &app.token, "outside").await;
    let (status, body) = app
        .post(
            "/api/v1/projects/outside/deployments",
            json!({"git_url": "http://[::1]/a.git"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = app
        .call(
            &app.token,
            "PATCH",
            "/api/v1/projects/outside",
            Some(json!({"git_url": "http://192.168.0.1/a.git"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");

    let lan = spawn_app_with(|s| {
        s.allow_private_git_hosts =
            scalemesh_core::netguard::AllowList::parse("10.0.0.0/8").expect("allow");
    })
    .await;
    let (status, body) = lan
        .post(
            "/api/v1/projects",
            json!({"name": "lan", "git_url": "https://10.1.2.3/a.git"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (id, job) = lan.deploy("lan").await;
    assert!(
        job.to_env()
            .iter()
            .any(|(k, v)| *k == "SCALEMESH_ALLOW_PRIVATE_GIT_HOSTS" && v == "10.0.0.0/8"),
        "the builder is told ({id})"
    );
}

/// The Node.js mirror the server is given reaches every build job.
#[tokio::test]
async fn the_node_mirror_reaches_the_builder() {
    let app = spawn_app_with(|s| s.node_mirror = Some("http://127.0.0.1:4873".into())).await;
    let (id, job) = app.deploy("mirrored").await;
    assert_eq!(
        job.node_mirror.as_deref(),
        Some("http://127.0.0.1:4873"),
        "{id}"
    );
    assert!(
        job.to_env()
            .iter()
            .any(|(k, v)| *k == "SCALEMESH_NODE_MIRROR" && v == "http://127.0.0.1:4873")
    );
}

/// One user cannot fill the queue: past their share, deploys are refused with 429 and the
/// reason, and other users deploy as before.
#[tokio::test]
async fn one_user_cannot_fill_the_queue() {
    let app = spawn_app_with(|s| s.max_queued_per_user = 3).await;
    let bob = app.add_user("bob", false).await;
    create(&app, &app.token, "busy").await;
    let (status, _) = app
        .post(
            "/api/v1/projects/busy/members",
            json!({"user": "bob", "role": "developer"}),
        )
        .await;
    assert_eq!(status, 201);
    for _ in 0..3 {
        deploy(&app, &app.token, "busy", true).await;
    }
    let res = app
        .http
        .post(app.url("/api/v1/projects/busy/deployments"))
        .bearer_auth(&app.token)
        .json(&json!({}))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    let (_, body) = crate::helpers::status_json(res).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("3 builds waiting")),
        "{body}"
    );
    deploy(&app, &bob, "busy", true).await;
    // A canceled one frees a place.
    let (_, list) = app.get("/api/v1/projects/busy/deployments").await;
    let mine = list["deployments"]
        .as_array()
        .expect("list")
        .iter()
        .rev()
        .find(|d| d["status"] == "queued")
        .and_then(|d| d["id"].as_str())
        .expect("a queued one")
        .to_owned();
    let (status, _) = app
        .post(&format!("/api/v1/deployments/{mine}/cancel"), json!({}))
        .await;
    assert_eq!(status, 200);
    deploy(&app, &app.token, "busy", true).await;
}

/// A deploy token cannot delete a project (it acts at most as a developer), but a project it
/// created and never deployed is its to take back: a CI deploy whose first build was refused
/// leaves nothing behind. Once deployed, or someone else's, the project stays.
#[tokio::test]
async fn a_deploy_token_takes_back_only_a_new_empty_project_of_its_own() {
    let app = spawn_app().await;
    let olivia = app.add_user("olivia", false).await;
    let (ci, _) = app
        .make_token(&olivia, json!({"name": "ci", "role": "deploy"}))
        .await;
    let delete = |token: String, name: &'static str| {
        let app = &app;
        async move {
            app.call(&token, "DELETE", &format!("/api/v1/projects/{name}"), None)
                .await
        }
    };

    create(&app, &ci, "fresh").await;
    let (status, body) = delete(ci.clone(), "fresh").await;
    assert_eq!(status, 204, "{body}");
    let (status, _) = app
        .call(&olivia, "GET", "/api/v1/projects/fresh", None)
        .await;
    assert_eq!(status, 404, "it is gone");

    // Deployed once: only an owner deletes it.
    create(&app, &ci, "deployed").await;
    deploy(&app, &ci, "deployed", true).await;
    let (status, body) = delete(ci.clone(), "deployed").await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("owner")),
        "{body}"
    );

    // Someone else's empty project, even one the token may deploy to.
    create(&app, &olivia, "hers").await;
    let bob = app.add_user("bob", false).await;
    let (status, _) = app
        .call(
            &olivia,
            "POST",
            "/api/v1/projects/hers/members",
            Some(json!({"user": "bob", "role": "developer"})),
        )
        .await;
    assert_eq!(status, 201);
    let (bob_ci, _) = app
        .make_token(&bob, json!({"name": "ci", "role": "deploy"}))
        .await;
    let (status, body) = delete(bob_ci, "hers").await;
    assert_eq!(status, 403, "{body}");
    // A read token never takes anything back.
    create(&app, &olivia, "kept").await;
    let (read, _) = app
        .make_token(&olivia, json!({"name": "ro", "role": "read"}))
        .await;
    let (status, body) = delete(read, "kept").await;
    assert_eq!(status, 403, "{body}");
    let (_, list) = app.call(&olivia, "GET", "/api/v1/projects", None).await;
    let names: Vec<&str> = list["projects"]
        .as_array()
        .expect("projects")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["deployed", "hers", "kept"]);
}
