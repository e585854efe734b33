//! Deployments and their lifecycle. Status changes are compare-and-set inside one immediate
//! transaction, so a cancel racing a builder's report ends in exactly one terminal status.

use rusqlite::params;
use scalemesh_core::going_live::{Facts, GoingLive, Production};
use scalemesh_core::wire::{CommitInfo, LogLine, LogStream, Progress};
use scalemesh_core::{DeploymentId, DeploymentStatus, Phase};
use time::OffsetDateTime;

use super::aliases::{self, AliasAction};
use super::deployment_row::{DeploymentRow, DeploymentTx, SELECT, deployment_by_id, query_many};
use super::error::{DbError, DbResult};
use super::logs;
use super::store::{SqliteStore, now_ms, to_ms};

#[derive(Debug, Clone)]
pub struct NewDeployment {
    pub id: DeploymentId,
    pub project_id: i64,
    pub source_kind: &'static str,
    pub git_url: Option<String>,
    pub git_ref: Option<String>,
    /// The exact commit to build, when one was asked for.
    pub git_commit: Option<String>,
    pub promote: bool,
    pub created_by: i64,
    /// Build without restoring the build cache.
    pub no_cache: bool,
    /// The branch or pull request preview host it serves once ready.
    pub preview_label: Option<String>,
}

/// A requested change of a deployment's status (or, within the same status, of its phase).
#[derive(Debug, Clone)]
pub struct Transition {
    pub to: DeploymentStatus,
    pub phase: Phase,
    pub progress: Option<Progress>,
    pub reason: Option<String>,
    /// A system line for the log, stored in the same transaction as the change, so a follower
    /// that sees the new status also finds the line.
    pub note: Option<String>,
}

#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "returned once per transition, never stored"
)]
pub enum TransitionOutcome {
    Applied {
        row: DeploymentRow,
        lines: Vec<LogLine>,
    },
    /// The lifecycle does not allow it from the current status.
    Refused(DeploymentStatus),
    NotFound,
}

/// What [`SqliteStore::mark_ready`] did.
#[derive(Debug)]
pub struct Readied {
    /// What became of the deployment. [`GoingLive::NotServable`] changed nothing.
    pub going_live: GoingLive,
    pub row: DeploymentRow,
    pub lines: Vec<LogLine>,
    /// What production served before, when this deployment went live.
    pub previous: Option<DeploymentId>,
}

/// What [`GoingLive::decide`] needs to know of the deployment in `dtx`, read in it, and the
/// deployment production serves now.
fn going_live_facts(dtx: &DeploymentTx<'_>, servable: bool) -> DbResult<(Facts, Option<String>)> {
    let (previous, auto_promote): (Option<String>, bool) = dtx.tx.query_row(
        "SELECT production_deployment, auto_promote FROM projects WHERE id = ?1",
        params![dtx.current.project_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let newer_live: bool = dtx.tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM deployments WHERE id = ?1 AND created_at > ?2)",
        params![previous, to_ms(dtx.current.created_at)],
        |r| r.get(0),
    )?;
    let production = if auto_promote {
        Production::FollowsBuilds
    } else {
        Production::Pinned
    };
    let facts = Facts {
        asked: dtx.current.promote,
        production,
        newer_live,
        servable,
    };
    Ok((facts, previous))
}

/// Points the production alias at the deployment in `dtx`, moved by its build, and records the
/// move; answers what production served before.
fn go_live(dtx: &DeploymentTx<'_>, previous: Option<String>) -> DbResult<Option<DeploymentId>> {
    let project_id = dtx.current.project_id;
    dtx.tx.execute(
        "UPDATE projects SET production_deployment = ?2, updated_at = ?3 WHERE id = ?1",
        params![project_id, dtx.id, now_ms()],
    )?;
    aliases::record_move(
        &dtx.tx,
        project_id,
        &dtx.id,
        previous.as_deref(),
        AliasAction::Deploy,
        "build",
    )?;
    previous
        .map(|p| DeploymentId::parse(&p))
        .transpose()
        .map_err(DbError::corrupt)
}

