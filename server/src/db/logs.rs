//! Build logs. The server numbers lines itself (`seq` 1, 2, …, no gaps); a builder numbers only
//! its own lines (`first`), which makes a retried batch recognisable and stored once.

use rusqlite::params;
use scalemesh_core::DeploymentStatus;
use scalemesh_core::wire::{LogLine, LogStream, NewLogLine};
use time::OffsetDateTime;

use super::deployments::deployment_by_id;
use super::{DbError, DbResult, SqliteStore, from_ms, to_ms};
use scalemesh_core::DeploymentId;

use scalemesh_core::wire::MAX_LOG_LINE_BYTES as MAX_LINE_BYTES;

/// Most lines stored for one deployment; what a build prints beyond is counted, not kept.
pub const MAX_LINES_PER_DEPLOYMENT: u64 = 200_000;

#[derive(Debug)]
pub enum AppendOutcome {
    /// Stored (possibly nothing new, for a retried batch); `acked` builder lines are held now.
    Appended {
        acked: u64,
        lines: Vec<LogLine>,
    },
    /// The batch starts after a line the server never got; send again from `expected`.
    Gap {
        expected: u64,
    },
    /// The deployment is finished and takes no more builder lines.
    Finished(DeploymentStatus),
    NotFound,
}

fn truncate(mut text: String) -> String {
    if text.len() > MAX_LINE_BYTES {
        let mut cut = MAX_LINE_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str(" […line cut]");
    }
    text
}

pub(super) fn insert(
    tx: &rusqlite::Transaction<'_>,
    id: &str,
    lines: impl IntoIterator<Item = (LogStream, String, OffsetDateTime)>,
) -> DbResult<Vec<LogLine>> {
    let next: i64 = tx.query_row(
        "SELECT next_seq FROM deployments WHERE id = ?1",
        params![id],
        |r| r.get(0),
    )?;
    let mut seq = u64::try_from(next).map_err(|e| DbError::Corrupt(e.to_string()))?;
    let mut stored = Vec::new();
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO log_lines (deployment_id, seq, ts, stream, text) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for (stream, text, ts) in lines {
            let text = truncate(text);
            stmt.execute(params![id, seq, to_ms(ts), stream.as_str(), text])?;
            stored.push(LogLine {
                seq,
                ts,
                stream,
                text,
            });
            seq += 1;
        }
    }
    tx.execute(
        "UPDATE deployments SET next_seq = ?2 WHERE id = ?1",
        params![id, seq],
    )?;
    Ok(stored)
}

impl SqliteStore {
    pub async fn append_builder_lines(
        &self,
        id: &DeploymentId,
        first: u64,
        lines: Vec<NewLogLine>,
    ) -> DbResult<AppendOutcome> {
        let id = id.to_string();
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let Some(dep) = deployment_by_id(&tx, &id)? else {
                return Ok(AppendOutcome::NotFound);
            };
            if dep.status.is_terminal() {
                return Ok(AppendOutcome::Finished(dep.status));
            }
            let held: i64 = tx.query_row(
                "SELECT builder_lines FROM deployments WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )?;
            let held = u64::try_from(held).map_err(|e| DbError::Corrupt(e.to_string()))?;
            if first > held {
                return Ok(AppendOutcome::Gap { expected: held });
            }
            let skip = usize::try_from(held - first).unwrap_or(usize::MAX);
            let mut fresh: Vec<_> = lines
                .into_iter()
                .skip(skip)
                .map(|l| (l.stream, l.text, l.ts))
                .collect();
            let acked = held + fresh.len() as u64;
            let next: i64 = tx.query_row(
                "SELECT next_seq FROM deployments WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )?;
            let stored_so_far = u64::try_from(next).unwrap_or(1).saturating_sub(1);
            let room = usize::try_from(MAX_LINES_PER_DEPLOYMENT.saturating_sub(stored_so_far))
                .unwrap_or(usize::MAX);
            if fresh.len() > room {
                let ts = fresh.first().map(|l| l.2).unwrap_or_else(OffsetDateTime::now_utc);
                fresh.truncate(room);
                if room > 0 {
                    fresh.push((
                        LogStream::System,
                        format!(
                            "[the log is cut here: only {MAX_LINES_PER_DEPLOYMENT} lines are kept per deployment]"
                        ),
                        ts,
                    ));
                }
            }
            let stored = insert(&tx, &id, fresh)?;
            tx.execute(
                "UPDATE deployments SET builder_lines = ?2 WHERE id = ?1",
                params![id, acked],
            )?;
            tx.commit()?;
            Ok(AppendOutcome::Appended {
                acked,
                lines: stored,
            })
        })
        .await
    }

    /// Lines from Scale Mesh itself; taken in any status.
    pub async fn append_system_lines(
        &self,
        id: &DeploymentId,
        texts: Vec<String>,
    ) -> DbResult<Vec<LogLine>> {
        let id = id.to_string();
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let now = OffsetDateTime::now_utc();
            let stored = insert(
                &tx,
                &id,
                texts.into_iter().map(|t| (LogStream::System, t, now)),
            )?;
            tx.commit()?;
            Ok(stored)
        })
        .await
    }

    /// Up to `limit` lines after `since`, in order.
    pub async fn lines_after(
        &self,
        id: &DeploymentId,
        since: u64,
        limit: u32,
    ) -> DbResult<Vec<LogLine>> {
        let id = id.to_string();
        self.call(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, ts, stream, text FROM log_lines WHERE deployment_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
            )?;
            let since = i64::try_from(since).unwrap_or(i64::MAX);
            let rows = stmt.query_map(params![id, since, limit], |r| {
                let seq: i64 = r.get(0)?;
                let stream: String = r.get(2)?;
                Ok(LogLine {
                    seq: u64::try_from(seq).unwrap_or(0),
                    ts: from_ms(r.get(1)?),
                    stream: LogStream::parse(&stream).unwrap_or(LogStream::System),
                    text: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }
}
