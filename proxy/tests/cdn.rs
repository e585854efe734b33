//! Serving semantics, on both storage backends, of a site uploaded by the builder's own
//! uploader (so its compressed variants, fingerprints and rules are the real ones): validators,
//! ranges, content codings, cache headers, HTML handling, rules files, custom domains — and the
//! attacks, sent as raw bytes on a socket so no client library normalises them first.

use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use scalemesh_core::layout::{self, DomainRoute, FileLayout};
use scalemesh_core::storage::{FsStorage, Storage};
use scalemesh_core::testing::S3TestServer;
use scalemesh_core::{DeploymentId, ProjectName};
use scalemesh_net::Limits;
use scalemesh_proxy::{Proxy, ProxyConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;
use common::{h2_get, put_json, upload_folder, upload_folder_as};

const APP_JS: &str = "assets/app.3f9a1c2b.js";

struct Site {
    addr: SocketAddr,
    preview: DeploymentId,
    js: Vec<u8>,
    big: Vec<u8>,
    /// Large, yet kept in memory: sent from a memory file.
    large: Vec<u8>,
    proxy: Proxy,
    storage: Arc<dyn Storage>,
    _stop: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

fn write(root: &Path, path: &str, body: &[u8]) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, body).expect("write");
}

/// The live deployment's folder: pages, assets of every size, rules files, and files that must
/// never be served.
fn write_live_folder(out: &Path, js: &[u8], big: &[u8], large: &[u8]) {
    write(
        out,
        "index.html",
        &b"<!doctype html><title>home</title><h1>home</h1>\n".repeat(20),
    );
    write(out, "about.html", b"<h1>about</h1>");
    write(out, "docs/index.html", b"<h1>docs</h1>");
    write(out, "docs/guide.html", b"<h1>guide</h1>");
    write(out, "docs/404.html", b"docs 404");
    write(out, "404.html", b"site 404");
    write(out, "dir/index.html", b"dir");
    write(out, APP_JS, js);
    write(out, "video.bin", big);
    write(out, "large.bin", large);
    write(
        out,
        ".well-known/security.txt",
        b"Contact: mailto:security@example.test",
    );
    write(out, ".env", b"SECRET=1");
    write(
        out,
        "_redirects",
        b"/old            /about        301\n/blog/:slug     /docs/:slug   302\n/app/*          /index.html   200\n/gone           /404.html     410\n/about          /nowhere      301\n/force          /docs/        308!\n",
    );
    write(
        out,
        "_headers",
        b"/docs/*\n  X-Frame-Options: DENY\n/assets/*\n  Access-Control-Allow-Origin: *\n",
    );
}

/// Serves `proxy` as `scalemesh-proxy` does, on two threads, until the sender is dropped: its
/// address, and that sender.
fn serve_on_two_threads(proxy: &Proxy) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (addr, served) = scalemesh_net::serve_on_threads(
        "127.0.0.1:0".parse().expect("addr"),
        2,
        scalemesh_net::Spread::Even,
        || proxy.handler(),
        Limits::SITES,
        async {
            let _ = stopped.await;
        },
    )
    .expect("bind");
    tokio::spawn(served);
    (addr, stop)
}

