//! One build, start to finish: fetch, detect, install, build, upload. Returns the reason it
//! failed, for the report; everything else goes to the log as it happens.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use scalemesh_core::Phase;
use scalemesh_core::job::{BuildJob, JobSource};
use scalemesh_core::rules::Routing;
use scalemesh_core::site_config::{BuildSettings, SITE_CONFIG_FILE};
use scalemesh_core::storage::Storage;
use scalemesh_core::wire::{BuilderReport, Progress};
use scalemesh_core::words::{human_bytes, plural};

use crate::cache::{self, BuildCache, Roots};
use crate::detect;
use crate::exec::{self, BuildEnv};
use crate::limits::{Enforcer, Limits};
use crate::report::{Api, LogSink};
use crate::sandbox::Sandbox;
use crate::source::{self, UnpackLimits};
use crate::toolchain::{self, node::Toolchains};
use crate::upload::{self, UploadLimits};

pub struct JobContext<'a> {
    pub job: &'a BuildJob,
    pub api: &'a Api,
    pub log: &'a LogSink,
    pub storage: Arc<dyn Storage>,
    pub sandbox_setting: scalemesh_core::job::SandboxMode,
    pub work: &'a Path,
    /// The project's variables for this build, fetched from the API.
    pub build_env: &'a BTreeMap<String, String>,
    /// The project's deploy credential, for its repository.
    pub git_credential: Option<&'a scalemesh_core::git_remote::GitCredential>,
    /// The work folder is a filesystem of the build's disk allowance.
    pub own_filesystem: bool,
}

/// Runs the job. `Err` carries the reason the build failed, said for the user.
pub async fn run(cx: &JobContext<'_>) -> anyhow::Result<()> {
    let started = Instant::now();
    let src = cx.work.join("src");
    let home = cx.work.join("home");
    std::fs::create_dir_all(&home)?;
    std::fs::create_dir_all(cx.work.join("tmp"))?;
    let (enforcer, mut sandbox) = fetch_source(cx, &src, &home).await?;

    let (settings, config_routing) = effective_settings(&cx.job.settings, &src)?;
    let root = app_root(&settings, &src, cx.log)?;
    let plan = detect::plan(&root, &settings)?;
    cx.log.system(plan.detected());
    for note in &plan.notes {
        cx.log.system(note);
    }
    if plan.setup.is_some() || plan.install.is_some() || plan.build.is_some() {
        run_plan(cx, &plan, &settings, &root, &home, &enforcer, &mut sandbox).await?;
    }

    let output = detect::output_folder(&root, &plan).map_err(anyhow::Error::msg)?;
    let (files, routing) = collect_output(cx.log, &root, &src, &output, config_routing).await?;
    upload_output(cx, files, routing, &output, started).await
}

/// Fetches the source into `src` as the build's user, within its limits, in its sandbox;
/// returns those limits and that sandbox for the build's commands.
async fn fetch_source(
    cx: &JobContext<'_>,
    src: &Path,
    home: &Path,
) -> anyhow::Result<(Arc<Enforcer>, Sandbox)> {
    let job = cx.job;
    let limits = Limits {
        memory: job.limits.memory,
        processes: job.limits.processes,
        disk: job.limits.disk,
    };
    let (enforcer, limits_note) =
        Enforcer::create(job.deployment.as_str(), limits, cx.own_filesystem);
    let (sandbox, sandbox_note) = Sandbox::choose(
        cx.sandbox_setting,
        cx.work,
        job.build_uid,
        Some(enforcer.clone()),
    )
    .await?;

    phase(cx, Phase::Fetching, None).await?;
    let (fetched, commit) = match &job.source {
        JobSource::Git {
            url,
            git_ref,
            commit,
        } => {
            let checkout = source::git::Checkout {
                url,
                git_ref: git_ref.as_ref(),
                commit: commit.as_deref(),
                credential: cx.git_credential,
            };
            let clone = source::clone(
                checkout,
                src,
                home,
                &job.allow_private_git_hosts,
                &sandbox,
                cx.log,
            );
            match enforcer.watching(cx.work, clone).await {
                Some(Ok(commit)) => (Some(Ok(())), commit),
                Some(Err(e)) => (Some(Err(e)), None),
                None => (None, None),
            }
        }
        JobSource::Archive { key } => {
            fetch_archive(cx.storage.as_ref(), key, src, cx.work, cx.log).await?;
            (Some(sandbox.hand_over(src)), None)
        }
    };
    judged("fetching the source", fetched, &enforcer, cx.work)?;
    if let Some(commit) = commit {
        // Shown beside the deployment; a build does not fail for not telling it.
        let _ = cx.api.report(&BuilderReport::Commit(commit)).await;
    }
    cx.log.system(limits_note);
    if let Some(note) = sandbox_note {
        cx.log.system(note);
    }
    Ok((enforcer, sandbox))
}

