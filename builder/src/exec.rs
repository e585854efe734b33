//! Running install and build commands: `sh -c <command>` with a scrubbed environment, in its own
//! process group (inside the sandbox when there is one), every output line streamed as it comes.
//! However a command ends — exit, timeout, cancel — its whole process tree goes with it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use scalemesh_core::wire::LogStream;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;

use crate::report::LogSink;
use crate::sandbox::Sandbox;

/// Lines longer than this are split; the server stores no longer line.
const MAX_LINE: usize = scalemesh_core::wire::MAX_LOG_LINE_BYTES;

/// The whole environment a build command sees.
#[derive(Debug, Clone)]
pub struct BuildEnv {
    vars: BTreeMap<String, String>,
    /// Where commands read it from: a file of the work folder.
    file: PathBuf,
}

impl BuildEnv {
    /// A minimal environment (PATH, HOME, TMPDIR, LANG, CI) plus the project's own variables.
    pub fn new(work: &Path, project_vars: &BTreeMap<String, String>) -> Self {
        let mut vars = BTreeMap::new();
        let path =
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".to_owned());
        vars.insert("PATH".to_owned(), path);
        vars.insert("HOME".to_owned(), work.join("home").display().to_string());
        vars.insert("TMPDIR".to_owned(), work.join("tmp").display().to_string());
        vars.insert("LANG".to_owned(), "C.UTF-8".to_owned());
        vars.insert("CI".to_owned(), "1".to_owned());
        // Quieter, offline-friendly npm: no audit or funding calls, no update check.
        vars.insert("npm_config_audit".to_owned(), "false".to_owned());
        vars.insert("npm_config_fund".to_owned(), "false".to_owned());
        vars.insert("npm_config_update_notifier".to_owned(), "false".to_owned());
        for (k, v) in project_vars {
            vars.insert(k.clone(), v.clone());
        }
        Self {
            vars,
            file: work.join(".scalemesh-env"),
        }
    }

    /// Puts `dir` first on `PATH`, so its programs win over the machine's.
    pub fn prepend_path(&mut self, dir: &Path) {
        let rest = self.vars.get("PATH").cloned().unwrap_or_default();
        let path = match rest.as_str() {
            "" => dir.display().to_string(),
            rest => format!("{}:{rest}", dir.display()),
        };
        self.vars.insert("PATH".to_owned(), path);
    }

    pub fn vars(&self) -> &BTreeMap<String, String> {
        &self.vars
    }

    /// Adds variables a build plan needs (the project's own of the same name win), and puts
    /// `dirs` first on PATH.
    pub fn extend(&mut self, vars: &[(String, String)], dirs: &[PathBuf]) {
        for (k, v) in vars {
            self.vars.entry(k.clone()).or_insert_with(|| v.clone());
        }
        if !dirs.is_empty() {
            let mut path: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            path.extend(self.vars.get("PATH").cloned());
            self.vars.insert("PATH".to_owned(), path.join(":"));
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("could not start `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({how})")]
    Failed { command: String, how: String },
}

/// Kills a process group when dropped: the command's tree never outlives its run, also when the
/// run is abandoned (timeout, cancel).
struct GroupGuard(Option<Pid>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0.filter(|p| p.as_raw() > 1) {
            // Descendants first (some may have left the group), then the group.
            for descendant in descendants(pid) {
                let _ = kill(descendant, Signal::SIGKILL);
            }
            let _ = killpg(pid, Signal::SIGKILL);
        }
        kill_strays();
    }
}

/// Runs `command` in `cwd`, streaming its output to `log`.
pub async fn run(
    command: &str,
    cwd: &Path,
    env: &BuildEnv,
    sandbox: &Sandbox,
    log: &LogSink,
) -> Result<(), ExecError> {
    let mut cmd: Command = sandbox
        .build_command(command, cwd, env.vars(), &env.file)
        .map_err(|e| ExecError::Spawn {
            command: command.to_owned(),
            source: std::io::Error::other(e.to_string()),
        })?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    STARTED_COMMANDS.store(true, Ordering::Relaxed);
    let mut child = cmd.spawn().map_err(|source| ExecError::Spawn {
        command: command.to_owned(),
        source,
    })?;
    let guard = GroupGuard(
        child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw),
    );
    let out = child
        .stdout
        .take()
        .map(|s| tokio::spawn(stream_lines(s, LogStream::Stdout, log.clone())));
    let err = child
        .stderr
        .take()
        .map(|s| tokio::spawn(stream_lines(s, LogStream::Stderr, log.clone())));
    let status = child.wait().await;
    // The command is done; whatever it left running in its group or anywhere below goes too.
    drop(guard);
    for reader in [out, err].into_iter().flatten() {
        // A process that escaped the group may still hold the pipe open: do not wait for it.
        let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
    }
    let status = status.map_err(|source| ExecError::Spawn {
        command: command.to_owned(),
        source,
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(ExecError::Failed {
            command: command.to_owned(),
            how: describe(status),
        })
    }
}

fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "no exit status".to_owned(),
    }
}

/// Reads lines (lossy UTF-8, split at `MAX_LINE`) and sends them to the log as they come.
async fn stream_lines(reader: impl AsyncRead + Unpin, stream: LogStream, log: LogSink) {
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let mut line: Vec<u8> = Vec::new();
    loop {
        let buf = match reader.fill_buf().await {
            Ok([]) | Err(_) => break,
            Ok(buf) => buf,
        };
        let (take, complete) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        line.extend_from_slice(&buf[..take]);
        reader.consume(take);
        if complete || line.len() >= MAX_LINE {
            emit(&mut line, stream, &log).await;
        }
    }
    if !line.is_empty() {
        emit(&mut line, stream, &log).await;
    }
}

async fn emit(line: &mut Vec<u8>, stream: LogStream, log: &LogSink) {
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    log.line_waiting(stream, &String::from_utf8_lossy(line))
        .await;
    line.clear();
}

/// `(pid, ppid, zombie)` of every process.
fn process_table() -> Vec<(i32, i32, bool)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<i32>().ok()?;
            let stat_path: PathBuf = entry.path().join("stat");
            let stat = std::fs::read_to_string(stat_path).ok()?;
            // Format: `pid (comm) state ppid …`; comm may hold spaces and parentheses.
            let after = &stat[stat.rfind(')')? + 1..];
            let mut fields = after.split_whitespace();
            let zombie = fields.next()? == "Z";
            let ppid = fields.next()?.parse().ok()?;
            Some((pid, ppid, zombie))
        })
        .collect()
}

/// Every live process below `root`.
fn descendants(root: Pid) -> Vec<Pid> {
    let table = process_table();
    let mut found = Vec::new();
    let mut frontier = vec![root.as_raw()];
    while let Some(parent) = frontier.pop() {
        for (pid, ppid, zombie) in &table {
            if *ppid == parent && !found.contains(&Pid::from_raw(*pid)) {
                frontier.push(*pid);
                if !zombie {
                    found.push(Pid::from_raw(*pid));
                }
            }
        }
    }
    found
}

/// Kills every process that was reparented to this builder (it is a child subreaper), such as a
/// daemon a build script started with `setsid` to escape its process group. Returns how many.
pub fn kill_strays() -> usize {
    let me = i32::try_from(std::process::id()).unwrap_or(0);
    let strays: Vec<_> = process_table()
        .into_iter()
        .filter(|(_, ppid, zombie)| *ppid == me && !zombie)
        .map(|(pid, _, _)| Pid::from_raw(pid))
        .collect();
    for pid in &strays {
        let _ = kill(*pid, Signal::SIGKILL);
    }
    strays.len()
}

/// Whether any build command was started, so there may be strays to sweep.
static STARTED_COMMANDS: AtomicBool = AtomicBool::new(false);

/// Sweeps strays until none are left: processes orphaned by the last kills are reparented here
/// as their parents die.
pub async fn sweep_strays() {
    if !STARTED_COMMANDS.load(Ordering::Relaxed) {
        return;
    }
    kill_strays();
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if kill_strays() == 0 {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_goes_first_on_path() {
        let mut env = BuildEnv::new(Path::new("/w"), &BTreeMap::new());
        let before = env.vars()["PATH"].clone();
        env.prepend_path(Path::new("/store/node/22.3.0/bin"));
        assert_eq!(
            env.vars()["PATH"],
            format!("/store/node/22.3.0/bin:{before}")
        );
    }
}
