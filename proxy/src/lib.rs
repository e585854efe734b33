//! Serves deployed sites by `Host` from storage. It needs nothing but storage: the production
//! alias (`__routes/<project>.json`) and each deployment's manifest say what to serve, so any
//! number of proxies can run beside each other, and `scalemesh-server` embeds one.
//!
//! In layers, each behind one call: `respond` (HTTP semantics: host → outcome → response),
//! `resolve` (host → site, through each thread's memo and the shared table), `bodies` (thread
//! copy → shared cache → storage). Connections are `scalemesh_net`'s.

mod bodies;
mod flights;
mod resolve;
mod respond;
mod values;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, Response, StatusCode, header};
use scalemesh_core::storage::Storage;
use scalemesh_core::{DeploymentId, ProjectName};
use scalemesh_net::counter::Counter;
use scalemesh_net::memfile;

use bodies::Bodies;
use resolve::{Resolver, SiteTable, TableSettings};
pub use respond::{SitePath, parse_request_path};

#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub base_domain: String,
    /// How long a production alias read from storage is trusted before it is read again.
    pub route_ttl: Duration,
    /// How long a manifest in memory is served before storage is asked whether it still
    /// exists, so the deployments of a deleted project stop answering on proxies nobody told.
    pub manifest_recheck: Duration,
    /// How many deployments' manifests are kept in memory.
    pub manifest_cache_entries: usize,
    /// Bytes of small file bodies kept in memory.
    pub body_cache_bytes: usize,
    /// Largest body kept in memory; larger files stream from storage every time.
    pub body_cache_max_object: u64,
    /// Bytes of whole responses each serving thread keeps a copy of for itself (0: none), on
    /// top of the shared body cache; bodies over 64 KiB are never copied.
    pub thread_cache_bytes: usize,
    /// Storage reads a second (and at once) for host names and deployments this proxy does not
    /// know to exist; past it such hosts get a 503 until the bound, refilling steadily, allows
    /// another read. 0: no bound.
    pub unknown_lookups: u32,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            base_domain: "localhost".to_owned(),
            route_ttl: Duration::from_secs(1),
            manifest_recheck: Duration::from_secs(30),
            manifest_cache_entries: 512,
            body_cache_bytes: 64 * 1024 * 1024,
            body_cache_max_object: 1024 * 1024,
            thread_cache_bytes: 4 * 1024 * 1024,
            unknown_lookups: 1000,
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
    resolver: Resolver,
    bodies: Bodies,
    metrics: Metrics,
}

/// Counters for `/metrics`, by status class.
#[derive(Default)]
struct Metrics {
    responses: [Counter; 5],
}

impl Metrics {
    fn count(&self, status: StatusCode) {
        let class = usize::from(status.as_u16() / 100).clamp(1, 5) - 1;
        self.responses[class].add(1);
    }
}

