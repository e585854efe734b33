//! Uploading a build's output folder, then its manifest. Only regular files inside the folder
//! are uploaded; a symlink is followed only when it stays inside, anything else is skipped and
//! said so in the log. Files go up several at a time; the manifest goes last.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use futures_util::{StreamExt, TryStreamExt};
use scalemesh_core::layout::{self, Encoding, Manifest, ManifestEntry, is_site_path};
use scalemesh_core::rules::{self, HEADERS_FILE, MAX_RULES_FILE_BYTES, REDIRECTS_FILE, Routing};
use scalemesh_core::storage::{Body, ObjectMeta, Storage};
use scalemesh_core::{DeploymentId, ProjectName, content_type};
use sha2::{Digest, Sha256};

/// Files uploaded at once.
const PARALLEL: usize = 16;

/// Files smaller than this gain nothing from compression; larger ones than the maximum are
/// stored as they are (compressing them would hold a build for long).
const MIN_COMPRESS: u64 = 256;
const MAX_COMPRESS: u64 = 16 * 1024 * 1024;
/// High enough to matter, low enough for large bundles to compress in a build's time.
const BROTLI_QUALITY: i32 = 10;

/// Files up to this size are read once and sent from memory.
const IN_MEMORY: u64 = 1024 * 1024;

/// Mebibytes of file contents and their compressed copies held in memory at once, across the
/// files being uploaded: the builder runs outside the build's memory limit.
const MEMORY_BUDGET_MIB: u32 = 64;

/// Mebibytes a file's upload holds in memory: what is read whole, and its compressed copies.
fn held_mib(size: u64, compress: bool, keep: bool) -> u32 {
    let held = if compress {
        size * 2
    } else if keep {
        size
    } else {
        0
    };
    u32::try_from(held.div_ceil(1 << 20))
        .unwrap_or(MEMORY_BUDGET_MIB)
        .min(MEMORY_BUDGET_MIB)
}

const REVALIDATE: &str = "public, max-age=0, must-revalidate";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

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
}

