//! `/api/v1/projects`: create, list, show, update, delete.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use scalemesh_core::ProjectName;
use scalemesh_core::access::{Role, is_reserved_project_name};
use scalemesh_core::git::{GitRef, GitUrl};
use scalemesh_core::site_config::BuildSettings;
use scalemesh_core::wire::{
    AddDomain, CreateProject, Deployment, Domain, DomainList, Project, ProjectList,
    RollbackRequest, UpdateProject,
};

use super::parse::parse_project_name;
use crate::access::{Action, Standing};
use crate::app::App;
use crate::auth::Caller;
use crate::db::{Creation, NewProject};
use crate::error::{ApiError, ApiJson, ApiResult};

pub fn parse_git_url(raw: &str) -> ApiResult<GitUrl> {
    GitUrl::parse(raw)
        .map_err(|e| ApiError::bad_request("invalid_git_url", e.to_string()).on_field("git_url"))
}

pub fn parse_git_ref(raw: Option<&str>) -> ApiResult<Option<GitRef>> {
    raw.map(|r| {
        GitRef::parse(r)
            .map_err(|e| ApiError::bad_request("invalid_ref", e.to_string()).on_field("git_ref"))
    })
    .transpose()
}

/// Each wrong field of the build settings, as an error on that field.
fn build_problems(build: &BuildSettings) -> impl Iterator<Item = Option<ApiError>> {
    build.problems().into_iter().map(|e| {
        let err = ApiError::bad_request("invalid_build_settings", e.to_string());
        Some(match e.field() {
            Some(field) => err.on_field(field),
            None => err,
        })
    })
}

fn check_build(build: &BuildSettings) -> ApiResult<()> {
    ApiError::all(build_problems(build))
}

fn check_env(env: &BTreeMap<String, String>) -> ApiResult<()> {
    if env.len() > crate::db::MAX_ENV_KEYS {
        return Err(ApiError::bad_request(
            "invalid_env",
            format!(
                "a project has at most {} environment variables",
                crate::db::MAX_ENV_KEYS
            ),
        ));
    }
    for (name, value) in env {
        crate::variables::check(name, value)?;
    }
    Ok(())
}

/// A result as its value or its error, to check several fields before refusing any.
fn split<T>(result: ApiResult<T>) -> (Option<T>, Option<ApiError>) {
    match result {
        Ok(value) => (Some(value), None),
        Err(e) => (None, Some(e)),
    }
}

/// A project name from the request, or else from the repository's name.
pub fn name_for(name: Option<&str>, git_url: Option<&GitUrl>) -> ApiResult<ProjectName> {
    match (name, git_url) {
        (Some(name), _) => parse_project_name(name).map_err(|e| e.on_field("name")),
        (None, Some(url)) => url
            .repo_name()
            .and_then(ProjectName::derive)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_name",
                    "no project name can be made from the repository URL; give a name",
                )
                .on_field("name")
            }),
        (None, None) => Err(ApiError::bad_request(
            "missing_field",
            "give a project name or a git_url",
        )),
    }
}

pub async fn create_project_row(
    app: &App,
    caller: &Caller,
    body: CreateProject,
) -> ApiResult<crate::db::ProjectRow> {
    caller.may(Action::CreateProject)?;
    // Every field is checked before any is refused, so a form can mark all of its mistakes.
    let (git_url, bad_url) = split(body.git_url.as_deref().map(parse_git_url).transpose());
    let (git_ref, bad_ref) = split(parse_git_ref(body.git_ref.as_deref()));
    let (name, bad_name) = match (&git_url, body.name.as_deref()) {
        (Some(url), name) => split(name_for(name, url.as_ref())),
        // Without a valid URL a name is checked only when one is given.
        (None, Some(name)) => split(name_for(Some(name), None)),
        (None, None) => (None, None),
    };
    let build = body.build.unwrap_or_default();
    ApiError::all(
        [bad_url, bad_ref, bad_name]
            .into_iter()
            .chain(build_problems(&build)),
    )?;
    let (Some(git_url), Some(git_ref), Some(name)) = (git_url, git_ref, name) else {
        return Err(anyhow::anyhow!("a checked field has no value").into());
    };
    if let Some(url) = &git_url {
        app.check_git_host(url)?;
    }
    if is_reserved_project_name(name.as_str()) {
        return Err(ApiError::conflict(
            "name_reserved",
            format!("{name} is a name the platform keeps for itself; choose another name"),
        )
        .on_field("name"));
    }
    let env = body.env.unwrap_or_default();
    check_env(&env)?;
    if !env.is_empty() && caller.grant().token_role.cap() < Role::Owner {
        // Its creator owns the project, but this token acts at most as a developer.
        return Err(ApiError::Forbidden(format!(
            "setting production variables needs the owner role; this is a {} token: create the project without env, or with a full token",
            caller.grant().token_role
        )));
    }
    let new = NewProject {
        name: name.clone(),
        owner_id: caller.user.id,
        git_url: git_url.map(String::from),
        git_ref: git_ref.map(String::from),
        build,
    };
    let row = match app.store.create_project(new).await? {
        Creation::Created(row) => *row,
        Creation::Taken => {
            return Err(ApiError::conflict(
                "name_taken",
                format!("a project named {name} exists already; choose another name"),
            )
            .on_field("name"));
        }
        Creation::Held(held) => {
            return Err(ApiError::conflict(
                "name_held",
                format!(
                    "{name} was a deleted project's name and is held for its owner until {}; choose another name, or ask an admin to release it",
                    crate::views::day(held.until)
                ),
            )
            .on_field("name"));
        }
    };
    if !env.is_empty() {
        app.replace_env(&row, &env, caller.user.id).await?;
    }
    Ok(app.store.project(&row.name).await?.unwrap_or(row))
}

