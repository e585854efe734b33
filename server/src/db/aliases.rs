//! The production alias's history (every move: a deploy, a promote, a rollback) and custom
//! domains.

use rusqlite::{OptionalExtension, params};
use scalemesh_core::DeploymentId;
use time::OffsetDateTime;

use super::error::{DbError, DbResult};
use super::store::{SqliteStore, from_ms, now_ms};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AliasAction {
    Deploy,
    Promote,
    Rollback,
}

impl AliasAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AliasAction::Deploy => "deploy",
            AliasAction::Promote => "promote",
            AliasAction::Rollback => "rollback",
        }
    }
}

/// What a move changed, so it can be undone when storage refuses the new alias.
#[derive(Debug, Clone)]
pub struct AliasMove {
    pub previous: Option<DeploymentId>,
    pub event_id: i64,
    pub auto_promote_before: bool,
}

#[derive(Debug, Clone)]
pub struct DomainRow {
    pub host: String,
    pub created_at: OffsetDateTime,
}

/// Why a domain cannot be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainTaken {
    /// Another project serves it.
    InUse,
    /// A deleted project served it, and it is held for that project's owner.
    Held(super::holds::Held),
}

pub(super) fn record_move(
    tx: &rusqlite::Transaction<'_>,
    project_id: i64,
    deployment: &str,
    previous: Option<&str>,
    action: AliasAction,
    actor: &str,
) -> DbResult<i64> {
    tx.execute(
        "INSERT INTO alias_events (project_id, deployment_id, previous, action, actor, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            project_id,
            deployment,
            previous,
            action.as_str(),
            actor,
            now_ms()
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

fn parse_id(raw: Option<String>) -> DbResult<Option<DeploymentId>> {
    raw.map(|p| DeploymentId::parse(&p))
        .transpose()
        .map_err(|e| DbError::Corrupt(e.to_string()))
}

impl SqliteStore {
    /// Points `project_id`'s production alias at `deployment` and records the move. A rollback
    /// pins production (new builds stop going live by themselves); a promote unpins it.
    pub async fn move_alias(
        &self,
        project_id: i64,
        deployment: &DeploymentId,
        action: AliasAction,
        actor: &str,
    ) -> DbResult<AliasMove> {
        let (deployment, actor) = (deployment.to_string(), actor.to_owned());
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let (previous, auto): (Option<String>, bool) = tx.query_row(
                "SELECT production_deployment, auto_promote FROM projects WHERE id = ?1",
                params![project_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            tx.execute(
                "UPDATE projects SET production_deployment = ?2, auto_promote = ?3, updated_at = ?4
                 WHERE id = ?1",
                params![
                    project_id,
                    deployment,
                    action != AliasAction::Rollback,
                    now_ms()
                ],
            )?;
            let event_id = record_move(
                &tx,
                project_id,
                &deployment,
                previous.as_deref(),
                action,
                &actor,
            )?;
            tx.commit()?;
            Ok(AliasMove {
                previous: parse_id(previous)?,
                event_id,
                auto_promote_before: auto,
            })
        })
        .await
    }

    /// Takes back a move whose alias could not be written to storage.
    pub async fn undo_alias_move(&self, project_id: i64, undo: &AliasMove) -> DbResult<()> {
        let undo = undo.clone();
        self.call(move |conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "UPDATE projects SET production_deployment = ?2, auto_promote = ?3, updated_at = ?4
                 WHERE id = ?1",
                params![
                    project_id,
                    undo.previous.as_ref().map(ToString::to_string),
                    undo.auto_promote_before,
                    now_ms()
                ],
            )?;
            tx.execute(
                "DELETE FROM alias_events WHERE id = ?1",
                params![undo.event_id],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// The ready deployment that was live before `current`: the newest one older than it that
    /// production ever pointed at.
    pub async fn rollback_target(
        &self,
        project_id: i64,
        current: &DeploymentId,
    ) -> DbResult<Option<DeploymentId>> {
        let current = current.to_string();
        self.read(move |conn| {
            let found: Option<String> = conn
                .query_row(
                    "SELECT d.id FROM deployments d
                     WHERE d.project_id = ?1 AND d.status = 'ready' AND d.id != ?2
                       AND d.created_at < (SELECT created_at FROM deployments WHERE id = ?2)
                       AND EXISTS (SELECT 1 FROM alias_events e WHERE e.deployment_id = d.id)
                     ORDER BY d.created_at DESC LIMIT 1",
                    params![project_id, current],
                    |r| r.get(0),
                )
                .optional()?;
            parse_id(found)
        })
        .await
    }

    /// Adds `host` to the project for `user_id`; `Ok(false)` when the project had it. Refused
    /// when another project has it, or it was a deleted project's and is held for someone else.
    pub async fn add_domain(
        &self,
        project_id: i64,
        host: &str,
        user_id: i64,
    ) -> DbResult<Result<bool, DomainTaken>> {
        let host = host.to_owned();
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let owner: Option<(i64, String)> = tx
                .query_row(
                    "SELECT p.id, p.name FROM domains d JOIN projects p ON p.id = d.project_id
                     WHERE d.host = ?1",
                    params![host],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            match owner {
                Some((id, _)) if id == project_id => Ok(Ok(false)),
                Some(_) => Ok(Err(DomainTaken::InUse)),
                None => {
                    if let Some(held) = super::holds::claim(&tx, &host, user_id)? {
                        return Ok(Err(DomainTaken::Held(held)));
                    }
                    tx.execute(
                        "INSERT INTO domains (host, project_id, created_at) VALUES (?1, ?2, ?3)",
                        params![host, project_id, now_ms()],
                    )?;
                    tx.commit()?;
                    Ok(Ok(true))
                }
            }
        })
        .await
    }

    pub async fn remove_domain(&self, project_id: i64, host: &str) -> DbResult<bool> {
        let host = host.to_owned();
        self.call(move |conn| {
            Ok(conn.execute(
                "DELETE FROM domains WHERE host = ?1 AND project_id = ?2",
                params![host, project_id],
            )? > 0)
        })
        .await
    }

    pub async fn domains_of(&self, project_id: i64) -> DbResult<Vec<DomainRow>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT host, created_at FROM domains WHERE project_id = ?1 ORDER BY host",
            )?;
            let rows = stmt.query_map(params![project_id], |r| {
                Ok(DomainRow {
                    host: r.get(0)?,
                    created_at: from_ms(r.get(1)?),
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }
}
