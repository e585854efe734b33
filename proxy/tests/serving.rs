//! The proxy over each storage backend — a local folder and a real S3 server (`s3s` over
//! `s3s-fs`) — with the same requests and the same expectations.

use std::net::SocketAddr;
use std::sync::Arc;

use scalemesh_core::storage::{FsStorage, Storage};
use scalemesh_core::testing::S3TestServer;
use scalemesh_core::{DeploymentId, ProjectName};
use scalemesh_net::Limits;
use scalemesh_proxy::{Proxy, ProxyConfig};

mod common;
use common::{deploy, go_live};

struct Site {
    addr: SocketAddr,
    live: DeploymentId,
    old: DeploymentId,
    big: Vec<u8>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn site(storage: Arc<dyn Storage>) -> Site {
    let project = ProjectName::parse("site").expect("name");
    let old = deploy(&storage, &project, &[("index.html", b"old")]).await;
    let big: Vec<u8> = (0..3 * 1024 * 1024).map(|i| (i % 253) as u8).collect();
    let live = deploy(
        &storage,
        &project,
        &[
            ("index.html", b"<h1>home</h1>"),
            ("docs/index.html", b"docs"),
            ("app.js", b"console.log(1)"),
            ("404.html", b"custom 404"),
            ("video.bin", &big),
        ],
    )
    .await;
    go_live(storage.as_ref(), &project, &live).await;
    // A deployment of another project, to be out of reach from this one's hosts.
    let other = ProjectName::parse("other").expect("name");
    let theirs = deploy(&storage, &other, &[("secret.txt", b"theirs")]).await;
    go_live(storage.as_ref(), &other, &theirs).await;

    let proxy = Proxy::new(storage, &ProxyConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(scalemesh_net::serve(
        listener,
        proxy.handler(),
        Limits::SITES,
        async {
            let _ = stopped.await;
        },
    ));
    Site {
        addr,
        live,
        old,
        big,
        _stop: stop,
    }
}

async fn get(site: &Site, host: &str, path: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("http://{}{path}", site.addr))
        .header("host", host)
        .send()
        .await
        .expect("request")
}

async fn the_same_expectations(site: Site) {
    let res = get(&site, "site.localhost", "/").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    let etag = res.headers()["etag"].clone();
    assert_eq!(res.text().await.expect("body"), "<h1>home</h1>");
    // Twice more: the second answer comes from memory and is the same.
    for _ in 0..2 {
        assert_eq!(
            get(&site, "site.localhost", "/app.js")
                .await
                .text()
                .await
                .expect("body"),
            "console.log(1)"
        );
    }
    assert_eq!(
        get(&site, "site.localhost", "/docs/")
            .await
            .text()
            .await
            .expect("body"),
        "docs"
    );
    let res = get(&site, "site.localhost", "/nope").await;
    assert_eq!(res.status(), 404);
    assert_eq!(res.text().await.expect("body"), "custom 404");
    // Large files stream whole.
    let res = get(&site, "site.localhost", "/video.bin").await;
    assert_eq!(
        res.headers()["content-length"],
        site.big.len().to_string().as_str()
    );
    assert_eq!(
        res.bytes().await.expect("body").as_ref(),
        site.big.as_slice()
    );
    // Revalidation.
    let res = reqwest::Client::new()
        .get(format!("http://{}/", site.addr))
        .header("host", "site.localhost")
        .header("if-none-match", etag)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 304);
    // Every deployment at its own host; never another project's files.
    let preview = format!("{}--site.localhost", site.old);
    let res = get(&site, &preview, "/").await;
    assert_eq!(res.headers()["x-robots-tag"], "noindex");
    assert_eq!(res.text().await.expect("body"), "old");
    assert_eq!(
        get(&site, &format!("{}--other.localhost", site.live), "/")
            .await
            .status(),
        404
    );
    for path in [
        "/secret.txt",
        "/../other/secret.txt",
        "/../../other/secret.txt",
        "/%2e%2e/%2e%2e/__routes/site.json",
        "/%2e%2e/%2e%2e/other/secret.txt",
        "/..%2f..%2fother%2fsecret.txt",
        "/.%2e/.%2e/other/secret.txt",
        "/..\\..\\other\\secret.txt",
    ] {
        // Sent as written: the proxy itself must refuse to climb.
        let (status, body) = common::get_raw(site.addr, "site.localhost", path).await;
        assert!(status == 404 || status == 400, "{path}: {status}");
        assert_ne!(body, "theirs", "{path}");
        assert!(!body.contains("\"deployment\""), "{path}: {body}");
    }
    assert_eq!(get(&site, "unknown.localhost", "/").await.status(), 404);
    assert_eq!(get(&site, "localhost", "/").await.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_from_a_local_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    the_same_expectations(site(Arc::new(FsStorage::new(dir.path().to_path_buf()))).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_from_s3() {
    let server = S3TestServer::start().await.expect("S3 server");
    the_same_expectations(site(Arc::new(server.storage("prod/").await)).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_outage_is_a_clean_502() {
    let server = S3TestServer::start().await.expect("S3 server");
    let site = site(Arc::new(server.storage("").await)).await;
    assert_eq!(get(&site, "site.localhost", "/").await.status(), 200);
    drop(server);
    // Cached bodies may still answer; anything that needs storage fails whole, never half-served.
    let res = get(&site, "site.localhost", "/video.bin").await;
    assert_eq!(res.status(), 502);
    assert_eq!(res.headers()["content-type"], "text/html; charset=utf-8");
}
