//! `git clone` of a repository the user named. Hostile input on both sides: the URL (validated
//! in core, then passed after `--`) and the repository (no submodules, no hooks, only http(s)
//! and git transports, no redirects, no credential prompts, no system or global config).

use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use anyhow::Context;
use scalemesh_core::git::{ALLOWED_SCHEMES, GitRef, GitUrl};
use scalemesh_core::wire::LogStream;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::report::LogSink;

fn git(home: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
        )
        .env("HOME", home)
        .env("LANG", "C.UTF-8")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ALLOW_PROTOCOL", ALLOWED_SCHEMES.join(":"))
        .env("GIT_PROTOCOL_FROM_USER", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_ASKPASS", "/bin/false")
        .env("SSH_ASKPASS", "/bin/false")
        .env("GIT_LFS_SKIP_SMUDGE", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// Clones `url` at `git_ref` (default branch when `None`) into `dest`, which must not exist.
pub async fn clone(
    url: &GitUrl,
    git_ref: Option<&GitRef>,
    dest: &Path,
    home: &Path,
    log: &LogSink,
) -> anyhow::Result<()> {
    // Validated again here: the builder trusts nothing it is handed.
    let url = GitUrl::parse(url.as_str()).context("the repository URL is not allowed")?;
    let started = Instant::now();
    match git_ref {
        Some(r) => log.system(format!("Cloning {} (ref {r})", url.redacted())),
        None => log.system(format!("Cloning {}", url.redacted())),
    }
    let mut cmd = git(home);
    cmd.args([
        "-c",
        "protocol.allow=never",
        "-c",
        "protocol.https.allow=always",
        "-c",
        "protocol.http.allow=always",
        "-c",
        "protocol.git.allow=always",
        "-c",
        "http.followRedirects=false",
        "-c",
        "core.hooksPath=/dev/null",
        "-c",
        "submodule.recurse=false",
        "clone",
        "--quiet",
        "--depth",
        "1",
        "--single-branch",
        "--no-recurse-submodules",
        "--no-local",
    ]);
    if let Some(r) = git_ref {
        cmd.arg("--branch").arg(r.as_str());
    }
    cmd.arg("--").arg(url.as_str()).arg(dest);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .context("could not run git; is it installed on the builder?")?;
    let mut tails = Vec::new();
    for pipe in [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
    ]
    .into_iter()
    .flatten()
    {
        let log = log.clone();
        tails.push(tokio::spawn(async move {
            let mut lines = BufReader::new(pipe).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                log.line(LogStream::Stderr, &line);
            }
        }));
    }
    let status = child.wait().await.context("waiting for git")?;
    for t in tails {
        let _ = t.await;
    }
    if !status.success() {
        anyhow::bail!(
            "could not clone {}{}: check that the URL is right and the repository is reachable from the builder",
            url.redacted(),
            git_ref.map(|r| format!(" at {r}")).unwrap_or_default()
        );
    }
    // The clone saved the URL as its remote; a build must not find credentials there.
    let bare_url = url.without_credentials();
    if bare_url != url.as_str() {
        let reset = git(home)
            .arg("-C")
            .arg(dest)
            .args(["remote", "set-url", "origin", &bare_url])
            .status()
            .await
            .context("removing credentials from the clone")?;
        if !reset.success() {
            anyhow::bail!("could not remove the credentials from the clone's remote");
        }
    }
    let head = git(home)
        .arg("-C")
        .arg(dest)
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .await
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "?".to_owned());
    log.system(format!(
        "Cloned commit {head} in {:.1}s",
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}
