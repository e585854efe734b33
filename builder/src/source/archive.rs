//! Unpacking an uploaded `.tar.gz` of a source folder. Every entry is checked before anything
//! is written: only regular files, folders and symlinks that stay inside; no absolute paths, no
//! `..`, no hard links or devices; bounded counts and sizes (gzip bombs stop at the limit).
//! Symlinks are created last, so no entry can be written through one.

use std::collections::{BTreeMap, VecDeque};
use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, bail};
use flate2::read::GzDecoder;
use tar::{Archive, EntryType};

#[derive(Debug, Clone, Copy)]
pub struct UnpackLimits {
    pub max_entries: u64,
    pub max_bytes: u64,
}

impl Default for UnpackLimits {
    fn default() -> Self {
        Self {
            max_entries: 200_000,
            max_bytes: 2 * 1024 * 1024 * 1024,
        }
    }
}

/// Unpacks `archive` (a gzip-compressed tarball) into `dest`, a fresh empty folder.
pub fn unpack(archive: impl Read, dest: &Path, limits: UnpackLimits) -> anyhow::Result<u64> {
    fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
    let mut tar = Archive::new(GzDecoder::new(archive));
    // Links by their path relative to `dest`, created once every file is written.
    let mut links: BTreeMap<PathBuf, PathBuf> = BTreeMap::new();
    let mut entries: u64 = 0;
    let mut bytes: u64 = 0;
    for entry in tar
        .entries()
        .context("the source archive is not a valid tar.gz")?
    {
        let mut entry = entry.context("the source archive is corrupt")?;
        entries += 1;
        if entries > limits.max_entries {
            bail!(
                "the source archive has more than {} entries",
                limits.max_entries
            );
        }
        let raw_path = entry
            .path()
            .context("an entry of the source archive has an unreadable name")?
            .into_owned();
        let Some(rel) = clean_relative(&raw_path) else {
            bail!(
                "the source archive has an entry outside its folder: {}",
                raw_path.display()
            );
        };
        if rel.as_os_str().is_empty() {
            continue;
        }
        let target = dest.join(&rel);
        match entry.header().entry_type() {
            EntryType::Directory => {
                fs::create_dir_all(&target)
                    .with_context(|| format!("creating {}", rel.display()))?;
            }
            EntryType::Regular | EntryType::Continuous => {
                let size = entry.header().size().unwrap_or(0);
                bytes = bytes.saturating_add(size);
                if bytes > limits.max_bytes {
                    bail!(
                        "the source archive unpacks to more than {} MB",
                        limits.max_bytes / (1024 * 1024)
                    );
                }
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent)
                        .with_context(|| format!("creating {}", parent.display()))?;
                }
                let executable = entry
                    .header()
                    .mode()
                    .map(|m| m & 0o111 != 0)
                    .unwrap_or(false);
                let mut out = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(if executable { 0o755 } else { 0o644 })
                    .custom_flags(nix::libc::O_NOFOLLOW)
                    .open(&target)
                    .with_context(|| {
                        format!("writing {} (is it in the archive twice?)", rel.display())
                    })?;
                let copied = io::copy(&mut (&mut entry).take(size), &mut out)
                    .with_context(|| format!("unpacking {}", rel.display()))?;
                if copied != size {
                    bail!("the source archive is truncated at {}", rel.display());
                }
            }
            EntryType::Symlink => {
                let link_target = entry
                    .link_name()
                    .context("a symlink in the source archive has an unreadable target")?
                    .context("a symlink in the source archive has no target")?
                    .into_owned();
                if !link_stays_inside(&rel, &link_target) {
                    bail!(
                        "the source archive has a symlink pointing outside its folder: {} -> {}",
                        rel.display(),
                        link_target.display()
                    );
                }
                links.insert(rel.clone(), link_target);
            }
            EntryType::XGlobalHeader
            | EntryType::XHeader
            | EntryType::GNULongName
            | EntryType::GNULongLink => {}
            other => bail!(
                "the source archive has an entry of a kind that is not allowed ({other:?}): {}",
                rel.display()
            ),
        }
    }
    // Each link alone stays inside; through one another they might not (`a -> x/..`, `b -> a/..`).
    for (rel, target) in &links {
        if !resolves_inside(rel, &links) {
            bail!(
                "the source archive has a symlink pointing outside its folder: {} -> {}",
                rel.display(),
                target.display()
            );
        }
    }
    for (rel, target) in links {
        let path = dest.join(&rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        std::os::unix::fs::symlink(&target, &path)
            .with_context(|| format!("creating the symlink {}", rel.display()))?;
    }
    Ok(entries)
}

/// Whether `path` (relative to the root), resolved lexically while following the archive's own
/// links, stays inside the root.
fn resolves_inside(path: &Path, links: &BTreeMap<PathBuf, PathBuf>) -> bool {
    enum Seg {
        Name(OsString),
        Up,
    }
    fn segments(path: &Path) -> Option<Vec<Seg>> {
        path.components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(Some(Seg::Name(n.to_owned()))),
                Component::ParentDir => Some(Some(Seg::Up)),
                Component::CurDir => None,
                Component::RootDir | Component::Prefix(_) => Some(None),
            })
            .collect()
    }
    let Some(start) = segments(path) else {
        return false;
    };
    let mut pending: VecDeque<Seg> = start.into();
    let mut here = PathBuf::new();
    let mut hops = 0;
    while let Some(seg) = pending.pop_front() {
        match seg {
            Seg::Up => {
                if !here.pop() {
                    return false;
                }
            }
            Seg::Name(name) => {
                here.push(name);
                if let Some(target) = links.get(&here) {
                    hops += 1;
                    let Some(target) = segments(target).filter(|_| hops <= 40) else {
                        return false;
                    };
                    // The link is replaced by its target, which is relative to its folder.
                    here.pop();
                    for seg in target.into_iter().rev() {
                        pending.push_front(seg);
                    }
                }
            }
        }
    }
    true
}

