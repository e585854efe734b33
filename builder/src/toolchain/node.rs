//! Which Node.js a build runs on: the machine's when it is in the range the app asks for,
//! else the highest matching version kept in the store (`<store>/node/<version>/bin/node`),
//! else the highest matching release downloaded from the registry into the store. A download
//! is unpacked into a folder of its own and renamed into place whole, so another build never
//! sees half of one.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::registry::{self, Registry};
use super::unpack;
use super::version::{Range, Version};
use super::wanted::{Origin, wanted};

/// Where Node.js versions come from and are kept.
#[derive(Debug, Clone)]
pub struct Toolchains {
    /// The store: `<store>/node/<version>/…`.
    pub store: PathBuf,
    /// Whether the store outlives this build (else it is inside the work folder).
    pub kept: bool,
    /// The registry (or mirror) Node.js is downloaded from.
    pub registry: String,
    /// The machine's own `node` program, if it has one.
    pub machine: Option<PathBuf>,
}

impl Toolchains {
    /// The store at `store` (kept when `kept`), the registry at `registry` or the public one,
    /// and the `node` the builder's `PATH` finds.
    pub fn new(store: PathBuf, kept: bool, registry: Option<&str>) -> Self {
        Self {
            store,
            kept,
            registry: registry.unwrap_or(registry::DEFAULT_REGISTRY).to_owned(),
            machine: crate::sandbox::find_on_path("node"),
        }
    }
}

/// Where the Node.js a build runs on came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Provenance {
    Machine,
    Stored,
    Downloaded { took: Duration },
}

/// The Node.js a build runs on.
#[derive(Debug, Clone)]
pub struct NodeRuntime {
    pub version: Version,
    /// The folder holding `node`.
    pub bin_dir: PathBuf,
    pub provenance: Provenance,
    /// The version's folder in the store, when it is not the machine's.
    pub folder: Option<PathBuf>,
    /// What the app asked for, and where, when it asked.
    pub asked: Option<(Range, Origin)>,
    registry: String,
    kept: bool,
}

impl NodeRuntime {
    /// A line for the build log: `Node.js 22.12.0 (downloaded from … in 3.1s, kept for later
    /// builds)`.
    pub fn describe(&self) -> String {
        let kept = if self.kept {
            "kept for later builds"
        } else {
            "for this build only"
        };
        let how = match &self.provenance {
            Provenance::Machine => "installed on this machine".to_owned(),
            Provenance::Stored => "kept from an earlier build".to_owned(),
            Provenance::Downloaded { took } => format!(
                "downloaded from {} in {:.1}s, {kept}",
                self.registry,
                took.as_secs_f64()
            ),
        };
        let asked = match &self.asked {
            Some((range, origin)) => format!(", for {range} from {origin}"),
            None => String::new(),
        };
        format!("Node.js {} ({how}{asked})", self.version)
    }

    /// The folder to put first on the build's `PATH`, when it is not the machine's own.
    pub fn path_entry(&self) -> Option<&Path> {
        self.folder.as_ref().map(|_| self.bin_dir.as_path())
    }

    /// This runtime, where a build running as another user can be given it. The sandbox is
    /// set up as the build's user, who cannot pass through a private folder (a server's data
    /// directory) to a store inside it: then the version is copied into `work` for this build.
    pub fn within_reach(self, work: &Path, other_user: bool) -> anyhow::Result<Self> {
        let Some(folder) = &self.folder else {
            return Ok(self);
        };
        // The work folder belongs to the build's user: a store inside it is in reach.
        if !other_user || folder.starts_with(work) || folder.ancestors().all(passable) {
            return Ok(self);
        }
        let copy = work.join("toolchains/node").join(self.version.to_string());
        std::fs::create_dir_all(copy.join("bin"))
            .with_context(|| format!("creating {}", copy.display()))?;
        for (file, mode) in [("bin/node", 0o755), ("LICENSE", 0o644)] {
            if folder.join(file).is_file() {
                std::fs::copy(folder.join(file), copy.join(file))
                    .with_context(|| format!("copying Node.js into {}", copy.display()))?;
                set_mode(&copy.join(file), mode)?;
            }
        }
        for dir in [copy.as_path(), &copy.join("bin")] {
            set_mode(dir, 0o755)?;
        }
        Ok(Self {
            bin_dir: copy.join("bin"),
            folder: Some(copy),
            ..self
        })
    }
}

