//! Projects: a name (unique across users, since it is a host name), the user it belongs to
//! (its creator, or whom a removed creator's projects passed to), a repository and build
//! settings, and the production alias. Variables are in `env.rs`, members in `users.rs`.

use rusqlite::{OptionalExtension, Row, params};
use scalemesh_core::access::Role;
use scalemesh_core::retention::Retention;
use scalemesh_core::site_config::BuildSettings;
use scalemesh_core::{DeploymentId, ProjectName};
use time::OffsetDateTime;

use super::error::{DbError, DbResult};
use super::holds::{self, Held, HoldKind};
use super::store::{SqliteStore, from_ms, now_ms};

#[derive(Debug, Clone)]
pub struct ProjectRow {
    pub id: i64,
    pub name: ProjectName,
    pub owner_id: i64,
    pub git_url: Option<String>,
    pub git_ref: Option<String>,
    pub build: BuildSettings,
    pub production_deployment: Option<DeploymentId>,
    /// Production stays where a rollback put it: ready builds do not go live by themselves.
    pub pinned: bool,
    /// How long its deployments are kept.
    pub retention: Retention,
    /// The names of its variables, sorted.
    pub env_keys: Vec<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub struct NewProject {
    pub name: ProjectName,
    pub owner_id: i64,
    pub git_url: Option<String>,
    pub git_ref: Option<String>,
    pub build: BuildSettings,
}

/// What creating a project did.
#[derive(Debug)]
pub enum Creation {
    Created(Box<ProjectRow>),
    Taken,
    /// The name was a deleted project's, held for its owner.
    Held(Held),
}

/// Columns of `projects p`, and the names of its variables.
const COLUMNS: &str = "p.id, p.name, p.owner_id, p.git_url, p.git_ref, p.build, p.production_deployment, p.created_at, p.updated_at,
    (SELECT json_group_array(DISTINCT e.key) FROM env_vars e WHERE e.project_id = p.id), p.auto_promote, p.retention";

fn row_to_project(r: &Row<'_>) -> rusqlite::Result<Result<ProjectRow, DbError>> {
    let name: String = r.get(1)?;
    let build: String = r.get(5)?;
    let production: Option<String> = r.get(6)?;
    let env_keys: Option<String> = r.get(9)?;
    let retention: Option<String> = r.get(11)?;
    let parsed = (|| {
        Ok(ProjectRow {
            id: r.get(0)?,
            name: ProjectName::parse(&name).map_err(|e| DbError::Corrupt(e.to_string()))?,
            owner_id: r.get(2)?,
            git_url: r.get(3)?,
            git_ref: r.get(4)?,
            build: serde_json::from_str(&build).map_err(|e| DbError::Corrupt(e.to_string()))?,
            production_deployment: production
                .map(|p| DeploymentId::parse(&p))
                .transpose()
                .map_err(|e| DbError::Corrupt(e.to_string()))?,
            pinned: !r.get::<_, bool>(10)?,
            retention: match retention {
                Some(json) => {
                    serde_json::from_str(&json).map_err(|e| DbError::Corrupt(e.to_string()))?
                }
                None => Retention::default(),
            },
            env_keys: {
                let mut keys: Vec<String> = match env_keys {
                    Some(json) => {
                        serde_json::from_str(&json).map_err(|e| DbError::Corrupt(e.to_string()))?
                    }
                    None => Vec::new(),
                };
                keys.sort();
                keys
            },
            created_at: from_ms(r.get(7)?),
            updated_at: from_ms(r.get(8)?),
        })
    })();
    Ok(parsed)
}

pub(super) fn project_by_name(
    conn: &rusqlite::Connection,
    name: &str,
) -> DbResult<Option<ProjectRow>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM projects p WHERE p.name = ?1"),
        params![name],
        row_to_project,
    )
    .optional()?
    .transpose()
}

fn collect(
    rows: impl Iterator<Item = rusqlite::Result<(Result<ProjectRow, DbError>, Option<String>)>>,
) -> DbResult<Vec<(ProjectRow, Option<Role>)>> {
    let mut out = Vec::new();
    for row in rows {
        let (project, role) = row?;
        let role = role
            .map(|r| r.parse().map_err(DbError::Corrupt))
            .transpose()?;
        out.push((project?, role));
    }
    Ok(out)
}

