//! One request: host → deployment → manifest → what the path answers → the response, with
//! validators, ranges and the content coding the client takes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime};

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use scalemesh_core::layout::{self, Encoding, ManifestEntry};
use scalemesh_core::storage::StorageError;

use crate::path::parse_request_path;
use crate::routes::{RouteError, Site};
use crate::site::{self, Outcome};
use crate::{Proxy, local, pages};

const REVALIDATE: HeaderValue = HeaderValue::from_static("public, max-age=0, must-revalidate");
const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");

/// Header values many responses carry: the proxy's own and the types of most files on the web.
const COMMON: &[&str] = &[
    "public, max-age=0, must-revalidate",
    "public, max-age=31536000, immutable",
    "Accept-Encoding",
    "nosniff",
    "strict-origin-when-cross-origin",
    "bytes",
    "br",
    "gzip",
    "noindex",
    "text/html; charset=utf-8",
    "text/css; charset=utf-8",
    "text/javascript; charset=utf-8",
    "application/json; charset=utf-8",
    "image/svg+xml; charset=utf-8",
    "text/plain; charset=utf-8",
    "text/xml; charset=utf-8",
    "application/manifest+json; charset=utf-8",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/avif",
    "image/x-icon",
    "font/woff2",
    "application/font-woff",
    "application/wasm",
    "application/pdf",
    "application/octet-stream",
];

/// `value` as a static header value if it is a common one. Copying a static value touches no
/// reference count, so responses that a serving thread copies for itself are built from these
/// where they can be (`local`).
pub fn common_value(value: &[u8]) -> Option<HeaderValue> {
    COMMON
        .iter()
        .find(|common| common.as_bytes() == value)
        .map(|common| HeaderValue::from_static(common))
}

pub async fn handle(proxy: &Proxy, req: &Parts) -> Response {
    let res = respond(proxy, req).await;
    proxy.inner.metrics.count(res.status());
    res
}

async fn respond(proxy: &Proxy, req: &Parts) -> Response {
    if req.method != Method::GET && req.method != Method::HEAD {
        let mut res = page(StatusCode::METHOD_NOT_ALLOWED, pages::NOT_ALLOWED);
        res.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return res;
    }
    let Some(host) = host_of(req) else {
        return page(StatusCode::NOT_FOUND, pages::NO_SITE);
    };
    // One clock read for the whole request.
    let now = Instant::now();
    let (held, preview) = match memo::site(proxy, host, now).await {
        Ok(Some(found)) => found,
        Ok(None) => return page(StatusCode::NOT_FOUND, pages::NO_SITE),
        Err(RouteError::Storage(e)) => return unavailable(&e),
        Err(RouteError::Busy) => return busy(),
    };
    let site: &Site = &held;
    let mut res = match parse_request_path(req.uri.path()) {
        None => page(StatusCode::NOT_FOUND, pages::NOT_FOUND),
        Some(site_path) => {
            let manifest = &site.manifest;
            let mut res = match site::decide(manifest, &site_path, req.uri.query()) {
                Outcome::File { path, status } => {
                    serve_file(proxy, site, path, status, req, now).await
                }
                Outcome::Redirect { location, status } => redirect(&location, status),
                Outcome::Missing { status } => page(
                    StatusCode::from_u16(status).unwrap_or(StatusCode::NOT_FOUND),
                    pages::NOT_FOUND,
                ),
            };
            if !res.status().is_server_error() && !manifest.routing.headers.is_empty() {
                let path = site::display_path(&site_path);
                for (name, value) in manifest.routing.headers_for(&path) {
                    if let (Ok(name), Ok(value)) =
                        (HeaderName::try_from(name), HeaderValue::try_from(value))
                    {
                        res.headers_mut().insert(name, value);
                    }
                }
            }
            res
        }
    };
    if preview {
        res.headers_mut()
            .insert("x-robots-tag", HeaderValue::from_static("noindex"));
    }
    res
}