/// What a step that ran within the build's limits came to: its own error, or the limit that
/// stopped it (measured after the step too: a fast writer can fill the folder between checks).
fn judged(
    what: &str,
    ran: Option<anyhow::Result<()>>,
    enforcer: &Enforcer,
    work: &Path,
) -> anyhow::Result<()> {
    let failed = !matches!(ran, Some(Ok(())));
    match (ran, enforcer.verdict(work, failed)) {
        (_, Some(verdict)) => anyhow::bail!("{what} was stopped: {verdict}"),
        (Some(Ok(())), None) => Ok(()),
        (Some(Err(e)), None) => Err(e),
        (None, None) => anyhow::bail!("{what} was stopped"),
    }
}

/// The app's folder: the repository's root, or the root directory the settings name.
fn app_root(settings: &BuildSettings, src: &Path, log: &LogSink) -> anyhow::Result<PathBuf> {
    let Some(dir) = &settings.root_directory else {
        return Ok(src.to_path_buf());
    };
    let root = src.join(dir);
    if !root.is_dir() {
        anyhow::bail!("the root directory {dir:?} does not exist in the repository");
    }
    ensure_inside(&root, src, "root directory")?;
    log.system(format!("Root directory: {dir}"));
    Ok(root)
}

/// The files of the output folder to upload, checked to be a site, and the routing rules
/// they and `scalemesh.json` carry.
async fn collect_output(
    log: &LogSink,
    root: &Path,
    src: &Path,
    output: &str,
    config_routing: Routing,
) -> anyhow::Result<(Vec<upload::OutputFile>, Routing)> {
    let output_dir = root.join(output);
    ensure_inside(&output_dir, src, "output folder")?;
    let checked = {
        let (root, output) = (root.to_path_buf(), output.to_owned());
        tokio::task::spawn_blocking(move || detect::check_output(&root, &output))
            .await
            .context("checking task failed")?
    };
    for warning in checked.map_err(anyhow::Error::msg)? {
        log.system(warning);
    }
    let (mut files, skipped) =
        tokio::task::spawn_blocking(move || upload::collect(&output_dir, UploadLimits::default()))
            .await
            .context("listing task failed")??;
    for line in skipped {
        log.system(line);
    }
    let routing = upload::take_routing(&mut files, config_routing)?;
    if !routing.redirects.is_empty() || !routing.headers.is_empty() {
        log.system(format!(
            "Routing rules: {}, {}",
            plural(routing.redirects.len() as u64, "redirect"),
            plural(routing.headers.len() as u64, "header rule")
        ));
    }
    if files.is_empty() {
        anyhow::bail!("the output folder {output:?} has no files to deploy");
    }
    Ok((files, routing))
}

