//! The bodies every serving thread shares: small file bodies with the heads of their whole
//! responses, bounded in bytes, least recently used first out, each fetched from storage once
//! however many requests race for it. A body large enough also gets a memory file
//! (`scalemesh_net::memfile`), so responses carrying it are sent with `sendfile`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use axum::http::HeaderMap;
use scalemesh_core::layout::Location;
use scalemesh_core::storage::{Storage, StorageError};
use scalemesh_core::sync::{read, write};
use scalemesh_net::counter::Counter;
use scalemesh_net::memfile::{self, Sendable};

use crate::flights::Flights;

/// File bodies up to `max_object` bytes, at most `max_bytes` in all, each with the head of its
/// whole (`200`) response, so a hit builds no header. What a key names never changes (a
/// deployment's files are immutable), so neither does its head.
pub struct BodyCache {
    max_bytes: usize,
    max_object: u64,
    kept: RwLock<Kept>,
    /// Bumped on every insertion; a hit stamps its entry with it. Eviction drops the entries
    /// stamped longest ago: least recently used, to within one insertion.
    clock: AtomicU64,
    flights: Flights,
    hits: Counter,
    misses: Counter,
}

/// Where a body came from: memory already, or storage just now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Memory,
    Storage,
}

pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub bytes: u64,
}

/// What a cached entry costs besides its body, key and head: the map's slot, the entry and the
/// allocations' own bookkeeping.
const ENTRY_FIXED: usize = 256;

/// An upper bound of what an entry costs besides its body, for `holds`.
const ENTRY_MOST: usize = 8 * 1024;

/// What a head costs in memory: its table (about 112 bytes a slot with its index) and values.
pub fn head_cost(head: &HeaderMap) -> usize {
    head.capacity() * 112 + head.values().map(|v| v.len()).sum::<usize>()
}

/// What keeping `body` under `key` with `head` costs, in bytes.
fn cost(key: &str, body: &Sendable, head: &HeaderMap) -> usize {
    body.len() + key.len() + head_cost(head) + ENTRY_FIXED
}

#[derive(Default)]
struct Kept {
    entries: HashMap<Arc<str>, Entry>,
    bytes: usize,
}

struct Entry {
    body: Sendable,
    head: HeaderMap,
    used: AtomicU64,
    cost: usize,
}

