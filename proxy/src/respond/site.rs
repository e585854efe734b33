//! What a path of a deployment answers, decided from its manifest alone (no storage read): a
//! file and its status, a redirect, or nothing.
//!
//! In order: forced rules (`!`), the files themselves with Cloudflare Pages' HTML handling
//! (`/about` serves `about.html`, `/docs` redirects to `/docs/`, `/about.html` to `/about`),
//! the other rules, then the miss: the nearest `404.html`, or a single-page app's
//! `/index.html`.

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use scalemesh_core::layout::Manifest;
use scalemesh_core::rules::{self, Captures, NotFound, Redirect};

use super::path::{SitePath, parse_request_path};

/// Canonicalising redirects are temporary: the next deployment may lay its files out otherwise.
pub const CANONICAL_REDIRECT: u16 = 307;

/// What to percent-encode when a site path goes back into a `Location`.
const PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\')
    .add(b'^')
    .add(b'|');

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome<'m> {
    /// Serve the manifest's file at this path with this status.
    File {
        path: &'m str,
        status: u16,
    },
    Redirect {
        location: String,
        status: u16,
    },
    /// No file of the site answers: the proxy's own 404 page (with a rule's status).
    Missing {
        status: u16,
    },
}

/// What `site_path` answers in `manifest`. `query` is the request's raw query string, kept on
/// redirects.
pub fn decide<'m>(
    manifest: &'m Manifest,
    site_path: &SitePath,
    query: Option<&str>,
) -> Outcome<'m> {
    if is_hidden(&site_path.path) {
        return not_found(manifest, site_path);
    }
    let routing = &manifest.routing;
    // Only sites with rules pay for the path as rules see it.
    let request = if routing.redirects.is_empty() {
        String::new()
    } else {
        display_path(site_path)
    };
    if let Some((rule, captures)) = routing.redirect(&request, true)
        && let Some(outcome) = apply(manifest, rule, &captures, query)
    {
        return outcome;
    }
    match resolve(manifest, &site_path.path, site_path.is_dir) {
        Some(Static::Serve(path)) => return Outcome::File { path, status: 200 },
        Some(Static::Canonical(location)) => {
            return Outcome::Redirect {
                location: with_query(location, query),
                status: CANONICAL_REDIRECT,
            };
        }
        None => {}
    }
    if let Some((rule, captures)) = routing.redirect(&request, false)
        && let Some(outcome) = apply(manifest, rule, &captures, query)
    {
        return outcome;
    }
    not_found(manifest, site_path)
}

/// `/a/b` or `/a/b/`, as rules match it.
pub fn display_path(site_path: &SitePath) -> String {
    if site_path.path.is_empty() {
        "/".to_owned()
    } else if site_path.is_dir {
        format!("/{}/", site_path.path)
    } else {
        format!("/{}", site_path.path)
    }
}

/// Dot-segments other than a top-level `.well-known` are never served, whatever the manifest
/// holds.
fn is_hidden(path: &str) -> bool {
    path.split('/')
        .enumerate()
        .any(|(i, seg)| seg.starts_with('.') && !(i == 0 && seg == ".well-known"))
}

fn apply<'m>(
    manifest: &'m Manifest,
    rule: &Redirect,
    captures: &Captures,
    query: Option<&str>,
) -> Option<Outcome<'m>> {
    let encoded: Captures = captures
        .iter()
        .map(|(k, v)| (k.clone(), utf8_percent_encode(v, PATH).to_string()))
        .collect();
    let target = rule.target(&encoded);
    if rules::is_redirect(rule.status) {
        let location = if target.starts_with('/') && !target.contains('?') {
            with_query(target, query)
        } else {
            target
        };
        // A target is a site path or an absolute URL the site's owner wrote; a captured value
        // is encoded and cannot start a new authority.
        let location = collapse_leading_slashes(location);
        return Some(Outcome::Redirect {
            location,
            status: rule.status,
        });
    }
    let raw_path = target.split(['?', '#']).next().unwrap_or("");
    let path = parse_request_path(raw_path)?;
    if is_hidden(&path.path) {
        return None;
    }
    let found = match resolve(manifest, &path.path, path.is_dir) {
        Some(Static::Serve(path)) => Some(path),
        // A rewrite serves what the canonical URL would, without sending the browser there.
        _ => lookup(manifest, &path.path)
            .or_else(|| lookup(manifest, &format!("{}.html", path.path)))
            .or_else(|| lookup(manifest, &join(&path.path, "index.html"))),
    };
    Some(match (found, rule.status) {
        (Some(path), status) => Outcome::File { path, status },
        (None, 200) => return None,
        (None, status) => Outcome::Missing { status },
    })
}

