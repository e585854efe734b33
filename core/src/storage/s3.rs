//! [`Storage`] on an S3 bucket (or any S3-compatible store), under a key prefix.
//!
//! Large files go up in parts, several at once, each part read from disk on its own so a retry
//! re-reads it; small files in one put. On a custom endpoint (`--s3-endpoint`,
//! `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`) requests use path-style addressing and send
//! checksums only when required, which S3-compatible stores accept.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use futures_util::StreamExt;
use tokio_util::io::ReaderStream;

use super::{Body, Object, ObjectMeta, PresignedPut, Storage, StorageError, is_valid_key};

/// Files larger than this are uploaded in parts.
const MULTIPART_THRESHOLD: u64 = 16 * 1024 * 1024;
/// Size of one part (S3's minimum is 5 MiB).
const PART_SIZE: u64 = 8 * 1024 * 1024;
/// Parts of one file uploaded at once.
const PARTS_AT_ONCE: usize = 4;

#[derive(Debug, Clone)]
pub struct S3Storage {
    client: Client,
    bucket: String,
    /// Empty, or ending in `/`.
    prefix: String,
}

impl S3Storage {
    /// Connects with the standard AWS configuration chain (environment, profile, instance or
    /// task role). `endpoint` (else `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`) points at an
    /// S3-compatible store instead of AWS.
    pub async fn connect(bucket: &str, prefix: &str, endpoint: Option<&str>) -> Self {
        let region = RegionProviderChain::default_provider().or_else("us-east-1");
        let shared = aws_config::defaults(BehaviorVersion::latest())
            .region(region)
            .load()
            .await;
        Self::with_config(&shared, bucket, prefix, endpoint)
    }

    /// [`S3Storage::connect`] with an AWS configuration made elsewhere.
    pub fn with_config(
        shared: &aws_config::SdkConfig,
        bucket: &str,
        prefix: &str,
        endpoint: Option<&str>,
    ) -> Self {
        let endpoint = endpoint
            .map(str::to_owned)
            .or_else(|| std::env::var("AWS_ENDPOINT_URL_S3").ok())
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
            .filter(|e| !e.is_empty());
        let mut config = aws_sdk_s3::config::Builder::from(shared)
            .retry_config(RetryConfig::standard().with_max_attempts(5))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .read_timeout(Duration::from_secs(60))
                    .build(),
            );
        if let Some(endpoint) = endpoint {
            config = config
                .endpoint_url(endpoint)
                .force_path_style(true)
                .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        }
        Self {
            client: Client::from_conf(config.build()),
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        }
    }

    fn key(&self, key: &str) -> Result<String, StorageError> {
        if !is_valid_key(key) {
            return Err(StorageError::BadKey(key.chars().take(200).collect()));
        }
        Ok(format!("{}{key}", self.prefix))
    }

    async fn put_parts(
        &self,
        full_key: &str,
        path: &Path,
        size: u64,
        meta: &ObjectMeta,
    ) -> Result<(), StorageError> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(full_key)
            .set_content_type(meta.content_type.clone())
            .set_cache_control(meta.cache_control.clone())
            .send()
            .await
            .map_err(|e| s3_error("start a multipart upload of", full_key, e))?;
        let upload_id = created.upload_id().unwrap_or_default().to_owned();
        let parts = futures_util::stream::iter(0..size.div_ceil(PART_SIZE))
            .map(|i| {
                let upload_id = upload_id.clone();
                async move {
                    let offset = i * PART_SIZE;
                    let length = PART_SIZE.min(size - offset);
                    // A body made from the file, not a one-shot stream: retries read it again.
                    let body = ByteStream::read_from()
                        .path(path)
                        .offset(offset)
                        .length(Length::Exact(length))
                        .build()
                        .await
                        .map_err(|e| {
                            StorageError::Backend(format!("reading {}: {e}", path.display()))
                        })?;
                    let number = i32::try_from(i + 1).unwrap_or(i32::MAX);
                    let part = self
                        .client
                        .upload_part()
                        .bucket(&self.bucket)
                        .key(full_key)
                        .upload_id(&upload_id)
                        .part_number(number)
                        .body(body)
                        .send()
                        .await
                        .map_err(|e| s3_error("upload a part of", full_key, e))?;
                    Ok::<_, StorageError>(
                        CompletedPart::builder()
                            .part_number(number)
                            .set_e_tag(part.e_tag().map(str::to_owned))
                            .build(),
                    )
                }
            })
            .buffered(PARTS_AT_ONCE)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>();
        let parts = match parts {
            Ok(parts) => parts,
            Err(e) => {
                // Nothing half-uploaded stays behind (or is billed).
                let _ = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(full_key)
                    .upload_id(&upload_id)
                    .send()
                    .await;
                return Err(e);
            }
        };
        let completed = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(full_key)
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await;
        match completed {
            Ok(_) => Ok(()),
            // Some S3-compatible stores answer a completed upload in a shape the SDK cannot
            // read (moto names the root element differently). The key is new to this
            // deployment, so an object of exactly the uploaded length there means it completed.
            Err(e) if unreadable(&e) && self.stored_length(full_key).await == Some(size) => Ok(()),
            Err(e) => Err(s3_error("finish the multipart upload of", full_key, e)),
        }
    }

    async fn stored_length(&self, full_key: &str) -> Option<u64> {
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(full_key)
            .send()
            .await
            .ok()?;
        head.content_length().and_then(|n| u64::try_from(n).ok())
    }

    /// GetObject, of the whole object or of one `range`.
    async fn read(&self, key: &str, range: Option<String>) -> Result<Object, StorageError> {
        let full_key = self.key(key)?;
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&full_key)
            .set_range(range)
            .send()
            .await
            .map_err(|e| {
                let missing = e.as_service_error().is_some_and(|s| s.is_no_such_key())
                    || e.raw_response().is_some_and(|r| r.status().as_u16() == 404);
                if missing {
                    StorageError::NotFound {
                        key: key.to_owned(),
                    }
                } else {
                    s3_error("read", &full_key, e)
                }
            })?;
        let size = out
            .content_length()
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(0);
        Ok(Object {
            size,
            body: ReaderStream::with_capacity(out.body.into_async_read(), 64 * 1024).boxed(),
        })
    }
}