/// Whether any user may pass through `dir`.
fn passable(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o001 != 0)
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// The Node.js the app in `root` builds on, given the `nodeVersion` setting: found or
/// installed. `None` when it is no Node.js app and asks for no version. `say` gets progress
/// lines for the build log.
pub async fn prepare(
    root: &Path,
    setting: Option<&str>,
    toolchains: &Toolchains,
    say: &(dyn Fn(String) + Sync),
) -> anyhow::Result<Option<NodeRuntime>> {
    let Some(wanted) = wanted(root, setting)? else {
        return Ok(None);
    };
    let asked = (wanted.origin != Origin::Default).then(|| (wanted.range.clone(), wanted.origin));
    let runtime = |version, bin_dir, provenance, folder| NodeRuntime {
        version,
        bin_dir,
        provenance,
        folder,
        asked: asked.clone(),
        registry: toolchains.registry.clone(),
        kept: toolchains.kept,
    };
    if let Some(node) = &toolchains.machine
        && let Some(version) = version_of(node).await
        && wanted.range.matches(version)
        && let Some(bin) = node.parent()
    {
        return Ok(Some(runtime(
            version,
            bin.to_owned(),
            Provenance::Machine,
            None,
        )));
    }
    // Nothing asked and no Node.js here: the newest long-term-support line.
    let range = match wanted.origin {
        Origin::Default => Range::parse("lts/*")?,
        _ => wanted.range.clone(),
    };
    let versions = store_dir(&toolchains.store);
    if let Some((version, folder)) = stored(&versions, &range).await {
        let bin = folder.join("bin");
        return Ok(Some(runtime(
            version,
            bin,
            Provenance::Stored,
            Some(folder),
        )));
    }
    let started = Instant::now();
    let (version, folder) = download(&range, toolchains, say).await.with_context(|| {
        format!(
            "installing Node.js {range} ({}) from {}",
            wanted.origin, toolchains.registry
        )
    })?;
    let took = started.elapsed();
    let bin = folder.join("bin");
    Ok(Some(runtime(
        version,
        bin,
        Provenance::Downloaded { took },
        Some(folder),
    )))
}

fn store_dir(store: &Path) -> PathBuf {
    store.join("node")
}

/// The highest version in the store in `range` that runs, and its folder.
async fn stored(versions: &Path, range: &Range) -> Option<(Version, PathBuf)> {
    let mut found: Vec<Version> = std::fs::read_dir(versions)
        .ok()?
        .flatten()
        .filter_map(|e| Version::parse(e.file_name().to_str()?))
        .filter(|v| range.matches(*v))
        .collect();
    found.sort_unstable_by(|a, b| b.cmp(a));
    for version in found {
        let folder = versions.join(version.to_string());
        if version_of(&folder.join("bin/node")).await == Some(version) {
            return Some((version, folder));
        }
    }
    None
}

