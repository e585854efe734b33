//! Connections, and nothing of what they carry: the serving loop every listener runs (limits,
//! upgrades, graceful drain), serving one address from several threads as nginx's workers do,
//! the coarse timer of those threads, how they share connections, the memory files large
//! bodies are sent from with `sendfile`, and the process around a server (logging, the
//! shutdown signal). The API server and the proxy both serve through it; it knows no site, no
//! route and no framework above hyper.

pub mod counter;
pub mod daemon;
mod listener;
pub mod memfile;
mod share;
mod threads;
mod timer;

pub use listener::{Answer, Handler, Limits, serve, serve_connections};
pub use share::Spread;
pub use threads::{Serving, raise_open_files_limit, serve_on_threads, usable_cores};
