//! `scalemesh deploy <folder> --prebuilt`: a folder deployed as it is, with no install, no build
//! and no unpacking on the server. Every file is hashed, the server says which blobs the project
//! lacks, only those are sent (through the API, or straight to S3 with URLs the server
//! presigned), then the manifest; the deployment goes live as a built one does. A run cut off is
//! resumed by running it again: blobs stored already are not sent twice.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::Context;
use async_trait::async_trait;
use scalemesh_core::layout::InPack;
use scalemesh_core::layout::Manifest;
use scalemesh_core::rules::Routing;
use scalemesh_core::site_config::{BuildSettings, SITE_CONFIG_FILE};
use scalemesh_core::upload::digests::KnownDigests;
use scalemesh_core::upload::pack::BlobBody;
use scalemesh_core::upload::pack::Packed;
use scalemesh_core::upload::{self, BlobSink, OutputFile, UploadLimits, Uploaded};
use scalemesh_core::wire::{
    BlobCheck, BlobCheckAnswer, BlobWant, BuilderReport, Deployment, InlineBlob, PackRequest,
    PrebuiltStarted, PresignedPut, Project, StartPrebuilt, StoredBlob,
};
use scalemesh_core::words::{human_bytes, plural};

use crate::client::Client;
use crate::display::DeployView;
use crate::error::CliError;

/// Blobs sent straight to storage are reported to the server this many at a time, so a run cut
/// off loses at most this many.
const REPORT_EVERY: usize = 100;

/// A prebuilt folder's files and routing rules, read before anything exists on the server.
pub struct Folder {
    files: Vec<OutputFile>,
    routing: Routing,
    bytes: u64,
    /// The digests of the last upload of this folder, and where they are kept.
    known: KnownDigests,
    known_at: PathBuf,
}

/// Reads `dir` as a site: its files (as a builder reads an output folder), the rules of its
/// `_redirects`, `_headers` and `scalemesh.json`, which are not served; and, meanwhile, the
/// digests this machine (its Scale Mesh folder `data_dir`) remembers of its last upload.
pub fn read(dir: &Path, data_dir: &Path) -> anyhow::Result<Folder> {
    let known_at = digests_file(data_dir, &dir.canonicalize().unwrap_or_else(|_| dir.into()));
    std::thread::scope(|scope| {
        let known = scope.spawn(|| KnownDigests::load(&known_at));
        let folder = read_files(dir)?;
        let known = known.join().unwrap_or_default();
        Ok(Folder {
            known,
            known_at: known_at.clone(),
            ..folder
        })
    })
}

fn read_files(dir: &Path) -> anyhow::Result<Folder> {
    let (mut files, skipped) = upload::collect(dir, UploadLimits::default())
        .map_err(|e| CliError::new(format!("{e:#}")).hint("deploy a folder of a site's files"))?;
    for line in skipped {
        eprintln!("{line}");
    }
    let config = match files.iter().position(|f| f.path == SITE_CONFIG_FILE) {
        Some(at) => {
            let file = files.remove(at);
            let text = std::fs::read_to_string(&file.source)
                .with_context(|| format!("reading {}", file.source.display()))?;
            BuildSettings::from_json(&text)
                .map_err(|e| {
                    CliError::new(format!("{} is not valid: {e}", file.source.display())).hint(
                        format!("fix {SITE_CONFIG_FILE} and deploy again (nothing was uploaded)"),
                    )
                })?
                .1
        }
        None => Routing::default(),
    };
    let routing = upload::take_routing(&mut files, config).map_err(|e| {
        CliError::new(format!("{e:#}")).hint("fix the file and deploy again (nothing was uploaded)")
    })?;
    if files.is_empty() {
        return Err(
            CliError::new(format!("{} has no files to deploy", dir.display()))
                .hint("give the folder your build writes, e.g. scalemesh deploy ./dist --prebuilt")
                .into(),
        );
    }
    if !files.iter().any(|f| f.path == "index.html") {
        eprintln!(
            "warning: {} has no index.html; its address answers 404 at /",
            dir.display()
        );
    }
    let bytes = files.iter().map(|f| f.size).sum();
    Ok(Folder {
        files,
        routing,
        bytes,
        known: KnownDigests::default(),
        known_at: PathBuf::new(),
    })
}

