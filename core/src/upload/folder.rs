//! A folder as a site's files: which files of it a deployment has (regular files inside it, and
//! links that stay inside; dotfiles left out but `.well-known`), within limits, and the routing
//! rules its `_redirects` and `_headers` files say. The builder reads its output folder this
//! way, and the CLI a prebuilt one; its folders are listed a few at once (`walk.rs`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use anyhow::Context;

use crate::layout::is_site_path;
use crate::rules::{self, HEADERS_FILE, MAX_RULES_FILE_BYTES, REDIRECTS_FILE, Routing};

#[derive(Debug, Clone, Copy)]
pub struct UploadLimits {
    pub max_files: usize,
    pub max_bytes: u64,
}

impl Default for UploadLimits {
    fn default() -> Self {
        Self {
            max_files: 50_000,
            max_bytes: 2 * 1024 * 1024 * 1024,
        }
    }
}

/// A file to upload: its site path and where its bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    pub path: String,
    pub source: PathBuf,
    pub size: u64,
    /// What tells it changed, as the folder was listed (before its bytes are read).
    pub stamp: super::digests::Stamp,
}

/// Where `entry` is and what it is: itself, or the target of a symbolic link to a file inside
/// `root`; else why it is skipped.
fn followed(
    entry: &std::fs::DirEntry,
    root: &Path,
) -> std::io::Result<Result<(PathBuf, std::fs::Metadata), &'static str>> {
    let meta = entry.metadata()?; // does not follow symlinks
    if !meta.file_type().is_symlink() {
        return Ok(Ok((entry.path(), meta)));
    }
    match entry.path().canonicalize() {
        Ok(target) if target.starts_with(root) => {
            let target_meta = std::fs::metadata(&target)?;
            if target_meta.is_dir() {
                return Ok(Err("a symbolic link to a folder"));
            }
            Ok(Ok((target, target_meta)))
        }
        _ => Ok(Err("a symbolic link pointing outside the output folder")),
    }
}

/// Folders listed at once, each by a thread of its own.
const LISTERS: usize = 4;

/// Lists the files of `dir` to upload, and what was skipped and why. Paths are `/`-joined and
/// relative, in order; dotfiles are left out except `.well-known`.
pub fn collect(dir: &Path, limits: UploadLimits) -> anyhow::Result<(Vec<OutputFile>, Vec<String>)> {
    let root = dir
        .canonicalize()
        .with_context(|| format!("reading the output folder {}", dir.display()))?;
    let counted = Counted {
        limits,
        files: AtomicUsize::new(0),
        bytes: AtomicU64::new(0),
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(LISTERS));
    let listings = super::walk::walk(
        (root.clone(), String::new()),
        threads,
        |(folder, prefix)| list(&root, &folder, &prefix, &counted),
    )?;
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    for listing in listings {
        files.extend(listing.files);
        skipped.extend(listing.skipped);
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    skipped.sort();
    Ok((files, skipped.into_iter().map(|(_, why)| why).collect()))
}

/// What one folder holds: its files to upload, and what was skipped (by path, and why).
struct Listing {
    files: Vec<OutputFile>,
    skipped: Vec<(String, String)>,
}

/// The files listed so far, held to the limits however many threads list.
struct Counted {
    limits: UploadLimits,
    files: AtomicUsize,
    bytes: AtomicU64,
}

impl Counted {
    fn add(&self, bytes: u64) -> anyhow::Result<()> {
        if self.files.fetch_add(1, Ordering::Relaxed) >= self.limits.max_files {
            anyhow::bail!(
                "the output folder has more than {} files",
                self.limits.max_files
            );
        }
        let total = self.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if total > self.limits.max_bytes {
            anyhow::bail!(
                "the output folder holds more than {} MB",
                self.limits.max_bytes / (1024 * 1024)
            );
        }
        Ok(())
    }
}

/// Lists `folder` (the site path `prefix` under `root`): its files and what was skipped, and
/// the folders in it.
fn list(
    root: &Path,
    folder: &Path,
    prefix: &str,
    counted: &Counted,
) -> anyhow::Result<(Listing, Vec<(PathBuf, String)>)> {
    let mut entries: Vec<_> = std::fs::read_dir(folder)
        .with_context(|| format!("reading {}", folder.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    let mut here = Listing {
        files: Vec::new(),
        skipped: Vec::new(),
    };
    let mut below = Vec::new();
    for entry in entries {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            let why = format!("Skipped a file whose name is not UTF-8 in {prefix:?}");
            here.skipped.push((prefix.to_owned(), why));
            continue;
        };
        let rel = if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}/{name}")
        };
        if name.starts_with('.') && !(prefix.is_empty() && name == ".well-known") {
            continue;
        }
        if !is_site_path(&rel) {
            let why = format!("Skipped {rel:?}: not a usable file name");
            here.skipped.push((rel, why));
            continue;
        }
        let (source, meta) = match followed(&entry, root)? {
            Ok(found) => found,
            Err(why) => {
                let why = format!("Skipped {rel}: {why}");
                here.skipped.push((rel, why));
                continue;
            }
        };
        if meta.is_dir() {
            below.push((source, rel));
        } else if meta.is_file() {
            counted.add(meta.len())?;
            here.files.push(OutputFile {
                path: rel,
                source,
                size: meta.len(),
                stamp: (&meta).into(),
            });
        } else {
            let why = format!("Skipped {rel}: not a regular file");
            here.skipped.push((rel, why));
        }
    }
    Ok((here, below))
}