/// Which deployment a host serves, remembered by each serving thread for itself: a request for a
/// site the thread served a moment ago reads no shared table, takes no lock and parses no host.
mod memo {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use scalemesh_core::hosts::SiteHost;

    use crate::Proxy;
    use crate::routes::{RouteError, Site};

    /// Hosts remembered per thread; all are forgotten when there would be more.
    const MAX_HOSTS: usize = 1024;

    /// Longer hosts are looked up every time rather than remembered: no real host is that long
    /// (253 bytes, a port and a dot), and hostile ones must not fill the memo's memory.
    const MAX_HOST_LEN: usize = 264;

    /// What one thread remembers: only answers of one proxy (a process may run several) and of
    /// its route table's current generation, so a site forgotten there (a deleted project, an
    /// evicted manifest) is not kept alive here.
    #[derive(Default)]
    struct Memo {
        proxy: u64,
        generation: u64,
        hosts: HashMap<Box<str>, Found>,
    }

    struct Found {
        site: Arc<Held>,
        preview: bool,
        /// When the alias (or domain) it was found through is no longer fresh, or the manifest
        /// is due to be checked again.
        until: Instant,
    }

    /// This thread's own hold on a shared site: requests clone it without touching a reference
    /// count that other threads touch too.
    pub struct Held(Arc<Site>);

    impl std::ops::Deref for Held {
        type Target = Site;

        fn deref(&self) -> &Site {
            &self.0
        }
    }

    thread_local! {
        static MEMO: RefCell<Memo> = RefCell::new(Memo::default());
    }

    /// The deployment `host` (as the request spelled it) serves at `now` and whether it is a
    /// preview; `None` when it is no site's.
    pub async fn site(
        proxy: &Proxy,
        host: &str,
        now: Instant,
    ) -> Result<Option<(Arc<Held>, bool)>, RouteError> {
        let routes = &proxy.inner.routes;
        let id = proxy.inner.id;
        // Read before the tables are: anything forgotten from here on makes the memo stale.
        let generation = routes.generation();
        let remembered = MEMO.with_borrow_mut(|memo| {
            if (memo.proxy, memo.generation) != (id, generation) {
                memo.hosts.clear();
                (memo.proxy, memo.generation) = (id, generation);
            }
            memo.hosts
                .get(host)
                .filter(|found| now < found.until)
                .map(|found| (found.site.clone(), found.preview))
        });
        if remembered.is_some() {
            return Ok(remembered);
        }
        let Some((site, preview, until)) = find(proxy, host).await? else {
            return Ok(None);
        };
        let site = Arc::new(Held(site));
        let found = Found {
            site: site.clone(),
            preview,
            until,
        };
        MEMO.with_borrow_mut(|memo| {
            if (memo.proxy, memo.generation) != (id, generation) || host.len() > MAX_HOST_LEN {
                return;
            }
            if memo.hosts.len() >= MAX_HOSTS {
                memo.hosts.clear();
            }
            memo.hosts.insert(host.into(), found);
        });
        Ok(Some((site, preview)))
    }

    fn far_future() -> Instant {
        let now = Instant::now();
        now.checked_add(Duration::from_secs(365 * 24 * 3600))
            .unwrap_or(now)
    }

