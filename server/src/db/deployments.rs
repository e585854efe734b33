//! Deployments and their lifecycle. Status changes are compare-and-set inside one immediate
//! transaction, so a cancel racing a builder's report ends in exactly one terminal status.

use rusqlite::{OptionalExtension, Row, params};
use scalemesh_core::wire::{LogLine, LogStream, Progress};
use scalemesh_core::{DeploymentId, DeploymentStatus, Phase, ProjectName};
use time::OffsetDateTime;

use super::{DbError, DbResult, SqliteStore, from_ms, now_ms};

#[derive(Debug, Clone)]
pub struct DeploymentRow {
    pub id: DeploymentId,
    pub project_id: i64,
    pub project: ProjectName,
    pub status: DeploymentStatus,
    pub phase: Phase,
    pub progress: Option<Progress>,
    pub reason: Option<String>,
    /// `git` or `archive`.
    pub source_kind: String,
    pub git_url: Option<String>,
    pub git_ref: Option<String>,
    pub promote: bool,
    pub job_token_hash: Option<Vec<u8>>,
    /// Who started it (the project's owner for deployments older than that record).
    pub created_by: i64,
    /// The runner's name for the job (an ECS task ARN).
    pub runner_ref: Option<String>,
    pub production: bool,
    pub created_at: OffsetDateTime,
    pub building_at: Option<OffsetDateTime>,
    pub uploading_at: Option<OffsetDateTime>,
    pub finished_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone)]
pub struct NewDeployment {
    pub id: DeploymentId,
    pub project_id: i64,
    pub source_kind: &'static str,
    pub git_url: Option<String>,
    pub git_ref: Option<String>,
    pub promote: bool,
    pub created_by: i64,
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

const SELECT: &str = "SELECT d.id, d.project_id, p.name, d.status, d.phase, d.progress_done, d.progress_total,
    d.reason, d.source_kind, d.git_url, d.git_ref, d.promote, d.job_token_hash,
    COALESCE(p.production_deployment = d.id, 0), d.created_at, d.building_at, d.uploading_at, d.finished_at,
    d.runner_ref, COALESCE(d.created_by, p.owner_id)
    FROM deployments d JOIN projects p ON p.id = d.project_id";

fn corrupt(e: impl std::fmt::Display) -> DbError {
    DbError::Corrupt(e.to_string())
}

fn row_to_deployment(r: &Row<'_>) -> rusqlite::Result<Result<DeploymentRow, DbError>> {
    let id: String = r.get(0)?;
    let project: String = r.get(2)?;
    let status: String = r.get(3)?;
    let phase: String = r.get(4)?;
    let done: Option<i64> = r.get(5)?;
    let total: Option<i64> = r.get(6)?;
    let building_at: Option<i64> = r.get(15)?;
    let uploading_at: Option<i64> = r.get(16)?;
    let finished_at: Option<i64> = r.get(17)?;
    let row = (|| {
        Ok(DeploymentRow {
            id: DeploymentId::parse(&id).map_err(corrupt)?,
            project_id: r.get(1)?,
            project: ProjectName::parse(&project).map_err(corrupt)?,
            status: DeploymentStatus::parse(&status).ok_or_else(|| corrupt(&status))?,
            phase: Phase::parse(&phase).ok_or_else(|| corrupt(&phase))?,
            progress: match (done, total) {
                (Some(d), Some(t)) => Some(Progress {
                    done: u64::try_from(d).unwrap_or(0),
                    total: u64::try_from(t).unwrap_or(0),
                }),
                _ => None,
            },
            reason: r.get(7)?,
            source_kind: r.get(8)?,
            git_url: r.get(9)?,
            git_ref: r.get(10)?,
            promote: r.get(11)?,
            job_token_hash: r.get(12)?,
            runner_ref: r.get(18)?,
            created_by: r.get(19)?,
            production: r.get(13)?,
            created_at: from_ms(r.get(14)?),
            building_at: building_at.map(from_ms),
            uploading_at: uploading_at.map(from_ms),
            finished_at: finished_at.map(from_ms),
        })
    })();
    Ok(row)
}

pub(super) fn deployment_by_id(
    conn: &rusqlite::Connection,
    id: &str,
) -> DbResult<Option<DeploymentRow>> {
    conn.query_row(
        &format!("{SELECT} WHERE d.id = ?1"),
        params![id],
        row_to_deployment,
    )
    .optional()?
    .transpose()
}

fn query_many(
    conn: &rusqlite::Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> DbResult<Vec<DeploymentRow>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map(args, row_to_deployment)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row??);
    }
    Ok(out)
}

/// What [`SqliteStore::mark_ready`] did.
#[derive(Debug)]
pub struct Readied {
    pub row: DeploymentRow,
    pub lines: Vec<LogLine>,
    /// `Some(previous)` when the production alias moved to this deployment.
    pub moved_from: Option<Option<DeploymentId>>,
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

