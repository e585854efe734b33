//! The storage seam: where deployments' files, manifests, routes and uploaded sources live. The
//! same keys work on a local folder ([`FsStorage`]) and on an S3 bucket, so the builder, the
//! server and every proxy only ever see [`Storage`].

mod fs;
#[cfg(feature = "s3")]
mod s3;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

pub use crate::wire::PresignedPut;
pub use fs::FsStorage;
#[cfg(feature = "s3")]
pub use s3::S3Storage;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{key} does not exist in storage")]
    NotFound { key: String },
    #[error("{0:?} is not a valid storage key")]
    BadKey(String),
    #[error("storage {op} of {key} failed: {source}")]
    Io {
        op: &'static str,
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("storage backend error: {0}")]
    Backend(String),
}

impl StorageError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }
}

/// What to store.
#[derive(Debug, Clone)]
pub enum Body {
    Bytes(Bytes),
    /// A file on local disk, streamed, never read whole into memory.
    File(PathBuf),
}

/// HTTP metadata kept with an object where the backend can (S3 does, a folder does not).
#[derive(Debug, Clone, Default)]
pub struct ObjectMeta {
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
}

/// `len` bytes from `start` of a body stream; the rest is read past or never read.
pub fn window(
    body: BoxStream<'static, std::io::Result<Bytes>>,
    start: u64,
    len: u64,
) -> BoxStream<'static, std::io::Result<Bytes>> {
    use futures_util::future::ready;
    body.scan((start, len), |(skip, left), chunk| {
        if *left == 0 {
            return ready(None);
        }
        ready(Some(chunk.map(|mut bytes| {
            let n = bytes.len() as u64;
            if *skip >= n {
                *skip -= n;
                return Bytes::new();
            }
            bytes = bytes.slice(usize::try_from(*skip).unwrap_or(0)..);
            *skip = 0;
            let take = (*left).min(bytes.len() as u64);
            bytes.truncate(usize::try_from(take).unwrap_or(0));
            *left -= take;
            bytes
        })))
    })
    .filter(|chunk| ready(!matches!(chunk, Ok(bytes) if bytes.is_empty())))
    .boxed()
}

pub struct Object {
    pub size: u64,
    pub body: BoxStream<'static, std::io::Result<Bytes>>,
}

impl std::fmt::Debug for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Object")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Stores `body` at `key`, replacing what was there. Readers see the old object or the new
    /// one, never a part of either.
    async fn put(&self, key: &str, body: Body, meta: &ObjectMeta) -> Result<(), StorageError>;

    /// Streams the object at `key`.
    async fn get(&self, key: &str) -> Result<Object, StorageError>;

    /// Every key that starts with `prefix`, sorted.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError>;

    /// Removes `key`; removing a missing key is not an error.
    async fn delete(&self, key: &str) -> Result<(), StorageError>;

    /// The URL this storage was opened from (`file:///…`, `s3://…`), for the builder's job.
    fn url(&self) -> String;

    /// Streams `len` bytes of the object at `key` from `start` (which the caller knows to be
    /// inside it). Backends that can read a part on its own do; the default skips the rest.
    async fn get_range(&self, key: &str, start: u64, len: u64) -> Result<Object, StorageError> {
        let object = self.get(key).await?;
        Ok(Object {
            size: len,
            body: window(object.body, start, len),
        })
    }

    /// Reads `len` bytes of the object at `key` from `start` into memory.
    async fn get_part_bytes(&self, key: &str, start: u64, len: u64) -> Result<Bytes, StorageError> {
        if len == 0 {
            return Ok(Bytes::new());
        }
        let object = self.get_range(key, start, len).await?;
        collect(key, object).await
    }

    /// The size of the object at `key`, or `None` when there is none.
    async fn size(&self, key: &str) -> Result<Option<u64>, StorageError>;

    /// A URL that stores one object at `key` when `PUT` to with the headers given, valid for
    /// `valid`; `None` where the backend has no such thing (a folder), and uploads go through
    /// the server.
    async fn presign_put(
        &self,
        key: &str,
        valid: std::time::Duration,
    ) -> Result<Option<PresignedPut>, StorageError> {
        let _ = (key, valid);
        Ok(None)
    }

    /// Reads the whole object at `key`; for small objects such as manifests and routes.
    async fn get_bytes(&self, key: &str) -> Result<Bytes, StorageError> {
        let object = self.get(key).await?;
        collect(key, object).await
    }
}

