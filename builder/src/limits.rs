//! What one build may use, enforced by the kernel: memory, processes and CPU through a control
//! group of its own (cgroup v2, or v1's memory, pids and cpu controllers), and as a floor where
//! no control group can be made, resource limits on each process (`RLIMIT_DATA`; `RLIMIT_NPROC`
//! only for a build with a user of its own, since it counts all of a user's processes).
//! The disk a build fills (its work folder, `/tmp` included) is a filesystem of its own where
//! the builder may make one (as root: an ext4 image of the allowance's size, mounted on a loop
//! device, bounded in blocks and inodes by the kernel); elsewhere it is watched while the build
//! writes. Either way no single file may outgrow the whole allowance (`RLIMIT_FSIZE`).
//!
//! Commands enter the group before they start: the builder runs itself as a trampoline
//! (`__limits`) that joins the group, sets its limits, then becomes the command, so nothing the
//! command starts is ever outside.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use scalemesh_core::size;

/// The first argument that makes `scalemesh-builder` a trampoline.
pub const TRAMPOLINE: &str = "__limits";

/// How much a build may use; `None` for no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub memory: Option<u64>,
    pub processes: Option<u64>,
    pub disk: Option<u64>,
}

/// Relative CPU weight of a build against the server's processes (which have 1024).
const CPU_SHARES: u64 = 512;

/// How often the work folder is measured.
const DISK_CHECK: Duration = Duration::from_secs(1);
/// How often a work folder of its own is asked whether it is full (one system call).
const FULL_CHECK: Duration = Duration::from_millis(200);

/// The control group hierarchy of this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Hierarchy {
    /// One unified tree (`/sys/fs/cgroup/cgroup.controllers` exists).
    V2(PathBuf),
    /// One tree per controller.
    V1(PathBuf),
}

fn hierarchy(root: &Path) -> Option<Hierarchy> {
    if root.join("cgroup.controllers").is_file() {
        Some(Hierarchy::V2(root.to_path_buf()))
    } else if root.join("memory").is_dir() && root.join("pids").is_dir() {
        Some(Hierarchy::V1(root.to_path_buf()))
    } else {
        None
    }
}

/// A build's control group: one folder (v2) or one per controller (v1), removed (with anything
/// still in it killed) when dropped.
#[derive(Debug)]
struct Group {
    hierarchy: Hierarchy,
    /// The folders made, each with its `cgroup.procs`.
    dirs: Vec<PathBuf>,
}

impl Group {
    fn create(hierarchy: Hierarchy, name: &str, limits: &Limits) -> std::io::Result<Self> {
        let mut group = Self {
            hierarchy: hierarchy.clone(),
            dirs: Vec::new(),
        };
        match &hierarchy {
            Hierarchy::V2(root) => {
                let parent = root.join("scalemesh");
                std::fs::create_dir_all(&parent)?;
                for dir in [root.as_path(), parent.as_path()] {
                    // One by one: a controller not offered here must not keep the others off.
                    for controller in ["+memory", "+pids", "+cpu"] {
                        let _ = std::fs::write(dir.join("cgroup.subtree_control"), controller);
                    }
                }
                let dir = parent.join(name);
                std::fs::create_dir_all(&dir)?;
                group.dirs.push(dir.clone());
                if let Some(memory) = limits.memory {
                    std::fs::write(dir.join("memory.max"), memory.to_string())?;
                    let _ = std::fs::write(dir.join("memory.swap.max"), "0");
                }
                if let Some(processes) = limits.processes {
                    std::fs::write(dir.join("pids.max"), processes.to_string())?;
                }
                let _ = std::fs::write(
                    dir.join("cpu.weight"),
                    (CPU_SHARES * 100 / 1024).to_string(),
                );
            }
            Hierarchy::V1(root) => {
                for controller in ["memory", "pids", "cpu"] {
                    let dir = root.join(controller).join("scalemesh").join(name);
                    if controller == "cpu" && !root.join("cpu").is_dir() {
                        continue;
                    }
                    std::fs::create_dir_all(&dir)?;
                    group.dirs.push(dir.clone());
                    match controller {
                        "memory" => {
                            if let Some(memory) = limits.memory {
                                std::fs::write(
                                    dir.join("memory.limit_in_bytes"),
                                    memory.to_string(),
                                )?;
                                // With swap accounting, swap counts too; without it, the file
                                // does not exist.
                                let _ = std::fs::write(
                                    dir.join("memory.memsw.limit_in_bytes"),
                                    memory.to_string(),
                                );
                            }
                        }
                        "pids" => {
                            if let Some(processes) = limits.processes {
                                std::fs::write(dir.join("pids.max"), processes.to_string())?;
                            }
                        }
                        _ => {
                            let _ = std::fs::write(dir.join("cpu.shares"), CPU_SHARES.to_string());
                        }
                    }
                }
            }
        }
        Ok(group)
    }

