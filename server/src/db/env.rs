//! Project variables, one row per key and target, the value sealed (`crate::secrets`): this
//! module never sees a value in clear, except once, to seal what an older version stored in
//! `projects.env`.

use std::collections::BTreeMap;

use rusqlite::params;
use scalemesh_core::access::EnvTarget;
use time::OffsetDateTime;

use super::error::{DbError, DbResult};
use super::store::{SqliteStore, from_ms, now_ms};
use crate::secrets::{RowId, SecretBox};

/// Most variables (keys) a project has.
pub const MAX_KEYS: usize = 200;

#[derive(Debug, Clone)]
pub struct EnvRow {
    pub key: String,
    pub target: EnvTarget,
    pub sealed: Vec<u8>,
    pub sensitive: bool,
    pub updated_at: OffsetDateTime,
    pub updated_by: Option<String>,
}

/// A value to store, sealed for its row.
pub struct NewEnv {
    pub key: String,
    pub target: EnvTarget,
    pub sealed: Vec<u8>,
    pub sensitive: bool,
}

/// More than [`MAX_KEYS`] keys would result.
#[derive(Debug)]
pub struct TooManyKeys;

fn parse_target(raw: &str) -> DbResult<EnvTarget> {
    EnvTarget::ALL
        .into_iter()
        .find(|t| t.as_str() == raw)
        .ok_or_else(|| DbError::Corrupt(format!("{raw:?} is not a variable target")))
}

fn rows_of(
    conn: &rusqlite::Connection,
    project_id: i64,
    key: Option<&str>,
) -> DbResult<Vec<EnvRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT e.key, e.target, e.sealed, e.sensitive, e.updated_at, u.name
         FROM env_vars e LEFT JOIN users u ON u.id = e.updated_by
         WHERE e.project_id = ?1 AND (?2 IS NULL OR e.key = ?2) ORDER BY e.key, e.target",
    )?;
    let rows = stmt.query_map(params![project_id, key], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (key, target, sealed, sensitive, at, by) = row?;
        out.push(EnvRow {
            key,
            target: parse_target(&target)?,
            sealed,
            sensitive,
            updated_at: from_ms(at),
            updated_by: by,
        });
    }
    Ok(out)
}

fn insert(
    tx: &rusqlite::Transaction<'_>,
    project_id: i64,
    values: &[NewEnv],
    by: Option<i64>,
) -> DbResult<Result<(), TooManyKeys>> {
    let now = now_ms();
    for v in values {
        tx.execute(
            "INSERT INTO env_vars (project_id, key, target, sealed, sensitive, updated_at, updated_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT(project_id, key, target) DO UPDATE SET sealed = excluded.sealed,
                 sensitive = excluded.sensitive, updated_at = excluded.updated_at, updated_by = excluded.updated_by",
            params![project_id, v.key, v.target.as_str(), v.sealed, v.sensitive, now, by],
        )?;
    }
    let keys: i64 = tx.query_row(
        "SELECT count(DISTINCT key) FROM env_vars WHERE project_id = ?1",
        params![project_id],
        |r| r.get(0),
    )?;
    Ok(if keys as usize > MAX_KEYS {
        Err(TooManyKeys)
    } else {
        Ok(())
    })
}

impl SqliteStore {
    /// The project's variables (of one key, when given), by key then target.
    pub async fn env_of(&self, project_id: i64, key: Option<&str>) -> DbResult<Vec<EnvRow>> {
        let key = key.map(str::to_owned);
        self.read(move |conn| rows_of(conn, project_id, key.as_deref()))
            .await
    }

    /// Sets values, all or none; answers the rows of the keys written.
    pub async fn put_env(
        &self,
        project_id: i64,
        values: Vec<NewEnv>,
        by: i64,
    ) -> DbResult<Result<Vec<EnvRow>, TooManyKeys>> {
        self.call(move |conn| {
            let tx = conn.transaction()?;
            if let Err(e) = insert(&tx, project_id, &values, Some(by))? {
                return Ok(Err(e));
            }
            let mut written = Vec::new();
            for row in rows_of(&tx, project_id, None)? {
                if values
                    .iter()
                    .any(|v| v.key == row.key && v.target == row.target)
                {
                    written.push(row);
                }
            }
            tx.commit()?;
            Ok(Ok(written))
        })
        .await
    }

