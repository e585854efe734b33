//! Idempotency keys of deploy requests: the same key and request within a day answer the
//! deployment the first request made, so a client that retries never starts two builds.

use rusqlite::{OptionalExtension, params};
use scalemesh_core::DeploymentId;

use super::error::{DbError, DbResult};
use super::store::{SqliteStore, now_ms};

/// How long a key is remembered.
const KEEP_MS: i64 = 24 * 3600 * 1000;
/// A request that holds a key this long without finishing is taken to have died with its
/// server.
const STALE_CLAIM_MS: i64 = 10 * 60 * 1000;

#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// The key is new: go on, then `finish_idempotency` or `drop_idempotency`.
    New,
    /// The same request was made before and made this deployment.
    Replay(DeploymentId),
    /// The key was used for another request.
    Mismatch,
    /// A request with this key is being handled right now.
    InProgress,
}

impl SqliteStore {
    pub async fn claim_idempotency(
        &self,
        user_id: i64,
        key: &str,
        request_hash: Vec<u8>,
    ) -> DbResult<Claim> {
        let key = key.to_owned();
        self.call(move |conn| {
            let now = now_ms();
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            tx.execute(
                "DELETE FROM idempotency_keys WHERE created_at < ?1
                    OR (deployment_id IS NULL AND created_at < ?2)",
                params![now - KEEP_MS, now - STALE_CLAIM_MS],
            )?;
            let found: Option<(Vec<u8>, Option<String>)> = tx
                .query_row(
                    "SELECT request_hash, deployment_id FROM idempotency_keys WHERE user_id = ?1 AND key = ?2",
                    params![user_id, key],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            // A deployment gone with its project no longer answers for its key.
            let found = match found {
                Some((_, Some(id)))
                    if tx
                        .query_row("SELECT 1 FROM deployments WHERE id = ?1", params![id], |_| Ok(()))
                        .optional()?
                        .is_none() =>
                {
                    tx.execute(
                        "DELETE FROM idempotency_keys WHERE user_id = ?1 AND key = ?2",
                        params![user_id, key],
                    )?;
                    None
                }
                other => other,
            };
            let claim = match found {
                Some((hash, _)) if hash != request_hash => Claim::Mismatch,
                Some((_, None)) => Claim::InProgress,
                Some((_, Some(id))) => Claim::Replay(
                    DeploymentId::parse(&id).map_err(|e| DbError::Corrupt(e.to_string()))?,
                ),
                None => {
                    tx.execute(
                        "INSERT INTO idempotency_keys (user_id, key, request_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
                        params![user_id, key, request_hash, now],
                    )?;
                    Claim::New
                }
            };
            tx.commit()?;
            Ok(claim)
        })
        .await
    }

    /// The request holding `key` made `deployment`.
    pub async fn finish_idempotency(
        &self,
        user_id: i64,
        key: &str,
        deployment: &DeploymentId,
    ) -> DbResult<()> {
        let (key, deployment) = (key.to_owned(), deployment.to_string());
        self.call(move |conn| {
            conn.execute(
                "UPDATE idempotency_keys SET deployment_id = ?3 WHERE user_id = ?1 AND key = ?2",
                params![user_id, key, deployment],
            )?;
            Ok(())
        })
        .await
    }

    /// The request holding `key` failed: the key may be used again.
    pub async fn drop_idempotency(&self, user_id: i64, key: &str) -> DbResult<()> {
        let key = key.to_owned();
        self.call(move |conn| {
            conn.execute(
                "DELETE FROM idempotency_keys WHERE user_id = ?1 AND key = ?2 AND deployment_id IS NULL",
                params![user_id, key],
            )?;
            Ok(())
        })
        .await
    }
}
