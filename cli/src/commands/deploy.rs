//! `scalemesh deploy [source]`: create the project if needed, start a deployment from a git URL
//! or an uploaded folder, show it building, print its URL.

use std::path::{Path, PathBuf};
use std::time::Duration;

use scalemesh_core::git::{GitRef, GitUrl};
use scalemesh_core::wire::{CreateDeployment, CreateProject, Deployment, Project};
use scalemesh_core::words::{human_bytes, plural};
use scalemesh_core::{DeploymentStatus, ProjectName};

use crate::args::DeployArgs;
use crate::client::{Client, ClientError, DeployFlags, IdempotencyKey};
use crate::display::DeployView;
use crate::error::CliError;
use crate::escape::sanitize;
use crate::follow::{self, Event};
use crate::pack;

enum Source {
    Git(GitUrl),
    Folder(PathBuf),
}

/// Where in a repository to build: a branch or tag, and exactly a commit.
struct GitTarget {
    git_ref: Option<GitRef>,
    commit: Option<String>,
}

/// `--ref` and `--commit`, checked, and only for a git source.
fn git_target(args: &DeployArgs, source: &Source) -> anyhow::Result<GitTarget> {
    let git_ref = args
        .git_ref
        .as_deref()
        .map(|r| {
            GitRef::parse(r).map_err(|e| {
                CliError::new(e.to_string()).hint("give a branch or tag name, e.g. --ref main")
            })
        })
        .transpose()?;
    let commit = args.commit.as_deref().map(str::to_ascii_lowercase);
    if let Some(sha) = &commit
        && !scalemesh_core::commit::is_full_sha(sha)
    {
        return Err(
            CliError::new(format!("{sha:.80} is not a commit's full name"))
                .hint("give all 40 hex digits, as `git rev-parse HEAD` prints them")
                .into(),
        );
    }
    if (git_ref.is_some() || commit.is_some()) && matches!(source, Source::Folder(_)) {
        return Err(
            CliError::new("--ref and --commit only apply to git sources")
                .hint("deploy a git URL, or leave them out")
                .into(),
        );
    }
    Ok(GitTarget { git_ref, commit })
}

pub async fn run(client: &Client, args: DeployArgs) -> anyhow::Result<i32> {
    let source = classify(args.source.as_deref().unwrap_or("."))?;
    let target = git_target(&args, &source)?;
    // A folder deployed before knows its project.
    let link = match &source {
        Source::Folder(dir) => crate::linked::at(dir, &client.display_url()),
        Source::Git(_) => None,
    };
    let explicit = args
        .project
        .clone()
        .or_else(|| link.as_ref().map(|l| l.project.clone()));
    let name = project_name(explicit.as_deref(), &source)?;
    let flags = DeployFlags {
        promote: !args.preview,
        no_cache: args.no_cache,
    };
    let view = DeployView::new();

    if args.prebuilt {
        let Source::Folder(dir) = &source else {
            return Err(
                CliError::new("--prebuilt deploys a folder as it is, not a repository")
                    .hint(
                        "give the folder your build wrote, e.g. scalemesh deploy ./dist --prebuilt",
                    )
                    .into(),
            );
        };
        return prebuilt(client, view, &args, dir, &name, flags).await;
    }
    let packed = packed_folder(&source).await?;
    let (project, created) = ensure_project(client, &name, &source).await?;
    // One key for this deploy: a retried request answers the deployment the first one made.
    let key = IdempotencyKey::random();
    let project_name = project.name.as_str();
    let started = start_deployment(
        client,
        &view,
        &source,
        packed,
        target,
        flags,
        project_name,
        &key,
    )
    .await;
    let deployment = match started {
        Ok(deployment) => deployment,
        Err(e) => return Err(refused(client, project_name, created, e).await),
    };
    view.note(&format!(
        "Deploying {} (deployment {})",
        project.name, deployment.id
    ));
    if let Source::Folder(dir) = &source {
        link_folder(client, &view, dir, link.as_ref(), &project);
    }
    if args.no_wait {
        view.finish();
        print_result(&deployment, args.json, &deployment.url)?;
        return Ok(0);
    }
    follow_build(client, view, &deployment, &project, &args).await
}

