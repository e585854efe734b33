//! `git clone` of a repository the user named. Hostile input on both sides: the URL (validated
//! in core, then passed after `--`) and the repository (no submodules, no hooks, only http(s)
//! and git transports, no redirects, no credential prompts, no system or global config). The
//! host is resolved once and every address checked (`core::netguard`); git then connects to the
//! address that was checked, so a name that resolves elsewhere a moment later gets nowhere.

use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use anyhow::Context;
use scalemesh_core::commit::CommitInfo;
use scalemesh_core::git::{GitRef, GitUrl};
use scalemesh_core::git_remote::{self as git_remote, GitCredential, remote_command};
pub use scalemesh_core::git_remote::{Pinned, Resolve, SystemResolver, pin};
use scalemesh_core::netguard::AllowList;
use scalemesh_core::wire::LogStream;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::report::LogSink;
use crate::sandbox::Sandbox;

/// `git <args>` with the environment it may have, in `cwd`: inside the build's sandbox (as
/// its user, within its limits) when there is one.
fn git(sandbox: Option<&Sandbox>, home: &Path, cwd: &Path, args: Vec<String>) -> Command {
    let mut argv = vec!["git".to_owned()];
    argv.extend(args);
    let mut cmd = match sandbox {
        Some(sandbox) => sandbox.command(argv, cwd),
        None => {
            let mut cmd = Command::new("git");
            cmd.args(&argv[1..]).current_dir(cwd);
            cmd
        }
    };
    cmd.env_clear()
        .envs(scalemesh_core::git_remote::safe_env(home))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// The `git clone` of `url` at `git_ref` into `dest`, connecting where `pinned` says, inside
/// `sandbox` when given.
pub fn clone_command(
    url: &GitUrl,
    git_ref: Option<&GitRef>,
    dest: &Path,
    home: &Path,
    pinned: Option<&Pinned>,
    sandbox: Option<&Sandbox>,
) -> anyhow::Result<Command> {
    let clone = [
        "clone",
        "--quiet",
        "--depth",
        "1",
        "--single-branch",
        "--no-recurse-submodules",
        "--no-local",
    ];
    let (mut args, target) = remote_command(url, pinned, &clone)?;
    if let Some(r) = git_ref {
        args.extend(["--branch".to_owned(), r.as_str().to_owned()]);
    }
    args.extend(["--".to_owned(), target, dest.display().to_string()]);
    let cwd = dest.parent().unwrap_or(home);
    Ok(git(sandbox, home, cwd, args))
}

/// The `git fetch` of exactly `sha` from `url` into the clone at `dest`, connecting where
/// `pinned` says: a branch that moved on since the commit was pushed still leads to it.
fn fetch_commit_command(
    url: &GitUrl,
    sha: &str,
    dest: &Path,
    home: &Path,
    pinned: Option<&Pinned>,
    sandbox: Option<&Sandbox>,
) -> anyhow::Result<Command> {
    let fetch = ["fetch", "--quiet", "--depth", "1", "--no-tags"];
    let (mut args, target) = remote_command(url, pinned, &fetch)?;
    args.extend([target, sha.to_owned()]);
    Ok(git(sandbox, home, dest, args))
}

/// What to check out: a repository, at a branch or tag (the default branch when `None`), at
/// exactly a commit when one is named.
pub struct Checkout<'a> {
    pub url: &'a GitUrl,
    pub git_ref: Option<&'a GitRef>,
    pub commit: Option<&'a str>,
    /// The project's deploy credential, sent to an http(s) repository.
    pub credential: Option<&'a GitCredential>,
}

/// Clones what `checkout` says into `dest`, which must not exist, from a host that is public
/// or allowed by `allow`: the commit checked out, when git can tell it.
pub async fn clone(
    checkout: Checkout<'_>,
    dest: &Path,
    home: &Path,
    allow: &AllowList,
    sandbox: &Sandbox,
    log: &LogSink,
) -> anyhow::Result<Option<CommitInfo>> {
    let Checkout {
        url,
        git_ref,
        commit,
        credential,
    } = checkout;
    // Validated again here: the builder trusts nothing it is handed.
    let url = GitUrl::parse(url.as_str()).context("the repository URL is not allowed")?;
    if let Some(sha) = commit
        && !scalemesh_core::commit::is_full_sha(sha)
    {
        anyhow::bail!("{sha:.80?} is not a commit's full name");
    }
    let pinned = pin(&url, allow, &SystemResolver).await?;
    let started = Instant::now();
    match git_ref {
        Some(r) => log.system(format!("Cloning {} (ref {r})", url.redacted())),
        None => log.system(format!("Cloning {}", url.redacted())),
    }
    let authorized = credential
        .map(|c| git_remote::credential_env(&url, c))
        .unwrap_or_default();
    let mut cmd = clone_command(&url, git_ref, dest, home, pinned.as_ref(), Some(sandbox))?;
    cmd.envs(authorized.iter().map(|(k, v)| (k, v)));
    if !run_logged(cmd, log).await?.success() {
        anyhow::bail!(
            "could not clone {}{}: check that the URL is right and the repository is reachable from the builder",
            url.redacted(),
            git_ref.map(|r| format!(" at {r}")).unwrap_or_default()
        );
    }
    if let Some(sha) = commit {
        let remote = Remote {
            url: &url,
            pinned: pinned.as_ref(),
            authorized: &authorized,
        };
        at_commit(&remote, sha, dest, home, sandbox).await?;
    }
    forget_credentials(&url, dest, home, sandbox).await?;
    let head = head_commit(sandbox, home, dest).await;
    let short = head.as_ref().map_or("?", |c| &c.sha[..12]);
    log.system(format!(
        "Cloned commit {short} in {:.1}s",
        started.elapsed().as_secs_f64()
    ));
    Ok(head)
}

