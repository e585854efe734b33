//! A team sharing one server, with the real binaries: an admin adds a person, who signs in with
//! the token printed for them, makes a deploy token for one project and deploys with it the way
//! a CI step does; what that token cannot reach; a sensitive variable the build sees and nothing
//! shows.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use sha2::{Digest, Sha256};

use crate::support::{GitServer, PACKAGE_JSON, Stack, stderr, stdout};

/// `scalemesh <args>` with the config file `config` (where `login` saves a token), `stdin` fed in.
fn cli_as(stack: &Stack, config: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = stack.cli_command(&stack.api, args);
    cmd.env("SCALEMESH_CONFIG", config);
    run(cmd, stdin)
}

/// `scalemesh <args>` with `SCALEMESH_TOKEN=token` and no config file, as a CI job runs it.
fn cli_ci(stack: &Stack, token: &str, args: &[&str]) -> Output {
    let mut cmd = stack.cli_command(&stack.api, args);
    cmd.env("SCALEMESH_TOKEN", token);
    run(cmd, None)
}

fn run(mut cmd: Command, stdin: Option<&str>) -> Output {
    let Some(input) = stdin else {
        return cmd.output().expect("scalemesh runs");
    };
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("scalemesh runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("scalemesh ends")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        stdout(out),
        stderr(out)
    );
    stdout(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ci_token_deploys_its_project_and_nothing_else() {
    let stack = Stack::start();
    let git = GitServer::start().await;
    let repo = git.repo("ada-site", &[("index.html", "<h1>ada v1</h1>")]);
    let other = git.repo("admin-site", &[("index.html", "admin")]);
    let admin_config = stack.data.path().join("admin.toml");
    let ada_config = stack.data.path().join("ada.toml");

    // The admin (this machine's admin token) deploys a project of their own and adds ada.
    ok(&cli_as(
        &stack,
        &admin_config,
        &["deploy", &other.url],
        None,
    ));
    let secret = ok(&cli_as(
        &stack,
        &admin_config,
        &["users", "add", "ada"],
        None,
    ));
    let secret = secret.trim();
    assert!(secret.starts_with("smk_") && secret.len() == 50, "{secret}");
    let users = ok(&cli_as(
        &stack,
        &admin_config,
        &["users", "ls", "--json"],
        None,
    ));
    let users: serde_json::Value = serde_json::from_str(&users).expect("json");
    assert_eq!(users["users"][0]["name"], "ada", "{users}");

    // ada signs in with it, and the token is saved for her alone.
    let out = cli_as(
        &stack,
        &ada_config,
        &["login", "--token-stdin"],
        Some(&format!("{secret}\n")),
    );
    ok(&out);
    assert!(stderr(&out).contains("as ada"), "{}", stderr(&out));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&ada_config)
        .expect("config saved")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let me: serde_json::Value = serde_json::from_str(&ok(&cli_as(
        &stack,
        &ada_config,
        &["whoami", "--json"],
        None,
    )))
    .expect("json");
    assert_eq!(me["user"]["name"], "ada");

    // Her own project, then a deploy token for it alone.
    ok(&cli_as(&stack, &ada_config, &["deploy", &repo.url], None));
    let ci = ok(&cli_as(
        &stack,
        &ada_config,
        &[
            "tokens",
            "create",
            "ci",
            "--project",
            "ada-site",
            "--role",
            "deploy",
            "--expires",
            "30d",
        ],
        None,
    ));
    let ci = ci.trim().to_owned();
    let me: serde_json::Value =
        serde_json::from_str(&ok(&cli_ci(&stack, &ci, &["whoami", "--json"]))).expect("json");
    assert_eq!(me["token"]["role"], "deploy");
    assert_eq!(me["token"]["projects"], serde_json::json!(["ada-site"]));

    // The CI step: the token from the environment, the URL alone on stdout.
    repo.commit(&[("index.html", "<h1>ada v2</h1>")], "v2");
    let url = ok(&cli_ci(&stack, &ci, &["deploy", &repo.url]));
    assert_eq!(
        url.trim(),
        "http://ada-site.localhost:".to_owned() + &stack.sites.port().to_string()
    );
    let body = stack
        .site("ada-site.localhost", "/")
        .await
        .text()
        .await
        .expect("body");
    assert_eq!(body, "<h1>ada v2</h1>");

    // Another project: not there, for this token.
    let out = cli_ci(&stack, &ci, &["deployments", "ls", "admin-site"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    let out = cli_ci(&stack, &ci, &["deploy", &other.url]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    let client = reqwest::Client::new();
    let status = |path: &str, method: reqwest::Method| {
        let client = client.clone();
        let url = format!("{}{path}", stack.api);
        let ci = ci.clone();
        async move {
            client
                .request(method, url)
                .bearer_auth(ci)
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .expect("api")
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        status(
            "/api/v1/projects/admin-site/deployments",
            reqwest::Method::POST
        )
        .await,
        404
    );
    // Its own project it may deploy, not delete.
    assert_eq!(
        status("/api/v1/projects/ada-site", reqwest::Method::DELETE).await,
        403
    );
    let out = cli_ci(&stack, &ci, &["tokens", "create", "more"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("full token"), "{}", stderr(&out));

    // Revoked by ada: refused at once, saying so.
    let tokens: serde_json::Value = serde_json::from_str(&ok(&cli_as(
        &stack,
        &ada_config,
        &["tokens", "ls", "--json"],
        None,
    )))
    .expect("json");
    let id = tokens["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .find(|t| t["name"] == "ci")
        .and_then(|t| t["id"].as_i64())
        .expect("the ci token is listed");
    assert!(
        !tokens.to_string().contains(&ci),
        "no secret in the listing"
    );
    ok(&cli_as(
        &stack,
        &ada_config,
        &["tokens", "revoke", &id.to_string()],
        None,
    ));
    let out = cli_ci(&stack, &ci, &["deployments", "ls", "ada-site"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("revoked"), "{}", stderr(&out));
    assert!(stderr(&out).contains("hint:"), "{}", stderr(&out));

    // Removing ada stops her own token too; her project stays, now the admin's.
    ok(&cli_as(
        &stack,
        &admin_config,
        &["users", "rm", "ada"],
        None,
    ));
    let out = cli_as(&stack, &ada_config, &["whoami"], None);
    assert_eq!(out.status.code(), Some(1));
    let members = ok(&cli_as(
        &stack,
        &admin_config,
        &["members", "ls", "ada-site", "--json"],
        None,
    ));
    assert!(members.contains("\"admin\""), "{members}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sensitive_variable_reaches_the_build_and_nothing_else() {
    const VALUE: &str = "local-sensitive-7Hq2Zp";
    let stack = Stack::start();
    let git = GitServer::start().await;
    let build = r#"
const fs = require("fs");
const crypto = require("crypto");
console.log("key is " + process.env.API_KEY);
fs.mkdirSync("dist", { recursive: true });
fs.writeFileSync("dist/index.html", crypto.createHash("sha256").update(process.env.API_KEY || "").digest("hex"));
"#;
    let repo = git.repo(
        "envy",
        &[("package.json", PACKAGE_JSON), ("build.js", build)],
    );
    let config = stack.data.path().join("no-config.toml");
    let out = cli_as(&stack, &config, &["deploy", &repo.url, "--no-wait"], None);
    ok(&out);
    // The value from stdin, never the command line.
    ok(&cli_as(
        &stack,
        &config,
        &[
            "env",
            "add",
            "envy",
            "API_KEY",
            "--target",
            "production",
            "--sensitive",
        ],
        Some(&format!("{VALUE}\n")),
    ));
    let listed = ok(&cli_as(
        &stack,
        &config,
        &["env", "ls", "envy", "--json"],
        None,
    ));
    assert!(
        listed.contains("API_KEY") && !listed.contains(VALUE),
        "{listed}"
    );

    let out = cli_as(&stack, &config, &["deploy", &repo.url], None);
    ok(&out);
    let log = stderr(&out);
    assert!(log.contains("key is ***") && !log.contains(VALUE), "{log}");
    let seen = stack
        .site("envy.localhost", "/")
        .await
        .text()
        .await
        .expect("body");
    let want: String = Sha256::digest(VALUE)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(seen, want, "the build saw the value");
    let logs = ok(&cli_as(&stack, &config, &["logs", "envy"], None));
    assert!(!logs.contains(VALUE), "{logs}");

    // `env pull` leaves a sensitive value out, and says so.
    let file = stack.data.path().join("pulled.env");
    let out = cli_as(
        &stack,
        &config,
        &[
            "env",
            "pull",
            "envy",
            file.to_str().expect("utf-8"),
            "--target",
            "production",
        ],
        None,
    );
    ok(&out);
    let pulled = std::fs::read_to_string(&file).expect("pulled");
    assert!(!pulled.contains(VALUE), "{pulled}");
    assert!(stderr(&out).contains("sensitive"), "{}", stderr(&out));

    // A `.env` that is a link (a repository can hold one) is not written through.
    let victim = stack.data.path().join("victim");
    std::fs::write(&victim, "untouched").expect("write");
    let link = stack.data.path().join("link.env");
    std::os::unix::fs::symlink(&victim, &link).expect("symlink");
    let out = cli_as(
        &stack,
        &config,
        &["env", "pull", "envy", link.to_str().expect("utf-8")],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&victim).expect("read"), "untouched");

    let mut database = Vec::new();
    for name in ["scalemesh.db", "scalemesh.db-wal", "scalemesh.db-shm"] {
        database.extend(std::fs::read(stack.data_dir().join(name)).unwrap_or_default());
    }
    assert!(!database.windows(VALUE.len()).any(|w| w == VALUE.as_bytes()));
}

/// Statuses of a project's deployments, by id.
async fn statuses(stack: &Stack, project: &str) -> std::collections::HashMap<String, String> {
    let list = stack
        .api_get(&format!("/api/v1/projects/{project}/deployments?limit=100"))
        .await;
    list["deployments"]
        .as_array()
        .expect("deployments")
        .iter()
        .map(|d| {
            (
                d["id"].as_str().expect("id").to_owned(),
                d["status"].as_str().expect("status").to_owned(),
            )
        })
        .collect()
}

/// User A queues ten builds, user B one: B's starts as soon as one of A's running builds ends,
/// before any more of A's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builds_take_turns_across_users() {
    let stack = Stack::start_with(&["--max-builds", "2"]);
    let git = GitServer::start().await;
    let repo = git.repo(
        "turns",
        &[
            ("package.json", PACKAGE_JSON),
            ("build.js", "setTimeout(() => {}, 120000);\n"),
        ],
    );
    let config = stack.data.path().join("no-config.toml");
    let deploy = |token: Option<&str>| {
        let out = match token {
            Some(t) => cli_ci(&stack, t, &["deploy", &repo.url, "--no-wait", "--json"]),
            None => cli_as(
                &stack,
                &config,
                &["deploy", &repo.url, "--no-wait", "--json"],
                None,
            ),
        };
        let dep: serde_json::Value = serde_json::from_str(&ok(&out)).expect("json");
        dep["id"].as_str().expect("id").to_owned()
    };
    let mine: Vec<String> = (0..10).map(|_| deploy(None)).collect();
    let bob = ok(&cli_as(&stack, &config, &["users", "add", "bob"], None));
    ok(&cli_as(
        &stack,
        &config,
        &["members", "add", "turns", "bob", "--role", "developer"],
        None,
    ));
    let running = |s: &std::collections::HashMap<String, String>, ids: &[String]| {
        ids.iter()
            .filter(|id| {
                s.get(*id)
                    .is_some_and(|st| st == "building" || st == "uploading")
            })
            .cloned()
            .collect::<Vec<_>>()
    };
    let started = std::time::Instant::now();
    let first = loop {
        let s = statuses(&stack, "turns").await;
        let now = running(&s, &mine);
        if now.len() == 2 {
            break now;
        }
        assert!(
            started.elapsed().as_secs() < 60,
            "two of A's builds start: {s:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let theirs = deploy(Some(bob.trim()));
    ok(&cli_as(&stack, &config, &["cancel", &first[0]], None));
    let started = std::time::Instant::now();
    loop {
        let s = statuses(&stack, "turns").await;
        let mine_now = running(&s, &mine);
        assert!(
            mine_now.len() <= 1,
            "none of A's queued builds started before B's: {s:?}"
        );
        if running(&s, std::slice::from_ref(&theirs)).len() == 1 {
            assert_eq!(mine_now, [first[1].clone()], "{s:?}");
            break;
        }
        assert!(started.elapsed().as_secs() < 60, "B's build starts: {s:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for id in mine.iter().chain([&theirs]) {
        let _ = cli_as(&stack, &config, &["cancel", id], None);
    }
}
