//! The proxy's own pages, for when a site has none of its own, and the responses built around
//! them.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use scalemesh_core::storage::StorageError;

use super::headers::{REVALIDATE, security_headers};

pub const NOT_FOUND: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>404: not found</title>\
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:15vh auto;padding:0 1rem;color:#222}\
@media (prefers-color-scheme:dark){body{background:#111;color:#ddd}}h1{font-size:1.4rem}</style></head>\
<body><h1>404: not found</h1><p>There is nothing at this address.</p></body></html>\n";

pub const NO_SITE: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>404: no site here</title>\
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:15vh auto;padding:0 1rem;color:#222}\
@media (prefers-color-scheme:dark){body{background:#111;color:#ddd}}h1{font-size:1.4rem}</style></head>\
<body><h1>404: no site here</h1><p>No deployment is served at this host name.</p></body></html>\n";

pub const UNAVAILABLE: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>502: storage unavailable</title></head><body><h1>502: storage unavailable</h1>\
<p>The site's files could not be read just now. Try again shortly.</p></body></html>\n";

pub const BUSY: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>503: busy</title></head><body><h1>503: busy</h1>\
<p>This server is looking up too many sites at once. Try again in a second.</p></body></html>\n";

pub const NOT_ALLOWED: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>405: method not allowed</title></head><body><h1>405: method not allowed</h1>\
<p>Sites answer GET and HEAD only.</p></body></html>\n";

pub const NO_RANGE: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>416: range not satisfiable</title></head><body><h1>416: range not satisfiable</h1>\
<p>The requested bytes are past the end of the file.</p></body></html>\n";

pub fn redirect(location: &str, status: u16) -> Response {
    let Ok(location) = HeaderValue::from_str(location) else {
        return page(StatusCode::NOT_FOUND, NOT_FOUND);
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::TEMPORARY_REDIRECT);
    let mut headers = HeaderMap::new();
    headers.insert(header::LOCATION, location);
    headers.insert(header::CACHE_CONTROL, REVALIDATE);
    security_headers(&mut headers);
    response(status, headers, Body::empty())
}

pub fn page(status: StatusCode, html: &'static str) -> Response {
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
pub fn response(status: StatusCode, headers: HeaderMap, body: Body) -> Response {
    let mut res = Response::new(body);
    *res.status_mut() = status;
    *res.headers_mut() = headers;
    res
}

/// Too many hosts this proxy does not know were asked for at once (the budget of `resolve`'s table).
pub fn busy() -> Response {
    let mut res = page(StatusCode::SERVICE_UNAVAILABLE, BUSY);
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    res
}

pub fn unavailable(err: &StorageError) -> Response {
    tracing::warn!(error = %err, "storage read failed");
    page(StatusCode::BAD_GATEWAY, UNAVAILABLE)
}
