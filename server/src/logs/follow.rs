//! One follower of one deployment's log: the backlog after `since`, the state, then live frames,
//! then one `end` frame. Written over any `Sink` so it is tested without a socket. A follower
//! that does not read holds at most one small frame: a send that cannot finish within the
//! server's follower timeout ends the follow with [`TooSlow`], saying where to resume.

use futures_util::{Sink, SinkExt};
use scalemesh_core::DeploymentId;
use scalemesh_core::wire::LogFrame;
use tokio::sync::broadcast::error::RecvError;

use super::hub::FRAME_BYTES;
use crate::app::App;

/// Lines per frame when catching up from storage (and bytes: `FRAME_BYTES`, as live ones).
const BACKLOG_CHUNK: u32 = 500;

/// The follower took nothing for `waited`; it has every line up to `last`.
#[derive(Debug, thiserror::Error)]
#[error("the log stream was not read for {}s; reconnect with since={last}", waited.as_secs())]
pub struct TooSlow {
    pub last: u64,
    pub waited: std::time::Duration,
}

/// Sends `frame`, or gives up after `limit` with [`TooSlow`].
async fn send<S>(
    sink: &mut S,
    frame: LogFrame,
    last: u64,
    limit: std::time::Duration,
) -> anyhow::Result<()>
where
    S: Sink<LogFrame> + Unpin,
    S::Error: std::error::Error + Send + Sync + 'static,
{
    match tokio::time::timeout(limit, sink.send(frame)).await {
        Ok(sent) => Ok(sent?),
        Err(_) => Err(TooSlow {
            last,
            waited: limit,
        }
        .into()),
    }
}

pub async fn follow<S>(app: &App, id: &DeploymentId, since: u64, sink: &mut S) -> anyhow::Result<()>
where
    S: Sink<LogFrame> + Unpin,
    S::Error: std::error::Error + Send + Sync + 'static,
{
    // Subscribe before reading anything, so nothing published meanwhile is missed.
    let mut live = app.hub.subscribe(id);
    if app.store.deployment(id).await?.is_none() {
        return Ok(());
    }
    let mut last = since;
    // The stored lines come first, then where the deployment stands after them (read after
    // them, so never older than they are): a follower printing phase headers puts each after
    // the lines before it, never ahead.
    catch_up(app, id, &mut last, sink).await?;
    if let Some(end) = end_if_finished(app, id, &mut last, sink).await? {
        send(sink, end, last, app.follower_timeout).await?;
        return Ok(());
    }
    let Some(dep) = app.store.deployment(id).await? else {
        return Ok(());
    };
    send(
        sink,
        LogFrame::State {
            status: dep.status,
            phase: dep.phase,
            progress: dep.progress,
        },
        last,
        app.follower_timeout,
    )
    .await?;
    loop {
        match live.recv().await {
            Ok(frame) => match frame.as_ref() {
                LogFrame::Lines { lines } => {
                    if lines.first().is_some_and(|l| l.seq > last + 1) {
                        // Lines this follower has not seen came before: they are stored.
                        catch_up(app, id, &mut last, sink).await?;
                    }
                    let fresh: Vec<_> = lines.iter().filter(|l| l.seq > last).cloned().collect();
                    if let Some(newest) = fresh.last() {
                        let newest = newest.seq;
                        send(
                            sink,
                            LogFrame::Lines { lines: fresh },
                            last,
                            app.follower_timeout,
                        )
                        .await?;
                        last = newest;
                    }
                }
                LogFrame::State { .. } => {
                    send(sink, frame.as_ref().clone(), last, app.follower_timeout).await?
                }
                LogFrame::End { .. } => {
                    catch_up(app, id, &mut last, sink).await?;
                    send(sink, frame.as_ref().clone(), last, app.follower_timeout).await?;
                    return Ok(());
                }
            },
            Err(RecvError::Lagged(_)) => catch_up(app, id, &mut last, sink).await?,
            Err(RecvError::Closed) => {
                if let Some(end) = end_if_finished(app, id, &mut last, sink).await? {
                    send(sink, end, last, app.follower_timeout).await?;
                }
                return Ok(());
            }
        }
    }
}

/// Sends every stored line after `last`, advancing it.
async fn catch_up<S>(
    app: &App,
    id: &DeploymentId,
    last: &mut u64,
    sink: &mut S,
) -> anyhow::Result<()>
where
    S: Sink<LogFrame> + Unpin,
    S::Error: std::error::Error + Send + Sync + 'static,
{
    loop {
        let lines = app
            .store
            .lines_after(id, *last, BACKLOG_CHUNK, FRAME_BYTES)
            .await?;
        let Some(newest) = lines.last() else {
            return Ok(());
        };
        let newest = newest.seq;
        send(sink, LogFrame::Lines { lines }, *last, app.follower_timeout).await?;
        *last = newest;
    }
}

/// When the deployment is finished: the rest of its lines are sent and its `end` frame returned.
async fn end_if_finished<S>(
    app: &App,
    id: &DeploymentId,
    last: &mut u64,
    sink: &mut S,
) -> anyhow::Result<Option<LogFrame>>
where
    S: Sink<LogFrame> + Unpin,
    S::Error: std::error::Error + Send + Sync + 'static,
{
    let Some(dep) = app.store.deployment(id).await? else {
        return Ok(None);
    };
    if !dep.status.is_terminal() {
        return Ok(None);
    }
    // Lines are stored before a deployment finishes, so this read sees all of them.
    catch_up(app, id, last, sink).await?;
    Ok(Some(app.end_frame(&dep)))
}
