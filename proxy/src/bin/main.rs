//! `scalemesh-proxy`: serves deployed sites from storage, on its own, beside any number of others.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use scalemesh_core::storage::{self, StorageOptions, StorageUrl};
use scalemesh_proxy::http::{self, Limits};
use scalemesh_proxy::{Proxy, ProxyConfig};

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
    /// Connections served at once.
    #[arg(long, env = "SCALEMESH_MAX_CONNECTIONS", default_value_t = Limits::SITES.max_connections)]
    max_connections: usize,
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[tokio::main]
async fn main() {
    if let Err(err) = run().await {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "scalemesh_proxy=info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    let url = StorageUrl::parse(&args.storage)?;
    let options = StorageOptions {
        s3_endpoint: args.s3_endpoint.clone(),
    };
    let storage = storage::open(&url, &options)
        .await
        .context("opening storage")?;
    let proxy = Proxy::new(
        storage,
        &ProxyConfig {
            base_domain: args.base_domain,
            route_ttl: args.route_ttl,
            ..ProxyConfig::default()
        },
    );
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(addr = %listener.local_addr()?, "serving sites");
    let limits = Limits {
        max_connections: args.max_connections,
        ..Limits::SITES
    };
    http::serve(listener, proxy.router(), limits, shutdown_signal())
        .await
        .context("serving")?;
    Ok(())
}
