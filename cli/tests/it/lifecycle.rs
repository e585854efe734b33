//! Failures, cancellation, the queue and the timeout, with the real builder and real processes.

use std::time::Duration;

use crate::support::{
    GitServer, PACKAGE_JSON, Stack, eventually, marker, processes_with, stderr, stdout,
};

/// A build that leaves processes behind — one in its process group, one detached into a
/// session of its own — then waits a minute. `MARKER` names them.
const STUBBORN_BUILD: &str = r#"
const { spawn } = require("child_process");
const loop = "while true; do sleep 0.2; done";
spawn("sh", ["-c", loop, "MARKER-child"], { stdio: "ignore" });
spawn("sh", ["-c", loop, "MARKER-daemon"], { stdio: "ignore", detached: true }).unref();
console.log("started the helpers");
setTimeout(() => {}, 60000);
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_build_exits_non_zero_and_the_live_site_stays() {
    let git = GitServer::start().await;
    let repo = git.repo("shop", &[("index.html", "<h1>v1</h1>")]);
    let stack = Stack::start();
    let out = stack.cli(&["deploy", &repo.url]);
    assert!(out.status.success(), "{}", stderr(&out));

    let failing =
        r#"console.log("compiling"); console.error("SyntaxError: oops"); process.exit(2);"#;
    repo.commit(
        &[
            ("package.json", PACKAGE_JSON),
            ("build.js", failing),
            ("index.html", "<h1>v2</h1>"),
        ],
        "broken",
    );
    let out = stack.cli(&["deploy", &repo.url]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
    let err = stderr(&out);
    assert!(
        err.contains("SyntaxError: oops"),
        "the log shows why: {err}"
    );
    assert!(err.contains("error: deployment"), "{err}");
    assert!(
        err.contains("`npm run build` failed (exit code 2)"),
        "{err}"
    );
    assert!(
        err.contains("hint: see the whole log with `scalemesh logs"),
        "{err}"
    );
    assert!(
        err.contains("still serves the previous deployment"),
        "{err}"
    );
    assert_eq!(
        stack
            .site("shop.localhost", "/")
            .await
            .text()
            .await
            .expect("body"),
        "<h1>v1</h1>"
    );

    // No output folder at all is a failure too.
    repo.commit(
        &[("build.js", "console.log('nothing')"), ("index.html", "")],
        "no output",
    );
    let out = stack.cli(&["deploy", &repo.url]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("no output folder"),
        "{}",
        stderr(&out)
    );
    // An unreachable repository fails the deployment, not the server.
    let out = stack.cli(&[
        "deploy",
        &format!("git://{}/missing", git.addr),
        "--project",
        "shop2",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("could not clone"), "{}", stderr(&out));
    assert_eq!(
        stack
            .site("shop.localhost", "/")
            .await
            .text()
            .await
            .expect("body"),
        "<h1>v1</h1>"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_the_whole_process_tree() {
    let git = GitServer::start().await;
    let tag = marker("cancel");
    let repo = git.repo(
        "slow",
        &[
            ("package.json", PACKAGE_JSON),
            ("build.js", &STUBBORN_BUILD.replace("MARKER", &tag)),
        ],
    );
    let stack = Stack::start();
    let follower = stack
        .cli_command(&stack.api, &["deploy", &repo.url])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("deploy");
    eventually(Duration::from_secs(30), "the build's helpers run", || {
        processes_with(&tag).len() >= 2
    })
    .await;
    let list = stack.api_get("/api/v1/projects/slow/deployments").await;
    let id = list["deployments"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(list["deployments"][0]["status"], "building");

    let out = stack.cli(&["cancel", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let deploy = follower.wait_with_output().expect("deploy ends");
    assert_eq!(
        deploy.status.code(),
        Some(4),
        "a canceled deployment exits 4: {}",
        stderr(&deploy)
    );
    assert!(stderr(&deploy).contains("canceled"), "{}", stderr(&deploy));
    let started = std::time::Instant::now();
    while !processes_with(&tag).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "left: {:?}\n{}",
            processes_with(&tag),
            stack.server_log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dep = stack.api_get(&format!("/api/v1/deployments/{id}")).await;
    assert_eq!(dep["status"], "canceled");
    // Canceling again changes nothing and says so.
    let out = stack.cli(&["cancel", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("hint: only queued or running deployments can be canceled"),
        "{}",
        stderr(&out)
    );
}

/// A build that leaves the same helpers behind, checks they run, writes its page and ends.
const LITTERING_BUILD: &str = r#"
const { spawn } = require("child_process");
const fs = require("fs");
const loop = "while true; do sleep 0.2; done";
const child = spawn("sh", ["-c", loop, "MARKER-child"], { stdio: "ignore" });
const daemon = spawn("sh", ["-c", loop, "MARKER-daemon"], { stdio: "ignore", detached: true });
daemon.unref();
setTimeout(() => {
    process.kill(child.pid, 0);
    process.kill(daemon.pid, 0);
    console.log("the helpers run");
    fs.mkdirSync("dist", { recursive: true });
    fs.writeFileSync("dist/index.html", "built");
    process.exit(0);
}, 500);
"#;

/// A build that ends well takes its whole process tree with it too, with the sandbox and
/// without one (where the builder alone must find the helpers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_that_succeeds_leaves_no_process_behind() {
    let git = GitServer::start().await;
    for sandbox in ["auto", "none"] {
        let tag = marker(&format!("litter-{sandbox}"));
        let project = format!("litter-{sandbox}");
        let repo = git.repo(
            &project,
            &[
                ("package.json", PACKAGE_JSON),
                ("build.js", &LITTERING_BUILD.replace("MARKER", &tag)),
            ],
        );
        let stack = Stack::start_with(&["--sandbox", sandbox]);
        let out = stack.cli(&["deploy", &repo.url]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stderr(&out).contains("the helpers run"), "{}", stderr(&out));
        assert_eq!(
            stack
                .site(&format!("{project}.localhost"), "/")
                .await
                .text()
                .await
                .expect("body"),
            "built"
        );
        // The deployment is ready once the builder has reported; it ends its tree before.
        eventually(
            Duration::from_secs(10),
            &format!("no helper left with --sandbox {sandbox}"),
            || processes_with(&tag).is_empty(),
        )
        .await;
    }
}

/// A builder that cannot be started fails its deployment at once, saying why, and frees its
/// slot: the next deployment is not stuck behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_builder_that_cannot_start_fails_its_deployment() {
    let git = GitServer::start().await;
    let repo = git.repo("nostart", &[("index.html", "never")]);
    let bin = tempfile::tempdir().expect("tempdir");
    let builder = bin.path().join("scalemesh-builder");
    std::fs::write(&builder, "not a program").expect("write");
    let stack = Stack::start_with_env(
        &["--max-builds", "1"],
        &[("SCALEMESH_BUILDER_BIN", builder.to_str().expect("utf-8"))],
    );
    // Both queued at once: the second waits for the first's slot.
    let ids = [
        deploy_no_wait(&stack, &repo.url),
        deploy_no_wait(&stack, &repo.url),
    ];
    for id in &ids {
        let path = format!("/api/v1/deployments/{id}");
        let started = std::time::Instant::now();
        let dep = loop {
            let dep = stack.api_get(&path).await;
            if dep["status"] != "queued" && dep["status"] != "building" {
                break dep;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "{dep}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(dep["status"], "failed", "{dep}");
        let reason = dep["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains(&format!("could not start {}", builder.display())),
            "{dep}"
        );
    }
    // Its log says so too.
    let out = stack.cli(&["logs", &ids[0]]);
    assert!(stdout(&out).contains("could not start"), "{}", stdout(&out));
    assert_eq!(stack.site("nostart.localhost", "/").await.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builds_beyond_the_limit_wait_in_the_queue() {
    let git = GitServer::start().await;
    let tag = marker("queue");
    let slow = git.repo(
        "slow",
        &[
            ("package.json", PACKAGE_JSON),
            ("build.js", &STUBBORN_BUILD.replace("MARKER", &tag)),
        ],
    );
    let quick = git.repo("quick", &[("index.html", "quick")]);
    let stack = Stack::start_with(&["--max-builds", "1"]);
    let first = deploy_no_wait(&stack, &slow.url);
    eventually(Duration::from_secs(30), "the slow build runs", || {
        !processes_with(&tag).is_empty()
    })
    .await;
    let second = deploy_no_wait(&stack, &quick.url);
    // Queued, and still queued three seconds on (a build of one file takes well under a
    // second once it starts): one build at a time.
    let watch = std::time::Instant::now();
    while watch.elapsed() < Duration::from_secs(3) {
        let dep = stack
            .api_get(&format!("/api/v1/deployments/{second}"))
            .await;
        assert_eq!(dep["status"], "queued", "one build at a time: {dep}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = stack.cli(&["deployments", "quick"]);
    assert!(stdout(&out).contains("queued"), "{}", stdout(&out));

    let out = stack.cli(&["cancel", &first]);
    assert!(out.status.success());
    let out = stack.cli(&["logs", &second, "--follow"]);
    assert!(
        out.status.success(),
        "the queued build runs once there is room: {}",
        stderr(&out)
    );
    assert_eq!(
        stack
            .site("quick.localhost", "/")
            .await
            .text()
            .await
            .expect("body"),
        "quick"
    );
    eventually(
        Duration::from_secs(20),
        "the canceled build is gone",
        || processes_with(&tag).is_empty(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_that_runs_too_long_is_stopped_and_failed() {
    let git = GitServer::start().await;
    let tag = marker("timeout");
    let repo = git.repo(
        "forever",
        &[
            ("package.json", PACKAGE_JSON),
            ("build.js", &STUBBORN_BUILD.replace("MARKER", &tag)),
        ],
    );
    let stack = Stack::start_with(&["--build-timeout", "8s"]);
    let deploy = stack
        .cli_command(&stack.api, &["deploy", &repo.url])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    // The helpers run before the time is up, so "gone" below means they were stopped.
    eventually(Duration::from_secs(8), "the build's helpers run", || {
        processes_with(&tag).len() >= 2
    })
    .await;
    let out = tokio::task::spawn_blocking(move || deploy.wait_with_output())
        .await
        .expect("join")
        .expect("output");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the build timed out after 8s"),
        "{}",
        stderr(&out)
    );
    eventually(
        Duration::from_secs(20),
        "the build's processes are gone",
        || processes_with(&tag).is_empty(),
    )
    .await;
}

fn deploy_no_wait(stack: &Stack, url: &str) -> String {
    let out = stack.cli(&["deploy", url, "--no-wait", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let dep: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    dep["id"].as_str().expect("id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_cut_off_by_a_server_crash_is_stopped_and_failed_on_restart() {
    let git = GitServer::start().await;
    let tag = marker("crash");
    let repo = git.repo(
        "crashy",
        &[
            ("package.json", PACKAGE_JSON),
            ("build.js", &STUBBORN_BUILD.replace("MARKER", &tag)),
        ],
    );
    let mut stack = Stack::start();
    let id = deploy_no_wait(&stack, &repo.url);
    eventually(Duration::from_secs(30), "the build runs", || {
        processes_with(&tag).len() >= 2
    })
    .await;

    stack.crash_and_restart();
    // The orphaned builder notices and takes its build down with it.
    eventually(
        Duration::from_secs(20),
        "the orphaned build is gone",
        || processes_with(&tag).is_empty(),
    )
    .await;
    let out = stack.cli(&["logs", &id, "--follow"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the server restarted while this build was running"),
        "{}",
        stderr(&out)
    );
    // The restarted server works as before.
    let quick = git.repo("after", &[("index.html", "after the crash")]);
    let out = stack.cli(&["deploy", &quick.url]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stack
            .site("after.localhost", "/")
            .await
            .text()
            .await
            .expect("body"),
        "after the crash"
    );
}
