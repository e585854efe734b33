//! A project's subscriptions to its deployments' events, and the deliveries queued for them as
//! deployments are created, become ready, fail or go live.

use scalemesh_core::access::EnvTarget;
use scalemesh_core::wire::{AddSubscription, NOTIFY_EVENTS, NotificationDelivery, Subscription};

use crate::app::App;
use crate::db::{DeploymentRow, ProjectRow, SubscriptionRow};
use crate::error::{ApiError, ApiResult};
use crate::forge::status::State;
use crate::secrets::RowId;

/// Deliveries `notify log` shows.
const LOGGED: u32 = 50;

/// The row a subscription's secret is sealed for: no variable can have this name.
pub(super) fn secret_row(project_id: i64) -> RowId<'static> {
    RowId {
        project_id,
        key: ":notify-secret",
        target: EnvTarget::Production,
    }
}

/// A deployment event subscribers may hear of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Created,
    Ready,
    Failed,
    Promoted,
    /// Only commit statuses hear of it.
    Canceled,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Ready => "ready",
            Self::Failed => "failed",
            Self::Promoted => "promoted",
            Self::Canceled => "canceled",
        }
    }
}

fn view(row: SubscriptionRow, secret: Option<String>) -> Subscription {
    Subscription {
        id: row.id,
        url: row.url,
        events: row.events.split(',').map(str::to_owned).collect(),
        secret,
        created_at: row.created_at,
    }
}

/// The events asked for, checked, in the usual order: all when none are named.
fn events(asked: Option<Vec<String>>) -> ApiResult<String> {
    let Some(asked) = asked.filter(|a| !a.is_empty()) else {
        return Ok(NOTIFY_EVENTS.join(","));
    };
    if let Some(bad) = asked.iter().find(|e| !NOTIFY_EVENTS.contains(&e.as_str())) {
        return Err(ApiError::bad_request(
            "invalid_events",
            format!(
                "{bad:.40?} is not an event: use {}",
                NOTIFY_EVENTS.join(", ")
            ),
        )
        .on_field("events"));
    }
    let kept: Vec<&str> = NOTIFY_EVENTS
        .iter()
        .copied()
        .filter(|e| asked.iter().any(|a| a == e))
        .collect();
    Ok(kept.join(","))
}

impl App {
    pub async fn subscribe(
        &self,
        project: &ProjectRow,
        req: AddSubscription,
    ) -> ApiResult<Subscription> {
        let url = super::destination(&req.url, &self.notify_allow).map_err(|e| {
            ApiError::bad_request("invalid_destination", e.to_string()).on_field("url")
        })?;
        let events = events(req.events)?;
        let secret = format!(
            "whsec_{}",
            hex::encode(scalemesh_core::id::random_bytes::<24>())
        );
        let sealed = self.secrets.seal(&secret_row(project.id), &secret);
        let row = self
            .store
            .subscribe(project.id, url.as_str(), &events, sealed)
            .await?
            .ok_or_else(|| {
                ApiError::conflict(
                    "too_many_subscriptions",
                    format!(
                        "{} has as many notification URLs as a project may ({}): remove one first",
                        project.name,
                        crate::db::MAX_SUBSCRIPTIONS
                    ),
                )
            })?;
        Ok(view(row, Some(secret)))
    }

    pub async fn subscriptions(&self, project: &ProjectRow) -> ApiResult<Vec<Subscription>> {
        let rows = self.store.subscriptions_of(project.id).await?;
        Ok(rows.into_iter().map(|r| view(r, None)).collect())
    }

    pub async fn unsubscribe(&self, project: &ProjectRow, id: i64) -> ApiResult<()> {
        if self.store.unsubscribe(project.id, id).await? {
            Ok(())
        } else {
            Err(ApiError::NotFound(format!(
                "{} has no notification URL {id} (scalemesh notify ls {})",
                project.name, project.name
            )))
        }
    }

    pub async fn notification_log(
        &self,
        project: &ProjectRow,
    ) -> ApiResult<Vec<NotificationDelivery>> {
        let rows = self.store.notification_log(project.id, LOGGED).await?;
        Ok(rows
            .into_iter()
            .map(|d| NotificationDelivery {
                id: d.id,
                subscription: d.subscription_id,
                url: d.url,
                event: format!("deployment.{}", d.event),
                deployment: d.deployment,
                state: d.state,
                attempts: d.attempts,
                last_status: d.last_status,
                last_error: d.last_error,
                created_at: d.created_at,
            })
            .collect())
    }

    /// Queues `event` of `dep` for its project's subscribers. A failure to queue is logged:
    /// it never fails what the deployment was doing.
    pub(crate) async fn notify(&self, dep: &DeploymentRow, event: Event) {
        let body = serde_json::json!({
            "event": format!("deployment.{}", event.as_str()),
            "project": dep.project,
            "deployment": self.deployment_view(dep),
        });
        let queued = self
            .store
            .queue_notifications(
                dep.project_id,
                event.as_str(),
                dep.id.as_str(),
                body.to_string(),
            )
            .await;
        match queued {
            Ok(0) => {}
            Ok(_) => self.notify_wake.notify_one(),
            Err(e) => {
                tracing::warn!(deployment = %dep.id, error = %e, "could not queue notifications");
            }
        }
        let reason = dep.reason.as_deref().unwrap_or_default();
        let status = match event {
            Event::Created => Some((State::Pending, "Queued")),
            Event::Ready => Some((State::Success, "Deployed")),
            Event::Failed => Some((State::Failure, reason)),
            Event::Canceled => Some((State::Error, reason)),
            Event::Promoted => None,
        };
        if let Some((state, description)) = status {
            self.queue_commit_status(dep, state, description).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Case<'a> = (Option<Vec<&'a str>>, Result<&'a str, &'a str>);

    #[test]
    fn events_are_checked_and_kept_in_order() {
        // (asked, kept or the code refusing it)
        let table: [Case; 5] = [
            (None, Ok("created,ready,failed,promoted")),
            (Some(vec![]), Ok("created,ready,failed,promoted")),
            (Some(vec!["failed", "ready", "ready"]), Ok("ready,failed")),
            (Some(vec!["promoted"]), Ok("promoted")),
            (Some(vec!["ready", "deleted"]), Err("invalid_events")),
        ];
        for (asked, want) in table {
            let got = events(
                asked
                    .clone()
                    .map(|a| a.into_iter().map(String::from).collect()),
            );
            match (got, want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{asked:?}"),
                (Err(ApiError::BadRequest { code, .. }), Err(want)) => {
                    assert_eq!(code, want, "{asked:?}")
                }
                (got, want) => panic!("{asked:?}: {got:?}, expected {want:?}"),
            }
        }
    }
}
