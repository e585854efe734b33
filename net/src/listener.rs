//! One listener's serving loop, for the API and the sites alike: HTTP/1 and HTTP/2, WebSocket
//! upgrades, a bound on open connections and on the time a client may take to send its request
//! head, so slow or idle clients cannot take a listener down, and a graceful drain at shutdown.

use std::convert::Infallible;
use std::error::Error as StdError;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::Service;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::memfile::Conn;
use crate::share::{self, Placed, Share};

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once; more wait in the kernel's accept queue.
    pub max_connections: usize,
    /// How long a client may take to send a request's head (on `serve_on_threads`' threads,
    /// up to a second longer: `crate::timer`).
    pub header_read_timeout: Duration,
}

impl Limits {
    pub const API: Self = Self {
        max_connections: 2048,
        header_read_timeout: Duration::from_secs(15),
    };
    pub const SITES: Self = Self {
        max_connections: 10_000,
        header_read_timeout: Duration::from_secs(15),
    };
}

/// How long open connections get to finish once `shutdown` completes.
const DRAIN: Duration = Duration::from_secs(10);

/// What answers one connection's requests: a hyper service with any response body.
pub trait Answer:
    Service<Request<Incoming>, Response = Response<Self::Body>, Error = Infallible, Future: Send>
    + Send
    + 'static
{
    type Body: hyper::body::Body<Data: Send, Error: Into<Box<dyn StdError + Send + Sync>>>
        + Send
        + 'static;
}

impl<S, B> Answer for S
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible, Future: Send>
        + Send
        + 'static,
    B: hyper::body::Body<Data: Send, Error: Into<Box<dyn StdError + Send + Sync>>> + Send + 'static,
{
    type Body = B;
}

/// What answers every connection of a listener: one service, cloned for each.
pub trait Handler: Answer + Clone + Sync {}

impl<S: Answer + Clone + Sync> Handler for S {}

/// Serves `handler` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    handler: impl Handler,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    serve_connections(
        listener,
        move |_: &TcpStream| handler.clone(),
        limits,
        shutdown,
    )
    .await
}

/// Serves, on this thread's runtime, what `service` makes for each connection (from the stream,
/// say its peer's address) until `shutdown` completes.
pub async fn serve_connections<S: Answer + Clone>(
    listener: TcpListener,
    service: impl Fn(&TcpStream) -> S + Send,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let how = How {
        limits,
        slots,
        share: None,
    };
    serve_with(listener, service, how, TokioTimer::new(), shutdown).await
}

/// How a listener serves: its limits, the connection slots it shares with others, and its part
/// of the connections when it is one of several threads on one address (`serve_on_threads`).
pub(crate) struct How {
    pub limits: Limits,
    pub slots: Arc<Semaphore>,
    pub share: Option<Share>,
}

/// Serves `service` on `listener` as `how` says; `h1_timer` times the reading of HTTP/1
/// request heads.
pub(crate) async fn serve_with<S: Answer + Clone>(
    listener: TcpListener,
    service: impl Fn(&TcpStream) -> S + Send,
    how: How,
    h1_timer: impl hyper::rt::Timer + Send + Sync + 'static,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let How {
        limits,
        slots,
        mut share,
    } = how;
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(h1_timer)
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)));
    let graceful = GracefulShutdown::new();
    let serve = |placed: Placed| {
        let answer = service(&placed.stream);
        serve_connection(&builder, &graceful, placed, answer);
    };
    let mut shutdown = std::pin::pin!(shutdown);
    'serving: loop {
        // Accepted first, then given a slot: a listener of several (`serve_on_threads`) never
        // sits on a slot while the connections go to another.
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, say: wait instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            placed = share::arrival(&mut share) => {
                serve(placed);
                continue;
            }
            () = &mut shutdown => break,
        };
        let permit = loop {
            tokio::select! {
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(permit) => break permit,
                    Err(_) => break 'serving,
                },
                // Handed over with their slots: they need not wait for one.
                placed = share::arrival(&mut share) => serve(placed),
                () = &mut shutdown => break 'serving,
            }
        };
        let _ = stream.set_nodelay(true);
        let placed = match &share {
            Some(share) => share.place(stream, permit),
            None => Some(Placed {
                stream,
                slot: permit,
                counted: None,
            }),
        };
        if let Some(placed) = placed {
            serve(placed);
        }
    }
    // Connections already handed over are served; no more are taken.
    for placed in share.as_mut().map(Share::close).unwrap_or_default() {
        serve(placed);
    }
    drop((serve, listener));
    let _ = tokio::time::timeout(DRAIN, graceful.shutdown()).await;
    Ok(())
}

