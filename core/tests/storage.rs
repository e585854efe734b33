//! The storage contract, run against every backend: a local folder, and a real S3 server
//! (`s3s` over `s3s-fs`) on 127.0.0.1:0 reached through aws-sdk-s3.

#![cfg(feature = "s3")]

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use scalemesh_core::storage::{Body, FsStorage, ObjectMeta, S3Storage, Storage, StorageError};
use scalemesh_core::testing::{BUCKET, S3TestServer};
use sha2::{Digest, Sha256};

async fn s3_server() -> S3TestServer {
    S3TestServer::start().await.expect("the S3 server starts")
}

async fn read_all(storage: &dyn Storage, key: &str) -> Vec<u8> {
    let mut object = storage.get(key).await.expect("get");
    let mut out = Vec::new();
    while let Some(chunk) = object.body.next().await {
        out.extend_from_slice(&chunk.expect("chunk"));
    }
    assert_eq!(
        out.len() as u64,
        object.size,
        "{key}: size matches the body"
    );
    out
}

/// Everything a backend must do.
async fn contract(storage: Arc<dyn Storage>) {
    let meta = ObjectMeta {
        content_type: Some("text/html; charset=utf-8".into()),
        cache_control: Some("no-cache".into()),
    };
    // Bytes in, bytes out; replacing replaces.
    storage
        .put(
            "a/b/c.txt",
            Body::Bytes(Bytes::from_static(b"first")),
            &meta,
        )
        .await
        .expect("put");
    storage
        .put(
            "a/b/c.txt",
            Body::Bytes(Bytes::from_static(b"hello")),
            &meta,
        )
        .await
        .expect("put again");
    assert_eq!(
        storage.get_bytes("a/b/c.txt").await.expect("get"),
        Bytes::from_static(b"hello")
    );
    storage
        .put("a/d.txt", Body::Bytes(Bytes::from_static(b"x")), &meta)
        .await
        .expect("put");
    storage
        .put("ab.txt", Body::Bytes(Bytes::from_static(b"y")), &meta)
        .await
        .expect("put");
    storage
        .put(
            "a/ü ñ.txt",
            Body::Bytes(Bytes::from_static(b"unicode")),
            &meta,
        )
        .await
        .expect("put");

    // Listing: everything under a prefix, sorted.
    assert_eq!(
        storage.list("a/").await.expect("list"),
        ["a/b/c.txt", "a/d.txt", "a/ü ñ.txt"]
    );
    assert_eq!(storage.list("a").await.expect("list").len(), 4);
    assert!(storage.list("nothing/").await.expect("list").is_empty());

    // More keys than S3 answers in one page (1,000): every one listed, once, in order.
    let many: Vec<String> = (0..1_050).map(|i| format!("many/{i:05}.txt")).collect();
    {
        use futures_util::{StreamExt, TryStreamExt};
        futures_util::stream::iter(many.iter().map(|key| {
            let storage = storage.clone();
            async move {
                storage
                    .put(
                        key,
                        Body::Bytes(Bytes::from_static(b"m")),
                        &ObjectMeta::default(),
                    )
                    .await
            }
        }))
        .buffer_unordered(32)
        .try_collect::<Vec<()>>()
        .await
        .expect("put many");
    }
    assert_eq!(storage.list("many/").await.expect("list"), many);

    // Files stream in and out, small and large (large ones in parts).
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, size) in [
        ("small.bin", 100_000usize),
        ("large.bin", 21 * 1024 * 1024 + 17),
    ] {
        let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
        let path = dir.path().join(name);
        std::fs::write(&path, &data).expect("write");
        storage
            .put(
                &format!("files/{name}"),
                Body::File(path),
                &ObjectMeta::default(),
            )
            .await
            .expect("put file");
        let back = read_all(storage.as_ref(), &format!("files/{name}")).await;
        assert_eq!(
            Sha256::digest(&back),
            Sha256::digest(&data),
            "{name} comes back whole"
        );
    }

    // Missing objects and bad keys are told apart from failures.
    let err = storage.get("a/missing").await.expect_err("missing");
    assert!(err.is_not_found(), "{err}");
    storage.delete("a/d.txt").await.expect("delete");
    storage.delete("a/d.txt").await.expect("delete again");
    assert!(
        storage
            .get("a/d.txt")
            .await
            .expect_err("deleted")
            .is_not_found()
    );
    for bad in ["../x", "/etc/passwd", "a//b", "", "a/./b"] {
        let err = storage
            .put(bad, Body::Bytes(Bytes::new()), &ObjectMeta::default())
            .await
            .expect_err("bad key");
        assert!(matches!(err, StorageError::BadKey(_)), "{bad}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_folder_keeps_the_contract() {
    let dir = tempfile::tempdir().expect("tempdir");
    contract(Arc::new(FsStorage::new(dir.path().join("root")))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_keeps_the_contract() {
    let server = s3_server().await;
    contract(Arc::new(server.storage("team/").await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_keeps_http_metadata_and_stays_under_its_prefix() {
    let server = s3_server().await;
    let storage = server.storage("team/").await;
    let meta = ObjectMeta {
        content_type: Some("text/css; charset=utf-8".into()),
        cache_control: Some("public, max-age=60".into()),
    };
    storage
        .put(
            "site.css",
            Body::Bytes(Bytes::from_static(b"body{}")),
            &meta,
        )
        .await
        .expect("put");
    let other = server.storage("").await;
    assert_eq!(
        other.list("").await.expect("list"),
        ["team/site.css"],
        "keys live under the prefix"
    );
    let client = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&S3TestServer::sdk_config().await)
            .endpoint_url(server.endpoint())
            .force_path_style(true)
            .build(),
    );
    let head = client
        .head_object()
        .bucket(BUCKET)
        .key("team/site.css")
        .send()
        .await
        .expect("head");
    assert_eq!(head.content_type(), Some("text/css; charset=utf-8"));
    assert_eq!(head.cache_control(), Some("public, max-age=60"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_s3_is_a_clear_error() {
    // Nothing listens on port 9 of loopback.
    let storage = S3Storage::with_config(
        &S3TestServer::sdk_config().await,
        BUCKET,
        "",
        Some("http://127.0.0.1:9"),
    );
    let err = storage
        .put(
            "k",
            Body::Bytes(Bytes::from_static(b"x")),
            &ObjectMeta::default(),
        )
        .await
        .expect_err("down");
    let text = err.to_string();
    assert!(text.contains("S3 could not store k"), "{text}");
    assert!(!err.is_not_found());
}
