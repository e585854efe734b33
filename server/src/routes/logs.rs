//! Reading logs: all stored lines as JSON lines, or a WebSocket that follows the build live.

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use scalemesh_core::DeploymentId;
use scalemesh_core::wire::LogFrame;
use serde::Deserialize;

use super::owned_deployment;
use crate::App;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiQuery, ApiResult};

const REPLAY_MAX: u32 = 10_000;
/// Bytes of text per answer (at least one line is always sent).
const REPLAY_MAX_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Deserialize)]
pub struct LogQuery {
    /// Only lines after this sequence number.
    since: Option<u64>,
    limit: Option<u32>,
}

/// Stored lines after `since`, one JSON object per line (`application/x-ndjson`), at most
/// `limit` (≤ 10,000) and about 4 MiB: page by asking again from the last `seq` until an
/// answer is empty.
pub async fn replay(
    State(app): State<Arc<App>>,
    user: AuthUser,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> ApiResult<Response> {
    let dep = owned_deployment(&app, &user, &id).await?;
    let limit = q.limit.unwrap_or(REPLAY_MAX).clamp(1, REPLAY_MAX);
    let lines = app
        .store
        .lines_after(&dep.id, q.since.unwrap_or(0), limit, REPLAY_MAX_BYTES)
        .await?;
    let mut body = Vec::with_capacity(lines.len() * 96);
    for line in &lines {
        serde_json::to_writer(&mut body, line).map_err(anyhow::Error::from)?;
        body.push(b'\n');
    }
    let mut res = body.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(res)
}

/// The WebSocket subprotocol of the log stream. A browser, which cannot set `Authorization` on a
/// WebSocket, offers it together with `bearer.<token>`; the server answers with this one only.
pub const STREAM_PROTOCOL: &str = "scalemesh.logs.v1";
const BEARER_PROTOCOL: &str = "bearer.";

/// The log of one deployment over a WebSocket: a `state` frame, the lines after `since`, live
/// lines and states, then one `end` frame, after which the server closes the socket.
///
/// The token comes from `Authorization` or from a `bearer.<token>` subprotocol. A request from
/// a browser page (it has `Origin`) is refused unless the page is this server's own, so another
/// site cannot open a stream with a token it got hold of through the browser.
pub async fn stream(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<LogQuery>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> ApiResult<Response> {
    check_origin(&headers)?;
    let token = crate::auth::bearer_header(&headers).or_else(|| protocol_token(&headers));
    let user = AuthUser::with_token(&app, token).await?;
    let dep = owned_deployment(&app, &user, &id).await?;
    let since = q.since.unwrap_or(0);
    Ok(ws
        .protocols([STREAM_PROTOCOL])
        .on_upgrade(move |socket| serve_socket(app, dep.id, since, socket)))
}

/// The token in a `bearer.<token>` entry of `Sec-WebSocket-Protocol`.
fn protocol_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().strip_prefix(BEARER_PROTOCOL))
        .filter(|t| !t.is_empty())
}

/// Without `Origin` (the CLI, other programs) any caller with a token may connect; with one, its
/// host and port must be the `Host` the request was sent to.
fn check_origin(headers: &HeaderMap) -> ApiResult<()> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .filter(|(scheme, _)| matches!(*scheme, "http" | "https"))
        .map(|(_, rest)| rest);
    match (origin_host, host) {
        (Some(o), Some(h)) if o.eq_ignore_ascii_case(h) => Ok(()),
        _ => Err(ApiError::Forbidden(format!(
            "a log stream can be opened from this server's own page only, not from {}",
            String::from_utf8_lossy(origin.as_bytes())
        ))),
    }
}

async fn serve_socket(app: Arc<App>, id: DeploymentId, since: u64, socket: WebSocket) {
    let (tx, mut rx) = socket.split();
    let mut frames = tx.with(|frame: LogFrame| {
        let text = serde_json::to_string(&frame).map_err(axum::Error::new);
        futures_util::future::ready(text.map(|t| Message::Text(t.into())))
    });
    // Reading keeps pings answered and notices when the follower leaves.
    let gone = async {
        while let Some(Ok(msg)) = rx.next().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    };
    tokio::select! {
        result = crate::logs::follow(&app, &id, since, &mut frames) => {
            if let Err(e) = result {
                tracing::debug!(deployment = %id, error = %e, "log follower ended");
            }
            // Closing the sink sends the close frame.
            let _ = frames.close().await;
        }
        () = gone => {}
    }
}