impl SqliteStore {
    /// Creates a project, with its creator as its owner, unless the name is taken or held for
    /// someone else.
    pub async fn create_project(&self, new: NewProject) -> DbResult<Creation> {
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            if project_by_name(&tx, new.name.as_str())?.is_some() {
                return Ok(Creation::Taken);
            }
            if let Some(held) = holds::claim(&tx, new.name.as_str(), new.owner_id)? {
                return Ok(Creation::Held(held));
            }
            let now = now_ms();
            let build = serde_json::to_string(&new.build).map_err(|e| DbError::Corrupt(e.to_string()))?;
            tx.execute(
                "INSERT INTO projects (name, owner_id, git_url, git_ref, build, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                params![new.name.as_str(), new.owner_id, new.git_url, new.git_ref, build, now],
            )?;
            tx.execute(
                "INSERT INTO members (project_id, user_id, role, created_at) VALUES (?1, ?2, 'owner', ?3)",
                params![tx.last_insert_rowid(), new.owner_id, now],
            )?;
            let row = project_by_name(&tx, new.name.as_str())?
                .ok_or_else(|| DbError::Corrupt("a created project vanished".into()))?;
            tx.commit()?;
            Ok(Creation::Created(Box::new(row)))
        })
        .await
    }

    pub async fn project(&self, name: &ProjectName) -> DbResult<Option<ProjectRow>> {
        let name = name.to_string();
        self.read(move |conn| project_by_name(conn, &name)).await
    }

    /// The projects `user_id` is a member of, with their role; every project for an admin
    /// (with the role they have, if any).
    pub async fn projects_visible_to(
        &self,
        user_id: i64,
        admin: bool,
    ) -> DbResult<Vec<(ProjectRow, Option<Role>)>> {
        self.read(move |conn| {
            let join = if admin { "LEFT JOIN" } else { "JOIN" };
            let mut stmt = conn.prepare(&format!(
                "SELECT {COLUMNS}, m.role FROM projects p
                 {join} members m ON m.project_id = p.id AND m.user_id = ?1 ORDER BY p.name"
            ))?;
            let rows = stmt.query_map(params![user_id], |r| {
                Ok((row_to_project(r)?, r.get::<_, Option<String>>(12)?))
            })?;
            collect(rows)
        })
        .await
    }

    pub async fn update_project(&self, row: ProjectRow) -> DbResult<ProjectRow> {
        self.call(move |conn| {
            let build = serde_json::to_string(&row.build).map_err(|e| DbError::Corrupt(e.to_string()))?;
            let retention = (!row.retention.is_unset())
                .then(|| serde_json::to_string(&row.retention))
                .transpose()
                .map_err(|e| DbError::Corrupt(e.to_string()))?;
            conn.execute(
                "UPDATE projects SET git_url = ?2, git_ref = ?3, build = ?4, retention = ?5, updated_at = ?6 WHERE id = ?1",
                params![row.id, row.git_url, row.git_ref, build, retention, now_ms()],
            )?;
            project_by_name(conn, row.name.as_str())?
                .ok_or_else(|| DbError::Corrupt("updated project vanished".into()))
        })
        .await
    }

    /// Deletes a project; its name and domains stay held for the user it belonged to until
    /// `hold_until`.
    pub async fn delete_project(&self, id: i64, hold_until: OffsetDateTime) -> DbResult<()> {
        let until = super::store::to_ms(hold_until);
        self.call(move |conn| {
            let tx = conn.transaction()?;
            let found: Option<(String, i64)> = tx
                .query_row(
                    "SELECT name, owner_id FROM projects WHERE id = ?1",
                    params![id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((name, owner)) = found else {
                return Ok(());
            };
            holds::hold(&tx, &name, HoldKind::Project, owner, until)?;
            let domains: Vec<String> = {
                let mut stmt = tx.prepare("SELECT host FROM domains WHERE project_id = ?1")?;
                let rows = stmt.query_map(params![id], |r| r.get(0))?;
                rows.collect::<Result<_, _>>()?
            };
            for host in domains {
                holds::hold(&tx, &host, HoldKind::Domain, owner, until)?;
            }
            tx.execute("DELETE FROM projects WHERE id = ?1", params![id])?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Points the production alias at `deployment` (or at nothing).
    pub async fn set_production(
        &self,
        project_id: i64,
        deployment: Option<&DeploymentId>,
    ) -> DbResult<()> {
        let deployment = deployment.map(ToString::to_string);
        self.call(move |conn| {
            conn.execute(
                "UPDATE projects SET production_deployment = ?2, updated_at = ?3 WHERE id = ?1",
                params![project_id, deployment, now_ms()],
            )?;
            Ok(())
        })
        .await
    }
}
