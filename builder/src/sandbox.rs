//! Where build commands run. With bubblewrap, a build sees a read-only `/usr`, a few files of
//! `/etc`, its own work folder, fresh `/proc` and `/dev`, and a `/tmp` in its work folder (so
//! it counts against the build's disk, not the host's memory), in user and PID namespaces of
//! its own with no capabilities: not the server's data, not the builder's environment (which
//! holds the job token), and nothing it starts survives the sandbox. A builder running as root
//! runs the sandbox as the build's own user (one per build running at once, else `nobody`), so
//! nothing inside counts as root on the host, nor as another build. Without bubblewrap,
//! commands run as plain child processes (never as root unless asked). Either way, commands
//! start inside the build's limits (`crate::limits`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use scalemesh_core::job::SandboxMode as SandboxSetting;
use tokio::process::Command;

use crate::limits::Enforcer;

#[derive(Debug, Clone)]
pub struct Sandbox {
    kind: Kind,
    /// The user and group to become before running a command, when the builder is root.
    run_as: Option<(u32, u32)>,
    limits: Option<Arc<Enforcer>>,
    /// Folders outside the work folder that commands may read (never write), at their own
    /// paths: the Node.js a build runs on.
    read_only: Vec<PathBuf>,
}

#[derive(Debug, Clone)]
enum Kind {
    None,
    Bwrap { bwrap: PathBuf, work: PathBuf },
}

/// `nobody` and `nogroup`: who builds run as when the builder is root.
const NOBODY: (u32, u32) = (65534, 65534);

/// Parts of `/etc` a build may need: name resolution, TLS roots, users, time zone.
const ETC_FILES: &[&str] = &[
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/gai.conf",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/ca-certificates.conf",
    "/etc/passwd",
    "/etc/group",
    "/etc/alternatives",
    "/etc/localtime",
    "/etc/mime.types",
];

impl Sandbox {
    /// Chooses the sandbox for builds whose files live under `work`, run as `build_uid` when
    /// the builder is root (else `nobody`), within `limits`. Returns it and, when the choice
    /// deserves the user's attention, a line for the build log.
    pub async fn choose(
        setting: SandboxSetting,
        work: &Path,
        build_uid: Option<u32>,
        limits: Option<Arc<Enforcer>>,
    ) -> anyhow::Result<(Self, Option<String>)> {
        let run_as = nix::unistd::geteuid()
            .is_root()
            .then(|| build_uid.map_or(NOBODY, |uid| (uid, uid)));
        if let Some((uid, gid)) = run_as {
            // The build's user must own the work folder it builds in, sandbox or not.
            chown_tree(work, uid, gid)?;
        }
        let plain = Self {
            kind: Kind::None,
            run_as,
            limits: limits.clone(),
            read_only: Vec::new(),
        };
        if setting == SandboxSetting::None {
            return Ok((
                plain,
                Some("Building without a sandbox (--sandbox none)".into()),
            ));
        }
        if let Some(bwrap) = find_on_path("bwrap") {
            if let Some((uid, gid)) = run_as {
                write_identity(work, uid, gid)?;
            }
            let candidate = Self {
                kind: Kind::Bwrap {
                    bwrap,
                    work: work.to_path_buf(),
                },
                run_as,
                limits,
                read_only: Vec::new(),
            };
            if candidate.works(work).await {
                return Ok((candidate, None));
            }
        }
        match setting {
            SandboxSetting::Bwrap => anyhow::bail!(
                "the bubblewrap sandbox was asked for, but `bwrap` is missing or does not work here; install the bubblewrap package (and allow user namespaces)"
            ),
            _ if nix::unistd::geteuid().is_root() => anyhow::bail!(
                "refusing to run build commands as root without a sandbox: install bubblewrap (with user namespaces enabled), run the server as an unprivileged user, or set --sandbox none to accept the risk"
            ),
            _ => Ok((
                Self {
                    run_as: None,
                    ..plain
                },
                Some("Building without a sandbox: bubblewrap (bwrap) is not available on this builder".into()),
            )),
        }
    }

    /// Whether a trivial command runs inside this sandbox.
    async fn works(&self, cwd: &Path) -> bool {
        let mut cmd = self.shell_command("true", cwd);
        cmd.env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        matches!(cmd.status().await, Ok(s) if s.success())
    }

