//! Content types for uploaded files: guessed from the extension, with `charset=utf-8` on text so
//! browsers never sniff an encoding.

/// The `Content-Type` a file at `path` is served with.
pub fn for_path(path: &str) -> String {
    let ext = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    let mime = match ext.as_deref() {
        // Types mime_guess gets wrong or does not know, or that browsers need exactly.
        Some("js" | "mjs" | "cjs") => "text/javascript".to_owned(),
        Some("wasm") => "application/wasm".to_owned(),
        Some("webmanifest") => "application/manifest+json".to_owned(),
        Some("map") => "application/json".to_owned(),
        Some("md") => "text/markdown".to_owned(),
        Some("avif") => "image/avif".to_owned(),
        Some(_) => mime_guess::from_path(path)
            .first()
            .map(|m| m.essence_str().to_owned())
            .unwrap_or_else(|| "application/octet-stream".to_owned()),
        None => "application/octet-stream".to_owned(),
    };
    if wants_charset(&mime) {
        format!("{mime}; charset=utf-8")
    } else {
        mime
    }
}

/// Whether files of this `Content-Type` shrink when compressed (text, JSON, SVG, WebAssembly,
/// uncompressed fonts), so the builder stores br and gzip variants of them.
pub fn is_compressible(content_type: &str) -> bool {
    let mime = content_type.split(';').next().unwrap_or("").trim();
    wants_charset(mime)
        || matches!(
            mime,
            "application/wasm"
                | "application/javascript"
                | "application/x-javascript"
                | "font/ttf"
                | "font/otf"
                | "application/vnd.ms-fontobject"
                | "image/x-icon"
                | "image/vnd.microsoft.icon"
                | "image/bmp"
        )
}

fn wants_charset(mime: &str) -> bool {
    mime.starts_with("text/")
        || matches!(
            mime,
            "application/json"
                | "application/manifest+json"
                | "application/xml"
                | "application/rss+xml"
                | "application/atom+xml"
                | "image/svg+xml"
        )
}

#[cfg(test)]
mod tests {
    use super::for_path;

    #[test]
    fn text_gets_a_charset_binary_does_not() {
        let cases = [
            ("index.html", "text/html; charset=utf-8"),
            ("a/style.CSS", "text/css; charset=utf-8"),
            ("app.js", "text/javascript; charset=utf-8"),
            ("data.json", "application/json; charset=utf-8"),
            ("logo.svg", "image/svg+xml; charset=utf-8"),
            ("photo.png", "image/png"),
            ("font.woff2", "font/woff2"),
            ("mod.wasm", "application/wasm"),
            ("README", "application/octet-stream"),
            ("x.unknownext", "application/octet-stream"),
        ];
        for (path, want) in cases {
            assert_eq!(for_path(path), want, "{path}");
        }
    }
}
