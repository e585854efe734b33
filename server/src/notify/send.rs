//! Delivering queued notifications (and commit statuses, `hooks::deliver_statuses`): each
//! POSTed with its signature through `outbound` (the address checked, no redirects), and tried
//! again later when it fails, four times longer each time, six attempts in all. A
//! subscriber's deliveries due at once go one after the other, in the order they were queued
//! (`ready` before `promoted`); different subscribers' side by side. A retry is due later, so
//! it may come after deliveries queued after it.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use super::subscriptions::secret_row;
use crate::app::App;
use crate::db::NotifyDeliveryRow;
use crate::outbound;

/// Deliveries sent at once.
pub(crate) const AT_ONCE: usize = 8;
/// Most deliveries to one subscriber in one round (a deployment's created, ready and promoted),
/// so that one that answers slowly holds a round for as long as before; its others wait for
/// the next round.
const IN_A_TURN: usize = 3;

/// Sends what is due until `stop`; woken when something is queued.
pub(crate) async fn run(app: Arc<App>, stop: CancellationToken) {
    loop {
        let sent = tokio::join!(deliver_due(&app), crate::hooks::deliver_statuses(&app));
        let next = match sent {
            (Ok(a), Ok(b)) => [a, b].into_iter().flatten().min(),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "could not read the notifications due"
                );
                Some(OffsetDateTime::now_utc() + Duration::from_secs(5))
            }
        };
        let wait = next
            .map(|at| {
                let left = at - OffsetDateTime::now_utc();
                Duration::try_from(left).unwrap_or(Duration::ZERO)
            })
            .unwrap_or(Duration::from_secs(60))
            .min(Duration::from_secs(60));
        tokio::select! {
            () = stop.cancelled() => return,
            () = app.notify_wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Sends every delivery due; when the next one not yet due is.
async fn deliver_due(app: &App) -> anyhow::Result<Option<OffsetDateTime>> {
    loop {
        let (due, next) = app.store.due_notifications(64).await?;
        if due.is_empty() {
            return Ok(next);
        }
        futures_util::stream::iter(in_turns(due, IN_A_TURN, |d| d.subscription_id))
            .for_each_concurrent(AT_ONCE, |turn| async move {
                for d in turn {
                    attempt(app, d).await;
                }
            })
            .await;
    }
}

/// The deliveries `due` (in the order they are due) by subscriber (`of`), each subscriber's
/// in that order and at most `most` of them (the others wait for the next round),
/// subscribers in the order of their first delivery.
fn in_turns<D>(due: Vec<D>, most: usize, of: impl Fn(&D) -> i64) -> Vec<Vec<D>> {
    let mut turns: Vec<Vec<D>> = Vec::new();
    for d in due {
        match turns.iter_mut().find(|turn| of(&turn[0]) == of(&d)) {
            Some(turn) if turn.len() < most => turn.push(d),
            Some(_) => {}
            None => turns.push(vec![d]),
        }
    }
    turns
}

/// One attempt of delivery `d`, and what came of it recorded.
async fn attempt(app: &App, d: NotifyDeliveryRow) {
    let sent = send(app, &d).await;
    let attempts = d.attempts + 1;
    let (state, status, error, retry) = match sent {
        Ok(status) if (200..300).contains(&status) => ("delivered", Some(status), None, None),
        failed => {
            let (status, error) = match failed {
                Ok(status) => (Some(status), None),
                Err(e) => (None, Some(e)),
            };
            match outbound::retry_after(app.notify_retry, attempts) {
                Some(wait) => ("pending", status, error, Some(wait)),
                None => ("failed", status, error, None),
            }
        }
    };
    let retry_ms = retry.map_or(0, |w| i64::try_from(w.as_millis()).unwrap_or(i64::MAX));
    if let Err(e) = app
        .store
        .notification_attempted(d.id, state, status, error, retry_ms)
        .await
    {
        tracing::warn!(delivery = d.id, error = %e, "could not record a notification attempt");
    }
}

/// POSTs delivery `d`: the receiver's status, or why it could not be reached.
async fn send(app: &App, d: &NotifyDeliveryRow) -> Result<u16, String> {
    let sub = app
        .store
        .subscription(d.subscription_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the subscription was removed")?;
    let secret = app
        .secrets
        .open(&secret_row(sub.project_id), &sub.secret)
        .map_err(|e| e.to_string())?;
    let url = super::destination(&sub.url, &app.notify_allow).map_err(|e| e.to_string())?;
    let client = outbound::client_for(&url, &app.notify_allow).await?;
    let at = OffsetDateTime::now_utc().unix_timestamp();
    let res = client
        .post(url)
        .header("content-type", "application/json")
        .header("x-scalemesh-event", format!("deployment.{}", d.event))
        .header("x-scalemesh-delivery", d.id.to_string())
        .header(
            super::sign::HEADER,
            super::sign::header(secret.as_bytes(), at, d.body.as_bytes()),
        )
        .body(d.body.clone())
        .send()
        .await
        .map_err(|e| outbound::innermost(&e))?;
    Ok(res.status().as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_subscriber_gets_its_deliveries_in_turn() {
        // (due: (subscriber, delivery) in the order due, turns)
        type Case = (Vec<(i64, u32)>, Vec<Vec<(i64, u32)>>);
        let table: [Case; 5] = [
            (vec![], vec![]),
            (vec![(7, 1), (7, 2)], vec![vec![(7, 1), (7, 2)]]),
            (
                vec![(7, 1), (9, 2), (7, 3), (9, 4), (8, 5)],
                vec![vec![(7, 1), (7, 3)], vec![(9, 2), (9, 4)], vec![(8, 5)]],
            ),
            (
                vec![(1, 1), (2, 2), (3, 3)],
                vec![vec![(1, 1)], vec![(2, 2)], vec![(3, 3)]],
            ),
            // The fourth to one subscriber waits for the next round.
            (
                vec![(7, 1), (7, 2), (9, 3), (7, 4), (7, 5)],
                vec![vec![(7, 1), (7, 2), (7, 4)], vec![(9, 3)]],
            ),
        ];
        for (due, turns) in table {
            assert_eq!(in_turns(due.clone(), 3, |d| d.0), turns, "{due:?}");
        }
    }
}