impl BodyCache {
    pub fn new(max_bytes: usize, max_object: u64) -> Self {
        Self {
            max_bytes,
            max_object,
            kept: RwLock::new(Kept::default()),
            clock: AtomicU64::new(0),
            flights: Flights::default(),
            hits: Counter::default(),
            misses: Counter::default(),
        }
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.get(),
            misses: self.misses.get(),
            bytes: read(&self.kept).bytes as u64,
        }
    }

    /// Counts a body served from a copy made of one kept here.
    pub fn count_hit(&self) {
        self.hits.add(1);
    }

    /// Whether a body of `size` bytes is kept here.
    pub fn holds(&self, size: u64) -> bool {
        size <= self.max_object
            && usize::try_from(size)
                .is_ok_and(|size| size.saturating_add(ENTRY_MOST) <= self.max_bytes)
    }

    /// `take` applied to the body at `key` and its head, and where the body came from: from
    /// memory, or (once, however many ask at the same time) read from storage and kept with the
    /// head `head` makes.
    pub async fn get<R>(
        &self,
        storage: &dyn Storage,
        location: &Location,
        head: impl FnOnce() -> HeaderMap,
        take: impl Fn(&Sendable, &HeaderMap) -> R,
    ) -> Result<(R, Source), StorageError> {
        let key = &location.cache_key();
        if let Some(found) = self.hit(key, &take) {
            return Ok((found, Source::Memory));
        }
        let _flight = self.flights.join(key).await;
        if let Some(found) = self.hit(key, &take) {
            return Ok((found, Source::Memory));
        }
        self.misses.add(1);
        let body = if location.whole {
            storage.get_bytes(&location.key).await?
        } else {
            storage
                .get_part_bytes(&location.key, location.start, location.len)
                .await?
        };
        // A memory file too when there is room for both: written off the serving thread.
        let (body, file) = if body.len() >= memfile::MIN
            && body.len().saturating_mul(2).saturating_add(ENTRY_MOST) <= self.max_bytes
        {
            let plain = Sendable::plain(body.clone());
            tokio::task::spawn_blocking(move || memfile::register(body))
                .await
                .unwrap_or((plain, 0))
        } else {
            (Sendable::plain(body), 0)
        };
        let head = head();
        let found = take(&body, &head);
        self.insert(key, body, file, head);
        Ok((found, Source::Storage))
    }

    fn hit<R>(&self, key: &str, take: impl Fn(&Sendable, &HeaderMap) -> R) -> Option<R> {
        let kept = read(&self.kept);
        let entry = kept.entries.get(key)?;
        let now = self.clock.load(Ordering::Relaxed);
        // Written only when it changes, so a hot entry's line is not written on every hit.
        if entry.used.load(Ordering::Relaxed) != now {
            entry.used.store(now, Ordering::Relaxed);
        }
        self.hits.add(1);
        Some(take(&entry.body, &entry.head))
    }

    /// Keeps `body` (and the `file` bytes of its memory file) under `key`.
    fn insert(&self, key: &str, body: Sendable, file: usize, head: HeaderMap) {
        let now = self.clock.fetch_add(1, Ordering::Relaxed) + 1;
        let cost = cost(key, &body, &head) + file;
        if cost > self.max_bytes {
            return;
        }
        let entry = Entry {
            body,
            head,
            used: AtomicU64::new(now),
            cost,
        };
        let mut kept = write(&self.kept);
        if kept.entries.contains_key(key) {
            return;
        }
        if kept.bytes + cost > self.max_bytes {
            // Least recently used first, down to seven eighths of the budget, so the next
            // insertions do not each pay for a sort.
            let target = (self.max_bytes / 8 * 7).min(self.max_bytes - cost);
            let mut by_use: Vec<(u64, Arc<str>)> = kept
                .entries
                .iter()
                .map(|(k, e)| (e.used.load(Ordering::Relaxed), k.clone()))
                .collect();
            by_use.sort_unstable_by_key(|(used, _)| *used);
            for (_, oldest) in by_use {
                if kept.bytes <= target {
                    break;
                }
                if let Some(gone) = kept.entries.remove(&oldest) {
                    kept.bytes -= gone.cost;
                }
            }
        }
        kept.bytes += cost;
        kept.entries.insert(Arc::from(key), entry);
    }

    #[cfg(test)]
    fn cached_bytes(&self) -> usize {
        read(&self.kept).bytes
    }

    #[cfg(test)]
    fn has(&self, key: &str) -> bool {
        self.hit(key, |_, _| ()).is_some()
    }
}

#[cfg(test)]
mod tests {
    use scalemesh_core::storage::{Body, FsStorage, ObjectMeta};
    use scalemesh_core::testing::Counting;

    use bytes::Bytes;

    use super::*;

    /// The object `key` as a whole body.
    fn whole(key: &str) -> Location {
        Location {
            key: key.to_owned(),
            start: 0,
            len: 0,
            whole: true,
        }
    }

