//! Uploading a deployment's files by content: every file is hashed, the digests go to the server
//! in one handshake, and only the blobs the project does not hold yet are packed (compressed)
//! and sent, several at once; the manifest, mapping each path to its digest, goes last. The
//! builder sends its output folder this way and the CLI a prebuilt one; each says through a
//! [`BlobSink`] where things go.

pub mod digests;
pub mod folder;
pub mod pack;
mod walk;
mod whole;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt};

pub use folder::{OutputFile, UploadLimits, collect, take_routing};
use pack::{FEWEST_PACKED, PACK_BYTES, PACK_FILES, PACKABLE, Packed};

use crate::layout::{FileLayout, Manifest, ManifestEntry, is_sha256};
use crate::rules::Routing;
use crate::wire::{BlobCheck, BlobCheckAnswer, BlobLayout, BlobParts, BlobWant, PresignedPut};
use crate::{DeploymentId, ProjectName, content_type};

/// Files hashed, and blobs sent, at once.
const PARALLEL: usize = 16;

/// Bytes of file contents and their compressed copies held in memory at once, across the blobs
/// being packed and sent: the builder runs outside the build's memory limit.
const MEMORY_BUDGET: u64 = 64 * 1024 * 1024;

/// Where an upload's pieces go.
#[async_trait]
pub trait BlobSink: Send + Sync {
    /// Which of these blobs the project holds, and which to send.
    async fn check(&self, check: &BlobCheck) -> anyhow::Result<BlobCheckAnswer>;
    /// Sends one missing blob, straight to storage when `direct` says how.
    async fn put(&self, blob: &Packed, direct: Option<&PresignedPut>) -> anyhow::Result<()>;
    /// Sends the manifest, once every blob it names is stored.
    async fn put_manifest(&self, manifest: &Manifest) -> anyhow::Result<()>;

    /// Whether the server completes the manifest from what it recorded (a prebuilt upload): the
    /// handshake then answers only which blobs are missing, and the manifest names the others
    /// by digest alone.
    fn server_completes_manifest(&self) -> bool {
        false
    }

    /// Whether small blobs go many to an object ([`Pack`]); `direct` says whether the server
    /// gave a URL straight to storage for them.
    fn packs(&self, direct: bool) -> bool {
        let _ = direct;
        false
    }

    /// Sends a pack straight to storage.
    async fn put_pack(&self, pack: &Pack) -> anyhow::Result<()> {
        let _ = pack;
        anyhow::bail!("this upload sends no packs")
    }

    /// Whether the upload may begin with the whole manifest and the few blobs that may be new
    /// ([`BlobSink::start_whole`]) instead of a handshake.
    fn sends_whole(&self) -> bool {
        false
    }

    /// Begins the upload with the whole manifest (blobs named by digest alone) and `inline`:
    /// `None` when that completed it; else what is still missing, as a handshake answers.
    async fn start_whole(
        &self,
        manifest: &Manifest,
        inline: &[Packed],
    ) -> anyhow::Result<Option<BlobCheckAnswer>> {
        let _ = (manifest, inline);
        anyhow::bail!("this upload begins with a handshake")
    }
}

/// How far the sending of blobs is: files and bytes (of the files themselves) sent of those to
/// send.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub files: u64,
    pub files_total: u64,
    pub bytes: u64,
    pub bytes_total: u64,
}

/// What an upload did.
#[derive(Debug)]
pub struct Uploaded {
    pub manifest: Manifest,
    /// Blobs sent, and the bytes of their files.
    pub sent: usize,
    pub sent_bytes: u64,
    /// Files whose blob the project held already.
    pub reused: usize,
}

/// The digests the last upload of the same files left, and what keeps this one's: they are
/// handed over as soon as every file is described, before anything is sent (they say what the
/// files hold, whatever becomes of the upload).
pub struct Remembered<'a> {
    pub known: Arc<digests::KnownDigests>,
    pub keep: &'a (dyn Fn(digests::KnownDigests) + Send + Sync),
}

