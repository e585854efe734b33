//! Hostile repositories: what a build can see, and what its output can point at.

use crate::support::{GitHttpServer, GitServer, PACKAGE_JSON, Stack, stderr, stdout};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_sees_neither_the_servers_files_nor_its_secrets() {
    crate::support::require_bwrap();
    // The sandbox is required: a bubblewrap that does not work fails the build, never runs it bare.
    let stack = Stack::start_with(&["--sandbox", "bwrap"]);
    let token_file = stack.data_dir().join("admin-token");
    let build = format!(
        r#"
const fs = require("fs");
let token = "hidden";
try {{ token = fs.readFileSync({token_file:?}, "utf8").trim(); }} catch (e) {{}}
console.log("admin token: " + token);
console.log("env: " + Object.keys(process.env).sort().join(","));
fs.mkdirSync("dist", {{ recursive: true }});
fs.writeFileSync("dist/index.html", "ok");
"#,
        token_file = token_file.display().to_string()
    );
    let git = GitServer::start().await;
    let repo = git.repo(
        "nosy",
        &[("package.json", PACKAGE_JSON), ("build.js", &build)],
    );
    let out = stack.cli(&["deploy", &repo.url]);
    assert!(out.status.success(), "{}", stderr(&out));
    let log = stderr(&out);
    assert!(
        log.contains("admin token: hidden"),
        "the server's data is out of reach: {log}"
    );
    assert!(!log.contains(&stack.token()));
    let env_line = log
        .lines()
        .find(|l| l.starts_with("│ env: "))
        .expect("env line");
    assert!(
        !env_line.contains("SCALEMESH"),
        "no builder or server variables reach the build: {env_line}"
    );
    // The build never has the job token (`env` above); the log is masked in case it did
    // (`log_lines_are_masked_with_the_job_token_and_each_form` in the builder).
    assert!(!log.contains("smj_"), "no job token in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_links_pointing_outside_are_skipped_not_served() {
    let build = r#"
const fs = require("fs");
fs.mkdirSync("dist", { recursive: true });
fs.writeFileSync("dist/index.html", "home");
fs.writeFileSync("dist/real.txt", "inside");
fs.symlinkSync("/etc/passwd", "dist/passwd");
fs.symlinkSync("../package.json", "dist/pkg.json");
fs.symlinkSync("real.txt", "dist/alias.txt");
"#;
    let git = GitServer::start().await;
    let repo = git.repo(
        "links",
        &[("package.json", PACKAGE_JSON), ("build.js", build)],
    );
    let stack = Stack::start();
    let out = stack.cli(&["deploy", &repo.url]);
    assert!(out.status.success(), "{}", stderr(&out));
    let log = stderr(&out);
    assert!(
        log.contains("Skipped passwd: a symbolic link pointing outside the output folder"),
        "{log}"
    );
    assert!(log.contains("Skipped pkg.json"), "{log}");
    // Not a file of the site: a single-page app's page request gets its index, never the link.
    let res = stack.site("links.localhost", "/passwd").await;
    assert_eq!(res.text().await.expect("body"), "home");
    assert_eq!(
        stack.site("links.localhost", "/pkg.json").await.status(),
        404
    );
    assert_eq!(
        stack
            .site("links.localhost", "/alias.txt")
            .await
            .text()
            .await
            .expect("body"),
        "inside"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_cannot_pull_in_submodules() {
    let git = GitServer::start().await;
    let repo = git.repo("subs", &[("index.html", "top")]);
    let gitmodules = "[submodule \"evil\"]\n\tpath = evil\n\turl = ext::sh -c touch% /tmp/scalemesh-submodule-pwned\n";
    repo.commit(&[(".gitmodules", gitmodules)], "submodule");
    let _ = std::fs::remove_file("/tmp/scalemesh-submodule-pwned");
    let stack = Stack::start();
    let out = stack.cli(&["deploy", &repo.url]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!std::path::Path::new("/tmp/scalemesh-submodule-pwned").exists());
    assert_eq!(
        stack
            .site("subs.localhost", "/")
            .await
            .text()
            .await
            .expect("body"),
        "top"
    );
}

/// The clone runs no git hook: not one the server's own user has set up (its global config,
/// `GIT_CONFIG_*` and `GIT_TEMPLATE_DIR` in its environment, its `~/.gitconfig`), even with no
/// sandbox in between (a host without bubblewrap). A hook that ran would rewrite the page: git
/// runs `post-checkout` in the new work tree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clone_runs_no_git_hook() {
    let git = GitServer::start().await;
    let repo = git.repo("hooks", &[("index.html", "top")]);
    let host = tempfile::tempdir().expect("tempdir");
    let hooks = host.path().join("hooks");
    let template = host.path().join("template");
    for dir in [hooks.clone(), template.join("hooks")] {
        std::fs::create_dir_all(&dir).expect("mkdir");
        let hook = dir.join("post-checkout");
        std::fs::write(&hook, "#!/bin/sh\necho hooked > index.html\n").expect("hook");
        std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
    }
    let config = format!(
        "[core]\n\thooksPath = {}\n[init]\n\ttemplateDir = {}\n",
        hooks.display(),
        template.display()
    );
    let global = host.path().join("gitconfig");
    std::fs::write(&global, &config).expect("config");
    // The hooks work: a plain clone with this environment runs them.
    let probe = host.path().join("probe");
    let cloned = std::process::Command::new("git")
        .args(["clone", "--quiet", &repo.url])
        .arg(&probe)
        .env("GIT_CONFIG_GLOBAL", &global)
        .output()
        .expect("git");
    assert!(cloned.status.success(), "{cloned:?}");
    assert_eq!(
        std::fs::read_to_string(probe.join("index.html")).expect("read"),
        "hooked\n"
    );

    let data = tempfile::tempdir().expect("tempdir");
    std::fs::write(data.path().join(".gitconfig"), &config).expect("home config");
    let stack = Stack::start_in(
        data,
        &["--sandbox", "none"],
        &[
            ("GIT_CONFIG_GLOBAL", global.to_str().expect("utf-8")),
            ("GIT_TEMPLATE_DIR", template.to_str().expect("utf-8")),
            ("GIT_CONFIG_COUNT", "1"),
            ("GIT_CONFIG_KEY_0", "core.hooksPath"),
            ("GIT_CONFIG_VALUE_0", hooks.to_str().expect("utf-8")),
        ],
    );
    let out = stack.cli(&["deploy", &repo.url]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stack
            .site("hooks.localhost", "/")
            .await
            .text()
            .await
            .expect("body"),
        "top"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_in_a_repository_url_stay_secret() {
    let git = GitHttpServer::start("deploy", "s3cretpass").await;
    let build = r#"
const fs = require("fs");
const config = fs.readFileSync(".git/config", "utf8");
console.log(config.includes("s3cretpass") ? "the clone kept the password" : "the clone holds no password");
fs.mkdirSync("dist", { recursive: true });
fs.writeFileSync("dist/index.html", "private site");
"#;
    git.repo(
        "private.git",
        &[("package.json", PACKAGE_JSON), ("build.js", build)],
    );
    let stack = Stack::start();
    let url = format!("http://deploy:s3cretpass@{}/private.git", git.addr);
    let out = stack.cli(&["deploy", &url]);
    assert!(out.status.success(), "{}", stderr(&out));
    let log = stderr(&out);
    assert!(log.contains("the clone holds no password"), "{log}");
    assert!(!log.contains("s3cretpass"), "{log}");
    assert_eq!(
        stack
            .site("private.localhost", "/")
            .await
            .text()
            .await
            .expect("body"),
        "private site"
    );
    let out = stack.cli(&["projects"]);
    assert!(!stdout(&out).contains("s3cretpass"), "{}", stdout(&out));
    let out = stack.cli(&["logs", "private"]);
    assert!(!stdout(&out).contains("s3cretpass"));
    // Without the password the clone is refused, and the deployment fails saying so.
    let out = stack.cli(&[
        "deploy",
        &format!("http://{}/private.git", git.addr),
        "--project",
        "nopass",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("could not clone"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_cannot_change_the_host() {
    let probe = format!("/usr/.scalemesh-probe-{}", std::process::id());
    let script = format!(
        r#"mkdir -p dist && echo ok > dist/index.html
mount -o remount,bind,rw /usr 2>/dev/null && echo "HOST: remounted /usr" || echo "no remount"
echo x > {probe} 2>/dev/null && echo "HOST: wrote /usr" || echo "no write to /usr"
cat /proc/sys/kernel/core_pattern > /proc/sys/kernel/core_pattern 2>/dev/null && echo "HOST: wrote a sysctl" || echo "no sysctl"
echo "uid $(id -u)"
"#
    );
    let git = GitServer::start().await;
    let repo = git.repo(
        "intruder",
        &[
            ("build.sh", &script),
            (
                "scalemesh.json",
                r#"{"buildCommand":"sh build.sh","outputDirectory":"dist"}"#,
            ),
        ],
    );
    let stack = Stack::start_with(&["--sandbox", "bwrap"]);
    let out = stack.cli(&["deploy", &repo.url]);
    assert!(out.status.success(), "{}", stderr(&out));
    let log = stderr(&out);
    assert!(!log.contains("HOST:"), "{log}");
    for line in ["no remount", "no write to /usr", "no sysctl"] {
        assert!(log.contains(line), "{line}: {log}");
    }
    assert!(!log.contains("uid 0"), "builds never run as root: {log}");
    assert!(!std::path::Path::new(&probe).exists());
}

/// The clone runs in the build's sandbox as the build's own user, not as the server's: what it
/// wrote belongs to that user, and two builds running at once are two users.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_are_fetched_as_the_builds_own_user() {
    use std::os::unix::fs::MetadataExt;
    assert!(
        std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0),
        "this test needs root, where builds run as users of their own (CI runs as root)"
    );
    let build = r#"
const fs = require("fs");
console.log("uid " + process.getuid() + " git " + fs.statSync(".git").uid);
fs.mkdirSync("dist", { recursive: true });
fs.writeFileSync("dist/index.html", "ok");
"#;
    let git = GitServer::start().await;
    let repo = git.repo(
        "owned",
        &[("package.json", PACKAGE_JSON), ("build.js", build)],
    );
    let stack = Stack::start_with(&["--sandbox", "bwrap", "--build-uid-base", "201000"]);
    let out = stack.cli(&["deploy", &repo.url]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("uid 201000 git 201000"),
        "{}",
        stderr(&out)
    );
}
