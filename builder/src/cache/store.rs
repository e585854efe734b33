//! Where build caches are kept: a folder on the machine that runs the builds (the local runner),
//! bounded by evicting the least recently used archives across projects, or the job's own
//! storage (`__cache/<project>/<key>.tar.zst`), which every ECS task reaches. Either way one
//! project's cache is under its own name: caches never cross projects.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use futures_util::StreamExt;
use scalemesh_core::ProjectName;
use scalemesh_core::job::BUILD_CACHE_IN_STORAGE;
use scalemesh_core::layout;
use scalemesh_core::storage::{Body, ObjectMeta, Storage, StorageError, StorageUrl};
use tokio::io::AsyncWriteExt;

use super::key::CacheKey;

pub enum Store {
    /// `<root>/<project>/<key>.tar.zst`, at most `limit` bytes in all.
    Local {
        root: PathBuf,
        limit: u64,
    },
    Object {
        storage: Arc<dyn Storage>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// An archive ready to read; `temporary` when it is a copy to remove once read.
#[derive(Debug)]
pub struct Fetched {
    pub path: PathBuf,
    pub size: u64,
    pub temporary: bool,
}

impl Store {
    /// The store a job's `SCALEMESH_BUILD_CACHE` names: `file:///folder` or `storage`.
    pub fn from_setting(
        location: &str,
        limit: Option<u64>,
        storage: Arc<dyn Storage>,
    ) -> Result<Self, String> {
        if location == BUILD_CACHE_IN_STORAGE {
            return Ok(Self::Object { storage });
        }
        match StorageUrl::parse(location) {
            Ok(StorageUrl::Folder(root)) => Ok(Self::Local {
                root,
                limit: limit.unwrap_or(u64::MAX),
            }),
            _ => Err(format!(
                "{location:?} is not a build cache location: use file:///folder or storage"
            )),
        }
    }

    /// The archive for `key`, if there is one, read from `scratch` when it had to be copied.
    pub async fn fetch(
        &self,
        project: &ProjectName,
        key: &CacheKey,
        scratch: &Path,
    ) -> Result<Option<Fetched>, StoreError> {
        match self {
            Self::Local { root, .. } => {
                let path = local_path(root, project, key);
                let file = match std::fs::OpenOptions::new().write(true).open(&path) {
                    Ok(file) => file,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(e.into()),
                };
                // Its time of last use, for eviction.
                file.set_modified(SystemTime::now())?;
                let size = file.metadata()?.len();
                Ok(Some(Fetched {
                    path,
                    size,
                    temporary: false,
                }))
            }
            Self::Object { storage } => {
                let mut object = match storage
                    .get(&layout::build_cache(project, key.as_str()))
                    .await
                {
                    Ok(object) => object,
                    Err(e) if e.is_not_found() => return Ok(None),
                    Err(e) => return Err(e.into()),
                };
                let path = scratch.join("cache-restore.tar.zst");
                let mut file = tokio::fs::File::create(&path).await?;
                let mut size = 0;
                while let Some(chunk) = object.body.next().await {
                    let chunk = chunk?;
                    size += chunk.len() as u64;
                    file.write_all(&chunk).await?;
                }
                file.flush().await?;
                Ok(Some(Fetched {
                    path,
                    size,
                    temporary: true,
                }))
            }
        }
    }

    /// A new file to pack into, beside where it will be kept when it can be.
    pub fn staging(
        &self,
        project: &ProjectName,
        key: &CacheKey,
        scratch: &Path,
    ) -> std::io::Result<PathBuf> {
        match self {
            Self::Local { root, .. } => {
                use std::os::unix::fs::DirBuilderExt;
                // Caches hold what builds installed: no other user of the machine reads them.
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(root.join(project.as_str()))?;
                let nanos = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.subsec_nanos());
                let name = format!(".{key}.{}.{nanos}.tmp", std::process::id());
                Ok(root.join(project.as_str()).join(name))
            }
            Self::Object { .. } => Ok(scratch.join("cache-save.tar.zst")),
        }
    }

    /// Keeps the packed `staged` file as the archive for `key`, replacing any before in one
    /// step, and removes it from where it was. Returns its size.
    pub async fn commit(
        &self,
        staged: &Path,
        project: &ProjectName,
        key: &CacheKey,
    ) -> Result<u64, StoreError> {
        let size = std::fs::metadata(staged)?.len();
        match self {
            Self::Local { root, limit } => {
                std::fs::rename(staged, local_path(root, project, key))?;
                let (root, limit) = (root.clone(), *limit);
                // Best effort: an archive that cannot be removed now is removed next time.
                let _ = tokio::task::spawn_blocking(move || evict(&root, limit)).await;
            }
            Self::Object { storage } => {
                let put = storage
                    .put(
                        &layout::build_cache(project, key.as_str()),
                        Body::File(staged.to_path_buf()),
                        &ObjectMeta::default(),
                    )
                    .await;
                let _ = std::fs::remove_file(staged);
                put?;
            }
        }
        Ok(size)
    }
}

fn local_path(root: &Path, project: &ProjectName, key: &CacheKey) -> PathBuf {
    root.join(project.as_str()).join(format!("{key}.tar.zst"))
}

/// One file of a local cache folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub path: PathBuf,
    pub size: u64,
    pub used: SystemTime,
}

