//! File bodies for responses, looked up in one order: this serving thread's own copy, then the
//! cache every thread shares, then storage. [`Bodies::whole`] answers a `GET` of a whole file
//! with the head its `200` response was built with; [`Bodies::range`] answers any other part.
//! Bodies kept in memory come as [`Sendable`]: a response carrying a large one is sent from its
//! memory file.

mod shared;
mod thread;

use std::time::Instant;

use axum::http::HeaderMap;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use scalemesh_core::layout::{Encoding, Location};
use scalemesh_core::storage::{Storage, StorageError};
use scalemesh_net::memfile::Sendable;

pub use shared::CacheStats;
use shared::{BodyCache, Source};

use crate::resolve::Site;

/// Bodies in memory: the shared cache, and what each thread may copy for itself.
pub struct Bodies {
    shared: BodyCache,
    /// Each serving thread's budget for its own copies of responses.
    thread_bytes: usize,
}

/// A file's body as one response wants it: which deployment (as loaded), which file, in which
/// coding, and its size as the manifest says.
pub struct File<'a> {
    pub site: &'a Site,
    pub path: &'a str,
    pub coding: Option<Encoding>,
    pub size: u64,
}

impl File<'_> {
    /// Where storage keeps it: a blob named by the project and the file's digest, or the
    /// deployment's own folder for a deployment made before blobs.
    fn location(&self) -> Result<Location, StorageError> {
        self.site
            .manifest
            .locate(self.path, self.coding)
            .ok_or_else(|| StorageError::Backend(format!("{} is not in its manifest", self.path)))
    }
}

/// Which bytes of a body: `len` from `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: u64,
    pub len: u64,
}

/// A whole body and the head of its `200` response.
pub struct Whole {
    pub head: HeaderMap,
    pub body: Sendable,
}

/// Part of a body (or all of it): from memory, or streamed from storage.
pub enum Part {
    Memory(Sendable),
    Stream(BoxStream<'static, std::io::Result<Bytes>>),
}

impl Bodies {
    /// `shared_bytes` in all for bodies up to `max_object` bytes, and `thread_bytes` per thread.
    pub fn new(shared_bytes: usize, max_object: u64, thread_bytes: usize) -> Self {
        Self {
            shared: BodyCache::new(shared_bytes, max_object),
            thread_bytes,
        }
    }

    pub fn stats(&self) -> CacheStats {
        self.shared.stats()
    }

    /// Whether a body of `size` bytes is kept in memory: only those are asked of `whole`.
    pub fn holds(&self, size: u64) -> bool {
        self.shared.holds(size)
    }

    /// The whole body of `file` with the head of its `200` response, which `head` makes when
    /// the body is read from storage. A body the shared cache held already is copied for this
    /// thread too, so one request for a file makes no copy and a hot one is served without the
    /// shared cache's lock.
    pub async fn whole(
        &self,
        storage: &dyn Storage,
        file: &File<'_>,
        now: Instant,
        head: impl FnOnce() -> HeaderMap,
    ) -> Result<Whole, StorageError> {
        if let Some((head, body)) = thread::get(file.site.id, file.coding, file.path, now) {
            self.shared.count_hit();
            return Ok(Whole {
                head,
                body: Sendable::plain(body),
            });
        }
        let location = file.location()?;
        let take = |body: &Sendable, head: &HeaderMap| {
            (body.len() as u64 == file.size).then(|| (body.clone(), head.clone()))
        };
        let (found, source) = self.shared.get(storage, &location, head, take).await?;
        let (body, head) = found.ok_or_else(|| wrong_size(&location.key))?;
        if source == Source::Memory {
            thread::keep(
                self.thread_bytes,
                file.site.id,
                file.coding,
                file.path,
                &head,
                body.bytes(),
            );
        }
        Ok(Whole { head, body })
    }

    /// `len` bytes of `file` from `start`: from memory when the body is kept there (read and
    /// kept with the head `head` makes, for the whole responses to come), or else streamed from
    /// storage.
    pub async fn range(
        &self,
        storage: &dyn Storage,
        file: &File<'_>,
        Window { start, len }: Window,
        head: impl FnOnce() -> HeaderMap,
    ) -> Result<Part, StorageError> {
        let location = file.location()?;
        if !self.shared.holds(file.size) {
            let object = storage
                .get_range(&location.key, location.start + start, len)
                .await?;
            return Ok(Part::Stream(object.body));
        }
        let slice = |body: &Sendable, _: &HeaderMap| {
            let usable = body.len() as u64 == file.size;
            let range = usize::try_from(start)
                .ok()
                .zip(usize::try_from(start + len).ok());
            range
                .filter(|_| usable)
                .map(|(start, end)| body.slice(start..end))
        };
        let (part, _) = self.shared.get(storage, &location, head, slice).await?;
        part.map(Part::Memory)
            .ok_or_else(|| wrong_size(&location.key))
    }
}

fn wrong_size(key: &str) -> StorageError {
    StorageError::Backend(format!("{key} does not have the size its manifest says"))
}
