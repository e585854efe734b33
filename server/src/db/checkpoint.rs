//! Moves what the write-ahead log holds into the database file on a thread of its own, once
//! writes pause, instead of in the commit that happens to fill the log: a checkpoint writes
//! pages back and waits for the disk, which no request should wait for.
//!
//! The writing connection checkpoints by itself only past `FALLBACK_PAGES`, a net should this
//! thread ever fall behind. The thread ends when the last handle of the store is gone, after a
//! last checkpoint.

use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

/// How long writes must pause before the log is checkpointed.
const QUIET: Duration = Duration::from_millis(100);
/// The longest the log goes unchecked while writes never pause.
const AT_MOST: Duration = Duration::from_secs(1);
/// Pages in the log past which the writing connection checkpoints after a commit (SQLite's own
/// rule, at ten times its default).
pub(super) const FALLBACK_PAGES: i64 = 10_000;
/// Bytes the log's file is cut back to once checkpointed (it is reused from its start).
pub(super) const LOG_KEPT_BYTES: i64 = 16 * 1024 * 1024;

/// Tells the checkpointing thread that something was written.
#[derive(Clone)]
pub(super) struct Wrote(SyncSender<()>);

impl Wrote {
    pub(super) fn tell(&self) {
        // A full channel already says so; a gone thread checkpoints nothing more.
        match self.0.try_send(()) {
            Ok(()) | Err(TrySendError::Full(())) | Err(TrySendError::Disconnected(())) => {}
        }
    }
}

/// Starts the checkpointing thread for the database at `path`, which exists.
pub(super) fn start(path: &Path) -> Result<Wrote, String> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| e.to_string())?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("scalemesh-db-checkpoint".into())
        .spawn(move || run(&conn, &rx))
        .map_err(|e| e.to_string())?;
    Ok(Wrote(tx))
}

fn run(conn: &Connection, wrote: &Receiver<()>) {
    // Since when the log holds what was not checkpointed, if it does.
    let mut unchecked: Option<Instant> = None;
    loop {
        let wait = match unchecked {
            Some(since) => QUIET.min(AT_MOST.saturating_sub(since.elapsed())),
            None => Duration::from_secs(3600),
        };
        match wrote.recv_timeout(wait) {
            Ok(()) => {
                let since = *unchecked.get_or_insert_with(Instant::now);
                if since.elapsed() < AT_MOST {
                    continue;
                }
            }
            Err(RecvTimeoutError::Timeout) if unchecked.is_none() => continue,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                checkpoint(conn);
                return;
            }
        }
        checkpoint(conn);
        unchecked = None;
    }
}

/// Copies into the database file what the log holds and no reader still needs; waits for no
/// one (a page a reader needs is copied by a later checkpoint).
fn checkpoint(conn: &Connection) {
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
        tracing::warn!(error = %e, "checkpointing the database's log failed; the next one tries again");
    }
}

#[cfg(test)]
mod tests {
    use super::super::SqliteStore;

    /// A few small writes never fill the log to SQLite's own checkpoint size, yet they reach
    /// the database file itself (a copy of the file alone, without its log, holds them) soon
    /// after writes pause.
    #[tokio::test]
    async fn what_is_written_reaches_the_database_file_once_writes_pause() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db.sqlite");
        let store = SqliteStore::open(&path).expect("open");
        for i in 0..5 {
            store
                .call(move |conn| {
                    conn.execute("CREATE TABLE IF NOT EXISTS marks (n INTEGER)", [])?;
                    conn.execute("INSERT INTO marks (n) VALUES (?1)", [i])?;
                    Ok(())
                })
                .await
                .expect("write");
        }
        let copy = dir.path().join("copy.sqlite");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let marks = loop {
            std::fs::copy(&path, &copy).expect("copy the database file");
            let _ = std::fs::remove_file(dir.path().join("copy.sqlite-wal"));
            let conn = rusqlite::Connection::open(&copy).expect("open the copy");
            let marks: Option<i64> = conn
                .query_row("SELECT count(*) FROM marks", [], |r| r.get(0))
                .ok();
            drop(conn);
            if marks == Some(5) || std::time::Instant::now() > deadline {
                break marks;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        assert_eq!(marks, Some(5), "the writes never left the log");
        drop(store);
    }
}
