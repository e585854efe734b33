//! Reading logs: all stored lines as JSON lines, or a WebSocket that follows the build live.

use std::sync::Arc;

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use scalemesh_core::DeploymentId;
use scalemesh_core::wire::LogFrame;
use serde::Deserialize;

use crate::access::Action;
use crate::app::App;
use crate::auth::{Caller, ClientIp};
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
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> ApiResult<Response> {
    let (dep, _) = app
        .deployment_for(&caller, &id, Action::ViewProject)
        .await?;
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
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> ApiResult<Response> {
    check_origin(&headers)?;
    let token = crate::auth::bearer_header(&headers).or_else(|| protocol_token(&headers));
    let caller = Caller::with_token(&app, token, client).await?;
    let (dep, _) = app
        .deployment_for(&caller, &id, Action::ViewProject)
        .await?;
    let since = q.since.unwrap_or(0);
    Ok(ws
        .protocols([STREAM_PROTOCOL])
        // A follower that stops reading holds a frame at most, not a backlog.
        .write_buffer_size(64 * 1024)
        .max_write_buffer_size(16 * 1024 * 1024)
        .on_upgrade(move |socket| serve_socket(app, dep.id, since, socket)))
}

/// The token of the first non-empty `bearer.<token>` entry of `Sec-WebSocket-Protocol` (a header
/// that may be sent several times, each a comma-separated list).
fn protocol_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|p| p.trim().strip_prefix(BEARER_PROTOCOL))
        .find(|t| !t.is_empty())
}

/// Without `Origin` (the CLI, other programs) any caller with a token may connect; with one, its
/// host and port must be the `Host` the request was sent to.
fn check_origin(headers: &HeaderMap) -> ApiResult<()> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match (origin.to_str().ok(), host) {
        (Some(o), Some(h)) if is_own_origin(o, h) => Ok(()),
        _ => Err(ApiError::Forbidden(format!(
            "a log stream can be opened from this server's own page only, not from {}",
            String::from_utf8_lossy(origin.as_bytes())
                .chars()
                .take(100)
                .collect::<String>()
        ))),
    }
}

/// Whether a page at `origin` (`http[s]://host[:port]`, as a browser sends it) is this server,
/// reached at `host` (the request's `Host`): the same host and port, in any letter case, with
/// the scheme's default port written or not. `null` and other schemes are never this server.
fn is_own_origin(origin: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let default_port = match scheme {
        "http" => ":80",
        "https" => ":443",
        _ => return false,
    };
    let without_default = |a: &str| {
        let a = a.strip_suffix(default_port).unwrap_or(a);
        a.to_ascii_lowercase()
    };
    let authority = without_default(authority);
    !authority.is_empty() && authority == without_default(host)
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
    let close = tokio::select! {
        result = crate::logs::follow::follow(&app, &id, since, &mut frames) => match result {
            Ok(()) => None,
            Err(e) => {
                tracing::debug!(deployment = %id, error = %e, "log follower ended");
                e.downcast_ref::<crate::logs::follow::TooSlow>()
                    .map(|slow| (CLOSE_TOO_SLOW, slow.to_string()))
            }
        },
        () = app.stopping.cancelled() => Some((
            axum::extract::ws::close_code::AWAY,
            "the server is restarting; reconnect, with since set to the last line received".to_owned(),
        )),
        () = gone => return,
    };
    let mut socket = frames.into_inner();
    let close = close.map(|(code, reason)| CloseFrame {
        code,
        reason: reason.into(),
    });
    // A follower that reads nothing still gets its close frame, if it takes it within
    // CLOSE_WAIT: only the frame that was being sent is held meanwhile.
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        let _ = socket.send(Message::Close(close)).await;
        let _ = socket.close().await;
    })
    .await;
}

/// The close code for a follower that read nothing for too long (application-defined range).
const CLOSE_TOO_SLOW: u16 = 4008;