    /// The site from the shared tables, and until when that answer holds: while the alias or
    /// domain it came through is fresh and the manifest needs no new check.
    async fn find(
        proxy: &Proxy,
        host: &str,
    ) -> Result<Option<(Arc<Site>, bool, Instant)>, RouteError> {
        let inner = &proxy.inner;
        let storage = inner.storage.as_ref();
        let routes = &inner.routes;
        let Some(site_host) = inner.hosts.parse(host) else {
            return Ok(None);
        };
        let (project, deployment, fresh_from, preview) = match site_host {
            SiteHost::Project(project) => {
                match routes.production(storage, &project, false).await? {
                    (at, Some(deployment)) => (project, deployment, Some(at), false),
                    (_, None) => return Ok(None),
                }
            }
            SiteHost::Domain(domain) => {
                let (domain_at, project) = routes.domain(storage, &domain).await?;
                let Some(project) = project else {
                    return Ok(None);
                };
                // The domain's record names the project: reading its alias is no guess.
                match routes.production(storage, &project, true).await? {
                    (at, Some(deployment)) => (project, deployment, Some(at.min(domain_at)), false),
                    (_, None) => return Ok(None),
                }
            }
            // A preview names its deployment: no alias to go stale.
            SiteHost::Deployment {
                project,
                deployment,
            } => (project, deployment, None, true),
        };
        let vouched = !preview;
        let Some((site, checked)) = routes
            .manifest(storage, &project, &deployment, vouched)
            .await?
        else {
            return Ok(None);
        };
        // However long the intervals, an instant that cannot be represented means never.
        let later = |at: Instant, by| at.checked_add(by).unwrap_or_else(far_future);
        let until = later(checked, routes.recheck());
        let until = fresh_from.map_or(until, |at| until.min(later(at, routes.ttl())));
        Ok(Some((site, preview, until)))
    }

    #[cfg(test)]
    mod tests {
        use std::sync::Arc;
        use std::time::Instant;

        use scalemesh_builder::upload::{self, UploadLimits};
        use scalemesh_core::layout::{self, Route};
        use scalemesh_core::rules::Routing;
        use scalemesh_core::storage::{Body, FsStorage, ObjectMeta, Storage};
        use scalemesh_core::{DeploymentId, ProjectName};

        use super::{MAX_HOST_LEN, MEMO};
        use crate::{Proxy, ProxyConfig};

        /// Hosts too long to be real are answered but not remembered: hostile ones cannot fill
        /// a thread's memory.
        #[tokio::test]
        async fn hosts_too_long_to_be_real_are_answered_but_not_remembered() {
            let d = tempfile::tempdir().expect("tempdir");
            let storage: Arc<dyn Storage> = Arc::new(FsStorage::new(d.path().join("storage")));
            let project = ProjectName::parse("site").expect("name");
            let folder = d.path().join("src");
            std::fs::create_dir_all(&folder).expect("mkdir");
            std::fs::write(folder.join("index.html"), "x").expect("write");
            let id = DeploymentId::generate();
            let (mut files, _) =
                upload::collect(&folder, UploadLimits::default()).expect("collect");
            let routing = upload::take_routing(&mut files, Routing::default()).expect("rules");
            upload::upload(storage.clone(), &project, &id, files, routing, |_, _| {})
                .await
                .expect("upload");
            upload::publish(storage.as_ref(), &project, &id)
                .await
                .expect("publish");
            let route = Route {
                project: project.clone(),
                deployment: id,
                updated_at: time::OffsetDateTime::now_utc(),
            };
            let route = serde_json::to_vec(&route).expect("json");
            storage
                .put(
                    &layout::route(&project),
                    Body::Bytes(route.into()),
                    &ObjectMeta::default(),
                )
                .await
                .expect("put");
            let proxy = Proxy::new(storage, &ProxyConfig::default());
            let held = || MEMO.with_borrow(|memo| memo.hosts.len());

            let ok = |host: &str| {
                let host = host.to_owned();
                let proxy = proxy.clone();
                async move {
                    super::site(&proxy, &host, Instant::now())
                        .await
                        .expect("read")
                }
            };
            assert!(ok("site.localhost").await.is_some());
            assert_eq!(held(), 1);
            // (the host's length, whether it is remembered)
            let longest = format!("site.localhost:{}", "0".repeat(MAX_HOST_LEN - 15));
            assert_eq!(longest.len(), MAX_HOST_LEN);
            assert!(ok(&longest).await.is_some());
            assert_eq!(held(), 2, "a host of {MAX_HOST_LEN} bytes is remembered");
            for i in 0..300 {
                let host = format!("site.localhost:{i}{}", "0".repeat(200_000));
                assert!(ok(&host).await.is_some(), "host {i} is answered");
            }
            let long = format!("site.localhost:{}", "0".repeat(MAX_HOST_LEN - 14));
            assert!(ok(&long).await.is_some());
            assert_eq!(held(), 2, "no longer host is remembered");
        }
    }
}

