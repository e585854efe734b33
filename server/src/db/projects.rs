//! Projects: a name (unique across users, since it is a host name), an owner, a repository and
//! build settings, environment variables and the production alias.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, Row, params};
use scalemesh_core::site_config::BuildSettings;
use scalemesh_core::{DeploymentId, ProjectName};
use time::OffsetDateTime;

use super::{DbError, DbResult, SqliteStore, from_ms, now_ms};

#[derive(Debug, Clone)]
pub struct ProjectRow {
    pub id: i64,
    pub name: ProjectName,
    pub owner_id: i64,
    pub git_url: Option<String>,
    pub git_ref: Option<String>,
    pub build: BuildSettings,
    pub env: BTreeMap<String, String>,
    pub production_deployment: Option<DeploymentId>,
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
    pub env: BTreeMap<String, String>,
}

const COLUMNS: &str = "id, name, owner_id, git_url, git_ref, build, env, production_deployment, created_at, updated_at";

fn row_to_project(r: &Row<'_>) -> rusqlite::Result<Result<ProjectRow, DbError>> {
    let name: String = r.get(1)?;
    let build: String = r.get(5)?;
    let env: String = r.get(6)?;
    let production: Option<String> = r.get(7)?;
    let parsed = (|| {
        Ok(ProjectRow {
            id: r.get(0)?,
            name: ProjectName::parse(&name).map_err(|e| DbError::Corrupt(e.to_string()))?,
            owner_id: r.get(2)?,
            git_url: r.get(3)?,
            git_ref: r.get(4)?,
            build: serde_json::from_str(&build).map_err(|e| DbError::Corrupt(e.to_string()))?,
            env: serde_json::from_str(&env).map_err(|e| DbError::Corrupt(e.to_string()))?,
            production_deployment: production
                .map(|p| DeploymentId::parse(&p))
                .transpose()
                .map_err(|e| DbError::Corrupt(e.to_string()))?,
            created_at: from_ms(r.get(8)?),
            updated_at: from_ms(r.get(9)?),
        })
    })();
    Ok(parsed)
}

pub(super) fn project_by_name(
    conn: &rusqlite::Connection,
    name: &str,
) -> DbResult<Option<ProjectRow>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM projects WHERE name = ?1"),
        params![name],
        row_to_project,
    )
    .optional()?
    .transpose()
}

impl SqliteStore {
    /// Creates a project; `None` when the name is taken.
    pub async fn create_project(&self, new: NewProject) -> DbResult<Option<ProjectRow>> {
        self.call(move |conn| {
            let now = now_ms();
            let build = serde_json::to_string(&new.build).map_err(|e| DbError::Corrupt(e.to_string()))?;
            let env = serde_json::to_string(&new.env).map_err(|e| DbError::Corrupt(e.to_string()))?;
            let inserted = conn.execute(
                "INSERT INTO projects (name, owner_id, git_url, git_ref, build, env, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) ON CONFLICT(name) DO NOTHING",
                params![new.name.as_str(), new.owner_id, new.git_url, new.git_ref, build, env, now],
            )?;
            if inserted == 0 {
                return Ok(None);
            }
            project_by_name(conn, new.name.as_str())
        })
        .await
    }

    pub async fn project(&self, name: &ProjectName) -> DbResult<Option<ProjectRow>> {
        let name = name.to_string();
        self.read(move |conn| project_by_name(conn, &name)).await
    }

    pub async fn projects_of(&self, owner_id: i64) -> DbResult<Vec<ProjectRow>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {COLUMNS} FROM projects WHERE owner_id = ?1 ORDER BY name"
            ))?;
            let rows = stmt.query_map(params![owner_id], row_to_project)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(row??);
            }
            Ok(out)
        })
        .await
    }

    pub async fn update_project(&self, row: ProjectRow) -> DbResult<ProjectRow> {
        self.call(move |conn| {
            let build = serde_json::to_string(&row.build).map_err(|e| DbError::Corrupt(e.to_string()))?;
            let env = serde_json::to_string(&row.env).map_err(|e| DbError::Corrupt(e.to_string()))?;
            conn.execute(
                "UPDATE projects SET git_url = ?2, git_ref = ?3, build = ?4, env = ?5, updated_at = ?6 WHERE id = ?1",
                params![row.id, row.git_url, row.git_ref, build, env, now_ms()],
            )?;
            project_by_name(conn, row.name.as_str())?
                .ok_or_else(|| DbError::Corrupt("updated project vanished".into()))
        })
        .await
    }

    pub async fn delete_project(&self, id: i64) -> DbResult<()> {
        self.call(move |conn| {
            conn.execute("DELETE FROM projects WHERE id = ?1", params![id])?;
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
