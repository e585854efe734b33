//! Request paths to site paths. The raw path is percent-decoded exactly once, then checked as a
//! whole: anything that could climb out of a deployment (`..`, `.`, backslashes, NUL, empty
//! segments) is no path of the site, whatever encoding it arrived in.

use percent_encoding::percent_decode_str;

/// A path inside one deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SitePath {
    /// `/`-joined segments without a leading `/`; empty for the site's root.
    pub path: String,
    /// Whether the request named a folder (`/docs/`).
    pub is_dir: bool,
}

/// Parses the raw (still percent-encoded) path of a request, `None` when it cannot name a file
/// of a site.
pub fn parse_request_path(raw: &str) -> Option<SitePath> {
    let rest = raw.strip_prefix('/')?;
    let decoded = percent_decode_str(rest).decode_utf8().ok()?;
    if decoded.chars().any(|c| c == '\\' || c.is_control()) || decoded.len() > 1024 {
        return None;
    }
    if decoded.is_empty() {
        return Some(SitePath {
            path: String::new(),
            is_dir: true,
        });
    }
    let is_dir = decoded.ends_with('/');
    let body = if is_dir {
        &decoded[..decoded.len() - 1]
    } else {
        &decoded[..]
    };
    let ok = body
        .split('/')
        .all(|seg| !seg.is_empty() && seg != "." && seg != "..");
    ok.then(|| SitePath {
        path: body.to_owned(),
        is_dir,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str) -> Option<SitePath> {
        Some(SitePath {
            path: path.to_owned(),
            is_dir: false,
        })
    }

    fn dir(path: &str) -> Option<SitePath> {
        Some(SitePath {
            path: path.to_owned(),
            is_dir: true,
        })
    }

    #[test]
    fn parses_ordinary_paths() {
        let cases = [
            ("/", dir("")),
            ("/index.html", file("index.html")),
            ("/docs/", dir("docs")),
            ("/a/b/c.js", file("a/b/c.js")),
            ("/hello%20world.txt", file("hello world.txt")),
            ("/caf%C3%A9.html", file("café.html")),
            ("/a..b", file("a..b")),
        ];
        for (raw, want) in cases {
            assert_eq!(parse_request_path(raw), want, "{raw}");
        }
    }

    #[test]
    fn refuses_traversal_in_every_encoding() {
        for raw in [
            "",
            "x",
            "/..",
            "/../etc/passwd",
            "/a/../../b",
            "/%2e%2e/x",
            "/%2E%2E%2Fx",
            "/..%2fx",
            "/.%2e/x",
            "/a/%2e/b",
            "/..\\x",
            "/a%5c..%5cb",
            "/a%00.html",
            "/%c0%ae%c0%ae/x",
            "//etc/passwd",
            "/a//b",
            "/./a",
            "/%0d%0aSet-Cookie:x",
            "/%ff",
        ] {
            assert_eq!(parse_request_path(raw), None, "{raw:?}");
        }
        // Decoded once: a double-encoded dot-dot is a literal file name, never a parent.
        assert_eq!(parse_request_path("/%252e%252e/x"), file("%2e%2e/x"));
    }
}