/// `Host`, or the URI's authority when the request carried one (HTTP/2 `:authority`, absolute
/// form). Several `Host` headers are no host at all.
fn host_of(req: &Parts) -> Option<&str> {
    if let Some(authority) = req.uri.authority() {
        return Some(authority.as_str());
    }
    let mut hosts = req.headers.get_all(header::HOST).iter();
    let first = hosts.next()?;
    if hosts.next().is_some() {
        return None;
    }
    first.to_str().ok()
}

async fn serve_file(
    proxy: &Proxy,
    site: &Site,
    path: &str,
    status: u16,
    req: &Parts,
    now: Instant,
) -> Response {
    let manifest = &site.manifest;
    let Some(entry) = manifest.files.get(path) else {
        return page(StatusCode::NOT_FOUND, pages::NOT_FOUND);
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let request = &req.headers;
    let modified = site.modified;
    let hash = entry.sha256.get(..32).unwrap_or(&entry.sha256);

    let ranged = status == StatusCode::OK && request.contains_key(header::RANGE);
    let coding = if ranged {
        None
    } else {
        negotiate(request, entry)
    };
    let size = coding.and_then(|e| entry.variant(e)).unwrap_or(entry.size);
    if status == StatusCode::OK && not_modified(request, hash, coding, modified) {
        let mut headers = file_headers(site, entry, hash, coding, status);
        headers.remove(header::CONTENT_TYPE);
        headers.remove(header::CONTENT_ENCODING);
        return response(StatusCode::NOT_MODIFIED, headers, Body::empty());
    }
    let inner = &proxy.inner;
    let whole_get = status == StatusCode::OK && !ranged && req.method == Method::GET;
    if whole_get && let Some((head, body)) = local::get(site.id, coding, path, now) {
        inner.bodies.count_hit();
        return response(status, head, Body::from(body));
    }
    let key = match coding {
        Some(e) => layout::output_variant(&manifest.project, &manifest.deployment, e, path),
        None => layout::output_file(&manifest.project, &manifest.deployment, path),
    };
    let storage = inner.storage.as_ref();
    let whole = |headers: &mut HeaderMap| {
        headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    };

    // The common case, a whole file from memory: its head was made when its body was read.
    if whole_get && inner.bodies.holds(size) {
        // Called only when the body is read from storage.
        let read = AtomicBool::new(false);
        let head = || {
            read.store(true, Ordering::Relaxed);
            let mut headers = file_headers(site, entry, hash, coding, status);
            whole(&mut headers);
            headers
        };
        let found = inner
            .bodies
            .get(storage, &key, head, |body, head| {
                (body.len() as u64 == size).then(|| (body.clone(), head.clone()))
            })
            .await;
        return match found {
            Ok(Some((body, head))) => {
                // Copied for this thread once the shared cache held it already: one request
                // for a file makes no copy.
                if !read.load(Ordering::Relaxed) {
                    local::keep(
                        inner.thread_cache_bytes,
                        site.id,
                        coding,
                        path,
                        &head,
                        &body,
                    );
                }
                response(status, head, Body::from(body))
            }
            Ok(None) => unavailable(&wrong_size(&key)),
            Err(e) if e.is_not_found() => page(StatusCode::NOT_FOUND, pages::NOT_FOUND),
            Err(e) => unavailable(&e),
        };
    }

    let mut headers = file_headers(site, entry, hash, coding, status);
    let mut status = status;
    let mut window = (0, size);
    if status == StatusCode::OK {
        whole(&mut headers);
        if ranged && if_range_holds(request, hash, modified) {
            match byte_range(request, size) {
                Range::Whole => {}
                Range::Part { start, end } => {
                    status = StatusCode::PARTIAL_CONTENT;
                    window = (start, end - start + 1);
                    if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{size}")) {
                        headers.insert(header::CONTENT_RANGE, v);
                    }
                }
                Range::Unsatisfiable => {
                    let mut res = page(StatusCode::RANGE_NOT_SATISFIABLE, pages::NO_RANGE);
                    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                        res.headers_mut().insert(header::CONTENT_RANGE, v);
                    }
                    return res;
                }
            }
        }
    }
    let (start, len) = window;
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if req.method == Method::HEAD {
        return response(status, headers, Body::empty());
    }
    let body = if inner.bodies.holds(size) {
        let slice = |body: &Bytes, _: &HeaderMap| {
            let usable = body.len() as u64 == size;
            let range = usize::try_from(start)
                .ok()
                .zip(usize::try_from(start + len).ok());
            range
                .filter(|_| usable)
                .map(|(start, end)| body.slice(start..end))
        };
        let head = || {
            let mut headers = file_headers(site, entry, hash, coding, StatusCode::OK);
            whole(&mut headers);
            headers
        };
        match inner.bodies.get(storage, &key, head, slice).await {
            Ok(Some(part)) => Ok(Body::from(part)),
            Ok(None) => Err(wrong_size(&key)),
            Err(e) => Err(e),
        }
    } else {
        storage
            .get_range(&key, start, len)
            .await
            .map(|object| Body::from_stream(object.body))
    };
    match body {
        Ok(body) => response(status, headers, body),
        // Listed but gone: the deployment is being deleted.
        Err(e) if e.is_not_found() => page(StatusCode::NOT_FOUND, pages::NOT_FOUND),
        Err(e) => unavailable(&e),
    }
}