/// Deploys `folder` to `project`: the deployment as it ends (ready, or failed with why). The
/// deployment is started with the handshake, and made ready with the manifest: a redeploy of a
/// folder that changed a little takes few round trips.
pub async fn deploy(
    client: &Client,
    view: &DeployView,
    project: &Project,
    folder: Folder,
    promote: bool,
) -> anyhow::Result<Deployment> {
    let sink = Sink::new(client, view, project, promote, &folder);
    let began = Instant::now();
    let progress = |p: upload::Progress| view.upload(p);
    // Only files changed since the last upload of this folder are read; what this reading
    // found is saved (for the next) while the files go up.
    let saved = folder.known_at;
    let saving = Mutex::new(None);
    let keep = |digests: KnownDigests| {
        let at = saved.clone();
        let handle = std::thread::spawn(move || digests.save(&at));
        *scalemesh_core::sync::lock(&saving) = Some(handle);
    };
    let remembered = upload::Remembered {
        known: std::sync::Arc::new(folder.known),
        keep: &keep,
    };
    // The manifest names the deployment the sink started; this one is never sent.
    let unnamed = scalemesh_core::DeploymentId::generate();
    let uploading = upload::upload_known(
        &sink,
        &project.name,
        &unnamed,
        folder.files,
        folder.routing,
        &progress,
        remembered,
    );
    let uploaded = tokio::select! {
        uploaded = uploading => uploaded,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("the upload was interrupted")),
    };
    // A digest not saved is only read again next time.
    let handle = scalemesh_core::sync::lock(&saving).take();
    if let Some(handle) = handle {
        let _ = tokio::task::spawn_blocking(move || handle.join()).await;
    }
    let uploaded = match uploaded {
        Ok(uploaded) => uploaded,
        Err(e) => return Err(cut_off(&sink, view, &e).await),
    };
    let Uploaded {
        sent,
        sent_bytes,
        reused,
        ..
    } = uploaded;
    view.note(&format!(
        "Uploaded {} ({}) in {:.1}s, {} already stored",
        plural(sent as u64, "new file"),
        human_bytes(sent_bytes),
        began.elapsed().as_secs_f64(),
        reused
    ));
    scalemesh_core::sync::lock(&sink.ended)
        .take()
        .context("the server did not say how the deployment ended")
}

/// Fails a deployment whose upload was cut off by `e`, keeping what went up (so running the
/// command again skips it): the error to show.
async fn cut_off(sink: &Sink<'_>, view: &DeployView, e: &anyhow::Error) -> anyhow::Error {
    view.finish();
    let reason = format!("{e:#}");
    let Some(started) = sink.started.get() else {
        return CliError::new(format!("the deployment could not start: {reason}"))
            .hint("run the same command again")
            .into();
    };
    let _ = sink.flush().await;
    let failed = BuilderReport::Failed {
        reason: reason.clone(),
    };
    let _ = started.job.report(&started.deployment, &failed).await;
    CliError::new(format!(
        "deployment {} failed: {reason}",
        started.deployment
    ))
    .hint("run the same command again: files already stored are not sent again")
    .into()
}

/// Where the digests of the last upload of `dir` are kept: one file per folder, named by a
/// digest of its path, in this machine's Scale Mesh folder.
fn digests_file(data_dir: &Path, dir: &Path) -> PathBuf {
    use sha2::Digest;
    let name = hex::encode(sha2::Sha256::digest(dir.as_os_str().as_encoded_bytes()));
    data_dir
        .join("digests")
        .join(format!("{}.txt", &name[..32]))
}

/// Where a prebuilt deploy's pieces go: the API, with the deployment's job token, or storage
/// straight, where the server presigned a URL. The deployment is started by the handshake.
struct Sink<'a> {
    /// With the user's token, to start the deployment.
    client: Client,
    project: String,
    promote: bool,
    started: std::sync::OnceLock<Started>,
    /// Blobs stored straight to storage and not yet reported.
    stored: Mutex<Vec<StoredBlob>>,
    /// The deployment as it ended, answered with the manifest.
    ended: Mutex<Option<Deployment>>,
    on_start: Box<dyn Fn(&Deployment) + Send + Sync + 'a>,
}

/// The deployment the handshake started, and the client with its job token.
struct Started {
    job: Client,
    deployment: String,
}

impl<'a> Sink<'a> {
    /// A sink for `folder` to `project`, telling `view` when the deployment starts.
    fn new(
        client: &Client,
        view: &'a DeployView,
        project: &Project,
        promote: bool,
        folder: &Folder,
    ) -> Self {
        let what = format!(
            "{} ({}), prebuilt",
            plural(folder.files.len() as u64, "file"),
            human_bytes(folder.bytes)
        );
        Self {
            client: client.clone(),
            project: project.name.to_string(),
            promote,
            started: std::sync::OnceLock::new(),
            stored: Mutex::new(Vec::new()),
            ended: Mutex::new(None),
            on_start: Box::new(move |dep: &Deployment| {
                view.note(&format!(
                    "Deploying {} (deployment {}): {what}",
                    dep.project, dep.id
                ));
            }),
        }
    }

    /// Starts the deployment with `body`; the answer, once the deployment is named.
    async fn start(&self, body: &StartPrebuilt) -> anyhow::Result<PrebuiltStarted> {
        let started = self
            .client
            .start_prebuilt(&self.project, body)
            .await
            .map_err(|e| self.client.explain(e))?;
        (self.on_start)(&started.deployment);
        let _ = self.started.set(Started {
            job: self.client.with_token(&started.job_token),
            deployment: started.deployment.id.to_string(),
        });
        Ok(started)
    }