/// Lists the files of `dir` to upload, and what was skipped and why. Paths are `/`-joined and
/// relative; dotfiles are left out except `.well-known`.
pub fn collect(dir: &Path, limits: UploadLimits) -> anyhow::Result<(Vec<OutputFile>, Vec<String>)> {
    let mut skipped = Vec::new();
    let root = dir
        .canonicalize()
        .with_context(|| format!("reading the output folder {}", dir.display()))?;
    let mut files = Vec::new();
    let mut total: u64 = 0;
    let mut stack: Vec<(PathBuf, String)> = vec![(root.clone(), String::new())];
    while let Some((folder, prefix)) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&folder)
            .with_context(|| format!("reading {}", folder.display()))?
            .collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                skipped.push(format!(
                    "Skipped a file whose name is not UTF-8 in {prefix:?}"
                ));
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
                skipped.push(format!("Skipped {rel:?}: not a usable file name"));
                continue;
            }
            let meta = entry.metadata()?; // does not follow symlinks
            let (source, meta) = if meta.file_type().is_symlink() {
                match entry.path().canonicalize() {
                    Ok(target) if target.starts_with(&root) => {
                        let target_meta = std::fs::metadata(&target)?;
                        if target_meta.is_dir() {
                            skipped.push(format!("Skipped {rel}: a symbolic link to a folder"));
                            continue;
                        }
                        (target, target_meta)
                    }
                    _ => {
                        skipped.push(format!(
                            "Skipped {rel}: a symbolic link pointing outside the output folder"
                        ));
                        continue;
                    }
                }
            } else {
                (entry.path(), meta)
            };
            if meta.is_dir() {
                stack.push((source, rel));
            } else if meta.is_file() {
                total += meta.len();
                if files.len() >= limits.max_files {
                    anyhow::bail!("the output folder has more than {} files", limits.max_files);
                }
                if total > limits.max_bytes {
                    anyhow::bail!(
                        "the output folder holds more than {} MB",
                        limits.max_bytes / (1024 * 1024)
                    );
                }
                files.push(OutputFile {
                    path: rel,
                    source,
                    size: meta.len(),
                });
            } else {
                skipped.push(format!("Skipped {rel}: not a regular file"));
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((files, skipped))
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

/// Removes what an upload of `deployment` stored (its files, their variants, its pending
/// manifest), as far as storage lets the builder; how many objects went.
pub async fn remove(
    storage: &dyn Storage,
    project: &ProjectName,
    deployment: &DeploymentId,
) -> usize {
    let prefixes = [
        format!("__output/{project}/{deployment}/"),
        format!("__output/{project}/{deployment}.br/"),
        format!("__output/{project}/{deployment}.gz/"),
    ];
    let mut keys = vec![layout::pending_manifest(project, deployment)];
    for prefix in prefixes {
        keys.extend(storage.list(&prefix).await.unwrap_or_default());
    }
    let mut removed: usize = 0;
    for key in keys {
        if storage.delete(&key).await.is_ok() {
            removed += 1;
        }
    }
    // The pending manifest is counted whether or not it was there.
    removed.saturating_sub(1)
}

/// Publishes the pending manifest of a deployment, as the server does when it becomes ready: for
/// tools and tests that upload a site with no server.
pub async fn publish(
    storage: &dyn Storage,
    project: &ProjectName,
    deployment: &DeploymentId,
) -> anyhow::Result<()> {
    let bytes = storage
        .get_bytes(&layout::pending_manifest(project, deployment))
        .await?;
    storage
        .put(
            &layout::manifest(project, deployment),
            Body::Bytes(bytes),
            &ObjectMeta {
                content_type: Some("application/json".into()),
                cache_control: Some("no-cache".into()),
            },
        )
        .await
        .context("publishing the manifest")
}

/// Uploads `files`, their compressed variants and then the manifest (pending until the server
/// publishes it), calling `progress(done, total)` as files finish.
pub async fn upload(
    storage: Arc<dyn Storage>,
    project: &ProjectName,
    deployment: &DeploymentId,
    files: Vec<OutputFile>,
    routing: Routing,
    progress: impl Fn(u64, u64) + Send + Sync,
) -> anyhow::Result<Manifest> {
    let total = files.len() as u64;
    let done = AtomicU64::new(0);
    let budget = Arc::new(tokio::sync::Semaphore::new(MEMORY_BUDGET_MIB as usize));
    let entries: Vec<(String, ManifestEntry)> = futures_util::stream::iter(files)
        .map(|file| {
            let storage = storage.clone();
            let done = &done;
            let progress = &progress;
            let budget = budget.clone();
            async move {
                let source = file.source.clone();
                let content_type = content_type::for_path(&file.path);
                let compress = content_type::is_compressible(&content_type)
                    && (MIN_COMPRESS..=MAX_COMPRESS).contains(&file.size);
                let keep = file.size <= IN_MEMORY;
                let _held = budget
                    .acquire_many_owned(held_mib(file.size, compress, keep))
                    .await
                    .context("the upload's memory budget closed")?;
                let FileRead {
                    sha256,
                    variants,
                    bytes,
                } = tokio::task::spawn_blocking(move || read_file(&source, compress, keep))
                    .await
                    .context("hashing task failed")?
                    .with_context(|| format!("reading {}", file.path))?;
                let immutable = scalemesh_core::fingerprint::is_fingerprinted(&file.path);
                let meta = ObjectMeta {
                    content_type: Some(content_type.clone()),
                    cache_control: Some(if immutable { IMMUTABLE } else { REVALIDATE }.to_owned()),
                };
                let mut entry = ManifestEntry {
                    size: file.size,
                    content_type,
                    sha256,
                    immutable,
                    br: None,
                    gzip: None,
                };
                for (encoding, bytes) in variants {
                    let size = bytes.len() as u64;
                    storage
                        .put(
                            &layout::output_variant(project, deployment, encoding, &file.path),
                            Body::Bytes(bytes.into()),
                            &meta,
                        )
                        .await
                        .with_context(|| {
                            format!("uploading {} ({})", file.path, encoding.token())
                        })?;
                    match encoding {
                        Encoding::Brotli => entry.br = Some(size),
                        Encoding::Gzip => entry.gzip = Some(size),
                    }
                }
                storage
                    .put(
                        &layout::output_file(project, deployment, &file.path),
                        match bytes {
                            Some(bytes) => Body::Bytes(bytes.into()),
                            None => Body::File(file.source.clone()),
                        },
                        &meta,
                    )
                    .await
                    .with_context(|| format!("uploading {}", file.path))?;
                progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
                anyhow::Ok((file.path, entry))
            }
        })
        .buffer_unordered(PARALLEL)
        .try_collect()
        .await?;
    let manifest = Manifest {
        project: project.clone(),
        deployment: deployment.clone(),
        created_at: time::OffsetDateTime::now_utc(),
        files: entries.into_iter().collect::<BTreeMap<_, _>>(),
        routing,
    };
    let body = serde_json::to_vec(&manifest)?;
    storage
        .put(
            &layout::pending_manifest(project, deployment),
            Body::Bytes(body.into()),
            &ObjectMeta {
                content_type: Some("application/json".into()),
                cache_control: Some("no-cache".into()),
            },
        )
        .await
        .context("uploading the manifest")?;
    Ok(manifest)
}

/// A file's compressed copies, each worth storing.
type Variants = Vec<(Encoding, Vec<u8>)>;

/// What one read of a file gives.
struct FileRead {
    sha256: String,
    variants: Variants,
    /// The bytes themselves, for files small enough to send from memory.
    bytes: Option<Vec<u8>>,
}

/// Reads a file once: its SHA-256, its br and gzip variants when `compress` and they save at
/// least a tenth of the bytes, and the bytes when `keep`.
fn read_file(path: &Path, compress: bool, keep: bool) -> std::io::Result<FileRead> {
    let mut file = std::fs::File::open(path)?;
    if compress || keep {
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let mut variants = Vec::new();
        if compress && worth_compressing(&bytes) {
            for encoding in Encoding::ALL {
                let packed = compressed(&bytes, encoding)?;
                if packed.len() * 10 <= bytes.len() * 9 {
                    variants.push((encoding, packed));
                }
            }
        }
        return Ok(FileRead {
            sha256,
            variants,
            bytes: keep.then_some(bytes),
        });
    }
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(FileRead {
        sha256: hex::encode(hasher.finalize()),
        variants: Vec::new(),
        bytes: None,
    })
}

/// A quick look at the start of a file: data that does not shrink there (already compressed,
/// random) is not worth the time the real compressors would take.
fn worth_compressing(bytes: &[u8]) -> bool {
    use std::io::Write;
    let sample = &bytes[..bytes.len().min(8 * 1024)];
    let mut out = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    if out.write_all(sample).is_err() {
        return false;
    }
    out.finish()
        .is_ok_and(|packed| packed.len() * 10 <= sample.len() * 9)
}

fn compressed(bytes: &[u8], encoding: Encoding) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    match encoding {
        Encoding::Gzip => {
            let mut out = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            out.write_all(bytes)?;
            out.finish()
        }
        Encoding::Brotli => {
            let mut out = Vec::new();
            let params = brotli::enc::BrotliEncoderParams {
                quality: BROTLI_QUALITY,
                lgwin: 22,
                ..Default::default()
            };
            brotli::BrotliCompress(&mut std::io::Cursor::new(bytes), &mut out, &params)?;
            Ok(out)
        }
    }
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
    fn compresses_text_and_leaves_noise_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = dir.path().join("app.js");
        let body = "export const greeting = 'hello';\n".repeat(300);
        std::fs::write(&text, &body).expect("write");
        let read = read_file(&text, true, true).expect("compress");
        assert_eq!(read.sha256, hex::encode(Sha256::digest(body.as_bytes())));
        assert_eq!(read.bytes.as_deref(), Some(body.as_bytes()));
        let variants = read.variants;
        let kinds: Vec<Encoding> = variants.iter().map(|(e, _)| *e).collect();
        assert_eq!(kinds, [Encoding::Brotli, Encoding::Gzip]);
        let mut plain = String::new();
        flate2::read::GzDecoder::new(variants[1].1.as_slice())
            .read_to_string(&mut plain)
            .expect("gunzip");
        assert_eq!(plain, body);
        let mut unbrotli = Vec::new();
        brotli::BrotliDecompress(&mut variants[0].1.as_slice(), &mut unbrotli).expect("unbrotli");
        assert_eq!(unbrotli, body.as_bytes());

        let noise = dir.path().join("noise.html");
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let bytes: Vec<u8> = (0..20_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 32) as u8
            })
            .collect();
        std::fs::write(&noise, &bytes).expect("write");
        let read = read_file(&noise, true, false).expect("compress");
        assert!(
            read.variants.is_empty(),
            "incompressible bytes are stored once"
        );
        assert!(read.bytes.is_none());
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