fn wrong_size(key: &str) -> StorageError {
    StorageError::Backend(format!("{key} does not have the size its manifest says"))
}

/// The headers every response with a file's content carries: its type, caching, validators
/// and coding.
fn file_headers(
    site: &Site,
    entry: &ManifestEntry,
    hash: &str,
    coding: Option<Encoding>,
    status: StatusCode,
) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(12);
    let content_type = common_value(entry.content_type.as_bytes())
        .map_or_else(|| HeaderValue::from_str(&entry.content_type), Ok);
    if let Ok(v) = content_type {
        headers.insert(header::CONTENT_TYPE, v);
    }
    headers.insert(
        header::CACHE_CONTROL,
        if entry.immutable && status == StatusCode::OK {
            IMMUTABLE
        } else {
            REVALIDATE
        },
    );
    headers.insert(header::LAST_MODIFIED, site.last_modified.clone());
    if entry.br.is_some() || entry.gzip.is_some() {
        headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    security_headers(&mut headers);
    if let Ok(v) = HeaderValue::from_str(&format!("\"{hash}{}\"", tag_suffix(coding))) {
        headers.insert(header::ETAG, v);
    }
    if let Some(e) = coding {
        headers.insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_static(e.token()),
        );
    }
    headers
}

/// What follows the content hash in the `ETag` of a coding: each coding is a representation of
/// its own.
fn tag_suffix(coding: Option<Encoding>) -> &'static str {
    match coding {
        None => "",
        Some(Encoding::Brotli) => "-br",
        Some(Encoding::Gzip) => "-gz",
    }
}

/// Whether `tag` (quotes included) is the `ETag` of `hash` in `coding`.
fn is_tag(tag: &str, hash: &str, coding: Option<Encoding>) -> bool {
    tag.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .and_then(|t| t.strip_prefix(hash))
        .is_some_and(|rest| rest == tag_suffix(coding))
}

