//! A real S3 server for tests: `s3s` over `s3s-fs`, on 127.0.0.1:0, with one bucket, stopped when
//! dropped. Clients reach it through aws-sdk-s3 with the keys below.

use std::net::SocketAddr;

use crate::storage::S3Storage;

pub const ACCESS_KEY: &str = "AKIDSCALEMESHTEST";
pub const SECRET_KEY: &str = "scalemesh-test-secret-key";
pub const BUCKET: &str = "sites";

pub struct S3TestServer {
    addr: SocketAddr,
    _root: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl S3TestServer {
    pub async fn start() -> std::io::Result<Self> {
        let root = tempfile::tempdir()?;
        std::fs::create_dir(root.path().join(BUCKET))?;
        let fs = s3s_fs::FileSystem::new(root.path())
            .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        let service = {
            let mut builder = s3s::service::S3ServiceBuilder::new(fs);
            builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
            builder.build()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let http =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            // Connections live in this task's set: stopping the server closes them too.
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((socket, _)) = listener.accept().await {
                let conn = http
                    .serve_connection(hyper_util::rt::TokioIo::new(socket), service.clone())
                    .into_owned();
                connections.spawn(async move {
                    let _ = conn.await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        Ok(Self {
            addr,
            _root: root,
            task,
        })
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// An AWS configuration with this server's keys, independent of the environment.
    pub async fn sdk_config() -> aws_config::SdkConfig {
        let keys = aws_sdk_s3::config::Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test");
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .credentials_provider(keys)
            .region(aws_config::Region::new("us-east-1"))
            .load()
            .await
    }

    /// Storage in this server's bucket under `prefix` (empty, or ending in `/`).
    pub async fn storage(&self, prefix: &str) -> S3Storage {
        S3Storage::with_config(
            &Self::sdk_config().await,
            BUCKET,
            prefix,
            Some(&self.endpoint()),
        )
    }
}

impl Drop for S3TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Real storage that counts its reads: every `get`, which whole and ranged reads go through. A
/// read yields to the runtime first, so concurrent readers really overlap.
pub struct Counting {
    inner: std::sync::Arc<dyn crate::storage::Storage>,
    reads: std::sync::atomic::AtomicUsize,
}

impl Counting {
    pub fn new(inner: std::sync::Arc<dyn crate::storage::Storage>) -> Self {
        Self {
            inner,
            reads: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Reads so far.
    pub fn reads(&self) -> usize {
        self.reads.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl crate::storage::Storage for Counting {
    async fn put(
        &self,
        key: &str,
        body: crate::storage::Body,
        meta: &crate::storage::ObjectMeta,
    ) -> Result<(), crate::storage::StorageError> {
        self.inner.put(key, body, meta).await
    }
    async fn get(&self, key: &str) -> Result<crate::storage::Object, crate::storage::StorageError> {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        tokio::task::yield_now().await;
        self.inner.get(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, crate::storage::StorageError> {
        self.inner.list(prefix).await
    }
    async fn delete(&self, key: &str) -> Result<(), crate::storage::StorageError> {
        self.inner.delete(key).await
    }
    async fn size(&self, key: &str) -> Result<Option<u64>, crate::storage::StorageError> {
        self.inner.size(key).await
    }
    fn url(&self) -> String {
        self.inner.url()
    }
}
