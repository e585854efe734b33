//! What the proxy's test binaries share: sites uploaded by the builder's own uploader, and
//! requests the way a client on the wire sends them.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::http::Version;
use bytes::Bytes;
use scalemesh_builder::upload::{self, UploadLimits};
use scalemesh_core::layout::FileLayout;
use scalemesh_core::layout::{self, Route};
use scalemesh_core::rules::Routing;
use scalemesh_core::storage::{Body, ObjectMeta, Storage};
use scalemesh_core::{DeploymentId, ProjectName};

/// Uploads the folder `dir` as a new deployment of `project`, as a build does: the builder's
/// own collection, routing rules, compressed variants, files and then the manifest.
pub async fn upload_folder(
    storage: &Arc<dyn Storage>,
    project: &ProjectName,
    dir: &Path,
) -> DeploymentId {
    upload_folder_as(storage, project, dir, FileLayout::Blobs).await
}

/// [`upload_folder`] stored in `layout`: by content, or in the deployment's own folder as
/// deployments made before blobs are.
#[allow(dead_code)] // not every test binary stores both ways
pub async fn upload_folder_as(
    storage: &Arc<dyn Storage>,
    project: &ProjectName,
    dir: &Path,
    layout: FileLayout,
) -> DeploymentId {
    let id = DeploymentId::generate();
    let (mut files, _) = upload::collect(dir, UploadLimits::default()).expect("collect");
    let routing = upload::take_routing(&mut files, Routing::default()).expect("rules");
    match layout {
        FileLayout::Blobs => {
            upload::upload(storage.clone(), project, &id, files, routing, |_, _| {})
                .await
                .expect("upload")
        }
        FileLayout::Folders => upload::in_folders(storage.clone(), project, &id, files, routing)
            .await
            .expect("upload"),
    };
    upload::publish(storage.as_ref(), project, &id)
        .await
        .expect("publish");
    id
}

/// [`upload_folder`] of a folder holding `files` (path, body).
#[allow(dead_code)] // not every test binary deploys from a list
pub async fn deploy(
    storage: &Arc<dyn Storage>,
    project: &ProjectName,
    files: &[(&str, &[u8])],
) -> DeploymentId {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, body) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, body).expect("write");
    }
    upload_folder(storage, project, dir.path()).await
}

/// Points `project`'s production alias at `id`, as the server does when a build goes live.
pub async fn go_live(storage: &dyn Storage, project: &ProjectName, id: &DeploymentId) {
    let route = Route {
        project: project.clone(),
        deployment: id.clone(),
        updated_at: time::OffsetDateTime::now_utc(),
    };
    put_json(storage, &layout::route(project), &route).await;
}

/// Writes `value` as JSON at `key`.
pub async fn put_json(storage: &dyn Storage, key: &str, value: &impl serde::Serialize) {
    storage
        .put(
            key,
            Body::Bytes(Bytes::from(serde_json::to_vec(value).expect("json"))),
            &ObjectMeta::default(),
        )
        .await
        .expect("put");
}

/// One HTTP/2 `GET` of `uri` with prior knowledge, on a new connection to `addr` (`h2_client`):
/// the response's version, status and body.
#[allow(dead_code)] // the edge tests keep their connection for a second request
pub async fn h2_get(addr: SocketAddr, uri: &str) -> (Version, u16, Bytes) {
    h2_send(&mut h2_client(addr).await, uri).await
}

/// An HTTP/2 connection to `addr` with prior knowledge, from a client that takes frames of up
/// to 1 MiB and windows of 4 MiB (so DATA frames may be large).
pub async fn h2_client(
    addr: SocketAddr,
) -> hyper::client::conn::http2::SendRequest<axum::body::Body> {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (sender, conn) =
        hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .max_frame_size(1 << 20)
            .initial_stream_window_size(4 << 20)
            .initial_connection_window_size(4 << 20)
            .handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    sender
}

/// One `GET` of `uri` on `sender`'s connection: the response's version, status and body.
pub async fn h2_send(
    sender: &mut hyper::client::conn::http2::SendRequest<axum::body::Body>,
    uri: &str,
) -> (Version, u16, Bytes) {
    let req = axum::http::Request::builder()
        .uri(uri)
        .body(axum::body::Body::empty())
        .expect("request");
    let res = sender.send_request(req).await.expect("h2 response");
    let (version, status) = (res.version(), res.status().as_u16());
    let body = axum::body::to_bytes(axum::body::Body::new(res.into_body()), usize::MAX)
        .await
        .expect("h2 body");
    (version, status, body)
}

/// One HTTP/1.1 `GET` of `path` exactly as written (an HTTP client would normalise `..` and
/// `%2e%2e` away before sending), on a new connection to `addr`: the status (0 when the
/// connection closed without an answer) and the body.
#[allow(dead_code)] // not every test binary sends raw requests
pub async fn get_raw(addr: SocketAddr, host: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .expect("send");
    let mut bytes = Vec::new();
    s.read_to_end(&mut bytes).await.expect("read");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}
