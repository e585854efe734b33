//! The endpoints of a prebuilt deploy: its start (with the user's token), then, with the job
//! token it hands out, the digest handshake, blobs sent through the API or straight to storage,
//! the manifest and the final report.

use std::path::Path;

use reqwest::Method;
use scalemesh_core::upload::pack::BlobBody;
use scalemesh_core::wire::{
    BlobLayout, BlobsAbsent, BlobsStored, BuilderReport, Deployment, PrebuiltStarted, PresignedPut,
    StartPrebuilt, StoredBlob,
};

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
        self.send_raw(req.body(body_of(body).await?)).await?;
        Ok(())
    }

    /// One blob straight to storage, as the server presigned it (no token of ours goes there).
    pub async fn put_direct(&self, put: &PresignedPut, body: &BlobBody) -> Result<(), ClientError> {
        let mut req = self.http.request(Method::PUT, &put.url);
        for (name, value) in &put.headers {
            req = req.header(name, value);
        }
        let res =
            req.body(body_of(body).await?)
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

async fn body_of(body: &BlobBody) -> Result<reqwest::Body, ClientError> {
    match body {
        BlobBody::Bytes(bytes) => Ok(reqwest::Body::from(bytes.clone())),
        BlobBody::File(path) => file_body(path).await,
    }
}

async fn file_body(path: &Path) -> Result<reqwest::Body, ClientError> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| ClientError::Decode(format!("reading {}: {e}", path.display())))?;
    Ok(reqwest::Body::wrap_stream(
        tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024),
    ))
}