/// A folder checked and packed before anything exists on the server: a mistake there changes
/// nothing. `None` for a repository.
async fn packed_folder(source: &Source) -> anyhow::Result<Option<pack::Packed>> {
    let Source::Folder(dir) = source else {
        return Ok(None);
    };
    check_site_config(dir)?;
    let dir = dir.clone();
    let packed = tokio::task::spawn_blocking(move || pack::pack(&dir)).await??;
    Ok(Some(packed))
}

/// The error for a deployment the server did not start. A project made for this deploy alone
/// does not outlive its refusal; only a refusal: after a timeout the server may have taken the
/// deployment after all.
async fn refused(client: &Client, project: &str, created: bool, e: ClientError) -> anyhow::Error {
    let refused = e.status().is_some_and(|s| s.is_client_error());
    if created
        && refused
        && let Err(left) = discard(client, project).await
    {
        eprintln!(
            "warning: project {project} was made for this deploy and could not be removed ({}); `scalemesh projects rm {project}` removes it",
            crate::escape::sanitize(&left.to_string(), false)
        );
    }
    client.explain(e).into()
}

/// Remembers in `dir` the project it deploys to, unless it says so already.
fn link_folder(
    client: &Client,
    view: &DeployView,
    dir: &Path,
    link: Option<&crate::linked::Link>,
    project: &Project,
) {
    let wanted = crate::linked::Link {
        project: project.name.to_string(),
        api_url: client.display_url(),
    };
    if link != Some(&wanted)
        && let Ok(path) = crate::linked::write(dir, &wanted)
    {
        view.note(&format!(
            "This folder now deploys to {} ({}): logs, deployments ls and rollback need no project here",
            project.name,
            path.display()
        ));
    }
}

/// Shows the build of `deployment` as it goes, to its end: the exit code.
async fn follow_build(
    client: &Client,
    mut view: DeployView,
    deployment: &Deployment,
    project: &Project,
    args: &DeployArgs,
) -> anyhow::Result<i32> {
    let started = std::time::Instant::now();
    let followed = follow::follow(client, deployment.id.as_str(), 0, |event| match event {
        Event::Lines(lines) => view.lines(lines),
        Event::State {
            status,
            phase,
            progress,
        } => view.state(status, phase, progress),
    });
    let end = tokio::select! {
        end = followed => end,
        _ = tokio::signal::ctrl_c() => {
            // Only this terminal stops following: the server goes on with the build.
            view.finish();
            eprintln!(
                "Stopped following. The build continues on the server: `scalemesh cancel {}` stops it, `scalemesh logs {} --follow` follows it again",
                deployment.id, deployment.id
            );
            return Ok(130);
        }
    };
    let end = match end {
        Ok(end) => end,
        Err(e) => {
            view.finish();
            return Err(e);
        }
    };
    let finished = client
        .deployment(deployment.id.as_str())
        .await
        .map_err(|e| client.explain(e))?;
    if end.status == DeploymentStatus::Ready {
        say_ready(&view, &finished, started);
        let url = end
            .url
            .clone()
            .unwrap_or_else(|| finished.live_url().to_owned());
        print_result(&finished, args.json, &url)?;
        return Ok(0);
    }
    view.finish();
    did_not_go_live(&finished, end, project, args.json)
}

/// Says why `finished` did not become ready, and how to see more: the exit code (with `json`,
/// the deployment goes on stdout and the error on stderr).
fn did_not_go_live(
    finished: &Deployment,
    end: follow::End,
    project: &Project,
    json: bool,
) -> anyhow::Result<i32> {
    let status = end.status;
    let reason = end.reason.unwrap_or_else(|| "no reason given".to_owned());
    let what = if status == DeploymentStatus::Canceled {
        "canceled"
    } else {
        "failed"
    };
    let mut err = CliError::new(format!("deployment {} {what}: {reason}", finished.id))
        .code(super::exit_code(status));
    if status == DeploymentStatus::Failed {
        let live = if project.production_deployment.is_some() {
            format!("; {} still serves the previous deployment", project.url)
        } else {
            String::new()
        };
        err = err.hint(format!(
            "see the whole log with `scalemesh logs {}`{live}",
            finished.id
        ));
    }
    if json {
        // The deployment, failed as it is, is the one document on stdout; why, on stderr.
        print_result(finished, true, "")?;
        eprintln!("error: {}", crate::escape::sanitize(&err.message, false));
        return Ok(err.code);
    }
    Err(err.into())
}