pub async fn create(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateProject>,
) -> ApiResult<(StatusCode, Json<Project>)> {
    let row = create_project_row(&app, &caller, body).await?;
    let role = caller.grant().token_role.cap();
    Ok((
        StatusCode::CREATED,
        Json(app.project_view(&row, Some(role))),
    ))
}

/// The projects the caller can see (with this token), each with the role they act with.
pub async fn list(State(app): State<Arc<App>>, caller: Caller) -> ApiResult<Json<ProjectList>> {
    let grant = caller.grant();
    let rows = app
        .store
        .projects_visible_to(caller.user.id, caller.user.admin)
        .await?;
    let projects = rows
        .iter()
        .filter_map(|(row, member)| {
            let standing = Standing {
                member: *member,
                in_scope: caller.covers(row.id),
            };
            grant
                .role_on(standing)
                .map(|role| app.project_view(row, Some(role)))
        })
        .collect();
    Ok(Json(ProjectList { projects }))
}

pub async fn show(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Project>> {
    let project = app.project_for(&caller, &name, Action::ViewProject).await?;
    Ok(Json(app.project_view(&project.row, Some(project.role))))
}

pub async fn update(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<UpdateProject>,
) -> ApiResult<Json<Project>> {
    let project = app
        .project_for(&caller, &name, Action::EditSettings)
        .await?;
    let mut row = project.row.clone();
    if let Some(url) = body.git_url.as_deref() {
        let url = parse_git_url(url)?;
        app.check_git_host(&url)?;
        row.git_url = Some(url.into());
    }
    if let Some(r) = body.git_ref.as_deref() {
        row.git_ref = parse_git_ref(Some(r))?.map(String::from);
    }
    if let Some(build) = &body.build {
        check_build(build)?;
        row.build = build.clone();
    }
    if let Some(env) = &body.env {
        project.check(&caller, Action::WriteProductionEnv)?;
        check_env(env)?;
    }
    if let Some(retention) = body.retention {
        row.retention = retention;
    }
    let row = app.store.update_project(row).await?;
    if let Some(env) = &body.env {
        app.replace_env(&row, env, caller.user.id).await?;
    }
    let row = app.store.project(&row.name).await?.unwrap_or(row);
    Ok(Json(app.project_view(&row, Some(project.role))))
}

/// Deletes a project: its builds are canceled, its site stops answering at once, then its
/// files are removed.
pub async fn delete(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let project = match app.project_for(&caller, &name, Action::DeleteProject).await {
        Ok(project) => project,
        // Not an owner (a deploy token acts at most as a developer): a project this caller
        // created and never deployed is still theirs to take back.
        Err(denied @ ApiError::Forbidden(_)) => {
            let project = app.project_for(&caller, &name, Action::ViewProject).await?;
            let untouched = app
                .store
                .deployments_of(project.row.id, 1)
                .await?
                .is_empty();
            if project.row.owner_id != caller.user.id
                || !untouched
                || caller.may(Action::DiscardNewProject).is_err()
            {
                return Err(denied);
            }
            project
        }
        Err(e) => return Err(e),
    };
    app.delete_project(&project.row).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /projects/{name}/rollback`: production back to `to`, or to the deployment live before.
pub async fn rollback(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Deployment>> {
    let project = app.project_for(&caller, &name, Action::Rollback).await?.row;
    // The body is optional: no body rolls back to the deployment live before.
    let request: RollbackRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RollbackRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(
                "invalid_body",
                format!("expected {{\"to\": \"<deployment>\"}} or no body: {e}"),
            )
        })?
    };
    let to = match request.to {
        Some(raw) => {
            let (dep, _) = app
                .deployment_for(&caller, &raw, Action::ViewProject)
                .await?;
            if dep.project_id != project.id {
                return Err(ApiError::bad_request(
                    "other_project",
                    format!(
                        "deployment {} belongs to {}, not {}",
                        dep.id, dep.project, project.name
                    ),
                ));
            }
            Some(dep)
        }
        None => None,
    };
    let row = app.rollback(&project, to, &caller.user.name).await?;
    Ok(Json(app.deployment_view(&row)))
}

pub async fn domains(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<DomainList>> {
    let project = app
        .project_for(&caller, &name, Action::ViewProject)
        .await?
        .row;
    let domains = app.domains(&project).await?;
    Ok(Json(DomainList {
        domains: domains
            .into_iter()
            .map(|d| domain_view(&app, &project.name, d.host, d.created_at))
            .collect(),
    }))
}

pub async fn add_domain(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<AddDomain>,
) -> ApiResult<(StatusCode, Json<Domain>)> {
    let project = app
        .project_for(&caller, &name, Action::ManageDomains)
        .await?
        .row;
    let (host, added) = app.add_domain(&project, &body.host, caller.user.id).await?;
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let created = app
        .domains(&project)
        .await?
        .into_iter()
        .find(|d| d.host == host)
        .map_or_else(time::OffsetDateTime::now_utc, |d| d.created_at);
    Ok((
        status,
        Json(domain_view(&app, &project.name, host, created)),
    ))
}

pub async fn remove_domain(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path((name, host)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let project = app
        .project_for(&caller, &name, Action::ManageDomains)
        .await?
        .row;
    app.remove_domain(&project, &host).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn domain_view(
    app: &App,
    project: &ProjectName,
    host: String,
    created_at: time::OffsetDateTime,
) -> Domain {
    Domain {
        project: project.clone(),
        url: app.hosts.domain_url(&host),
        host,
        created_at,
    }
}
