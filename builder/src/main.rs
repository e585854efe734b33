//! `scalemesh-builder`: runs one build job, described by its environment (see
//! `scalemesh_core::job`), and reports the result to the API. The same binary runs as a child
//! of the server and as an ECS task.

use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use scalemesh_core::git::{GitRef, GitUrl};
use scalemesh_core::job::{BuildCacheSetting, BuildJob, BuildLimits, JobSource, env};
use scalemesh_core::netguard::AllowList;
use scalemesh_core::site_config::BuildSettings;
use scalemesh_core::storage::{self, StorageOptions, StorageUrl};
use scalemesh_core::wire::BuilderReport;
use scalemesh_core::{DeploymentId, ProjectName, duration};

use scalemesh_builder::report::{Api, LogSink, ReportError};
use scalemesh_builder::{exec, job};
use scalemesh_core::job::SandboxMode as SandboxSetting;

#[derive(Debug, Parser)]
#[command(
    name = "scalemesh-builder",
    version,
    about = "Run one Scale Mesh build job and report it"
)]
struct Args {
    #[arg(long, env = env::DEPLOYMENT_ID)]
    deployment: DeploymentId,
    #[arg(long, env = env::PROJECT)]
    project: ProjectName,
    /// Repository to clone (https, http or git).
    #[arg(long, env = env::GIT_URL, value_parser = |s: &str| GitUrl::parse(s))]
    git_url: Option<GitUrl>,
    /// Branch or tag to check out.
    #[arg(long, env = env::GIT_REF, value_parser = |s: &str| GitRef::parse(s))]
    git_ref: Option<GitRef>,
    /// Exactly this commit (its full name), reached from the ref.
    #[arg(long, env = env::GIT_COMMIT)]
    git_commit: Option<String>,
    /// Storage key of an uploaded source archive, instead of a repository.
    #[arg(long, env = env::SOURCE_ARCHIVE, conflicts_with = "git_url")]
    source_archive: Option<String>,
    #[arg(long, env = env::INSTALL_COMMAND)]
    install_command: Option<String>,
    #[arg(long, env = env::BUILD_COMMAND)]
    build_command: Option<String>,
    #[arg(long, env = env::OUTPUT_DIRECTORY)]
    output_directory: Option<String>,
    #[arg(long, env = env::ROOT_DIRECTORY)]
    root_directory: Option<String>,
    /// The preset to build with (`astro`), or `none`, instead of the detected one.
    #[arg(long, env = env::FRAMEWORK)]
    framework: Option<String>,
    /// The Node.js version the build needs, instead of the repository's.
    #[arg(long, env = env::NODE_VERSION)]
    node_version: Option<String>,
    /// The npm registry, or a mirror of it, to download Node.js from (https://registry.npmjs.org).
    #[arg(long, env = env::NODE_MIRROR)]
    node_mirror: Option<String>,
    /// A folder to keep downloaded Node.js versions in for later builds; without one, a
    /// download serves this build only.
    #[arg(long, env = env::TOOLCHAINS)]
    toolchains: Option<String>,
    /// The API to report to.
    #[arg(long, env = env::API_URL)]
    api_url: String,
    /// This job's token.
    #[arg(long, env = env::JOB_TOKEN, hide_env_values = true)]
    job_token: String,
    /// Where to upload: file:///path (a local folder) or s3://bucket/prefix.
    #[arg(long, env = env::STORAGE)]
    storage: String,
    /// An S3-compatible endpoint for s3:// storage, instead of AWS.
    #[arg(long, env = env::S3_ENDPOINT)]
    s3_endpoint: Option<String>,
    /// Repository hosts to fetch from although they are not public: host names, addresses or
    /// networks, comma-separated.
    #[arg(long, env = env::ALLOW_PRIVATE_GIT_HOSTS, default_value = "", value_parser = |s: &str| AllowList::parse(s))]
    allow_private_git_hosts: AllowList,
    /// Most memory the build's commands may use together, in bytes.
    #[arg(long, env = env::BUILD_MEMORY)]
    build_memory: Option<u64>,
    /// Most processes the build may run at once.
    #[arg(long, env = env::BUILD_PROCESSES)]
    build_processes: Option<u64>,
    /// Most disk the build's work folder and /tmp may use, in bytes.
    #[arg(long, env = env::BUILD_DISK)]
    build_disk: Option<u64>,
    /// The user id build commands run as, when the builder runs as root.
    #[arg(long, env = env::BUILD_UID)]
    build_uid: Option<u32>,
    /// How long the whole job may take.
    #[arg(long, env = env::BUILD_TIMEOUT, default_value = "15m", value_parser = duration::parse)]
    timeout: Duration,
    /// Where the build cache is kept: file:///folder (this machine's), or `storage` (the job's
    /// storage, under __cache/). Unset: no cache.
    #[arg(long, env = env::BUILD_CACHE)]
    build_cache: Option<String>,
    /// Most bytes a build cache folder keeps, across projects.
    #[arg(long, env = env::BUILD_CACHE_LIMIT)]
    build_cache_limit: Option<u64>,
    /// `false`: build without restoring the cache (a fresh one is still saved).
    #[arg(long, env = env::BUILD_CACHE_RESTORE, default_value_t = true, action = clap::ArgAction::Set)]
    build_cache_restore: bool,
    /// Where install and build commands run.
    #[arg(long, env = env::SANDBOX, default_value = "auto", value_parser = |s: &str| s.parse::<SandboxSetting>())]
    sandbox: SandboxSetting,
}

