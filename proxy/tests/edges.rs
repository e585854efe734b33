//! The proxy as `scalemesh-proxy` runs it, at its edges: several proxies in one process,
//! hostile hosts, a connection cap smaller than the thread count, a taken port, extreme
//! settings.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use scalemesh_core::storage::{FsStorage, Storage};
use scalemesh_core::testing::Counting;
use scalemesh_core::{DeploymentId, ProjectName};
use scalemesh_net::Limits;
use scalemesh_proxy::{Proxy, ProxyConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;
use common::{h2_client, h2_send};

async fn live_site(dir: &Path, body: &str) -> Arc<dyn Storage> {
    let storage: Arc<dyn Storage> = Arc::new(FsStorage::new(dir.join("storage")));
    let project = ProjectName::parse("site").expect("name");
    let id = common::deploy(&storage, &project, &[("index.html", body.as_bytes())]).await;
    common::go_live(storage.as_ref(), &project, &id).await;
    storage
}

async fn fetch(addr: SocketAddr, host: &str) -> (u16, String) {
    common::get_raw(addr, host, "/").await
}

/// Serves `proxy` on a port of its own, for the rest of the test; its address.
async fn serve(proxy: &Proxy) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(scalemesh_net::serve(
        listener,
        proxy.handler(),
        Limits::SITES,
        std::future::pending(),
    ));
    addr
}

/// What one proxy remembers per thread is its own: a second `Proxy` in the same process (over
/// the same storage, another base domain) never answers a host that is none of its own.
#[tokio::test] // current_thread: both proxies' connections run on this one thread
async fn two_proxies_on_one_thread_keep_their_own_hosts() {
    let d = tempfile::tempdir().expect("tempdir");
    let storage = live_site(d.path(), "tenant A").await;
    let config = |base: &str| ProxyConfig {
        base_domain: base.into(),
        ..ProxyConfig::default()
    };
    let a = Proxy::new(storage.clone(), &config("a.test"));
    let b = Proxy::new(storage, &config("b.test"));
    let (aa, ab) = (serve(&a).await, serve(&b).await);
    assert_eq!(
        fetch(ab, "site.a.test").await.0,
        404,
        "no site of B's, before A is asked"
    );
    assert_eq!(fetch(aa, "site.a.test").await.1, "tenant A");
    assert_eq!(
        fetch(ab, "site.a.test").await.0,
        404,
        "B must not answer with A's site"
    );
}

/// A host that names no site: a label under the base domain, a custom domain or a deployment
/// id, by turns.
fn made_up(i: usize) -> String {
    match i % 3 {
        0 => format!("made-up-{i}.localhost"),
        1 => format!("www.made-up-{i}.example"),
        _ => format!("{}--site.localhost", DeploymentId::generate()),
    }
}

/// The whole answer to `GET /` on `host`, head and body, as the wire carries it.
async fn whole_answer(addr: SocketAddr, host: String) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    s.write_all(head.as_bytes()).await.expect("send");
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.expect("read");
    answer
}

/// Made-up hosts (any label under the base domain, any custom domain, any deployment id) reach
/// storage at most `unknown_lookups` times a second. Past that they get a 503 that says when to
/// try again, while the site that exists still answers, even when its alias must be read again.
#[tokio::test]
async fn made_up_hosts_cost_a_bounded_number_of_storage_reads() {
    let d = tempfile::tempdir().expect("tempdir");
    let storage = Arc::new(Counting::new(live_site(d.path(), "x").await));
    let bound = 20;
    let proxy = Proxy::new(
        storage.clone(),
        &ProxyConfig {
            unknown_lookups: bound,
            ..ProxyConfig::default()
        },
    );
    let addr = serve(&proxy).await;
    assert_eq!(fetch(addr, "site.localhost").await.0, 200);

    three_hundred_made_up_hosts_stay_within_the_bound(&proxy, addr, &storage, bound).await;
    the_site_answers_with_the_bound_spent(addr, &storage).await;
    a_missing_deployment_is_remembered(addr, &storage).await;
}