fn collapse_leading_slashes(location: String) -> String {
    if location.starts_with("//") || location.starts_with("/\\") {
        format!("/{}", location.trim_start_matches(['/', '\\']))
    } else {
        location
    }
}

fn with_query(location: String, query: Option<&str>) -> String {
    match query {
        Some(q) if !q.is_empty() => format!("{location}?{q}"),
        _ => location,
    }
}

enum Static<'m> {
    Serve(&'m str),
    /// Redirect to this (already encoded) path.
    Canonical(String),
}

fn lookup<'m>(manifest: &'m Manifest, path: &str) -> Option<&'m str> {
    manifest.files.get_key_value(path).map(|(k, _)| k.as_str())
}

fn join(folder: &str, name: &str) -> String {
    if folder.is_empty() {
        name.to_owned()
    } else {
        format!("{folder}/{name}")
    }
}

fn encode(path: &str) -> String {
    utf8_percent_encode(path, PATH).to_string()
}

/// The canonical URL of a folder (`/docs/`) or of an HTML file without its extension (`/about`).
fn folder_url(folder: &str) -> String {
    if folder.is_empty() {
        "/".to_owned()
    } else {
        format!("/{}/", encode(folder))
    }
}

/// The file a path names, with Cloudflare Pages' HTML handling: files without `.html`, folders
/// with a trailing slash, everything else redirected to that form.
fn resolve<'m>(manifest: &'m Manifest, path: &str, is_dir: bool) -> Option<Static<'m>> {
    if is_dir {
        if let Some(index) = lookup(manifest, &join(path, "index.html")) {
            return Some(Static::Serve(index));
        }
        if path.is_empty() {
            return None;
        }
        // `/about/` for about.html, `/about.html/` too.
        return canonical_of(manifest, path).map(Static::Canonical);
    }
    if let Some(found) = lookup(manifest, path) {
        if let Some(stem) = path.strip_suffix(".html") {
            // `/about.html` → `/about`, `/docs/index.html` → `/docs/`, when that form serves
            // this same file.
            if let Some(folder) = stem
                .strip_suffix("index")
                .filter(|f| f.is_empty() || f.ends_with('/'))
            {
                let folder = folder.trim_end_matches('/');
                return Some(Static::Canonical(folder_url(folder)));
            }
            if lookup(manifest, stem).is_none() {
                return Some(Static::Canonical(format!("/{}", encode(stem))));
            }
        }
        return Some(Static::Serve(found));
    }
    let named_index = path == "index" || path.ends_with("/index");
    if !named_index && let Some(html) = lookup(manifest, &format!("{path}.html")) {
        return Some(Static::Serve(html));
    }
    if lookup(manifest, &join(path, "index.html")).is_some() {
        return Some(Static::Canonical(folder_url(path)));
    }
    canonical_of(manifest, path).map(Static::Canonical)
}

/// For a path that is not a file: where its page really is, if it names one in another form
/// (`/x/index`, `/x/index.html`, `/x.html` when only `x/index.html` exists, `/x/` for `x.html`).
fn canonical_of(manifest: &Manifest, path: &str) -> Option<String> {
    let stem = path.strip_suffix(".html").unwrap_or(path);
    let stem = match stem.rsplit_once('/') {
        Some((parent, "index")) => parent,
        None if stem == "index" => "",
        _ => stem,
    };
    if stem != path || lookup(manifest, &format!("{stem}.html")).is_some() {
        if !stem.is_empty() && lookup(manifest, &format!("{stem}.html")).is_some() {
            return Some(format!("/{}", encode(stem)));
        }
        if lookup(manifest, &join(stem, "index.html")).is_some() {
            return Some(folder_url(stem));
        }
    }
    None
}