    /// Replaces every variable of the project with `values`.
    pub async fn replace_env(
        &self,
        project_id: i64,
        values: Vec<NewEnv>,
        by: i64,
    ) -> DbResult<Result<(), TooManyKeys>> {
        self.call(move |conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "DELETE FROM env_vars WHERE project_id = ?1",
                params![project_id],
            )?;
            let result = insert(&tx, project_id, &values, Some(by))?;
            if result.is_ok() {
                tx.commit()?;
            }
            Ok(result)
        })
        .await
    }

    /// Removes `key` for `targets`; how many values were removed.
    pub async fn delete_env(
        &self,
        project_id: i64,
        key: &str,
        targets: &'static [EnvTarget],
    ) -> DbResult<usize> {
        let key = key.to_owned();
        self.call(move |conn| {
            let mut removed = 0;
            for target in targets {
                removed += conn.execute(
                    "DELETE FROM env_vars WHERE project_id = ?1 AND key = ?2 AND target = ?3",
                    params![project_id, key, target.as_str()],
                )?;
            }
            Ok(removed)
        })
        .await
    }

    /// One sealed value, if any is stored: to check at start that the key opens them.
    pub async fn any_sealed(&self) -> DbResult<Option<(i64, EnvRow)>> {
        self.read(|conn| {
            let first: Option<i64> = conn
                .query_row("SELECT project_id FROM env_vars LIMIT 1", [], |r| r.get(0))
                .ok();
            match first {
                Some(project_id) => Ok(rows_of(conn, project_id, None)?
                    .into_iter()
                    .next()
                    .map(|row| (project_id, row))),
                None => Ok(None),
            }
        })
        .await
    }

    /// Seals the variables an older version kept in clear in `projects.env` (for both targets,
    /// not sensitive), empties that column, and rewrites the file so the clear values are not
    /// left in its free pages or its write-ahead log. Returns how many projects had some.
    pub async fn seal_plain_env(&self, secrets: SecretBox) -> DbResult<usize> {
        self.call(move |conn| {
            let tx = conn.transaction()?;
            let plain: Vec<(i64, String)> = {
                let mut stmt =
                    tx.prepare("SELECT id, env FROM projects WHERE env NOT IN ('', '{}')")?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect::<Result<_, _>>()?
            };
            for (project_id, json) in &plain {
                let env: BTreeMap<String, String> =
                    serde_json::from_str(json).map_err(|e| DbError::Corrupt(e.to_string()))?;
                let mut values = Vec::new();
                for (key, value) in &env {
                    for target in EnvTarget::ALL {
                        let row = RowId {
                            project_id: *project_id,
                            key,
                            target,
                        };
                        values.push(NewEnv {
                            key: key.clone(),
                            target,
                            sealed: secrets.seal(&row, value),
                            sensitive: false,
                        });
                    }
                }
                // Older versions allowed as many keys as this one: never too many.
                let _ = insert(&tx, *project_id, &values, None)?;
                tx.execute(
                    "UPDATE projects SET env = '{}' WHERE id = ?1",
                    params![project_id],
                )?;
            }
            tx.commit()?;
            if !plain.is_empty() {
                conn.execute_batch("VACUUM")?;
                conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            }
            Ok(plain.len())
        })
        .await
    }

    /// The values a build of `target` gets, still sealed.
    pub async fn env_for_build(&self, project_id: i64, target: EnvTarget) -> DbResult<Vec<EnvRow>> {
        self.read(move |conn| {
            Ok(rows_of(conn, project_id, None)?
                .into_iter()
                .filter(|row| row.target == target)
                .collect())
        })
        .await
    }
}
