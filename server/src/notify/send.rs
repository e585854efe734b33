//! Delivering queued notifications: each POSTed with its signature to the address its URL's
//! name resolved to and was checked against (redirects are not followed), and tried again
//! later when it fails, four times longer each time, six attempts in all.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use scalemesh_core::netguard::{self, AllowList};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use super::subscriptions::secret_row;
use crate::app::App;
use crate::db::NotifyDeliveryRow;

/// Attempts a delivery gets before it is marked failed.
pub const ATTEMPTS: u32 = 6;
/// How long one attempt may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Deliveries sent at once.
const AT_ONCE: usize = 8;

/// How long to wait after the `attempts`th failed attempt, `None` when there is no attempt
/// left: `base`, then four times longer each time.
pub fn retry_after(base: Duration, attempts: u32) -> Option<Duration> {
    if attempts == 0 || attempts >= ATTEMPTS {
        return None;
    }
    Some(base.saturating_mul(4u32.saturating_pow(attempts - 1)))
}

/// Sends what is due until `stop`; woken when something is queued.
pub(crate) async fn run(app: Arc<App>, stop: CancellationToken) {
    loop {
        let next = match deliver_due(&app).await {
            Ok(next) => next,
            Err(e) => {
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
        futures_util::stream::iter(due)
            .for_each_concurrent(AT_ONCE, |d| attempt(app, d))
            .await;
    }
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
            match retry_after(app.notify_retry, attempts) {
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
    let mut client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(TIMEOUT)
        .user_agent(concat!("scalemesh/", env!("CARGO_PKG_VERSION")));
    if let Some((name, addr)) = address(&url, &app.notify_allow).await? {
        client = client.resolve(&name, addr);
    }
    let client = client.build().map_err(|e| e.to_string())?;
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
        .map_err(|e| innermost(&e))?;
    Ok(res.status().as_u16())
}

/// What tells a person why a request failed: the innermost cause ("Connection refused").
fn innermost(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return format!("no answer within {} s", TIMEOUT.as_secs());
    }
    let mut cause: &(dyn std::error::Error + 'static) = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// For a URL naming its host by name: the name and the checked address to connect to.
async fn address(
    url: &url::Url,
    allow: &AllowList,
) -> Result<Option<(String, SocketAddr)>, String> {
    let host = url.host().ok_or("the URL has no host")?;
    let port = url.port_or_known_default().unwrap_or(80);
    let literal =
        netguard::check_host(&host, allow).map_err(|r| format!("{} {}", r.host, r.why))?;
    if literal.is_some() {
        return Ok(None);
    }
    let name = host.to_string();
    let found: Vec<IpAddr> = tokio::net::lookup_host((name.as_str(), port))
        .await
        .map_err(|e| format!("{name} could not be looked up: {e}"))?
        .map(|a| a.ip())
        .collect();
    let ip = netguard::check_addresses(&name, &found, allow)
        .map_err(|r| format!("{} {}", r.host, r.why))?;
    Ok(Some((name, SocketAddr::new(ip, port))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_delivery_waits_four_times_longer_each_time_six_attempts_in_all() {
        let base = Duration::from_secs(10);
        // (failed attempts so far, wait before the next)
        let table = [
            (1, Some(10)),
            (2, Some(40)),
            (3, Some(160)),
            (4, Some(640)),
            (5, Some(2560)),
            (6, None),
            (7, None),
        ];
        for (attempts, wait) in table {
            assert_eq!(
                retry_after(base, attempts),
                wait.map(Duration::from_secs),
                "{attempts}"
            );
        }
    }
}