    /// Reads a counter `key` from a `file` of `key value` lines, in the folder holding it.
    fn counter(&self, file: &str, key: &str) -> u64 {
        self.dirs
            .iter()
            .filter_map(|dir| std::fs::read_to_string(dir.join(file)).ok())
            .flat_map(|text| {
                text.lines()
                    .filter_map(|l| l.split_once(' '))
                    .filter(|(k, _)| *k == key)
                    .filter_map(|(_, v)| v.trim().parse::<u64>().ok())
                    .collect::<Vec<_>>()
            })
            .sum()
    }

    fn out_of_memory(&self) -> bool {
        match self.hierarchy {
            Hierarchy::V2(_) => self.counter("memory.events", "oom_kill") > 0,
            // Not `memory.failcnt`: it counts every time the page cache met the limit and was
            // reclaimed, which healthy builds do.
            Hierarchy::V1(_) => self.counter("memory.oom_control", "oom_kill") > 0,
        }
    }

    fn hit_process_limit(&self) -> bool {
        self.counter("pids.events", "max") > 0
    }

    /// Every process still in the group, killed.
    fn kill_all(&self) {
        for dir in &self.dirs {
            let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) else {
                continue;
            };
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        for _ in 0..50 {
            self.kill_all();
            if self
                .dirs
                .iter()
                .all(|d| std::fs::remove_dir(d).is_ok() || !d.exists())
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A work folder that is a filesystem of its own, the size of the build's disk allowance:
/// the kernel refuses what does not fit, however it is written (deleted files still open,
/// paths too long to walk, blocks allocated at once, inodes). Unmounted and deleted when
/// dropped.
#[derive(Debug)]
pub struct DiskImage {
    image: PathBuf,
    mountpoint: PathBuf,
}

impl DiskImage {
    /// Makes a `bytes`-sized ext4 image beside `work` and mounts it on `work` (which must be
    /// an empty folder). Needs root, `mkfs.ext4` and loop devices.
    pub fn mount(work: &Path, bytes: u64) -> std::io::Result<Self> {
        use std::process::{Command, Stdio};
        let image = work.with_extension("img");
        let file = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&image)?
        };
        file.set_len(bytes)?;
        drop(file);
        let guard = Self {
            image: image.clone(),
            mountpoint: work.to_path_buf(),
        };
        // An inode per 16 KiB, as many as a dependency folder of small files needs.
        let inodes = (bytes / (16 << 10)).max(1024);
        let run = |cmd: &mut Command| -> std::io::Result<()> {
            let status = cmd
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()?;
            if status.success() {
                Ok(())
            } else {
                Err(std::io::Error::other(format!("{cmd:?} failed: {status}")))
            }
        };
        run(Command::new("mkfs.ext4")
            .args(["-q", "-F", "-m", "0", "-O", "^has_journal"])
            .args(["-E", "lazy_itable_init=1,lazy_journal_init=1"])
            .arg("-N")
            .arg(inodes.to_string())
            .arg(&image))?;
        run(Command::new("mount")
            .args(["-o", "loop,nosuid,nodev,noatime"])
            .arg(&image)
            .arg(work))?;
        let _ = std::fs::remove_dir(work.join("lost+found"));
        Ok(guard)
    }
}

impl Drop for DiskImage {
    fn drop(&mut self) {
        // Lazily: anything of the build still holding a file there cannot keep it mounted.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.mountpoint)
            .status();
        let _ = std::fs::remove_file(&self.image);
    }
}

/// Whether the filesystem holding `dir` has (nearly) no room left, in blocks or inodes.
fn filesystem_full(dir: &Path) -> bool {
    match nix::sys::statvfs::statvfs(dir) {
        Ok(vfs) => {
            let blocks = vfs.blocks();
            let files = vfs.files();
            (blocks > 0 && vfs.blocks_available() * 100 < blocks * 2)
                || (files > 0 && vfs.files_available() == 0)
        }
        Err(_) => false,
    }
}

/// The limits of one build, as it runs.
#[derive(Debug)]
pub struct Enforcer {
    limits: Limits,
    group: Option<Group>,
    disk_full: Arc<AtomicBool>,
    /// The work folder is a filesystem of the allowance's size ([`DiskImage`]).
    own_filesystem: bool,
    /// That filesystem was seen full while a command ran.
    filled: Arc<AtomicBool>,
}

impl Enforcer {
    /// Makes the build's control group `name` where the machine lets us; else the limits fall
    /// back to per-process ones. Returns a line for the build log saying what is enforced.
    pub fn create(name: &str, limits: Limits, own_filesystem: bool) -> (Arc<Self>, String) {
        Self::create_under(Path::new("/sys/fs/cgroup"), name, limits, own_filesystem)
    }