impl Proxy {
    pub fn new(storage: Arc<dyn Storage>, config: &ProxyConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                resolver: Resolver::new(
                    &config.base_domain,
                    SiteTable::new(TableSettings {
                        ttl: config.route_ttl,
                        recheck: config.manifest_recheck,
                        manifests: config.manifest_cache_entries,
                        unknown_lookups: config.unknown_lookups,
                    }),
                ),
                bodies: Bodies::new(
                    config.body_cache_bytes,
                    config.body_cache_max_object,
                    config.thread_cache_bytes,
                ),
                metrics: Metrics::default(),
                storage,
            }),
        }
    }

    /// Forgets what is cached about `project`'s alias, and which of its deployments were found
    /// missing, so the next request reads them again. The server calls this right after it
    /// moves the alias, and when a deployment becomes ready without moving it (a preview).
    pub fn invalidate(&self, project: &ProjectName) {
        self.table().invalidate(project);
    }

    /// Forgets everything cached about `project`: its alias and its deployments' manifests
    /// (which are otherwise kept for good, as they never change). The server calls this when it
    /// deletes the project.
    pub fn forget_project(&self, project: &ProjectName) {
        self.table().invalidate(project);
        self.table().forget_manifests(project);
    }

    /// Forgets `deployment` of `project` (its manifest was taken back: it did not become
    /// ready) and the project's alias. The server calls this when it withdraws a manifest.
    pub fn forget_deployment(&self, project: &ProjectName, deployment: &DeploymentId) {
        self.table().invalidate(project);
        self.table().forget_deployment(project, deployment);
    }

    /// Forgets what is cached about a custom domain. The server calls this when it adds or
    /// removes one.
    pub fn invalidate_domain(&self, host: &str) {
        self.table().invalidate_domain(host);
    }

    /// The proxy's counters in Prometheus' text format. Served on an operator's listener, never
    /// on a site's host.
    pub fn metrics_text(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        out.push_str("# HELP scalemesh_proxy_responses_total Responses sent, by status class.\n");
        out.push_str("# TYPE scalemesh_proxy_responses_total counter\n");
        for (i, count) in self.inner.metrics.responses.iter().enumerate() {
            let _ = writeln!(
                out,
                "scalemesh_proxy_responses_total{{class=\"{}xx\"}} {}",
                i + 1,
                count.get()
            );
        }
        let cache = self.inner.bodies.stats();
        for (name, help, kind, value) in [
            (
                "body_cache_hits_total",
                "Bodies served from memory.",
                "counter",
                cache.hits,
            ),
            (
                "body_cache_misses_total",
                "Bodies read from storage into memory.",
                "counter",
                cache.misses,
            ),
            (
                "body_cache_bytes",
                "Bytes of bodies held in memory.",
                "gauge",
                cache.bytes,
            ),
            (
                "unknown_lookups_refused_total",
                "Requests for hosts unknown to this proxy answered 503 because too many such hosts were asked for at once.",
                "counter",
                self.table().refused(),
            ),
            (
                "memory_files",
                "Memory files holding large cached bodies in this process, sent from with sendfile(2).",
                "gauge",
                memfile::open(),
            ),
            (
                "sendfile_bytes_total",
                "Bytes of cached bodies sent from memory files rather than copied, by this process.",
                "counter",
                memfile::sent(),
            ),
            (
                "sendfile_working",
                "1 while bodies are sent with sendfile(2); 0 once it has failed and they are copied.",
                "gauge",
                u64::from(memfile::working()),
            ),
        ] {
            let _ = writeln!(out, "# HELP scalemesh_proxy_{name} {help}");
            let _ = writeln!(out, "# TYPE scalemesh_proxy_{name} {kind}");
            let _ = writeln!(out, "scalemesh_proxy_{name} {value}");
        }
        out
    }

    /// What answers the operator's listener: `/health` and `/metrics`.
    pub fn admin_handler(&self) -> AdminHandler {
        AdminHandler(self.clone())
    }

    fn table(&self) -> &SiteTable {
        self.inner.resolver.table()
    }

    /// What answers the sites' listener: every path on every host. Make one per serving
    /// thread: its clones share a reference count of their own, which no other thread touches.
    pub fn handler(&self) -> SiteHandler {
        SiteHandler(Arc::new(self.clone()))
    }
}

/// The proxy as a hyper service, without a router in front: every request is a site's.
#[derive(Clone)]
pub struct SiteHandler(Arc<Proxy>);

type Answering = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Response<Body>, std::convert::Infallible>> + Send>,
>;

impl hyper::service::Service<Request<hyper::body::Incoming>> for SiteHandler {
    type Response = Response<Body>;
    type Error = std::convert::Infallible;
    type Future = Answering;

    fn call(&self, req: Request<hyper::body::Incoming>) -> Self::Future {
        let proxy = self.0.clone();
        // The head only: a body is neither read nor kept.
        let (head, _) = req.into_parts();
        Box::pin(async move {
            let inner = &proxy.inner;
            let layers = respond::Layers {
                resolver: &inner.resolver,
                bodies: &inner.bodies,
                storage: inner.storage.as_ref(),
            };
            let res = respond::respond(layers, &head).await;
            inner.metrics.count(res.status());
            Ok(res)
        })
    }
}

/// The operator's listener as a hyper service: `/health` and `/metrics`, read with `GET` or
/// `HEAD`.
#[derive(Clone)]
pub struct AdminHandler(Proxy);

impl hyper::service::Service<Request<hyper::body::Incoming>> for AdminHandler {
    type Response = Response<Body>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Response<Body>, std::convert::Infallible>>;

    fn call(&self, req: Request<hyper::body::Incoming>) -> Self::Future {
        let (status, content_type, text) = match req.uri().path() {
            "/health" => (
                StatusCode::OK,
                "text/plain; charset=utf-8",
                "ok\n".to_owned(),
            ),
            "/metrics" => (
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                self.0.metrics_text(),
            ),
            _ => (StatusCode::NOT_FOUND, "", String::new()),
        };
        let mut res = Response::new(Body::empty());
        if status == StatusCode::NOT_FOUND {
            *res.status_mut() = status;
        } else if req.method() != Method::GET && req.method() != Method::HEAD {
            *res.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            res.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET,HEAD"));
        } else {
            res.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            if req.method() == Method::GET {
                *res.body_mut() = Body::from(text);
            }
        }
        std::future::ready(Ok(res))
    }
}
