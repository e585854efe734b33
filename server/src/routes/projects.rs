//! `/api/v1/projects`: create, list, show, update, delete.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use scalemesh_core::ProjectName;
use scalemesh_core::git::{GitRef, GitUrl};
use scalemesh_core::job::is_allowed_env_name;
use scalemesh_core::site_config::BuildSettings;
use scalemesh_core::wire::{
    AddDomain, CreateProject, Deployment, Domain, DomainList, Project, ProjectList,
    RollbackRequest, UpdateProject,
};

use super::{owned_deployment, owned_project, parse_project_name};
use crate::App;
use crate::auth::AuthUser;
use crate::db::NewProject;
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

fn check_build(build: &BuildSettings) -> ApiResult<()> {
    build.validate().map_err(|e| {
        let err = ApiError::bad_request("invalid_build_settings", e.to_string());
        match e.field() {
            Some(field) => err.on_field(field),
            None => err,
        }
    })
}

fn check_env(env: &BTreeMap<String, String>) -> ApiResult<()> {
    if env.len() > 200 {
        return Err(ApiError::bad_request(
            "invalid_env",
            "a project has at most 200 environment variables",
        ));
    }
    for (name, value) in env {
        if !is_allowed_env_name(name) {
            return Err(ApiError::bad_request(
                "invalid_env",
                format!(
                    "{name:?} cannot be an environment variable name (letters, digits and '_', not starting with a digit, not SCALEMESH_*, PATH or HOME)"
                ),
            ));
        }
        if value.len() > 64 * 1024 || value.contains('\0') {
            return Err(ApiError::bad_request(
                "invalid_env",
                format!("the value of {name} is too long or has a NUL byte"),
            ));
        }
    }
    Ok(())
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
    user: &AuthUser,
    body: CreateProject,
) -> ApiResult<crate::db::ProjectRow> {
    let git_url = body.git_url.as_deref().map(parse_git_url).transpose()?;
    let git_ref = parse_git_ref(body.git_ref.as_deref())?;
    let name = name_for(body.name.as_deref(), git_url.as_ref())?;
    let build = body.build.unwrap_or_default();
    check_build(&build)?;
    let env = body.env.unwrap_or_default();
    check_env(&env)?;
    let new = NewProject {
        name: name.clone(),
        owner_id: user.0.id,
        git_url: git_url.map(String::from),
        git_ref: git_ref.map(String::from),
        build,
        env,
    };
    app.store.create_project(new).await?.ok_or_else(|| {
        ApiError::conflict(
            "name_taken",
            format!("a project named {name} exists already; choose another name"),
        )
        .on_field("name")
    })
}

pub async fn create(
    State(app): State<Arc<App>>,
    user: AuthUser,
    ApiJson(body): ApiJson<CreateProject>,
) -> ApiResult<(StatusCode, Json<Project>)> {
    let row = create_project_row(&app, &user, body).await?;
    Ok((StatusCode::CREATED, Json(app.project_view(&row))))
}

pub async fn list(State(app): State<Arc<App>>, user: AuthUser) -> ApiResult<Json<ProjectList>> {
    let rows = app.store.projects_of(user.0.id).await?;
    Ok(Json(ProjectList {
        projects: rows.iter().map(|r| app.project_view(r)).collect(),
    }))
}

pub async fn show(
    State(app): State<Arc<App>>,
    user: AuthUser,
    Path(name): Path<String>,
) -> ApiResult<Json<Project>> {
    let row = owned_project(&app, &user, &name).await?;
    Ok(Json(app.project_view(&row)))
}

pub async fn update(
    State(app): State<Arc<App>>,
    user: AuthUser,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<UpdateProject>,
) -> ApiResult<Json<Project>> {
    let mut row = owned_project(&app, &user, &name).await?;
    if let Some(url) = body.git_url.as_deref() {
        row.git_url = Some(parse_git_url(url)?.into());
    }
    if let Some(r) = body.git_ref.as_deref() {
        row.git_ref = parse_git_ref(Some(r))?.map(String::from);
    }
    if let Some(build) = body.build {
        check_build(&build)?;
        row.build = build;
    }
    if let Some(env) = body.env {
        check_env(&env)?;
        row.env = env;
    }
    let row = app.store.update_project(row).await?;
    Ok(Json(app.project_view(&row)))
}

/// Deletes a project: its builds are canceled, its site stops answering at once, then its
/// files are removed.
pub async fn delete(
    State(app): State<Arc<App>>,
    user: AuthUser,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let row = owned_project(&app, &user, &name).await?;
    app.delete_project(&row).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /projects/{name}/rollback`: production back to `to`, or to the deployment live before.
pub async fn rollback(
    State(app): State<Arc<App>>,
    user: AuthUser,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Deployment>> {
    let project = owned_project(&app, &user, &name).await?;
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
            let dep = owned_deployment(&app, &user, &raw).await?;
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
    let row = app.rollback(&project, to, &user.0.name).await?;
    Ok(Json(app.deployment_view(&row)))
}

pub async fn domains(
    State(app): State<Arc<App>>,
    user: AuthUser,
    Path(name): Path<String>,
) -> ApiResult<Json<DomainList>> {
    let project = owned_project(&app, &user, &name).await?;
    let domains = app.domains(&project).await?;
    Ok(Json(DomainList {
        domains: domains
            .into_iter()
            .map(|d| domain_view(&project.name, d.host, d.created_at))
            .collect(),
    }))
}

pub async fn add_domain(
    State(app): State<Arc<App>>,
    user: AuthUser,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<AddDomain>,
) -> ApiResult<(StatusCode, Json<Domain>)> {
    let project = owned_project(&app, &user, &name).await?;
    let (host, added) = app.add_domain(&project, &body.host).await?;
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
    Ok((status, Json(domain_view(&project.name, host, created))))
}

pub async fn remove_domain(
    State(app): State<Arc<App>>,
    user: AuthUser,
    Path((name, host)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let project = owned_project(&app, &user, &name).await?;
    app.remove_domain(&project, &host).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn domain_view(project: &ProjectName, host: String, created_at: time::OffsetDateTime) -> Domain {
    Domain {
        project: project.clone(),
        url: format!("http://{host}"),
        host,
        created_at,
    }
}