    fn started(&self) -> anyhow::Result<&Started> {
        self.started
            .get()
            .context("the deployment was not started before its files were sent")
    }

    async fn flush(&self) -> anyhow::Result<()> {
        let batch = std::mem::take(&mut *scalemesh_core::sync::lock(&self.stored));
        if batch.is_empty() {
            return Ok(());
        }
        let started = self.started()?;
        let absent = started.job.blobs_stored(&started.deployment, batch).await?;
        if let Some(sha) = absent.first() {
            anyhow::bail!("storage does not hold blob {sha} after it was sent");
        }
        Ok(())
    }
}

#[async_trait]
impl BlobSink for Sink<'_> {
    /// Starts the deployment with the handshake.
    async fn check(&self, check: &BlobCheck) -> anyhow::Result<BlobCheckAnswer> {
        let body = StartPrebuilt {
            promote: Some(self.promote),
            blobs: Some(check.clone()),
            ..StartPrebuilt::default()
        };
        let started = self.start(&body).await?;
        started
            .check
            .context("the server started the deployment without answering the handshake")
    }

    fn sends_whole(&self) -> bool {
        true
    }

    /// Starts the deployment with the whole manifest and the blobs that may be new: one request
    /// when the project holds the others.
    async fn start_whole(
        &self,
        manifest: &Manifest,
        inline: &[Packed],
    ) -> anyhow::Result<Option<BlobCheckAnswer>> {
        let inline = inline
            .iter()
            .map(|blob| match blob.body() {
                BlobBody::Bytes(bytes) => Ok(InlineBlob::new(&blob.sha256, blob.layout, &bytes)),
                BlobBody::File { .. } => anyhow::bail!("a large file cannot go with the manifest"),
            })
            .collect::<anyhow::Result<_>>()?;
        let body = StartPrebuilt {
            promote: Some(self.promote),
            manifest: Some(manifest.clone()),
            inline,
            ..StartPrebuilt::default()
        };
        let started = self.start(&body).await?;
        if started.complete {
            *scalemesh_core::sync::lock(&self.ended) = Some(started.deployment);
            return Ok(None);
        }
        started
            .check
            .map(Some)
            .context("the server started the deployment without saying what it lacks")
    }

    async fn put(&self, blob: &Packed, direct: Option<&PresignedPut>) -> anyhow::Result<()> {
        let body = blob.body();
        let started = self.started()?;
        let Some(direct) = direct else {
            started
                .job
                .put_blob(&started.deployment, &blob.sha256, blob.layout, &body)
                .await?;
            return Ok(());
        };
        started.job.put_direct(direct, &body).await?;
        let full = {
            let mut stored = scalemesh_core::sync::lock(&self.stored);
            stored.push(StoredBlob {
                sha256: blob.sha256.clone(),
                size: blob.layout.size,
                br: blob.layout.br,
                gzip: blob.layout.gzip,
                pack: None,
            });
            stored.len() >= REPORT_EVERY
        };
        if full {
            self.flush().await?;
        }
        Ok(())
    }

    fn packs(&self, direct: bool) -> bool {
        direct
    }

    fn server_completes_manifest(&self) -> bool {
        true
    }

    async fn put_pack(&self, pack: &upload::Pack) -> anyhow::Result<()> {
        let request = PackRequest {
            packs: vec![BlobWant {
                sha256: pack.sha256.clone(),
                size: pack.body.len() as u64,
            }],
        };
        let started = self.started()?;
        let answer = started
            .job
            .pack_uploads(&started.deployment, &request)
            .await?;
        let direct = answer
            .uploads
            .first()
            .context("the server gave no URL for a pack")?;
        let body = BlobBody::Bytes(pack.body.clone());
        started.job.put_direct(direct, &body).await?;
        let members = pack
            .members
            .iter()
            .map(|(sha256, layout, offset)| StoredBlob {
                sha256: sha256.clone(),
                size: layout.size,
                br: layout.br,
                gzip: layout.gzip,
                pack: Some(InPack {
                    sha256: pack.sha256.clone(),
                    offset: *offset,
                }),
            })
            .collect();
        let absent = started
            .job
            .blobs_stored(&started.deployment, members)
            .await?;
        if let Some(sha) = absent.first() {
            anyhow::bail!("storage does not hold blob {sha} after its pack was sent");
        }
        Ok(())
    }

    /// Sends the manifest, naming the deployment started, and with it says the upload is
    /// complete.
    async fn put_manifest(&self, manifest: &Manifest) -> anyhow::Result<()> {
        self.flush().await?;
        let started = self.started()?;
        let mut named = manifest.clone();
        named.deployment = scalemesh_core::DeploymentId::parse(&started.deployment)?;
        let bytes = serde_json::to_vec(&named)?;
        let ended = started
            .job
            .put_manifest_ready(&started.deployment, bytes)
            .await
            .map_err(|e| self.client.explain(e))?;
        *scalemesh_core::sync::lock(&self.ended) = Some(ended);
        Ok(())
    }
}
