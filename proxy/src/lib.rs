//! Serves deployed sites by `Host` from storage. It needs nothing but storage: the production
//! alias (`__routes/<project>.json`) and each deployment's manifest say what to serve, so any
//! number of proxies can run beside each other, and `scalemesh-server` embeds one.

mod cache;
pub mod http;
mod pages;
mod path;
mod routes;
mod serve;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use scalemesh_core::ProjectName;
use scalemesh_core::hosts::SiteHosts;
use scalemesh_core::storage::Storage;

use cache::BodyCache;
pub use path::{SitePath, parse_request_path};
use routes::RouteTable;

#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub base_domain: String,
    /// How long a production alias read from storage is trusted before it is read again.
    pub route_ttl: Duration,
    /// How many deployments' manifests are kept in memory.
    pub manifest_cache_entries: usize,
    /// Bytes of small file bodies kept in memory.
    pub body_cache_bytes: usize,
    /// Largest body kept in memory; larger files stream from storage every time.
    pub body_cache_max_object: u64,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            base_domain: "localhost".to_owned(),
            route_ttl: Duration::from_secs(1),
            manifest_cache_entries: 512,
            body_cache_bytes: 64 * 1024 * 1024,
            body_cache_max_object: 1024 * 1024,
        }
    }
}

/// A proxy over one storage. Cheap to clone.
#[derive(Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
}

struct Inner {
    storage: Arc<dyn Storage>,
    hosts: SiteHosts,
    routes: RouteTable,
    bodies: BodyCache,
}

impl Proxy {
    pub fn new(storage: Arc<dyn Storage>, config: &ProxyConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                hosts: SiteHosts::new(&config.base_domain, "http", None),
                routes: RouteTable::new(config.route_ttl, config.manifest_cache_entries),
                bodies: BodyCache::new(config.body_cache_bytes, config.body_cache_max_object),
                storage,
            }),
        }
    }

    /// Forgets what is cached about `project`'s alias, so the next request reads it again. The
    /// server calls this right after it moves the alias.
    pub fn invalidate(&self, project: &ProjectName) {
        self.inner.routes.invalidate(project);
    }

    /// The HTTP service: every path on every host.
    pub fn router(&self) -> Router {
        Router::new()
            .fallback(serve::handle)
            .with_state(self.clone())
    }
}