/// `deploy <folder> --prebuilt`: the folder read before anything exists on the server, then
/// deployed as it is (`prebuilt.rs`).
async fn prebuilt(
    client: &Client,
    view: DeployView,
    args: &DeployArgs,
    dir: &Path,
    name: &ProjectName,
    flags: DeployFlags,
) -> anyhow::Result<i32> {
    let read = {
        let (dir, data_dir) = (dir.to_path_buf(), client.data_dir().to_path_buf());
        tokio::task::spawn_blocking(move || super::prebuilt::read(&dir, &data_dir))
    };
    // The project is looked up while the folder is read; nothing is created unless it reads.
    let (folder, found) = tokio::join!(read, client.project(name.as_str()));
    let folder = folder??;
    let source = Source::Folder(dir.to_path_buf());
    let (project, _) = project_or_create(client, name, &source, found).await?;
    let started = std::time::Instant::now();
    let finished = super::prebuilt::deploy(client, &view, &project, folder, flags.promote).await?;
    if finished.status != DeploymentStatus::Ready {
        view.finish();
        let reason = finished
            .reason
            .clone()
            .unwrap_or_else(|| "no reason given".into());
        return Err(
            CliError::new(format!("deployment {} failed: {reason}", finished.id))
                .code(super::exit_code(finished.status))
                .hint(format!("see its log with `scalemesh logs {}`", finished.id))
                .into(),
        );
    }
    say_ready(&view, &finished, started);
    let url = if finished.production {
        finished.project_url.clone()
    } else {
        finished.url.clone()
    };
    print_result(&finished, args.json, &url)?;
    Ok(0)
}

/// The closing line of a deployment that became ready.
fn say_ready(view: &DeployView, finished: &Deployment, started: std::time::Instant) {
    let what = if finished.production {
        "Live"
    } else {
        "Ready (preview)"
    };
    view.success(&format!(
        "{what} in {:.1}s",
        started.elapsed().as_secs_f64()
    ));
}

/// Deletes a project made for a deploy that was refused. A server that refused an upload may
/// close the connection the refusal came on, so a failure to reach it is tried again (deleting
/// is idempotent: a second delete of a deleted project is a 404, taken as done).
async fn discard(client: &Client, project: &str) -> Result<(), ClientError> {
    let mut attempt = 0;
    loop {
        match client.delete_project(project).await {
            Ok(()) => return Ok(()),
            Err(e) if e.status().is_some_and(|s| s.as_u16() == 404) && attempt > 0 => {
                return Ok(());
            }
            Err(e) if e.status().is_none() && attempt < 2 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Asks for the deployment of `source` (its packed folder, for a folder).
#[allow(clippy::too_many_arguments)]
async fn start_deployment(
    client: &Client,
    view: &DeployView,
    source: &Source,
    packed: Option<pack::Packed>,
    target: GitTarget,
    flags: DeployFlags,
    project: &str,
    key: &IdempotencyKey,
) -> Result<Deployment, ClientError> {
    match (source, packed) {
        (Source::Git(url), _) => {
            let body = CreateDeployment {
                git_url: Some(url.as_str().to_owned()),
                git_ref: target.git_ref.map(String::from),
                commit: target.commit,
                promote: Some(flags.promote),
                no_cache: flags.no_cache.then_some(true),
            };
            let body = &body;
            with_retries(view, move || client.deploy_git(project, body, key)).await
        }
        (Source::Folder(dir), Some(packed)) => {
            view.note(&format!(
                "Uploading {} from {} ({}, {} compressed)",
                plural(packed.files as u64, "file"),
                dir.display(),
                human_bytes(packed.raw_bytes),
                human_bytes(packed.archive.len() as u64),
            ));
            let archive = bytes::Bytes::from(packed.archive);
            with_retries(view, move || {
                client.deploy_archive(project, archive.clone(), flags, key)
            })
            .await
        }
        (Source::Folder(_), None) => Err(ClientError::Decode("the folder was not packed".into())),
    }
}

/// How many times a deployment's request is sent at most.
const ATTEMPTS: u32 = 3;

/// Sends `post` again (it carries the same idempotency key) when it may not have reached the
/// server or the server was briefly unavailable; never when the server refused it.
async fn with_retries<F, Fut>(view: &DeployView, mut post: F) -> Result<Deployment, ClientError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Deployment, ClientError>>,
{
    let mut attempt = 1;
    loop {
        let err = match post().await {
            Ok(deployment) => return Ok(deployment),
            Err(err) => err,
        };
        let Some(pause) = pause_before_retry(attempt, &err) else {
            return Err(err);
        };
        attempt += 1;
        view.note(&format!(
            "{}; trying again ({attempt} of {ATTEMPTS})",
            sanitize(&err.to_string(), false)
        ));
        tokio::time::sleep(pause).await;
    }
}

/// How long to wait before sending again after `attempt` failed with `err`; `None` to give up.
fn pause_before_retry(attempt: u32, err: &ClientError) -> Option<Duration> {
    (attempt < ATTEMPTS && err.is_transient())
        .then(|| Duration::from_millis(500 * 3u64.pow(attempt - 1)))
}

fn print_result(deployment: &Deployment, json: bool, url: &str) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(deployment)?);
    } else {
        println!("{url}");
    }
    Ok(())
}

