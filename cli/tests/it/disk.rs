//! A server whose data disk fills during an upload: the deployment fails within a minute,
//! naming the disk, and the CLI exits 3, instead of hanging until the build timeout.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{GitServer, PACKAGE_JSON, Stack, stderr};

/// A small tmpfs mounted at a path, unmounted when dropped.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(at: &std::path::Path, size: &str) -> Self {
        std::fs::create_dir_all(at).expect("mkdir");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "mounting a tmpfs needs root (CI runs as root)");
        Self(at.to_path_buf())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_data_disk_fails_the_deployment_naming_it() {
    let build = r#"
const fs = require("fs");
const crypto = require("crypto");
fs.mkdirSync("dist", { recursive: true });
fs.writeFileSync("dist/index.html", "<h1>too big</h1>");
// Many small files: each is stored whole until the disk is full, leaving nothing free.
for (let i = 0; i < 3000; i++) fs.writeFileSync("dist/blob-" + i + ".bin", crypto.randomBytes(20 << 10));
"#;
    let git = GitServer::start().await;
    let repo = git.repo(
        "huge",
        &[("package.json", PACKAGE_JSON), ("build.js", build)],
    );
    let root = tempfile::tempdir().expect("tempdir");
    let disk = SmallDisk::mount(&root.path().join("data"), "48m");
    let stack = Stack::start_in(root, &[], &[]);

    let started = Instant::now();
    let mut deploy =
        tokio::process::Command::from(stack.cli_command(&stack.api, &["deploy", &repo.url]));
    deploy.kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(90), deploy.output())
        .await
        .unwrap_or_else(|_| panic!("the deploy hung:\n{}", stack.server_log()))
        .expect("scalemesh runs");
    let took = started.elapsed();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}\n{}", stack.server_log());
    assert!(err.contains("No space left on device"), "{err}");
    assert!(took < Duration::from_secs(60), "{took:?}");
    // The server recorded it, and answers.
    let deployments = stack.api_get("/api/v1/projects/huge/deployments").await;
    assert_eq!(deployments["deployments"][0]["status"], "failed");
    assert!(
        deployments["deployments"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("No space left on device")),
        "{deployments}"
    );
    drop(stack);
    drop(disk);
}