/// Exit codes: 0 the result was reported; 1 the job could not run or report; 3 the server had
/// already finished the deployment (canceled, timed out); 143 stopped by a signal.
#[tokio::main]
async fn main() {
    // The builder is also the door its build commands go through into their limits.
    let raw: Vec<String> = std::env::args().collect();
    if raw.get(1).map(String::as_str) == Some(scalemesh_builder::limits::TRAMPOLINE) {
        let err = scalemesh_builder::limits::trampoline(&raw[2..]);
        eprintln!("error: could not start the command within the build's limits: {err}");
        std::process::exit(126);
    }
    let args = Args::parse();
    let code = match run(args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    };
    std::process::exit(code);
}

async fn run(args: Args) -> anyhow::Result<i32> {
    // Listening for SIGTERM before anything else: a cancel that lands while the job is being
    // set up still stops it the orderly way (its control group and work folder removed).
    let stopped = stop_signal();
    tokio::pin!(stopped);
    // Processes a build script detaches from its group are reparented here, and killed.
    let _ = nix::sys::prctl::set_child_subreaper(true);
    // Build commands run as this user when there is no sandbox (in a container, say): they must
    // not read this process's environment (the job token, the task's credentials URI) or memory
    // through /proc. A non-dumpable process's /proc files belong to root.
    let _ = nix::sys::prctl::set_dumpable(false);
    let (job, sandbox) = job_from(args)?;
    let api = Api::new(&job.api_url, job.job_token.clone(), job.deployment.clone())?;
    let given = match api.build_env().await {
        Ok(env) => env,
        Err(ReportError::Finished(msg)) => {
            eprintln!("{msg}");
            return Ok(3);
        }
        Err(e) => return Err(anyhow::Error::from(e).context("fetching the build's variables")),
    };
    let log = LogSink::start(api.clone(), secrets_of(&job, &given));
    let scalemesh_core::wire::BuildEnv {
        env: build_env,
        git_credential,
    } = given;
    let options = StorageOptions {
        s3_endpoint: job.s3_endpoint.clone(),
    };
    let storage = storage::open(&StorageUrl::parse(&job.storage)?, &options).await?;
    let work = WorkFolder::create(job.limits.disk)?;
    let cx = job::JobContext {
        job: &job,
        api: &api,
        log: &log,
        storage,
        sandbox_setting: sandbox,
        work: work.dir.path(),
        build_env: &build_env,
        git_credential: git_credential.as_ref(),
        own_filesystem: work.disk.is_some(),
    };

    let timeout = Duration::from_secs(job.timeout_secs.max(1));
    let outcome = tokio::select! {
        result = tokio::time::timeout(timeout, job::run(&cx)) => match result {
            Ok(Ok(())) => BuilderReport::Ready,
            Ok(Err(e)) => BuilderReport::Failed { reason: reason_of(&e) },
            Err(_) => BuilderReport::Failed {
                reason: format!("the build timed out after {}", duration::display(timeout)),
            },
        },
        () = &mut stopped => {
            // The job future is dropped: its commands' process trees are killed with it.
            exec::sweep_strays().await;
            log.system("Build stopped");
            let _ = tokio::time::timeout(Duration::from_secs(5), log.flush()).await;
            return Ok(143);
        }
        () = parent_gone() => {
            // Whoever started this builder (a server killed hard) is gone: stop rather than run
            // on unsupervised.
            exec::sweep_strays().await;
            return Ok(143);
        }
    };
    exec::sweep_strays().await;
    if let Err(e) = log.flush().await {
        eprintln!("some log lines could not be delivered: {e}");
    }
    final_report(&api, &outcome).await
}

