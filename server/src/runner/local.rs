//! Builds as child processes of the server: at most `max_running` at once, the rest queued,
//! owners taking turns (`fair.rs`). Each builder runs in its own process group with a scrubbed environment; stopping one
//! sends SIGTERM to the group (the builder then stops its build commands), and SIGKILL to the
//! group after a grace period.

use std::collections::HashMap;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use scalemesh_core::DeploymentId;
use scalemesh_core::job::{BuildJob, SandboxMode};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

use super::contract::{JobOutcome, Runner, RunnerError, RunnerEvent};
use super::fair::FairQueue;

/// How long a builder gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Beyond the job's own timeout (which the builder enforces itself and reports), how long the
/// runner waits before it stops the builder regardless.
const TIMEOUT_GRACE: Duration = Duration::from_secs(30);

pub struct LocalRunner {
    inner: Arc<Inner>,
}

/// How the local runner runs builds.
#[derive(Debug, Clone)]
pub struct LocalSettings {
    pub builder: PathBuf,
    pub max_running: usize,
    pub build_timeout: Duration,
    pub sandbox: SandboxMode,
    /// The first user id builds run as; each running build has its own.
    pub build_uid_base: u32,
    /// Where builds keep the Node.js versions they download, for later builds.
    pub toolchains: PathBuf,
}

struct Inner {
    builder: PathBuf,
    max_running: usize,
    hard_timeout: Duration,
    sandbox: SandboxMode,
    build_uid_base: u32,
    toolchains: PathBuf,
    events: mpsc::UnboundedSender<RunnerEvent>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    queue: FairQueue,
    /// Running jobs, their owners and user ids; the sender is taken when the job is asked to
    /// stop.
    running: HashMap<DeploymentId, Running>,
    shut_down: bool,
}

struct Running {
    owner: String,
    uid: u32,
    stop: Option<oneshot::Sender<()>>,
}

impl State {
    fn running_by_owner(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for running in self.running.values() {
            *counts.entry(running.owner.clone()).or_insert(0) += 1;
        }
        counts
    }

    /// A user id no running build has: the base, then the next ones.
    fn free_uid(&self, base: u32) -> u32 {
        (0..)
            .map(|i| base.saturating_add(i))
            .find(|uid| !self.running.values().any(|r| r.uid == *uid))
            .unwrap_or(base)
    }
}

impl LocalRunner {
    pub fn new(settings: LocalSettings, events: mpsc::UnboundedSender<RunnerEvent>) -> Self {
        Self {
            inner: Arc::new(Inner {
                builder: settings.builder,
                max_running: settings.max_running.max(1),
                hard_timeout: settings.build_timeout + TIMEOUT_GRACE,
                sandbox: settings.sandbox,
                build_uid_base: settings.build_uid_base,
                toolchains: settings.toolchains,
                events,
                state: Mutex::new(State::default()),
            }),
        }
    }
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        scalemesh_core::sync::lock(&self.state)
    }

    /// Starts queued jobs while there is room.
    fn pump(self: &Arc<Self>) {
        loop {
            let (job, stop_rx) = {
                let mut state = self.state();
                if state.shut_down || state.running.len() >= self.max_running {
                    return;
                }
                let running = state.running_by_owner();
                let Some(mut job) = state.queue.pop(&running) else {
                    return;
                };
                let uid = state.free_uid(self.build_uid_base);
                job.build_uid = Some(uid);
                job.toolchains = Some(self.toolchains.display().to_string());
                let (stop_tx, stop_rx) = oneshot::channel();
                state.running.insert(
                    job.deployment.clone(),
                    Running {
                        owner: job.owner.clone(),
                        uid,
                        stop: Some(stop_tx),
                    },
                );
                (job, stop_rx)
            };
            let id = job.deployment.clone();
            match self.spawn(&job) {
                Ok(child) => {
                    let inner = self.clone();
                    tokio::spawn(async move {
                        let outcome = inner.watch(&id, child, stop_rx).await;
                        inner.state().running.remove(&id);
                        let _ = inner.events.send(RunnerEvent::Ended {
                            deployment: id,
                            outcome,
                        });
                        inner.pump();
                    });
                }
                Err(e) => {
                    self.state().running.remove(&id);
                    remove_scratch(&id);
                    let reason = format!("could not start {}: {e}", self.builder.display());
                    let _ = self.events.send(RunnerEvent::Ended {
                        deployment: id,
                        outcome: JobOutcome::FailedToStart(reason),
                    });
                }
            }
        }
    }

    fn spawn(&self, job: &BuildJob) -> std::io::Result<Child> {
        // The builder's scratch space: removed after it, whatever way it ends.
        let scratch = scratch_dir(&job.deployment);
        // Others may pass through (the build's own user must, to its work folder), not look in.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(&scratch)?;
        let mut cmd = Command::new(&self.builder);
        cmd.env_clear()
            .envs(job.to_env())
            .env("TMPDIR", &scratch)
            .env("LANG", "C.UTF-8")
            .env(scalemesh_core::job::env::SANDBOX, self.sandbox.as_str())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0);
        // The builder needs git and Node.js from the PATH, and the AWS configuration chain
        // (AWS_* variables, ~/.aws) when storage is S3; nothing else of ours. Build commands
        // never see any of it.
        for (name, value) in std::env::vars_os() {
            let keep =
                name == "PATH" || name == "HOME" || name.to_string_lossy().starts_with("AWS_");
            if keep {
                cmd.env(name, value);
            }
        }
        let mut child = cmd.spawn()?;
        if let Some(stderr) = child.stderr.take() {
            let id = job.deployment.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    tracing::info!(deployment = %id, "builder: {line}");
                }
            });
        }
        Ok(child)
    }

    async fn watch(
        &self,
        id: &DeploymentId,
        mut child: Child,
        stop: oneshot::Receiver<()>,
    ) -> JobOutcome {
        let pgid = child
            .id()
            .and_then(|pid| i32::try_from(pid).ok())
            .map(Pid::from_raw);
        tracing::info!(deployment = %id, pid = ?pgid, "builder started");
        let outcome = tokio::select! {
            status = child.wait() => JobOutcome::Exited(match status {
                Ok(s) => describe(s),
                Err(e) => format!("could not be waited for: {e}"),
            }),
            _ = tokio::time::sleep(self.hard_timeout) => {
                terminate(pgid, &mut child).await;
                JobOutcome::TimedOut
            }
            _ = stop => {
                terminate(pgid, &mut child).await;
                JobOutcome::Stopped
            }
        };
        // Whatever the builder left behind in its group goes with it, and so do the control
        // groups it made, when it was stopped before it could remove them.
        if let Some(pgid) = pgid {
            let _ = killpg(pgid, Signal::SIGKILL);
        }
        remove_cgroups(id);
        remove_scratch(id);
        outcome
    }
}