/// The stored coding the client takes best: br before gzip when it weighs them alike, never one
/// it refuses (`;q=0`).
fn negotiate(request: &HeaderMap, entry: &ManifestEntry) -> Option<Encoding> {
    if entry.br.is_none() && entry.gzip.is_none() {
        return None;
    }
    let mut weights: Vec<(String, f32)> = Vec::new();
    for value in request.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if !name.is_empty() {
                weights.push((name, q));
            }
        }
    }
    let weight = |token: &str| {
        weights
            .iter()
            .find(|(n, _)| n == token || (token == "gzip" && n == "x-gzip"))
            .or_else(|| weights.iter().find(|(n, _)| n == "*"))
            .map_or(0.0, |(_, q)| *q)
    };
    let mut best: Option<(Encoding, f32)> = None;
    for encoding in Encoding::ALL {
        let q = weight(encoding.token());
        if entry.variant(encoding).is_some() && q > 0.0 && best.is_none_or(|(_, b)| q > b) {
            best = Some((encoding, q));
        }
    }
    best.map(|(e, _)| e)
}

/// `If-None-Match` (weak comparison, `*`), or without it `If-Modified-Since`.
fn not_modified(
    request: &HeaderMap,
    hash: &str,
    coding: Option<Encoding>,
    modified: SystemTime,
) -> bool {
    let mut tags = request.get_all(header::IF_NONE_MATCH).iter().peekable();
    if tags.peek().is_some() {
        return tags
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|v| v.trim().trim_start_matches("W/"))
            .any(|v| v == "*" || is_tag(v, hash, coding));
    }
    request
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
        .is_some_and(|since| seconds(modified) <= seconds(since))
}

fn seconds(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `If-Range`: the range applies only to the representation the client has — a strong ETag
/// equal to ours, or exactly our `Last-Modified`.
fn if_range_holds(request: &HeaderMap, hash: &str, modified: SystemTime) -> bool {
    let Some(value) = request.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) else {
        return request.get(header::IF_RANGE).is_none();
    };
    let value = value.trim();
    if value.starts_with('"') || value.starts_with("W/") {
        return is_tag(value, hash, None);
    }
    httpdate::parse_http_date(value).is_ok_and(|date| seconds(date) == seconds(modified))
}

#[derive(Debug, PartialEq, Eq)]
enum Range {
    /// No range, one we do not serve (several ranges, another unit), or a malformed one: the
    /// whole file.
    Whole,
    /// Bytes `start..=end`.
    Part {
        start: u64,
        end: u64,
    },
    Unsatisfiable,
}

fn byte_range(request: &HeaderMap, size: u64) -> Range {
    let mut values = request.get_all(header::RANGE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Range::Whole;
    };
    let Some(spec) = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return Range::Whole;
    };
    if spec.contains(',') {
        return Range::Whole;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Range::Whole;
    };
    let number = |s: &str| {
        let s = s.trim();
        (!s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    match (first.trim().is_empty(), number(first), number(last)) {
        // The last `n` bytes.
        (true, _, Some(n)) => {
            if n == 0 || size == 0 {
                Range::Unsatisfiable
            } else {
                Range::Part {
                    start: size.saturating_sub(n),
                    end: size - 1,
                }
            }
        }
        (false, Some(start), end) if last.trim().is_empty() || end.is_some() => {
            let end = end.unwrap_or(u64::MAX);
            if end < start {
                Range::Whole
            } else if start >= size {
                Range::Unsatisfiable
            } else {
                Range::Part {
                    start,
                    end: end.min(size - 1),
                }
            }
        }
        _ => Range::Whole,
    }
}

fn redirect(location: &str, status: u16) -> Response {
    let Ok(location) = HeaderValue::from_str(location) else {
        return page(StatusCode::NOT_FOUND, pages::NOT_FOUND);
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::TEMPORARY_REDIRECT);
    let mut headers = HeaderMap::new();
    headers.insert(header::LOCATION, location);
    headers.insert(header::CACHE_CONTROL, REVALIDATE);
    security_headers(&mut headers);
    response(status, headers, Body::empty())
}

fn security_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
}