/// The store answered, but not in a shape the SDK could read: a reply with no error code of its
/// own, or one that failed to parse.
fn unreadable<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    match err {
        SdkError::ResponseError(_) => true,
        SdkError::ServiceError(service) => service.err().code().is_none(),
        _ => false,
    }
}

/// An SDK error as one line a user can act on, with S3's code and message when there is one.
fn s3_error<E, R>(op: &str, key: &str, err: SdkError<E, R>) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let detail = match err.as_service_error() {
        Some(service) if service.code().is_some() || service.message().is_some() => format!(
            "{}: {}",
            service.code().unwrap_or("error"),
            service.message().unwrap_or("no message")
        ),
        _ => causes(&err),
    };
    StorageError::Backend(format!("S3 could not {op} {key}: {detail}"))
}

/// An error and its causes, each said once, in a line of reasonable length.
fn causes(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    let line = parts.join(": ");
    if line.len() > 400 {
        let mut cut = 400;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}…", &line[..cut])
    } else {
        line
    }
}

#[async_trait]
impl Storage for S3Storage {
    async fn put(&self, key: &str, body: Body, meta: &ObjectMeta) -> Result<(), StorageError> {
        let full_key = self.key(key)?;
        let stream = match body {
            Body::Bytes(bytes) => ByteStream::from(bytes),
            Body::File(path) => {
                let size = tokio::fs::metadata(&path)
                    .await
                    .map_err(|source| StorageError::Io {
                        op: "read",
                        key: key.to_owned(),
                        source,
                    })?
                    .len();
                if size > MULTIPART_THRESHOLD {
                    return self.put_parts(&full_key, &path, size, meta).await;
                }
                ByteStream::from_path(&path).await.map_err(|e| {
                    StorageError::Backend(format!("reading {}: {e}", path.display()))
                })?
            }
        };
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&full_key)
            .body(stream)
            .set_content_type(meta.content_type.clone())
            .set_cache_control(meta.cache_control.clone())
            .send()
            .await
            .map_err(|e| s3_error("store", &full_key, e))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Object, StorageError> {
        self.read(key, None).await
    }

    async fn get_range(&self, key: &str, start: u64, len: u64) -> Result<Object, StorageError> {
        if len == 0 {
            return Ok(Object {
                size: 0,
                body: futures_util::stream::empty().boxed(),
            });
        }
        self.read(key, Some(format!("bytes={start}-{}", start + len - 1)))
            .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let full = format!("{}{prefix}", self.prefix);
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&full)
            .into_paginator()
            .send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| s3_error("list", &full, e))?;
            for object in page.contents() {
                if let Some(key) = object.key().and_then(|k| k.strip_prefix(&self.prefix)) {
                    keys.push(key.to_owned());
                }
            }
        }
        keys.sort();
        Ok(keys)
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let full_key = self.key(key)?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(&full_key)
            .send()
            .await
            .map_err(|e| s3_error("delete", &full_key, e))?;
        Ok(())
    }

    async fn size(&self, key: &str) -> Result<Option<u64>, StorageError> {
        let full_key = self.key(key)?;
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&full_key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(
                out.content_length()
                    .and_then(|n| u64::try_from(n).ok())
                    .unwrap_or(0),
            )),
            Err(e)
                if e.as_service_error().is_some_and(|s| s.is_not_found())
                    || e.raw_response().is_some_and(|r| r.status().as_u16() == 404) =>
            {
                Ok(None)
            }
            Err(e) => Err(s3_error("look up", &full_key, e)),
        }
    }

    async fn presign_put(
        &self,
        key: &str,
        valid: Duration,
    ) -> Result<Option<PresignedPut>, StorageError> {
        let full_key = self.key(key)?;
        let config = PresigningConfig::expires_in(valid)
            .map_err(|e| StorageError::Backend(format!("presigning {full_key}: {e}")))?;
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&full_key)
            .presigned(config)
            .await
            .map_err(|e| s3_error("presign an upload of", &full_key, e))?;
        Ok(Some(PresignedPut {
            url: request.uri().to_owned(),
            headers: request
                .headers()
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect(),
        }))
    }

    fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }
}