/// A file as the manifest will list it, before its variants are known.
struct Described {
    file: OutputFile,
    stamp: digests::Stamp,
    sha256: String,
    content_type: String,
    /// Its digest was read now and is not the one the last upload of it found: its content
    /// may be new to the project (a file rewritten with the same bytes, as builds do, is not).
    fresh: bool,
}

/// Uploads `files` of a deployment by content, then its manifest; `progress` is called as blobs
/// are sent.
pub async fn upload(
    sink: &dyn BlobSink,
    project: &ProjectName,
    deployment: &DeploymentId,
    files: Vec<OutputFile>,
    routing: Routing,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> anyhow::Result<Uploaded> {
    let remembered = Remembered {
        known: Arc::new(digests::KnownDigests::default()),
        keep: &|_| {},
    };
    upload_known(
        sink, project, deployment, files, routing, progress, remembered,
    )
    .await
}

/// [`upload`], reading again only the files whose digests the last upload did not leave.
pub async fn upload_known(
    sink: &dyn BlobSink,
    project: &ProjectName,
    deployment: &DeploymentId,
    files: Vec<OutputFile>,
    routing: Routing,
    progress: &(dyn Fn(Progress) + Send + Sync),
    remembered: Remembered<'_>,
) -> anyhow::Result<Uploaded> {
    let read_at = digests::now_ns();
    let described = describe(files, remembered.known).await?;
    (remembered.keep)(digests::KnownDigests::found(
        read_at,
        described
            .iter()
            .map(|d| (d.file.source.clone(), d.stamp, d.sha256.clone())),
    ));
    // One blob per digest, packed as the first file with it says (its type decides compression).
    let mut wanted: BTreeMap<&str, &Described> = BTreeMap::new();
    for d in &described {
        wanted.entry(d.sha256.as_str()).or_insert(d);
    }
    let missing_only = sink.server_completes_manifest();
    let mut manifest = Manifest {
        project: project.clone(),
        deployment: deployment.clone(),
        created_at: time::OffsetDateTime::now_utc(),
        files: BTreeMap::new(),
        routing,
        layout: FileLayout::Blobs,
    };
    let (answer, inline) = match begin_whole(sink, &wanted, &described, &mut manifest).await? {
        Began::Complete(inline) => {
            let (sent, sent_bytes) = tally_inline(progress, &inline);
            return Ok(Uploaded {
                manifest,
                sent,
                sent_bytes,
                reused: described.len() - sent,
            });
        }
        Began::Missing(answer, inline) => (answer, inline),
        Began::Not => {
            let answer = sink
                .check(&handshake(&wanted, missing_only))
                .await
                .context("asking which files are new")?;
            (answer, Vec::new())
        }
    };
    let mut parts: HashMap<String, BlobParts> = answer.present.clone().into_iter().collect();
    let to_send = to_send(&described, &wanted, &answer, missing_only)?;
    let (inline_sent, inline_bytes) = tally_inline(progress, &inline);
    let sent = to_send.len() + inline_sent;
    let sent_bytes = to_send.iter().map(|(d, _)| d.file.size).sum::<u64>() + inline_bytes;
    let tally = Tally::new(progress, to_send.len() as u64, sent_bytes - inline_bytes);
    let (single, packable) = split_packable(sink, to_send);
    parts.extend(send(sink, single, &tally).await?);
    parts.extend(send_packs(sink, packable, &tally).await?);
    manifest.files = entries(&described, &parts, missing_only)?;
    sink.put_manifest(&manifest)
        .await
        .context("sending the manifest")?;
    Ok(Uploaded {
        manifest,
        sent,
        sent_bytes,
        reused: described.len() - sent,
    })
}

/// The handshake for the blobs `wanted`.
fn handshake(wanted: &BTreeMap<&str, &Described>, missing_only: bool) -> BlobCheck {
    BlobCheck {
        blobs: wanted
            .values()
            .map(|d| BlobWant {
                sha256: d.sha256.clone(),
                size: d.file.size,
            })
            .collect(),
        missing_only,
    }
}

/// How an upload began.
enum Began {
    /// With a handshake (nothing was sent yet).
    Not,
    /// With the whole manifest and these blobs, and that completed it.
    Complete(Vec<Packed>),
    /// With the whole manifest and these blobs; the answer says what is still missing.
    Missing(BlobCheckAnswer, Vec<Packed>),
}

/// Begins the upload of `described` with the whole manifest when the sink takes one and
/// [`whole::goes_whole`] says so; `manifest` gets its files as sent.
async fn begin_whole(
    sink: &dyn BlobSink,
    wanted: &BTreeMap<&str, &Described>,
    described: &[Described],
    manifest: &mut Manifest,
) -> anyhow::Result<Began> {
    if !sink.sends_whole() {
        return Ok(Began::Not);
    }
    let fresh: Vec<&Described> = wanted.values().copied().filter(|d| d.fresh).collect();
    let sizes: Vec<u64> = fresh.iter().map(|d| d.file.size).collect();
    let listing: usize = described
        .iter()
        .map(|d| whole::entry_bytes(&d.file.path, &d.content_type))
        .sum();
    if !whole::goes_whole(listing, &sizes) {
        return Ok(Began::Not);
    }
    // Packed side by side (each compresses on a thread of its own), kept in the files' order.
    let inline: Vec<Packed> = futures_util::stream::iter(fresh)
        .map(pack_one)
        .buffered(FEWEST_PACKED)
        .try_collect()
        .await?;
    manifest.files = entries(described, &HashMap::new(), true)?;
    let answer = sink
        .start_whole(manifest, &inline)
        .await
        .context("starting the deployment")?;
    Ok(match answer {
        None => Began::Complete(inline),
        Some(answer) => Began::Missing(answer, inline),
    })
}

/// Blobs sent with the manifest, told to `progress` as sent: how many, and their files' bytes.
fn tally_inline(progress: &(dyn Fn(Progress) + Send + Sync), inline: &[Packed]) -> (usize, u64) {
    let bytes = inline.iter().map(|p| p.layout.size).sum();
    if !inline.is_empty() {
        let files = inline.len() as u64;
        progress(Progress {
            files,
            files_total: files,
            bytes,
            bytes_total: bytes,
        });
    }
    (inline.len(), bytes)
}

/// The blobs to send one by one, and those to send many to an object: small ones, when the
/// sink packs them and there are enough of them.
fn split_packable<'a>(
    sink: &dyn BlobSink,
    to_send: Vec<(&'a Described, Option<PresignedPut>)>,
) -> (ToSend<'a>, ToSend<'a>) {
    let (packable, mut single): (Vec<_>, Vec<_>) = to_send
        .into_iter()
        .partition(|(d, direct)| sink.packs(direct.is_some()) && d.file.size <= PACKABLE);
    if packable.len() >= FEWEST_PACKED {
        return (single, packable);
    }
    // A few small files go one request each (through the API, for the CLI), no more.
    single.extend(packable.into_iter().map(|(d, _)| (d, None)));
    (single, Vec::new())
}

type ToSend<'a> = Vec<(&'a Described, Option<PresignedPut>)>;

