//! `scalemesh-server`: parse settings, bind, serve until SIGINT or SIGTERM.

use clap::Parser;
use scalemesh_net::daemon::{init_tracing, shutdown_signal};
use scalemesh_server::settings::Settings;
use scalemesh_server::{Listeners, Server};

/// The embedded proxy allocates small, short-lived buffers at a high rate; mimalloc does that
/// faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    init_tracing("scalemesh_server=info,scalemesh_proxy=info");
    // Connections and memory files of the embedded proxy, log streams and builds: more than
    // the usual soft limit of 1024 open files.
    scalemesh_net::raise_open_files_limit();
    if let Err(err) = run(Settings::parse()).await {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    let listeners = Listeners::bind(&settings).await?;
    let server = Server::build(&settings, listeners).await?;
    let sites = server
        .proxy_addr()
        .map_or_else(|| "off".to_owned(), |a| a.to_string());
    tracing::info!(
        api = %server.api_addr(),
        sites = %sites,
        data_dir = %server.data_dir().display(),
        "scalemesh-server is up"
    );
    server.run_until(shutdown_signal()).await
}
