//! The headers of a file's responses: type, caching, validators, coding, and the security
//! headers every answer carries.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use scalemesh_core::layout::{Encoding, ManifestEntry};

use crate::resolve::Site;
use crate::values::common_value;

pub const REVALIDATE: HeaderValue = HeaderValue::from_static("public, max-age=0, must-revalidate");
const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");

/// The headers every response with a file's content carries: its type, caching, validators
/// and coding.
pub fn file_headers(
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

/// What a whole body's response adds: that ranges are served, and its length.
pub fn whole(headers: &mut HeaderMap, size: u64) {
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
}

/// What follows the content hash in the `ETag` of a coding: each coding is a representation of
/// its own.
pub fn tag_suffix(coding: Option<Encoding>) -> &'static str {
    match coding {
        None => "",
        Some(Encoding::Brotli) => "-br",
        Some(Encoding::Gzip) => "-gz",
    }
}

pub fn security_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
}

#[cfg(test)]
pub mod tests {
    use axum::http::{HeaderMap, HeaderName, HeaderValue};

    /// Request headers with one `name: value`.
    pub fn with(name: HeaderName, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).expect("value"));
        h
    }
}