fn page(status: StatusCode, html: &'static str) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    security_headers(&mut headers);
    response(status, headers, Body::from(html))
}

/// A response whose headers are `headers` as built (not copied over one by one).
fn response(status: StatusCode, headers: HeaderMap, body: Body) -> Response {
    let mut res = Response::new(body);
    *res.status_mut() = status;
    *res.headers_mut() = headers;
    res
}

/// Too many hosts this proxy does not know were asked for at once (`routes::Budget`).
fn busy() -> Response {
    let mut res = page(StatusCode::SERVICE_UNAVAILABLE, pages::BUSY);
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    res
}

fn unavailable(err: &StorageError) -> Response {
    tracing::warn!(error = %err, "storage read failed");
    page(StatusCode::BAD_GATEWAY, pages::UNAVAILABLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: HeaderName, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).expect("value"));
        h
    }

    #[test]
    fn parses_single_byte_ranges() {
        let range = |v: &str| byte_range(&with(header::RANGE, v), 100);
        assert_eq!(range("bytes=0-9"), Range::Part { start: 0, end: 9 });
        assert_eq!(range("bytes=90-"), Range::Part { start: 90, end: 99 });
        assert_eq!(range("bytes=-10"), Range::Part { start: 90, end: 99 });
        assert_eq!(range("bytes=-1000"), Range::Part { start: 0, end: 99 });
        assert_eq!(range("bytes=50-1000"), Range::Part { start: 50, end: 99 });
        assert_eq!(range("bytes=100-"), Range::Unsatisfiable);
        assert_eq!(range("bytes=-0"), Range::Unsatisfiable);
        for whole in [
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=5-1",
            "bytes=a-b",
            "bytes=+1-2",
            "bytes=-",
            "bytes=99999999999999999999-",
            "",
        ] {
            assert_eq!(range(whole), Range::Whole, "{whole:?}");
        }
    }

    #[test]
    fn negotiates_codings() {
        let entry = ManifestEntry {
            size: 10,
            content_type: "text/html".into(),
            sha256: "0".repeat(64),
            immutable: false,
            br: Some(5),
            gzip: Some(6),
        };
        let pick = |v: &str| negotiate(&with(header::ACCEPT_ENCODING, v), &entry);
        assert_eq!(pick("gzip, deflate, br"), Some(Encoding::Brotli));
        assert_eq!(pick("gzip"), Some(Encoding::Gzip));
        assert_eq!(pick("br;q=0, gzip"), Some(Encoding::Gzip));
        assert_eq!(pick("br;q=0.5, gzip;q=0.8"), Some(Encoding::Gzip));
        assert_eq!(pick("*"), Some(Encoding::Brotli));
        assert_eq!(pick("identity"), None);
        assert_eq!(pick("*;q=0"), None);
        assert_eq!(negotiate(&HeaderMap::new(), &entry), None);
    }

    #[test]
    fn the_types_of_common_files_are_common_values() {
        for file in [
            "index.html",
            "style.css",
            "app.js",
            "data.json",
            "logo.svg",
            "robots.txt",
            "sitemap.xml",
            "site.webmanifest",
            "a.png",
            "a.jpg",
            "a.gif",
            "a.webp",
            "a.avif",
            "favicon.ico",
            "f.woff2",
            "f.woff",
            "m.wasm",
            "doc.pdf",
            "blob.bin",
        ] {
            let content_type = scalemesh_core::content_type::for_path(file);
            let value = common_value(content_type.as_bytes());
            assert_eq!(
                value.as_ref().map(HeaderValue::as_bytes),
                Some(content_type.as_bytes()),
                "{file}"
            );
        }
        assert!(common_value(b"text/html").is_none());
        assert_eq!(
            common_value(b"nosniff"),
            Some(HeaderValue::from_static("nosniff"))
        );
    }
}
