//! Unpacking a Node.js package tarball without trusting it: only `package/bin/node` and
//! `package/LICENSE` are kept, as regular files of bounded size written to fixed paths of the
//! target folder. Every other entry (headers, docs, npm, links, paths out of the folder) is
//! read past and never written.

use std::io::Read;
use std::path::Path;

/// Most bytes read out of the archive, all entries together.
const MAX_UNPACKED: u64 = 1 << 30;
/// Most entries read.
const MAX_ENTRIES: usize = 50_000;

/// The entries kept: where they are in the tarball, where they go, their mode, their largest
/// size.
const KEPT: &[(&str, &str, u32, u64)] = &[
    ("package/bin/node", "bin/node", 0o755, 512 << 20),
    ("package/LICENSE", "LICENSE", 0o644, 4 << 20),
];

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("the Node.js tarball is unreadable: {0}")]
    Read(std::io::Error),
    #[error("the Node.js tarball has {0} where a regular file belongs")]
    NotAFile(&'static str),
    #[error("the Node.js tarball has {0} twice")]
    Twice(&'static str),
    #[error("the Node.js tarball's {0} is larger than allowed")]
    TooLarge(&'static str),
    #[error("the Node.js tarball has more than {MAX_ENTRIES} entries")]
    TooManyEntries,
    #[error("the Node.js tarball has no package/bin/node")]
    NoNode,
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Unpacks the `.tgz` at `tarball` into the folder `into` (which must exist, empty): `bin/node`
/// (0755) and, when there is one, `LICENSE` (0644).
pub fn unpack_node(tarball: &Path, into: &Path) -> Result<(), UnpackError> {
    let file = std::fs::File::open(tarball).map_err(UnpackError::Read)?;
    let gz = flate2::read::GzDecoder::new(std::io::BufReader::new(file));
    let mut archive = tar::Archive::new(gz.take(MAX_UNPACKED));
    let mut found = [false; KEPT.len()];
    let entries = archive.entries().map_err(UnpackError::Read)?;
    for (count, entry) in entries.enumerate() {
        if count >= MAX_ENTRIES {
            return Err(UnpackError::TooManyEntries);
        }
        let mut entry = entry.map_err(UnpackError::Read)?;
        let raw = entry.path_bytes();
        let name = raw.strip_prefix(b"./").unwrap_or(&raw);
        let Some(i) = KEPT.iter().position(|k| k.0.as_bytes() == name) else {
            continue;
        };
        let (inside, dest, mode, max) = KEPT[i];
        if found[i] {
            return Err(UnpackError::Twice(inside));
        }
        found[i] = true;
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(UnpackError::NotAFile(inside));
        }
        if entry.header().size().map_err(UnpackError::Read)? > max {
            return Err(UnpackError::TooLarge(inside));
        }
        write_file(&mut entry, &into.join(dest), mode, max, inside)?;
    }
    if found[0] {
        Ok(())
    } else {
        Err(UnpackError::NoNode)
    }
}

/// Writes at most `max` bytes of `from` to a new file at `path` with `mode`.
fn write_file(
    from: &mut impl Read,
    path: &Path,
    mode: u32,
    max: u64,
    what: &'static str,
) -> Result<(), UnpackError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let write_err = |source| UnpackError::Write {
        path: path.display().to_string(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(write_err)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(write_err)?;
    let written = std::io::copy(&mut from.take(max + 1), &mut file).map_err(UnpackError::Read)?;
    if written > max {
        return Err(UnpackError::TooLarge(what));
    }
    // The mode given at creation is narrowed by the umask; other users' builds run it.
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(write_err)?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A `.tgz` with `entries`: a path and either file contents or a link target.
    pub(crate) fn tarball(entries: &[(&str, Result<&str, &str>)]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut builder = tar::Builder::new(gz);
        for (path, what) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_mode(0o755);
            match what {
                Ok(text) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_size(text.len() as u64);
                    builder
                        .append_data(&mut header, path, text.as_bytes())
                        .expect("append");
                }
                Err(target) => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_size(0);
                    builder
                        .append_link(&mut header, path, target)
                        .expect("append link");
                }
            }
        }
        builder.into_inner().expect("tar").finish().expect("gzip")
    }

    fn unpacked(
        entries: &[(&str, Result<&str, &str>)],
    ) -> (tempfile::TempDir, Result<(), UnpackError>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let tgz = dir.path().join("node.tgz");
        std::fs::write(&tgz, tarball(entries)).expect("write");
        let into = dir.path().join("out");
        std::fs::create_dir(&into).expect("mkdir");
        let result = unpack_node(&tgz, &into);
        (dir, result)
    }

    #[test]
    fn only_node_and_its_license_are_kept() {
        let (dir, result) = unpacked(&[
            ("package/include/node/node.h", Ok("// header")),
            (
                "package/bin/npm",
                Err("../lib/node_modules/npm/bin/npm-cli.js"),
            ),
            ("package/bin/evil", Err("/etc/passwd")),
            ("package/LICENSE", Ok("MIT")),
            ("package/bin/node", Ok("#!/bin/sh\necho v22.3.0\n")),
        ]);
        result.expect("unpacks");
        let out = dir.path().join("out");
        let mut found: Vec<String> = walk(&out);
        found.sort();
        assert_eq!(found, ["LICENSE", "bin", "bin/node"]);
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &str| {
            std::fs::metadata(out.join(p))
                .expect("meta")
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!((mode("bin/node"), mode("LICENSE")), (0o755, 0o644));
    }

    #[test]
    fn hostile_tarballs_are_refused() {
        let (_dir, linked) = unpacked(&[("package/bin/node", Err("/bin/sh"))]);
        assert!(
            matches!(linked, Err(UnpackError::NotAFile(_))),
            "{linked:?}"
        );
        let (_dir, twice) = unpacked(&[
            ("package/bin/node", Ok("a")),
            ("./package/bin/node", Ok("b")),
        ]);
        assert!(matches!(twice, Err(UnpackError::Twice(_))), "{twice:?}");
        let (_dir, none) = unpacked(&[("package/README.md", Ok("hi"))]);
        assert!(matches!(none, Err(UnpackError::NoNode)), "{none:?}");
    }

    fn walk(root: &Path) -> Vec<String> {
        let mut found = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("read_dir").flatten() {
                let path = entry.path();
                let rel = path.strip_prefix(root).expect("inside");
                found.push(rel.display().to_string());
                if path.is_dir() {
                    stack.push(path);
                }
            }
        }
        found
    }
}