/// Uploads the output and its manifest, reporting progress; what a failed upload stored goes.
async fn upload_output(
    cx: &JobContext<'_>,
    files: Vec<upload::OutputFile>,
    routing: Routing,
    output: &str,
    started: Instant,
) -> anyhow::Result<()> {
    let (job, log) = (cx.job, cx.log);
    let total = files.len() as u64;
    let bytes: u64 = files.iter().map(|f| f.size).sum();
    let from = if output == "." {
        "the app's root folder"
    } else {
        output
    };
    phase(cx, Phase::Uploading, Some(Progress { done: 0, total })).await?;
    log.system(format!(
        "Uploading {} ({}) from {from}",
        plural(total, "file"),
        human_bytes(bytes)
    ));
    let upload_started = Instant::now();
    let reporter = ProgressReporter::new(cx.api.clone());
    let sink = upload::StorageSink {
        storage: cx.storage.clone(),
        project: &job.project,
        deployment: &job.deployment,
        api: Some(cx.api),
    };
    let progress = |p: scalemesh_core::upload::Progress| reporter.update(p.files, p.files_total);
    let uploaded = scalemesh_core::upload::upload(
        &sink,
        &job.project,
        &job.deployment,
        files,
        routing,
        &progress,
    )
    .await;
    reporter.finish();
    let uploaded = match uploaded {
        Ok(uploaded) => uploaded,
        Err(e) => {
            // What only this upload used is of no use now, and may be what filled the disk: it
            // goes, so the failure itself can be recorded.
            let removed = upload::remove(cx.storage.as_ref(), &job.project, &job.deployment).await
                + usize::try_from(cx.api.abandon_blobs().await.unwrap_or(0)).unwrap_or(0);
            if removed > 0 {
                log.system(format!(
                    "Removed the {} this upload had stored",
                    plural(removed as u64, "file")
                ));
            }
            return Err(e);
        }
    };
    log.system(format!(
        "Uploaded {} ({}) in {:.1}s, {} already stored; build took {:.1}s",
        plural(uploaded.sent as u64, "new file"),
        human_bytes(uploaded.sent_bytes),
        upload_started.elapsed().as_secs_f64(),
        uploaded.reused,
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// Runs the plan's setup, install and build commands, each within the build's limits.
async fn run_plan(
    cx: &JobContext<'_>,
    plan: &detect::Plan,
    settings: &BuildSettings,
    root: &Path,
    home: &Path,
    enforcer: &Enforcer,
    sandbox: &mut Sandbox,
) -> anyhow::Result<()> {
    let log = cx.log;
    let mut env = plan_env(cx, plan, root, home);
    let node =
        if matches!(plan.runtime, detect::Runtime::Node(_)) || settings.node_version.is_some() {
            use_node(cx, root, settings, &mut env, sandbox).await?
        } else {
            None
        };
    let sandbox = &*sandbox;
    let say = |line: String| log.system(line);
    let cache = BuildCache::open(cx.job, cx.storage.clone(), cx.work, &say);
    let cached = cache::Entry::of(plan, root, node.as_deref());
    let roots = Roots { app: root, home };
    let session = cache
        .restore(&cached.parts, &cached.dirs, roots, sandbox)
        .await;
    let install = install_command(plan, &session, log);
    let steps = [
        ("setup", &plan.setup, Phase::Installing),
        ("install", &install, Phase::Installing),
        ("build", &plan.build, Phase::Building),
    ];
    let mut reported = None;
    for (name, cmd, step_phase) in steps {
        let Some(cmd) = cmd else { continue };
        if reported != Some(step_phase) {
            phase(cx, step_phase, None).await?;
            reported = Some(step_phase);
        }
        let ran = enforcer
            .watching(cx.work, run_step(name, cmd, root, &env, sandbox, log))
            .await;
        judged(&format!("the {name} command"), ran, enforcer, cx.work)?;
    }
    cache.save(&session, &cached.dirs, roots).await;
    Ok(())
}

/// The environment the plan's commands see: the project's variables, the plan's own and its
/// folders first on PATH.
fn plan_env(cx: &JobContext<'_>, plan: &detect::Plan, root: &Path, home: &Path) -> BuildEnv {
    let mut env = BuildEnv::new(cx.work, cx.build_env);
    let path: Vec<PathBuf> = plan.path.iter().map(|p| p.resolve(root, home)).collect();
    env.extend(&plan.env, &path);
    // Node.js binaries and the tools that bring their own HTTP client (Yarn 2+) trust their own
    // list of certificate authorities; the machine's (which may hold a company's own) counts too.
    if Path::new(SYSTEM_CA_BUNDLE).is_file() {
        let trust = [(
            "NODE_EXTRA_CA_CERTS".to_owned(),
            SYSTEM_CA_BUNDLE.to_owned(),
        )];
        env.extend(&trust, &[]);
    }
    env
}

/// The plan's install command, as it runs over what the cache restored.
fn install_command(plan: &detect::Plan, session: &cache::Session, log: &LogSink) -> Option<String> {
    let planned = plan.install.as_deref()?;
    let install = cache::install_over_cache(planned, session.restored_in_app("node_modules"));
    if install != planned {
        log.system(format!(
            "node_modules was restored for this lockfile: running {install} instead of {planned}, which would remove it"
        ));
    }
    Some(install.to_owned())
}

/// Reports a new phase once the log lines before it are delivered, so followers see them in
/// the order they happened.
async fn phase(
    cx: &JobContext<'_>,
    phase: Phase,
    progress: Option<Progress>,
) -> anyhow::Result<()> {
    let _ = cx.log.flush().await;
    cx.api.phase(phase, progress).await?;
    Ok(())
}

async fn run_step(
    what: &str,
    cmd: &str,
    root: &Path,
    env: &BuildEnv,
    sandbox: &Sandbox,
    log: &LogSink,
) -> anyhow::Result<()> {
    log.system(format!("Running {what} command: {cmd}"));
    let started = Instant::now();
    exec::run(cmd, root, env, sandbox, log).await?;
    log.system(format!(
        "{} finished in {:.1}s",
        capitalize(what),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// Finds or installs the Node.js the app asks for (when it is a Node.js app or asks for one),
/// puts it first on the build's `PATH` and lets the sandbox read it.
/// The machine's certificate authorities, where Debian and Ubuntu keep them.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

async fn use_node(
    cx: &JobContext<'_>,
    root: &Path,
    settings: &BuildSettings,
    env: &mut BuildEnv,
    sandbox: &mut Sandbox,
) -> anyhow::Result<Option<String>> {
    let mirror = cx.job.node_mirror.as_deref();
    let toolchains = match &cx.job.toolchains {
        Some(store) => Toolchains::new(PathBuf::from(store), true, mirror),
        None => Toolchains::new(cx.work.join("toolchains"), false, mirror),
    };
    let say = |line: String| cx.log.system(line);
    let wanted = settings.node_version.as_deref();
    let Some(node) = toolchain::node::prepare(root, wanted, &toolchains, &say).await? else {
        return Ok(None);
    };
    let other_user = nix::unistd::geteuid().is_root();
    let node = node.within_reach(cx.work, other_user)?;
    cx.log.system(node.describe());
    if let (Some(bin), Some(folder)) = (node.path_entry(), &node.folder) {
        env.prepend_path(bin);
        sandbox.add_read_only(folder);
    }
    Ok(Some(node.version.to_string()))
}

/// The project's settings overlaid with the repository's `scalemesh.json`, which wins.
/// Its routing rules come along.
fn effective_settings(
    project: &BuildSettings,
    src: &Path,
) -> anyhow::Result<(BuildSettings, Routing)> {
    match source::read_config_file(src, SITE_CONFIG_FILE)? {
        Some(raw) => {
            let (file, routing) = BuildSettings::from_json(&raw)?;
            Ok((project.overlaid_with(&file), routing))
        }
        None => {
            project.validate()?;
            Ok((project.clone(), Routing::default()))
        }
    }
}

async fn fetch_archive(
    storage: &dyn Storage,
    key: &str,
    dest: &Path,
    work: &Path,
    log: &LogSink,
) -> anyhow::Result<()> {
    log.system("Unpacking the uploaded source");
    let started = Instant::now();
    let archive_path = work.join("source.tar.gz");
    {
        use futures_util::StreamExt;
        use tokio::io::AsyncWriteExt;
        let mut object = storage
            .get(key)
            .await
            .context("reading the uploaded source")?;
        let mut file = tokio::fs::File::create(&archive_path).await?;
        while let Some(chunk) = object.body.next().await {
            file.write_all(&chunk?).await?;
        }
        file.flush().await?;
    }
    let dest_owned: PathBuf = dest.to_path_buf();
    let entries = tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&archive_path)?;
        let unpacked = source::unpack(
            std::io::BufReader::new(file),
            &dest_owned,
            UnpackLimits::default(),
        );
        // The archive is done with: it does not count against the build's disk.
        let _ = std::fs::remove_file(&archive_path);
        unpacked
    })
    .await
    .context("unpacking task failed")??;
    log.system(format!(
        "Unpacked {} in {:.1}s",
        plural(entries as u64, "entry"),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// `dir` must resolve inside `src`: a root or output folder cannot be a link out of the
/// repository.
fn ensure_inside(dir: &Path, src: &Path, what: &str) -> anyhow::Result<()> {
    let real = dir
        .canonicalize()
        .with_context(|| format!("resolving the {what}"))?;
    let src = src.canonicalize()?;
    if !real.starts_with(&src) {
        anyhow::bail!("the {what} resolves outside the repository");
    }
    Ok(())
}

/// Sends upload progress to the server at most ten times a second, never blocking the upload.
struct ProgressReporter {
    tx: tokio::sync::watch::Sender<(u64, u64)>,
    task: tokio::task::JoinHandle<()>,
}

impl ProgressReporter {
    fn new(api: Api) -> Self {
        let (tx, mut rx) = tokio::sync::watch::channel((0u64, 0u64));
        let task = tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let (done, total) = *rx.borrow_and_update();
                let _ = api
                    .phase(Phase::Uploading, Some(Progress { done, total }))
                    .await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Self { tx, task }
    }

    fn update(&self, done: u64, total: u64) {
        let _ = self.tx.send((done, total));
    }

    /// Stops reporting: the result report that follows says the rest.
    fn finish(self) {
        self.task.abort();
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}
