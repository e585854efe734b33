//! HTTP semantics, and nothing kept: one request is host → site (`crate::resolve`) → what the
//! path answers (`site::decide`) → the response, with validators, ranges, the coding the client
//! takes and the site's rule headers; bodies come from `crate::bodies`. This layer keeps no
//! cache, no thread-local and no static of its own.

mod coding;
mod conditional;
mod file;
mod headers;
mod layers;
mod pages;
mod path;
mod range;
mod site;

use std::time::Instant;

use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
pub use layers::Layers;
pub use path::{SitePath, parse_request_path};
use site::Outcome;

use crate::resolve::{ResolveError, Served, Site};

/// The response to `req`.
pub async fn respond(layers: Layers<'_>, req: &Parts) -> Response {
    if req.method != Method::GET && req.method != Method::HEAD {
        let mut res = pages::page(StatusCode::METHOD_NOT_ALLOWED, pages::NOT_ALLOWED);
        res.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return res;
    }
    let Some(host) = host_of(req) else {
        return pages::page(StatusCode::NOT_FOUND, pages::NO_SITE);
    };
    // One clock read for the whole request.
    let now = Instant::now();
    let found = match layers.resolver.site(layers.storage, host, now).await {
        Ok(Some(found)) => found,
        Ok(None) => return pages::page(StatusCode::NOT_FOUND, pages::NO_SITE),
        Err(ResolveError::Storage(e)) => return pages::unavailable(&e),
        Err(ResolveError::Busy) => return pages::busy(),
    };
    let mut res = match parse_request_path(req.uri.path()) {
        None => pages::page(StatusCode::NOT_FOUND, pages::NOT_FOUND),
        Some(site_path) => path(layers, &found.site, &site_path, req, now).await,
    };
    if found.served == Served::Preview {
        res.headers_mut()
            .insert("x-robots-tag", HeaderValue::from_static("noindex"));
    }
    res
}

/// What `site_path` of `site` answers, with the site's rule headers.
async fn path(
    layers: Layers<'_>,
    site: &Site,
    site_path: &SitePath,
    req: &Parts,
    now: Instant,
) -> Response {
    let manifest = &site.manifest;
    let mut res = match site::decide(manifest, site_path, req.uri.query()) {
        Outcome::File { path, status } => {
            let asked = file::Asked {
                site,
                path,
                status,
                req,
                now,
            };
            file::respond(layers, asked).await
        }
        Outcome::Redirect { location, status } => pages::redirect(&location, status),
        Outcome::Missing { status } => pages::page(
            StatusCode::from_u16(status).unwrap_or(StatusCode::NOT_FOUND),
            pages::NOT_FOUND,
        ),
    };
    if !res.status().is_server_error() && !manifest.routing.headers.is_empty() {
        let path = site::display_path(site_path);
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