    #[tokio::test]
    async fn parts_of_a_blob_are_read_and_kept_each_on_its_own() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Counting::new(Arc::new(FsStorage::new(dir.path().to_path_buf())));
        let blob = Body::Bytes(Bytes::from_static(b"fileBRgz"));
        storage
            .put("b", blob, &ObjectMeta::default())
            .await
            .expect("put");
        let cache = BodyCache::new(1 << 20, 100);
        let part = |start, len| Location {
            key: "b".into(),
            start,
            len,
            whole: false,
        };
        for (start, len, want) in [(0, 4, "file"), (4, 2, "BR"), (6, 2, "gz"), (4, 2, "BR")] {
            let (got, _) = cache
                .get(&storage, &part(start, len), HeaderMap::new, |body, _| {
                    body.bytes().clone()
                })
                .await
                .expect("get");
            assert_eq!(got, Bytes::from(want), "{start}+{len}");
        }
        assert_eq!(storage.reads(), 3, "each part read once");
        let (empty, _) = cache
            .get(&storage, &part(8, 0), HeaderMap::new, |body, _| body.len())
            .await
            .expect("an empty part");
        assert_eq!(empty, 0);
    }

    /// `body` under the key `k`.
    async fn put_body(storage: &dyn Storage) {
        storage
            .put(
                "k",
                Body::Bytes(Bytes::from_static(b"body")),
                &ObjectMeta::default(),
            )
            .await
            .expect("put");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn racing_requests_fetch_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Arc::new(Counting::new(Arc::new(FsStorage::new(
            dir.path().to_path_buf(),
        ))));
        put_body(storage.as_ref()).await;
        let cache = Arc::new(BodyCache::new(1 << 20, 100));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (cache, storage) = (cache.clone(), storage.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get(storage.as_ref(), &whole("k"), HeaderMap::new, |body, _| {
                        body.bytes().clone()
                    })
                    .await
                    .expect("get")
                    .0
            }));
        }
        for task in tasks {
            assert_eq!(task.await.expect("join"), Bytes::from_static(b"body"));
        }
        assert_eq!(storage.reads(), 1, "one fetch for fifty requests");
        assert!(cache.flights.is_empty(), "no flight is left behind");
    }

    #[tokio::test]
    async fn the_cache_stays_within_its_bytes_and_drops_the_least_recently_used() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = FsStorage::new(dir.path().to_path_buf());
        for key in ["a", "b", "c", "d"] {
            let body = Body::Bytes(Bytes::from(vec![b'x'; 1000]));
            storage
                .put(key, body, &ObjectMeta::default())
                .await
                .expect("put");
        }
        let per_entry = cost(
            "a",
            &Sendable::plain(Bytes::from(vec![0; 1000])),
            &HeaderMap::new(),
        );
        let cache = BodyCache::new(per_entry * 3, 2000);
        let get = |key: &'static str| {
            let (cache, storage) = (&cache, &storage);
            async move {
                cache
                    .get(storage, &whole(key), HeaderMap::new, |body, _| body.len())
                    .await
                    .expect("get")
                    .0
            }
        };
        assert_eq!(get("a").await, 1000);
        get("b").await;
        get("c").await;
        assert!(cache.has("a"), "a is now the most recent");
        get("d").await;
        assert!(!cache.has("b"), "the least recently used went");
        assert!(cache.has("a") && cache.has("d"));
        assert!(cache.cached_bytes() <= per_entry * 3);
        assert_eq!(cache.stats().misses, 4);
    }

    #[tokio::test]
    async fn a_hit_returns_the_head_made_when_the_body_was_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = FsStorage::new(dir.path().to_path_buf());
        put_body(&storage).await;
        let cache = BodyCache::new(1 << 20, 100);
        let head = || {
            let mut h = HeaderMap::new();
            h.insert("x-made", axum::http::HeaderValue::from_static("once"));
            h
        };
        let take = |body: &Sendable, head: &HeaderMap| (body.bytes().clone(), head.clone());
        let ((_, first), _) = cache
            .get(&storage, &whole("k"), head, take)
            .await
            .expect("get");
        let ((body, again), _) = cache
            .get(&storage, &whole("k"), || panic!("made again"), take)
            .await
            .expect("get");
        assert_eq!(body, Bytes::from_static(b"body"));
        assert_eq!(first, again);
        assert_eq!(cache.stats().hits, 1);
    }
}
