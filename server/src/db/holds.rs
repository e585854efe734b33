//! Names held after a project is deleted: its name and its custom domains stay bound to its
//! owner for a while, so nobody else can serve their content at the old addresses at once.

use rusqlite::{OptionalExtension, params};
use time::OffsetDateTime;

use super::error::DbResult;
use super::store::{SqliteStore, from_ms, now_ms};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldRow {
    pub name: String,
    pub kind: HoldKind,
    pub held_for: Option<String>,
    pub until: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldKind {
    Project,
    Domain,
}

impl HoldKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Project => "project",
            Self::Domain => "domain",
        }
    }
}

/// A name someone else holds, until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    pub until: OffsetDateTime,
}

/// Whether `name` is held for someone other than `user_id`; a hold of their own is given up,
/// since they are taking the name back.
pub(super) fn claim(
    conn: &rusqlite::Connection,
    name: &str,
    user_id: i64,
) -> DbResult<Option<Held>> {
    let now = now_ms();
    let hold: Option<(Option<i64>, i64)> = conn
        .query_row(
            "SELECT user_id, until FROM name_holds WHERE name = ?1 AND until > ?2",
            params![name, now],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    match hold {
        Some((holder, until)) if holder != Some(user_id) => Ok(Some(Held {
            until: from_ms(until),
        })),
        _ => {
            conn.execute("DELETE FROM name_holds WHERE name = ?1", params![name])?;
            Ok(None)
        }
    }
}

/// Holds `name` for `user_id` until `until`.
pub(super) fn hold(
    conn: &rusqlite::Connection,
    name: &str,
    kind: HoldKind,
    user_id: i64,
    until: i64,
) -> DbResult<()> {
    conn.execute(
        "INSERT INTO name_holds (name, kind, user_id, until) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(name) DO UPDATE SET kind = excluded.kind, user_id = excluded.user_id, until = excluded.until",
        params![name, kind.as_str(), user_id, until],
    )?;
    Ok(())
}

impl SqliteStore {
    /// Names held now, soonest free first.
    pub async fn holds(&self) -> DbResult<Vec<HoldRow>> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT h.name, h.kind, u.name, h.until FROM name_holds h
                 LEFT JOIN users u ON u.id = h.user_id WHERE h.until > ?1 ORDER BY h.until, h.name",
            )?;
            let rows = stmt.query_map(params![now_ms()], |r| {
                let kind: String = r.get(1)?;
                Ok(HoldRow {
                    name: r.get(0)?,
                    kind: if kind == "domain" {
                        HoldKind::Domain
                    } else {
                        HoldKind::Project
                    },
                    held_for: r.get(2)?,
                    until: from_ms(r.get(3)?),
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Frees a held name for anyone; `false` when it was not held.
    pub async fn release_hold(&self, name: &str) -> DbResult<bool> {
        let name = name.to_owned();
        self.call(move |conn| {
            let removed = conn.execute(
                "DELETE FROM name_holds WHERE name = ?1 AND until > ?2",
                params![name, now_ms()],
            )?;
            conn.execute(
                "DELETE FROM name_holds WHERE until <= ?1",
                params![now_ms()],
            )?;
            Ok(removed > 0)
        })
        .await
    }
}
