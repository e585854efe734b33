//! Scale Mesh on AWS APIs, proven against `moto_server` on loopback: builds as ECS tasks, sites
//! in S3. The test plays the ECS agent: it reads the task the server asked for back from ECS and
//! runs `scalemesh-builder` with exactly that environment.

use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;

use sha2::{Digest, Sha256};

use crate::moto::{AWS_ENV, AwsProxy, BUCKET, Moto, task_environment};
use crate::support::{GitServer, PACKAGE_JSON, Stack, bin, stderr, stdout};

/// A server on `--runner ecs --storage s3://…`, builders reporting to its own API URL. ECS calls
/// go through `proxy`, in front of moto.
fn ecs_stack(moto: &Moto, proxy: &AwsProxy, task_definition: &str) -> Stack {
    let ecs = moto.ecs();
    let storage = format!("s3://{BUCKET}/prod/");
    let mut env: Vec<(&str, &str)> = AWS_ENV.to_vec();
    env.extend([
        ("SCALEMESH_RUNNER", "ecs"),
        ("SCALEMESH_STORAGE", storage.as_str()),
        ("SCALEMESH_S3_ENDPOINT", proxy.endpoint.as_str()),
        ("SCALEMESH_ECS_ENDPOINT", proxy.endpoint.as_str()),
        ("SCALEMESH_ECS_CLUSTER", "builds"),
        ("SCALEMESH_ECS_TASK_DEFINITION", task_definition),
        ("SCALEMESH_ECS_SUBNETS", ecs.subnet.as_str()),
        ("SCALEMESH_ECS_SECURITY_GROUPS", ecs.security_group.as_str()),
        ("SCALEMESH_RECONCILE_INTERVAL", "1s"),
    ]);
    // Build tasks are told where the API listens, so the port is chosen up front.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let api = format!("http://{listen}");
    env.extend([
        ("SCALEMESH_LISTEN", listen.as_str()),
        ("SCALEMESH_BUILDER_API_URL", api.as_str()),
    ]);
    Stack::start_with_env(&[], &env)
}

