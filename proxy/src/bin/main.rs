//! `scalemesh-proxy`: serves deployed sites from storage, on its own, beside any number of others.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use scalemesh_core::storage::{self, StorageOptions, StorageUrl};
use scalemesh_net::daemon::{init_tracing, shutdown_signal};
use scalemesh_net::{Limits, Spread};
use scalemesh_proxy::{Proxy, ProxyConfig};

/// Serving allocates small, short-lived buffers at a high rate; mimalloc does that faster than
/// the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "scalemesh-proxy",
    version,
    about = "Serve Scale Mesh deployments by Host from storage"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "SCALEMESH_PROXY_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Where deployments live: file:///path (a local folder) or s3://bucket/prefix.
    #[arg(long, env = "SCALEMESH_STORAGE")]
    storage: String,
    /// An S3-compatible endpoint for s3:// storage, instead of AWS.
    #[arg(long, env = "SCALEMESH_S3_ENDPOINT")]
    s3_endpoint: Option<String>,
    /// Sites answer at <project>.<base-domain>.
    #[arg(long, env = "SCALEMESH_BASE_DOMAIN", default_value = "localhost")]
    base_domain: String,
    /// How long a production alias is cached before storage is read again.
    #[arg(long, env = "SCALEMESH_ROUTE_TTL", default_value = "1s", value_parser = scalemesh_core::duration::parse)]
    route_ttl: Duration,
    /// Where `/health` and `/metrics` answer; never on the sites' listener.
    #[arg(long, env = "SCALEMESH_PROXY_ADMIN_LISTEN")]
    admin_listen: Option<SocketAddr>,
    /// Bytes of small files kept in memory (e.g. 64MB, 1GB).
    #[arg(long, env = "SCALEMESH_BODY_CACHE", default_value = "64MB", value_parser = scalemesh_core::size::parse)]
    body_cache: u64,
    /// Bytes of small responses each serving thread also keeps for itself, on top of the
    /// shared cache (0 turns it off).
    #[arg(long, env = "SCALEMESH_THREAD_CACHE", default_value = "4MB", value_parser = scalemesh_core::size::parse)]
    thread_cache: u64,
    /// Storage reads a second for hosts this proxy does not know to exist (a made-up host costs
    /// at least one); past it, such hosts get a 503 until the bound, refilling steadily, allows
    /// another read (0: no bound).
    #[arg(long, env = "SCALEMESH_UNKNOWN_LOOKUPS", default_value_t = ProxyConfig::default().unknown_lookups)]
    unknown_lookups: u32,
    /// Threads serving sites, each with its own event loop [default: one per core].
    #[arg(long, env = "SCALEMESH_PROXY_THREADS", value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,
    /// Connections served at once.
    #[arg(long, env = "SCALEMESH_MAX_CONNECTIONS", default_value_t = Limits::SITES.max_connections)]
    max_connections: usize,
    /// Run each serving thread on a core of its own and give it the connections that core
    /// receives (SO_INCOMING_CPU, Linux 6.2 or later), for network cards that spread flows over
    /// cores (RSS or RPS). A thread that long serves far more connections than another hands
    /// new ones over, so with a card that delivers everything to one core, new connections
    /// still reach every thread.
    #[arg(long, env = "SCALEMESH_CPU_LOCALITY")]
    cpu_locality: bool,
}

/// The running kernel's release, if it is older than Linux 6.2 (whose `SO_REUSEPORT` sockets
/// first honour `SO_INCOMING_CPU`).
fn kernel_before_6_2() -> Option<String> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let release = release.trim();
    let mut numbers = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().ok());
    let (Some(Some(major)), Some(Some(minor))) = (numbers.next(), numbers.next()) else {
        return None;
    };
    ((major, minor) < (6, 2)).then(|| release.to_owned())
}

