//! The endpoints of a prebuilt deploy: its start (with the user's token), then, with the job
//! token it hands out, the digest handshake, blobs sent through the API or straight to storage,
//! the manifest and the final report.

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use reqwest::{Method, RequestBuilder};
use scalemesh_core::upload::pack::BlobBody;
use scalemesh_core::wire::{
    BlobLayout, BlobsAbsent, BlobsStored, BuilderReport, Deployment, PrebuiltStarted, PresignedPut,
    StartPrebuilt, StoredBlob,
};
use sha2::{Digest, Sha256};

use super::{Client, ClientError, api, query};

impl Client {
    /// Starts a prebuilt deployment, with its handshake, or its whole manifest and a few
    /// blobs.
    pub async fn start_prebuilt(
        &self,
        project: &str,
        body: &StartPrebuilt,
    ) -> Result<PrebuiltStarted, ClientError> {
        self.send(
            self.request(Method::POST, &api(&["projects", project, "prebuilt"]))
                .json(body),
        )
        .await
    }

    /// With the job token: one blob, through the API.
    pub async fn put_blob(
        &self,
        deployment: &str,
        sha256: &str,
        layout: BlobLayout,
        body: &BlobBody,
    ) -> Result<(), ClientError> {
        let size = layout.size.to_string();
        let (br, gzip) = (
            layout.br.map(|n| n.to_string()),
            layout.gzip.map(|n| n.to_string()),
        );
        let mut params = vec![("size", size.as_str())];
        if let Some(br) = &br {
            params.push(("br", br));
        }
        if let Some(gzip) = &gzip {
            params.push(("gzip", gzip));
        }
        let path = query(api(&["deployments", deployment, "blobs", sha256]), &params);
        let req = self
            .request(Method::PUT, &path)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream");
        self.send_raw(with_body(req, body).await?).await?;
        Ok(())
    }

    /// One blob (or pack) straight to storage, as the server presigned it (no token of ours
    /// goes there).
    pub async fn put_direct(&self, put: &PresignedPut, body: &BlobBody) -> Result<(), ClientError> {
        let mut req = self.http.request(Method::PUT, &put.url);
        for (name, value) in &put.headers {
            req = req.header(name, value);
        }
        let res = with_body(req, body)
            .await?
            .send()
            .await
            .map_err(|e| ClientError::Storage {
                url: origin(&put.url),
                // Never the URL itself: its query is a credential.
                reason: super::root_cause(&e.without_url()),
            })?;
        if res.status().is_success() {
            return Ok(());
        }
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        Err(ClientError::Storage {
            url: origin(&put.url),
            reason: format!("it answered {status}{}", s3_error(&text)),
        })
    }

    /// With the job token: blobs stored straight to storage, recorded so a second run of an
    /// interrupted deploy skips them.
    pub async fn blobs_stored(
        &self,
        deployment: &str,
        blobs: Vec<StoredBlob>,
    ) -> Result<Vec<String>, ClientError> {
        let body = BlobsStored { blobs };
        let absent: BlobsAbsent = self
            .send(
                self.request(
                    Method::POST,
                    &api(&["deployments", deployment, "blobs", "stored"]),
                )
                .json(&body),
            )
            .await?;
        Ok(absent.absent)
    }

    /// With the job token: URLs straight to storage for packs of small blobs.
    pub async fn pack_uploads(
        &self,
        deployment: &str,
        request: &scalemesh_core::wire::PackRequest,
    ) -> Result<scalemesh_core::wire::PackUploads, ClientError> {
        self.send(
            self.request(Method::POST, &api(&["deployments", deployment, "packs"]))
                .json(request),
        )
        .await
    }

    /// With the job token: the manifest, and with it the upload is done; the deployment as it
    /// ended.
    pub async fn put_manifest_ready(
        &self,
        deployment: &str,
        manifest: Vec<u8>,
    ) -> Result<Deployment, ClientError> {
        let path = query(
            api(&["deployments", deployment, "manifest"]),
            &[("ready", "true")],
        );
        self.send(
            self.request(Method::PUT, &path)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(manifest),
        )
        .await
    }

    /// With the job token: the upload is done (`Ready`) or given up (`Failed`).
    pub async fn report(
        &self,
        deployment: &str,
        report: &BuilderReport,
    ) -> Result<Deployment, ClientError> {
        self.send(
            self.request(Method::POST, &api(&["deployments", deployment, "report"]))
                .json(report),
        )
        .await
    }

    pub async fn update_project(
        &self,
        project: &str,
        body: &scalemesh_core::wire::UpdateProject,
    ) -> Result<scalemesh_core::wire::Project, ClientError> {
        self.send(
            self.request(Method::PATCH, &api(&["projects", project]))
                .json(body),
        )
        .await
    }

    /// Removes a finished deployment that is not production.
    pub async fn remove_deployment(&self, id: &str) -> Result<(), ClientError> {
        self.send_raw(self.request(Method::DELETE, &api(&["deployments", id])))
            .await?;
        Ok(())
    }
}