/// A git URL when it looks like one (a scheme, or scp-like `user@host:path`), else a folder.
fn classify(raw: &str) -> anyhow::Result<Source> {
    let looks_remote = raw.contains("://")
        || raw.contains("::")
        || (raw.contains('@') && raw.contains(':') && !Path::new(raw).exists());
    if looks_remote {
        return GitUrl::parse(raw).map(Source::Git).map_err(|e| {
            CliError::new(format!("cannot deploy {raw:?}: {e}"))
                .hint("give an https://, http:// or git:// repository URL, or a local folder")
                .into()
        });
    }
    if raw.starts_with('-') {
        return Err(CliError::new(format!("{raw:?} is not a folder or a git URL")).into());
    }
    let path = PathBuf::from(raw);
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_dir() => Ok(Source::Folder(path)),
        Ok(_) => Err(CliError::new(format!("{raw} is not a folder"))
            .hint("deploy the folder that holds the site (or its package.json), e.g. scalemesh deploy .")
            .into()),
        Err(_) => Err(missing_folder(raw).into()),
    }
}

/// The folder's `scalemesh.json`, checked as the builder will check it, so that a mistake in it
/// is reported now rather than as a failed build after the upload.
fn check_site_config(dir: &std::path::Path) -> Result<(), CliError> {
    use scalemesh_core::site_config::{
        BuildSettings, SITE_CONFIG_FILE, SettingsError, read_config_file,
    };
    let path = dir.join(SITE_CONFIG_FILE);
    let problem = match read_config_file(dir, SITE_CONFIG_FILE) {
        Ok(None) => None,
        Ok(Some(text)) => match BuildSettings::from_json(&text) {
            Ok(_) => None,
            Err(SettingsError::Parse(detail)) => Some(detail),
            Err(e) => Some(e.to_string()),
        },
        Err(e) => Some(e.to_string()),
    };
    match problem {
        None => Ok(()),
        Some(problem) => Err(CliError::new(format!("{} is not valid: {problem}", path.display()))
            .hint(format!(
                "fix {SITE_CONFIG_FILE} and deploy again (nothing was uploaded); its fields are in the README"
            ))),
    }
}

/// What to say for a source that is neither a folder here nor a URL.
fn missing_folder(raw: &str) -> CliError {
    let err = CliError::new(format!("no such folder: {raw}"));
    // `github.com/acme/site`: a repository without its scheme.
    let first = raw.split('/').next().unwrap_or("");
    let looks_like_host = first.contains('.')
        && !first.starts_with('.')
        && raw.contains('/')
        && first
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
    if looks_like_host {
        err.hint(format!("did you mean https://{raw} ?"))
    } else {
        err.hint("give an existing folder, or a git URL such as https://github.com/acme/site")
    }
}

