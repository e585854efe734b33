//! Who may do what: the rules (`rules.rs`, one table the tests read too), applied to a
//! request's caller and a project. A project the caller may not see is answered as missing,
//! whatever the action; one they may see but not act on is refused, naming the role needed.

mod rules;

pub use rules::{Action, Decision, Grant, Need, ROUTES, RULES, Route, Standing, decide, rule};
use scalemesh_core::DeploymentId;
use scalemesh_core::access::Role;

use crate::app::App;
use crate::auth::Caller;
use crate::db::{DeploymentRow, ProjectRow};
use crate::error::{ApiError, ApiResult};

/// A project the caller may act on, and the role they act with.
pub struct ProjectAccess {
    pub row: ProjectRow,
    pub role: Role,
    standing: Standing,
}

impl ProjectAccess {
    /// Whether the caller may also take `action` on this project.
    pub fn allows(&self, caller: &Caller, action: Action) -> bool {
        decide(&caller.grant(), Some(self.standing), action) == Decision::Allow
    }

    /// [`ProjectAccess::allows`], or the refusal.
    pub fn check(&self, caller: &Caller, action: Action) -> ApiResult<()> {
        answer(decide(&caller.grant(), Some(self.standing), action), || {
            self.missing()
        })
    }

    fn missing(&self) -> ApiError {
        ApiError::NotFound(format!("project {} does not exist", self.row.name))
    }
}

fn answer(decision: Decision, missing: impl FnOnce() -> ApiError) -> ApiResult<()> {
    match decision {
        Decision::Allow => Ok(()),
        Decision::Hidden => Err(missing()),
        Decision::Denied(message) => Err(ApiError::Forbidden(message)),
    }
}

impl Caller {
    /// What the caller holds, whatever the project: the user's admin flag and the token's role
    /// and reach.
    pub fn grant(&self) -> Grant {
        Grant {
            admin: self.user.admin,
            token_role: self.token.role,
            limited: self.token.projects.is_some(),
        }
    }

    /// Refuses an action on no project (tokens, users, creating a project) the caller may not
    /// take.
    pub fn may(&self, action: Action) -> ApiResult<()> {
        answer(decide(&self.grant(), None, action), || {
            ApiError::NotFound("not found".into())
        })
    }
}

impl App {
    /// The caller's standing on `project`.
    pub async fn standing(&self, caller: &Caller, project: &ProjectRow) -> ApiResult<Standing> {
        Ok(Standing {
            member: self.store.member_role(project.id, caller.user.id).await?,
            in_scope: caller.covers(project.id),
        })
    }

    /// The project `name` if the caller may take `action` on it; 404 when they may not see it
    /// (exactly as when it does not exist), 403 when they may see it but not do this.
    pub async fn project_for(
        &self,
        caller: &Caller,
        name: &str,
        action: Action,
    ) -> ApiResult<ProjectAccess> {
        let name = crate::routes::parse::parse_project_name(name)?;
        let missing = || ApiError::NotFound(format!("project {name} does not exist"));
        let row = self.store.project(&name).await?.ok_or_else(missing)?;
        self.access(caller, row, action, missing).await
    }

    /// The deployment `id` and its project, if the caller may take `action` on that project;
    /// 404 when they may not see it.
    pub async fn deployment_for(
        &self,
        caller: &Caller,
        id: &str,
        action: Action,
    ) -> ApiResult<(DeploymentRow, ProjectAccess)> {
        let id = DeploymentId::parse(id)
            .map_err(|e| ApiError::bad_request("invalid_id", e.to_string()))?;
        let missing = || ApiError::NotFound(format!("deployment {id} does not exist"));
        let dep = self.store.deployment(&id).await?.ok_or_else(missing)?;
        let row = self
            .store
            .project(&dep.project)
            .await?
            .ok_or_else(missing)?;
        let access = self.access(caller, row, action, missing).await?;
        Ok((dep, access))
    }

    async fn access(
        &self,
        caller: &Caller,
        row: ProjectRow,
        action: Action,
        missing: impl FnOnce() -> ApiError,
    ) -> ApiResult<ProjectAccess> {
        let standing = self.standing(caller, &row).await?;
        let grant = caller.grant();
        answer(decide(&grant, Some(standing), action), missing)?;
        let role = grant.role_on(standing).unwrap_or(Role::Viewer);
        Ok(ProjectAccess {
            row,
            role,
            standing,
        })
    }
}