async fn collect(key: &str, mut object: Object) -> Result<Bytes, StorageError> {
    let mut buf = BytesMut::with_capacity(usize::try_from(object.size).unwrap_or(0));
    while let Some(chunk) = object.body.next().await {
        let chunk = chunk.map_err(|source| StorageError::Io {
            op: "read",
            key: key.to_owned(),
            source,
        })?;
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// A storage location as users write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageUrl {
    /// `file:///var/lib/scalemesh/sites`, or a plain absolute path.
    Folder(PathBuf),
    /// `s3://bucket/prefix`.
    S3 { bucket: String, prefix: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageUrlError {
    #[error("{0:?} is not a storage URL; use file:///absolute/path or s3://bucket/prefix")]
    Unsupported(String),
    #[error("a local storage folder must be an absolute path (got {0:?})")]
    RelativeFolder(String),
    #[error("{0:?} names no bucket; use s3://bucket/prefix")]
    NoBucket(String),
}

impl StorageUrl {
    pub fn parse(raw: &str) -> Result<Self, StorageUrlError> {
        if let Some(rest) = raw.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(StorageUrlError::NoBucket(raw.to_owned()));
            }
            let prefix = prefix.trim_matches('/');
            let prefix = if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            };
            return Ok(Self::S3 {
                bucket: bucket.to_owned(),
                prefix,
            });
        }
        let path = if let Some(rest) = raw.strip_prefix("file://") {
            rest
        } else if raw.contains("://") {
            return Err(StorageUrlError::Unsupported(raw.to_owned()));
        } else {
            raw
        };
        if !path.starts_with('/') {
            return Err(StorageUrlError::RelativeFolder(raw.to_owned()));
        }
        Ok(Self::Folder(PathBuf::from(path)))
    }
}

/// How to reach storage beyond its URL.
#[derive(Debug, Clone, Default)]
pub struct StorageOptions {
    /// An S3-compatible endpoint to use instead of AWS (`--s3-endpoint`).
    pub s3_endpoint: Option<String>,
}

/// Opens the storage a URL names. `s3://` needs this crate's `s3` feature.
pub async fn open(
    url: &StorageUrl,
    options: &StorageOptions,
) -> Result<Arc<dyn Storage>, StorageError> {
    match url {
        StorageUrl::Folder(path) => Ok(Arc::new(FsStorage::new(path.clone()))),
        #[cfg(feature = "s3")]
        StorageUrl::S3 { bucket, prefix } => Ok(Arc::new(
            S3Storage::connect(bucket, prefix, options.s3_endpoint.as_deref()).await,
        )),
        #[cfg(not(feature = "s3"))]
        StorageUrl::S3 { .. } => {
            let _ = options;
            Err(StorageError::Backend(
                "this binary was built without S3 support; use a file:// folder".to_owned(),
            ))
        }
    }
}

/// Longest storage key: a site path (at most 1024 bytes) under its deployment's prefix.
const MAX_KEY_LEN: usize = 1280;

/// Whether `key` is a well-formed key: relative, `/`-separated, no empty, `.` or `..` segment, no
/// backslash or control character.
pub fn is_valid_key(key: &str) -> bool {
    key.len() <= MAX_KEY_LEN && crate::layout::is_path_of_segments(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_storage_urls() {
        assert_eq!(
            StorageUrl::parse("file:///var/sites"),
            Ok(StorageUrl::Folder("/var/sites".into()))
        );
        assert_eq!(
            StorageUrl::parse("/srv/x"),
            Ok(StorageUrl::Folder("/srv/x".into()))
        );
        assert_eq!(
            StorageUrl::parse("s3://bucket/a/b/"),
            Ok(StorageUrl::S3 {
                bucket: "bucket".into(),
                prefix: "a/b/".into()
            })
        );
        assert_eq!(
            StorageUrl::parse("s3://bucket"),
            Ok(StorageUrl::S3 {
                bucket: "bucket".into(),
                prefix: String::new()
            })
        );
        assert!(StorageUrl::parse("s3:///x").is_err());
        assert!(StorageUrl::parse("relative/dir").is_err());
        assert!(StorageUrl::parse("gs://bucket").is_err());
    }

    #[tokio::test]
    async fn a_window_takes_exactly_its_bytes_across_chunks() {
        let chunks = || {
            futures_util::stream::iter(
                ["abc", "defg", "", "hij"]
                    .map(|c| Ok::<_, std::io::Error>(Bytes::from_static(c.as_bytes()))),
            )
            .boxed()
        };
        for (start, len, want) in [
            (0, 10, "abcdefghij"),
            (2, 3, "cde"),
            (3, 4, "defg"),
            (6, 4, "ghij"),
            (9, 1, "j"),
            (4, 0, ""),
        ] {
            let got: Vec<Bytes> = window(chunks(), start, len)
                .map(|c| c.expect("chunk"))
                .collect()
                .await;
            assert!(got.iter().all(|c| !c.is_empty()), "no empty chunks");
            assert_eq!(got.concat(), want.as_bytes(), "{start}+{len}");
        }
    }
}