    fn create_under(
        root: &Path,
        name: &str,
        limits: Limits,
        own_filesystem: bool,
    ) -> (Arc<Self>, String) {
        let wanted = limits.memory.is_some() || limits.processes.is_some();
        let group = if wanted {
            hierarchy(root).and_then(|h| Group::create(h, name, &limits).ok())
        } else {
            None
        };
        let mut parts = Vec::new();
        if let Some(memory) = limits.memory {
            parts.push(format!("memory {}", size::display(memory)));
        }
        if let Some(processes) = limits.processes {
            parts.push(format!("{processes} processes"));
        }
        if let Some(disk) = limits.disk {
            parts.push(format!("disk {}", size::display(disk)));
        }
        let how = match &group {
            Some(Group {
                hierarchy: Hierarchy::V2(_),
                ..
            }) => "by a cgroup v2 group",
            Some(_) => "by cgroup v1 memory and pids groups",
            None if wanted => "per process only (no control group could be made here)",
            None => "",
        };
        let disk_how = match (limits.disk, own_filesystem) {
            (Some(_), true) => "; the disk by a filesystem of its own",
            (Some(_), false) => "; the disk watched while it writes",
            (None, _) => "",
        };
        let note = if parts.is_empty() {
            "Limits: none".to_owned()
        } else {
            format!("Limits: {}, enforced {how}{disk_how}", parts.join(", "))
        };
        let enforcer = Arc::new(Self {
            limits,
            group,
            disk_full: Arc::new(AtomicBool::new(false)),
            own_filesystem,
            filled: Arc::new(AtomicBool::new(false)),
        });
        (enforcer, note)
    }

    /// The trampoline's arguments that put a command under these limits:
    /// `scalemesh-builder __limits [--join <cgroup.procs>]… [--data N] [--nproc N] [--fsize N] --`.
    /// `own_user`: the command runs as a user no other build or program has.
    pub fn trampoline_args(&self, own_user: bool) -> Vec<String> {
        let mut args = vec![TRAMPOLINE.to_owned()];
        match &self.group {
            Some(group) => {
                for dir in &group.dirs {
                    args.push("--join".into());
                    args.push(dir.join("cgroup.procs").display().to_string());
                }
            }
            None => {
                // Not `RLIMIT_AS`: runtimes reserve far more address space than they use
                // (WebAssembly in Node.js does), and would not start.
                if let Some(memory) = self.limits.memory {
                    args.extend(["--data".into(), memory.to_string()]);
                }
                if let (Some(processes), true) = (self.limits.processes, own_user) {
                    args.extend(["--nproc".into(), processes.to_string()]);
                }
            }
        }
        if let Some(disk) = self.limits.disk {
            args.extend(["--fsize".into(), disk.to_string()]);
        }
        args.push("--".into());
        args
    }

