//! Header values many responses carry (the proxy's own, the types of most files on the web) as
//! static values: copying a static value touches no reference count, so a response head built
//! from them is copied by a serving thread without writing memory other cores share.

use axum::http::HeaderValue;

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

#[cfg(test)]
mod tests {
    use super::*;

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
