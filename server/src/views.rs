//! Database rows as the API shows them.

use scalemesh_core::DeploymentStatus;
use scalemesh_core::access::Role;
use scalemesh_core::git::GitUrl;
use scalemesh_core::wire::{self, LogFrame};
use time::OffsetDateTime;

use crate::app::App;
use crate::db::{DeploymentRow, ProjectRow};

impl App {
    /// A project as `role` (the caller's, if they are a member) sees it.
    pub fn project_view(&self, row: &ProjectRow, role: Option<Role>) -> wire::Project {
        wire::Project {
            name: row.name.clone(),
            git_url: row.git_url.as_deref().map(redact),
            git_ref: row.git_ref.clone(),
            build: row.build.clone(),
            env: row.env_keys.clone(),
            role,
            production_deployment: row.production_deployment.clone(),
            pinned: row.pinned,
            url: self.hosts.project_url(&row.name),
            retention: row.retention,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }

    pub fn deployment_view(&self, row: &DeploymentRow) -> wire::Deployment {
        let source = match row.source_kind.as_str() {
            "git" => wire::DeploymentSource::Git {
                url: row.git_url.as_deref().map(redact).unwrap_or_default(),
                git_ref: row.git_ref.clone(),
            },
            crate::db::PREBUILT => wire::DeploymentSource::Prebuilt,
            _ => wire::DeploymentSource::Archive,
        };
        wire::Deployment {
            id: row.id.clone(),
            project: row.project.clone(),
            status: row.status,
            phase: row.phase,
            progress: row.progress,
            reason: row.reason.clone(),
            source,
            promote: row.promote,
            runner_ref: row.runner_ref.clone(),
            production: row.production,
            url: self.hosts.deployment_url(&row.project, &row.id),
            project_url: self.hosts.project_url(&row.project),
            created_at: row.created_at,
            building_at: row.building_at,
            uploading_at: row.uploading_at,
            finished_at: row.finished_at,
            commit: row.commit.clone(),
        }
    }

    /// The last frame a follower gets.
    pub fn end_frame(&self, row: &DeploymentRow) -> LogFrame {
        let view = self.deployment_view(row);
        LogFrame::End {
            status: row.status,
            reason: row.reason.clone(),
            url: (row.status == DeploymentStatus::Ready).then(|| view.live_url().to_owned()),
        }
    }
}

fn redact(url: &str) -> String {
    GitUrl::parse(url)
        .map(|u| u.redacted())
        .unwrap_or_else(|_| url.to_owned())
}

/// A date for messages: `2026-12-31`.
pub fn day(t: OffsetDateTime) -> String {
    let d = t.date();
    format!("{}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}
