//! The builder's uploader on its own, for the upload benchmark (`bench/s3.sh`):
//!
//!     upload <folder> --storage s3://bucket/prefix/ [--s3-endpoint URL] [--project P] [--live]
//!
//! Uploads the folder as a new deployment of the project (files, then the manifest; with
//! `--live`, then the production alias) and prints what it did and how long it took.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use scalemesh_builder::upload::{self, UploadLimits};
use scalemesh_core::layout::{self, Route};
use scalemesh_core::storage::{self, Body, ObjectMeta, StorageOptions, StorageUrl};
use scalemesh_core::{DeploymentId, ProjectName};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut folder = None;
    let (mut storage_url, mut endpoint, mut project, mut live) =
        (None, None, "bench".to_owned(), false);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--storage" => storage_url = args.next(),
            "--s3-endpoint" => endpoint = args.next(),
            "--project" => project = args.next().context("--project needs a name")?,
            "--live" => live = true,
            _ => folder = Some(arg),
        }
    }
    let folder = folder.context("give the folder to upload")?;
    let url = StorageUrl::parse(&storage_url.context("give --storage")?)?;
    let storage = storage::open(
        &url,
        &StorageOptions {
            s3_endpoint: endpoint,
        },
    )
    .await?;
    let project = ProjectName::parse(&project)?;
    let deployment = DeploymentId::generate();

    let started = Instant::now();
    let (files, _) = upload::collect(folder.as_ref(), UploadLimits::default())?;
    let bytes: u64 = files.iter().map(|f| f.size).sum();
    let count = files.len();
    let manifest = upload::upload(
        Arc::clone(&storage),
        &project,
        &deployment,
        files,
        Default::default(),
        |_, _| {},
    )
    .await?;
    upload::publish(storage.as_ref(), &project, &deployment).await?;
    let seconds = started.elapsed().as_secs_f64();
    if live {
        let route = Route {
            project: project.clone(),
            deployment: deployment.clone(),
            updated_at: time::OffsetDateTime::now_utc(),
        };
        storage
            .put(
                &layout::route(&project),
                Body::Bytes(serde_json::to_vec(&route)?.into()),
                &ObjectMeta::default(),
            )
            .await?;
    }
    println!(
        "{{\"deployment\":\"{deployment}\",\"files\":{count},\"bytes\":{bytes},\"seconds\":{seconds:.4},\"manifest_files\":{}}}",
        manifest.files.len()
    );
    Ok(())
}
