//! The build cache as the job uses it: restore, build, save, on a local cache folder.

use std::sync::Mutex;

use scalemesh_core::job::{BuildCacheSetting, BuildLimits, JobSource, SandboxMode};
use scalemesh_core::storage::FsStorage;
use scalemesh_core::{DeploymentId, ProjectName};

use super::*;

fn job(cache_root: &Path, restore: bool) -> BuildJob {
    BuildJob {
        deployment: DeploymentId::parse("abcdefghijkl").expect("valid"),
        project: ProjectName::parse("site").expect("valid"),
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
            location: format!("file://{}", cache_root.display()),
            limit: Some(1 << 30),
            restore,
        }),
    }
}

/// A work folder with an npm app, its lockfile and, when `installed`, what install left.
struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    fn new(installed: bool) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let app = dir.path().join("src");
        std::fs::create_dir_all(&app).expect("mkdir");
        std::fs::create_dir_all(dir.path().join("home")).expect("mkdir");
        std::fs::write(app.join("package.json"), r#"{"dependencies":{"x":"1"}}"#).expect("write");
        std::fs::write(app.join("package-lock.json"), r#"{"lockfileVersion":3}"#).expect("write");
        if installed {
            std::fs::create_dir_all(app.join("node_modules/x")).expect("mkdir");
            std::fs::write(app.join("node_modules/x/index.js"), "module.exports = 1")
                .expect("write");
            std::fs::create_dir_all(dir.path().join("home/.npm/_cacache")).expect("mkdir");
            std::fs::write(dir.path().join("home/.npm/_cacache/x"), "tarball").expect("write");
        }
        Self { dir }
    }

    fn app(&self) -> PathBuf {
        self.dir.path().join("src")
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    async fn sandbox(&self) -> Sandbox {
        Sandbox::choose(SandboxMode::None, self.dir.path(), None, None)
            .await
            .expect("sandbox")
            .0
    }
}

/// What the build of the app in `app` caches, as its detection plan says.
fn entry_for(app: &std::path::Path) -> Entry {
    let settings = scalemesh_core::site_config::BuildSettings::default();
    let plan = crate::detect::plan(app, &settings).expect("plan");
    Entry::of(&plan, app, Some("20"))
}

/// Restores, then (as after a successful build) saves, with a fresh `BuildCache` as each build
/// opens its own; the log lines.
async fn build(work: &Work, job: &BuildJob) -> Vec<String> {
    let lines = Mutex::new(Vec::new());
    let say = |line: String| lines.lock().expect("lock").push(line);
    let storage: Arc<dyn Storage> = Arc::new(FsStorage::new(work.dir.path().join("storage")));
    let cache = BuildCache::open(job, storage, work.dir.path(), &say);
    let (app, home) = (work.app(), work.home());
    let cached = entry_for(&app);
    let roots = Roots {
        app: &app,
        home: &home,
    };
    let session = cache
        .restore(&cached.parts, &cached.dirs, roots, &work.sandbox().await)
        .await;
    cache.save(&session, &cached.dirs, roots).await;
    drop(cache);
    lines.into_inner().expect("lock")
}

#[tokio::test]
async fn a_second_build_starts_from_what_the_first_saved() {
    let store = tempfile::tempdir().expect("tempdir");
    let first = build(&Work::new(true), &job(store.path(), true)).await;
    assert!(first[0].starts_with("No build cache yet"), "{first:?}");
    assert!(first[1].starts_with("Saved the build cache ("), "{first:?}");

    let work = Work::new(false);
    let second = build(&work, &job(store.path(), true)).await;
    assert!(
        second[0].starts_with("Restored the build cache (")
            && second[0].contains("node_modules, ~/.npm"),
        "{second:?}"
    );
    let restored = std::fs::read_to_string(work.app().join("node_modules/x/index.js"));
    assert_eq!(restored.expect("restored"), "module.exports = 1");
    assert!(work.home().join(".npm/_cacache/x").is_file());
    assert!(
        !work.dir.path().join("cache-staging").exists(),
        "staging is removed"
    );

    let asked = build(&Work::new(false), &job(store.path(), false)).await;
    assert!(
        asked[0].starts_with("Not restoring the build cache"),
        "{asked:?}"
    );
}

#[tokio::test]
async fn a_cache_that_cannot_be_restored_is_built_without() {
    let store = tempfile::tempdir().expect("tempdir");
    let work = Work::new(false);
    let cached = entry_for(&work.app());
    let key = CacheKey::of(&cached.parts, &work.app()).expect("key");
    let entry = store.path().join("site").join(format!("{key}.tar.zst"));
    std::fs::create_dir_all(entry.parent().expect("parent")).expect("mkdir");
    for (n, broken) in [
        b"not zstd at all".to_vec(),
        vec![0x28, 0xb5, 0x2f, 0xfd, 1, 2],
    ]
    .into_iter()
    .enumerate()
    {
        std::fs::write(&entry, broken).expect("write");
        let lines = build(&work, &job(store.path(), true)).await;
        assert!(
            lines[0].starts_with("The build cache could not be restored"),
            "{n}: {lines:?}"
        );
        assert!(lines[0].ends_with("building without it"), "{n}: {lines:?}");
        assert!(!work.app().join("node_modules").exists());
        assert!(!work.dir.path().join("cache-staging").exists());
    }
}
