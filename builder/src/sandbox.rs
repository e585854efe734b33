//! Where build commands run. With bubblewrap, a build sees a read-only `/usr`, a few files of
//! `/etc`, its own work folder, fresh `/proc`, `/dev` and `/tmp`, in user and PID namespaces of
//! its own with no capabilities: not the server's data, not the builder's environment (which
//! holds the job token), and nothing it starts survives the sandbox. A builder running as root
//! runs the sandbox as `nobody`, so nothing inside counts as root on the host either. Without
//! bubblewrap, commands run as plain child processes (never as root unless asked).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use scalemesh_core::job::SandboxMode as SandboxSetting;
use tokio::process::Command;

#[derive(Debug, Clone)]
pub enum Sandbox {
    None,
    Bwrap {
        bwrap: PathBuf,
        work: PathBuf,
        /// The user and group to become before entering the sandbox, when the builder is root.
        run_as: Option<(u32, u32)>,
    },
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
    /// Chooses the sandbox for builds whose files live under `work`. Returns it and, when the
    /// choice deserves the user's attention, a line for the build log.
    pub async fn choose(
        setting: SandboxSetting,
        work: &Path,
    ) -> anyhow::Result<(Self, Option<String>)> {
        if setting == SandboxSetting::None {
            return Ok((
                Self::None,
                Some("Building without a sandbox (--sandbox none)".into()),
            ));
        }
        if let Some(bwrap) = find_on_path("bwrap") {
            let run_as = nix::unistd::geteuid().is_root().then_some(NOBODY);
            if let Some((uid, gid)) = run_as {
                // The build's user must own the work folder it builds in.
                chown_tree(work, uid, gid)?;
            }
            let candidate = Self::Bwrap {
                bwrap,
                work: work.to_path_buf(),
                run_as,
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
                Self::None,
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

    /// `sh -c <command>` in `cwd`, inside the sandbox.
    pub fn shell_command(&self, command: &str, cwd: &Path) -> Command {
        match self {
            Self::None => {
                let mut cmd = Command::new("/bin/sh");
                cmd.arg("-c").arg(command).current_dir(cwd);
                cmd
            }
            Self::Bwrap {
                bwrap,
                work,
                run_as,
            } => {
                let mut cmd = Command::new(bwrap);
                if let Some((uid, gid)) = run_as {
                    // Dropping root also drops its supplementary groups.
                    cmd.uid(*uid).gid(*gid);
                }
                cmd.args([
                    "--die-with-parent",
                    "--new-session",
                    "--unshare-user",
                    "--unshare-pid",
                    "--unshare-ipc",
                    "--unshare-uts",
                    "--unshare-cgroup-try",
                    "--cap-drop",
                    "ALL",
                ])
                .args(["--ro-bind", "/usr", "/usr"]);
                for dir in ["bin", "sbin", "lib", "lib32", "lib64", "libx32"] {
                    let root = Path::new("/").join(dir);
                    match std::fs::read_link(&root) {
                        // Merged /usr: /bin is a link to usr/bin.
                        Ok(target) => {
                            cmd.arg("--symlink").arg(target).arg(&root);
                        }
                        Err(_) if root.is_dir() => {
                            cmd.arg("--ro-bind").arg(&root).arg(&root);
                        }
                        Err(_) => {}
                    }
                }
                for path in ETC_FILES {
                    cmd.args(["--ro-bind-try", path, path]);
                }
                cmd.args(["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"])
                    .arg("--bind")
                    .arg(work)
                    .arg(work)
                    .arg("--chdir")
                    .arg(cwd)
                    .args(["--", "/bin/sh", "-c", command]);
                cmd
            }
        }
    }
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

fn find_on_path(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