fn project_name(explicit: Option<&str>, source: &Source) -> anyhow::Result<ProjectName> {
    if let Some(name) = explicit {
        return ProjectName::parse(name).map_err(|e| {
            CliError::new(format!("{name:?} cannot be a project name: {e}"))
                .hint("a project name is a DNS label: lowercase letters, digits and single '-', e.g. my-site")
                .into()
        });
    }
    let base = match source {
        Source::Git(url) => url.repo_name().map(str::to_owned),
        Source::Folder(dir) => dir
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned())),
    };
    base.as_deref()
        .and_then(ProjectName::derive)
        .ok_or_else(|| {
            CliError::new("no project name can be made from the source's name")
                .hint("name the project with --project my-site")
                .into()
        })
}

/// The project, made when it does not exist yet; whether it was made now.
async fn ensure_project(
    client: &Client,
    name: &ProjectName,
    source: &Source,
) -> anyhow::Result<(Project, bool)> {
    let found = client.project(name.as_str()).await;
    project_or_create(client, name, source, found).await
}

/// The project as `found`, or made now if there is none by that name.
async fn project_or_create(
    client: &Client,
    name: &ProjectName,
    source: &Source,
    found: Result<Project, ClientError>,
) -> anyhow::Result<(Project, bool)> {
    match found {
        Ok(project) => Ok((project, false)),
        Err(e) if e.is_not_found() => {
            let git_url = match source {
                Source::Git(url) => Some(url.as_str().to_owned()),
                Source::Folder(_) => None,
            };
            let body = CreateProject {
                name: Some(name.to_string()),
                git_url,
                ..CreateProject::default()
            };
            match client.create_project(&body).await {
                Ok(project) => Ok((project, true)),
                Err(e) if e.status() == Some(reqwest::StatusCode::CONFLICT) => Err(CliError::new(
                    e.to_string(),
                )
                .hint("the name is not yours to take: choose another with --project")
                .into()),
                // A token limited to some projects, or read-only: the project is not one it sees.
                Err(e) if e.status() == Some(reqwest::StatusCode::FORBIDDEN) => Err(CliError::new(
                    format!("project {name} does not exist, and this token cannot create one: {e}"),
                )
                .hint("deploy a project this token was made for (scalemesh whoami lists them), or create the project with a full token")
                .into()),
                Err(e) => Err(client.explain(e).into()),
            }
        }
        Err(e) => Err(client.explain(e).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_sources() {
        assert!(matches!(
            classify("https://example.com/a/site.git"),
            Ok(Source::Git(_))
        ));
        assert!(matches!(
            classify("git://127.0.0.1/site"),
            Ok(Source::Git(_))
        ));
        assert!(matches!(classify("."), Ok(Source::Folder(_))));
        let dir = tempfile::tempdir().expect("tempdir");
        let dir = dir.path().to_str().expect("utf-8");
        assert!(matches!(classify(dir), Ok(Source::Folder(_))));
        assert!(classify("no-such-folder/here").is_err());
        for bad in [
            "file:///etc",
            "ext::sh -c id",
            "ssh://host/x",
            "git@github.com:a/b.git",
            "--upload-pack=x",
        ] {
            assert!(classify(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn retries_only_what_may_not_have_arrived() {
        let unreachable = ClientError::Unreachable {
            url: "http://127.0.0.1:9000/".into(),
            reason: "connection reset".into(),
        };
        let api = |status: u16| ClientError::Api {
            status: reqwest::StatusCode::from_u16(status).expect("status"),
            code: "x".into(),
            message: "x".into(),
            retry_after: None,
        };
        let cases = [
            (1, unreachable, Some(500)),
            (2, api(503), Some(1500)),
            (1, api(502), Some(500)),
            (1, api(504), Some(500)),
            (3, api(503), None),
            (1, api(500), None),
            (1, api(400), None),
            (1, api(401), None),
            (1, api(409), None),
            (1, api(429), None),
            (1, ClientError::Decode("x".into()), None),
        ];
        for (attempt, err, want) in cases {
            assert_eq!(
                pause_before_retry(attempt, &err),
                want.map(Duration::from_millis),
                "attempt {attempt}: {err:?}"
            );
        }
    }

    #[test]
    fn names_projects() {
        let src = classify("https://example.com/acme/My_Site.git").expect("git");
        assert_eq!(project_name(None, &src).expect("name").as_str(), "my-site");
        assert_eq!(project_name(Some("x1"), &src).expect("name").as_str(), "x1");
        assert!(project_name(Some("Bad Name"), &src).is_err());
    }
}