/// Tells the server how the build ended: the exit code.
async fn final_report(api: &Api, outcome: &BuilderReport) -> anyhow::Result<i32> {
    match api.report(outcome).await {
        Ok(()) => Ok(0),
        Err(ReportError::Finished(msg)) => {
            eprintln!("{msg}");
            Ok(3)
        }
        Err(e) => Err(e.into()),
    }
}

/// The build's work folder, closed to everyone else: as root, a filesystem of the build's
/// disk allowance.
struct WorkFolder {
    /// Declared first, so it is unmounted before the folder goes.
    disk: Option<scalemesh_builder::limits::DiskImage>,
    dir: tempfile::TempDir,
}

impl WorkFolder {
    fn create(disk: Option<u64>) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("scalemesh-build-")
            .tempdir()
            .context("creating the work folder")?;
        let disk = match disk {
            Some(bytes) if nix::unistd::geteuid().is_root() => {
                match scalemesh_builder::limits::DiskImage::mount(dir.path(), bytes) {
                    Ok(disk) => Some(disk),
                    Err(e) => {
                        eprintln!(
                            "the work folder is not a filesystem of its own ({e}); its disk use is watched instead"
                        );
                        None
                    }
                }
            }
            _ => None,
        };
        // Other users of the machine (and other builds) have no business in it.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .context("closing the work folder")?;
        Ok(Self { disk, dir })
    }
}

fn reason_of(e: &anyhow::Error) -> String {
    if let Some(ReportError::Finished(msg)) = e.downcast_ref::<ReportError>() {
        return msg.clone();
    }
    format!("{e:#}").chars().take(1000).collect()
}

fn job_from(args: Args) -> anyhow::Result<(BuildJob, SandboxSetting)> {
    let source = match (args.git_url, args.source_archive) {
        (Some(url), None) => JobSource::Git {
            url,
            git_ref: args.git_ref,
            commit: args.git_commit,
        },
        (None, Some(key)) => JobSource::Archive { key },
        _ => anyhow::bail!(
            "the job names no source: set {} or {}",
            env::GIT_URL,
            env::SOURCE_ARCHIVE
        ),
    };
    let settings = BuildSettings {
        install_command: args.install_command,
        build_command: args.build_command,
        output_directory: args.output_directory,
        root_directory: args.root_directory,
        framework: args.framework,
        node_version: args.node_version,
    };
    let job = BuildJob {
        deployment: args.deployment,
        project: args.project,
        source,
        settings,
        api_url: args.api_url,
        job_token: args.job_token,
        storage: args.storage,
        s3_endpoint: args.s3_endpoint,
        timeout_secs: args.timeout.as_secs(),
        allow_private_git_hosts: args.allow_private_git_hosts,
        owner: String::new(),
        limits: BuildLimits {
            memory: args.build_memory,
            processes: args.build_processes,
            disk: args.build_disk,
        },
        build_uid: args.build_uid,
        node_mirror: args.node_mirror,
        toolchains: args.toolchains,
        build_cache: args.build_cache.map(|location| BuildCacheSetting {
            location,
            limit: args.build_cache_limit,
            restore: args.build_cache_restore,
        }),
    };
    Ok((job, args.sandbox))
}

