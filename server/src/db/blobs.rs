//! Which blobs each project holds, and which each deployment names. A blob is recorded once its
//! object is known to be stored (sent through the server, or found in storage when its
//! deployment becomes ready); a deployment names its blobs from its digest handshake on (a
//! claim) and, once ready, exactly those of its manifest. The sweep deletes only blobs no
//! deployment names.

use std::collections::{HashMap, HashSet};

use rusqlite::params;
use scalemesh_core::DeploymentId;
use scalemesh_core::layout::InPack;

use super::error::DbResult;
use super::store::{SqliteStore, now_ms};

/// A stored blob: the file's size, its variants after it, and the pack it is in, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRow {
    pub size: u64,
    pub br: Option<u64>,
    pub gzip: Option<u64>,
    pub pack: Option<InPack>,
}

fn blob_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<BlobRow> {
    let pack: Option<String> = r.get(3)?;
    let offset: Option<i64> = r.get(4)?;
    Ok(BlobRow {
        size: size(r.get(0)?).unwrap_or(0),
        br: size(r.get(1)?),
        gzip: size(r.get(2)?),
        pack: pack.map(|sha256| InPack {
            sha256,
            offset: size(offset).unwrap_or(0),
        }),
    })
}

const BLOB_COLUMNS: &str = "size, br, gzip, pack, pack_offset";

