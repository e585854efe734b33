//! [`Storage`] on a local folder. Writes go to a temporary file beside the target and are
//! renamed into place, so a reader never sees a partly written object.

use std::io;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use futures_util::StreamExt;
use tokio_util::io::ReaderStream;

use super::{Body, Object, ObjectMeta, Storage, StorageError, is_valid_key};

/// Temporary files start with this; listings skip them.
const TMP_PREFIX: &str = ".scalemesh-tmp-";

#[derive(Debug, Clone)]
pub struct FsStorage {
    root: PathBuf,
}

impl FsStorage {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, key: &str) -> Result<PathBuf, StorageError> {
        if !is_valid_key(key) {
            return Err(StorageError::BadKey(key.chars().take(200).collect()));
        }
        Ok(self.root.join(key))
    }
}

fn io_err<'a>(op: &'static str, key: &'a str) -> impl FnOnce(io::Error) -> StorageError + 'a {
    move |source| {
        if source.kind() == io::ErrorKind::NotFound && op != "write" {
            StorageError::NotFound {
                key: key.to_owned(),
            }
        } else {
            StorageError::Io {
                op,
                key: key.to_owned(),
                source,
            }
        }
    }
}

#[async_trait]
impl Storage for FsStorage {
    async fn put(&self, key: &str, body: Body, _meta: &ObjectMeta) -> Result<(), StorageError> {
        let path = self.path_of(key)?;
        let parent = path.parent().unwrap_or(&self.root).to_path_buf();
        tokio::fs::create_dir_all(&parent)
            .await
            .map_err(io_err("write", key))?;
        let suffix = hex_suffix();
        let tmp = parent.join(format!("{TMP_PREFIX}{suffix}"));
        let written = match body {
            Body::Bytes(bytes) => tokio::fs::write(&tmp, &bytes).await,
            Body::File(src) => tokio::fs::copy(&src, &tmp).await.map(|_| ()),
        };
        if let Err(e) = written {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(io_err("write", key)(e));
        }
        if let Err(e) = tokio::fs::rename(&tmp, &path).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(io_err("write", key)(e));
        }
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Object, StorageError> {
        let path = self.path_of(key)?;
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(io_err("read", key))?;
        let meta = file.metadata().await.map_err(io_err("read", key))?;
        if !meta.is_file() {
            return Err(StorageError::NotFound {
                key: key.to_owned(),
            });
        }
        Ok(Object {
            size: meta.len(),
            body: ReaderStream::with_capacity(file, 64 * 1024).boxed(),
        })
    }

    async fn size(&self, key: &str) -> Result<Option<u64>, StorageError> {
        let path = self.path_of(key)?;
        match tokio::fs::metadata(&path).await {
            Ok(meta) if meta.is_file() => Ok(Some(meta.len())),
            Ok(_) => Ok(None),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(io_err("read", key)(e)),
        }
    }

    async fn get_range(&self, key: &str, start: u64, len: u64) -> Result<Object, StorageError> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let path = self.path_of(key)?;
        let mut file = tokio::fs::File::open(&path)
            .await
            .map_err(io_err("read", key))?;
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(io_err("read", key))?;
        Ok(Object {
            size: len,
            body: ReaderStream::with_capacity(file.take(len), 64 * 1024).boxed(),
        })
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let root = self.root.clone();
        let prefix = prefix.to_owned();
        tokio::task::spawn_blocking(move || list_blocking(&root, &prefix))
            .await
            .map_err(|e| StorageError::Backend(format!("listing task failed: {e}")))?
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let path = self.path_of(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("delete", key)(e)),
        }
    }

    fn url(&self) -> String {
        format!("file://{}", self.root.display())
    }
}

fn list_blocking(root: &Path, prefix: &str) -> Result<Vec<String>, StorageError> {
    // Walk from the deepest folder the prefix names, then filter by the full prefix.
    let dir_part = prefix.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    let start = if dir_part.is_empty() {
        root.to_path_buf()
    } else {
        root.join(dir_part)
    };
    let mut keys = Vec::new();
    let mut stack = vec![start];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(StorageError::Io {
                    op: "list",
                    key: prefix.to_owned(),
                    source,
                });
            }
        };
        for entry in entries {
            let entry = entry.map_err(|source| StorageError::Io {
                op: "list",
                key: prefix.to_owned(),
                source,
            })?;
            let file_type = entry.file_type().map_err(|source| StorageError::Io {
                op: "list",
                key: prefix.to_owned(),
                source,
            })?;
            let path = entry.path();
            if file_type.is_dir() {
                stack.push(path);
            } else if file_type.is_file() {
                let Ok(rel) = path.strip_prefix(root) else {
                    continue;
                };
                let Some(key) = rel.to_str() else { continue };
                let is_tmp = entry.file_name().to_string_lossy().starts_with(TMP_PREFIX);
                if !is_tmp && key.starts_with(prefix) {
                    keys.push(key.to_owned());
                }
            }
        }
    }
    keys.sort();
    Ok(keys)
}

fn hex_suffix() -> String {
    crate::id::random_bytes::<8>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[tokio::test]
    async fn put_get_list_delete() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = FsStorage::new(dir.path().to_path_buf());
        let meta = ObjectMeta::default();
        storage
            .put(
                "a/b/c.txt",
                Body::Bytes(Bytes::from_static(b"hello")),
                &meta,
            )
            .await
            .expect("put");
        storage
            .put("a/d.txt", Body::Bytes(Bytes::from_static(b"x")), &meta)
            .await
            .expect("put");
        storage
            .put("ab.txt", Body::Bytes(Bytes::from_static(b"y")), &meta)
            .await
            .expect("put");
        assert_eq!(
            storage.get_bytes("a/b/c.txt").await.expect("get"),
            Bytes::from_static(b"hello")
        );
        assert_eq!(
            storage.list("a/").await.expect("list"),
            vec!["a/b/c.txt", "a/d.txt"]
        );
        assert_eq!(
            storage.list("a").await.expect("list"),
            vec!["a/b/c.txt", "a/d.txt", "ab.txt"]
        );
        storage.delete("a/d.txt").await.expect("delete");
        storage.delete("a/d.txt").await.expect("delete again");
        assert!(
            storage
                .get("a/d.txt")
                .await
                .expect_err("gone")
                .is_not_found()
        );
        assert!(
            storage
                .get("a/b")
                .await
                .expect_err("a folder is no object")
                .is_not_found()
        );
    }

    #[tokio::test]
    async fn refuses_keys_that_escape_the_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = FsStorage::new(dir.path().join("root"));
        for key in ["../x", "/etc/passwd", "a/../../x", "", "a//b"] {
            let err = storage
                .put(key, Body::Bytes(Bytes::new()), &ObjectMeta::default())
                .await
                .expect_err("refused");
            assert!(matches!(err, StorageError::BadKey(_)), "{key}: {err}");
        }
    }

    #[tokio::test]
    async fn put_replaces_atomically_from_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = FsStorage::new(dir.path().join("root"));
        let src = dir.path().join("src.bin");
        std::fs::write(&src, vec![7u8; 200_000]).expect("write");
        storage
            .put(
                "k",
                Body::Bytes(Bytes::from_static(b"old")),
                &ObjectMeta::default(),
            )
            .await
            .expect("put");
        storage
            .put("k", Body::File(src), &ObjectMeta::default())
            .await
            .expect("put");
        let got = storage.get("k").await.expect("get");
        assert_eq!(got.size, 200_000);
        assert_eq!(storage.list("").await.expect("list"), vec!["k"]);
    }
}
