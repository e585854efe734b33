//! Projects connected to their repository: the connection (forge, production branch, sealed
//! webhook secret), the deliveries received (so a retried one is found), and the preview labels
//! of branches and pull requests with what each serves.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, params};
use scalemesh_core::DeploymentId;
use time::OffsetDateTime;

use super::error::{DbError, DbResult};
use super::store::{SqliteStore, from_ms, now_ms};

/// Deliveries kept per project: the newest.
const DELIVERIES_KEPT: i64 = 100;

#[derive(Debug, Clone)]
pub struct GitConnectionRow {
    pub provider: String,
    pub production_branch: String,
    /// The webhook secret, sealed.
    pub secret: Vec<u8>,
    /// Who connected it: deployments its deliveries start are theirs (the project's owner when
    /// that user is gone).
    pub acting_user: i64,
    pub connected_at: OffsetDateTime,
    /// The forge token commit statuses are set with, sealed; none: no statuses.
    pub status_token: Option<Vec<u8>>,
    /// The forge's REST API, when not its default.
    pub api_url: Option<String>,
    /// How often its branches are listed (milliseconds); none: only webhooks deploy.
    pub poll_ms: Option<i64>,
    /// The credential builds of its repository fetch with, sealed.
    pub deploy_token: Option<Vec<u8>>,
}

/// A commit status to set on the forge.
#[derive(Debug, Clone)]
pub struct StatusRow {
    pub id: i64,
    pub project_id: i64,
    pub deployment: String,
    pub sha: String,
    pub state: String,
    pub target_url: String,
    pub description: String,
    pub attempts: u32,
}

/// A connection as it is set: forge, production branch, sealed secret, and for commit
/// statuses the sealed token and API.
#[derive(Debug, Clone)]
pub struct NewConnection {
    pub provider: String,
    pub production_branch: String,
    pub secret: Vec<u8>,
    pub status_token: Option<Vec<u8>>,
    pub api_url: Option<String>,
    pub poll_ms: Option<i64>,
    pub deploy_token: Option<Vec<u8>>,
}

#[derive(Debug, Clone)]
pub struct DeliveryRow {
    pub id: String,
    pub event: String,
    pub outcome: String,
    pub deployment: Option<DeploymentId>,
    pub received_at: OffsetDateTime,
}

/// A branch's or pull request's preview host, and the deployment it serves once one is ready.
#[derive(Debug, Clone)]
pub struct LabelRow {
    pub label: String,
    /// `branch` or `pull_request`.
    pub kind: String,
    /// The branch, or the pull request's number.
    pub name: String,
    pub deployment: Option<DeploymentId>,
}

fn parse_id(raw: Option<String>) -> DbResult<Option<DeploymentId>> {
    raw.map(|id| DeploymentId::parse(&id).map_err(DbError::corrupt))
        .transpose()
}