fn deploy_no_wait(stack: &Stack, url: &str) -> serde_json::Value {
    let out = stack.cli(&["deploy", url, "--no-wait", "--json"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        stderr(&out),
        stack.server_log()
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// Runs the builder the way ECS would: the task's environment, the task role's credentials.
fn run_task_like_ecs(environment: &[(String, String)]) -> std::process::Output {
    Command::new(bin("scalemesh-builder"))
        .env_clear()
        .envs(environment.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .envs(AWS_ENV)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .output()
        .expect("the builder runs")
}

/// `method path` on the stack's API as its admin, with a JSON body; the status and the body.
async fn api(
    stack: &Stack,
    method: reqwest::Method,
    path: &str,
    body: serde_json::Value,
) -> (u16, String) {
    let res = reqwest::Client::new()
        .request(method, format!("{}{path}", stack.api))
        .bearer_auth(stack.token())
        .json(&body)
        .send()
        .await
        .expect("api");
    (res.status().as_u16(), res.text().await.expect("body"))
}

/// A sensitive value the build must see and nothing else may show.
const SECRET: &str = "ecs-sensitive-Qm93Xr41";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_runs_as_the_ecs_task_the_server_asked_for_and_is_served_from_s3() {
    let moto = Moto::start();
    let proxy = AwsProxy::start(&moto.endpoint).await;
    let git = GitServer::start().await;
    let build = r#"
const fs = require("fs");
const crypto = require("crypto");
fs.mkdirSync("dist", { recursive: true });
fs.writeFileSync("dist/index.html", "<h1>built on ECS</h1>");
// The build sees its sensitive variable: it prints it (the log masks it) and proves it saw it.
console.log("the secret is " + process.env.API_SECRET);
fs.writeFileSync("dist/seen.txt", crypto.createHash("sha256").update(process.env.API_SECRET || "").digest("hex"));
const big = Buffer.alloc(17 * 1024 * 1024);
for (let i = 0; i < big.length; i++) big[i] = i % 251;
fs.writeFileSync("dist/video.bin", big);
"#;
    let repo = git.repo(
        "cloud-site",
        &[("package.json", PACKAGE_JSON), ("build.js", build)],
    );
    let stack = ecs_stack(&moto, &proxy, "builder");
    let (status, body) = api(
        &stack,
        reqwest::Method::POST,
        "/api/v1/projects",
        serde_json::json!({"name": "cloud-site", "git_url": repo.url}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = api(
        &stack,
        reqwest::Method::PUT,
        "/api/v1/projects/cloud-site/env/API_SECRET",
        serde_json::json!({"value": SECRET, "target": "production", "sensitive": true}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains(SECRET), "{body}");

    let dep = deploy_no_wait(&stack, &repo.url);
    let id = dep["id"].as_str().expect("id").to_owned();
    let arn = dep["runner_ref"]
        .as_str()
        .unwrap_or_else(|| panic!("the task ARN is recorded: {dep}\n{}", stack.server_log()))
        .to_owned();
    assert!(arn.starts_with("arn:aws:ecs:"), "{arn}");

    // What RunTask received.
    let task = moto.task(&arn);
    assert_eq!(task["launchType"], "FARGATE");
    assert_eq!(task["startedBy"], format!("scalemesh-{id}"));
    assert_eq!(
        task["overrides"]["containerOverrides"][0]["name"],
        "builder"
    );
    let environment = task_environment(&task);
    let get = |name: &str| {
        environment
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("SCALEMESH_DEPLOYMENT_ID"), Some(id.as_str()));
    assert_eq!(get("SCALEMESH_PROJECT"), Some("cloud-site"));
    assert_eq!(get("SCALEMESH_GIT_URL"), Some(repo.url.as_str()));
    assert_eq!(get("SCALEMESH_STORAGE"), Some("s3://sites/prod/"));
    assert_eq!(get("SCALEMESH_S3_ENDPOINT"), Some(proxy.endpoint.as_str()));
    assert_eq!(get("SCALEMESH_API_URL"), Some(stack.api.as_str()));
    assert!(get("SCALEMESH_JOB_TOKEN").is_some_and(|t| t.starts_with("smj_")));
    assert!(
        get("AWS_SECRET_ACCESS_KEY").is_none(),
        "no credentials in the overrides"
    );
    assert!(
        !task.to_string().contains(SECRET),
        "no variable value in what DescribeTasks shows: {task}"
    );

    // The agent's part: run the task.
    let ran = run_task_like_ecs(&environment);
    if !ran.status.success() {
        let dep = stack.api_get(&format!("/api/v1/deployments/{id}")).await;
        panic!(
            "the builder failed: {}\nthe deployment: {dep}",
            String::from_utf8_lossy(&ran.stderr)
        );
    }
    let out = stack.cli(&["logs", &id, "--follow"]);
    assert!(out.status.success(), "{}\n{}", stderr(&out), stdout(&out));
    assert!(
        stdout(&out).contains("Uploaded 3 new files"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("the secret is ***") && !stdout(&out).contains(SECRET),
        "the value is masked in the log: {}",
        stdout(&out)
    );
    let seen = stack
        .site("cloud-site.localhost", "/seen.txt")
        .await
        .text()
        .await
        .expect("body");
    let want: String = Sha256::digest(SECRET)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(seen, want, "the build saw the value");
    for path in [
        "/api/v1/projects/cloud-site",
        "/api/v1/projects/cloud-site/env",
    ] {
        let (status, body) = api(&stack, reqwest::Method::GET, path, serde_json::Value::Null).await;
        assert_eq!(status, 200, "{body}");
        assert!(!body.contains(SECRET), "{path}: {body}");
    }
    let mut database = Vec::new();
    for file in ["scalemesh.db", "scalemesh.db-wal", "scalemesh.db-shm"] {
        database.extend(std::fs::read(stack.data_dir().join(file)).unwrap_or_default());
    }
    assert!(
        !database
            .windows(SECRET.len())
            .any(|w| w == SECRET.as_bytes()),
        "the value is not in the database in clear"
    );

    // Served by the proxy from S3, the large file whole.
    assert_eq!(
        crate::presets::page(&stack, "cloud-site.localhost").await,
        "<h1>built on ECS</h1>"
    );
    let big = stack
        .site("cloud-site.localhost", "/video.bin")
        .await
        .bytes()
        .await
        .expect("body");
    let want: Vec<u8> = (0..17 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    assert_eq!(Sha256::digest(&big), Sha256::digest(&want));
    let route = moto.aws(&[
        "s3api",
        "head-object",
        "--bucket",
        BUCKET,
        "--key",
        "prod/__routes/cloud-site.json",
    ]);
    assert!(route["ContentLength"].as_u64().is_some_and(|n| n > 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_the_task() {
    let moto = Moto::start();
    let proxy = AwsProxy::start(&moto.endpoint).await;
    let git = GitServer::start().await;
    let repo = git.repo("stopme", &[("index.html", "x")]);
    let stack = ecs_stack(&moto, &proxy, "builder");
    let dep = deploy_no_wait(&stack, &repo.url);
    let (id, arn) = (
        dep["id"].as_str().expect("id"),
        dep["runner_ref"].as_str().expect("arn"),
    );
    let out = stack.cli(&["cancel", id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let task = moto.task(arn);
    assert_eq!(task["lastStatus"], "STOPPED");
    assert!(
        task["stoppedReason"].as_str().expect("reason").contains(id),
        "{task}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_stops_without_reporting_fails_its_deployment() {
    let moto = Moto::start();
    let proxy = AwsProxy::start(&moto.endpoint).await;
    let git = GitServer::start().await;
    let repo = git.repo("crashy", &[("index.html", "x")]);
    let stack = ecs_stack(&moto, &proxy, "builder");
    let dep = deploy_no_wait(&stack, &repo.url);
    let (id, arn) = (
        dep["id"].as_str().expect("id"),
        dep["runner_ref"].as_str().expect("arn"),
    );
    // ECS stops the task (its container exited) before the builder said anything.
    moto.aws(&[
        "ecs",
        "stop-task",
        "--cluster",
        "builds",
        "--task",
        arn,
        "--reason",
        "Essential container in task exited",
    ]);
    let out = stack.cli(&["logs", id, "--follow"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the build task stopped: Essential container in task exited"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtask_against_an_unknown_task_definition_fails_at_once() {
    let moto = Moto::start();
    let proxy = AwsProxy::start(&moto.endpoint).await;
    let git = GitServer::start().await;
    let repo = git.repo("nodef", &[("index.html", "x")]);
    let stack = ecs_stack(&moto, &proxy, "no-such-definition");
    let out = stack.cli(&["deploy", &repo.url]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("ECS RunTask failed: ClientException"), "{err}");
    assert!(stdout(&out).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_failure_mid_upload_fails_the_deployment_and_the_live_site_stays() {
    let moto = Moto::start();
    let faulty = AwsProxy::start(&moto.endpoint).await;
    let storage = format!("s3://{BUCKET}/faulty/");
    let mut env: Vec<(&str, &str)> = AWS_ENV.to_vec();
    env.extend([
        ("SCALEMESH_STORAGE", storage.as_str()),
        ("SCALEMESH_S3_ENDPOINT", faulty.endpoint.as_str()),
    ]);
    let stack = Stack::start_with_env(&[], &env);
    let git = GitServer::start().await;
    let repo = git.repo("steady", &[("index.html", "<h1>v1</h1>")]);
    let out = stack.cli(&["deploy", &repo.url]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        crate::presets::page(&stack, "steady.localhost").await,
        "<h1>v1</h1>"
    );

    faulty.failing.store(true, Ordering::SeqCst);
    repo.commit(
        &[("index.html", "<h1>v2</h1>"), ("more.html", "more")],
        "v2",
    );
    let out = stack.cli(&["deploy", &repo.url]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("S3 could not store") && err.contains("SlowDown"),
        "the S3 error is in the log: {err}"
    );
    assert_eq!(
        crate::presets::page(&stack, "steady.localhost").await,
        "<h1>v1</h1>"
    );

    // A folder upload the server cannot store is refused whole, with the reason.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("index.html"), "folder").expect("write");
    let out = stack.cli(&[
        "deploy",
        dir.path().to_str().expect("utf-8"),
        "--project",
        "steady",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("could not be stored"),
        "{}",
        stderr(&out)
    );
    faulty.failing.store(false, Ordering::SeqCst);
    assert_eq!(
        crate::presets::page(&stack, "steady.localhost").await,
        "<h1>v1</h1>"
    );
}

/// ECS tasks outlive a server restart, and the new server follows them: a task started before
/// a crash still reports to it and goes live, and one that ECS stops afterwards fails its
/// deployment with ECS's reason. Neither is failed for the restart itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_are_followed_again_after_a_restart() {
    let moto = Moto::start();
    let proxy = AwsProxy::start(&moto.endpoint).await;
    let git = GitServer::start().await;
    let runs = git.repo("survivor", &[("index.html", "ran across a restart")]);
    let stops = git.repo("stopped", &[("index.html", "never")]);
    let mut stack = ecs_stack(&moto, &proxy, "builder");
    let first = deploy_no_wait(&stack, &runs.url);
    let second = deploy_no_wait(&stack, &stops.url);
    let (id, arn) = (
        first["id"].as_str().expect("id").to_owned(),
        first["runner_ref"].as_str().expect("arn").to_owned(),
    );
    let (stopped_id, stopped_arn) = (
        second["id"].as_str().expect("id").to_owned(),
        second["runner_ref"].as_str().expect("arn").to_owned(),
    );

    stack.crash_and_restart();
    // Several reconciler rounds (1 s apart) pass: both tasks still run, so nothing changes.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    for id in [&id, &stopped_id] {
        let dep = stack.api_get(&format!("/api/v1/deployments/{id}")).await;
        assert_eq!(dep["status"], "queued", "{dep}\n{}", stack.server_log());
    }

    let ran = run_task_like_ecs(&task_environment(&moto.task(&arn)));
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let out = stack.cli(&["logs", &id, "--follow"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        crate::presets::page(&stack, "survivor.localhost").await,
        "ran across a restart"
    );

    moto.aws(&[
        "ecs",
        "stop-task",
        "--cluster",
        "builds",
        "--task",
        &stopped_arn,
        "--reason",
        "Essential container in task exited",
    ]);
    let out = stack.cli(&["logs", &stopped_id, "--follow"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the build task stopped: Essential container in task exited"),
        "{}",
        stderr(&out)
    );
}

/// The build cache on ECS: one task saves it to the bucket, the next task (another machine as
/// far as it knows: a fresh work folder, nothing kept) restores it from there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_saved_by_one_task_is_restored_by_the_next() {
    let moto = Moto::start();
    let proxy = AwsProxy::start(&moto.endpoint).await;
    let git = GitServer::start().await;
    let repo = crate::presets::repo_with(&git, "blog", crate::presets::eleventy_site());
    let stack = ecs_stack(&moto, &proxy, "builder");
    let mut logs = Vec::new();
    for _ in 0..2 {
        let dep = deploy_no_wait(&stack, &repo.url);
        let id = dep["id"].as_str().expect("id").to_owned();
        let task = moto.task(dep["runner_ref"].as_str().expect("task ARN"));
        let environment = task_environment(&task);
        assert!(
            environment
                .iter()
                .any(|(k, v)| k == "SCALEMESH_BUILD_CACHE" && v == "storage"),
            "the task keeps its cache in the bucket: {environment:?}"
        );
        let ran = run_task_like_ecs(&environment);
        assert!(
            ran.status.success(),
            "{}",
            String::from_utf8_lossy(&ran.stderr)
        );
        let out = stack.cli(&["logs", &id, "--follow"]);
        assert!(out.status.success(), "{}", stderr(&out));
        logs.push(stdout(&out));
    }
    assert!(logs[0].contains("No build cache yet"), "{}", logs[0]);
    assert!(logs[0].contains("Saved the build cache"), "{}", logs[0]);
    assert!(logs[1].contains("Restored the build cache"), "{}", logs[1]);
    let listed = moto.aws(&[
        "s3api",
        "list-objects-v2",
        "--bucket",
        BUCKET,
        "--prefix",
        "prod/__cache/blog/",
    ]);
    let keys: Vec<&str> = listed["Contents"]
        .as_array()
        .expect("a cache in the bucket")
        .iter()
        .filter_map(|o| o["Key"].as_str())
        .collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].ends_with(".tar.zst"), "{keys:?}");
    assert_eq!(
        crate::presets::page(&stack, "blog.localhost").await,
        "<h1>Notes from Eleventy</h1>"
    );
}
