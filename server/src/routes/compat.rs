//! The original API's `POST /project {"gitURL", "slug"}`: creates the project (or reuses the
//! caller's project of that name and repository) and starts a deployment.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use scalemesh_core::wire::{CompatCreateProject, CompatCreated, CreateProject};

use super::projects::{create_project_row, name_for, parse_git_ref, parse_git_url};
use crate::access::Action;
use crate::app::App;
use crate::auth::Caller;
use crate::deployments::{DeployOptions, NewSource};
use crate::error::{ApiError, ApiJson, ApiResult};

pub async fn create_project(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiJson(body): ApiJson<CompatCreateProject>,
) -> ApiResult<Json<CompatCreated>> {
    let url = parse_git_url(&body.git_url)?;
    let name = name_for(body.slug.as_deref(), Some(&url))?;
    let project = match app.store.project(&name).await? {
        // Someone else's project is answered as taken; one the caller sees, as what it is.
        Some(_) => match app
            .project_for(&caller, name.as_str(), Action::Deploy)
            .await
        {
            Ok(own) if own.row.git_url.as_deref() == Some(url.as_str()) => own.row,
            Err(e @ ApiError::Forbidden(_)) => return Err(e),
            _ => {
                return Err(ApiError::conflict(
                    "name_taken",
                    format!(
                        "a project named {name} exists already with another repository; choose another slug"
                    ),
                ));
            }
        },
        None => {
            let create = CreateProject {
                name: Some(name.to_string()),
                git_url: Some(url.as_str().to_owned()),
                ..CreateProject::default()
            };
            create_project_row(&app, &caller, create).await?
        }
    };
    let git_ref = parse_git_ref(project.git_ref.as_deref())?;
    let dep = app
        .create_deployment(
            &project,
            NewSource::Git {
                url,
                git_ref,
                commit: None,
            },
            DeployOptions::default(),
            caller.user.id,
        )
        .await?;
    let url = app.hosts.project_url(&project.name);
    Ok(Json(CompatCreated {
        status: "queued".into(),
        project: project.name,
        deployment_id: dep.id,
        url: url.clone(),
        website_url: url,
    }))
}