/// `: <Code>: <Message>` of an S3 error document, and nothing else of it (a signature error
/// carries the string that was signed).
fn s3_error(xml: &str) -> String {
    let field = |name: &str| {
        let open = format!("<{name}>");
        let start = xml.find(&open)? + open.len();
        let end = xml[start..].find('<')? + start;
        Some(xml[start..end].chars().take(200).collect::<String>())
    };
    match (field("Code"), field("Message")) {
        (Some(code), Some(message)) => format!(": {code}: {message}"),
        (Some(code), None) => format!(": {code}"),
        _ => String::new(),
    }
}

/// The scheme and host of a presigned URL: its query is a credential, never printed.
fn origin(url: &str) -> String {
    url::Url::parse(url).map_or_else(
        |_| "storage".to_owned(),
        |u| format!("{}://{}", u.scheme(), u.host_str().unwrap_or("")),
    )
}

/// `req` with a blob's body: bytes in memory, or a file streamed from disk with its length
/// (storage services refuse a presigned PUT of unknown length), checked as it goes against the
/// digest it was hashed with.
async fn with_body(req: RequestBuilder, body: &BlobBody) -> Result<RequestBuilder, ClientError> {
    let (path, sha256, size) = match body {
        BlobBody::Bytes(bytes) => return Ok(req.body(bytes.clone())),
        BlobBody::File { path, sha256, size } => (path, sha256, *size),
    };
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| ClientError::Decode(format!("reading {}: {e}", path.display())))?;
    let chunks = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
    let what = path.display().to_string();
    Ok(req
        .header(reqwest::header::CONTENT_LENGTH, size)
        .body(reqwest::Body::wrap_stream(checked(
            chunks,
            sha256.to_owned(),
            size,
            what,
        ))))
}

/// What reads a file's `chunks` while they are sent.
struct Checking<S> {
    chunks: S,
    sha256: String,
    size: u64,
    what: String,
    hasher: Sha256,
    read: u64,
    held: Option<Bytes>,
    ended: bool,
}

/// The `chunks` of a file (`what`) that was hashed before it was sent, each passed on once the
/// next is read: the last only when the whole has `size` bytes and the digest `sha256`, and an
/// error in its place when not. A receiver of a file changed since it was hashed never gets
/// all of its bytes, so storage never keeps other bytes under its digest.
fn checked(
    chunks: impl Stream<Item = std::io::Result<Bytes>> + Send + Unpin + 'static,
    sha256: String,
    size: u64,
    what: String,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let start = Checking {
        chunks,
        sha256,
        size,
        what,
        hasher: Sha256::new(),
        read: 0,
        held: None,
        ended: false,
    };
    futures_util::stream::unfold(start, |mut at| async move {
        while !at.ended {
            match at.chunks.next().await {
                Some(Ok(chunk)) => {
                    at.hasher.update(&chunk);
                    at.read += chunk.len() as u64;
                    if let Some(before) = at.held.replace(chunk) {
                        return Some((Ok(before), at));
                    }
                }
                Some(Err(e)) => {
                    at.ended = true;
                    return Some((Err(e), at));
                }
                None => {
                    at.ended = true;
                    let digest = hex::encode(std::mem::take(&mut at.hasher).finalize());
                    if at.read != at.size || digest != at.sha256 {
                        let changed = std::io::Error::other(format!(
                            "{} changed while it was being uploaded",
                            at.what
                        ));
                        return Some((Err(changed), at));
                    }
                    let last = at.held.take()?;
                    return Some((Ok(last), at));
                }
            }
        }
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file sent from disk is passed on whole only when it still is what was hashed; else
    /// everything but its last chunk, then an error.
    #[tokio::test]
    async fn a_file_goes_whole_only_when_it_is_what_was_hashed() {
        let digest = |b: &[u8]| hex::encode(Sha256::digest(b));
        let chunks: [&'static [u8]; 3] = [b"abc", b"def", b"gh"];
        // (its chunks, the digest and size it was hashed with, whether it goes whole)
        let table: [(&[&'static [u8]], String, u64, bool); 6] = [
            (&chunks, digest(b"abcdefgh"), 8, true),
            (&chunks, digest(b"abcdefgX"), 8, false),
            (&chunks, digest(b"abcdefgh"), 9, false),
            (&chunks, digest(b"abcdefgh"), 7, false),
            (&chunks[..1], digest(b"abc"), 3, true),
            (&[], digest(b""), 0, true),
        ];
        for (file, sha256, size, whole) in table {
            let items: Vec<std::io::Result<Bytes>> =
                file.iter().map(|c| Ok(Bytes::from_static(c))).collect();
            let stream = futures_util::stream::iter(items);
            let out: Vec<_> = checked(stream, sha256, size, "f".into()).collect().await;
            let sent: Vec<u8> = out
                .iter()
                .filter_map(|r| r.as_ref().ok())
                .flat_map(|b| b.to_vec())
                .collect();
            let all = file.concat();
            if whole {
                assert!(out.iter().all(Result::is_ok), "{all:?}");
                assert_eq!(sent, all);
            } else {
                let err = out.last().and_then(|r| r.as_ref().err()).expect("an error");
                assert!(err.to_string().contains("f changed"), "{err}");
                assert_eq!(sent, all[..all.len() - file.last().map_or(0, |c| c.len())]);
            }
        }
    }
}
