//! Users and their roles on projects (members).

use rusqlite::{OptionalExtension, Row, params};
use scalemesh_core::access::Role;
use time::OffsetDateTime;

use super::error::{DbError, DbResult};
use super::store::{SqliteStore, from_ms, now_ms};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub admin: bool,
    pub created_at: OffsetDateTime,
}

pub(super) const USER_COLUMNS: &str = "u.id, u.name, u.admin, u.created_at";

pub(super) fn row_to_user(r: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        name: r.get(1)?,
        admin: r.get(2)?,
        created_at: from_ms(r.get(3)?),
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    pub user: String,
    pub role: Role,
    pub created_at: OffsetDateTime,
}

/// What removing a user did.
#[derive(Debug, PartialEq, Eq)]
pub enum Removal {
    Removed,
    NoSuchUser,
    /// They are the only admin left.
    LastAdmin,
}

/// What setting or removing a member did.
#[derive(Debug, PartialEq, Eq)]
pub enum MemberChange {
    Added,
    Changed,
    Unchanged,
    Removed,
    NotMember,
    /// The change would leave the project without an owner.
    LastOwner,
}

fn parse_role(raw: String) -> DbResult<Role> {
    raw.parse().map_err(DbError::Corrupt)
}

fn owners_of(conn: &rusqlite::Connection, project_id: i64) -> DbResult<i64> {
    Ok(conn.query_row(
        "SELECT count(*) FROM members WHERE project_id = ?1 AND role = 'owner'",
        params![project_id],
        |r| r.get(0),
    )?)
}

fn role_of(conn: &rusqlite::Connection, project_id: i64, user_id: i64) -> DbResult<Option<Role>> {
    conn.query_row(
        "SELECT role FROM members WHERE project_id = ?1 AND user_id = ?2",
        params![project_id, user_id],
        |r| r.get::<_, String>(0),
    )
    .optional()?
    .map(parse_role)
    .transpose()
}

impl SqliteStore {
    /// Creates a user; `None` when the name is taken.
    pub async fn create_user(&self, name: &str, admin: bool) -> DbResult<Option<User>> {
        let name = name.to_owned();
        self.call(move |conn| {
            let inserted = conn.execute(
                "INSERT INTO users (name, admin, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(name) DO NOTHING",
                params![name, admin, now_ms()],
            )?;
            if inserted == 0 {
                return Ok(None);
            }
            Ok(Some(conn.query_row(
                &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.name = ?1"),
                params![name],
                row_to_user,
            )?))
        })
        .await
    }

    pub async fn user_by_name(&self, name: &str) -> DbResult<Option<User>> {
        let name = name.to_owned();
        self.read(move |conn| {
            Ok(conn
                .query_row(
                    &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.name = ?1"),
                    params![name],
                    row_to_user,
                )
                .optional()?)
        })
        .await
    }

    pub async fn users(&self) -> DbResult<Vec<User>> {
        self.read(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {USER_COLUMNS} FROM users u ORDER BY u.name"
            ))?;
            let rows = stmt.query_map([], row_to_user)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Removes user `gone`: their tokens and memberships go with them; the projects they
    /// created, the names held for them, and owner rights on the projects they owned pass to
    /// `heir`. One transaction.
    pub async fn remove_user(&self, gone: i64, heir: i64) -> DbResult<Removal> {
        self.call(move |conn| {
            let tx = conn.transaction()?;
            let admin: Option<bool> = tx
                .query_row("SELECT admin FROM users WHERE id = ?1", params![gone], |r| {
                    r.get(0)
                })
                .optional()?;
            let Some(admin) = admin else {
                return Ok(Removal::NoSuchUser);
            };
            let admins: i64 =
                tx.query_row("SELECT count(*) FROM users WHERE admin = 1", [], |r| r.get(0))?;
            if admin && admins <= 1 {
                return Ok(Removal::LastAdmin);
            }
            let now = now_ms();
            tx.execute(
                "UPDATE projects SET owner_id = ?2 WHERE owner_id = ?1",
                params![gone, heir],
            )?;
            tx.execute(
                "INSERT INTO members (project_id, user_id, role, created_at)
                 SELECT project_id, ?2, 'owner', ?3 FROM members WHERE user_id = ?1 AND role = 'owner'
                 ON CONFLICT(project_id, user_id) DO UPDATE SET role = 'owner'",
                params![gone, heir, now],
            )?;
            tx.execute(
                "UPDATE name_holds SET user_id = ?2 WHERE user_id = ?1",
                params![gone, heir],
            )?;
            tx.execute("DELETE FROM users WHERE id = ?1", params![gone])?;
            tx.commit()?;
            Ok(Removal::Removed)
        })
        .await
    }

    /// The user's role on the project, if they are a member.
    pub async fn member_role(&self, project_id: i64, user_id: i64) -> DbResult<Option<Role>> {
        self.read(move |conn| role_of(conn, project_id, user_id))
            .await
    }

    pub async fn members_of(&self, project_id: i64) -> DbResult<Vec<MemberRow>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT u.name, m.role, m.created_at FROM members m JOIN users u ON u.id = m.user_id
                 WHERE m.project_id = ?1 ORDER BY u.name",
            )?;
            let rows = stmt.query_map(params![project_id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (user, role, at) = row?;
                out.push(MemberRow {
                    user,
                    role: parse_role(role)?,
                    created_at: from_ms(at),
                });
            }
            Ok(out)
        })
        .await
    }

    /// Makes `user_id` a member with `role`, or changes their role. The last owner stays one.
    pub async fn set_member(
        &self,
        project_id: i64,
        user_id: i64,
        role: Role,
    ) -> DbResult<MemberChange> {
        self.call(move |conn| {
            let tx = conn.transaction()?;
            let before = role_of(&tx, project_id, user_id)?;
            let change = match before {
                None => MemberChange::Added,
                Some(r) if r == role => return Ok(MemberChange::Unchanged),
                Some(Role::Owner) if owners_of(&tx, project_id)? <= 1 => {
                    return Ok(MemberChange::LastOwner);
                }
                Some(_) => MemberChange::Changed,
            };
            tx.execute(
                "INSERT INTO members (project_id, user_id, role, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(project_id, user_id) DO UPDATE SET role = excluded.role",
                params![project_id, user_id, role.as_str(), now_ms()],
            )?;
            tx.commit()?;
            Ok(change)
        })
        .await
    }

    /// Removes a member. The last owner stays.
    pub async fn remove_member(&self, project_id: i64, user_id: i64) -> DbResult<MemberChange> {
        self.call(move |conn| {
            let tx = conn.transaction()?;
            match role_of(&tx, project_id, user_id)? {
                None => return Ok(MemberChange::NotMember),
                Some(Role::Owner) if owners_of(&tx, project_id)? <= 1 => {
                    return Ok(MemberChange::LastOwner);
                }
                Some(_) => {}
            }
            tx.execute(
                "DELETE FROM members WHERE project_id = ?1 AND user_id = ?2",
                params![project_id, user_id],
            )?;
            tx.commit()?;
            Ok(MemberChange::Removed)
        })
        .await
    }
}