/// Serves one connection on this thread, holding its slot and its count until it closes. Its
/// writes go through `memfile::Conn`, which sends memory-file bodies with `sendfile`.
fn serve_connection<S: Answer>(
    builder: &Builder<TokioExecutor>,
    graceful: &GracefulShutdown,
    Placed {
        stream,
        slot,
        counted,
    }: Placed,
    service: S,
) {
    let connection = builder
        .serve_connection_with_upgrades(TokioIo::new(Conn::new(stream)), service)
        .into_owned();
    let connection = graceful.watch(connection);
    tokio::spawn(async move {
        let _ = connection.await;
        drop((counted, slot));
    });
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use std::net::SocketAddr;

    use axum::Router;
    use hyper_util::service::TowerToHyperService;

    use super::*;
    use crate::share::Spread;
    use crate::threads::{Serving, serve_on_threads, usable_cores};

    /// A client that sends part of a head, and one that sends a request and then nothing, are
    /// cut off after `limits`' deadline; a prompt client is answered.
    async fn slow_clients_are_cut_off(addr: SocketAddr, limits: Limits) {
        let started = std::time::Instant::now();
        let mut slow = tokio::net::TcpStream::connect(addr).await.expect("connect");
        slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        let mut idle = tokio::net::TcpStream::connect(addr).await.expect("connect");
        idle.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        for stream in [&mut slow, &mut idle] {
            let mut buf = Vec::new();
            let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf));
            assert!(
                read.await.is_ok(),
                "the server closed the stalled connection"
            );
        }
        assert!(started.elapsed() >= limits.header_read_timeout);

        let mut quick = tokio::net::TcpStream::connect(addr).await.expect("connect");
        quick
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut answer = String::new();
        quick.read_to_string(&mut answer).await.expect("read");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }

    const QUICK: Limits = Limits {
        max_connections: 4,
        header_read_timeout: Duration::from_millis(200),
    };

    #[tokio::test]
    async fn a_client_too_slow_with_its_request_is_cut_off() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let router = Router::new().fallback(|| async { "ok" });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(
            listener,
            TowerToHyperService::new(router),
            QUICK,
            async {
                let _ = stopped.await;
            },
        ));
        slow_clients_are_cut_off(addr, QUICK).await;
        let _ = stop.send(());
        server.await.expect("join").expect("served");
    }

    #[tokio::test]
    async fn a_client_too_slow_on_a_serving_thread_is_cut_off() {
        let router = Router::new().fallback(|| async { "ok" });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (addr, served) = serve_on_threads(
            "127.0.0.1:0".parse().expect("addr"),
            1,
            Spread::Even,
            || TowerToHyperService::new(router.clone()),
            QUICK,
            async {
                let _ = stopped.await;
            },
        )
        .expect("bound");
        slow_clients_are_cut_off(addr, QUICK).await;
        let _ = stop.send(());
        served.await.expect("served");
    }

    /// Requests in flight on a listener's connections, the most there ever were, and the gate
    /// that holds each of them until the test lets one go.
    #[derive(Clone)]
    struct Held {
        inside: Arc<std::sync::atomic::AtomicUsize>,
        most: Arc<std::sync::atomic::AtomicUsize>,
        gate: Arc<Semaphore>,
    }

    impl Held {
        fn new() -> Self {
            Self {
                inside: Arc::default(),
                most: Arc::default(),
                gate: Arc::new(Semaphore::new(0)),
            }
        }

        fn router(&self) -> Router {
            use std::sync::atomic::Ordering::SeqCst;
            let held = self.clone();
            Router::new().fallback(move || {
                let held = held.clone();
                async move {
                    let now = held.inside.fetch_add(1, SeqCst) + 1;
                    held.most.fetch_max(now, SeqCst);
                    held.gate.acquire().await.expect("gate").forget();
                    held.inside.fetch_sub(1, SeqCst);
                    "ok"
                }
            })
        }
    }

    /// With every slot of `cap` taken by a request in flight, more connections wait: none is
    /// served until one of those ends, and then only as many as end. Each is served in turn.
    async fn the_cap_holds(addr: SocketAddr, held: &Held, cap: usize) {
        use std::sync::atomic::Ordering::SeqCst;
        let clients: Vec<_> = (0..cap + 3)
            .map(|_| {
                tokio::spawn(async move {
                    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
                    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                        .await
                        .expect("write");
                    let mut answer = String::new();
                    s.read_to_string(&mut answer).await.expect("read");
                    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
                })
            })
            .collect();
        let settled = |n: usize| async move {
            for _ in 0..500 {
                if held.inside.load(SeqCst) == n {
                    // Long enough for a connection past the cap to reach the handler too.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("{} requests in flight, not {n}", held.inside.load(SeqCst));
        };
        settled(cap).await;
        assert_eq!(
            held.most.load(SeqCst),
            cap,
            "connections past the cap were served"
        );
        held.gate.add_permits(1);
        settled(cap).await;
        assert_eq!(held.most.load(SeqCst), cap);
        held.gate.add_permits(cap + 2);
        for client in clients {
            client.await.expect("answered");
        }
        assert_eq!(held.most.load(SeqCst), cap);
    }

    #[tokio::test]
    async fn a_listener_never_holds_more_than_its_cap() {
        let cap = 3;
        let limits = Limits {
            max_connections: cap,
            header_read_timeout: Duration::from_secs(30),
        };
        let held = Held::new();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(
            listener,
            TowerToHyperService::new(held.router()),
            limits,
            async {
                let _ = stopped.await;
            },
        ));
        the_cap_holds(addr, &held, cap).await;
        let _ = stop.send(());
        server.await.expect("join").expect("served");

        // Serving threads share one cap.
        let held = Held::new();
        let router = held.router();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (addr, served) = serve_on_threads(
            "127.0.0.1:0".parse().expect("addr"),
            2,
            Spread::Even,
            || TowerToHyperService::new(router.clone()),
            limits,
            async {
                let _ = stopped.await;
            },
        )
        .expect("bound");
        the_cap_holds(addr, &held, cap).await;
        let _ = stop.send(());
        served.await.expect("served");
    }

    #[tokio::test]
    async fn serving_threads_share_long_lived_connections_evenly() {
        // Each answer names the thread that served it.
        let router = Router::new()
            .fallback(|| async { std::thread::current().name().unwrap_or("?").to_owned() });
        let (addr, served, stop) = serve_on_two_threads(Spread::Even, router);
        // One connection after another, each kept open: the kernel's hash alone would put
        // about as many on each thread, rarely exactly as many.
        let mut open = Vec::new();
        let mut by_thread = std::collections::HashMap::<String, usize>::new();
        for _ in 0..40 {
            let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
            stream
                .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .expect("write");
            let mut answer = Vec::new();
            let mut buf = [0u8; 1024];
            while !answer.ends_with(b"serve-0") && !answer.ends_with(b"serve-1") {
                let n = stream.read(&mut buf).await.expect("read");
                assert!(n > 0, "closed: {}", String::from_utf8_lossy(&answer));
                answer.extend_from_slice(&buf[..n]);
            }
            let thread = String::from_utf8_lossy(&answer[answer.len() - 7..]).into_owned();
            *by_thread.entry(thread).or_default() += 1;
            open.push(stream);
        }
        assert_eq!(by_thread.get("serve-0"), Some(&20), "{by_thread:?}");
        assert_eq!(by_thread.get("serve-1"), Some(&20), "{by_thread:?}");
        drop(open);
        let _ = stop.send(());
        served.await.expect("served");
    }

    /// Asks from a thread kept on `core`, over a connection left open, which thread on which
    /// core answers.
    fn ask_from(core: usize, addr: SocketAddr) -> (std::net::TcpStream, String) {
        use std::io::{BufRead, BufReader, Read, Write};
        std::thread::spawn(move || {
            let mut only = nix::sched::CpuSet::new();
            only.set(core).expect("core");
            nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &only)
                .expect("a client thread kept on one core");
            let mut stream = std::net::TcpStream::connect(addr).expect("connect");
            stream
                .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                .expect("write");
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).expect("read");
                if let Some(n) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = n.trim().parse().expect("length");
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).expect("body");
            (stream, String::from_utf8(body).expect("utf-8"))
        })
        .join()
        .expect("client")
    }

    /// Two threads spread by core, each answer naming its thread and core.
    fn serve_by_core() -> (
        SocketAddr,
        Serving,
        tokio::sync::oneshot::Sender<()>,
        Vec<usize>,
    ) {
        let cores = usable_cores().expect("cores");
        assert!(
            cores.len() >= 2,
            "spreading by core needs two cores to show; the tests may use only {cores:?} \
             (run them without taskset, on a machine with two cores or more)"
        );
        let router = Router::new().fallback(|| async {
            let thread = std::thread::current().name().unwrap_or("?").to_owned();
            format!("{thread}@{}", nix::sched::sched_getcpu().expect("cpu"))
        });
        let (addr, served, stop) = serve_on_two_threads(Spread::Cpu, router);
        (addr, served, stop, cores)
    }

    /// `router` on two serving threads spread as `spread` says, until the sender is used.
    fn serve_on_two_threads(
        spread: Spread,
        router: Router,
    ) -> (SocketAddr, Serving, tokio::sync::oneshot::Sender<()>) {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (addr, served) = serve_on_threads(
            "127.0.0.1:0".parse().expect("addr"),
            2,
            spread,
            || TowerToHyperService::new(router.clone()),
            Limits::SITES,
            async {
                let _ = stopped.await;
            },
        )
        .expect("bound");
        (addr, served, stop)
    }

    fn stop_serving(served: Serving, stop: tokio::sync::oneshot::Sender<()>) {
        let _ = stop.send(());
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(served)
            .expect("served");
    }

    #[test]
    fn spread_by_core_each_connection_is_served_on_the_core_that_received_it() {
        let (addr, served, stop, cores) = serve_by_core();
        let mut open = Vec::new();
        for _ in 0..5 {
            for (thread, &core) in cores[..2].iter().enumerate() {
                let (stream, answer) = ask_from(core, addr);
                assert_eq!(
                    answer,
                    format!("serve-{thread}@{core}"),
                    "a connection from core {core} went elsewhere (SO_INCOMING_CPU steers only \
                     on Linux 6.2 and later; this is {})",
                    std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default()
                );
                open.push(stream);
            }
        }
        drop(open);
        stop_serving(served, stop);
    }

    #[test]
    fn spread_by_core_a_thread_that_long_serves_far_more_hands_new_connections_over() {
        let (addr, served, stop, cores) = serve_by_core();
        let first = format!("serve-0@{}", cores[0]);
        let second = format!("serve-1@{}", cores[1]);
        // Every connection arrives on the first core: a burst is that thread's to serve.
        let mut open = Vec::new();
        for _ in 0..20 {
            let (stream, answer) = ask_from(cores[0], addr);
            assert_eq!(answer, first);
            open.push(stream);
        }
        // Lopsided for long enough, it hands new ones over until neither serves more than twice
        // the other's plus `LOPSIDED` (20 against 6), and then keeps them again.
        std::thread::sleep(share::LOPSIDED_FOR + Duration::from_millis(100));
        let mut answers = Vec::new();
        for _ in 0..10 {
            let (stream, answer) = ask_from(cores[0], addr);
            answers.push(answer);
            open.push(stream);
        }
        let handed = answers.iter().filter(|a| **a == second).count();
        assert_eq!(handed, 6, "{answers:?}");
        assert_eq!(
            answers[6..],
            [first.clone(), first.clone(), first.clone(), first]
        );
        drop(open);
        stop_serving(served, stop);
    }
}
