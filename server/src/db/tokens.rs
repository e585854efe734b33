//! Users and their API tokens. Only SHA-256 hashes of tokens are stored.

use rusqlite::{OptionalExtension, params};

use super::{DbResult, SqliteStore, now_ms};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub name: String,
}

impl SqliteStore {
    /// The user named `name`, created if missing.
    pub async fn ensure_user(&self, name: &str) -> DbResult<User> {
        let name = name.to_owned();
        self.call(move |conn| {
            conn.execute(
                "INSERT INTO users (name, created_at) VALUES (?1, ?2) ON CONFLICT(name) DO NOTHING",
                params![name, now_ms()],
            )?;
            let id =
                conn.query_row("SELECT id FROM users WHERE name = ?1", params![name], |r| {
                    r.get(0)
                })?;
            Ok(User { id, name })
        })
        .await
    }

    pub async fn add_token(&self, user_id: i64, hash: Vec<u8>, label: &str) -> DbResult<()> {
        let label = label.to_owned();
        self.call(move |conn| {
            conn.execute(
                "INSERT INTO tokens (user_id, hash, label, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![user_id, hash, label, now_ms()],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn user_by_token_hash(&self, hash: Vec<u8>) -> DbResult<Option<User>> {
        self.read(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT u.id, u.name FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = ?1",
                    params![hash],
                    |r| Ok(User { id: r.get(0)?, name: r.get(1)? }),
                )
                .optional()?)
        })
        .await
    }
}