    /// Watches `work` while `f` runs; `None` (with `f` dropped, which kills its commands) if the
    /// folder grows past the disk allowance.
    pub async fn watching<T>(
        &self,
        work: &Path,
        f: impl std::future::Future<Output = T>,
    ) -> Option<T> {
        let Some(disk) = self.limits.disk else {
            return Some(f.await);
        };
        if self.own_filesystem {
            // The kernel refuses what does not fit; whether the folder ever filled up is noted
            // as it happens, since a deleted file still open gives its room back once the
            // command exits.
            let work = work.to_path_buf();
            let full = self.filled.clone();
            let watch = async {
                loop {
                    tokio::time::sleep(FULL_CHECK).await;
                    if filesystem_full(&work) {
                        full.store(true, Ordering::SeqCst);
                    }
                }
            };
            // The watch never ends: the command's end does.
            return tokio::select! {
                out = f => Some(out),
                () = watch => None,
            };
        }
        let work = work.to_path_buf();
        let full = self.disk_full.clone();
        let watch = async {
            loop {
                tokio::time::sleep(DISK_CHECK).await;
                let dir = work.clone();
                let used = tokio::task::spawn_blocking(move || disk_used(&dir))
                    .await
                    .unwrap_or(0);
                if used > disk {
                    full.store(true, Ordering::SeqCst);
                    return;
                }
            }
        };
        tokio::select! {
            out = f => Some(out),
            () = watch => {
                // Over the allowance: everything of the build stops now.
                if let Some(group) = &self.group {
                    group.kill_all();
                }
                None
            }
        }
    }

    /// Why a command of the build failed (`failed`), or must fail, when a limit is the cause.
    /// `work` is measured once more: a command can fill it between two checks, or stop at the
    /// per-file limit. Memory and process counts are blamed only for a command that failed.
    pub fn verdict(&self, work: &Path, failed: bool) -> Option<String> {
        match self.limits.disk {
            // The kernel held the line: the folder is full when the command failed.
            Some(_) if self.own_filesystem => {
                let filled = self.filled.swap(false, Ordering::SeqCst) || filesystem_full(work);
                if failed && filled {
                    self.disk_full.store(true, Ordering::SeqCst);
                }
            }
            // Over the allowance, whatever the command did; nearly there, when it failed (it
            // ran out of room, or hit the per-file limit).
            Some(disk) => {
                let used = disk_used(work);
                if used > disk || (failed && used >= disk / 100 * 95) {
                    self.disk_full.store(true, Ordering::SeqCst);
                }
            }
            None => {}
        }
        if self.disk_full.load(Ordering::SeqCst) {
            let disk = self.limits.disk.map(size::display).unwrap_or_default();
            return Some(format!(
                "out of disk space (limit {disk} for the work folder and /tmp)"
            ));
        }
        let group = self.group.as_ref().filter(|_| failed)?;
        if group.out_of_memory() {
            let memory = self.limits.memory.map(size::display).unwrap_or_default();
            return Some(format!("out of memory (limit {memory})"));
        }
        if group.hit_process_limit() {
            let n = self.limits.processes.unwrap_or_default();
            return Some(format!("too many processes (limit {n})"));
        }
        None
    }

    /// Whether commands must be started through the trampoline.
    pub fn wraps(&self) -> bool {
        self.group.is_some() || self.limits != Limits::default()
    }
}

/// Bytes of disk used below `dir` (allocated blocks, so sparse files count as what they use),
/// never following links.
pub fn disk_used(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    // A file with several names (hard links) takes its room once.
    let mut linked = std::collections::HashSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&path) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if meta.nlink() > 1 && !meta.is_dir() && !linked.insert((meta.dev(), meta.ino())) {
                continue;
            }
            total += meta.blocks() * 512;
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    total
}