async fn site(storage: Arc<dyn Storage>, layout: FileLayout) -> Site {
    let dir = tempfile::tempdir().expect("tempdir");
    let project = ProjectName::parse("site").expect("name");
    let js: Vec<u8> = "console.log('hello, world');\n".repeat(200).into_bytes();
    let big: Vec<u8> = (0..3 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let large: Vec<u8> = (0..300_000).map(|i| (i * 7 % 253) as u8).collect();
    let out = dir.path().join("v2");
    write_live_folder(&out, &js, &big, &large);
    let live = upload_folder_as(&storage, &project, &out, layout).await;
    let v1 = dir.path().join("v1");
    write(&v1, "index.html", b"preview");
    let preview = upload_folder_as(&storage, &project, &v1, layout).await;
    common::go_live(storage.as_ref(), &project, &live).await;
    // Another project, whose files must stay out of reach of this one's hosts.
    let other = ProjectName::parse("other").expect("name");
    let theirs_dir = dir.path().join("theirs");
    write(&theirs_dir, "secret.txt", b"theirs");
    let theirs = upload_folder_as(&storage, &other, &theirs_dir, layout).await;
    common::go_live(storage.as_ref(), &other, &theirs).await;
    put_json(
        storage.as_ref(),
        &layout::domain("www.example.test"),
        &DomainRoute {
            host: "www.example.test".into(),
            project: project.clone(),
        },
    )
    .await;

    let proxy = Proxy::new(storage.clone(), &ProxyConfig::default());
    // As `scalemesh-proxy` serves: threads of their own, each with its own socket and memo,
    // over a storage client made on this runtime.
    let (addr, stop) = serve_on_two_threads(&proxy);
    Site {
        addr,
        preview,
        js,
        big,
        large,
        proxy,
        storage,
        _stop: stop,
        _dir: dir,
    }
}

/// A response read off the wire.
#[derive(Debug)]
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `head` exactly as given (plus the blank line) and reads the whole answer.
async fn raw(site: &Site, head: &str) -> Raw {
    raw_at(site.addr, head).await
}

async fn raw_at(addr: SocketAddr, head: &str) -> Raw {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(format!("{head}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .expect("send");
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).await.expect("read");
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head_text = String::from_utf8_lossy(&bytes[..split]).to_string();
    let mut lines = head_text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Raw {
        status,
        headers,
        body: bytes[split + 4..].to_vec(),
    }
}

async fn get(site: &Site, host: &str, target: &str, extra: &[(&str, &str)]) -> Raw {
    let mut head = format!("GET {target} HTTP/1.1\r\nHost: {host}");
    for (name, value) in extra {
        head.push_str(&format!("\r\n{name}: {value}"));
    }
    raw(site, &head).await
}

async fn home(site: &Site, target: &str, extra: &[(&str, &str)]) -> Raw {
    get(site, "site.localhost", target, extra).await
}

async fn validators_and_ranges(site: &Site) {
    validators(site).await;
    // Ranges, from memory (small) and streamed from storage (large).
    for (path, whole) in [
        (format!("/{APP_JS}"), &site.js),
        ("/video.bin".to_owned(), &site.big),
    ] {
        ranges_of(site, &path, whole).await;
    }
    head_has_the_headers_of_get(site).await;
}

/// The home page's validators and cache headers, and the conditional requests they answer.
async fn validators(site: &Site) {
    let res = home(site, "/", &[]).await;
    assert_eq!(res.status, 200);
    let etag = res.header("etag").expect("etag").to_owned();
    assert!(
        etag.starts_with('"') && !etag.starts_with("W/"),
        "strong: {etag}"
    );
    let modified = res
        .header("last-modified")
        .expect("last-modified")
        .to_owned();
    assert_eq!(
        res.header("cache-control"),
        Some("public, max-age=0, must-revalidate")
    );
    assert_eq!(res.header("x-content-type-options"), Some("nosniff"));
    assert!(res.header("referrer-policy").is_some());
    assert_eq!(res.header("accept-ranges"), Some("bytes"));

    let res = home(site, "/", &[("If-None-Match", &etag)]).await;
    assert_eq!((res.status, res.body.len()), (304, 0));
    assert_eq!(res.header("etag"), Some(etag.as_str()));
    let res = home(
        site,
        "/",
        &[("If-None-Match", "\"other\", W/".to_owned().as_str())],
    )
    .await;
    assert_eq!(res.status, 200);
    let res = home(site, "/", &[("If-Modified-Since", &modified)]).await;
    assert_eq!(res.status, 304);
    let res = home(
        site,
        "/",
        &[("If-Modified-Since", "Thu, 01 Jan 1970 00:00:00 GMT")],
    )
    .await;
    assert_eq!(res.status, 200);
}

/// Single ranges, suffixes, an unsatisfiable range, several ranges and `If-Range`, on `path`,
/// whose bytes are `whole`.
async fn ranges_of(site: &Site, path: &str, whole: &[u8]) {
    let size = whole.len();
    let res = home(site, path, &[("Range", "bytes=10-19")]).await;
    assert_eq!(res.status, 206, "{path}");
    assert_eq!(
        res.header("content-range"),
        Some(format!("bytes 10-19/{size}").as_str())
    );
    assert_eq!(res.body, whole[10..20]);
    let res = home(site, path, &[("Range", "bytes=-5")]).await;
    assert_eq!(res.body, whole[size - 5..]);
    let res = home(site, path, &[("Range", &format!("bytes={size}-"))]).await;
    assert_eq!(res.status, 416);
    assert_eq!(
        res.header("content-range"),
        Some(format!("bytes */{size}").as_str())
    );
    let res = home(site, path, &[("Range", "bytes=0-1,5-6")]).await;
    assert_eq!(
        (res.status, res.body.len()),
        (200, size),
        "several ranges: the whole file"
    );
    let tag = home(site, path, &[])
        .await
        .header("etag")
        .expect("etag")
        .to_owned();
    let res = home(site, path, &[("Range", "bytes=0-3"), ("If-Range", &tag)]).await;
    assert_eq!(res.status, 206);
    let res = home(
        site,
        path,
        &[("Range", "bytes=0-3"), ("If-Range", "\"stale\"")],
    )
    .await;
    assert_eq!((res.status, res.body.len()), (200, size));
}

/// HEAD: the headers of GET, no body.
async fn head_has_the_headers_of_get(site: &Site) {
    let res = raw(site, "HEAD /video.bin HTTP/1.1\r\nHost: site.localhost").await;
    assert_eq!(res.status, 200);
    assert_eq!(
        res.header("content-length"),
        Some(site.big.len().to_string().as_str())
    );
    assert!(res.body.is_empty());
}

async fn codings_and_cache_headers(site: &Site) {
    let path = format!("/{APP_JS}");
    let res = home(site, &path, &[("Accept-Encoding", "gzip, deflate, br")]).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-encoding"), Some("br"));
    assert_eq!(res.header("vary"), Some("Accept-Encoding"));
    assert_eq!(
        res.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(
        res.header("access-control-allow-origin"),
        Some("*"),
        "_headers"
    );
    let mut plain = Vec::new();
    brotli::Decompressor::new(res.body.as_slice(), 4096)
        .read_to_end(&mut plain)
        .expect("brotli");
    assert_eq!(plain, site.js);
    assert!(res.body.len() < site.js.len() / 4);
    let br_tag = res.header("etag").expect("etag").to_owned();

    let res = home(site, &path, &[("Accept-Encoding", "gzip")]).await;
    assert_eq!(res.header("content-encoding"), Some("gzip"));
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(res.body.as_slice())
        .read_to_end(&mut plain)
        .expect("gzip");
    assert_eq!(plain, site.js);
    let gz_tag = res.header("etag").expect("etag").to_owned();

    let res = home(site, &path, &[]).await;
    assert_eq!(res.header("content-encoding"), None);
    assert_eq!(res.body, site.js);
    let identity_tag = res.header("etag").expect("etag").to_owned();
    assert!(
        br_tag != gz_tag && gz_tag != identity_tag,
        "each coding its own validator"
    );
    let res = home(
        site,
        &path,
        &[("Accept-Encoding", "br"), ("If-None-Match", &br_tag)],
    )
    .await;
    assert_eq!(res.status, 304);
    let res = home(site, &path, &[("Accept-Encoding", "br;q=0, gzip;q=0")]).await;
    assert_eq!(res.header("content-encoding"), None);
    // A range is always of the file's own bytes.
    let res = home(
        site,
        &path,
        &[("Accept-Encoding", "br"), ("Range", "bytes=0-9")],
    )
    .await;
    assert_eq!((res.status, res.header("content-encoding")), (206, None));
    assert_eq!(res.body, site.js[..10]);
}

async fn html_handling_and_rules(site: &Site) {
    let cases: &[(&str, u16, &str)] = &[
        ("/about", 200, "<h1>about</h1>"),
        ("/about.html", 307, "/about"),
        ("/about/", 307, "/about"),
        ("/docs", 307, "/docs/"),
        ("/docs?x=1", 307, "/docs/?x=1"),
        ("/docs/", 200, "<h1>docs</h1>"),
        ("/docs/index.html", 307, "/docs/"),
        ("/docs/guide", 200, "<h1>guide</h1>"),
        ("/docs/missing", 404, "docs 404"),
        ("/missing/deeper", 404, "site 404"),
        ("/old", 301, "/about"),
        ("/old?ref=x", 301, "/about?ref=x"),
        ("/blog/guide", 302, "/docs/guide"),
        ("/app/settings/profile", 200, "<!doctype html>"),
        ("/gone", 410, "site 404"),
        ("/force", 308, "/docs/"),
        ("/.env", 404, "site 404"),
        ("/.well-known/security.txt", 200, "Contact:"),
        ("/_redirects", 404, "site 404"),
        ("/_headers", 404, "site 404"),
    ];
    for (target, status, want) in cases {
        let res = home(site, target, &[]).await;
        assert_eq!(res.status, *status, "{target}");
        if (300..400).contains(status) {
            assert_eq!(res.header("location"), Some(*want), "{target}");
        } else {
            let body = String::from_utf8_lossy(&res.body);
            assert!(body.starts_with(want), "{target}: {body}");
        }
    }
    // `/about` is a file: the rule for it is shadowed.
    assert_eq!(home(site, "/about", &[]).await.status, 200);
    let res = home(site, "/docs/guide", &[]).await;
    assert_eq!(res.header("x-frame-options"), Some("DENY"), "_headers");
    assert_eq!(
        home(site, "/about", &[]).await.header("x-frame-options"),
        None
    );
}

async fn hosts_and_domains(site: &Site) {
    for host in [
        "site.localhost",
        "SITE.LOCALHOST",
        "site.localhost:8080",
        "site.localhost.",
    ] {
        assert_eq!(get(site, host, "/about", &[]).await.status, 200, "{host}");
    }
    let res = get(site, "www.example.test", "/about", &[]).await;
    assert_eq!(res.status, 200, "a custom domain");
    assert_eq!(res.body, b"<h1>about</h1>");
    assert_eq!(
        get(site, "WWW.Example.Test:80", "/about", &[]).await.status,
        200
    );
    for host in [
        "unknown.localhost",
        "localhost",
        "evil.test",
        "127.0.0.1",
        "",
        "a.site.localhost",
    ] {
        let res = get(site, host, "/about", &[]).await;
        assert_eq!(res.status, 404, "{host:?}");
        assert!(
            String::from_utf8_lossy(&res.body).contains("no site here"),
            "{host:?}"
        );
    }
    let res = raw(
        site,
        "GET /about HTTP/1.1\r\nHost: site.localhost\r\nHost: other.localhost",
    )
    .await;
    assert_ne!(res.status, 200, "two Host headers name no site");
    // HTTP/1.0 without Host, and an absolute-form target naming the host.
    let res = raw(site, "GET /about HTTP/1.0").await;
    assert_eq!(res.status, 404);
    let res = raw(
        site,
        "GET http://site.localhost/about HTTP/1.1\r\nHost: other.localhost",
    )
    .await;
    assert_eq!(res.status, 200, "the absolute form's authority wins");
    // HTTP/2 (prior knowledge): `:authority` names the site.
    for (authority, status) in [("site.localhost", 200), ("unknown.localhost", 404)] {
        let (version, got, _) = h2_get(site.addr, &format!("http://{authority}/about")).await;
        assert_eq!(version, axum::http::Version::HTTP_2);
        assert_eq!(got, status, "{authority}");
    }
    // A preview: its own host, never indexed.
    let res = get(site, &format!("{}--site.localhost", site.preview), "/", &[]).await;
    assert_eq!(res.body, b"preview");
    assert_eq!(res.header("x-robots-tag"), Some("noindex"));
    assert_eq!(home(site, "/", &[]).await.header("x-robots-tag"), None);
    // Removing the domain's object stops it once the short cache expires.
    site.storage
        .delete(&layout::domain("www.example.test"))
        .await
        .expect("delete");
    site.proxy.invalidate_domain("www.example.test");
    assert_eq!(
        get(site, "www.example.test", "/about", &[]).await.status,
        404
    );
}

async fn attacks(site: &Site) {
    never_out_of_the_deployment(site).await;
    redirects_never_leave_the_site(site).await;
    only_get_and_head(site).await;
    health_and_metrics_only_for_the_operator(site).await;
}

/// Never out of the deployment, in any encoding; never another project's file.
async fn never_out_of_the_deployment(site: &Site) {
    for target in [
        "/../other/secret.txt",
        "/%2e%2e/%2e%2e/__routes/site.json",
        "/..%2f..%2f__routes%2fsite.json",
        "/%252e%252e/%252e%252e/__routes/site.json",
        "/..\\..\\__routes\\site.json",
        "/%5c..%5c..%5c__routes%5csite.json",
        "/about.html%00.txt",
        "/%c0%ae%c0%ae/%c0%ae%c0%ae/__routes/site.json",
        "/%C0%AF__routes",
        "/./about",
        "/docs/../about",
        "/secret.txt",
        "//__output/other",
    ] {
        let res = home(site, target, &[]).await;
        assert!(matches!(res.status, 400 | 404), "{target}: {}", res.status);
        let body = String::from_utf8_lossy(&res.body);
        assert!(
            !body.contains("theirs") && !body.contains("\"deployment\""),
            "{target}"
        );
        assert!(res.header("location").is_none(), "{target}");
    }
}

/// Redirects never leave the site.
async fn redirects_never_leave_the_site(site: &Site) {
    for target in [
        "//evil.test/dir",
        "//dir",
        "/\\evil.test/dir",
        "/%2fevil.test/dir",
        "/%5cevil.test",
        "/dir%0d%0aLocation:%20http://evil.test",
        "/blog/%2f%2fevil.test",
    ] {
        let res = home(site, target, &[]).await;
        if let Some(location) = res.header("location") {
            assert!(
                location.starts_with('/')
                    && !location.starts_with("//")
                    && !location.starts_with("/\\"),
                "{target} → {location}"
            );
        }
        assert!(res.header("set-cookie").is_none());
    }
    assert_eq!(
        home(site, "/dir", &[]).await.header("location"),
        Some("/dir/")
    );
}

/// Methods other than GET and HEAD.
async fn only_get_and_head(site: &Site) {
    let res = raw(
        site,
        "POST / HTTP/1.1\r\nHost: site.localhost\r\nContent-Length: 0",
    )
    .await;
    assert_eq!(res.status, 405);
    assert_eq!(res.header("allow"), Some("GET, HEAD"));
}

/// Health and metrics answer on the operator's listener, never on a site's host.
async fn health_and_metrics_only_for_the_operator(site: &Site) {
    assert_eq!(home(site, "/metrics", &[]).await.status, 404);
    assert_eq!(home(site, "/health", &[]).await.status, 404);
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let admin_addr = admin.local_addr().expect("addr");
    let handler = site.proxy.admin_handler();
    let server = tokio::spawn(scalemesh_net::serve(
        admin,
        handler,
        Limits::SITES,
        std::future::pending(),
    ));
    let client = reqwest::Client::new();
    let health = client
        .get(format!("http://{admin_addr}/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
    let metrics = client
        .get(format!("http://{admin_addr}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    assert!(
        metrics.contains("scalemesh_proxy_responses_total{class=\"2xx\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("scalemesh_proxy_body_cache_hits_total"),
        "{metrics}"
    );
    server.abort();
}

/// Reads one response off a kept-alive connection: its status and body, by its
/// `Content-Length`.
async fn next_response(stream: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> (u16, Vec<u8>) {
    let mut chunk = vec![0; 64 * 1024];
    loop {
        if let Some(split) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..split]).to_string();
            let status = head
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .expect("status");
            let len: usize = head
                .split("\r\n")
                .filter_map(|l| l.split_once(':'))
                .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse().ok())
                .expect("content-length");
            while buf.len() < split + 4 + len {
                let n = stream.read(&mut chunk).await.expect("read");
                assert!(n > 0, "connection closed mid-body");
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = buf[split + 4..split + 4 + len].to_vec();
            buf.drain(..split + 4 + len);
            return (status, body);
        }
        let n = stream.read(&mut chunk).await.expect("read");
        assert!(n > 0, "connection closed before a response");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A large file kept in memory (sent from its memory file: `edges.rs` shows that) arrives
/// whole, in parts, pipelined between other responses on one connection, and over HTTP/2.
async fn large_bodies(site: &Site) {
    let large = &site.large;
    // Read into memory by the first request, sent from the memory file by the next ones.
    for _ in 0..2 {
        let res = home(site, "/large.bin", &[]).await;
        assert_eq!(res.status, 200);
        assert!(res.body == *large, "large.bin differs");
    }
    let res = home(site, "/large.bin", &[("Range", "bytes=100000-250000")]).await;
    assert_eq!(res.status, 206);
    assert!(res.body == large[100_000..=250_000], "the range differs");
    let res = home(site, "/large.bin", &[("Range", "bytes=-70000")]).await;
    assert!(
        res.body == large[large.len() - 70_000..],
        "the suffix differs"
    );

    // Pipelined: three requests in one write, answered in order on the same connection.
    let mut stream = tokio::net::TcpStream::connect(site.addr)
        .await
        .expect("connect");
    let one = "GET /large.bin HTTP/1.1\r\nHost: site.localhost\r\n\r\n";
    let about = "GET /about HTTP/1.1\r\nHost: site.localhost\r\n\r\n";
    stream
        .write_all(format!("{one}{about}{one}").as_bytes())
        .await
        .expect("send");
    let mut buf = Vec::new();
    let (status, body) = next_response(&mut stream, &mut buf).await;
    assert_eq!(status, 200);
    assert!(body == *large, "the first pipelined body differs");
    let (status, body) = next_response(&mut stream, &mut buf).await;
    assert_eq!((status, body.as_slice()), (200, &b"<h1>about</h1>"[..]));
    let (status, body) = next_response(&mut stream, &mut buf).await;
    assert_eq!(status, 200);
    assert!(body == *large, "the second pipelined body differs");

    let (_, status, body) = h2_get(site.addr, "http://site.localhost/large.bin").await;
    assert_eq!(status, 200);
    assert!(body == *large, "the HTTP/2 body differs");
}

async fn all(site: Site) {
    validators_and_ranges(&site).await;
    large_bodies(&site).await;
    codings_and_cache_headers(&site).await;
    html_handling_and_rules(&site).await;
    attacks(&site).await;
    hosts_and_domains(&site).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = Arc::new(FsStorage::new(dir.path().to_path_buf()));
    all(site(storage, FileLayout::Blobs).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3() {
    let server = S3TestServer::start().await.expect("S3 server");
    all(site(Arc::new(server.storage("prod/").await), FileLayout::Blobs).await).await;
}

/// Deployments stored in their own folders, as before blobs, are served the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_folder_of_deployments_made_before_blobs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = Arc::new(FsStorage::new(dir.path().to_path_buf()));
    all(site(storage, FileLayout::Folders).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_of_deployments_made_before_blobs() {
    let server = S3TestServer::start().await.expect("S3 server");
    all(site(Arc::new(server.storage("prod/").await), FileLayout::Folders).await).await;
}

/// The distinct answers (a body, or the status when not 200) to `GET /` on `host` over many
/// connections, so the kernel hands some to each thread.
async fn answers_of_every_thread(addr: SocketAddr, host: &str) -> Vec<String> {
    let mut seen = Vec::new();
    for _ in 0..24 {
        let res = raw_at(addr, &format!("GET / HTTP/1.1\r\nHost: {host}")).await;
        let body = String::from_utf8(res.body).expect("utf-8");
        seen.push(if res.status == 200 {
            body
        } else {
            res.status.to_string()
        });
    }
    seen.sort();
    seen.dedup();
    seen
}

/// A standalone proxy learns of a moved alias from storage alone within its alias TTL, on every
/// serving thread however recently each served the old deployment; told of the move, at once.
/// A deleted deployment stops answering within the manifest recheck interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_thread_follows_the_alias_and_sees_deletions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage: Arc<dyn Storage> = Arc::new(FsStorage::new(dir.path().join("storage")));
    let project = ProjectName::parse("site").expect("name");
    let mut versions = Vec::new();
    for version in ["one", "two"] {
        let folder = dir.path().join(version);
        write(&folder, "index.html", version.as_bytes());
        versions.push(upload_folder(&storage, &project, &folder).await);
    }
    common::go_live(storage.as_ref(), &project, &versions[0]).await;
    let ttl = std::time::Duration::from_millis(300);
    let config = ProxyConfig {
        route_ttl: ttl,
        manifest_recheck: ttl,
        ..ProxyConfig::default()
    };
    let proxy = Proxy::new(storage.clone(), &config);
    let (addr, _stop) = serve_on_two_threads(&proxy);
    let bodies = || answers_of_every_thread(addr, "site.localhost");
    assert_eq!(bodies().await, ["one"]);

    common::go_live(storage.as_ref(), &project, &versions[1]).await;
    tokio::time::sleep(ttl + std::time::Duration::from_millis(100)).await;
    assert_eq!(bodies().await, ["two"], "every thread read the alias again");

    common::go_live(storage.as_ref(), &project, &versions[0]).await;
    proxy.invalidate(&project);
    assert_eq!(
        bodies().await,
        ["one"],
        "told of the move, every thread forgot"
    );

    // The deployment no longer live, at its own URL: answered by every thread, then deleted
    // from storage (its manifest, as deleting a project does) and gone within the recheck.
    let own = format!("{}--site.localhost", versions[1]);
    assert_eq!(answers_of_every_thread(addr, &own).await, ["two"]);
    storage
        .delete(&layout::manifest(&project, &versions[1]))
        .await
        .expect("delete");
    // Within the recheck, plus the second a thread may reuse its own copy of a response.
    tokio::time::sleep(ttl + std::time::Duration::from_millis(1200)).await;
    assert_eq!(
        answers_of_every_thread(addr, &own).await,
        ["404"],
        "every thread saw the deletion"
    );
}