/// The manifest's entry for each file, with where its blob's parts are (left out for blobs the
/// server holds already when it completes the manifest, `by_digest`).
fn entries(
    described: &[Described],
    parts: &HashMap<String, BlobParts>,
    by_digest: bool,
) -> anyhow::Result<BTreeMap<String, ManifestEntry>> {
    described
        .iter()
        .map(|d| {
            let p = match parts.get(&d.sha256) {
                Some(p) => p.clone(),
                None if by_digest => BlobParts::default(),
                None => anyhow::bail!("the server's answer left out a file"),
            };
            let entry = ManifestEntry {
                size: d.file.size,
                content_type: d.content_type.clone(),
                sha256: d.sha256.clone(),
                immutable: crate::fingerprint::is_fingerprinted(&d.file.path),
                br: p.br,
                gzip: p.gzip,
                pack: p.pack,
            };
            Ok((d.file.path.clone(), entry))
        })
        .collect()
}

/// Every file described, in the order given: those whose digest `known` holds at once, the
/// others hashed in a few batches at once, off the async threads.
async fn describe(
    files: Vec<OutputFile>,
    known: Arc<digests::KnownDigests>,
) -> anyhow::Result<Vec<Described>> {
    let describe = |file: OutputFile, sha256: String, fresh: bool| {
        let content_type = content_type::for_path(&file.path);
        Described {
            // Read before the bytes (as the folder was listed): a change while they are read
            // shows next time.
            stamp: file.stamp,
            file,
            sha256,
            content_type,
            fresh,
        }
    };
    let mut described: Vec<Option<Described>> = Vec::with_capacity(files.len());
    let mut unread = Vec::new();
    for file in files {
        match known.get(&file.source, &file.stamp) {
            Some(sha256) => described.push(Some(describe(file, sha256, false))),
            None => {
                unread.push((described.len(), file));
                described.push(None);
            }
        }
    }
    let per_batch = unread.len().div_ceil(PARALLEL).max(1);
    let mut batches = Vec::new();
    let mut unread = unread.into_iter().peekable();
    while unread.peek().is_some() {
        batches.push(unread.by_ref().take(per_batch).collect::<Vec<_>>());
    }
    let hashed: Vec<Vec<(usize, OutputFile, String)>> = futures_util::stream::iter(batches)
        .map(|batch| async move {
            tokio::task::spawn_blocking(move || {
                batch
                    .into_iter()
                    .map(|(at, file)| {
                        let sha256 = pack::sha256_of(&file.source)
                            .with_context(|| format!("reading {}", file.path))?;
                        anyhow::Ok((at, file, sha256))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()
            })
            .await
            .context("hashing task failed")?
        })
        .buffered(4)
        .try_collect()
        .await?;
    for (at, file, sha256) in hashed.into_iter().flatten() {
        let fresh = known.last(&file.source) != Some(sha256.as_str());
        described[at] = Some(describe(file, sha256, fresh));
    }
    Ok(described.into_iter().flatten().collect())
}

/// The blobs the answer says to send, in the order of the files' paths, each with its direct
/// URL if it has one; an answer that leaves a digest out (unless only the missing ones were
/// asked for), or names one not asked about, is refused.
fn to_send<'a>(
    described: &'a [Described],
    wanted: &BTreeMap<&str, &'a Described>,
    answer: &BlobCheckAnswer,
    missing_only: bool,
) -> anyhow::Result<Vec<(&'a Described, Option<PresignedPut>)>> {
    let mut missing: HashMap<&str, Option<PresignedPut>> = HashMap::new();
    for m in &answer.missing {
        if !wanted.contains_key(m.sha256.as_str()) {
            anyhow::bail!(
                "the server asked for a blob never offered: {:.80}",
                m.sha256
            );
        }
        missing.insert(&m.sha256, m.upload.clone());
    }
    let answered = answer.present.len() + missing.len();
    if (answered != wanted.len() && !missing_only)
        || answer
            .present
            .keys()
            .any(|k| !is_sha256(k) || !wanted.contains_key(k.as_str()))
    {
        anyhow::bail!("the server's answer does not cover the files asked about");
    }
    let mut out = Vec::new();
    for d in described {
        if let Some(direct) = missing.remove(d.sha256.as_str()) {
            out.push((d, direct));
        }
    }
    Ok(out)
}

/// How far the sending is, told to `progress` as blobs and packs go.
struct Tally<'a> {
    progress: &'a (dyn Fn(Progress) + Send + Sync),
    files: AtomicU64,
    bytes: AtomicU64,
    files_total: u64,
    bytes_total: u64,
}