/// Where a build's builder keeps its work folder (and its disk image).
fn scratch_dir(id: &DeploymentId) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("scalemesh-job-{id}"))
}

/// Unmounts anything mounted in the build's scratch space and removes it: a builder stopped
/// hard leaves its work folder (a mounted filesystem, as root) behind.
fn remove_scratch(id: &DeploymentId) {
    let scratch = scratch_dir(id);
    if let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") {
        for mountpoint in mounts.lines().filter_map(|l| l.split(' ').nth(1)) {
            if Path::new(mountpoint).starts_with(&scratch) {
                let _ = std::process::Command::new("umount")
                    .arg("-l")
                    .arg(mountpoint)
                    .status();
            }
        }
    }
    if let Err(e) = std::fs::remove_dir_all(&scratch)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %scratch.display(), error = %e, "could not remove a build's scratch space");
    }
}

async fn terminate(pgid: Option<Pid>, child: &mut Child) {
    let Some(pgid) = pgid.filter(|p| p.as_raw() > 1) else {
        let _ = child.kill().await;
        return;
    };
    let _ = killpg(pgid, Signal::SIGTERM);
    if tokio::time::timeout(STOP_GRACE, child.wait())
        .await
        .is_err()
    {
        let _ = killpg(pgid, Signal::SIGKILL);
        let _ = child.wait().await;
    }
}

/// Kills anything left in the build's control groups and removes them.
fn remove_cgroups(id: &DeploymentId) {
    for dir in scalemesh_core::job::cgroup_dirs(std::path::Path::new("/sys/fs/cgroup"), id.as_str())
    {
        if !dir.exists() {
            continue;
        }
        for _ in 0..20 {
            if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
                for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
            }
            if std::fs::remove_dir(&dir).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "ended".to_owned(),
    }
}

#[async_trait]
impl Runner for LocalRunner {
    async fn submit(&self, job: BuildJob) -> Result<Option<String>, RunnerError> {
        {
            let mut state = self.inner.state();
            if state.shut_down {
                return Err(RunnerError::ShuttingDown);
            }
            let known = state.running.contains_key(&job.deployment)
                || state.queue.contains(&job.deployment);
            if known {
                // One build per deployment, whoever asks twice.
                return Ok(None);
            }
            state.queue.push(job);
        }
        self.inner.pump();
        Ok(None)
    }

    async fn cancel(&self, deployment: &DeploymentId, _runner_ref: Option<&str>) {
        let mut state = self.inner.state();
        state.queue.remove(deployment);
        if let Some(stop) = state
            .running
            .get_mut(deployment)
            .and_then(|r| r.stop.take())
        {
            let _ = stop.send(());
        }
    }

    async fn shutdown(&self) {
        let stops: Vec<_> = {
            let mut state = self.inner.state();
            state.shut_down = true;
            state.queue.clear();
            state
                .running
                .values_mut()
                .filter_map(|r| r.stop.take())
                .collect()
        };
        for stop in stops {
            let _ = stop.send(());
        }
        // Wait for the builders to be gone: they run in their own process groups and would
        // outlive the server otherwise.
        let deadline = tokio::time::Instant::now() + STOP_GRACE + Duration::from_secs(2);
        while !self.inner.state().running.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
