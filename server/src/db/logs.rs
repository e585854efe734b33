//! Build logs. The server numbers lines itself (`seq` 1, 2, …, no gaps); a builder numbers only
//! its own lines (`first`), which makes a retried batch recognisable and stored once. A
//! deployment keeps at most [`MAX_LINES`] lines and [`MAX_BYTES`] of text; beyond that, a build's
//! output is acknowledged but not kept, and one line says so.

use rusqlite::params;
use scalemesh_core::wire::{LogLine, LogStream, MAX_LOG_LINE_BYTES, NewLogLine};
use scalemesh_core::{DeploymentId, DeploymentStatus};
use time::OffsetDateTime;

use super::deployment_row::DeploymentTx;
use super::error::{DbError, DbResult};
use super::store::{SqliteStore, from_ms, to_ms};

/// Most lines kept for one deployment.
pub const MAX_LINES: u64 = 200_000;
/// Most bytes of text kept for one deployment.
pub const MAX_BYTES: u64 = 64 * 1024 * 1024;

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
    if text.len() > MAX_LOG_LINE_BYTES {
        let mut cut = MAX_LOG_LINE_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str(" […line cut]");
    }
    text
}

/// How much of its log a deployment holds: the next `seq` and the bytes stored.
fn held(tx: &rusqlite::Transaction<'_>, id: &str) -> DbResult<(u64, u64)> {
    let (next, bytes): (i64, i64) = tx.query_row(
        "SELECT next_seq, log_bytes FROM deployments WHERE id = ?1",
        params![id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let corrupt = |e: std::num::TryFromIntError| DbError::Corrupt(e.to_string());
    Ok((
        u64::try_from(next).map_err(corrupt)?,
        u64::try_from(bytes).map_err(corrupt)?,
    ))
}

pub(super) fn insert(
    tx: &rusqlite::Transaction<'_>,
    id: &str,
    lines: impl IntoIterator<Item = (LogStream, String, OffsetDateTime)>,
) -> DbResult<Vec<LogLine>> {
    let (mut seq, mut bytes) = held(tx, id)?;
    let mut stored = Vec::new();
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO log_lines (deployment_id, seq, ts, stream, text) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for (stream, text, ts) in lines {
            let text = truncate(text);
            stmt.execute(params![id, seq, to_ms(ts), stream.as_str(), text])?;
            bytes += text.len() as u64;
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
        "UPDATE deployments SET next_seq = ?2, log_bytes = ?3 WHERE id = ?1",
        params![id, seq, bytes],
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
            let Some(DeploymentTx { tx, current, .. }) = DeploymentTx::open(conn, &id)? else {
                return Ok(AppendOutcome::NotFound);
            };
            if current.status.is_terminal() {
                return Ok(AppendOutcome::Finished(current.status));
            }
            let acked_before: i64 = tx.query_row(
                "SELECT builder_lines FROM deployments WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )?;
            let acked_before = u64::try_from(acked_before).map_err(|e| DbError::Corrupt(e.to_string()))?;
            if first > acked_before {
                return Ok(AppendOutcome::Gap { expected: acked_before });
            }
            let skip = usize::try_from(acked_before - first).unwrap_or(usize::MAX);
            let fresh: Vec<_> = lines.into_iter().skip(skip).collect();
            let acked = acked_before + fresh.len() as u64;

            // What still fits; where it stops, one note says the log is cut.
            let cut: bool = tx.query_row(
                "SELECT log_cut FROM deployments WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )?;
            let (next, mut bytes) = held(&tx, &id)?;
            let mut room = MAX_LINES.saturating_sub(next - 1);
            let mut kept = Vec::with_capacity(fresh.len());
            let mut cut_now = false;
            for line in fresh {
                if cut {
                    break;
                }
                if room == 0 || bytes >= MAX_BYTES {
                    let note = format!(
                        "[the log is cut here: a deployment keeps at most {MAX_LINES} lines and {} MB]",
                        MAX_BYTES / (1024 * 1024)
                    );
                    kept.push((LogStream::System, note, line.ts));
                    cut_now = true;
                    break;
                }
                room -= 1;
                bytes += line.text.len().min(MAX_LOG_LINE_BYTES) as u64;
                kept.push((line.stream, line.text, line.ts));
            }
            let stored = insert(&tx, &id, kept)?;
            tx.execute(
                "UPDATE deployments SET builder_lines = ?2, log_cut = log_cut OR ?3 WHERE id = ?1",
                params![id, acked, cut_now],
            )?;
            tx.commit()?;
            Ok(AppendOutcome::Appended { acked, lines: stored })
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

    /// Lines after `since`, in order: at most `limit` of them and, past the first, at most
    /// `max_bytes` of text. An empty answer means there is nothing after `since` yet.
    pub async fn lines_after(
        &self,
        id: &DeploymentId,
        since: u64,
        limit: u32,
        max_bytes: usize,
    ) -> DbResult<Vec<LogLine>> {
        let id = id.to_string();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, ts, stream, text FROM log_lines WHERE deployment_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
            )?;
            let since = i64::try_from(since).unwrap_or(i64::MAX);
            let mut rows = stmt.query(params![id, since, limit])?;
            let mut lines = Vec::new();
            let mut bytes = 0;
            while let Some(r) = rows.next()? {
                let seq: i64 = r.get(0)?;
                let stream: String = r.get(2)?;
                let text: String = r.get(3)?;
                bytes += text.len();
                lines.push(LogLine {
                    seq: u64::try_from(seq).unwrap_or(0),
                    ts: from_ms(r.get(1)?),
                    stream: LogStream::parse(&stream).unwrap_or(LogStream::System),
                    text,
                });
                if bytes >= max_bytes {
                    break;
                }
            }
            Ok(lines)
        })
        .await
    }
}