    /// `sh -c <command>` in `cwd` with the build's environment `vars`, inside the sandbox and
    /// the build's limits. The variables never reach the programs that set the sandbox up (the
    /// builder's trampoline, which runs as root, and bubblewrap): a project variable such as
    /// `LD_AUDIT` would run code there, outside the sandbox. They are written to a file only
    /// the build's user may read, which the command's own shell reads once inside.
    pub fn build_command(
        &self,
        command: &str,
        cwd: &Path,
        vars: &std::collections::BTreeMap<String, String>,
        env_file: &Path,
    ) -> anyhow::Result<Command> {
        write_env_file(env_file, vars, self.run_as)?;
        let wrapper = r#"set -a; . "$0"; set +a; exec /bin/sh -c "$1""#;
        let mut cmd = self.command(
            [
                "/bin/sh",
                "-c",
                wrapper,
                &env_file.display().to_string(),
                command,
            ]
            .map(str::to_owned)
            .to_vec(),
            cwd,
        );
        cmd.env_clear();
        Ok(cmd)
    }

    /// `sh -c <command>` in `cwd`, inside the sandbox and the build's limits.
    pub fn shell_command(&self, command: &str, cwd: &Path) -> Command {
        self.command(["/bin/sh", "-c", command].map(str::to_owned).to_vec(), cwd)
    }

    /// `program` (the first of `program`) in `cwd`, inside the sandbox and the build's limits.
    pub fn command(&self, program: Vec<String>, cwd: &Path) -> Command {
        let mut argv: Vec<String> = Vec::new();
        match &self.kind {
            Kind::None => {}
            Kind::Bwrap { bwrap, work } => {
                argv.push(bwrap.display().to_string());
                argv.extend(bwrap_args(
                    work,
                    cwd,
                    self.run_as.is_some(),
                    &self.read_only,
                ));
                argv.push("--".into());
            }
        }
        argv.extend(program);
        let mut cmd = match (&self.limits, self.run_as) {
            (None, None) => {
                let mut cmd = Command::new(&argv[0]);
                cmd.args(&argv[1..]);
                cmd
            }
            (limits, run_as) => {
                // The trampoline joins the limits as root, then becomes the build's user.
                let exe = std::env::current_exe().unwrap_or_else(|_| "scalemesh-builder".into());
                let mut cmd = Command::new(exe);
                let mut args = match limits {
                    Some(l) => l.trampoline_args(run_as.is_some()),
                    None => vec![crate::limits::TRAMPOLINE.to_owned(), "--".to_owned()],
                };
                if let Some((uid, gid)) = run_as {
                    let at = args.len() - 1;
                    args.splice(at..at, ["--user".to_owned(), format!("{uid}:{gid}")]);
                }
                cmd.args(args).args(&argv);
                cmd
            }
        };
        // Inside bubblewrap the command starts in `cwd` (`--chdir`); what starts it need not.
        match self.kind {
            Kind::Bwrap { .. } => cmd.current_dir("/"),
            Kind::None => cmd.current_dir(cwd),
        };
        cmd
    }
}

impl Sandbox {
    /// Lets commands read `dir` (and run what it holds) at its own path, without writing to
    /// it. Without bubblewrap, commands see the whole machine already.
    pub fn add_read_only(&mut self, dir: &Path) {
        self.read_only.push(dir.to_path_buf());
    }

    /// Gives what the builder itself made under the work folder (an unpacked source) to the
    /// build's user.
    pub fn hand_over(&self, path: &Path) -> anyhow::Result<()> {
        match self.run_as {
            Some((uid, gid)) => chown_tree(path, uid, gid),
            None => Ok(()),
        }
    }
}

/// bubblewrap's arguments for a command in `cwd`, with `work` its only writable folder and
/// `read_only` folders it may read besides the system's.
fn bwrap_args(work: &Path, cwd: &Path, own_identity: bool, read_only: &[PathBuf]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--die-with-parent",
        "--new-session",
        "--unshare-user",
        "--disable-userns",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--cap-drop",
        "ALL",
        "--ro-bind",
        "/usr",
        "/usr",
    ]
    .map(str::to_owned)
    .to_vec();
    for dir in ["bin", "sbin", "lib", "lib32", "lib64", "libx32"] {
        let root = Path::new("/").join(dir);
        match std::fs::read_link(&root) {
            // Merged /usr: /bin is a link to usr/bin.
            Ok(target) => {
                args.extend([
                    "--symlink".into(),
                    target.display().to_string(),
                    root.display().to_string(),
                ]);
            }
            Err(_) if root.is_dir() => {
                args.extend([
                    "--ro-bind".into(),
                    root.display().to_string(),
                    root.display().to_string(),
                ]);
            }
            Err(_) => {}
        }
    }
    for path in ETC_FILES {
        let own = own_identity && matches!(*path, "/etc/passwd" | "/etc/group");
        let source = if own {
            work.join(path[1..].replace('/', "-")).display().to_string()
        } else {
            (*path).to_owned()
        };
        args.extend(["--ro-bind-try".into(), source, (*path).to_owned()]);
    }
    let tmp = work.join("tmp");
    args.extend([
        "--proc".into(),
        "/proc".into(),
        "--dev".into(),
        "/dev".into(),
    ]);
    args.extend(["--bind".into(), tmp.display().to_string(), "/tmp".into()]);
    args.extend([
        "--bind".into(),
        work.display().to_string(),
        work.display().to_string(),
    ]);
    // After the work folder: one inside it is read-only too.
    for dir in read_only {
        let dir = dir.display().to_string();
        args.extend(["--ro-bind".into(), dir.clone(), dir]);
    }
    args.extend(["--chdir".into(), cwd.display().to_string()]);
    args
}

