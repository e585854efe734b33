//! A build cache as a file: tar, compressed with zstd. Packing never follows a link (a build
//! could point one at a host file): links are stored as links, folders and regular files as
//! themselves, anything else is left out. Unpacking treats the archive as hostile: only paths
//! made of plain segments below `app/` or `home/`, into a fresh folder, never through a link,
//! within limits of size and entries.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::dirs::{CachedDir, Roots, Under, make_parents, real_dir};

/// How much one archive may hold, packed or unpacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of file contents, uncompressed.
    pub bytes: u64,
    pub entries: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            bytes: 2 << 30,
            entries: 1_000_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("the cached folders hold more than {limit} {what}")]
    TooLarge { limit: u64, what: &'static str },
    #[error("the archive holds an entry it may not ({0})")]
    Refused(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// What went into, or came out of, an archive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contents {
    /// Bytes of file contents, uncompressed.
    pub bytes: u64,
    pub entries: u64,
    /// The cached folders it holds.
    pub dirs: Vec<CachedDir>,
}

/// Packs those of `dirs` that exist as real folders under `roots` into `out`. A folder inside
/// another listed one is packed once, with it. Every file packed must really be inside
/// `within` (the build's work folder) once opened: a process the build left running could
/// swap a folder for a link while it is packed.
pub fn pack(
    dirs: &[CachedDir],
    roots: Roots<'_>,
    within: &Path,
    out: &Path,
    limits: Limits,
) -> Result<Contents, ArchiveError> {
    let within = within.canonicalize()?;
    let file = File::create(out)?;
    let encoder = zstd::stream::write::Encoder::new(file, 3)?;
    let mut tar = tar::Builder::new(encoder);
    tar.follow_symlinks(false);
    let mut contents = Contents::default();
    for dir in dirs {
        if dirs.iter().any(|d| d != dir && dir.is_within(d)) {
            continue;
        }
        let Some(path) = real_dir(roots.of(dir.under()), dir.path()) else {
            continue;
        };
        let name = format!("{}/{}", dir.under().name(), dir.path());
        let walk = Walk {
            within: &within,
            limits,
        };
        pack_tree(&mut tar, &path, &name, &mut contents, walk)?;
        contents.dirs.push(dir.clone());
    }
    tar.into_inner()?.finish()?.sync_all()?;
    Ok(contents)
}

/// What a packing walk keeps to.
#[derive(Clone, Copy)]
struct Walk<'a> {
    within: &'a Path,
    limits: Limits,
}

/// Appends the folder at `path` and everything below it as `name/…`, depth first, sorted.
fn pack_tree<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &Path,
    name: &str,
    contents: &mut Contents,
    walk: Walk<'_>,
) -> Result<(), ArchiveError> {
    let limits = walk.limits;
    let mut stack = vec![(path.to_path_buf(), name.to_owned())];
    while let Some((path, name)) = stack.pop() {
        contents.entries += 1;
        if contents.entries > limits.entries {
            return Err(ArchiveError::TooLarge {
                limit: limits.entries,
                what: "entries",
            });
        }
        let meta = std::fs::symlink_metadata(&path)?;
        let kind = meta.file_type();
        let mut header = tar::Header::new_gnu();
        header.set_mode(meta.mode() & 0o777);
        header.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
        if kind.is_symlink() {
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            tar.append_link(&mut header, &name, std::fs::read_link(&path)?)?;
        } else if kind.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            tar.append_data(&mut header, &name, std::io::empty())?;
            let mut children: Vec<_> = std::fs::read_dir(&path)?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<Result<_, _>>()?;
            children.sort();
            for child in children.into_iter().rev() {
                let child_name = format!("{name}/{}", child.to_string_lossy());
                if child.to_str().is_some() {
                    stack.push((path.join(&child), child_name));
                }
            }
        } else if kind.is_file() {
            pack_file(tar, &path, &name, &mut header, contents, walk)?;
        }
    }
    Ok(())
}

fn pack_file<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &Path,
    name: &str,
    header: &mut tar::Header,
    contents: &mut Contents,
    walk: Walk<'_>,
) -> Result<(), ArchiveError> {
    let limits = walk.limits;
    // Opened without following a link, nor blocking on a pipe put in its place since.
    let flags = nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits())
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Ok(());
    }
    // Where the kernel says the open file is, whatever the path went through.
    let real = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))?;
    if !real.starts_with(walk.within) {
        return Err(ArchiveError::Refused(format!(
            "{name} is outside the work folder"
        )));
    }
    contents.bytes += meta.len();
    if contents.bytes > limits.bytes {
        return Err(ArchiveError::TooLarge {
            limit: limits.bytes,
            what: "bytes",
        });
    }
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(meta.len());
    let exact = Exact {
        inner: file.take(meta.len()),
        left: meta.len(),
    };
    tar.append_data(header, name, exact)?;
    Ok(())
}

