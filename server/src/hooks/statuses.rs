//! Commit statuses: in a project connected with a forge token, each deployment of a known
//! commit shows its state on that commit (pending, then success, failure or error, with the
//! deployment's URL), set through the forge's REST API (`forge::status`) in the order they
//! happened, with retries. Setting one never touches the deployment, however it goes.

use scalemesh_core::DeploymentId;
use time::OffsetDateTime;

use super::token_row;
use crate::app::App;
use crate::db::{DeploymentRow, StatusRow};
use crate::forge::Provider;
use crate::forge::status::{self, Report, State};
use crate::outbound;

impl App {
    /// Queues `state` as the status of `dep`'s commit, when it has one and its project is
    /// connected with a token.
    pub(crate) async fn queue_commit_status(
        &self,
        dep: &DeploymentRow,
        state: State,
        description: &str,
    ) {
        let sha = dep
            .git_commit
            .clone()
            .or_else(|| dep.commit.as_ref().map(|c| c.sha.clone()));
        let Some(sha) = sha else {
            return;
        };
        match self.store.git_connection(dep.project_id).await {
            Ok(Some(conn)) if conn.status_token.is_some() => {}
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(deployment = %dep.id, error = %e, "could not read the project's connection");
                return;
            }
        }
        let target_url = match &dep.preview_label {
            Some(label) if state == State::Success => self.hosts.label_url(&dep.project, label),
            _ => self.hosts.deployment_url(&dep.project, &dep.id),
        };
        let row = StatusRow {
            id: 0,
            project_id: dep.project_id,
            deployment: dep.id.to_string(),
            sha,
            state: state.as_str().to_owned(),
            target_url,
            description: description.chars().take(140).collect(),
            attempts: 0,
        };
        match self.store.queue_status(row).await {
            Ok(()) => self.notify_wake.notify_one(),
            Err(e) => {
                tracing::warn!(deployment = %dep.id, error = %e, "could not queue a commit status")
            }
        }
    }
}

/// Sets every status due, in order; when the next one not yet due is.
pub(crate) async fn deliver_statuses(app: &App) -> anyhow::Result<Option<OffsetDateTime>> {
    loop {
        let (due, next) = app.store.due_statuses(64).await?;
        if due.is_empty() {
            return Ok(next);
        }
        for s in due {
            attempt(app, s).await;
        }
    }
}

async fn attempt(app: &App, s: StatusRow) {
    let sent = set(app, &s).await;
    let (done, error, retry) = match sent {
        Ok(()) => (true, None, None),
        Err(e) => match outbound::retry_after(app.notify_retry, s.attempts + 1) {
            Some(wait) => (false, Some(e), Some(wait)),
            None => {
                tracing::warn!(
                    deployment = s.deployment,
                    error = e,
                    "gave up setting a commit status"
                );
                (true, Some(e), None)
            }
        },
    };
    let retry_ms = retry.map_or(0, |w| i64::try_from(w.as_millis()).unwrap_or(i64::MAX));
    if let Err(e) = app
        .store
        .status_attempted(s.id, done, error, retry_ms)
        .await
    {
        tracing::warn!(status = s.id, error = %e, "could not record a commit status attempt");
    }
}

/// One request setting status `s` on the forge.
async fn set(app: &App, s: &StatusRow) -> Result<(), String> {
    let conn = app
        .store
        .git_connection(s.project_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the project is no longer connected")?;
    let sealed = conn.status_token.ok_or("the project has no forge token")?;
    let token = app
        .secrets
        .open(&token_row(s.project_id), &sealed)
        .map_err(|e| e.to_string())?;
    let id = DeploymentId::parse(&s.deployment).map_err(|e| e.to_string())?;
    let git_url = app
        .store
        .deployment(&id)
        .await
        .map_err(|e| e.to_string())?
        .and_then(|d| d.git_url)
        .ok_or("the deployment is gone")?;
    let provider: Provider = conn.provider.parse()?;
    let api = conn
        .api_url
        .or_else(|| status::default_api(provider, &git_url))
        .ok_or("no forge API for this repository")?;
    let report = Report {
        sha: &s.sha,
        state: State::parse(&s.state).ok_or("an unknown state")?,
        target_url: &s.target_url,
        description: &s.description,
    };
    let req = status::request(provider, &api, &git_url, &token, &report)
        .ok_or("the repository URL names no owner and repository")?;
    let url = url::Url::parse(&req.url).map_err(|e| e.to_string())?;
    let client = outbound::client_for(&url, &app.allow_private_git_hosts).await?;
    let res = client
        .post(url)
        .header(req.auth.0, req.auth.1)
        .header("accept", "application/vnd.github+json, application/json")
        .json(&req.body)
        .send()
        .await
        .map_err(|e| outbound::innermost(&e))?;
    if res.status().is_success() {
        return Ok(());
    }
    let status = res.status();
    let text: String = res
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    Err(format!("the forge answered {status}: {text}"))
}