/// Writes `vars` as a file for `sh` to read (`NAME='value'` lines), readable by the build's
/// user only.
fn write_env_file(
    path: &Path,
    vars: &std::collections::BTreeMap<String, String>,
    owner: Option<(u32, u32)>,
) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut text = String::new();
    for (name, value) in vars {
        text.push_str(name);
        text.push_str("='");
        text.push_str(&value.replace('\'', "'\\''"));
        text.push_str("'\n");
    }
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
    }
    Ok(())
}

/// `/etc/passwd` and `/etc/group` for the sandbox, naming the build's user, so tools that look
/// themselves up (npm, git) find who they are.
fn write_identity(work: &Path, uid: u32, gid: u32) -> anyhow::Result<()> {
    let passwd = format!(
        "root:x:0:0:root:/root:/usr/sbin/nologin\nbuild:x:{uid}:{gid}:build:{home}:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
        home = work.join("home").display()
    );
    let group = format!("root:x:0:\nbuild:x:{gid}:\nnogroup:x:65534:\n");
    std::fs::write(work.join("etc-passwd"), passwd)?;
    std::fs::write(work.join("etc-group"), group)?;
    Ok(())
}

/// Gives `root` and everything below it (links themselves, never their targets) to `uid:gid`.
fn chown_tree(root: &Path, uid: u32, gid: u32) -> anyhow::Result<()> {
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        std::os::unix::fs::lchown(&path, Some(uid), Some(gid))
            .map_err(|e| anyhow::anyhow!("handing {} to the build user: {e}", path.display()))?;
        if std::fs::symlink_metadata(&path)?.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                stack.push(entry?.path());
            }
        }
    }
    Ok(())
}

/// The first `name` on the builder's `PATH`.
pub(crate) fn find_on_path(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The build's variables reach only the command's own shell, through a file; what starts
    /// the command (the root trampoline, bubblewrap) gets an empty environment.
    #[tokio::test]
    async fn variables_reach_only_the_command() {
        let work = tempfile::tempdir().expect("tempdir");
        let sandbox = Sandbox {
            kind: Kind::None,
            run_as: None,
            limits: None,
            read_only: Vec::new(),
        };
        let vars = std::collections::BTreeMap::from([
            ("LD_AUDIT".to_owned(), "./evil.so".to_owned()),
            ("QUOTED".to_owned(), "it's \"fine\" $HOME `x`".to_owned()),
        ]);
        let file = work.path().join(".scalemesh-env");
        let mut cmd = sandbox
            .build_command(
                r#"printf '%s|%s' "$LD_AUDIT" "$QUOTED""#,
                work.path(),
                &vars,
                &file,
            )
            .expect("command");
        assert_eq!(
            cmd.as_std().get_envs().count(),
            0,
            "nothing set on the starter"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).expect("file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let out = cmd.output().await.expect("runs");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "./evil.so|it's \"fine\" $HOME `x`"
        );
    }

    /// A folder added read-only is there, at its own path, also inside the work folder, and
    /// cannot be written to; the rest of the work folder can.
    #[tokio::test]
    async fn read_only_folders_are_read_only() {
        let bwrap = find_on_path("bwrap").expect("this test needs bubblewrap (bwrap) installed");
        let work = tempfile::tempdir().expect("tempdir");
        let kept = work.path().join("toolchains/node/22.3.0");
        std::fs::create_dir_all(&kept).expect("mkdir");
        std::fs::create_dir(work.path().join("tmp")).expect("mkdir");
        std::fs::write(kept.join("LICENSE"), "MIT").expect("write");
        let mut sandbox = Sandbox {
            kind: Kind::Bwrap {
                bwrap,
                work: work.path().to_path_buf(),
            },
            run_as: None,
            limits: None,
            read_only: Vec::new(),
        };
        sandbox.add_read_only(&kept);
        let script = format!(
            "cat {kept}/LICENSE && if touch {kept}/x 2>/dev/null; then echo wrote; fi; touch {work}/ok",
            kept = kept.display(),
            work = work.path().display()
        );
        let out = sandbox
            .shell_command(&script, work.path())
            .output()
            .await
            .expect("runs");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "MIT", "{out:?}");
        assert!(!kept.join("x").exists());
        assert!(work.path().join("ok").exists());
    }
}