/// 300 made-up hosts in a row read storage no more than the bound allows for the time they
/// took; some get a 404, and some a 503.
async fn three_hundred_made_up_hosts_stay_within_the_bound(
    proxy: &Proxy,
    addr: SocketAddr,
    storage: &Counting,
    bound: u32,
) {
    let reads = || storage.reads();
    let (before, started) = (reads(), std::time::Instant::now());
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for i in 0..300 {
        *statuses
            .entry(fetch(addr, &made_up(i)).await.0)
            .or_default() += 1;
    }
    let (read, took) = (reads() - before, started.elapsed().as_secs_f64());
    let most = f64::from(bound) * (1.0 + took);
    assert!(
        (read as f64) <= most,
        "{read} reads for 300 made-up hosts in {took:.2} s, more than {most}"
    );
    assert!(
        statuses.get(&503).is_some_and(|&n| n > 0) && statuses.get(&404).is_some_and(|&n| n > 0),
        "{statuses:?}"
    );
    assert!(metric(proxy, "scalemesh_proxy_unknown_lookups_refused_total") > 0);
}

/// Once the site's alias is due to be read again, and with the bound spent, the site still
/// answers: storage said it exists. The bound is spent when a made-up host gets the 503,
/// and still spent when the next one gets it too; the site's request between them proves
/// the point. A slow machine may refill the budget in between: then try again.
async fn the_site_answers_with_the_bound_spent(addr: SocketAddr, storage: &Counting) {
    let reads = || storage.reads();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let spent = |host: String| whole_answer(addr, host);
    let mut shown = false;
    for round in 0..20 {
        let mut answer = String::new();
        for i in 0..1_000 {
            answer = spent(made_up(round * 1_000 + i)).await;
            if answer.starts_with("HTTP/1.1 503") {
                break;
            }
        }
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(
            answer
                .to_ascii_lowercase()
                .contains("\r\nretry-after: 1\r\n"),
            "{answer}"
        );
        let before = reads();
        assert_eq!(fetch(addr, "site.localhost").await.0, 200);
        let read_again = reads() > before;
        if spent(made_up(round * 1_000 + 999))
            .await
            .starts_with("HTTP/1.1 503")
        {
            assert!(read_again, "the alias was read again");
            shown = true;
            break;
        }
        // The budget refilled around the site's request; its alias is fresh again for a
        // second.
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    assert!(shown, "the bound was never spent around the site's request");
}

/// A deployment storage does not have is remembered as missing, like an unknown alias.
async fn a_missing_deployment_is_remembered(addr: SocketAddr, storage: &Counting) {
    let reads = || storage.reads();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let ghost = format!("{}--site.localhost", DeploymentId::generate());
    let before = reads();
    for _ in 0..50 {
        assert_eq!(fetch(addr, &ghost).await.0, 404);
    }
    assert!(reads() - before <= 2, "{} reads", reads() - before);
}

/// With fewer connection slots than threads, every connection is still served, whichever
/// thread the kernel hands it to.
#[tokio::test]
async fn a_cap_below_the_thread_count_still_serves_everyone() {
    let d = tempfile::tempdir().expect("tempdir");
    let proxy = Proxy::new(live_site(d.path(), "x").await, &ProxyConfig::default());
    let limits = Limits {
        max_connections: 1,
        ..Limits::SITES
    };
    let (addr, served) = scalemesh_net::serve_on_threads(
        "127.0.0.1:0".parse().expect("setup"),
        2,
        scalemesh_net::Spread::Even,
        || proxy.handler(),
        limits,
        std::future::pending(),
    )
    .expect("setup");
    tokio::spawn(served);
    for i in 0..16 {
        let answered =
            tokio::time::timeout(Duration::from_secs(3), fetch(addr, "site.localhost")).await;
        // Accepted and answered: a connection taken and dropped reads as status 0.
        let (status, _) = answered.unwrap_or_else(|_| panic!("connection {i} was never accepted"));
        assert_eq!(status, 200, "connection {i} was not answered");
    }
}

/// `SO_REUSEPORT` on every socket must not let a second proxy join a taken port silently.
#[tokio::test]
async fn a_taken_port_is_an_error() {
    let d = tempfile::tempdir().expect("tempdir");
    let proxy = Proxy::new(live_site(d.path(), "x").await, &ProxyConfig::default());
    let (addr, _served) = scalemesh_net::serve_on_threads(
        "127.0.0.1:0".parse().expect("setup"),
        1,
        scalemesh_net::Spread::Even,
        || proxy.handler(),
        Limits::SITES,
        std::future::pending(),
    )
    .expect("setup");
    let again = scalemesh_net::serve_on_threads(
        addr,
        1,
        scalemesh_net::Spread::Even,
        || proxy.handler(),
        Limits::SITES,
        std::future::pending(),
    );
    assert!(again.is_err(), "a second proxy bound {addr} too");
}

/// `--route-ttl 18446744073709551615` means "trust the alias for good", not a panic.
#[tokio::test]
async fn a_huge_route_ttl_serves() {
    let d = tempfile::tempdir().expect("tempdir");
    let config = ProxyConfig {
        route_ttl: Duration::from_secs(u64::MAX),
        ..ProxyConfig::default()
    };
    let proxy = Proxy::new(live_site(d.path(), "x").await, &config);
    let addr = serve(&proxy).await;
    assert_eq!(fetch(addr, "site.localhost").await.0, 200);
}

/// The soft and hard limits on open files of process `pid`.
fn open_files_limits(pid: &str) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("an open files line");
    let mut numbers = line["Max open files".len()..]
        .split_whitespace()
        .map(|n| n.parse::<u64>().unwrap_or(u64::MAX));
    (numbers.next().expect("soft"), numbers.next().expect("hard"))
}