/// Which of `kept` to remove so the rest fit in `limit`: the least recently used first.
pub fn to_evict(mut kept: Vec<Kept>, limit: u64) -> Vec<PathBuf> {
    let mut total: u64 = kept.iter().map(|k| k.size).sum();
    kept.sort_by_key(|k| k.used);
    kept.into_iter()
        .take_while(|k| {
            let over = total > limit;
            total -= k.size;
            over
        })
        .map(|k| k.path)
        .collect()
}

/// Removes the least recently used files of the cache folder `root` (every project's, and
/// packing left over by a builder that stopped) until it holds `limit` bytes at most.
pub fn evict(root: &Path, limit: u64) -> std::io::Result<()> {
    let mut kept = Vec::new();
    for project in std::fs::read_dir(root)? {
        let project = project?;
        if !project.file_type()?.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(project.path())? {
            let file = file?;
            let meta = file.metadata()?;
            if meta.is_file() {
                kept.push(Kept {
                    path: file.path(),
                    size: meta.len(),
                    used: meta.modified()?,
                });
            }
        }
    }
    for path in to_evict(kept, limit) {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn kept(name: &str, size: u64, used_secs: u64) -> Kept {
        Kept {
            path: PathBuf::from(name),
            size,
            used: SystemTime::UNIX_EPOCH + Duration::from_secs(used_secs),
        }
    }

    #[test]
    fn the_least_recently_used_go_first() {
        let all = || vec![kept("b", 30, 20), kept("a", 50, 10), kept("c", 40, 30)];
        let names = |paths: Vec<PathBuf>| -> Vec<String> {
            paths.iter().map(|p| p.display().to_string()).collect()
        };
        for (limit, want) in [
            (120, vec![]),
            (119, vec!["a"]),
            (70, vec!["a"]),
            (69, vec!["a", "b"]),
            (40, vec!["a", "b"]),
            (0, vec!["a", "b", "c"]),
        ] {
            assert_eq!(names(to_evict(all(), limit)), want, "limit {limit}");
        }
    }

    #[tokio::test]
    async fn a_local_save_replaces_in_one_step_and_evicts_across_projects() {
        let root = tempfile::tempdir().expect("tempdir");
        let store = Store::Local {
            root: root.path().to_path_buf(),
            limit: 25,
        };
        let (a, b) = (
            ProjectName::parse("a").expect("valid"),
            ProjectName::parse("b").expect("valid"),
        );
        let key = CacheKey::from_parts("p", "npm", "l", "20");
        let save = |project: &ProjectName, bytes: &'static [u8]| {
            let staged = store.staging(project, &key, root.path()).expect("staging");
            std::fs::write(&staged, bytes).expect("write");
            let project = project.clone();
            let store = &store;
            let key = &key;
            async move { store.commit(&staged, &project, key).await.expect("commit") }
        };
        save(&a, b"0123456789").await;
        let old = SystemTime::now() - Duration::from_secs(60);
        let a_path = local_path(root.path(), &a, &key);
        let file = std::fs::File::options()
            .write(true)
            .open(&a_path)
            .expect("open");
        file.set_modified(old).expect("age");
        save(&b, b"0123456789").await;
        // Reading a marks it used: now b is the older one.
        let fetched = store.fetch(&a, &key, root.path()).await.expect("fetch");
        assert!(fetched.is_some_and(|f| f.size == 10 && !f.temporary));
        let used = std::fs::metadata(&a_path)
            .and_then(|m| m.modified())
            .expect("mtime");
        assert!(
            used > old + Duration::from_secs(30),
            "reading marked it used"
        );
        // Used before b is written again: a clock tick apart, however coarse the clock.
        let file = std::fs::File::options()
            .write(true)
            .open(&a_path)
            .expect("open");
        file.set_modified(SystemTime::now() - Duration::from_secs(30))
            .expect("age");
        let b_path = local_path(root.path(), &b, &key);
        let file = std::fs::File::options()
            .write(true)
            .open(&b_path)
            .expect("open");
        file.set_modified(old).expect("age");
        assert_eq!(save(&b, b"0123456789abcdef").await, 16, "replaced");
        assert!(!a_path.exists(), "the least recently used went");
        assert_eq!(std::fs::read(&b_path).expect("read"), b"0123456789abcdef");
        let leftovers = std::fs::read_dir(root.path().join("b"))
            .expect("read")
            .count();
        assert_eq!(leftovers, 1, "no temporary file stays");
        let missing = CacheKey::from_parts("x", "npm", "l", "20");
        assert!(
            store
                .fetch(&a, &missing, root.path())
                .await
                .expect("fetch")
                .is_none()
        );
    }
}