/// `path` as a relative path of normal components (`./` dropped), `None` if it is absolute or
/// climbs with `..`.
fn clean_relative(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Whether a symlink at `link` (relative to the root) pointing at `target` resolves, lexically,
/// to a path inside the root.
fn link_stays_inside(link: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth: usize = link.components().count().saturating_sub(1);
    for c in target.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                if depth == 0 {
                    return false;
                }
                depth -= 1;
            }
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tarball(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        let raw = b.into_inner().expect("tar");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, &raw).expect("gzip");
        gz.finish().expect("gzip")
    }

    fn file(b: &mut tar::Builder<Vec<u8>>, path: &str, body: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(EntryType::Regular);
        // set_path refuses `..`; write the raw name the way a hostile client would.
        let name = &mut h.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_cksum();
        b.append(&h, body).expect("append");
    }

    fn link(b: &mut tar::Builder<Vec<u8>>, path: &str, target: &str) {
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_entry_type(EntryType::Symlink);
        let name = &mut h.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        let linkname = &mut h.as_old_mut().linkname;
        linkname[..target.len()].copy_from_slice(target.as_bytes());
        h.set_cksum();
        b.append(&h, io::empty()).expect("append");
    }

    #[test]
    fn unpacks_files_folders_and_inner_links() {
        let dir = tempfile::tempdir().expect("tempdir");
        let gz = tarball(|b| {
            file(b, "index.html", b"<h1>hi</h1>");
            file(b, "./assets/app.js", b"1");
            link(b, "assets/alias.js", "app.js");
            link(b, "top.js", "assets/../assets/app.js");
        });
        let dest = dir.path().join("src");
        unpack(&gz[..], &dest, UnpackLimits::default()).expect("unpacks");
        assert_eq!(
            fs::read(dest.join("index.html")).expect("read"),
            b"<h1>hi</h1>"
        );
        assert_eq!(fs::read(dest.join("assets/alias.js")).expect("read"), b"1");
        assert_eq!(fs::read(dest.join("top.js")).expect("read"), b"1");
    }

    #[test]
    fn refuses_entries_that_escape() {
        // An absolute entry aims at a folder of its own, which must stay empty.
        let outside = tempfile::tempdir().expect("tempdir");
        let absolute = format!("{}/evil", outside.path().display());
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("parent", tarball(|b| file(b, "../evil", b"x"))),
            ("nested parent", tarball(|b| file(b, "a/../../evil", b"x"))),
            ("absolute", tarball(|b| file(b, &absolute, b"x"))),
            ("absolute link", tarball(|b| link(b, "l", "/etc/passwd"))),
            (
                "climbing link",
                tarball(|b| link(b, "a/l", "../../etc/passwd")),
            ),
            (
                "chained links",
                tarball(|b| {
                    link(b, "a/b/c/d/l", "../../../..");
                    link(b, "esc", "a/b/c/d/l/../../../../..");
                }),
            ),
            (
                "link loop",
                tarball(|b| {
                    link(b, "x", "y");
                    link(b, "y", "x");
                }),
            ),
            (
                "write through link",
                tarball(|b| {
                    link(b, "l", ".");
                    file(b, "l", b"x");
                }),
            ),
        ];
        for (name, gz) in cases {
            let dir = tempfile::tempdir().expect("tempdir");
            let dest = dir.path().join("src");
            let result = unpack(&gz[..], &dest, UnpackLimits::default());
            // A link and a file of the same name: the file is written first, the link then fails.
            assert!(result.is_err(), "{name}: accepted");
            assert!(!dir.path().join("evil").exists(), "{name}: wrote outside");
            assert!(
                !outside.path().join("evil").exists(),
                "{name}: wrote at an absolute path"
            );
        }
    }

    #[test]
    fn stops_at_the_limits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let gz = tarball(|b| {
            file(b, "a", &[0u8; 1000]);
            file(b, "b", &[0u8; 1000]);
        });
        let err = unpack(
            &gz[..],
            &dir.path().join("x"),
            UnpackLimits {
                max_entries: 10,
                max_bytes: 1500,
            },
        )
        .expect_err("too big");
        assert!(err.to_string().contains("more than"), "{err}");
        let err = unpack(
            &gz[..],
            &dir.path().join("y"),
            UnpackLimits {
                max_entries: 1,
                max_bytes: 1 << 20,
            },
        )
        .expect_err("too many");
        assert!(err.to_string().contains("entries"), "{err}");
    }

    #[test]
    fn refuses_garbage() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(
            unpack(
                &b"not a tarball"[..],
                &dir.path().join("x"),
                UnpackLimits::default()
            )
            .is_err()
        );
    }
}