/// Runs `cmd`, every line it prints going to the build's log; how it ended.
async fn run_logged(mut cmd: Command, log: &LogSink) -> anyhow::Result<std::process::ExitStatus> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .context("could not run git; is it installed on the builder?")?;
    let pipes = [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
    ];
    let tails: Vec<_> = pipes
        .into_iter()
        .flatten()
        .map(|pipe| {
            let log = log.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(pipe).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    log.line_waiting(LogStream::Stderr, &line).await;
                }
            })
        })
        .collect();
    let status = child.wait().await.context("waiting for git")?;
    for t in tails {
        let _ = t.await;
    }
    Ok(status)
}

/// The clone saved the URL as its remote; a build must not find credentials there.
async fn forget_credentials(
    url: &GitUrl,
    dest: &Path,
    home: &Path,
    sandbox: &Sandbox,
) -> anyhow::Result<()> {
    let bare_url = url.without_credentials();
    if bare_url == url.as_str() {
        return Ok(());
    }
    let args = ["remote", "set-url", "origin", &bare_url].map(str::to_owned);
    let reset = git(Some(sandbox), home, dest, args.to_vec())
        .status()
        .await
        .context("removing credentials from the clone")?;
    if !reset.success() {
        anyhow::bail!("could not remove the credentials from the clone's remote");
    }
    Ok(())
}

/// Where a repository is, how to reach it, and the environment that sends its credential.
struct Remote<'a> {
    url: &'a GitUrl,
    pinned: Option<&'a Pinned>,
    authorized: &'a [(String, String)],
}

/// Moves the clone at `dest` to exactly `sha`: already there when the branch still ends at
/// it, else fetched by name (forges serve any commit reachable from a branch) and checked out.
async fn at_commit(
    remote: &Remote<'_>,
    sha: &str,
    dest: &Path,
    home: &Path,
    sandbox: &Sandbox,
) -> anyhow::Result<()> {
    let head = git(
        Some(sandbox),
        home,
        dest,
        vec!["rev-parse".into(), "HEAD".into()],
    )
    .output()
    .await
    .context("reading the cloned commit")?;
    if String::from_utf8_lossy(&head.stdout).trim() == sha {
        return Ok(());
    }
    let fetched = fetch_commit_command(remote.url, sha, dest, home, remote.pinned, Some(sandbox))?
        .envs(remote.authorized.iter().map(|(k, v)| (k, v)))
        .status()
        .await
        .context("waiting for git")?;
    let checkout = [
        "-c",
        "core.hooksPath=/dev/null",
        "checkout",
        "--quiet",
        "--detach",
        sha,
    ]
    .map(str::to_owned)
    .to_vec();
    let checked_out = fetched.success()
        && git(Some(sandbox), home, dest, checkout)
            .status()
            .await
            .is_ok_and(|s| s.success());
    if !checked_out {
        anyhow::bail!(
            "commit {sha} is not in {}: it was never pushed there, or its branch was rewritten since",
            remote.url.redacted()
        );
    }
    Ok(())
}

/// The commit checked out in the clone at `dest`: its name, branch (none for a tag), the first
/// line of its message and its author, read inside the sandbox; `None` if git cannot say.
async fn head_commit(sandbox: &Sandbox, home: &Path, dest: &Path) -> Option<CommitInfo> {
    let read = |args: &[&str]| {
        let args = args.iter().map(|a| (*a).to_owned()).collect();
        let mut cmd = git(Some(sandbox), home, dest, args);
        async move {
            let out = cmd.output().await.ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
        }
    };
    let log = read(&[
        "log",
        "-1",
        "--no-show-signature",
        "--format=%H%x00%an%x00%s",
        "HEAD",
    ])
    .await?;
    let mut fields = log.trim_end_matches('\n').splitn(3, '\0');
    let (sha, author, message) = (fields.next()?, fields.next()?, fields.next()?);
    let branch = read(&["symbolic-ref", "-q", "--short", "HEAD"]).await;
    CommitInfo {
        sha: sha.to_owned(),
        branch: branch.map(|b| b.trim().to_owned()),
        message: message.to_owned(),
        author: author.to_owned(),
    }
    .cleaned()
}