    /// Moves an uploaded deployment to `ready` and, when it was asked to go live and no newer
    /// deployment is live, points the production alias at it: one transaction, with its log
    /// lines, so whoever sees it ready sees it live and finds the lines.
    pub async fn mark_ready(
        &self,
        id: &DeploymentId,
        live_url: String,
    ) -> DbResult<Result<Readied, TransitionOutcome>> {
        let id = id.to_string();
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let Some(current) = deployment_by_id(&tx, &id)? else {
                return Ok(Err(TransitionOutcome::NotFound));
            };
            if current.status != DeploymentStatus::Uploading {
                return Ok(Err(TransitionOutcome::Refused(current.status)));
            }
            tx.execute(
                "UPDATE deployments SET status = 'ready', phase = 'done', progress_done = NULL,
                 progress_total = NULL, finished_at = ?2 WHERE id = ?1",
                params![id, now_ms()],
            )?;
            let mut notes = vec!["Deployment ready".to_owned()];
            let mut moved_from = None;
            if current.promote {
                let (previous, auto_promote): (Option<String>, bool) = tx.query_row(
                    "SELECT production_deployment, auto_promote FROM projects WHERE id = ?1",
                    params![current.project_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                let newer_live: bool = tx.query_row(
                    "SELECT EXISTS (SELECT 1 FROM deployments WHERE id = ?1 AND created_at > ?2)",
                    params![previous, crate::db::to_ms(current.created_at)],
                    |r| r.get(0),
                )?;
                if !auto_promote {
                    notes.push(format!(
                        "Production is pinned since a rollback: this deployment stays at its own URL; `scalemesh promote {id}` makes it live"
                    ));
                } else if newer_live {
                    notes.push("A newer deployment is live already; this one stays at its own URL".to_owned());
                } else {
                    tx.execute(
                        "UPDATE projects SET production_deployment = ?2, updated_at = ?3 WHERE id = ?1",
                        params![current.project_id, id, now_ms()],
                    )?;
                    super::aliases::record_move(
                        &tx,
                        current.project_id,
                        &id,
                        previous.as_deref(),
                        super::aliases::AliasAction::Deploy,
                        "build",
                    )?;
                    notes.push(format!("Live at {live_url}"));
                    moved_from = Some(
                        previous.map(|p| DeploymentId::parse(&p)).transpose().map_err(corrupt)?,
                    );
                }
            }
            let now = OffsetDateTime::now_utc();
            let lines = super::logs::insert(&tx, &id, notes.into_iter().map(|n| (LogStream::System, n, now)))?;
            let row = deployment_by_id(&tx, &id)?.ok_or_else(|| corrupt("deployment vanished"))?;
            tx.commit()?;
            Ok(Ok(Readied { row, lines, moved_from }))
        })
        .await
    }

    pub async fn insert_deployment(&self, new: NewDeployment) -> DbResult<DeploymentRow> {
        self.call(move |conn| {
            conn.execute(
                "INSERT INTO deployments (id, project_id, status, phase, source_kind, git_url, git_ref, promote, created_at, created_by)
                 VALUES (?1, ?2, 'queued', 'queued', ?3, ?4, ?5, ?6, ?7, ?8)",
                params![new.id.as_str(), new.project_id, new.source_kind, new.git_url, new.git_ref, new.promote, now_ms(), new.created_by],
            )?;
            deployment_by_id(conn, new.id.as_str())?.ok_or_else(|| corrupt("inserted deployment vanished"))
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

    /// Applies `t` if the lifecycle allows it from the current status (a phase change within the
    /// same status always is). `Err(current)` when it does not.
    pub async fn transition(
        &self,
        id: &DeploymentId,
        t: Transition,
    ) -> DbResult<TransitionOutcome> {
        let id = id.to_string();
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let Some(current) = deployment_by_id(&tx, &id)? else {
                return Ok(TransitionOutcome::NotFound);
            };
            let same = current.status == t.to && !t.to.is_terminal();
            if !same && !current.status.can_become(t.to) {
                return Ok(TransitionOutcome::Refused(current.status));
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
            tx.execute(
                "UPDATE deployments SET status = ?2, phase = ?3, progress_done = ?4, progress_total = ?5,
                 reason = COALESCE(?6, reason) WHERE id = ?1",
                params![id, t.to.as_str(), t.phase.as_str(), done, total, t.reason],
            )?;
            if let Some(column) = stamp {
                tx.execute(
                    &format!("UPDATE deployments SET {column} = ?2 WHERE id = ?1"),
                    params![id, now],
                )?;
            }
            let lines = match t.note {
                Some(note) => super::logs::insert(
                    &tx,
                    &id,
                    [(LogStream::System, note, OffsetDateTime::now_utc())],
                )?,
                None => Vec::new(),
            };
            let row = deployment_by_id(&tx, &id)?.ok_or_else(|| corrupt("deployment vanished"))?;
            tx.commit()?;
            Ok(TransitionOutcome::Applied { row, lines })
        })
        .await
    }
}