impl SqliteStore {
    /// How many deployments `user_id` started that wait in the queue.
    pub async fn queued_by(&self, user_id: i64) -> DbResult<u64> {
        self.read(move |conn| {
            let n: i64 = conn.query_row(
                "SELECT count(*) FROM deployments WHERE created_by = ?1 AND status = 'queued'",
                params![user_id],
                |r| r.get(0),
            )?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }

    /// Moves an uploaded deployment to `ready` and applies what [`GoingLive::decide`] makes of
    /// it, from `servable` (its manifest was read and describes it) and what this transaction
    /// reads: going live points the production alias at it together with its log lines, so
    /// whoever sees it ready sees it live and finds the lines. One that is not servable is left
    /// as it was, for the caller to fail.
    pub async fn mark_ready(
        &self,
        id: &DeploymentId,
        servable: bool,
        live_url: String,
    ) -> DbResult<Result<Readied, TransitionOutcome>> {
        let id = id.to_string();
        self.call(move |conn| {
            let Some(dtx) = DeploymentTx::open(conn, &id)? else {
                return Ok(Err(TransitionOutcome::NotFound));
            };
            if dtx.current.status != DeploymentStatus::Uploading {
                return Ok(Err(TransitionOutcome::Refused(dtx.current.status)));
            }
            let (facts, previous) = going_live_facts(&dtx, servable)?;
            let going_live = GoingLive::decide(facts);
            if going_live == GoingLive::NotServable {
                let row = dtx.current;
                return Ok(Ok(Readied {
                    going_live,
                    row,
                    lines: Vec::new(),
                    previous: None,
                }));
            }
            dtx.tx.execute(
                "UPDATE deployments SET status = 'ready', phase = 'done', progress_done = NULL,
                 progress_total = NULL, finished_at = ?2 WHERE id = ?1",
                params![id, now_ms()],
            )?;
            let previous = match going_live {
                GoingLive::GoLive => go_live(&dtx, previous)?,
                _ => None,
            };
            let now = OffsetDateTime::now_utc();
            let notes = going_live.notes(&dtx.current.id, &live_url);
            let lines = logs::insert(
                &dtx.tx,
                &id,
                notes.into_iter().map(|n| (LogStream::System, n, now)),
            )?;
            let row = dtx.commit()?;
            Ok(Ok(Readied {
                going_live,
                row,
                lines,
                previous,
            }))
        })
        .await
    }

    pub async fn insert_deployment(&self, new: NewDeployment) -> DbResult<DeploymentRow> {
        self.call(move |conn| {
            conn.execute(
                "INSERT INTO deployments (id, project_id, status, phase, source_kind, git_url, git_ref, promote, created_at, created_by, no_cache, git_commit, preview_label)
                 VALUES (?1, ?2, 'queued', 'queued', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![new.id.as_str(), new.project_id, new.source_kind, new.git_url, new.git_ref, new.promote, now_ms(), new.created_by, new.no_cache, new.git_commit, new.preview_label],
            )?;
            deployment_by_id(conn, new.id.as_str())?.ok_or_else(|| DbError::corrupt("inserted deployment vanished"))
        })
        .await
    }

    /// A prebuilt deployment: inserted `uploading` at once (it has no build), with the hash of
    /// its job token and `note` in its log, in one transaction; its row and the note's line.
    pub async fn insert_prebuilt(
        &self,
        new: NewDeployment,
        token_hash: Vec<u8>,
        note: String,
    ) -> DbResult<(DeploymentRow, Vec<LogLine>)> {
        self.call(move |conn| {
            let tx = conn.transaction()?;
            let now = now_ms();
            tx.execute(
                "INSERT INTO deployments (id, project_id, status, phase, source_kind, promote, created_at, created_by, no_cache, job_token_hash, building_at, uploading_at)
                 VALUES (?1, ?2, 'uploading', 'uploading', ?3, ?4, ?5, ?6, 0, ?7, ?5, ?5)",
                params![new.id.as_str(), new.project_id, new.source_kind, new.promote, now, new.created_by, token_hash],
            )?;
            let lines = logs::insert(
                &tx,
                new.id.as_str(),
                [(LogStream::System, note, OffsetDateTime::now_utc())],
            )?;
            let row = deployment_by_id(&tx, new.id.as_str())?
                .ok_or_else(|| DbError::corrupt("inserted deployment vanished"))?;
            tx.commit()?;
            Ok((row, lines))
        })
        .await
    }

    pub async fn deployment(&self, id: &DeploymentId) -> DbResult<Option<DeploymentRow>> {
        let id = id.to_string();
        self.read(move |conn| deployment_by_id(conn, &id)).await
    }

    /// A project's deployments, newest first.
    pub async fn deployments_of(
        &self,
        project_id: i64,
        limit: u32,
    ) -> DbResult<Vec<DeploymentRow>> {
        self.read(move |conn| {
            query_many(
                conn,
                &format!("{SELECT} WHERE d.project_id = ?1 ORDER BY d.created_at DESC, d.rowid DESC LIMIT ?2"),
                params![project_id, limit],
            )
        })
        .await
    }

    /// Every deployment that is not finished, oldest first.
    pub async fn unfinished_deployments(&self) -> DbResult<Vec<DeploymentRow>> {
        self.read(|conn| {
            query_many(
                conn,
                &format!("{SELECT} WHERE d.status IN ('queued', 'building', 'uploading') ORDER BY d.created_at"),
                [],
            )
        })
        .await
    }

    pub async fn set_runner_ref(&self, id: &DeploymentId, runner_ref: &str) -> DbResult<()> {
        let (id, runner_ref) = (id.to_string(), runner_ref.to_owned());
        self.call(move |conn| {
            conn.execute(
                "UPDATE deployments SET runner_ref = ?2 WHERE id = ?1",
                params![id, runner_ref],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn set_job_token(&self, id: &DeploymentId, hash: Vec<u8>) -> DbResult<()> {
        let id = id.to_string();
        self.call(move |conn| {
            conn.execute(
                "UPDATE deployments SET job_token_hash = ?2 WHERE id = ?1",
                params![id, hash],
            )?;
            Ok(())
        })
        .await
    }

    /// Records the commit `id` is built from, while it builds (a finished deployment keeps what
    /// it had); whether it was recorded.
    pub async fn set_commit(&self, id: &DeploymentId, commit: CommitInfo) -> DbResult<bool> {
        let id = id.to_string();
        self.call(move |conn| {
            let changed = conn.execute(
                "UPDATE deployments SET commit_sha = ?2, commit_branch = ?3, commit_message = ?4,
                 commit_author = ?5 WHERE id = ?1 AND status IN ('queued', 'building')",
                params![id, commit.sha, commit.branch, commit.message, commit.author],
            )?;
            Ok(changed == 1)
        })
        .await
    }

    /// Applies `t` if the lifecycle allows it from the current status (a phase change within the
    /// same status always is). `Err(current)` when it does not.
    pub async fn transition(
        &self,
        id: &DeploymentId,
        t: Transition,
    ) -> DbResult<TransitionOutcome> {
        let id = id.to_string();
        self.call(move |conn| {
            let Some(dtx) = DeploymentTx::open(conn, &id)? else {
                return Ok(TransitionOutcome::NotFound);
            };
            let current = dtx.current.status;
            let same = current == t.to && !t.to.is_terminal();
            if !same && !current.can_become(t.to) {
                return Ok(TransitionOutcome::Refused(current));
            }
            let now = now_ms();
            let stamp = match t.to {
                _ if same => None,
                DeploymentStatus::Building => Some("building_at"),
                DeploymentStatus::Uploading => Some("uploading_at"),
                DeploymentStatus::Ready | DeploymentStatus::Failed | DeploymentStatus::Canceled => {
                    Some("finished_at")
                }
                DeploymentStatus::Queued => None,
            };
            let (done, total) = match t.progress {
                Some(p) => (
                    Some(i64::try_from(p.done).unwrap_or(i64::MAX)),
                    Some(i64::try_from(p.total).unwrap_or(i64::MAX)),
                ),
                None => (None, None),
            };
            dtx.tx.execute(
                "UPDATE deployments SET status = ?2, phase = ?3, progress_done = ?4, progress_total = ?5,
                 reason = COALESCE(?6, reason) WHERE id = ?1",
                params![id, t.to.as_str(), t.phase.as_str(), done, total, t.reason],
            )?;
            if let Some(column) = stamp {
                dtx.tx.execute(
                    &format!("UPDATE deployments SET {column} = ?2 WHERE id = ?1"),
                    params![id, now],
                )?;
            }
            let lines = match t.note {
                Some(note) => logs::insert(
                    &dtx.tx,
                    &id,
                    [(LogStream::System, note, OffsetDateTime::now_utc())],
                )?,
                None => Vec::new(),
            };
            let row = dtx.commit()?;
            Ok(TransitionOutcome::Applied { row, lines })
        })
        .await
    }
}