/// Downloads the highest release in `range` into the store; returns it and its folder.
async fn download(
    range: &Range,
    toolchains: &Toolchains,
    say: &(dyn Fn(String) + Sync),
) -> anyhow::Result<(Version, PathBuf)> {
    let registry = Registry::new(&toolchains.registry)?;
    let releases = registry.releases(registry::package_name()?).await?;
    let release = registry::choose(&releases, range)?;
    let version = release.version;
    say(format!(
        "Downloading Node.js {version} from {}",
        registry.base()
    ));
    let versions = store_dir(&toolchains.store);
    create_shared_dirs(&toolchains.store, &versions)?;
    let staging = tempfile::Builder::new()
        .prefix(".partial-")
        .tempdir_in(&versions)
        .with_context(|| format!("creating a folder in {}", versions.display()))?;
    let tgz = staging.path().join("node.tgz");
    registry.download(release, &tgz).await?;
    let unpacked = staging.path().join(version.to_string());
    let into = unpacked.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        std::fs::create_dir(&into)?;
        unpack::unpack_node(&tgz, &into)?;
        std::fs::remove_file(&tgz)?;
        share(&into)?;
        share(&into.join("bin"))?;
        Ok(())
    })
    .await
    .context("unpacking task failed")??;
    match version_of(&unpacked.join("bin/node")).await {
        Some(v) if v == version => {}
        Some(v) => anyhow::bail!("the downloaded Node.js {version} says it is {v}"),
        None => anyhow::bail!("the downloaded Node.js {version} does not run on this machine"),
    }
    let folder = versions.join(version.to_string());
    settle(&unpacked, &folder)?;
    Ok((version, folder))
}

/// Renames `from` to `to`. Another build may have put the same version there first: then
/// that copy is used, and this one goes with its staging folder.
fn settle(from: &Path, to: &Path) -> anyhow::Result<()> {
    match std::fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(_) if to.join("bin/node").is_file() => Ok(()),
        Err(e) => Err(e).with_context(|| format!("storing Node.js in {}", to.display())),
    }
}

/// Creates the store's folders, readable and searchable by builds running as other users.
fn create_shared_dirs(store: &Path, versions: &Path) -> anyhow::Result<()> {
    for dir in [store, versions] {
        if !dir.is_dir() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the store {}", dir.display()))?;
            share(dir)?;
        }
    }
    Ok(())
}

/// Gives a folder mode 0755: everyone may read it, only its owner write.
fn share(dir: &Path) -> std::io::Result<()> {
    set_mode(dir, 0o755)
}