/// Reads exactly `left` bytes, or fails: a file that shrank while packed would corrupt the
/// archive otherwise.
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.left > 0 && !buf.is_empty() {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Unpacks the archive at `archive` into `staging`, an empty folder the caller made: `app/…`
/// and `home/…` below it. On an error, what was written stays below `staging`, for the caller
/// to remove.
pub fn unpack(archive: &Path, staging: &Path, limits: Limits) -> Result<Contents, ArchiveError> {
    let decoder = zstd::stream::read::Decoder::new(File::open(archive)?)?;
    let mut tar = tar::Archive::new(decoder);
    let mut contents = Contents::default();
    for entry in tar.entries()? {
        let mut entry = entry?;
        contents.entries += 1;
        if contents.entries > limits.entries {
            return Err(ArchiveError::TooLarge {
                limit: limits.entries,
                what: "entries",
            });
        }
        let name = String::from_utf8(entry.path_bytes().into_owned())
            .map_err(|_| ArchiveError::Refused("a name that is not UTF-8".into()))?;
        let rel = name.strip_suffix('/').unwrap_or(&name);
        if !scalemesh_core::layout::is_path_of_segments(rel)
            || rel.split('/').next().and_then(Under::from_name).is_none()
        {
            return Err(ArchiveError::Refused(format!("{name:?}")));
        }
        make_parents(staging, rel).map_err(|e| ArchiveError::Refused(format!("{name:?}: {e}")))?;
        let dest = staging.join(rel);
        unpack_entry(&mut entry, &dest, &mut contents, limits)?;
    }
    Ok(contents)
}

fn unpack_entry<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    dest: &Path,
    contents: &mut Contents,
    limits: Limits,
) -> Result<(), ArchiveError> {
    let mode = entry.header().mode()? & 0o777;
    match entry.header().entry_type() {
        tar::EntryType::Directory => match std::fs::symlink_metadata(dest) {
            Ok(meta) if meta.file_type().is_dir() => {}
            _ => std::fs::create_dir(dest)?,
        },
        tar::EntryType::Regular | tar::EntryType::Continuous => {
            contents.bytes += entry.size();
            if contents.bytes > limits.bytes {
                return Err(ArchiveError::TooLarge {
                    limit: limits.bytes,
                    what: "bytes",
                });
            }
            // A new file only: never one already there, nor through a link in its place.
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode | 0o600)
                .open(dest)?;
            let size = entry.size();
            // An entry reads as its header's size at most.
            let copied = std::io::copy(entry, &mut file)?;
            if copied != size {
                return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
            }
            let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(entry.header().mtime()?);
            file.set_modified(mtime)?;
        }
        tar::EntryType::Symlink => {
            // Where it points does not matter: only builds, in their sandbox, follow it.
            let target = entry
                .link_name()?
                .ok_or_else(|| ArchiveError::Refused("a link to nothing".into()))?;
            std::os::unix::fs::symlink(target, dest)?;
        }
        other => return Err(ArchiveError::Refused(format!("a {other:?} entry"))),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{PermissionsExt, symlink};

    use super::*;

    fn dir(under: Under, path: &str) -> CachedDir {
        CachedDir::new(under, path).expect("valid")
    }

    #[test]
    fn a_round_trip_keeps_folders_files_and_links_as_links() {
        let (app, home, outside, work) = (tmp(), tmp(), tmp(), tmp());
        let modules = app.path().join("node_modules");
        std::fs::create_dir_all(modules.join("a/b")).expect("mkdir");
        std::fs::create_dir_all(modules.join(".bin")).expect("mkdir");
        std::fs::write(modules.join("a/b/c.js"), "exports.c = 1").expect("write");
        std::fs::set_permissions(modules.join("a/b/c.js"), PermissionsExt::from_mode(0o755))
            .expect("chmod");
        symlink("../a/b/c.js", modules.join(".bin/c")).expect("link");
        std::fs::write(outside.path().join("secret"), "host file").expect("write");
        symlink(outside.path().join("secret"), modules.join("leak")).expect("link");
        std::fs::create_dir_all(home.path().join(".npm/_cacache")).expect("mkdir");
        std::fs::write(home.path().join(".npm/_cacache/x"), "cached").expect("write");
        // A listed folder reached through a link is not packed at all.
        symlink(outside.path(), app.path().join(".next")).expect("link");
        std::fs::create_dir(outside.path().join("cache")).expect("mkdir");
        std::fs::write(outside.path().join("cache/host"), "host").expect("write");

        let dirs = [
            dir(Under::App, "node_modules"),
            dir(Under::App, "node_modules/.bin"),
            dir(Under::App, ".next/cache"),
            dir(Under::App, "missing"),
            dir(Under::Home, ".npm"),
        ];
        let roots = Roots {
            app: app.path(),
            home: home.path(),
        };
        let out = work.path().join("cache.tar.zst");
        let within = tmp();
        let refused = pack(&dirs, roots, within.path(), &out, Limits::default());
        assert!(
            matches!(refused, Err(ArchiveError::Refused(_))),
            "files outside the work folder: {refused:?}"
        );
        let everything = Path::new("/");
        let packed = pack(&dirs, roots, everything, &out, Limits::default()).expect("packed");
        assert_eq!(packed.dirs, [dirs[0].clone(), dirs[4].clone()]);
        assert_eq!(packed.bytes, 13 + 6, "links are not followed");

        let staging = work.path().join("staging");
        std::fs::create_dir(&staging).expect("mkdir");
        let unpacked = unpack(&out, &staging, Limits::default()).expect("unpacked");
        assert_eq!(
            (unpacked.bytes, unpacked.entries),
            (packed.bytes, packed.entries)
        );
        let got = staging.join("app/node_modules");
        assert_eq!(
            std::fs::read_to_string(got.join(".bin/c")).expect("through the link"),
            "exports.c = 1"
        );
        assert_eq!(
            std::fs::read_link(got.join(".bin/c"))
                .expect("link")
                .to_str(),
            Some("../a/b/c.js")
        );
        assert_eq!(
            std::fs::read_link(got.join("leak")).expect("link"),
            outside.path().join("secret")
        );
        let mode = std::fs::metadata(got.join("a/b/c.js"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        assert_eq!(
            std::fs::read_to_string(staging.join("home/.npm/_cacache/x")).expect("read"),
            "cached"
        );
        assert!(!staging.join("app/.next").exists());
    }

    /// An archive with one entry of `name` (written as is, past the tar crate's own checks),
    /// after `before`, an entry of the kind and link target given.
    fn hostile(path: &Path, entries: &[(&str, tar::EntryType, &str)]) {
        let file = File::create(path).expect("create");
        let encoder = zstd::stream::write::Encoder::new(file, 3).expect("zstd");
        let mut tar = tar::Builder::new(encoder);
        for (name, kind, target) in entries {
            let mut header = tar::Header::new_old();
            let raw = &mut header.as_old_mut().name;
            raw[..name.len()].copy_from_slice(name.as_bytes());
            let raw = &mut header.as_old_mut().linkname;
            raw[..target.len()].copy_from_slice(target.as_bytes());
            header.set_entry_type(*kind);
            header.set_mode(0o644);
            let data: &[u8] = if kind.is_file() { b"pwned" } else { b"" };
            header.set_size(data.len() as u64);
            header.set_cksum();
            tar.append(&header, data).expect("append");
        }
        tar.into_inner().expect("tar").finish().expect("zstd");
    }

    #[test]
    fn hostile_archives_are_refused_and_write_nothing_outside() {
        let (outside, work) = (tmp(), tmp());
        let escape = outside.path().join("x");
        let absolute = escape.display().to_string();
        let outside_dir = outside.path().display().to_string();
        use tar::EntryType::{Directory, Link, Regular, Symlink};
        let cases: Vec<Vec<(&str, tar::EntryType, &str)>> = vec![
            vec![("app/../x", Regular, "")],
            vec![("app/../../../../../../x", Regular, "")],
            vec![(&absolute, Regular, "")],
            vec![("other/x", Regular, "")],
            vec![("app/a/./b", Regular, "")],
            // Through a link the archive made, to a folder or to a file.
            vec![
                ("app/node_modules", Symlink, &outside_dir),
                ("app/node_modules/x", Regular, ""),
            ],
            vec![("app/l", Symlink, &absolute), ("app/l", Regular, "")],
            vec![("app/l", Symlink, &outside_dir), ("app/l", Directory, "")],
            vec![("app/h", Link, &absolute)],
        ];
        for (n, entries) in cases.iter().enumerate() {
            let archive = work.path().join(format!("{n}.tar.zst"));
            hostile(&archive, entries);
            let staging = work.path().join(format!("staging-{n}"));
            std::fs::create_dir(&staging).expect("mkdir");
            let result = unpack(&archive, &staging, Limits::default());
            assert!(result.is_err(), "case {n} {entries:?}: {result:?}");
            assert_eq!(
                std::fs::read_dir(outside.path()).expect("read").count(),
                0,
                "case {n}"
            );
        }
    }

    #[test]
    fn limits_hold_both_ways() {
        let (app, home, work) = (tmp(), tmp(), tmp());
        std::fs::create_dir(app.path().join(".cache")).expect("mkdir");
        std::fs::write(app.path().join(".cache/big"), vec![7u8; 1000]).expect("write");
        let roots = Roots {
            app: app.path(),
            home: home.path(),
        };
        let dirs = [dir(Under::App, ".cache")];
        let out = work.path().join("c.tar.zst");
        let small = Limits {
            bytes: 999,
            entries: 10,
        };
        assert!(matches!(
            pack(&dirs, roots, Path::new("/"), &out, small),
            Err(ArchiveError::TooLarge { .. })
        ));
        pack(&dirs, roots, Path::new("/"), &out, Limits::default()).expect("packed");
        let staging = work.path().join("staging");
        std::fs::create_dir(&staging).expect("mkdir");
        let few = Limits {
            bytes: 1 << 20,
            entries: 1,
        };
        assert!(matches!(
            unpack(&out, &staging, few),
            Err(ArchiveError::TooLarge { .. })
        ));
    }

    fn tmp() -> tempfile::TempDir {
        tempfile::tempdir().expect("tempdir")
    }
}