/// Strings never to show in the log: credentials in the repository URL, the deploy
/// credential, variable values.
fn secrets_of(job: &BuildJob, given: &scalemesh_core::wire::BuildEnv) -> Vec<String> {
    let mut secrets = vec![job.job_token.clone()];
    if let JobSource::Git { url, .. } = &job.source
        && let Ok(parsed) = url::Url::parse(url.as_str())
    {
        if let Some(pw) = parsed.password() {
            secrets.push(pw.to_owned());
        }
        if !parsed.username().is_empty() && parsed.password().is_none() {
            // A token given as the user name (https://<token>@host/…).
            secrets.push(parsed.username().to_owned());
        }
    }
    secrets.extend(given.env.values().flat_map(|v| masked_forms(v)));
    secrets.extend(
        given
            .git_credential
            .iter()
            .flat_map(|c| masked_forms(&c.password)),
    );
    secrets
}

/// What of a variable's value is masked in the log: the value, each of its lines (the log is
/// cut into lines before it is masked), and its JSON-escaped form, where 6 characters or more.
/// Masking is a safeguard against printing a value by mistake, not a barrier against a build
/// that means to show it.
fn masked_forms(value: &str) -> Vec<String> {
    let mut forms = vec![value.to_owned()];
    forms.extend(value.lines().map(|l| l.trim_end_matches('\r').to_owned()));
    if let Ok(json) = serde_json::to_string(value) {
        forms.push(json.trim_matches('"').to_owned());
    }
    forms.retain(|f| f.len() >= 6);
    forms.sort();
    forms.dedup();
    // The longest first, so a line inside a whole value does not break its match.
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    forms
}

/// Completes when this process is reparented, i.e. the process that started it has died. Never
/// completes when the builder was started by init (a container's entry point).
async fn parent_gone() {
    let parent = nix::unistd::getppid();
    if parent.as_raw() <= 1 {
        return std::future::pending().await;
    }
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if nix::unistd::getppid() != parent {
            return;
        }
    }
}

/// Completes on SIGTERM or SIGINT. The handlers are installed when this is called, not when it
/// is first awaited.
fn stop_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::masked_forms;

    #[test]
    fn multi_line_values_are_masked_line_by_line() {
        assert_eq!(masked_forms("short"), Vec::<String>::new());
        assert_eq!(masked_forms("hunter22"), ["hunter22"]);
        let pem = "-----BEGIN KEY-----\r\nAAAABBBBCCCC\nxyz\n-----END KEY-----";
        let forms = masked_forms(pem);
        for part in [
            "-----BEGIN KEY-----",
            "AAAABBBBCCCC",
            "-----END KEY-----",
            pem,
        ] {
            assert!(forms.iter().any(|f| f == part), "{part:?} in {forms:?}");
        }
        assert!(!forms.iter().any(|f| f == "xyz"), "too short to mask");
        assert!(
            forms.iter().any(|f| f.contains("\\n")),
            "the JSON form: {forms:?}"
        );
        assert!(forms.windows(2).all(|w| w[0].len() >= w[1].len()));
    }

    #[test]
    fn log_lines_are_masked_with_the_job_token_and_each_form() {
        use scalemesh_builder::report::mask;
        let token = "smj_0123456789abcdef".to_owned();
        let mut secrets = vec![token.clone()];
        secrets.extend(masked_forms("line-one-secret\nline-two-secret"));
        secrets.extend(masked_forms("short"));
        for (line, want) in [
            (format!("token {token} here"), "token *** here"),
            ("first: line-one-secret".to_owned(), "first: ***"),
            ("second: line-two-secret".to_owned(), "second: ***"),
            // As JSON prints it, the newline escaped.
            (
                r#"{"v":"line-one-secret\nline-two-secret"}"#.to_owned(),
                r#"{"v":"***"}"#,
            ),
            // Values under 6 characters are not masked: they would hide ordinary words.
            ("a short word".to_owned(), "a short word"),
        ] {
            assert_eq!(mask(&line, &secrets), want, "{line}");
        }
    }
}