impl SqliteStore {
    /// Connects `project_id` (again: a new secret replaces the old one).
    pub async fn connect_git(&self, project_id: i64, new: NewConnection, by: i64) -> DbResult<()> {
        self.call(move |conn| {
            conn.execute(
                "INSERT INTO git_connections (project_id, provider, production_branch, secret, connected_by,
                    connected_at, status_token, api_url, poll_ms, polled_at, deploy_token)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?6, ?10)
                 ON CONFLICT (project_id) DO UPDATE SET provider = excluded.provider,
                    production_branch = excluded.production_branch, secret = excluded.secret,
                    connected_by = excluded.connected_by, connected_at = excluded.connected_at,
                    status_token = excluded.status_token, api_url = excluded.api_url,
                    poll_ms = excluded.poll_ms, polled_at = excluded.polled_at,
                    deploy_token = excluded.deploy_token",
                params![project_id, new.provider, new.production_branch, new.secret, by, now_ms(),
                    new.status_token, new.api_url, new.poll_ms, new.deploy_token],
            )?;
            Ok(())
        })
        .await
    }

    /// Disconnects `project_id`; whether it was connected. Its deliveries go with it; its
    /// preview labels stay (their hosts keep serving until the branch goes).
    pub async fn disconnect_git(&self, project_id: i64) -> DbResult<bool> {
        self.call(move |conn| {
            let tx = conn.transaction()?;
            let gone = tx.execute(
                "DELETE FROM git_connections WHERE project_id = ?1",
                params![project_id],
            )? > 0;
            tx.execute(
                "DELETE FROM git_deliveries WHERE project_id = ?1",
                params![project_id],
            )?;
            tx.commit()?;
            Ok(gone)
        })
        .await
    }

    pub async fn git_connection(&self, project_id: i64) -> DbResult<Option<GitConnectionRow>> {
        self.read(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT g.provider, g.production_branch, g.secret,
                            COALESCE(g.connected_by, p.owner_id), g.connected_at, g.status_token, g.api_url,
                            g.poll_ms, g.deploy_token
                     FROM git_connections g JOIN projects p ON p.id = g.project_id
                     WHERE g.project_id = ?1",
                    params![project_id],
                    |r| {
                        Ok(GitConnectionRow {
                            provider: r.get(0)?,
                            production_branch: r.get(1)?,
                            secret: r.get(2)?,
                            acting_user: r.get(3)?,
                            connected_at: from_ms(r.get(4)?),
                            status_token: r.get(5)?,
                            api_url: r.get(6)?,
                            poll_ms: r.get(7)?,
                            deploy_token: r.get(8)?,
                        })
                    },
                )
                .optional()?)
        })
        .await
    }

    /// Records that delivery `id` arrived, unless it did before: `None` when it is new, else
    /// the first one's record.
    pub async fn first_delivery(
        &self,
        project_id: i64,
        id: &str,
        event: &str,
    ) -> DbResult<Option<DeliveryRow>> {
        let (id, event) = (id.to_owned(), event.to_owned());
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let seen = tx
                .query_row(
                    "SELECT delivery_id, event, outcome, deployment_id, received_at FROM git_deliveries
                     WHERE project_id = ?1 AND delivery_id = ?2",
                    params![project_id, id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .optional()?;
            if let Some((id, event, outcome, deployment, at)) = seen {
                return Ok(Some(DeliveryRow {
                    id,
                    event,
                    outcome,
                    deployment: parse_id(deployment)?,
                    received_at: from_ms(at),
                }));
            }
            tx.execute(
                "INSERT INTO git_deliveries (project_id, delivery_id, event, outcome, received_at)
                 VALUES (?1, ?2, ?3, 'received', ?4)",
                params![project_id, id, event, now_ms()],
            )?;
            tx.execute(
                "DELETE FROM git_deliveries WHERE project_id = ?1 AND rowid NOT IN
                    (SELECT rowid FROM git_deliveries WHERE project_id = ?1
                     ORDER BY received_at DESC, rowid DESC LIMIT ?2)",
                params![project_id, DELIVERIES_KEPT],
            )?;
            tx.commit()?;
            Ok(None)
        })
        .await
    }

    /// What became of delivery `id`.
    pub async fn delivery_outcome(
        &self,
        project_id: i64,
        id: &str,
        outcome: &str,
        deployment: Option<&DeploymentId>,
    ) -> DbResult<()> {
        let (id, outcome) = (id.to_owned(), outcome.to_owned());
        let deployment = deployment.map(|d| d.to_string());
        self.call(move |conn| {
            conn.execute(
                "UPDATE git_deliveries SET outcome = ?3, deployment_id = ?4
                 WHERE project_id = ?1 AND delivery_id = ?2",
                params![project_id, id, outcome, deployment],
            )?;
            Ok(())
        })
        .await
    }

    /// The newest deliveries of `project_id`, newest first.
    pub async fn deliveries(&self, project_id: i64, limit: u32) -> DbResult<Vec<DeliveryRow>> {
        self.read(move |conn| {
            let mut q = conn.prepare(
                "SELECT delivery_id, event, outcome, deployment_id, received_at FROM git_deliveries
                 WHERE project_id = ?1 ORDER BY received_at DESC, rowid DESC LIMIT ?2",
            )?;
            let rows = q
                .query_map(params![project_id, limit], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .collect::<Result<Vec<(String, String, String, Option<String>, i64)>, _>>()?;
            rows.into_iter()
                .map(|(id, event, outcome, deployment, at)| {
                    Ok(DeliveryRow {
                        id,
                        event,
                        outcome,
                        deployment: parse_id(deployment)?,
                        received_at: from_ms(at),
                    })
                })
                .collect()
        })
        .await
    }

    /// The label of the branch or pull request `(kind, name)` of `project_id`, made with
    /// `choose` when it has none yet: `choose(false)` first, `choose(true)` (a form with a
    /// suffix of its own) when another branch has that label already.
    pub async fn preview_label(
        &self,
        project_id: i64,
        kind: &str,
        name: &str,
        choose: impl Fn(bool) -> String + Send + 'static,
    ) -> DbResult<String> {
        let (kind, name) = (kind.to_owned(), name.to_owned());
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let found: Option<String> = tx
                .query_row(
                    "SELECT label FROM preview_labels WHERE project_id = ?1 AND kind = ?2 AND name = ?3",
                    params![project_id, kind, name],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(label) = found {
                return Ok(label);
            }
            let mut label = choose(false);
            let taken = |label: &str| {
                tx.query_row(
                    "SELECT 1 FROM preview_labels WHERE project_id = ?1 AND label = ?2",
                    params![project_id, label],
                    |_| Ok(()),
                )
                .optional()
                .map(|found| found.is_some())
            };
            if taken(&label)? {
                label = choose(true);
            }
            tx.execute(
                "INSERT INTO preview_labels (project_id, label, kind, name, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![project_id, label, kind, name, now_ms()],
            )?;
            tx.commit()?;
            Ok(label)
        })
        .await
    }

    /// Points `label` of `project_id` at `deployment`, unless the label serves a newer one
    /// already (two builds of a branch can end out of order); whether it moved. A label whose
    /// deployment was removed moves as one that serves none.
    pub async fn move_label(
        &self,
        project_id: i64,
        label: &str,
        deployment: &DeploymentId,
    ) -> DbResult<bool> {
        let (label, deployment) = (label.to_owned(), deployment.to_string());
        self.call(move |conn| {
            Ok(conn.execute(
                "UPDATE preview_labels SET deployment_id = ?3, updated_at = ?4
                 WHERE project_id = ?1 AND label = ?2 AND (deployment_id IS NULL OR
                    NOT EXISTS (SELECT 1 FROM deployments WHERE id = deployment_id) OR
                    (SELECT created_at FROM deployments WHERE id = deployment_id) <=
                    (SELECT created_at FROM deployments WHERE id = ?3))",
                params![project_id, label, deployment, now_ms()],
            )? > 0)
        })
        .await
    }

    /// Forgets the label of the branch or pull request `(kind, name)`: the label, if it had one.
    pub async fn drop_label(
        &self,
        project_id: i64,
        kind: &str,
        name: &str,
    ) -> DbResult<Option<String>> {
        let (kind, name) = (kind.to_owned(), name.to_owned());
        self.call(move |conn| {
            Ok(conn
                .query_row(
                    "DELETE FROM preview_labels WHERE project_id = ?1 AND kind = ?2 AND name = ?3
                     RETURNING label",
                    params![project_id, kind, name],
                    |r| r.get(0),
                )
                .optional()?)
        })
        .await
    }

    pub async fn labels_of(&self, project_id: i64) -> DbResult<Vec<LabelRow>> {
        self.read(move |conn| {
            let mut q = conn.prepare(
                "SELECT label, kind, name, deployment_id FROM preview_labels
                 WHERE project_id = ?1 ORDER BY label",
            )?;
            let rows = q
                .query_map(params![project_id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?
                .collect::<Result<Vec<(String, String, String, Option<String>)>, _>>()?;
            rows.into_iter()
                .map(|(label, kind, name, deployment)| {
                    Ok(LabelRow {
                        label,
                        kind,
                        name,
                        deployment: parse_id(deployment)?,
                    })
                })
                .collect()
        })
        .await
    }

    /// The deployments of `project_id` still queued for `label`, to be superseded.
    pub async fn queued_for_label(
        &self,
        project_id: i64,
        label: &str,
    ) -> DbResult<Vec<DeploymentId>> {
        let label = label.to_owned();
        self.read(move |conn| {
            let mut q = conn.prepare(
                "SELECT id FROM deployments
                 WHERE project_id = ?1 AND preview_label = ?2 AND status = 'queued'",
            )?;
            let ids = q
                .query_map(params![project_id, label], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            ids.iter()
                .map(|id| DeploymentId::parse(id).map_err(DbError::corrupt))
                .collect()
        })
        .await
    }

    /// Queues a commit status for the forge.
    pub async fn queue_status(&self, status: StatusRow) -> DbResult<()> {
        self.call(move |conn| {
            let now = now_ms();
            conn.execute(
                "INSERT INTO commit_statuses (project_id, deployment_id, sha, state, target_url, description, next_at, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
                params![status.project_id, status.deployment, status.sha, status.state,
                    status.target_url, status.description, now],
            )?;
            Ok(())
        })
        .await
    }

    /// Statuses due by now, oldest first (in the order they happened, so a deployment's
    /// `pending` is set before its `success`); and when the next one not yet due is.
    pub async fn due_statuses(
        &self,
        limit: u32,
    ) -> DbResult<(Vec<StatusRow>, Option<OffsetDateTime>)> {
        self.call(move |conn| {
            let now = now_ms();
            // A state not set yet when a newer one of its deployment came is never set: it
            // would hide the newer one.
            conn.execute(
                "UPDATE commit_statuses SET done = 1, last_error = 'a newer state came first'
                 WHERE done = 0 AND EXISTS (SELECT 1 FROM commit_statuses n
                    WHERE n.deployment_id = commit_statuses.deployment_id AND n.id > commit_statuses.id)",
                [],
            )?;
            let mut q = conn.prepare(
                "SELECT id, project_id, deployment_id, sha, state, target_url, description, attempts
                 FROM commit_statuses WHERE done = 0 AND next_at <= ?1 ORDER BY id LIMIT ?2",
            )?;
            let due = q
                .query_map(params![now, limit], |r| {
                    Ok(StatusRow {
                        id: r.get(0)?,
                        project_id: r.get(1)?,
                        deployment: r.get(2)?,
                        sha: r.get(3)?,
                        state: r.get(4)?,
                        target_url: r.get(5)?,
                        description: r.get(6)?,
                        attempts: r.get(7)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let next: Option<i64> = conn.query_row(
                "SELECT MIN(next_at) FROM commit_statuses WHERE done = 0 AND next_at > ?1",
                params![now],
                |r| r.get(0),
            )?;
            Ok((due, next.map(from_ms)))
        })
        .await
    }

    /// What one attempt to set status `id` came to: done (set, or out of attempts) or tried
    /// again in `retry_in_ms`.
    pub async fn status_attempted(
        &self,
        id: i64,
        done: bool,
        error: Option<String>,
        retry_in_ms: i64,
    ) -> DbResult<()> {
        self.call(move |conn| {
            conn.execute(
                "UPDATE commit_statuses SET done = ?2, attempts = attempts + 1, last_error = ?3,
                    next_at = ?4 WHERE id = ?1",
                params![id, done, error, now_ms() + retry_in_ms],
            )?;
            conn.execute(
                "DELETE FROM commit_statuses WHERE done = 1 AND created_at < ?1",
                params![now_ms() - 7 * 24 * 3600 * 1000],
            )?;
            Ok(())
        })
        .await
    }

    /// The connected projects whose branches are due to be listed (by name), marked listed now.
    pub async fn due_polls(&self) -> DbResult<Vec<String>> {
        self.call(move |conn| {
            let now = now_ms();
            let tx = conn.transaction()?;
            let due = {
                let mut q = tx.prepare(
                    "SELECT g.project_id, p.name FROM git_connections g JOIN projects p ON p.id = g.project_id
                     WHERE g.poll_ms IS NOT NULL AND COALESCE(g.polled_at, 0) + g.poll_ms <= ?1",
                )?;
                q.query_map(params![now], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?
                    .collect::<Result<Vec<_>, _>>()?
            };
            for (id, _) in &due {
                tx.execute(
                    "UPDATE git_connections SET polled_at = ?2 WHERE project_id = ?1",
                    params![id, now],
                )?;
            }
            tx.commit()?;
            Ok(due.into_iter().map(|(_, name)| name).collect())
        })
        .await
    }

    /// Each branch's head when the project's branches were last listed.
    pub async fn polled_heads(&self, project_id: i64) -> DbResult<BTreeMap<String, String>> {
        self.read(move |conn| {
            let mut q =
                conn.prepare("SELECT branch, sha FROM polled_heads WHERE project_id = ?1")?;
            let heads = q
                .query_map(params![project_id], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<BTreeMap<_, _>, _>>()?;
            Ok(heads)
        })
        .await
    }

    /// Replaces the heads remembered for `project_id`.
    pub async fn set_polled_heads(
        &self,
        project_id: i64,
        heads: BTreeMap<String, String>,
    ) -> DbResult<()> {
        self.call(move |conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "DELETE FROM polled_heads WHERE project_id = ?1",
                params![project_id],
            )?;
            for (branch, sha) in heads {
                tx.execute(
                    "INSERT INTO polled_heads (project_id, branch, sha) VALUES (?1, ?2, ?3)",
                    params![project_id, branch, sha],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A branch's label moves to a newer build, never back to an older one, and past a
    /// deployment that was removed (or its branch preview would stay on nothing for good).
    #[tokio::test]
    async fn a_label_moves_forward_and_past_a_removed_deployment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("db.sqlite")).expect("open");
        let ids: Vec<DeploymentId> = (0..3).map(|_| DeploymentId::generate()).collect();
        let rows = ids.clone();
        store
            .call(move |conn| {
                conn.execute_batch(
                    "INSERT INTO users (id, name, created_at) VALUES (1, 'ann', 0);
                     INSERT INTO projects (id, name, owner_id, created_at, updated_at)
                     VALUES (1, 'site', 1, 0, 0);",
                )?;
                for (n, id) in rows.iter().enumerate() {
                    conn.execute(
                        "INSERT INTO deployments (id, project_id, status, phase, source_kind,
                            promote, created_at)
                         VALUES (?1, 1, 'ready', 'done', 'git', 0, ?2)",
                        params![id.to_string(), n as i64],
                    )?;
                }
                Ok(())
            })
            .await
            .expect("rows");
        let label = store
            .preview_label(1, "branch", "main", |_| "main".into())
            .await
            .expect("label");
        let moved = |n: usize| store.move_label(1, &label, &ids[n]);
        assert!(moved(1).await.expect("move"));
        assert!(!moved(0).await.expect("move"), "never back");
        let gone = ids[1].to_string();
        store
            .call(move |conn| {
                conn.execute("DELETE FROM deployments WHERE id = ?1", params![gone])?;
                Ok(())
            })
            .await
            .expect("remove");
        assert!(moved(2).await.expect("move"), "past a removed one");
    }
}