/// Started under the usual soft limit on open files, far below the connections it may hold,
/// `scalemesh-proxy` raises it to the hard limit before it serves.
#[test]
fn the_proxy_raises_its_open_files_limit() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, hard) = open_files_limits("self");
    assert!(hard > 256, "a hard limit of {hard} leaves nothing to show");
    let mut child = std::process::Command::new("bash")
        .arg("-c")
        .arg(r#"ulimit -Sn 256 && exec "$0" --listen 127.0.0.1:0 --storage "file://$1""#)
        .arg(env!("CARGO_BIN_EXE_scalemesh-proxy"))
        .arg(dir.path())
        .env("RUST_LOG", "scalemesh_proxy=info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    let mut log = Vec::new();
    for line in stderr.lines() {
        let line = line.expect("log line");
        let up = line.contains("serving sites");
        log.push(line);
        if up {
            break;
        }
    }
    let limits = open_files_limits(&child.id().to_string());
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        log.last().is_some_and(|l| l.contains("serving sites")),
        "{log:#?}"
    );
    assert_eq!(limits, (hard.min(1 << 20), hard), "{log:#?}");
}

/// The value of the metric `name` in `proxy`'s metrics.
fn metric(proxy: &Proxy, name: &str) -> u64 {
    proxy
        .metrics_text()
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no metric {name}"))
}

/// A large page kept in memory goes out with `sendfile` from its memory file: to HTTP/1
/// clients, and to an HTTP/2 client that takes frames that large. The counters are the whole
/// process's: no other test here sends a body over 64 KiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_cached_bodies_are_sent_from_memory_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let page: String = (0..300_000u32)
        .map(|i| char::from(b'a' + (i * 7 % 26) as u8))
        .collect();
    let proxy = Proxy::new(live_site(dir.path(), &page).await, &ProxyConfig::default());
    let addr = serve(&proxy).await;
    assert_eq!(metric(&proxy, "scalemesh_proxy_memory_files"), 0);
    let sent = |proxy: &Proxy| metric(proxy, "scalemesh_proxy_sendfile_bytes_total");
    let before = sent(&proxy);
    // The first read makes the memory file; both responses are sent from it.
    for _ in 0..2 {
        let (status, body) = fetch(addr, "site.localhost").await;
        assert_eq!(status, 200);
        assert!(body == page, "the page differs");
    }
    assert_eq!(metric(&proxy, "scalemesh_proxy_memory_files"), 1);
    // All of both, but for a tail under 64 KiB left after a partial send, which is copied.
    let least = 2 * (page.len() as u64 - 64 * 1024);
    let h1 = sent(&proxy) - before;
    assert!(
        (least..=2 * page.len() as u64).contains(&h1),
        "{h1} bytes sent from memory files"
    );

    // HTTP/2 sends DATA as the flow-control windows allow: until the client's larger windows
    // reach the server, or on a busy machine, in frames too small to be worth a `sendfile`,
    // which are copied. So of a few responses on one connection, one must go from the file.
    let mut h2 = h2_client(addr).await;
    let mut from_file = 0;
    for _ in 0..5 {
        let before = sent(&proxy);
        let (_, status, body) = h2_send(&mut h2, "http://site.localhost/").await;
        assert_eq!(status, 200);
        assert!(body == page.as_bytes(), "the HTTP/2 page differs");
        from_file = sent(&proxy) - before;
        if from_file >= 64 * 1024 {
            break;
        }
    }
    assert!(from_file >= 64 * 1024, "HTTP/2 DATA was copied");
    assert_eq!(metric(&proxy, "scalemesh_proxy_sendfile_working"), 1);
}
