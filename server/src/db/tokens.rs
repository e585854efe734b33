//! API tokens: stored only as SHA-256 hashes, with what they are narrowed to (a role, some
//! projects), when they expire, were last used or were revoked.

use rusqlite::{OptionalExtension, Row, params};
use scalemesh_core::access::TokenRole;
use time::OffsetDateTime;

use super::error::{DbError, DbResult};
use super::store::{SqliteStore, from_ms, now_ms};
use super::users::{USER_COLUMNS, User, row_to_user};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub prefix: String,
    pub role: TokenRole,
    /// The projects (id, name) it is limited to; `None` for all of its user's.
    pub projects: Option<Vec<(i64, String)>>,
    pub created_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
    pub expires_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
}

/// A token to store.
pub struct NewToken {
    pub user_id: i64,
    pub hash: Vec<u8>,
    pub name: String,
    pub prefix: String,
    pub role: TokenRole,
    pub projects: Option<Vec<i64>>,
    pub expires_at: Option<OffsetDateTime>,
}

const TOKEN_COLUMNS: &str = "t.id, t.user_id, t.label, t.prefix, t.role, t.scoped, t.created_at, t.last_used_at, t.expires_at, t.revoked_at";

fn row_to_token(r: &Row<'_>) -> rusqlite::Result<Result<TokenRow, DbError>> {
    row_to_token_at(r, 0)
}

/// Fills in the projects of a token limited to some.
fn with_projects(conn: &rusqlite::Connection, mut token: TokenRow) -> DbResult<TokenRow> {
    if token.projects.is_some() {
        let mut stmt = conn.prepare_cached(
            "SELECT p.id, p.name FROM token_projects tp JOIN projects p ON p.id = tp.project_id
             WHERE tp.token_id = ?1 ORDER BY p.name",
        )?;
        let rows = stmt.query_map(params![token.id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        token.projects = Some(rows.collect::<Result<_, _>>()?);
    }
    Ok(token)
}

/// Least time between two writes of a token's `last_used_at`.
const LAST_USED_GRAIN_MS: i64 = 60_000;

impl SqliteStore {
    pub async fn add_token(&self, new: NewToken) -> DbResult<TokenRow> {
        self.call(move |conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "INSERT INTO tokens (user_id, hash, label, prefix, role, scoped, expires_at, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    new.user_id,
                    new.hash,
                    new.name,
                    new.prefix,
                    new.role.as_str(),
                    new.projects.is_some(),
                    new.expires_at.map(super::store::to_ms),
                    now_ms()
                ],
            )?;
            let id = tx.last_insert_rowid();
            for project in new.projects.iter().flatten() {
                tx.execute(
                    "INSERT OR IGNORE INTO token_projects (token_id, project_id) VALUES (?1, ?2)",
                    params![id, project],
                )?;
            }
            let token = tx
                .query_row(
                    &format!("SELECT {TOKEN_COLUMNS} FROM tokens t WHERE t.id = ?1"),
                    params![id],
                    row_to_token,
                )??;
            let token = with_projects(&tx, token)?;
            tx.commit()?;
            Ok(token)
        })
        .await
    }

    /// The token with this hash and its user, revoked or expired ones included (the caller
    /// says which it is).
    pub async fn token_by_hash(&self, hash: Vec<u8>) -> DbResult<Option<(User, TokenRow)>> {
        self.read(move |conn| {
            let found = conn
                .query_row(
                    &format!(
                        "SELECT {USER_COLUMNS}, {TOKEN_COLUMNS} FROM tokens t JOIN users u ON u.id = t.user_id
                         WHERE t.hash = ?1"
                    ),
                    params![hash],
                    |r| {
                        let user = row_to_user(r)?;
                        let token = row_to_token_at(r, 4)?;
                        Ok((user, token))
                    },
                )
                .optional()?;
            match found {
                Some((user, token)) => Ok(Some((user, with_projects(conn, token?)?))),
                None => Ok(None),
            }
        })
        .await
    }

    /// Records that `token` was used, at most once a minute.
    pub async fn touch_token(&self, token: &TokenRow) -> DbResult<()> {
        let now = now_ms();
        let fresh = token
            .last_used_at
            .is_some_and(|t| now - super::store::to_ms(t) < LAST_USED_GRAIN_MS);
        if fresh {
            return Ok(());
        }
        let id = token.id;
        self.call(move |conn| {
            conn.execute(
                "UPDATE tokens SET last_used_at = ?2 WHERE id = ?1",
                params![id, now],
            )?;
            Ok(())
        })
        .await
    }

    /// The user's tokens that are not revoked, newest first.
    pub async fn tokens_of(&self, user_id: i64) -> DbResult<Vec<TokenRow>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {TOKEN_COLUMNS} FROM tokens t WHERE t.user_id = ?1 AND t.revoked_at IS NULL
                 ORDER BY t.id DESC"
            ))?;
            let rows = stmt.query_map(params![user_id], row_to_token)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(with_projects(conn, row??)?);
            }
            Ok(out)
        })
        .await
    }

    /// Revokes the user's token `id`; `false` when they have no such token (or it is revoked).
    pub async fn revoke_token(&self, user_id: i64, id: i64) -> DbResult<bool> {
        self.call(move |conn| {
            let changed = conn.execute(
                "UPDATE tokens SET revoked_at = ?3 WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL",
                params![id, user_id, now_ms()],
            )?;
            Ok(changed == 1)
        })
        .await
    }
}

/// [`row_to_token`] for a row whose token columns start at `at`.
fn row_to_token_at(r: &Row<'_>, at: usize) -> rusqlite::Result<Result<TokenRow, DbError>> {
    let role: String = r.get(at + 4)?;
    let scoped: bool = r.get(at + 5)?;
    let role = match role.parse::<TokenRole>() {
        Ok(role) => role,
        Err(e) => return Ok(Err(DbError::Corrupt(e))),
    };
    Ok(Ok(TokenRow {
        id: r.get(at)?,
        user_id: r.get(at + 1)?,
        name: r.get(at + 2)?,
        prefix: r.get(at + 3)?,
        role,
        projects: scoped.then(Vec::new),
        created_at: from_ms(r.get(at + 6)?),
        last_used_at: r.get::<_, Option<i64>>(at + 7)?.map(from_ms),
        expires_at: r.get::<_, Option<i64>>(at + 8)?.map(from_ms),
        revoked_at: r.get::<_, Option<i64>>(at + 9)?.map(from_ms),
    }))
}