/// A miss: the nearest `404.html` (404), or the app's `/index.html` (200) for page requests of
/// a single-page app.
fn not_found<'m>(manifest: &'m Manifest, site_path: &SitePath) -> Outcome<'m> {
    let has_top_404 = manifest.files.contains_key("404.html");
    let spa = match manifest.routing.not_found {
        NotFound::Auto => !has_top_404,
        NotFound::SinglePageApplication => true,
        NotFound::NotFoundPage => false,
    };
    if spa
        && is_page_request(&site_path.path)
        && !is_hidden(&site_path.path)
        && let Some(index) = lookup(manifest, "index.html")
    {
        return Outcome::File {
            path: index,
            status: 200,
        };
    }
    let mut folder = if site_path.is_dir {
        site_path.path.as_str()
    } else {
        site_path
            .path
            .rsplit_once('/')
            .map_or("", |(parent, _)| parent)
    };
    loop {
        if let Some(page) = lookup(manifest, &join(folder, "404.html")) {
            return Outcome::File {
                path: page,
                status: 404,
            };
        }
        if folder.is_empty() {
            return Outcome::Missing { status: 404 };
        }
        folder = folder.rsplit_once('/').map_or("", |(parent, _)| parent);
    }
}

/// A path a browser navigates to (no extension, or `.html`), not an asset a page loads: a
/// missing `/app.js` stays a 404 even in a single-page app.
fn is_page_request(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    match name.rsplit_once('.') {
        None => true,
        Some((_, ext)) => ext.eq_ignore_ascii_case("html") || ext.eq_ignore_ascii_case("htm"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use scalemesh_core::layout::ManifestEntry;
    use scalemesh_core::rules::{Routing, parse_headers, parse_redirects};
    use scalemesh_core::{DeploymentId, ProjectName};

    use super::*;

    fn manifest(paths: &[&str], routing: Routing) -> Manifest {
        Manifest {
            project: ProjectName::parse("site").expect("valid"),
            deployment: DeploymentId::parse("abcdefghijkl").expect("valid"),
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            files: paths
                .iter()
                .map(|p| {
                    (
                        (*p).to_owned(),
                        ManifestEntry {
                            size: 1,
                            content_type: "text/html".into(),
                            sha256: "0".repeat(64),
                            immutable: false,
                            br: None,
                            gzip: None,
                            pack: None,
                        },
                    )
                })
                .collect::<BTreeMap<_, _>>(),
            routing,
            layout: Default::default(),
        }
    }

    fn outcome(m: &Manifest, raw: &str) -> String {
        let (path, query) = match raw.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (raw, None),
        };
        match parse_request_path(path) {
            None => "invalid".to_owned(),
            Some(sp) => match decide(m, &sp, query) {
                Outcome::File { path, status } => format!("{status} {path}"),
                Outcome::Redirect { location, status } => format!("{status} -> {location}"),
                Outcome::Missing { status } => format!("{status} missing"),
            },
        }
    }

    /// Cloudflare's auto-trailing-slash table (workers static assets, "HTML handling"), with
    /// `file.html` and `folder/index.html`. Where Cloudflare goes through two redirects
    /// (`/folder.html` → `/folder` → `/folder/`), this goes straight to the end.
    #[test]
    fn follows_cloudflares_html_handling_table() {
        let m = manifest(
            &["file.html", "folder/index.html", "index.html", "404.html"],
            Routing::default(),
        );
        let table = [
            ("/file", "200 file.html"),
            ("/file.html", "307 -> /file"),
            ("/file/", "307 -> /file"),
            ("/file/index", "307 -> /file"),
            ("/file/index.html", "307 -> /file"),
            ("/folder", "307 -> /folder/"),
            ("/folder.html", "307 -> /folder/"),
            ("/folder/", "200 folder/index.html"),
            ("/folder/index", "307 -> /folder/"),
            ("/folder/index.html", "307 -> /folder/"),
            ("/", "200 index.html"),
            ("/index.html", "307 -> /"),
            ("/index", "307 -> /"),
            ("/folder?x=1", "307 -> /folder/?x=1"),
            ("/nope", "404 404.html"),
        ];
        for (request, want) in table {
            assert_eq!(outcome(&m, request), want, "{request}");
        }
    }

    #[test]
    fn a_file_and_a_folder_of_the_same_name() {
        let m = manifest(&["both.html", "both/index.html"], Routing::default());
        for (request, want) in [
            ("/both", "200 both.html"),
            ("/both/", "200 both/index.html"),
            ("/both.html", "307 -> /both"),
            ("/both/index.html", "307 -> /both/"),
        ] {
            assert_eq!(outcome(&m, request), want, "{request}");
        }
    }

    #[test]
    fn other_files_are_served_as_named() {
        let m = manifest(
            &["app.js", "data", "data.html", "x y.html"],
            Routing::default(),
        );
        assert_eq!(outcome(&m, "/app.js"), "200 app.js");
        assert_eq!(outcome(&m, "/data"), "200 data");
        assert_eq!(
            outcome(&m, "/data.html"),
            "200 data.html",
            "/data is another file"
        );
        assert_eq!(outcome(&m, "/x%20y.html"), "307 -> /x%20y");
        assert_eq!(outcome(&m, "/app.js/"), "404 missing");
    }

    #[test]
    fn misses_find_the_nearest_404_or_the_app() {
        let m = manifest(
            &["index.html", "404.html", "docs/404.html", "docs/a.html"],
            Routing::default(),
        );
        assert_eq!(outcome(&m, "/docs/zzz"), "404 docs/404.html");
        assert_eq!(outcome(&m, "/docs/deep/er/zzz"), "404 docs/404.html");
        assert_eq!(outcome(&m, "/zzz"), "404 404.html");
        let spa = manifest(&["index.html", "app.js"], Routing::default());
        assert_eq!(outcome(&spa, "/settings/profile"), "200 index.html");
        assert_eq!(outcome(&spa, "/missing.js"), "404 missing");
        let off = manifest(
            &["index.html"],
            Routing {
                not_found: NotFound::NotFoundPage,
                ..Routing::default()
            },
        );
        assert_eq!(outcome(&off, "/settings"), "404 missing");
    }

    #[test]
    fn hidden_paths_are_never_served() {
        let m = manifest(
            &[
                ".env",
                "a/.git/config",
                ".well-known/security.txt",
                "index.html",
            ],
            Routing::default(),
        );
        assert_eq!(outcome(&m, "/.env"), "404 missing");
        assert_eq!(outcome(&m, "/a/.git/config"), "404 missing");
        assert_eq!(
            outcome(&m, "/.well-known/security.txt"),
            "200 .well-known/security.txt"
        );
    }

    #[test]
    fn rules_redirect_rewrite_and_shadow() {
        let routing = Routing {
            redirects: parse_redirects(
                "/old /new.html 301\n/blog/:slug /posts/:slug 302\n/app/* /app.html 200\n/shop/* /closed.html 404\n/page /elsewhere 301\n/forced /new 308!\n/out https://example.com/x 302\n/evil/* /:splat 301\n",
            )
            .expect("valid"),
            headers: parse_headers("/*\n  X-A: 1").expect("valid"),
            not_found: NotFound::NotFoundPage,
        };
        let m = manifest(
            &[
                "new.html",
                "app.html",
                "closed.html",
                "page.html",
                "forced.html",
            ],
            routing,
        );
        assert_eq!(outcome(&m, "/old"), "301 -> /new.html");
        assert_eq!(outcome(&m, "/old?a=b"), "301 -> /new.html?a=b");
        assert_eq!(
            outcome(&m, "/blog/hello%20you"),
            "302 -> /posts/hello%20you"
        );
        assert_eq!(outcome(&m, "/app/settings/x"), "200 app.html");
        assert_eq!(outcome(&m, "/shop/a"), "404 closed.html");
        assert_eq!(
            outcome(&m, "/page"),
            "200 page.html",
            "a file shadows a rule"
        );
        assert_eq!(outcome(&m, "/forced"), "308 -> /new", "unless forced");
        assert_eq!(outcome(&m, "/out"), "302 -> https://example.com/x");
        // A captured value never turns into another host.
        assert_eq!(outcome(&m, "/evil/evil.com"), "301 -> /evil.com");
        assert_eq!(outcome(&m, "/evil/%2Fevil.com"), "invalid");
        assert_eq!(outcome(&m, "/evil/%5Cevil.com"), "invalid");
    }
}
