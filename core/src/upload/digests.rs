//! Digests of a folder's files as the last upload of it found them, so uploading it again
//! reads only the files that changed (as git's index does). Each file's size, modification and
//! change times and inode are read before its bytes (as its folder is listed); an entry is
//! trusted only for a file that still has them and was changed well before the reading of the
//! bytes began: a file changed within the same tick of the filesystem's clock as it was read is
//! hashed again. The change time is the kernel's, which no program sets back: a file rewritten
//! with its size and its modification time put back (as reproducible builds and `cp -p` do) is
//! read again.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// How much older than the start of the reading a file's modification must be for its entry
/// to be trusted: a filesystem with sub-second times stamps a change at most a tick of the
/// kernel's coarse clock (a few milliseconds) early; one with whole seconds (or FAT's two), up
/// to two seconds early.
const SETTLED_FINE_NS: i128 = 100_000_000;
const SETTLED_COARSE_NS: i128 = 2_000_000_000;

/// The first line of a file of digests.
const HEADER: &str = "scalemesh digests 2";

#[derive(Debug, Default, PartialEq, Eq)]
pub struct KnownDigests {
    /// When the reading that found these digests began, in nanoseconds since the epoch.
    read_at: i128,
    files: HashMap<PathBuf, Known>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Known {
    stamp: Stamp,
    sha256: String,
}

/// What tells a file changed: its size, modification and change (status) times (nanoseconds
/// since the epoch) and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    size: u64,
    modified: i128,
    changed: i128,
    inode: u64,
}

impl Stamp {
    pub fn of(path: &Path) -> std::io::Result<Self> {
        Ok(Self::from(&std::fs::metadata(path)?))
    }
}

impl From<&std::fs::Metadata> for Stamp {
    fn from(meta: &std::fs::Metadata) -> Self {
        Self {
            size: meta.len(),
            modified: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            changed: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
            inode: meta.ino(),
        }
    }
}

impl Stamp {
    /// Whether a change made after `read_at` would have moved these times: the later of them
    /// (a modification time may be set to any, the change time only by the kernel).
    fn settled_before(&self, read_at: i128) -> bool {
        let latest = self.modified.max(self.changed);
        let whole_seconds = latest % 1_000_000_000 == 0;
        let margin = if whole_seconds {
            SETTLED_COARSE_NS
        } else {
            SETTLED_FINE_NS
        };
        latest + margin < read_at
    }
}

/// Now, in nanoseconds since the epoch: when a reading begins.
pub fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(0))
}

impl KnownDigests {
    /// What a reading that began at `read_at` found: each file, its stamp as read just before
    /// its bytes, and its digest.
    pub fn found(read_at: i128, files: impl IntoIterator<Item = (PathBuf, Stamp, String)>) -> Self {
        let files = files
            .into_iter()
            .map(|(source, stamp, sha256)| (source, Known { stamp, sha256 }))
            .collect();
        Self { read_at, files }
    }

    /// The entries saved at `file`; none when there is no such file or it is unreadable, and
    /// none of its lines that are not entries.
    pub fn load(file: &Path) -> Self {
        std::fs::read(file)
            .ok()
            .and_then(|bytes| Self::parse(&bytes))
            .unwrap_or_default()
    }

    /// Entries as [`KnownDigests::save`] writes them: a header line, when the reading began,
    /// then a line a file: `<sha256> <size> <modified> <changed> <inode> <path>` (a path holding
    /// a line break is not saved). Plain lines, as a command reads them at every start.
    fn parse(bytes: &[u8]) -> Option<Self> {
        use std::os::unix::ffi::OsStrExt;
        let mut lines = bytes.split(|b| *b == b'\n');
        if lines.next()? != HEADER.as_bytes() {
            return None;
        }
        let read_at = std::str::from_utf8(lines.next()?).ok()?.parse().ok()?;
        let files = lines
            .filter_map(|line| {
                let mut fields = line.splitn(6, |b| *b == b' ');
                let sha256 = std::str::from_utf8(fields.next()?).ok()?;
                let mut number = || std::str::from_utf8(fields.next()?).ok();
                let size = number()?.parse().ok()?;
                let modified = number()?.parse().ok()?;
                let changed = number()?.parse().ok()?;
                let inode = number()?.parse().ok()?;
                let path = std::ffi::OsStr::from_bytes(fields.next()?);
                let known = Known {
                    stamp: Stamp {
                        size,
                        modified,
                        changed,
                        inode,
                    },
                    sha256: sha256.to_owned(),
                };
                crate::layout::is_sha256(sha256).then(|| (PathBuf::from(path), known))
            })
            .collect();
        Some(Self { read_at, files })
    }

    /// The digest `source` had when last read, whatever it holds now.
    pub fn last(&self, source: &Path) -> Option<&str> {
        self.files.get(source).map(|known| known.sha256.as_str())
    }

    /// The digest of `source`, which has `stamp` now, if it is as it was when read.
    pub fn get(&self, source: &Path, stamp: &Stamp) -> Option<String> {
        let known = self.files.get(source)?;
        let same = known.stamp == *stamp && stamp.settled_before(self.read_at);
        same.then(|| known.sha256.clone())
    }

    /// Saves these entries at `file`, replacing what was there in one rename, through a file of
    /// this process's own: two commands saving the same folder's at once each write whole
    /// files, and the last rename wins.
    pub fn save(&self, file: &Path) -> std::io::Result<()> {
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = file.with_extension(format!("{}.tmp", std::process::id()));
        let saved = std::fs::write(&tmp, self.lines()).and_then(|()| std::fs::rename(&tmp, file));
        if saved.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        saved
    }