/// The recorded blobs of `project_id` among the digests of the JSON array `all`, in one query.
fn recorded_among(
    conn: &rusqlite::Connection,
    project_id: i64,
    all: &str,
) -> DbResult<HashMap<String, BlobRow>> {
    let mut q = conn.prepare_cached(&format!(
        "SELECT {BLOB_COLUMNS}, sha256 FROM blobs
         WHERE project_id = ?1 AND sha256 IN (SELECT value FROM json_each(?2))"
    ))?;
    let rows = q.query_map(params![project_id, all], |r| Ok((r.get(5)?, blob_row(r)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn size(v: Option<i64>) -> Option<u64> {
    v.and_then(|v| u64::try_from(v).ok())
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// What a handshake finds of the digests it claims.
#[derive(Debug, Default)]
pub struct Claimed {
    pub present: HashMap<String, BlobRow>,
    /// Not recorded: to be sent.
    pub missing: Vec<String>,
}

impl SqliteStore {
    /// Records that `deployment` names these digests, and answers which the project holds.
    pub async fn claim_blobs(
        &self,
        deployment: &DeploymentId,
        project_id: i64,
        digests: Vec<String>,
    ) -> DbResult<Claimed> {
        let deployment = deployment.to_string();
        let all = serde_json::to_string(&digests).unwrap_or_else(|_| "[]".into());
        self.call(move |conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "INSERT OR IGNORE INTO deployment_blobs (deployment_id, sha256)
                 SELECT ?1, value FROM json_each(?2)",
                params![deployment, all],
            )?;
            let present = recorded_among(&tx, project_id, &all)?;
            tx.commit()?;
            let missing = digests
                .into_iter()
                .filter(|sha| !present.contains_key(sha))
                .collect();
            Ok(Claimed { present, missing })
        })
        .await
    }

    /// Records blobs known to be stored for `project_id`; a blob recorded already keeps its
    /// record (deployments read it as recorded; one that says otherwise fails its check).
    pub async fn record_blobs(
        &self,
        project_id: i64,
        rows: Vec<(String, BlobRow)>,
    ) -> DbResult<()> {
        self.call(move |conn| {
            let tx = conn.transaction()?;
            {
                let mut put = tx.prepare_cached(
                    "INSERT INTO blobs (project_id, sha256, size, br, gzip, pack, pack_offset, stored_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     ON CONFLICT (project_id, sha256) DO NOTHING",
                )?;
                let now = now_ms();
                for (sha, row) in rows {
                    put.execute(params![
                        project_id,
                        sha,
                        int(row.size),
                        row.br.map(int),
                        row.gzip.map(int),
                        row.pack.as_ref().map(|p| p.sha256.as_str()),
                        row.pack.as_ref().map(|p| int(p.offset)),
                        now
                    ])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// The recorded blobs of `project_id` among `digests`.
    pub async fn known_blobs(
        &self,
        project_id: i64,
        digests: Vec<String>,
    ) -> DbResult<HashMap<String, BlobRow>> {
        let all = serde_json::to_string(&digests).unwrap_or_else(|_| "[]".into());
        self.call(move |conn| recorded_among(conn, project_id, &all))
            .await
    }

    /// `deployment` names exactly these blobs from now on (those of its manifest).
    pub async fn set_deployment_blobs(
        &self,
        deployment: &DeploymentId,
        digests: Vec<String>,
    ) -> DbResult<()> {
        let deployment = deployment.to_string();
        self.call(move |conn| {
            let tx = conn.transaction()?;
            let named: HashSet<String> = {
                let mut q =
                    tx.prepare("SELECT sha256 FROM deployment_blobs WHERE deployment_id = ?1")?;
                q.query_map(params![deployment], |r| r.get(0))?
                    .collect::<Result<_, _>>()?
            };
            let wanted: HashSet<String> = digests.into_iter().collect();
            {
                // Only what differs is written: a handshake claimed these already, as a rule.
                let mut drop = tx.prepare_cached(
                    "DELETE FROM deployment_blobs WHERE deployment_id = ?1 AND sha256 = ?2",
                )?;
                for sha in named.difference(&wanted) {
                    drop.execute(params![deployment, sha])?;
                }
                let mut claim = tx.prepare_cached(
                    "INSERT OR IGNORE INTO deployment_blobs (deployment_id, sha256) VALUES (?1, ?2)",
                )?;
                for sha in wanted.difference(&named) {
                    claim.execute(params![deployment, sha])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Lets go of the blobs named by deployments of `project_id` that ended without becoming
    /// ready: builds at once (a build is never resumed), prebuilt uploads when they ended before
    /// `finished_before` (milliseconds; until then, running the deploy again resumes); how many
    /// claims went.
    pub async fn release_claims(&self, project_id: i64, finished_before: i64) -> DbResult<usize> {
        self.call(move |conn| {
            Ok(conn.execute(
                "DELETE FROM deployment_blobs WHERE deployment_id IN (
                     SELECT id FROM deployments WHERE project_id = ?1
                     AND status IN ('failed', 'canceled')
                     AND (source_kind <> 'prebuilt' OR finished_at < ?2))",
                params![project_id, finished_before],
            )?)
        })
        .await
    }

    /// Forgets the blobs of `project_id` that no deployment names, and answers them: their
    /// objects are the sweep's to delete.
    pub async fn take_unnamed_blobs(&self, project_id: i64) -> DbResult<Vec<String>> {
        self.call(move |conn| {
            let tx = conn.transaction()?;
            let unnamed: Vec<String> = {
                let mut q = tx.prepare(
                    "SELECT b.sha256 FROM blobs b WHERE b.project_id = ?1 AND b.sha256 NOT IN (
                         SELECT db.sha256 FROM deployments d
                         JOIN deployment_blobs db ON db.deployment_id = d.id
                         WHERE d.project_id = ?1)",
                )?;
                q.query_map(params![project_id], |r| r.get(0))?
                    .collect::<Result<_, _>>()?
            };
            {
                let mut forget =
                    tx.prepare("DELETE FROM blobs WHERE project_id = ?1 AND sha256 = ?2")?;
                for sha in &unnamed {
                    forget.execute(params![project_id, sha])?;
                }
            }
            tx.commit()?;
            Ok(unnamed)
        })
        .await
    }

    /// The blobs `deployment` named that no other deployment names and that are not recorded:
    /// those only its upload can have stored.
    pub async fn blobs_only_of(
        &self,
        deployment: &DeploymentId,
        project_id: i64,
    ) -> DbResult<Vec<String>> {
        let deployment = deployment.to_string();
        self.read(move |conn| {
            let mut q = conn.prepare(
                "SELECT db.sha256 FROM deployment_blobs db WHERE db.deployment_id = ?1
                 AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.project_id = ?2 AND b.sha256 = db.sha256)
                 AND db.sha256 NOT IN (SELECT pack FROM blobs WHERE project_id = ?2 AND pack IS NOT NULL)
                 AND db.sha256 NOT IN (SELECT o.sha256 FROM deployments d
                                       JOIN deployment_blobs o ON o.deployment_id = d.id
                                       WHERE d.project_id = ?2 AND d.id <> ?1)",
            )?;
            let shas = q
                .query_map(params![deployment, project_id], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            Ok(shas)
        })
        .await
    }

    /// Every digest of `project_id` that is recorded or named by a deployment.
    pub async fn blobs_in_use(&self, project_id: i64) -> DbResult<HashSet<String>> {
        self.call(move |conn| {
            let mut q = conn.prepare(
                "SELECT sha256 FROM blobs WHERE project_id = ?1
                 UNION SELECT pack FROM blobs WHERE project_id = ?1 AND pack IS NOT NULL
                 UNION SELECT db.sha256 FROM deployment_blobs db
                 JOIN deployments d ON d.id = db.deployment_id WHERE d.project_id = ?1",
            )?;
            let used = q
                .query_map(params![project_id], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            Ok(used)
        })
        .await
    }
}

impl SqliteStore {
    /// Deletes a deployment that was just made and is still uploading, with its claims and log
    /// (one whose start was refused); whether it did.
    pub async fn forget_started(&self, id: &DeploymentId) -> DbResult<bool> {
        let id = id.to_string();
        self.call(move |conn| {
            Ok(conn.execute(
                "DELETE FROM deployments WHERE id = ?1 AND status = 'uploading'",
                params![id],
            )? > 0)
        })
        .await
    }

    /// Deletes a deployment that is finished and not production, with its claims and log;
    /// whether it did.
    pub async fn delete_deployment(&self, id: &DeploymentId) -> DbResult<bool> {
        let id = id.to_string();
        self.call(move |conn| {
            Ok(conn.execute(
                "DELETE FROM deployments WHERE id = ?1
                 AND status IN ('ready', 'failed', 'canceled')
                 AND NOT EXISTS (SELECT 1 FROM projects WHERE production_deployment = ?1)",
                params![id],
            )? > 0)
        })
        .await
    }

    /// The deployments of the project's most recent production moves, newest first.
    pub async fn recent_production(&self, project_id: i64, n: usize) -> DbResult<Vec<String>> {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let mut q = conn.prepare(
                "SELECT deployment_id FROM alias_events WHERE project_id = ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let ids = q
                .query_map(params![project_id, n], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            Ok(ids)
        })
        .await
    }

    /// Every project's id and name.
    pub async fn project_ids(&self) -> DbResult<Vec<(i64, String)>> {
        self.read(|conn| {
            let mut q = conn.prepare("SELECT id, name FROM projects ORDER BY id")?;
            let rows = q
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
    }
}