impl<'a> Tally<'a> {
    fn new(
        progress: &'a (dyn Fn(Progress) + Send + Sync),
        files_total: u64,
        bytes_total: u64,
    ) -> Self {
        progress(Progress {
            files: 0,
            files_total,
            bytes: 0,
            bytes_total,
        });
        Self {
            progress,
            files: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            files_total,
            bytes_total,
        }
    }

    fn add(&self, files: u64, bytes: u64) {
        (self.progress)(Progress {
            files: self.files.fetch_add(files, Ordering::Relaxed) + files,
            files_total: self.files_total,
            bytes: self.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes,
            bytes_total: self.bytes_total,
        });
    }
}

/// Packs and sends `blobs` each as an object of its own, several at once within the memory
/// budget; where each one's variants are.
async fn send(
    sink: &dyn BlobSink,
    blobs: Vec<(&Described, Option<PresignedPut>)>,
    tally: &Tally<'_>,
) -> anyhow::Result<Vec<(String, BlobParts)>> {
    let budget = Arc::new(tokio::sync::Semaphore::new(
        usize::try_from(MEMORY_BUDGET / 1024).unwrap_or(usize::MAX),
    ));
    futures_util::stream::iter(blobs)
        .map(|(d, direct)| {
            let budget = budget.clone();
            async move {
                let compress = pack::compressible(&d.content_type, d.file.size);
                let held = pack::held_bytes(d.file.size, compress).min(MEMORY_BUDGET);
                let _held = budget
                    .acquire_many_owned(u32::try_from(held.div_ceil(1024)).unwrap_or(u32::MAX))
                    .await
                    .context("the upload's memory budget closed")?;
                let packed = pack_one(d).await?;
                sink.put(&packed, direct.as_ref())
                    .await
                    .with_context(|| format!("uploading {}", d.file.path))?;
                tally.add(1, d.file.size);
                let BlobLayout { br, gzip, .. } = packed.layout;
                let parts = BlobParts {
                    br,
                    gzip,
                    pack: None,
                };
                anyhow::Ok((packed.sha256, parts))
            }
        })
        .buffer_unordered(PARALLEL)
        .try_collect()
        .await
}