    fn lines(&self) -> Vec<u8> {
        use std::io::Write;
        use std::os::unix::ffi::OsStrExt;
        let mut out = Vec::with_capacity(64 + self.files.len() * 160);
        let _ = writeln!(out, "{HEADER}\n{}", self.read_at);
        for (path, known) in &self.files {
            let path = path.as_os_str().as_bytes();
            if path.contains(&b'\n') {
                continue;
            }
            let Stamp {
                size,
                modified,
                changed,
                inode,
            } = known.stamp;
            let _ = write!(out, "{} {size} {modified} {changed} {inode} ", known.sha256);
            out.extend_from_slice(path);
            out.push(b'\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_digests_read_back_as_they_were() {
        let dir = tempfile::tempdir().expect("tempdir");
        let stamp = |size, modified, inode| Stamp {
            size,
            modified,
            changed: modified + 7,
            inode,
        };
        let found = KnownDigests::found(
            1_796_468_789_869_369_912,
            [
                (
                    PathBuf::from("/site/a page.html"),
                    stamp(12, 1_700_000_000_123_456_789, 7),
                    "a".repeat(64),
                ),
                (
                    PathBuf::from("/site/p9/b.css"),
                    stamp(0, -5, u64::MAX),
                    "b".repeat(64),
                ),
                (
                    PathBuf::from("/site/two\nlines.html"),
                    stamp(1, 2, 3),
                    "c".repeat(64),
                ),
            ],
        );
        let file = dir.path().join("digests").join("site.txt");
        found.save(&file).expect("save");
        let back = KnownDigests::load(&file);
        assert_eq!(back.read_at, found.read_at);
        assert_eq!(back.files.len(), 2, "a path with a line break is not saved");
        for path in ["/site/a page.html", "/site/p9/b.css"] {
            assert_eq!(
                back.files.get(Path::new(path)),
                found.files.get(Path::new(path))
            );
        }

        // A file of another shape, or a line that is not an entry, counts for nothing.
        let text = std::fs::read_to_string(&file).expect("read");
        std::fs::write(&file, text.replacen(&"a".repeat(64), "not-a-digest", 1)).expect("write");
        assert_eq!(KnownDigests::load(&file).files.len(), 1);
        std::fs::write(&file, r#"{"read_at":1,"files":{}}"#).expect("write");
        assert_eq!(KnownDigests::load(&file), KnownDigests::default());
        assert_eq!(
            KnownDigests::load(&dir.path().join("none")),
            KnownDigests::default()
        );
    }

    #[test]
    fn only_files_as_they_were_and_settled_are_trusted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (old, fresh) = (dir.path().join("old.html"), dir.path().join("fresh.html"));
        let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        let write_dated = |body: &str| {
            use std::io::Write;
            let mut file = std::fs::File::create(&old).expect("create");
            file.write_all(body.as_bytes()).expect("write");
            file.set_modified(long_ago).expect("set mtime");
        };
        write_dated("old");
        // Its change time (now) settles; the other file is written right before the reading.
        std::thread::sleep(std::time::Duration::from_millis(250));
        std::fs::write(&fresh, "fresh").expect("write");
        let read_at = now_ns();
        let stamp = |p: &Path| Stamp::of(p).expect("stamp");
        let found = KnownDigests::found(
            read_at,
            [
                (old.clone(), stamp(&old), "a".repeat(64)),
                (fresh.clone(), stamp(&fresh), "b".repeat(64)),
            ],
        );
        let saved = dir.path().join("state/digests.json");
        found.save(&saved).expect("save");
        let known = KnownDigests::load(&saved);
        assert_eq!(known.get(&old, &stamp(&old)), Some("a".repeat(64)));
        assert_eq!(
            known.get(&fresh, &stamp(&fresh)),
            None,
            "changed too near the reading to tell"
        );
        // The same size, modification time and inode: only the change time moved.
        let before = stamp(&old);
        write_dated("new");
        let after = stamp(&old);
        assert_eq!(
            (after.size, after.modified, after.inode),
            (before.size, before.modified, before.inode)
        );
        assert_eq!(
            known.get(&old, &after),
            None,
            "rewritten, its time put back"
        );
        std::fs::write(&old, "new").expect("write");
        assert_eq!(known.get(&old, &stamp(&old)), None, "changed since");
        assert_eq!(known.get(&dir.path().join("other"), &stamp(&old)), None);
        std::fs::write(&saved, "not json").expect("write");
        assert_eq!(KnownDigests::load(&saved).get(&old, &stamp(&old)), None);
    }

    #[test]
    fn a_change_is_settled_after_the_filesystem_s_tick() {
        let second = 1_000_000_000;
        let at = |modified, changed| Stamp {
            size: 1,
            modified,
            changed,
            inode: 1,
        };
        let at_s = |whole: i128, ns: i128| whole * second + ns;
        // (modified, changed, reading began, trusted)
        let table = [
            (at_s(100, 5), at_s(100, 5), at_s(100, 50_000_000), false),
            (at_s(100, 5), at_s(100, 5), at_s(100, 200_000_000), true),
            (at_s(100, 0), at_s(100, 0), at_s(100, 200_000_000), false),
            (at_s(100, 0), at_s(100, 0), at_s(101, 900_000_000), false),
            (at_s(100, 0), at_s(100, 0), at_s(102, 1), true),
            // A modification time set back long ago: the change time tells.
            (at_s(5, 0), at_s(100, 5), at_s(100, 50_000_000), false),
            (at_s(5, 0), at_s(100, 5), at_s(100, 200_000_000), true),
            (at_s(5, 0), at_s(100, 0), at_s(101, 0), false),
        ];
        for (modified, changed, read_at, trusted) in table {
            assert_eq!(
                at(modified, changed).settled_before(read_at),
                trusted,
                "modified {modified}, changed {changed}, read at {read_at}"
            );
        }
    }
}
