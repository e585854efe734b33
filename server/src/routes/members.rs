//! `/api/v1/projects/{name}/members`: who has which role on a project.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use scalemesh_core::access::UserName;
use scalemesh_core::wire::{AddMember, Member, MemberList};

use crate::access::{Action, ProjectAccess};
use crate::app::App;
use crate::auth::Caller;
use crate::db::{MemberChange, MemberRow, User};
use crate::error::{ApiError, ApiJson, ApiResult};

fn view(row: MemberRow) -> ApiResult<Member> {
    Ok(Member {
        user: UserName::parse(&row.user).map_err(anyhow::Error::from)?,
        role: row.role,
        created_at: row.created_at,
    })
}

/// The user `name`; 404 (also for names that cannot be users).
async fn user(app: &App, name: &str) -> ApiResult<User> {
    let missing = || {
        ApiError::NotFound(format!(
            "there is no user {:?}",
            name.chars().take(60).collect::<String>()
        ))
    };
    let name = UserName::parse(name).map_err(|_| missing())?;
    app.store
        .user_by_name(name.as_str())
        .await?
        .ok_or_else(missing)
}

fn last_owner(project: &ProjectAccess) -> ApiError {
    ApiError::conflict(
        "last_owner",
        format!(
            "{} needs an owner: make someone else owner first",
            project.row.name
        ),
    )
}

pub async fn list(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<MemberList>> {
    let project = app.project_for(&caller, &name, Action::ViewProject).await?;
    let rows = app.store.members_of(project.row.id).await?;
    Ok(Json(MemberList {
        members: rows.into_iter().map(view).collect::<ApiResult<_>>()?,
    }))
}

/// Adds a member, or changes their role: 201 when they are new, 200 otherwise.
pub async fn add(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<AddMember>,
) -> ApiResult<(StatusCode, Json<Member>)> {
    let project = app
        .project_for(&caller, &name, Action::ManageMembers)
        .await?;
    let user = user(&app, &body.user).await?;
    let status = match app
        .store
        .set_member(project.row.id, user.id, body.role)
        .await?
    {
        MemberChange::Added => StatusCode::CREATED,
        MemberChange::LastOwner => return Err(last_owner(&project)),
        _ => StatusCode::OK,
    };
    let member = app
        .store
        .members_of(project.row.id)
        .await?
        .into_iter()
        .find(|m| m.user == user.name)
        .ok_or_else(|| anyhow::anyhow!("a member just set is missing"))?;
    Ok((status, Json(view(member)?)))
}

pub async fn remove(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path((name, member)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let project = app
        .project_for(&caller, &name, Action::ManageMembers)
        .await?;
    let user = user(&app, &member).await?;
    match app.store.remove_member(project.row.id, user.id).await? {
        MemberChange::Removed => Ok(StatusCode::NO_CONTENT),
        MemberChange::LastOwner => Err(last_owner(&project)),
        _ => Err(ApiError::NotFound(format!(
            "{} is not a member of {}",
            user.name, project.row.name
        ))),
    }
}