/// What `node --version` says, when it runs within 20 seconds. A binary just written may be
/// busy for a moment (`ETXTBSY`: a process forked meanwhile elsewhere still holds the file open
/// for writing until it execs); it is tried again then.
async fn version_of(node: &Path) -> Option<Version> {
    const TEXT_FILE_BUSY: i32 = 26;
    let mut tries = 0;
    let out = loop {
        let mut cmd = tokio::process::Command::new(node);
        cmd.arg("--version")
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        match tokio::time::timeout(Duration::from_secs(20), cmd.output())
            .await
            .ok()?
        {
            Err(e) if e.raw_os_error() == Some(TEXT_FILE_BUSY) && tries < 20 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            result => break result.ok()?,
        }
    };
    out.status
        .success()
        .then(|| Version::parse(&String::from_utf8_lossy(&out.stdout)))
        .flatten()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use base64::Engine;
    use sha2::Digest;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::toolchain::unpack::tests::tarball;

    /// A registry on 127.0.0.1 serving fixed bodies by path, counting requests.
    struct FakeRegistry {
        url: String,
        bodies: Arc<Mutex<HashMap<String, Vec<u8>>>>,
        requests: Arc<AtomicUsize>,
    }

    impl FakeRegistry {
        async fn start() -> Self {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let url = format!("http://{}", listener.local_addr().expect("addr"));
            let bodies = Arc::new(Mutex::new(HashMap::<String, Vec<u8>>::new()));
            let requests = Arc::new(AtomicUsize::new(0));
            let (served, counted) = (bodies.clone(), requests.clone());
            tokio::spawn(async move {
                while let Ok((mut stream, _)) = listener.accept().await {
                    counted.fetch_add(1, Ordering::SeqCst);
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n")
                        && stream.read(&mut byte).await.is_ok_and(|n| n == 1)
                    {
                        head.push(byte[0]);
                    }
                    let head = String::from_utf8_lossy(&head);
                    let path = head.split(' ').nth(1).unwrap_or("").to_owned();
                    let body = served.lock().expect("lock").get(&path).cloned();
                    let (status, body) = match body {
                        Some(b) => ("200 OK", b),
                        None => ("404 Not Found", b"not found".to_vec()),
                    };
                    let reply = format!(
                        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(reply.as_bytes()).await;
                    let _ = stream.write_all(&body).await;
                }
            });
            Self {
                url,
                bodies,
                requests,
            }
        }

        fn serve(&self, path: &str, body: Vec<u8>) {
            self.bodies
                .lock()
                .expect("lock")
                .insert(path.to_owned(), body);
        }

        /// Lists 20.11.1, 22.1.0, 22.3.0 and 23.0.0; 22.3.0's tarball is `served`, checked
        /// against the hash of `published`.
        fn publish(&self, published: &[u8], served: Vec<u8>) {
            let sri = |bytes: &[u8]| {
                let b64 =
                    base64::engine::general_purpose::STANDARD.encode(sha2::Sha512::digest(bytes));
                format!("sha512-{b64}")
            };
            let mut versions = serde_json::Map::new();
            for v in ["20.11.1", "22.1.0", "22.3.0", "23.0.0"] {
                let integrity = if v == "22.3.0" {
                    sri(published)
                } else {
                    sri(v.as_bytes())
                };
                versions.insert(
                    v.to_owned(),
                    serde_json::json!({"dist": {
                        "tarball": format!("{}/tarballs/node-{v}.tgz", self.url),
                        "integrity": integrity,
                    }}),
                );
            }
            let doc = serde_json::json!({"name": "node", "versions": versions});
            let package = registry::package_name().expect("a supported machine");
            self.serve(&format!("/{package}"), doc.to_string().into_bytes());
            self.serve("/tarballs/node-22.3.0.tgz", served);
        }

        fn requests(&self) -> usize {
            self.requests.load(Ordering::SeqCst)
        }
    }

    fn node_tarball(says: &str) -> Vec<u8> {
        let script = format!("#!/bin/sh\necho {says}\n");
        tarball(&[
            ("package/include/node/node.h", Ok("// header")),
            (
                "package/bin/npm",
                Err("../lib/node_modules/npm/bin/npm-cli.js"),
            ),
            ("package/LICENSE", Ok("MIT")),
            ("package/bin/node", Ok(&script)),
        ])
    }

    /// An app whose `.nvmrc` says `asks`, a store, and a machine Node.js that says v20.1.0.
    fn setup(asks: &str, registry: &str) -> (tempfile::TempDir, Toolchains) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("app")).expect("mkdir");
        std::fs::write(dir.path().join("app/.nvmrc"), asks).expect("write");
        let machine = dir.path().join("machine-node");
        std::fs::write(&machine, "#!/bin/sh\necho v20.1.0\n").expect("write");
        share_file(&machine, 0o755);
        let toolchains = Toolchains {
            store: dir.path().join("store"),
            kept: true,
            registry: registry.to_owned(),
            machine: Some(machine),
        };
        (dir, toolchains)
    }

    fn share_file(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    async fn run(dir: &tempfile::TempDir, toolchains: &Toolchains) -> anyhow::Result<NodeRuntime> {
        let said = Mutex::new(Vec::new());
        let say = |line: String| said.lock().expect("lock").push(line);
        let found = prepare(&dir.path().join("app"), None, toolchains, &say).await?;
        Ok(found.expect("a Node.js app"))
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    #[tokio::test]
    async fn a_download_is_checked_kept_and_used_again() {
        let registry = FakeRegistry::start().await;
        let tgz = node_tarball("v22.3.0");
        registry.publish(&tgz, tgz.clone());
        let (dir, toolchains) = setup("22\n", &registry.url);

        let first = run(&dir, &toolchains).await.expect("downloads");
        assert_eq!(first.version, Version::new(22, 3, 0));
        assert!(matches!(first.provenance, Provenance::Downloaded { .. }));
        let folder = toolchains.store.join("node/22.3.0");
        assert_eq!(first.folder.as_deref(), Some(folder.as_path()));
        assert_eq!(first.path_entry(), Some(folder.join("bin").as_path()));
        assert_eq!(
            entries(&toolchains.store.join("node")),
            ["22.3.0"],
            "no staging left"
        );
        assert_eq!(entries(&folder), ["LICENSE", "bin"]);
        assert_eq!(entries(&folder.join("bin")), ["node"]);
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&folder), 0o755);
        assert_eq!(mode(&folder.join("bin/node")), 0o755);
        let line = first.describe();
        assert!(
            line.starts_with(&format!(
                "Node.js 22.3.0 (downloaded from {} in ",
                registry.url
            )),
            "{line}"
        );
        assert!(
            line.ends_with("kept for later builds, for 22 from .nvmrc)"),
            "{line}"
        );
        assert_eq!(registry.requests(), 2, "the version list and the tarball");

        let second = run(&dir, &toolchains).await.expect("stored");
        assert_eq!(second.provenance, Provenance::Stored);
        assert_eq!(second.version, Version::new(22, 3, 0));
        assert_eq!(registry.requests(), 2, "nothing asked of the registry");
    }

    #[tokio::test]
    async fn a_tampered_download_is_refused_and_not_kept() {
        let registry = FakeRegistry::start().await;
        registry.publish(&node_tarball("v22.3.0"), node_tarball("v6.6.6"));
        let (dir, toolchains) = setup("^22.2", &registry.url);
        let err = format!("{:#}", run(&dir, &toolchains).await.expect_err("tampered"));
        assert!(err.contains("installing Node.js ^22.2 (.nvmrc)"), "{err}");
        assert!(
            err.contains("does not match the registry's sha512 integrity"),
            "{err}"
        );
        assert_eq!(
            entries(&toolchains.store.join("node")),
            Vec::<String>::new()
        );
    }

    #[tokio::test]
    async fn an_impossible_version_names_the_newest() {
        let registry = FakeRegistry::start().await;
        let tgz = node_tarball("v22.3.0");
        registry.publish(&tgz, tgz.clone());
        let (dir, toolchains) = setup("99", &registry.url);
        let err = format!("{:#}", run(&dir, &toolchains).await.expect_err("none"));
        assert!(
            err.contains("no Node.js release matches 99; the newest available is 23.0.0"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_store_in_a_private_folder_is_copied_for_another_user() {
        let registry = FakeRegistry::start().await;
        let tgz = node_tarball("v22.3.0");
        registry.publish(&tgz, tgz.clone());
        let (dir, toolchains) = setup("22", &registry.url);
        let found = run(&dir, &toolchains).await.expect("downloads");
        let work = dir.path().join("work");
        let same = found.clone().within_reach(&work, true).expect("reachable");
        assert_eq!(
            same.folder, found.folder,
            "every folder up to it is passable"
        );
        share_file(dir.path(), 0o700);
        let copied = found.within_reach(&work, true).expect("copied");
        let folder = work.join("toolchains/node/22.3.0");
        assert_eq!(copied.folder.as_deref(), Some(folder.as_path()));
        assert_eq!(copied.path_entry(), Some(folder.join("bin").as_path()));
        assert_eq!(entries(&folder.join("bin")), ["node"]);
        let again = copied
            .clone()
            .within_reach(&work, true)
            .expect("in the work folder");
        assert_eq!(again.folder, copied.folder, "never copied onto itself");
        let size = std::fs::metadata(folder.join("bin/node"))
            .expect("meta")
            .len();
        assert!(size > 0);
    }

    #[tokio::test]
    async fn the_machine_node_is_used_when_it_fits() {
        // Nothing listens there: asking the registry would fail the test.
        let (dir, toolchains) = setup(">=18 <21", "http://127.0.0.1:9");
        let found = run(&dir, &toolchains).await.expect("the machine's");
        assert_eq!(found.provenance, Provenance::Machine);
        assert_eq!(found.version, Version::new(20, 1, 0));
        assert_eq!(found.path_entry(), None);
        assert_eq!(
            found.describe(),
            "Node.js 20.1.0 (installed on this machine, for >=18 <21 from .nvmrc)"
        );
        let none = prepare(&dir.path().join("store"), None, &toolchains, &|_| {}).await;
        assert!(
            none.expect("no app").is_none(),
            "no package.json, nothing asked"
        );
    }
}