// The sites are served from threads of their own (`scalemesh_net::serve_on_threads`); this one runtime
// only opens storage, answers the admin listener and waits for a signal.
#[tokio::main(flavor = "current_thread")]
async fn main() {
    if let Err(err) = run().await {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

async fn run() -> anyhow::Result<()> {
    init_tracing("scalemesh_proxy=info");
    let args = Args::parse();
    check_open_files(args.max_connections);
    let proxy = open(&args).await?;
    if let Some(addr) = args.admin_listen {
        serve_admin(addr, &proxy).await?;
    }
    let limits = Limits {
        max_connections: args.max_connections,
        ..Limits::SITES
    };
    let threads = match args.threads {
        Some(n) => usize::from(n),
        None => std::thread::available_parallelism().map_or(1, usize::from),
    };
    let spread = spread(args.cpu_locality, threads)?;
    let (addr, served) = scalemesh_net::serve_on_threads(
        args.listen,
        threads,
        spread,
        || proxy.handler(),
        limits,
        shutdown_signal(),
    )
    .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(%addr, threads, ?spread, "serving sites");
    served.await.context("serving")?;
    Ok(())
}

/// Raises the open-files limit, and warns when it still cannot hold `max_connections`.
fn check_open_files(max_connections: usize) {
    if let Some(open_files) = scalemesh_net::raise_open_files_limit()
        && (open_files as usize) < max_connections.saturating_add(64)
    {
        tracing::warn!(
            open_files,
            max_connections,
            "the open-file limit is below --max-connections; raise it (ulimit -n) or lower that"
        );
    }
}

/// The proxy over the storage `args` name, configured as they say.
async fn open(args: &Args) -> anyhow::Result<Proxy> {
    let url = StorageUrl::parse(&args.storage)?;
    let options = StorageOptions {
        s3_endpoint: args.s3_endpoint.clone(),
    };
    let storage = storage::open(&url, &options)
        .await
        .context("opening storage")?;
    Ok(Proxy::new(
        storage,
        &ProxyConfig {
            base_domain: args.base_domain.clone(),
            route_ttl: args.route_ttl,
            body_cache_bytes: usize::try_from(args.body_cache).unwrap_or(usize::MAX),
            thread_cache_bytes: usize::try_from(args.thread_cache).unwrap_or(usize::MAX),
            unknown_lookups: args.unknown_lookups,
            ..ProxyConfig::default()
        },
    ))
}

/// `/health` and `/metrics` on `addr`, from this runtime, for as long as the process runs.
async fn serve_admin(addr: SocketAddr, proxy: &Proxy) -> anyhow::Result<()> {
    let admin = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    tracing::info!(addr = %admin.local_addr()?, "health and metrics");
    let handler = proxy.admin_handler();
    tokio::spawn(async move {
        let limits = Limits {
            max_connections: 64,
            ..Limits::SITES
        };
        if let Err(e) = scalemesh_net::serve(admin, handler, limits, std::future::pending()).await {
            tracing::error!(error = %e, "the admin listener stopped");
        }
    });
    Ok(())
}

/// How connections are spread over `threads` threads: by core with `--cpu-locality`, where
/// the kernel and the cores allow it.
fn spread(cpu_locality: bool, threads: usize) -> anyhow::Result<Spread> {
    if !cpu_locality {
        return Ok(Spread::Even);
    }
    if let Some(release) = kernel_before_6_2() {
        anyhow::bail!(
            "--cpu-locality needs Linux 6.2 or later, whose sockets take the connections their \
             core receives; this is {release}\nhint: leave out --cpu-locality"
        );
    }
    let cores = scalemesh_net::usable_cores()?;
    if threads > cores.len() {
        anyhow::bail!(
            "--cpu-locality needs a core per serving thread: {threads} threads, {} cores\n\
             hint: give at most {} --threads, or leave out --cpu-locality",
            cores.len(),
            cores.len()
        );
    }
    Ok(Spread::Cpu)
}
