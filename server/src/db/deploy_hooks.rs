//! Deploy hooks: a project's secret URLs that build a branch when POSTed, kept by the SHA-256
//! of their secret.

use rusqlite::{OptionalExtension, params};
use scalemesh_core::ProjectName;
use time::OffsetDateTime;

use super::error::DbResult;
use super::store::{SqliteStore, from_ms, now_ms};

/// Deploy hooks one project may have.
pub const MAX_DEPLOY_HOOKS: i64 = 20;

#[derive(Debug, Clone)]
pub struct DeployHookRow {
    pub id: i64,
    pub project: ProjectName,
    pub name: String,
    /// The branch it builds; the project's own when `None`.
    pub branch: Option<String>,
    /// Who made it (the project's owner when that user is gone): its builds are theirs.
    pub acting_user: i64,
    pub created_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
}

const SELECT: &str = "SELECT h.id, p.name, h.name, h.branch, COALESCE(h.created_by, p.owner_id),
    h.created_at, h.last_used_at FROM deploy_hooks h JOIN projects p ON p.id = h.project_id";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeployHookRow> {
    let project: String = r.get(1)?;
    Ok(DeployHookRow {
        id: r.get(0)?,
        project: ProjectName::parse(&project).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, e.into())
        })?,
        name: r.get(2)?,
        branch: r.get(3)?,
        acting_user: r.get(4)?,
        created_at: from_ms(r.get(5)?),
        last_used_at: r.get::<_, Option<i64>>(6)?.map(from_ms),
    })
}

impl SqliteStore {
    /// Adds a hook; `None` when the project has as many as it may.
    pub async fn add_deploy_hook(
        &self,
        project_id: i64,
        name: &str,
        branch: Option<&str>,
        secret_hash: Vec<u8>,
        by: i64,
    ) -> DbResult<Option<DeployHookRow>> {
        let (name, branch) = (name.to_owned(), branch.map(str::to_owned));
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let count: i64 = tx.query_row(
                "SELECT COUNT(*) FROM deploy_hooks WHERE project_id = ?1",
                params![project_id],
                |r| r.get(0),
            )?;
            if count >= MAX_DEPLOY_HOOKS {
                return Ok(None);
            }
            tx.execute(
                "INSERT INTO deploy_hooks (project_id, name, branch, secret_hash, created_by, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![project_id, name, branch, secret_hash, by, now_ms()],
            )?;
            let id = tx.last_insert_rowid();
            let made = tx.query_row(&format!("{SELECT} WHERE h.id = ?1"), params![id], row)?;
            tx.commit()?;
            Ok(Some(made))
        })
        .await
    }

    pub async fn deploy_hooks_of(&self, project_id: i64) -> DbResult<Vec<DeployHookRow>> {
        self.read(move |conn| {
            let mut q = conn.prepare(&format!("{SELECT} WHERE h.project_id = ?1 ORDER BY h.id"))?;
            let rows = q.query_map(params![project_id], row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// The hook whose secret hashes to `secret_hash`, marked used now.
    pub async fn use_deploy_hook(&self, secret_hash: Vec<u8>) -> DbResult<Option<DeployHookRow>> {
        self.call(move |conn| {
            conn.execute(
                "UPDATE deploy_hooks SET last_used_at = ?2 WHERE secret_hash = ?1",
                params![secret_hash, now_ms()],
            )?;
            Ok(conn
                .query_row(
                    &format!("{SELECT} WHERE h.secret_hash = ?1"),
                    params![secret_hash],
                    row,
                )
                .optional()?)
        })
        .await
    }

    /// Removes hook `id` of `project_id`; whether there was one.
    pub async fn remove_deploy_hook(&self, project_id: i64, id: i64) -> DbResult<bool> {
        self.call(move |conn| {
            Ok(conn.execute(
                "DELETE FROM deploy_hooks WHERE id = ?1 AND project_id = ?2",
                params![id, project_id],
            )? > 0)
        })
        .await
    }
}
