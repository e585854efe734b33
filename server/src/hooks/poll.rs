//! Polling, for a server the forge cannot reach (a laptop, behind NAT): every `--poll` interval
//! a connected project's branches are listed with `git ls-remote` (through `core::git_remote`,
//! as a build clones), and what changed since the last listing is deployed as the same push
//! would be: a new head builds that exact commit, a branch gone stops its preview. The listing
//! made when the project is connected is the starting point: nothing before it is deployed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use scalemesh_core::git::GitUrl;
use scalemesh_core::git_remote::{self, GitCredential, SystemResolver};
use scalemesh_core::netguard::AllowList;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::db::ProjectRow;
use crate::error::{ApiError, ApiResult};
use crate::forge::event::{Commit, Event};

/// Branches read from one listing; the rest are left alone.
const MOST_BRANCHES: usize = 1000;
/// How long a listing may take.
const LISTING: Duration = Duration::from_secs(30);
/// How much of a listing is read: a thousand branches take about 100 KB.
const LISTING_BYTES: u64 = 1024 * 1024;

/// What happened between two listings (branch → head), as pushes: a head new or moved is
/// pushed, a branch no longer listed is deleted. In branch order.
pub fn changes(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<Event> {
    let mut events = Vec::new();
    for (branch, sha) in after {
        if before.get(branch) != Some(sha) {
            events.push(Event::Push {
                branch: branch.clone(),
                commit: Commit {
                    sha: sha.clone(),
                    message: String::new(),
                    author: String::new(),
                },
            });
        }
    }
    for branch in before.keys().filter(|b| !after.contains_key(*b)) {
        events.push(Event::BranchDeleted {
            branch: branch.clone(),
        });
    }
    events
}

/// `git ls-remote --heads` output → branch → head; lines of another shape are skipped.
pub fn heads(listing: &str) -> BTreeMap<String, String> {
    listing
        .lines()
        .filter_map(|line| {
            let (sha, name) = line.split_once('\t')?;
            let branch = name.strip_prefix("refs/heads/")?;
            let named = scalemesh_core::commit::is_full_sha(sha)
                && scalemesh_core::git::GitRef::parse(branch).is_ok();
            named.then(|| (branch.to_owned(), sha.to_owned()))
        })
        .take(MOST_BRANCHES)
        .collect()
}

/// Lists the branches of the repository at `url`.
pub(crate) async fn list(
    url: &str,
    allow: &AllowList,
    credential: Option<&GitCredential>,
) -> anyhow::Result<BTreeMap<String, String>> {
    let url = GitUrl::parse(url)?;
    let pinned = git_remote::pin(&url, allow, &SystemResolver).await?;
    let (mut args, target) =
        git_remote::remote_command(&url, pinned.as_ref(), &["ls-remote", "--heads"])?;
    args.extend(["--".to_owned(), target]);
    let home = tempfile::tempdir().context("a folder for git")?;
    let mut cmd = tokio::process::Command::new("git");
    cmd.args(&args)
        .current_dir(home.path())
        .env_clear()
        .envs(git_remote::safe_env(home.path()))
        .envs(
            credential
                .map(|c| git_remote::credential_env(&url, c))
                .unwrap_or_default(),
        )
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().context("running git")?;
    let (mut stdout, mut stderr) = (
        child.stdout.take().context("git's output")?,
        child.stderr.take().context("git's errors")?,
    );
    // A repository may answer with refs without end: only so much is read, then git is stopped.
    let read = async {
        use tokio::io::AsyncReadExt;
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let (mut stdout, mut stderr) =
            ((&mut stdout).take(LISTING_BYTES), (&mut stderr).take(4096));
        let (a, b) = tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
        a?;
        b?;
        let _ = child.start_kill();
        anyhow::Ok((child.wait().await?, out, err))
    };
    let (status, out, err) = tokio::time::timeout(LISTING, read)
        .await
        .context("the repository did not list its branches in time")??;
    if !status.success() && out.len() < LISTING_BYTES as usize {
        let said: String = String::from_utf8_lossy(&err).chars().take(300).collect();
        anyhow::bail!("git ls-remote failed: {}", said.trim());
    }
    let mut out = out;
    if out.len() as u64 >= LISTING_BYTES {
        // Cut off: the last line may be half of one.
        let whole = out.iter().rposition(|b| *b == b'\n').unwrap_or(0);
        out.truncate(whole);
    }
    Ok(heads(&String::from_utf8_lossy(&out)))
}

/// Lists the branches of every project due, until `stop`.
pub(crate) async fn run(app: Arc<App>, stop: CancellationToken) {
    loop {
        match app.store.due_polls().await {
            Ok(due) => {
                for project in due {
                    if let Err(e) = app.poll(&project).await {
                        tracing::warn!(
                            project,
                            error = format!("{e:#}"),
                            "could not poll a repository"
                        );
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not read the repositories to poll"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

impl App {
    /// The project's branches, listed as polling will list them; a 400 saying why when they
    /// cannot be.
    pub(super) async fn first_listing(
        &self,
        project: &ProjectRow,
        credential: Option<&GitCredential>,
    ) -> ApiResult<std::collections::BTreeMap<String, String>> {
        let url = project.git_url.as_deref().unwrap_or_default();
        list(url, &self.allow_private_git_hosts, credential).await.map_err(|e| {
            ApiError::bad_request(
                "repository_unreachable",
                format!(
                    "the repository's branches could not be listed, so it cannot be polled: {e:#}"
                ),
            )
        })
    }

    /// Lists project `name`'s branches and deploys what changed, each change recorded as a
    /// delivery (`poll:<branch>@<head>`).
    async fn poll(&self, name: &str) -> anyhow::Result<()> {
        let project = self
            .store
            .project(&scalemesh_core::ProjectName::parse(name)?)
            .await?
            .context("no such project")?;
        let project_id = project.id;
        let conn = self
            .store
            .git_connection(project_id)
            .await?
            .context("not connected")?;
        let url = project
            .git_url
            .clone()
            .context("the project has no repository")?;
        let credential = self.deploy_credential(&project.name, Some(&url)).await?;
        let after = list(&url, &self.allow_private_git_hosts, credential.as_ref()).await?;
        let before = self.store.polled_heads(project_id).await?;
        for event in changes(&before, &after) {
            let id = match &event {
                Event::Push { branch, commit } => format!("poll:{branch}@{}", &commit.sha[..12]),
                Event::BranchDeleted { branch } => format!("poll:{branch}@deleted"),
                _ => continue,
            };
            let id: String = id.chars().take(100).collect();
            let kind = super::receive::event_name(&event);
            if self
                .store
                .first_delivery(project_id, &id, kind)
                .await?
                .is_some()
            {
                continue;
            }
            let outcome = match self
                .act(&project, conn.acting_user, &conn.production_branch, &event)
                .await
            {
                Ok(done) => (done.outcome, done.deployment),
                Err(e) => (format!("failed: {e}"), None),
            };
            self.store
                .delivery_outcome(project_id, &id, &outcome.0, outcome.1.as_ref())
                .await?;
        }
        self.store.set_polled_heads(project_id, after).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, char)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(b, c)| ((*b).to_owned(), c.to_string().repeat(40)))
            .collect()
    }

    fn push(branch: &str, c: char) -> Event {
        Event::Push {
            branch: branch.into(),
            commit: Commit {
                sha: c.to_string().repeat(40),
                message: String::new(),
                author: String::new(),
            },
        }
    }

    #[test]
    fn what_changed_between_two_listings_is_pushed_or_deleted() {
        let deleted = |b: &str| Event::BranchDeleted { branch: b.into() };
        // (before, after, events)
        let table = [
            (map(&[("main", 'a')]), map(&[("main", 'a')]), vec![]),
            (
                map(&[("main", 'a')]),
                map(&[("main", 'b')]),
                vec![push("main", 'b')],
            ),
            (
                map(&[("main", 'a')]),
                map(&[("main", 'a'), ("x", 'c')]),
                vec![push("x", 'c')],
            ),
            (
                map(&[("main", 'a'), ("x", 'c')]),
                map(&[("main", 'a')]),
                vec![deleted("x")],
            ),
            (map(&[]), map(&[("main", 'a')]), vec![push("main", 'a')]),
        ];
        for (before, after, events) in table {
            assert_eq!(changes(&before, &after), events, "{before:?} → {after:?}");
        }
    }

    #[test]
    fn a_listing_is_read_as_branches_and_heads_and_nothing_else() {
        let a = "a".repeat(40);
        let listing = format!(
            "{a}\trefs/heads/main\n{a}\trefs/heads/feature/x\n{a}\trefs/tags/v1\nshort\trefs/heads/bad\n{a}\trefs/heads/-oops\n{a} refs/heads/spaced\n"
        );
        let read = heads(&listing);
        assert_eq!(read.keys().collect::<Vec<_>>(), ["feature/x", "main"]);
    }
}
