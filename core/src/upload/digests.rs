//! Digests of a folder's files as the last upload of it found them, so uploading it again
//! reads only the files that changed (as git's index does). An entry is trusted only for a
//! file with the same size, modification time and inode, modified well before the entries were
//! saved: a file changed within the same tick of the clock as the save is hashed again.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How much older than the save a file's modification must be for its entry to be trusted.
const SETTLED_NS: i128 = 2_000_000_000;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct KnownDigests {
    /// When the entries were saved, in nanoseconds since the epoch.
    saved_at: i128,
    files: HashMap<PathBuf, Known>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Known {
    size: u64,
    modified: i128,
    inode: u64,
    sha256: String,
}

fn modified(meta: &std::fs::Metadata) -> i128 {
    i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec())
}

fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(0))
}

impl KnownDigests {
    /// The entries saved at `file`; none when there is no such file or it is unreadable.
    pub fn load(file: &Path) -> Self {
        std::fs::read(file)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// The digest of `source` as saved, if the file is as it was then.
    pub fn get(&self, source: &Path) -> Option<String> {
        let known = self.files.get(source)?;
        let meta = std::fs::metadata(source).ok()?;
        let same = meta.len() == known.size
            && modified(&meta) == known.modified
            && meta.ino() == known.inode
            && known.modified + SETTLED_NS < self.saved_at;
        same.then(|| known.sha256.clone())
    }

    /// Saves the digests of `files` (a source and its digest) at `file`, replacing what was
    /// there in one rename.
    pub fn save(file: &Path, files: &[(PathBuf, String)]) -> std::io::Result<()> {
        let mut known = Self {
            saved_at: now_ns(),
            files: HashMap::with_capacity(files.len()),
        };
        for (source, sha256) in files {
            if let Ok(meta) = std::fs::metadata(source) {
                let entry = Known {
                    size: meta.len(),
                    modified: modified(&meta),
                    inode: meta.ino(),
                    sha256: sha256.clone(),
                };
                known.files.insert(source.clone(), entry);
            }
        }
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = file.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(&known)?)?;
        std::fs::rename(&tmp, file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_as_they_were_and_settled_are_trusted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (old, fresh) = (dir.path().join("old.html"), dir.path().join("fresh.html"));
        std::fs::write(&old, "old").expect("write");
        std::fs::write(&fresh, "fresh").expect("write");
        let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(&old)
            .and_then(|f| f.set_modified(long_ago))
            .expect("set mtime");
        let saved = dir.path().join("state/digests.json");
        let pairs = [
            (old.clone(), "a".repeat(64)),
            (fresh.clone(), "b".repeat(64)),
        ];
        KnownDigests::save(&saved, &pairs).expect("save");
        let known = KnownDigests::load(&saved);
        assert_eq!(known.get(&old), Some("a".repeat(64)));
        assert_eq!(known.get(&fresh), None, "changed too near the save to tell");
        std::fs::write(&old, "new").expect("write");
        assert_eq!(known.get(&old), None, "changed since");
        assert_eq!(known.get(&dir.path().join("other")), None);
        std::fs::write(&saved, "not json").expect("write");
        assert_eq!(KnownDigests::load(&saved).get(&old), None);
    }
}
