//! Builds that try to take the machine down fail on their own, with the reason, while an honest
//! build beside them succeeds and the server keeps answering: a memory bomb, a process bomb, a
//! `/tmp` filler and a disk filler, each against the limits the server gives builds (control
//! groups, as root, as CI runs; bubblewrap's sandbox).

use std::time::Duration;

use crate::support::{GitServer, PACKAGE_JSON, Stack, marker, processes_with, stderr};

/// A build whose `build` script is `sh build.sh`.
const SH_PACKAGE: &str =
    r#"{ "name": "bomb", "private": true, "scripts": { "build": "sh build.sh" } }"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builds_that_hit_their_limits_fail_alone() {
    assert!(
        {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
        },
        "this test needs root, to make control groups for the builds (CI runs as root)"
    );
    crate::support::require_bwrap();
    let stack = Stack::start_with(&[
        "--sandbox",
        "bwrap",
        "--max-builds",
        "6",
        "--build-memory",
        "256MiB",
        "--build-processes",
        "64",
        "--build-disk",
        "200MiB",
    ]);
    let tag = marker("limits");
    let git = GitServer::start().await;
    let memory = git.repo(
        "memory-bomb",
        &[
            ("package.json", PACKAGE_JSON),
            (
                "build.js",
                "const held = []; for (;;) held.push(Buffer.alloc(16 << 20, 1));\n",
            ),
        ],
    );
    // Spawns sleepers until the kernel refuses, at most 300.
    let processes_sh = format!(
        "i=0\nwhile [ $i -lt 300 ]; do\n  sh -c 'sleep 60; :' {tag} &\n  i=$((i+1))\ndone\nwait\n"
    );
    let processes = git.repo(
        "process-bomb",
        &[("package.json", SH_PACKAGE), ("build.sh", &processes_sh)],
    );
    let tmp = git.repo(
        "tmp-filler",
        &[
            ("package.json", SH_PACKAGE),
            (
                "build.sh",
                "i=0\nwhile [ $i -lt 40 ]; do\n  head -c 10485760 /dev/zero > /tmp/fill-$i || exit 1\n  sleep 0.1\n  i=$((i+1))\ndone\n",
            ),
        ],
    );
    let disk = git.repo(
        "disk-filler",
        &[
            ("package.json", SH_PACKAGE),
            (
                "build.sh",
                "mkdir -p dist\ni=0\nwhile [ $i -lt 40 ]; do\n  head -c 10485760 /dev/zero > dist/fill-$i || exit 1\n  sleep 0.1\n  i=$((i+1))\ndone\n",
            ),
        ],
    );
    // What a walk of the folder would miss: a file deleted while still open.
    let sneaky = git.repo(
        "sneaky-filler",
        &[
            ("package.json", SH_PACKAGE),
            (
                "build.sh",
                "exec 3>hidden\nrm hidden\nhead -c 314572800 /dev/zero >&3 || { sleep 1; exit 1; }\n",
            ),
        ],
    );
    let honest = git.repo(
        "honest",
        &[
            ("package.json", SH_PACKAGE),
            (
                "build.sh",
                "sleep 4\nmkdir -p dist\necho '<h1>honest</h1>' > dist/index.html\n",
            ),
        ],
    );

    let mut ids = Vec::new();
    for repo in [&memory, &processes, &tmp, &disk, &sneaky, &honest] {
        let out = stack.cli(&["deploy", &repo.url, "--no-wait", "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let dep: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        ids.push(dep["id"].as_str().expect("id").to_owned());
    }

    // The server answers throughout.
    let health = {
        let api = stack.api.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("client");
            let mut slowest = Duration::ZERO;
            for _ in 0..40 {
                let started = std::time::Instant::now();
                let res = client.get(format!("{api}/health")).send().await;
                assert!(res.is_ok_and(|r| r.status() == 200), "/health answers");
                slowest = slowest.max(started.elapsed());
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            slowest
        })
    };

    let expect = [
        ("memory-bomb", 3, Some("out of memory (limit 256 MiB)")),
        ("process-bomb", 3, Some("too many processes (limit 64)")),
        ("tmp-filler", 3, Some("out of disk space (limit 200 MiB")),
        ("disk-filler", 3, Some("out of disk space (limit 200 MiB")),
        ("sneaky-filler", 3, Some("out of disk space (limit 200 MiB")),
        ("honest", 0, None),
    ];
    for ((name, code, reason), id) in expect.iter().zip(&ids) {
        let out = stack.cli(&["logs", id, "--follow"]);
        let err = stderr(&out);
        let log = crate::support::stdout(&out);
        assert!(
            log.contains("the disk by a filesystem of its own"),
            "{name}: the kernel holds the disk: {log}"
        );
        assert_eq!(out.status.code(), Some(*code), "{name}: {err}");
        if let Some(reason) = reason {
            assert!(err.contains(reason), "{name} fails naming its limit: {err}");
        }
    }
    let slowest = health.await.expect("health checks");
    assert!(slowest < Duration::from_secs(2), "/health took {slowest:?}");
    let page = stack
        .site("honest.localhost", "/")
        .await
        .text()
        .await
        .expect("body");
    assert_eq!(page.trim(), "<h1>honest</h1>");

    // Nothing of theirs is left running, mounted or on disk.
    crate::support::eventually(Duration::from_secs(10), "the sleepers are gone", || {
        processes_with(&tag).is_empty()
    })
    .await;
    crate::support::eventually(
        Duration::from_secs(10),
        "their scratch space is gone",
        || {
            let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
            ids.iter().all(|id| {
                !mounts.contains(id.as_str())
                    && !std::env::temp_dir()
                        .join(format!("scalemesh-job-{id}"))
                        .exists()
            })
        },
    )
    .await;
}