/// The trampoline: `__limits [--join F]… [--data N] [--nproc N] [--fsize N] [--user UID:GID] --
/// program args…`. Joins each group, sets each limit, becomes the user (dropping every
/// supplementary group), then becomes the program; returns only on failure.
pub fn trampoline(args: &[String]) -> std::io::Error {
    use nix::sys::resource::{Resource, setrlimit};
    use std::os::unix::process::CommandExt;

    let fail = |what: String| std::io::Error::other(what);
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        if flag == "--" {
            break;
        }
        let Some(value) = rest.next() else {
            return fail(format!("{flag} needs a value"));
        };
        let result = match flag.as_str() {
            "--join" => std::fs::write(value, std::process::id().to_string())
                .map_err(|e| fail(format!("joining {value}: {e}"))),
            "--user" => become_user(value),
            "--data" | "--nproc" | "--fsize" => {
                let Ok(n) = value.parse::<u64>() else {
                    return fail(format!("{flag} {value:?} is not a number"));
                };
                let resource = match flag.as_str() {
                    "--data" => Resource::RLIMIT_DATA,
                    "--nproc" => Resource::RLIMIT_NPROC,
                    _ => Resource::RLIMIT_FSIZE,
                };
                setrlimit(resource, n, n).map_err(|e| fail(format!("{flag} {n}: {e}")))
            }
            other => Err(fail(format!("unknown flag {other}"))),
        };
        if let Err(e) = result {
            return e;
        }
    }
    let mut program = rest;
    let Some(name) = program.next() else {
        return fail("no program to run".into());
    };
    std::process::Command::new(name).args(program).exec()
}

