//! The connections to the state: one writing connection behind a mutex, used from blocking
//! threads (SQLite has one writer anyway, and every query here is short), and a few read-only
//! ones. WAL lets the file be read while it is written; `checkpoint.rs` moves the log into the
//! file away from requests. Times are stored as milliseconds.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use time::OffsetDateTime;

use super::checkpoint::{self, Wrote};
use super::error::{DbError, DbResult};
use super::schema;

#[derive(Clone)]
pub struct SqliteStore {
    /// The one connection that writes.
    writer: Arc<Mutex<Connection>>,
    /// Idle read-only connections: reads (log replays above all) never wait for writes.
    readers: Arc<Mutex<Vec<Connection>>>,
    /// Reads at once: each holds a blocking thread and a connection with its page cache, so
    /// hundreds of log followers catching up at once wait their turn instead.
    reading: Arc<tokio::sync::Semaphore>,
    path: Arc<PathBuf>,
    /// Tells the thread that checkpoints the log that something was written.
    wrote: Wrote,
}

/// Read-only connections kept open between reads.
const IDLE_READERS: usize = 4;
/// Reads running at once.
const MAX_READERS: usize = 8;

impl SqliteStore {
    /// Opens (or creates) the database, readable by its owner only: it holds project secrets.
    pub fn open(path: &Path) -> DbResult<Self> {
        use std::os::unix::fs::PermissionsExt;
        let mut conn = Connection::open(path)?;
        // Before WAL mode creates its files, which take the database file's permissions.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| DbError::Task(format!("restricting {}: {e}", path.display())))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "wal_autocheckpoint", checkpoint::FALLBACK_PAGES)?;
        conn.pragma_update(None, "journal_size_limit", checkpoint::LOG_KEPT_BYTES)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Deleted content (a variable's old sealed value, a revoked token's hash) is zeroed.
        conn.pragma_update(None, "secure_delete", "ON")?;
        schema::migrate(&mut conn)?;
        let wrote = checkpoint::start(path)
            .map_err(|e| DbError::Task(format!("starting the checkpointing thread: {e}")))?;
        Ok(Self {
            writer: Arc::new(Mutex::new(conn)),
            readers: Arc::new(Mutex::new(Vec::new())),
            reading: Arc::new(tokio::sync::Semaphore::new(MAX_READERS)),
            path: Arc::new(path.to_path_buf()),
            wrote,
        })
    }

    /// Runs `f` with the writing connection on a blocking thread.
    pub async fn call<F, R>(&self, f: F) -> DbResult<R>
    where
        F: FnOnce(&mut Connection) -> DbResult<R> + Send + 'static,
        R: Send + 'static,
    {
        let conn = self.writer.clone();
        let wrote = self.wrote.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = scalemesh_core::sync::lock(&conn);
            let done = f(&mut guard);
            drop(guard);
            wrote.tell();
            done
        })
        .await
        .map_err(|e| DbError::Task(e.to_string()))?
    }

    /// Runs `f` with a read-only connection on a blocking thread. It sees what was committed.
    pub async fn read<F, R>(&self, f: F) -> DbResult<R>
    where
        F: FnOnce(&Connection) -> DbResult<R> + Send + 'static,
        R: Send + 'static,
    {
        let readers = self.readers.clone();
        let path = self.path.clone();
        let _turn = self
            .reading
            .acquire()
            .await
            .map_err(|e| DbError::Task(e.to_string()))?;
        tokio::task::spawn_blocking(move || {
            let idle = scalemesh_core::sync::lock(&readers).pop();
            let conn = match idle {
                Some(conn) => conn,
                None => {
                    let conn = Connection::open_with_flags(
                        path.as_path(),
                        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                            | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    )?;
                    conn.busy_timeout(std::time::Duration::from_secs(5))?;
                    conn
                }
            };
            let result = f(&conn);
            let mut idle = scalemesh_core::sync::lock(&readers);
            if idle.len() < IDLE_READERS {
                idle.push(conn);
            }
            result
        })
        .await
        .map_err(|e| DbError::Task(e.to_string()))?
    }
}

pub fn now_ms() -> i64 {
    to_ms(OffsetDateTime::now_utc())
}

pub fn to_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub fn from_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    use super::*;

    /// However many reads are asked for at once (followers catching up), at most
    /// `MAX_READERS` run, each on a connection of its own, and at most `IDLE_READERS`
    /// connections are kept afterwards; every read is answered.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_run_a_few_at_once_however_many_are_asked_for() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("db.sqlite")).expect("open");
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let reads: Vec<_> = (0..100)
            .map(|i| {
                let (store, inside, most) = (store.clone(), inside.clone(), most.clone());
                tokio::spawn(async move {
                    store
                        .read(move |conn| {
                            let now = inside.fetch_add(1, SeqCst) + 1;
                            most.fetch_max(now, SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(5));
                            let n: i64 = conn.query_row("SELECT ?1", [i], |r| r.get(0))?;
                            inside.fetch_sub(1, SeqCst);
                            Ok(n)
                        })
                        .await
                })
            })
            .collect();
        for (i, read) in reads.into_iter().enumerate() {
            assert_eq!(read.await.expect("join").expect("read"), i as i64);
        }
        let most = most.load(SeqCst);
        assert!((2..=MAX_READERS).contains(&most), "{most} reads at once");
        let idle = store.readers.lock().expect("lock").len();
        assert!(idle <= IDLE_READERS, "{idle} idle connections kept");
    }
}
