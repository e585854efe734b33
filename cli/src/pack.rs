//! Packing a local folder for upload: a `.tar.gz` of what git would track — `.gitignore`
//! (and `.scalemeshignore`) honoured, `node_modules` and `.git` left out. Symlinks are packed
//! as symlinks; the builder decides which may stay.

use std::path::Path;

use anyhow::Context;
use flate2::Compression;
use flate2::write::GzEncoder;

use crate::error::CliError;

/// Folders never uploaded, wherever they are.
const ALWAYS_SKIPPED: [&str; 3] = ["node_modules", ".git", ".scalemesh"];

/// Largest folder (before compression) `deploy` packs.
const MAX_RAW_BYTES: u64 = 1024 * 1024 * 1024;

pub struct Packed {
    pub archive: Vec<u8>,
    pub files: usize,
    pub raw_bytes: u64,
}

pub fn pack(dir: &Path) -> anyhow::Result<Packed> {
    let dir = dir.canonicalize().map_err(|e| {
        CliError::new(format!("cannot read the folder {}: {e}", dir.display()))
            .hint("give a folder that exists, or a git URL (https://, http://, git://)")
    })?;
    if !dir.is_dir() {
        return Err(CliError::new(format!("{} is not a folder", dir.display()))
            .hint("deploy a folder or a git URL")
            .into());
    }
    if dir.parent().is_none() || dirs::home_dir().is_some_and(|h| h == dir) {
        return Err(
            CliError::new(format!("refusing to upload all of {}", dir.display()))
                .hint("run `scalemesh deploy` in your project's folder")
                .into(),
        );
    }
    let walker = ignore::WalkBuilder::new(&dir)
        .hidden(false)
        .git_ignore(true)
        .git_exclude(true)
        .git_global(false)
        .require_git(false)
        .parents(false)
        .follow_links(false)
        .add_custom_ignore_filename(".scalemeshignore")
        .filter_entry(|e| !ALWAYS_SKIPPED.iter().any(|s| e.file_name() == *s))
        .build();
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    tar.follow_symlinks(false);
    let mut files = 0;
    let mut raw_bytes = 0u64;
    for entry in walker {
        let entry = entry.context("walking the folder")?;
        let path = entry.path();
        let Ok(rel) = path.strip_prefix(&dir) else {
            continue;
        };
        if rel.as_os_str().is_empty() {
            continue;
        }
        let Some(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_file() {
            raw_bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
            if raw_bytes > MAX_RAW_BYTES {
                return Err(CliError::new(format!(
                    "the folder holds more than {} MB to upload",
                    MAX_RAW_BYTES / (1024 * 1024)
                ))
                .hint("list build output and large files in .gitignore or .scalemeshignore")
                .into());
            }
            tar.append_path_with_name(path, rel)
                .with_context(|| format!("packing {}", rel.display()))?;
            files += 1;
        } else if kind.is_symlink() {
            let target = std::fs::read_link(path)?;
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            header.set_mode(0o777);
            tar.append_link(&mut header, rel, &target)
                .with_context(|| format!("packing {}", rel.display()))?;
            files += 1;
        }
    }
    let archive = tar
        .into_inner()
        .context("finishing the archive")?
        .finish()
        .context("compressing")?;
    Ok(Packed {
        archive,
        files,
        raw_bytes,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::io::Read;

    use super::*;

    fn names(archive: &[u8]) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
        for entry in tar.entries().expect("entries") {
            let mut entry = entry.expect("entry");
            let mut sink = Vec::new();
            entry.read_to_end(&mut sink).expect("read");
            out.insert(entry.path().expect("path").display().to_string());
        }
        out
    }

    #[test]
    fn honours_gitignore_and_skips_dependencies() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("site");
        for (path, body) in [
            ("index.html", "hi"),
            ("src/app.js", "1"),
            (".gitignore", "dist/\n*.log\n"),
            ("dist/out.js", "built"),
            ("debug.log", "x"),
            ("node_modules/a/index.js", "dep"),
            (".git/HEAD", "ref"),
            ("sub/node_modules/b.js", "dep"),
            (".well-known/x", "y"),
        ] {
            let p = root.join(path);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, body).expect("write");
        }
        std::os::unix::fs::symlink("index.html", root.join("home.html")).expect("symlink");
        let packed = pack(&root).expect("packs");
        let got = names(&packed.archive);
        let want: BTreeSet<String> = [
            ".gitignore",
            ".well-known/x",
            "home.html",
            "index.html",
            "src/app.js",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        assert_eq!(got, want);
        assert_eq!(packed.files, 5);
    }

    #[test]
    fn refuses_missing_folders() {
        assert!(pack(Path::new("/nonexistent/scalemesh/x")).is_err());
        assert!(pack(Path::new("/")).is_err());
    }
}