/// How long a closing follower has to take its close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    /// A header's name and raw value.
    type Header<'a> = (header::HeaderName, &'a [u8]);

    fn headers(pairs: &[Header<'_>]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                name.clone(),
                HeaderValue::from_bytes(value).expect("a header value"),
            );
        }
        map
    }

    #[test]
    fn the_token_is_the_first_non_empty_bearer_entry() {
        let p = header::SEC_WEBSOCKET_PROTOCOL;
        let many = format!("scalemesh.logs.v1, {}bearer.smk_last", "x, ".repeat(500));
        let cases: &[(&[&[u8]], Option<&str>)] = &[
            (&[b"scalemesh.logs.v1, bearer.smk_a"], Some("smk_a")),
            (&[b"bearer.smk_a,scalemesh.logs.v1"], Some("smk_a")),
            (&[b"  bearer.smk_a  ,  scalemesh.logs.v1 "], Some("smk_a")),
            // Several headers are one list.
            (&[b"scalemesh.logs.v1", b"bearer.smk_b"], Some("smk_b")),
            // An empty entry does not hide the one after it.
            (&[b"bearer., bearer.smk_c"], Some("smk_c")),
            (&[b"bearer.smk_d, bearer.smk_e"], Some("smk_d")),
            (&[b"bearer."], None),
            (&[b"bearer"], None),
            (&[b""], None),
            (&[b",,, ,"], None),
            (&[b"scalemesh.logs.v1"], None),
            (&[b"Bearer.smk_f"], None),
            (&[b"xbearer.smk_g"], None),
            // Not UTF-8: skipped, not a panic.
            (&[b"bearer.\xff\xfe", b"bearer.smk_h"], Some("smk_h")),
            (&[many.as_bytes()], Some("smk_last")),
        ];
        for (values, want) in cases {
            let pairs: Vec<_> = values.iter().map(|v| (p.clone(), *v)).collect();
            assert_eq!(protocol_token(&headers(&pairs)), *want, "{values:?}");
        }
        assert_eq!(protocol_token(&HeaderMap::new()), None);
    }

    #[test]
    fn only_the_servers_own_origin_may_open_a_stream() {
        let cases: &[(&str, &str, bool)] = &[
            ("http://127.0.0.1:9000", "127.0.0.1:9000", true),
            ("http://Deploy.Example.COM", "deploy.example.com", true),
            ("https://deploy.example.com", "DEPLOY.example.com", true),
            ("http://[::1]:9000", "[::1]:9000", true),
            ("http://[::1]:9000", "[::1]:9001", false),
            ("http://[::1]", "[::1]:80", true),
            // A default port, written on one side only.
            ("http://example.com", "example.com:80", true),
            ("https://example.com", "example.com:443", true),
            ("http://example.com:80", "example.com", true),
            ("https://example.com", "example.com:80", false),
            ("http://example.com", "example.com:8080", false),
            ("http://example.com:8080", "example.com:80", false),
            ("http://127.0.0.1:9000", "localhost:9000", false),
            ("http://127.0.0.1:9000", "127.0.0.1:9001", false),
            ("http://127.0.0.1", "127.0.0.1:9000", false),
            (
                "http://127.0.0.1.evil.example:9000",
                "127.0.0.1:9000",
                false,
            ),
            ("http://evil.example", "127.0.0.1:9000", false),
            ("http://127.0.0.1:9000/", "127.0.0.1:9000", false),
            ("http://user@127.0.0.1:9000", "127.0.0.1:9000", false),
            ("null", "127.0.0.1:9000", false),
            ("null", "null", false),
            ("file://", "", false),
            ("http://", "", false),
            ("http://:80", "", false),
            ("ws://127.0.0.1:9000", "127.0.0.1:9000", false),
            ("HTTP://127.0.0.1:9000", "127.0.0.1:9000", false),
            ("127.0.0.1:9000", "127.0.0.1:9000", false),
            ("", "", false),
        ];
        for (origin, host, own) in cases {
            assert_eq!(is_own_origin(origin, host), *own, "{origin} at {host}");
        }
    }

    #[test]
    fn origin_checks_refuse_without_panicking() {
        let o = header::ORIGIN;
        let h = header::HOST;
        let cases: &[(&[Header<'_>], bool)] = &[
            (&[], true),
            (&[(h.clone(), b"127.0.0.1:9000")], true),
            (
                &[
                    (o.clone(), b"http://127.0.0.1:9000"),
                    (h.clone(), b"127.0.0.1:9000"),
                ],
                true,
            ),
            // No Host to compare with: refused.
            (&[(o.clone(), b"http://127.0.0.1:9000")], false),
            (
                &[(o.clone(), b"http://127.0.0.1:9000"), (h.clone(), b"")],
                false,
            ),
            // Bytes that are not text, on either side.
            (
                &[(o.clone(), b"http://\xff:9000"), (h.clone(), b"\xff:9000")],
                false,
            ),
            (
                &[(o.clone(), b"http://a:9000"), (h.clone(), b"a:9000\xff")],
                false,
            ),
            (&[(o.clone(), b"\xc3\xa9"), (h.clone(), b"a")], false),
        ];
        for (pairs, ok) in cases {
            let result = check_origin(&headers(pairs));
            assert_eq!(result.is_ok(), *ok, "{pairs:?}");
        }
        let long = format!("http://{}", "a".repeat(4000));
        let Err(ApiError::Forbidden(message)) =
            check_origin(&headers(&[(o, long.as_bytes()), (h, b"a")]))
        else {
            panic!("a long origin is refused");
        };
        assert!(
            message.len() < 200,
            "the answer quotes a bounded origin: {message}"
        );
    }
}
