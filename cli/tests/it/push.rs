//! Push to deploy with the real binaries: a repository on loopback, connected with
//! `scalemesh git connect`, and deliveries shaped and signed as GitHub sends them. A push to
//! main goes live with its exact commit; a push to a branch and a pull request get their own
//! hosts while production stays; a push behind a queued build of its branch supersedes it.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::support::{GitServer, Repo, Stack, stderr, stdout};

/// `git rev-parse HEAD` in `repo`.
fn head(repo: &Repo) -> String {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(&repo.path)
        .output()
        .expect("git");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// `git connect`'s webhook URL and secret, from what it printed.
fn connect(stack: &Stack, project: &str) -> (String, String) {
    let out = stack.cli(&["git", "connect", project, "--production-branch", "main"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    let field = |name: &str| {
        printed
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {printed}"))
            .trim()
            .to_owned()
    };
    (field("Payload URL:"), field("Secret:"))
}

struct Forge {
    url: String,
    secret: String,
    sent: std::cell::Cell<u32>,
}

impl Forge {
    /// Sends `body` as GitHub's `event` delivery, signed as GitHub signs: the answer.
    async fn send(&self, event: &str, body: &Value) -> Value {
        let bytes = serde_json::to_vec(body).expect("json");
        let mut mac = Hmac::<Sha256>::new_from_slice(self.secret.as_bytes()).expect("key");
        mac.update(&bytes);
        let signature = hex::encode(mac.finalize().into_bytes());
        self.sent.set(self.sent.get() + 1);
        let res = reqwest::Client::new()
            .post(&self.url)
            .header("content-type", "application/json")
            .header("x-github-event", event)
            .header("x-github-delivery", format!("delivery-{}", self.sent.get()))
            .header("x-hub-signature-256", format!("sha256={signature}"))
            .body(bytes)
            .send()
            .await
            .expect("delivery");
        let status = res.status().as_u16();
        let answer: Value = res.json().await.expect("json");
        assert!(status < 300, "{status} {answer}");
        answer
    }

    async fn push(&self, branch: &str, commit: &str) -> String {
        let body = json!({
            "ref": format!("refs/heads/{branch}"),
            "before": "0".repeat(40),
            "after": commit,
            "deleted": false,
            "repository": {"full_name": "acme/site"},
            "pusher": {"name": "octocat"},
            "head_commit": {"id": commit, "message": format!("push to {branch}"), "author": {"username": "octocat"}}
        });
        let answer = self.send("push", &body).await;
        answer["deployment"]
            .as_str()
            .expect("a deployment")
            .to_owned()
    }
}

/// Waits until deployment `id` is `status` (or fails the test with its state).
async fn until(stack: &Stack, id: &str, status: &str) -> Value {
    let mut dep = Value::Null;
    for _ in 0..600 {
        dep = stack.api_get(&format!("/api/v1/deployments/{id}")).await;
        if dep["status"] == status {
            return dep;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{id} never became {status}: {dep}\n{}", stack.server_log());
}

async fn page(stack: &Stack, label: &str) -> String {
    let host = format!("{label}.localhost:{}", stack.sites.port());
    let res = stack.site(&host, "/").await;
    format!(
        "{} {}",
        res.status().as_u16(),
        res.text().await.unwrap_or_default()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_and_pull_requests_deploy_their_commits_at_their_own_hosts() {
    let git = GitServer::start().await;
    let repo = git.repo("acme/site", &[("index.html", "one")]);
    let stack = Stack::start_with(&["--max-builds", "1"]);
    let out = stack.cli(&["deploy", &repo.url, "--project", "site"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (url, secret) = connect(&stack, "site");
    assert_eq!(url, format!("{}/hooks/git/site", stack.api));
    let forge = Forge {
        url,
        secret,
        sent: std::cell::Cell::new(0),
    };

    // A push to main: production shows exactly that commit.
    repo.commit(&[("index.html", "two")], "second");
    let two = head(&repo);
    repo.commit(&[("index.html", "not pushed yet")], "third");
    let id = forge.push("main", &two).await;
    let dep = until(&stack, &id, "ready").await;
    assert_eq!(dep["commit"]["sha"], two.as_str(), "{dep}");
    assert_eq!(page(&stack, "site").await, "200 two");
    let out = stack.cli(&["deployments", "ls", "site"]);
    // The commit as the builder read it from the repository.
    assert!(
        stdout(&out).contains(&format!("{} second", &two[..7])),
        "{}",
        stdout(&out)
    );

    // A push to feature/x: its own host; production stays.
    crate::support::git(&repo.path, &["checkout", "-q", "-b", "feature/x"]);
    repo.commit(&[("index.html", "feature")], "feature");
    let feature = head(&repo);
    let id = forge.push("feature/x", &feature).await;
    until(&stack, &id, "ready").await;
    assert_eq!(page(&stack, "git-feature-x--site").await, "200 feature");
    assert_eq!(page(&stack, "site").await, "200 two");

    // A pull request from it: the PR's host.
    let pull = json!({
        "action": "opened",
        "number": 5,
        "pull_request": {"number": 5, "title": "Feature", "user": {"login": "octocat"},
            "head": {"ref": "feature/x", "sha": feature, "repo": {"full_name": "acme/site"}},
            "base": {"ref": "main", "repo": {"full_name": "acme/site"}}},
        "repository": {"full_name": "acme/site"}
    });
    let answer = forge.send("pull_request", &pull).await;
    let id = answer["deployment"]
        .as_str()
        .expect("a deployment")
        .to_owned();
    until(&stack, &id, "ready").await;
    assert_eq!(page(&stack, "pr-5--site").await, "200 feature");

    // Three pushes at once, one build at a time: the second, still queued behind the first,
    // is superseded by the third, of the same branch.
    let busy = forge.push("main", &two).await;
    repo.commit(&[("index.html", "feature two")], "feature two");
    let queued = forge.push("feature/x", &head(&repo)).await;
    repo.commit(&[("index.html", "feature three")], "feature three");
    let newest = forge.push("feature/x", &head(&repo)).await;
    let superseded = until(&stack, &queued, "canceled").await;
    assert!(
        superseded["reason"]
            .as_str()
            .unwrap_or("")
            .contains(&format!("superseded by deployment {newest}")),
        "{superseded}"
    );
    until(&stack, &busy, "ready").await;
    until(&stack, &newest, "ready").await;
    assert_eq!(
        page(&stack, "git-feature-x--site").await,
        "200 feature three"
    );

    let out = stack.cli(&["git", "show", "site"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = stdout(&out);
    for expected in [
        "Production branch: main",
        "Last delivery:",
        "#5",
        "feature/x",
        "git-feature-x--site",
    ] {
        assert!(shown.contains(expected), "{expected:?} in {shown}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_hook_made_with_the_cli_builds_its_branch_when_posted() {
    let git = GitServer::start().await;
    let repo = git.repo("acme/hooked", &[("index.html", "main")]);
    crate::support::git(&repo.path, &["checkout", "-q", "-b", "next"]);
    repo.commit(&[("index.html", "next")], "next");
    let stack = Stack::start();
    let out = stack.cli(&["deploy", &repo.url, "--ref", "main", "--project", "hooked"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = stack.cli(&[
        "hooks", "create", "hooked", "--name", "cms", "--branch", "next",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let url = stdout(&out).trim().to_owned();
    assert!(
        url.starts_with(&format!("{}/hooks/deploy/smh_", stack.api)),
        "{url}"
    );
    // No token: the URL is the secret.
    let res = reqwest::Client::new()
        .post(&url)
        .send()
        .await
        .expect("hook");
    assert_eq!(res.status().as_u16(), 202);
    let answer: Value = res.json().await.expect("json");
    let id = answer["deployment"]
        .as_str()
        .expect("a deployment")
        .to_owned();
    until(&stack, &id, "ready").await;
    assert_eq!(page(&stack, "git-next--hooked").await, "200 next");
    assert_eq!(page(&stack, "hooked").await, "200 main");
    let out = stack.cli(&["hooks", "ls", "hooked"]);
    let listed = stdout(&out);
    assert!(
        listed.contains("cms") && listed.contains("next") && !listed.contains("smh_"),
        "{listed}"
    );
    let hook_id = listed
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .expect("an id");
    let out = stack.cli(&["hooks", "rm", "hooked", hook_id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let res = reqwest::Client::new()
        .post(&url)
        .send()
        .await
        .expect("hook");
    assert_eq!(res.status().as_u16(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_url_hears_of_a_deploy_signed_with_the_secret_the_cli_showed() {
    let got: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>> = Default::default();
    let seen = got.clone();
    let receiver = axum::Router::new().route(
        "/in",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let seen = seen.clone();
            async move {
                let signature = headers["x-scalemesh-signature"]
                    .to_str()
                    .unwrap_or("")
                    .to_owned();
                seen.lock().expect("lock").push((signature, body));
                "thanks"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/in", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, receiver).await });

    let stack = Stack::start_with(&["--allow-private-notify", "127.0.0.1"]);
    let site = tempfile::tempdir().expect("tempdir");
    std::fs::write(site.path().join("index.html"), "hello").expect("write");
    let folder = site.path().to_str().expect("utf-8");
    let out = stack.cli(&["deploy", folder, "--prebuilt", "--project", "told"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = stack.cli(&["notify", "add", "told", &url, "--events", "ready"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let secret = stdout(&out).trim().to_owned();
    let out = stack.cli(&[
        "deploy",
        folder,
        "--prebuilt",
        "--project",
        "told",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let deployed: Value = serde_json::from_str(&stdout(&out)).expect("json");
    for _ in 0..200 {
        if !got.lock().expect("lock").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (signature, body) = got
        .lock()
        .expect("lock")
        .first()
        .cloned()
        .expect("a delivery");
    // Checked as a receiver would, with nothing of Scale Mesh's: t=<seconds>,v1=<HMAC of "t.body">.
    let (t, v1) = signature
        .split_once(",v1=")
        .and_then(|(t, v1)| Some((t.strip_prefix("t=")?, v1)))
        .expect("t=…,v1=…");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{t}.{body}").as_bytes());
    assert_eq!(hex::encode(mac.finalize().into_bytes()), v1);
    let sent: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(sent["event"], "deployment.ready");
    assert_eq!(sent["deployment"]["id"], deployed["id"]);
    let out = stack.cli(&["notify", "log", "told"]);
    let log = stdout(&out);
    assert!(
        log.contains("deployment.ready")
            && log.contains("delivered (1 tries)")
            && log.contains("200"),
        "{log}"
    );

    // An internal address the server was not told to allow.
    let plain = Stack::start();
    let out = plain.cli(&["deploy", folder, "--prebuilt", "--project", "told"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = plain.cli(&["notify", "add", "told", &url]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--allow-private-notify"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_picks_up_a_push_without_a_webhook() {
    let git = GitServer::start().await;
    let repo = git.repo("acme/polled", &[("index.html", "one")]);
    let stack = Stack::start();
    let out = stack.cli(&["deploy", &repo.url, "--project", "polled"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = stack.cli(&["git", "connect", "polled", "--poll", "1s"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // No delivery is sent: a commit on main and a new branch are found by listing them.
    repo.commit(&[("index.html", "two")], "second");
    let two = head(&repo);
    crate::support::git(&repo.path, &["checkout", "-q", "-b", "later"]);
    repo.commit(&[("index.html", "later")], "later");
    let mut served = String::new();
    for _ in 0..300 {
        served = format!(
            "{} | {}",
            page(&stack, "polled").await,
            page(&stack, "git-later--polled").await
        );
        if served == "200 two | 200 later" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(served, "200 two | 200 later", "{}", stack.server_log());
    let listed = stack.api_get("/api/v1/projects/polled/deployments").await;
    let built: Vec<&str> = listed["deployments"]
        .as_array()
        .expect("deployments")
        .iter()
        .filter_map(|d| d["commit"]["sha"].as_str())
        .collect();
    assert!(built.contains(&two.as_str()), "{listed}");
    let out = stack.cli(&["git", "show", "polled"]);
    let shown = stdout(&out);
    assert!(
        shown.contains("Polling:           every 1s") && shown.contains("Last delivery:"),
        "{shown}"
    );
    // A repository that cannot be listed is refused at once, not polled in vain.
    let out = stack.cli(&["deploy", &repo.url, "--project", "other"]);
    assert!(out.status.success(), "{}", stderr(&out));
    drop(git);
    let out = stack.cli(&["git", "connect", "other", "--poll", "1s"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("could not be listed"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_repository_is_built_with_its_deploy_token_which_nothing_shows() {
    let secret = "tok3n-s3cret-value";
    let git = crate::support::GitHttpServer::start("deploy", secret).await;
    let path = git.repo("acme/private.git", &[("index.html", "private")]);
    let url = format!("http://{}/acme/private.git", git.addr);
    let stack = Stack::start();
    let created: Value = reqwest::Client::new()
        .post(format!("{}/api/v1/projects", stack.api))
        .bearer_auth(stack.token())
        .json(&json!({"name": "private", "git_url": url}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    assert_eq!(created["name"], "private", "{created}");
    // The token is piped in, never on the command line.
    let mut connect =
        stack.cli_command(&stack.api, &["git", "connect", "private", "--deploy-token"]);
    connect
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = connect.spawn().expect("scalemesh");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        writeln!(stdin, "deploy:{secret}").expect("write");
    }
    let out = child.wait_with_output().expect("git connect");
    assert!(out.status.success(), "{}", stderr(&out));
    let webhook_secret = stdout(&out)
        .lines()
        .find_map(|l| l.strip_prefix("Secret:"))
        .expect("a webhook secret")
        .trim()
        .to_owned();
    let forge = Forge {
        url: format!("{}/hooks/git/private", stack.api),
        secret: webhook_secret,
        sent: std::cell::Cell::new(0),
    };
    let sha = String::from_utf8_lossy(
        &std::process::Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(&path)
            .output()
            .expect("git")
            .stdout,
    )
    .trim()
    .to_owned();
    let body = json!({
        "ref": "refs/heads/main", "after": sha,
        "repository": {"full_name": "acme/private"},
        "head_commit": {"id": sha, "message": "m", "author": {"username": "a"}}
    });
    let id = forge.send("push", &body).await["deployment"]
        .as_str()
        .expect("id")
        .to_owned();
    until(&stack, &id, "ready").await;
    assert_eq!(page(&stack, "private").await, "200 private");
    // Nowhere to be read: the build's log, the connection, the deployment.
    let log = reqwest::Client::new()
        .get(format!("{}/api/v1/deployments/{id}/logs", stack.api))
        .bearer_auth(stack.token())
        .send()
        .await
        .expect("logs")
        .text()
        .await
        .expect("text");
    let shown = stdout(&stack.cli(&["git", "show", "private", "--json"]));
    let inspected = stdout(&stack.cli(&["inspect", &id, "--json"]));
    for text in [&log, &shown, &inspected, &stack.server_log()] {
        assert!(!text.contains(secret), "{text}");
    }
    assert!(shown.contains("\"deploy_credential\": true"), "{shown}");
    // Without it, the same repository cannot be cloned.
    let out = stack.cli(&["deploy", &url, "--project", "unconnected"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}
