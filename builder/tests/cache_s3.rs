//! The build cache on ECS: tasks share no disk, so the cache lives in the job's S3 storage
//! (`__cache/<project>/<key>.tar.zst`). A cache saved by one task is restored by the next; the
//! test plays the ECS agent, giving each "task" a fresh work folder and a fresh storage
//! client, against `moto_server` on loopback.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scalemesh_builder::cache::{self, BuildCache, Roots};
use scalemesh_builder::sandbox::Sandbox;
use scalemesh_core::job::{BUILD_CACHE_IN_STORAGE, BuildCacheSetting, BuildJob, JobSource};
use scalemesh_core::job::{BuildLimits, SandboxMode};
use scalemesh_core::storage::{S3Storage, Storage};
use scalemesh_core::{DeploymentId, ProjectName};

const BUCKET: &str = "sites";

/// `moto_server` on a free loopback port, with a bucket; stopped when dropped.
struct Moto {
    endpoint: String,
    child: Child,
}

impl Moto {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server runs (pip install 'moto[server]'; .ci/deps installs it)");
        let moto = Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            child,
        };
        // moto binds its port some time after it starts: nothing to wait on but the port.
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "moto_server did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let made = reqwest::Client::new()
            .put(format!("{}/{BUCKET}", moto.endpoint))
            .send()
            .await
            .expect("create the bucket");
        assert!(made.status().is_success(), "{}", made.status());
        moto
    }

    /// A storage client as a task gets one: its own, from the task's credentials.
    async fn storage(&self) -> Arc<dyn Storage> {
        let keys = aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "test");
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .credentials_provider(keys)
            .region(aws_config::Region::new("us-east-1"))
            .load()
            .await;
        Arc::new(S3Storage::with_config(
            &config,
            BUCKET,
            "",
            Some(&self.endpoint),
        ))
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn job(project: &str) -> BuildJob {
    BuildJob {
        deployment: DeploymentId::parse("abcdefghijkl").expect("valid"),
        project: ProjectName::parse(project).expect("valid"),
        source: JobSource::Archive { key: "k".into() },
        settings: Default::default(),
        api_url: String::new(),
        job_token: String::new(),
        storage: String::new(),
        s3_endpoint: None,
        timeout_secs: 60,
        allow_private_git_hosts: Default::default(),
        owner: String::new(),
        limits: BuildLimits::default(),
        build_uid: None,
        node_mirror: None,
        toolchains: None,
        build_cache: Some(BuildCacheSetting {
            location: BUILD_CACHE_IN_STORAGE.into(),
            limit: None,
            restore: true,
        }),
    }
}

/// One task's work folder: a pnpm app, and what install left when `installed`.
fn task_work(installed: bool) -> tempfile::TempDir {
    let work = tempfile::tempdir().expect("tempdir");
    let app = work.path().join("src");
    let write = |path: PathBuf, text: &str| {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    };
    write(
        app.join("package.json"),
        r#"{"dependencies":{"left-pad":"1"}}"#,
    );
    write(app.join("pnpm-lock.yaml"), "lockfileVersion: '9.0'\n");
    std::fs::create_dir_all(work.path().join("home")).expect("mkdir");
    if installed {
        write(app.join("node_modules/.pnpm/left-pad@1/index.js"), "pad");
        std::os::unix::fs::symlink(".pnpm/left-pad@1", app.join("node_modules/left-pad"))
            .expect("link");
        let store = work
            .path()
            .join("home/.local/share/pnpm/store/v10/files/ab");
        write(store.join("cdef"), "content-addressed");
    }
    work
}

/// What one task does around its build: restore, then save after the build succeeded. The log.
async fn run_task(storage: Arc<dyn Storage>, project: &str, work: &Path) -> Vec<String> {
    let lines = Mutex::new(Vec::new());
    let say = |line: String| lines.lock().expect("lock").push(line);
    let job = job(project);
    let cache = BuildCache::open(&job, storage, work, &say);
    let (app, home) = (work.join("src"), work.join("home"));
    let plan = scalemesh_builder::detect::plan(&app, &Default::default()).expect("plan");
    let cached = cache::Entry::of(&plan, &app, Some("22"));
    let roots = Roots {
        app: &app,
        home: &home,
    };
    let (sandbox, _) = Sandbox::choose(SandboxMode::None, work, None, None)
        .await
        .expect("sandbox");
    let session = cache
        .restore(&cached.parts, &cached.dirs, roots, &sandbox)
        .await;
    cache.save(&session, &cached.dirs, roots).await;
    drop(cache);
    lines.into_inner().expect("lock")
}

#[tokio::test]
async fn a_cache_saved_by_one_task_is_restored_by_the_next() {
    let moto = Moto::start().await;

    let first = task_work(true);
    let lines = run_task(moto.storage().await, "site", first.path()).await;
    assert_eq!(
        lines[0], "No build cache yet for this lockfile",
        "{lines:?}"
    );
    assert!(lines[1].starts_with("Saved the build cache ("), "{lines:?}");
    let kept = moto.storage().await.list("__cache/").await.expect("list");
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].starts_with("__cache/site/") && kept[0].ends_with(".tar.zst"));
    drop(first);

    let next = task_work(false);
    let lines = run_task(moto.storage().await, "site", next.path()).await;
    assert!(
        lines[0].starts_with("Restored the build cache ("),
        "{lines:?}"
    );
    let app = next.path().join("src");
    assert_eq!(
        std::fs::read_to_string(app.join("node_modules/left-pad/index.js")).expect("restored"),
        "pad"
    );
    assert!(
        std::fs::symlink_metadata(app.join("node_modules/left-pad"))
            .expect("link")
            .file_type()
            .is_symlink()
    );
    let store = next
        .path()
        .join("home/.local/share/pnpm/store/v10/files/ab/cdef");
    assert_eq!(
        std::fs::read_to_string(store).expect("restored"),
        "content-addressed"
    );
    assert!(
        !next.path().join("cache-restore.tar.zst").exists(),
        "the copy is removed"
    );

    // Another project with the same lockfile starts from nothing: caches never cross projects.
    let other = task_work(false);
    let lines = run_task(moto.storage().await, "other", other.path()).await;
    assert_eq!(
        lines[0], "No build cache yet for this lockfile",
        "{lines:?}"
    );
}