/// A file's blob, made off the async threads.
async fn pack_one(d: &Described) -> anyhow::Result<Packed> {
    let compress = pack::compressible(&d.content_type, d.file.size);
    let (source, sha) = (d.file.source.clone(), d.sha256.clone());
    tokio::task::spawn_blocking(move || pack::pack(&source, compress, Some(&sha)))
        .await
        .context("packing task failed")?
        .with_context(|| format!("reading {}", d.file.path))
}

/// Packs made and sent at once.
const PACKS_AT_ONCE: usize = 4;

/// Sends small blobs many to an object: each pack holds its members' blobs one after the
/// other and is named by the SHA-256 of its bytes; where each member is.
async fn send_packs(
    sink: &dyn BlobSink,
    blobs: Vec<(&Described, Option<PresignedPut>)>,
    tally: &Tally<'_>,
) -> anyhow::Result<Vec<(String, BlobParts)>> {
    let mut groups: Vec<Vec<&Described>> = Vec::new();
    let mut bytes = 0;
    for (d, _) in blobs {
        match groups.last_mut() {
            Some(group) if group.len() < PACK_FILES && bytes + d.file.size <= PACK_BYTES => {
                group.push(d);
                bytes += d.file.size;
            }
            _ => {
                groups.push(vec![d]);
                bytes = d.file.size;
            }
        }
    }
    let placed: Vec<Vec<(String, BlobParts)>> = futures_util::stream::iter(groups)
        .map(|group| async move {
            let mut members = Vec::with_capacity(group.len());
            for d in &group {
                members.push(pack_one(d).await?);
            }
            let pack = Pack::of(members)?;
            sink.put_pack(&pack)
                .await
                .context("uploading a pack of small files")?;
            tally.add(group.len() as u64, group.iter().map(|d| d.file.size).sum());
            anyhow::Ok(pack.placed())
        })
        .buffer_unordered(PACKS_AT_ONCE)
        .try_collect()
        .await?;
    Ok(placed.into_iter().flatten().collect())
}

/// Blobs one after the other in one object.
pub struct Pack {
    pub sha256: String,
    pub body: bytes::Bytes,
    /// Each blob's digest, layout and where it starts.
    pub members: Vec<(String, BlobLayout, u64)>,
}