/// Drops to `uid:gid` for good: no supplementary groups, real, effective and saved ids.
fn become_user(spec: &str) -> std::io::Result<()> {
    use nix::unistd::{Gid, Uid, setgid, setgroups, setuid};
    let parsed = spec
        .split_once(':')
        .and_then(|(u, g)| Some((u.parse::<u32>().ok()?, g.parse::<u32>().ok()?)));
    let Some((uid, gid)) = parsed else {
        return Err(std::io::Error::other(format!("{spec:?} is not UID:GID")));
    };
    let err = |what: &str, e: nix::Error| std::io::Error::other(format!("{what}: {e}"));
    setgroups(&[]).map_err(|e| err("dropping groups", e))?;
    setgid(Gid::from_raw(gid)).map_err(|e| err("becoming the build's group", e))?;
    setuid(Uid::from_raw(uid)).map_err(|e| err("becoming the build's user", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            memory: Some(256 << 20),
            processes: Some(64),
            disk: Some(1 << 30),
        }
    }

    #[test]
    fn a_v1_group_gets_its_limits_and_names_what_it_hit() {
        let root = tempfile::tempdir().expect("tempdir");
        for controller in ["memory", "pids", "cpu"] {
            std::fs::create_dir_all(root.path().join(controller)).expect("mkdir");
        }
        let (enforcer, note) = Enforcer::create_under(root.path(), "b1", limits(), false);
        assert_eq!(
            note,
            "Limits: memory 256 MiB, 64 processes, disk 1 GiB, enforced by cgroup v1 memory and pids groups; the disk watched while it writes"
        );
        let memory = root.path().join("memory/scalemesh/b1");
        assert_eq!(
            std::fs::read_to_string(memory.join("memory.limit_in_bytes")).expect("limit"),
            (256u64 << 20).to_string()
        );
        assert_eq!(
            std::fs::read_to_string(root.path().join("pids/scalemesh/b1/pids.max")).expect("max"),
            "64"
        );
        let args = enforcer.trampoline_args(true);
        assert_eq!(args[0], TRAMPOLINE);
        assert!(args.contains(&memory.join("cgroup.procs").display().to_string()));
        assert!(
            !args.contains(&"--data".to_owned()),
            "the group limits memory"
        );
        let work = tempfile::tempdir().expect("work");
        assert_eq!(enforcer.verdict(work.path(), true), None);
        std::fs::write(
            memory.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
        )
        .expect("write");
        assert_eq!(
            enforcer.verdict(work.path(), true).as_deref(),
            Some("out of memory (limit 256 MiB)")
        );
        std::fs::write(memory.join("memory.oom_control"), "oom_kill 0\n").expect("write");
        std::fs::write(root.path().join("pids/scalemesh/b1/pids.events"), "max 3\n")
            .expect("write");
        assert_eq!(
            enforcer.verdict(work.path(), true).as_deref(),
            Some("too many processes (limit 64)")
        );
    }

    #[test]
    fn a_v2_group_gets_its_limits() {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::write(root.path().join("cgroup.controllers"), "memory pids cpu").expect("write");
        let (enforcer, note) = Enforcer::create_under(root.path(), "b2", limits(), false);
        assert!(note.contains("enforced by a cgroup v2 group"), "{note}");
        let dir = root.path().join("scalemesh/b2");
        assert_eq!(
            std::fs::read_to_string(dir.join("memory.max")).expect("max"),
            (256u64 << 20).to_string()
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("pids.max")).expect("max"),
            "64"
        );
        std::fs::write(
            dir.join("memory.events"),
            "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\n",
        )
        .expect("write");
        let work = tempfile::tempdir().expect("work");
        assert_eq!(
            enforcer.verdict(work.path(), true).as_deref(),
            Some("out of memory (limit 256 MiB)")
        );
        // Nearly full: the reason for a command that failed, not a failure of its own.
        std::fs::write(work.path().join("big"), vec![1u8; 1 << 20]).expect("write");
        let small = |name: &str| {
            Enforcer::create_under(
                root.path(),
                name,
                Limits {
                    disk: Some((1 << 20) + (16 << 10)),
                    ..Limits::default()
                },
                false,
            )
            .0
        };
        assert_eq!(small("b4").verdict(work.path(), false), None);
        assert!(
            small("b5")
                .verdict(work.path(), true)
                .is_some_and(|v| v.starts_with("out of disk space")),
        );
        // Over it: the reason, whatever the command did.
        std::fs::write(work.path().join("more"), vec![1u8; 64 << 10]).expect("write");
        assert!(
            small("b6")
                .verdict(work.path(), false)
                .is_some_and(|v| v.starts_with("out of disk space")),
        );
    }

    #[test]
    fn without_a_group_each_process_is_limited() {
        let root = tempfile::tempdir().expect("tempdir");
        let (enforcer, note) = Enforcer::create_under(root.path(), "b3", limits(), false);
        assert!(note.contains("per process only"), "{note}");
        let args = enforcer.trampoline_args(true).join(" ");
        assert_eq!(
            args,
            format!(
                "{TRAMPOLINE} --data {} --nproc 64 --fsize {} --",
                256u64 << 20,
                1u64 << 30
            )
        );
        // Sharing its user with the server, a build gets no process limit that would count
        // the server's own.
        let shared = enforcer.trampoline_args(false).join(" ");
        assert!(!shared.contains("--nproc"), "{shared}");
    }

    #[test]
    fn disk_use_counts_blocks_below_a_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("a/b")).expect("mkdir");
        std::fs::write(dir.path().join("a/b/f"), vec![1u8; 100_000]).expect("write");
        let used = disk_used(dir.path());
        assert!(used >= 100_000, "{used}");
        // A sparse file takes what it uses, not its length.
        let sparse = std::fs::File::create(dir.path().join("sparse")).expect("create");
        sparse.set_len(10 << 30).expect("truncate");
        assert!(disk_used(dir.path()) < used + (1 << 20));
        // Hard links count once.
        for n in 0..5 {
            std::fs::hard_link(
                dir.path().join("a/b/f"),
                dir.path().join(format!("link-{n}")),
            )
            .expect("link");
        }
        assert!(disk_used(dir.path()) < used + (1 << 20));
    }
}
