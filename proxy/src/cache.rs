//! What the proxy keeps in memory: small file bodies (bounded in bytes, least recently used
//! first out) and, for every key being fetched, one fetch in flight however many requests race
//! for it.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use scalemesh_core::storage::{Storage, StorageError};

/// Plain data behind the locks: a panic elsewhere leaves nothing half-done.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One fetch per key at a time: the first caller fetches, the others wait and then find the
/// result in the cache the first one filled.
#[derive(Default)]
pub struct Flights {
    inflight: Mutex<HashMap<String, Gate>>,
}

/// A key's gate, and how many callers have joined it and not yet left.
type Gate = (Arc<tokio::sync::Mutex<()>>, usize);

pub struct Flight<'f> {
    // Released first, then counted out.
    _held: tokio::sync::OwnedMutexGuard<()>,
    _joined: Joined<'f>,
}

/// One caller counted in; counted out when dropped, even when its wait is abandoned (a request
/// dropped mid-flight). The last one out removes the key's entry.
struct Joined<'f> {
    flights: &'f Flights,
    key: String,
}

impl Drop for Joined<'_> {
    fn drop(&mut self) {
        let mut inflight = lock(&self.flights.inflight);
        if let Some((_, users)) = inflight.get_mut(&self.key) {
            *users -= 1;
            if *users == 0 {
                inflight.remove(&self.key);
            }
        }
    }
}

impl Flights {
    pub async fn join(&self, key: &str) -> Flight<'_> {
        let gate = {
            let mut inflight = lock(&self.inflight);
            let (gate, users) = inflight
                .entry(key.to_owned())
                .or_insert_with(|| (Arc::new(tokio::sync::Mutex::new(())), 0));
            *users += 1;
            gate.clone()
        };
        let joined = Joined {
            flights: self,
            key: key.to_owned(),
        };
        Flight {
            _held: gate.lock_owned().await,
            _joined: joined,
        }
    }
}

/// File bodies up to `max_object` bytes, at most `max_bytes` in all.
pub struct BodyCache {
    max_bytes: usize,
    max_object: u64,
    lru: Mutex<Lru>,
    flights: Flights,
    hits: AtomicU64,
    misses: AtomicU64,
}

pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub bytes: u64,
}

#[derive(Default)]
struct Lru {
    bodies: HashMap<Arc<str>, (Bytes, u64)>,
    /// Keys by last use; shared with `bodies`, so a hit allocates nothing.
    order: BTreeMap<u64, Arc<str>>,
    bytes: usize,
    tick: u64,
}

impl Lru {
    fn touch(&mut self, key: &str) -> Option<Bytes> {
        self.tick += 1;
        let tick = self.tick;
        let (body, used) = self.bodies.get_mut(key)?;
        // The order map holds the entry's key: move it to the new tick.
        let shared = self.order.remove(used)?;
        *used = tick;
        self.order.insert(tick, shared);
        Some(body.clone())
    }

    fn insert(&mut self, key: &str, body: Bytes, max_bytes: usize) {
        if body.len() > max_bytes || self.bodies.contains_key(key) {
            return;
        }
        while self.bytes + body.len() > max_bytes {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some((gone, _)) = self.bodies.remove(&oldest) {
                self.bytes -= gone.len();
            }
        }
        self.tick += 1;
        self.bytes += body.len();
        let key: Arc<str> = Arc::from(key);
        self.order.insert(self.tick, key.clone());
        self.bodies.insert(key, (body, self.tick));
    }
}

impl BodyCache {
    pub fn new(max_bytes: usize, max_object: u64) -> Self {
        Self {
            max_bytes,
            max_object,
            lru: Mutex::new(Lru::default()),
            flights: Flights::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            bytes: lock(&self.lru).bytes as u64,
        }
    }

    /// Whether a body of `size` bytes is kept here.
    pub fn holds(&self, size: u64) -> bool {
        size <= self.max_object && self.max_bytes > 0
    }

    /// The body at `key`, from memory or (once, however many ask at the same time) from storage.
    pub async fn get(&self, storage: &dyn Storage, key: &str) -> Result<Bytes, StorageError> {
        if let Some(body) = lock(&self.lru).touch(key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(body);
        }
        let _flight = self.flights.join(key).await;
        if let Some(body) = lock(&self.lru).touch(key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(body);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let body = storage.get_bytes(key).await?;
        lock(&self.lru).insert(key, body.clone(), self.max_bytes);
        Ok(body)
    }

    #[cfg(test)]
    fn cached_bytes(&self) -> usize {
        lock(&self.lru).bytes
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use async_trait::async_trait;
    use scalemesh_core::storage::{Body, FsStorage, Object, ObjectMeta};

    use super::*;

    /// Real folder storage that counts reads.
    struct Counting {
        inner: FsStorage,
        gets: AtomicUsize,
    }

    #[async_trait]
    impl Storage for Counting {
        async fn put(&self, key: &str, body: Body, meta: &ObjectMeta) -> Result<(), StorageError> {
            self.inner.put(key, body, meta).await
        }
        async fn get(&self, key: &str) -> Result<Object, StorageError> {
            self.gets.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            self.inner.get(key).await
        }
        async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
            self.inner.list(prefix).await
        }
        async fn delete(&self, key: &str) -> Result<(), StorageError> {
            self.inner.delete(key).await
        }
        fn url(&self) -> String {
            self.inner.url()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn racing_requests_fetch_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Arc::new(Counting {
            inner: FsStorage::new(dir.path().to_path_buf()),
            gets: AtomicUsize::new(0),
        });
        storage
            .put(
                "k",
                Body::Bytes(Bytes::from_static(b"body")),
                &ObjectMeta::default(),
            )
            .await
            .expect("put");
        let cache = Arc::new(BodyCache::new(1024, 100));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (cache, storage) = (cache.clone(), storage.clone());
            tasks.push(tokio::spawn(async move {
                cache.get(storage.as_ref(), "k").await.expect("get")
            }));
        }
        for task in tasks {
            assert_eq!(task.await.expect("join"), Bytes::from_static(b"body"));
        }
        assert_eq!(
            storage.gets.load(Ordering::SeqCst),
            1,
            "one fetch for fifty requests"
        );
        assert!(
            lock(&cache.flights.inflight).is_empty(),
            "no flight is left behind"
        );
    }

    #[test]
    fn the_cache_stays_within_its_bytes() {
        let cache = BodyCache::new(10, 10);
        let mut lru = lock(&cache.lru);
        lru.insert("a", Bytes::from_static(b"aaaa"), 10);
        lru.insert("b", Bytes::from_static(b"bbbb"), 10);
        assert!(lru.touch("a").is_some(), "a is now the most recent");
        lru.insert("c", Bytes::from_static(b"cccc"), 10);
        assert!(lru.touch("b").is_none(), "the least recently used went");
        assert!(lru.touch("a").is_some() && lru.touch("c").is_some());
        lru.insert("huge", Bytes::from(vec![0u8; 11]), 10);
        assert!(lru.touch("huge").is_none());
        drop(lru);
        assert!(cache.cached_bytes() <= 10);
    }
}
