//! A deployment's row: its columns, how they are read, and the transaction every change of a
//! deployment starts with, which reads the row before anything is decided from it.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params};
use scalemesh_core::wire::{CommitInfo, Progress};
use scalemesh_core::{DeploymentId, DeploymentStatus, Phase, ProjectName};
use time::OffsetDateTime;

/// The source kind of a deployment made from a prebuilt folder (no build).
pub const PREBUILT: &str = "prebuilt";

use super::error::{DbError, DbResult};
use super::store::from_ms;

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
    /// The exact commit asked for.
    pub git_commit: Option<String>,
    pub promote: bool,
    pub job_token_hash: Option<Vec<u8>>,
    /// Who started it (the project's owner for deployments older than that record).
    pub created_by: i64,
    /// The runner's name for the job (an ECS task ARN).
    pub runner_ref: Option<String>,
    /// Built without restoring the build cache, as asked.
    pub no_cache: bool,
    pub production: bool,
    pub created_at: OffsetDateTime,
    pub building_at: Option<OffsetDateTime>,
    pub uploading_at: Option<OffsetDateTime>,
    pub finished_at: Option<OffsetDateTime>,
    /// The commit it was built from, once its builder said.
    pub commit: Option<CommitInfo>,
    /// The branch or pull request preview host it serves once ready (`git-main`, `pr-12`).
    pub preview_label: Option<String>,
}

pub(super) const SELECT: &str = "SELECT d.id, d.project_id, p.name, d.status, d.phase, d.progress_done, d.progress_total,
    d.reason, d.source_kind, d.git_url, d.git_ref, d.promote, d.job_token_hash,
    COALESCE(p.production_deployment = d.id, 0), d.created_at, d.building_at, d.uploading_at, d.finished_at,
    d.runner_ref, COALESCE(d.created_by, p.owner_id), d.no_cache,
    d.commit_sha, d.commit_branch, d.commit_message, d.commit_author, d.git_commit, d.preview_label
    FROM deployments d JOIN projects p ON p.id = d.project_id";

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
    let commit_sha: Option<String> = r.get(21)?;
    let commit = match commit_sha {
        Some(sha) => Some(CommitInfo {
            sha,
            branch: r.get(22)?,
            message: r.get::<_, Option<String>>(23)?.unwrap_or_default(),
            author: r.get::<_, Option<String>>(24)?.unwrap_or_default(),
        }),
        None => None,
    };
    let row = (|| {
        Ok(DeploymentRow {
            id: DeploymentId::parse(&id).map_err(DbError::corrupt)?,
            project_id: r.get(1)?,
            project: ProjectName::parse(&project).map_err(DbError::corrupt)?,
            status: DeploymentStatus::parse(&status).ok_or_else(|| DbError::corrupt(&status))?,
            phase: Phase::parse(&phase).ok_or_else(|| DbError::corrupt(&phase))?,
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
            git_commit: r.get(25)?,
            promote: r.get(11)?,
            job_token_hash: r.get(12)?,
            runner_ref: r.get(18)?,
            created_by: r.get(19)?,
            no_cache: r.get(20)?,
            production: r.get(13)?,
            created_at: from_ms(r.get(14)?),
            building_at: building_at.map(from_ms),
            uploading_at: uploading_at.map(from_ms),
            finished_at: finished_at.map(from_ms),
            commit,
            preview_label: r.get(26)?,
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

pub(super) fn query_many(
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

/// An immediate transaction and the deployment's row as read in it: nothing else changes the
/// deployment until the transaction ends, so what is decided from `current` holds.
pub(super) struct DeploymentTx<'c> {
    pub tx: Transaction<'c>,
    pub id: String,
    pub current: DeploymentRow,
}

impl<'c> DeploymentTx<'c> {
    /// Starts the transaction and reads deployment `id`; `None` when there is no such deployment
    /// (the transaction is then rolled back, having changed nothing).
    pub fn open(conn: &'c mut Connection, id: &str) -> DbResult<Option<Self>> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(current) = deployment_by_id(&tx, id)? else {
            return Ok(None);
        };
        Ok(Some(Self {
            tx,
            id: id.to_owned(),
            current,
        }))
    }

    /// Commits, and answers the row as the transaction left it.
    pub fn commit(self) -> DbResult<DeploymentRow> {
        let row = deployment_by_id(&self.tx, &self.id)?
            .ok_or_else(|| DbError::corrupt("deployment vanished"))?;
        self.tx.commit()?;
        Ok(row)
    }
}