impl Pack {
    fn of(blobs: Vec<Packed>) -> std::io::Result<Self> {
        let mut body = Vec::new();
        let mut members = Vec::with_capacity(blobs.len());
        for blob in blobs {
            let offset = body.len() as u64;
            match blob.body() {
                pack::BlobBody::Bytes(bytes) => body.extend_from_slice(&bytes),
                pack::BlobBody::File { path, .. } => {
                    body.extend_from_slice(&std::fs::read(path)?);
                }
            }
            members.push((blob.sha256, blob.layout, offset));
        }
        let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body));
        Ok(Self {
            sha256,
            body: body.into(),
            members,
        })
    }

    fn placed(&self) -> Vec<(String, BlobParts)> {
        self.members
            .iter()
            .map(|(sha, layout, offset)| {
                let parts = BlobParts {
                    br: layout.br,
                    gzip: layout.gzip,
                    pack: Some(crate::layout::InPack {
                        sha256: self.sha256.clone(),
                        offset: *offset,
                    }),
                };
                (sha.clone(), parts)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::{Duration, SystemTime};

    use super::*;

    /// Keeps what it is sent; as the manifest goes, `edit` runs, as a person saving a file
    /// late in an upload.
    struct Keeping {
        edit: Box<dyn Fn() + Send + Sync>,
        blobs: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl BlobSink for Keeping {
        async fn check(&self, check: &BlobCheck) -> anyhow::Result<BlobCheckAnswer> {
            Ok(BlobCheckAnswer {
                missing: check
                    .blobs
                    .iter()
                    .map(|b| crate::wire::MissingBlob {
                        sha256: b.sha256.clone(),
                        upload: None,
                    })
                    .collect(),
                ..Default::default()
            })
        }

        async fn put(&self, blob: &Packed, _: Option<&PresignedPut>) -> anyhow::Result<()> {
            crate::sync::lock(&self.blobs).push(blob.sha256.clone());
            Ok(())
        }

        async fn put_manifest(&self, _: &Manifest) -> anyhow::Result<()> {
            (self.edit)();
            Ok(())
        }
    }

    fn set_modified(path: &std::path::Path, ago: Duration) {
        set_modified_at(path, SystemTime::now() - ago);
    }

    fn set_modified_at(path: &std::path::Path, when: SystemTime) {
        std::fs::File::options()
            .write(true)
            .open(path)
            .and_then(|f| f.set_modified(when))
            .expect("set mtime");
    }

    /// Waits until files written now have settled: their change time, which no program sets
    /// back, is then well before the next reading.
    fn settle() {
        std::thread::sleep(Duration::from_millis(250));
    }

    #[tokio::test]
    async fn a_file_changed_during_an_upload_is_read_again_the_next_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (page, other) = (dir.path().join("page.html"), dir.path().join("other.html"));
        std::fs::write(&page, "before").expect("write");
        std::fs::write(&other, "stays").expect("write");
        set_modified(&page, Duration::from_secs(60));
        set_modified(&other, Duration::from_secs(60));
        settle();
        let edited = page.clone();
        let sink = Keeping {
            // Same size, and a time that looks settled by the end of the upload.
            edit: Box::new(move || {
                std::fs::write(&edited, "after!").expect("write");
                set_modified(&edited, Duration::from_secs(10));
            }),
            blobs: Mutex::new(Vec::new()),
        };
        let kept = upload_with(dir.path(), digests::KnownDigests::default(), &sink).await;
        let stamp = |p: &std::path::Path| digests::Stamp::of(p).expect("stamp");
        assert_eq!(
            kept.get(&page, &stamp(&page)),
            None,
            "the edit made during the upload must be read next time"
        );
        assert_eq!(
            kept.get(&other, &stamp(&other)),
            Some(pack::sha256_of(&other).expect("hash"))
        );
    }

    /// Begins with the whole manifest, as the CLI does, and keeps the digests sent with it.
    #[derive(Default)]
    struct Whole {
        inline: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl BlobSink for Whole {
        async fn check(&self, check: &BlobCheck) -> anyhow::Result<BlobCheckAnswer> {
            Keeping {
                edit: Box::new(|| {}),
                blobs: Mutex::new(Vec::new()),
            }
            .check(check)
            .await
        }

        async fn put(&self, _: &Packed, _: Option<&PresignedPut>) -> anyhow::Result<()> {
            Ok(())
        }

        async fn put_manifest(&self, _: &Manifest) -> anyhow::Result<()> {
            Ok(())
        }

        fn server_completes_manifest(&self) -> bool {
            true
        }

        fn sends_whole(&self) -> bool {
            true
        }

        async fn start_whole(
            &self,
            _: &Manifest,
            inline: &[Packed],
        ) -> anyhow::Result<Option<BlobCheckAnswer>> {
            let mut sent = crate::sync::lock(&self.inline);
            sent.extend(inline.iter().map(|blob| blob.sha256.clone()));
            sent.push("--".into());
            Ok(None)
        }
    }

    /// Uploads `dir` to `sink` knowing `known`: the digests this upload keeps.
    async fn upload_with(
        dir: &std::path::Path,
        known: digests::KnownDigests,
        sink: &dyn BlobSink,
    ) -> digests::KnownDigests {
        let (files, _) = collect(dir, UploadLimits::default()).expect("collect");
        let kept = Mutex::new(None);
        let remembered = Remembered {
            known: Arc::new(known),
            keep: &|found| *crate::sync::lock(&kept) = Some(found),
        };
        let project = "site".parse().expect("name");
        let id = "abcdefgh1234".parse().expect("id");
        upload_known(
            sink,
            &project,
            &id,
            files,
            Routing::default(),
            &|_| {},
            remembered,
        )
        .await
        .expect("upload");
        crate::sync::lock(&kept)
            .take()
            .expect("the digests were kept")
    }

    /// A build writes every file again though one page changed: each is read again, and only
    /// the page goes with the whole manifest; a file that is new to this machine goes too.
    #[tokio::test]
    async fn files_written_again_with_the_same_bytes_are_not_sent_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let write_all = |changed: &str| {
            for i in 0..20 {
                let body = format!("page {i} {}", if i == 3 { changed } else { "" });
                let path = dir.path().join(format!("p{i}.html"));
                std::fs::write(&path, body).expect("write");
                set_modified(&path, Duration::from_secs(60));
            }
        };
        write_all("");
        let sink = Whole::default();
        let first = upload_with(dir.path(), digests::KnownDigests::default(), &sink).await;
        assert!(
            crate::sync::lock(&sink.inline).is_empty(),
            "twenty files new to this machine begin with a handshake"
        );
        write_all("changed");
        std::fs::write(dir.path().join("new.html"), "new").expect("write");
        set_modified(&dir.path().join("new.html"), Duration::from_secs(60));
        upload_with(dir.path(), first, &sink).await;
        let digest = |name: &str| pack::sha256_of(&dir.path().join(name)).expect("hash");
        let mut want = vec![digest("new.html"), digest("p3.html")];
        want.sort();
        let mut sent = crate::sync::lock(&sink.inline).clone();
        assert_eq!(sent.pop().as_deref(), Some("--"), "one whole start");
        sent.sort();
        assert_eq!(sent, want);
    }

    /// A file rewritten in place with as many bytes and its modification time put back (as
    /// reproducible builds and `cp -p` leave files) is read again: the manifest names what it
    /// holds now, and it goes with the manifest.
    #[tokio::test]
    async fn a_rewrite_with_its_time_put_back_is_read_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let page = dir.path().join("index.html");
        let fixed = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let write = |body: &str| {
            std::fs::write(&page, body).expect("write");
            set_modified_at(&page, fixed);
        };
        write("<script src=app.1111.js>");
        settle();
        let sink = Whole::default();
        let first = upload_with(dir.path(), digests::KnownDigests::default(), &sink).await;
        let stamp = |p: &std::path::Path| digests::Stamp::of(p).expect("stamp");
        let before = stamp(&page);
        assert!(first.get(&page, &before).is_some(), "settled, and trusted");
        write("<script src=app.2222.js>");
        upload_with(dir.path(), first, &sink).await;
        let mut sent = crate::sync::lock(&sink.inline).clone();
        assert_eq!(sent.pop().as_deref(), Some("--"), "the second start");
        assert_eq!(
            sent.last(),
            Some(&pack::sha256_of(&page).expect("hash")),
            "what the page holds now goes with the manifest"
        );
    }
}
