//! Following a deployment's log over WebSocket. When the connection drops, it reconnects and
//! asks for the lines after the last one it delivered, so no line is lost or repeated.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use scalemesh_core::wire::{LogFrame, LogLine, Progress};
use scalemesh_core::{DeploymentStatus, Phase};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::client::Client;
use crate::error::CliError;

/// How long to keep trying to reconnect without getting anything through.
const GIVE_UP_AFTER: Duration = Duration::from_secs(60);

pub enum Event<'a> {
    Lines(&'a [LogLine]),
    State {
        status: DeploymentStatus,
        phase: Phase,
        progress: Option<Progress>,
    },
}

#[derive(Debug, Clone)]
pub struct End {
    pub status: DeploymentStatus,
    pub reason: Option<String>,
    pub url: Option<String>,
}

/// Follows `id` from after `since` until its end frame, handing every line once, in order, to
/// `on_event`.
pub async fn follow(
    client: &Client,
    id: &str,
    since: u64,
    mut on_event: impl FnMut(Event<'_>),
) -> anyhow::Result<End> {
    let mut last = since;
    let mut backoff = Duration::from_millis(50);
    let mut stalled_since: Option<Instant> = None;
    loop {
        match session(client, id, &mut last, &mut on_event).await {
            Ok(Some(end)) => return Ok(end),
            Ok(None) => {
                // Lines came, then the connection ended without the end frame: go again at once.
                stalled_since = None;
                backoff = Duration::from_millis(50);
                continue;
            }
            Err(SessionError::Fatal(e)) => return Err(e),
            Err(SessionError::Retry(why)) => {
                let since = *stalled_since.get_or_insert_with(Instant::now);
                if since.elapsed() > GIVE_UP_AFTER {
                    return Err(CliError::new(format!(
                        "lost the log stream and could not reconnect for {}s: {why}",
                        GIVE_UP_AFTER.as_secs()
                    ))
                    .hint(format!(
                        "the server may be down, and a build it ran may have stopped with it; when it answers again, `scalemesh logs {id}` shows how the deployment ended"
                    ))
                    .into());
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

enum SessionError {
    Retry(String),
    Fatal(anyhow::Error),
}

/// One connection. `Ok(None)`: it ended early after delivering something (reconnect at once).
async fn session(
    client: &Client,
    id: &str,
    last: &mut u64,
    on_event: &mut impl FnMut(Event<'_>),
) -> Result<Option<End>, SessionError> {
    let mut request = client
        .log_stream_url(id, *last)
        .into_client_request()
        .map_err(|e| SessionError::Fatal(e.into()))?;
    if let Some(token) = client.token() {
        let value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|e| SessionError::Fatal(e.into()))?;
        request.headers_mut().insert("authorization", value);
    }
    let (mut socket, _) = match tokio_tungstenite::connect_async(request).await {
        Ok(ok) => ok,
        Err(WsError::Http(res)) if res.status().is_client_error() => {
            let status = res.status();
            let body = res
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default()
                .into_owned();
            let message = serde_json::from_str::<scalemesh_core::wire::ApiErrorBody>(&body)
                .map(|b| b.error.message)
                .unwrap_or_else(|_| format!("the log stream was refused ({status})"));
            return Err(SessionError::Fatal(CliError::new(message).into()));
        }
        Err(e) => return Err(SessionError::Retry(e.to_string())),
    };
    // Whether this connection delivered new lines: then a drop is retried at once.
    let mut progressed = false;
    let mut broken = "the connection closed".to_owned();
    while let Some(msg) = socket.next().await {
        let text = match msg {
            Ok(Message::Text(text)) => text,
            Ok(Message::Close(frame)) => {
                // The server says why (restarting, a follower too slow): reconnect from `last`.
                if let Some(frame) = frame.filter(|f| !f.reason.is_empty()) {
                    broken = frame.reason.to_string();
                }
                break;
            }
            Ok(_) => continue,
            Err(e) => {
                broken = e.to_string();
                break;
            }
        };
        let frame: LogFrame = serde_json::from_str(text.as_str()).map_err(|e| {
            SessionError::Fatal(anyhow::anyhow!(
                "the log stream sent something unexpected: {e}"
            ))
        })?;
        match frame {
            LogFrame::Lines { lines } => {
                let start = lines
                    .iter()
                    .position(|l| l.seq > *last)
                    .unwrap_or(lines.len());
                let fresh = &lines[start..];
                if let Some(newest) = fresh.last() {
                    on_event(Event::Lines(fresh));
                    *last = newest.seq;
                    progressed = true;
                }
            }
            LogFrame::State {
                status,
                phase,
                progress,
            } => on_event(Event::State {
                status,
                phase,
                progress,
            }),
            LogFrame::End {
                status,
                reason,
                url,
            } => {
                return Ok(Some(End {
                    status,
                    reason,
                    url,
                }));
            }
        }
    }
    if progressed {
        Ok(None)
    } else {
        Err(SessionError::Retry(broken))
    }
}