/// Takes the site's rules files (`_redirects`, `_headers` at the top of the output folder) out
/// of `files` and parses them; the rules from `scalemesh.json` come after theirs. A mistake in
/// either fails the build, naming the file and line.
pub fn take_routing(files: &mut Vec<OutputFile>, config: Routing) -> anyhow::Result<Routing> {
    let mut routing = Routing {
        not_found: config.not_found,
        ..Routing::default()
    };
    let mut read = |name: &str| -> anyhow::Result<Option<String>> {
        let Some(at) = files.iter().position(|f| f.path == name) else {
            return Ok(None);
        };
        let file = files.remove(at);
        if file.size > MAX_RULES_FILE_BYTES {
            anyhow::bail!("{name} is larger than {} KB", MAX_RULES_FILE_BYTES / 1024);
        }
        let text = std::fs::read_to_string(&file.source)
            .with_context(|| format!("{name} is not UTF-8 text"))?;
        Ok(Some(text))
    };
    if let Some(text) = read(REDIRECTS_FILE)? {
        routing.redirects = rules::parse_redirects(&text)?;
    }
    if let Some(text) = read(HEADERS_FILE)? {
        routing.headers = rules::parse_headers(&text)?;
    }
    routing.redirects.extend(config.redirects);
    routing.headers.extend(config.headers);
    if routing.redirects.len() > rules::MAX_REDIRECTS {
        anyhow::bail!("the site has more than {} redirects", rules::MAX_REDIRECTS);
    }
    Ok(routing)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn collects_regular_files_and_inner_links_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("dist");
        std::fs::create_dir_all(out.join("assets")).expect("mkdir");
        std::fs::create_dir_all(out.join(".git")).expect("mkdir");
        std::fs::create_dir_all(out.join(".well-known")).expect("mkdir");
        std::fs::write(out.join("index.html"), "hi").expect("write");
        std::fs::write(out.join("assets/app.js"), "1").expect("write");
        std::fs::write(out.join(".env"), "SECRET=1").expect("write");
        std::fs::write(out.join(".git/config"), "x").expect("write");
        std::fs::write(out.join(".well-known/security.txt"), "x").expect("write");
        std::fs::write(dir.path().join("secret.txt"), "outside").expect("write");
        symlink(dir.path().join("secret.txt"), out.join("leak.txt")).expect("symlink");
        symlink("/etc/passwd", out.join("passwd")).expect("symlink");
        symlink("..", out.join("up")).expect("symlink");
        symlink("assets/app.js", out.join("alias.js")).expect("symlink");
        symlink("assets", out.join("assets-link")).expect("symlink");

        let (files, skipped) = collect(&out, UploadLimits::default()).expect("collects");
        let paths: Vec<_> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                ".well-known/security.txt",
                "alias.js",
                "assets/app.js",
                "index.html"
            ]
        );
        assert_eq!(skipped.len(), 4, "{skipped:?}");
        assert!(
            skipped
                .iter()
                .any(|s| s.contains("leak.txt") && s.contains("outside"))
        );
        assert!(skipped.iter().any(|s| s.contains("passwd")));
    }

    #[test]
    fn enforces_limits() {
        let dir = tempfile::tempdir().expect("tempdir");
        for i in 0..5 {
            std::fs::write(dir.path().join(format!("{i}.txt")), "12345").expect("write");
        }
        assert!(
            collect(
                dir.path(),
                UploadLimits {
                    max_files: 4,
                    max_bytes: 1000
                }
            )
            .is_err()
        );
        assert!(
            collect(
                dir.path(),
                UploadLimits {
                    max_files: 10,
                    max_bytes: 20
                }
            )
            .is_err()
        );
        assert!(
            collect(
                dir.path(),
                UploadLimits {
                    max_files: 10,
                    max_bytes: 25
                }
            )
            .is_ok()
        );
    }
}
