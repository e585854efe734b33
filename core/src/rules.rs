//! A site's routing rules: redirects and rewrites (`_redirects`), response headers (`_headers`),
//! in the syntax Netlify and Cloudflare Pages use, and the same rules written in
//! `scalemesh.json`. The builder parses them (a mistake fails the deployment with its line);
//! the manifest carries them; the proxy applies them.
//!
//! ```text
//! # _redirects: from  to  [status][!]
//! /old            /new              301
//! /blog/:slug     /posts/:slug
//! /docs/*         /guide/:splat     302
//! /app/*          /app/index.html   200
//! /shop/*         /closed.html      404
//! /moved          https://example.com/  308!
//!
//! # _headers: a path pattern, then indented `Name: value` lines
//! /assets/*
//!   Cache-Control: public, max-age=31536000, immutable
//!   X-Frame-Options: DENY
//! ```
//!
//! Patterns match the decoded request path: literal segments, `:name` placeholders (one
//! segment), and a trailing `*` (the rest, available as `:splat`). The first redirect that
//! matches wins; it applies only when no file answers the path, unless forced with `!`.
//! Every header rule that matches adds its headers.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The rules files a build's output folder can carry. They are read, not served.
pub const REDIRECTS_FILE: &str = "_redirects";
pub const HEADERS_FILE: &str = "_headers";

/// Most redirect rules a site can have (Cloudflare Pages allows 2,100).
pub const MAX_REDIRECTS: usize = 2_000;
/// Most header rules a site can have.
pub const MAX_HEADER_RULES: usize = 500;
/// Largest rules file read.
pub const MAX_RULES_FILE_BYTES: u64 = 256 * 1024;
const MAX_LINE: usize = 2_048;

/// Headers a rule may not set: they frame the message or belong to the proxy.
const RESERVED_HEADERS: &[&str] = &[
    "connection",
    "content-encoding",
    "content-length",
    "content-range",
    "host",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file} line {line}: {message}")]
pub struct RulesError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// A path pattern. Kept as written; serialized as that text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    raw: String,
    segments: Vec<Segment>,
    splat: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

/// What a pattern captured: placeholders by name, and `splat`.
pub type Captures = BTreeMap<String, String>;

impl Pattern {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let rest = raw
            .strip_prefix('/')
            .ok_or_else(|| format!("{raw:?} must start with /"))?;
        if raw.contains('?') {
            return Err(format!(
                "{raw:?}: query strings in patterns are not supported"
            ));
        }
        let mut segments = Vec::new();
        let mut splat = false;
        let parts: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.trim_end_matches('/').split('/').collect()
        };
        for (i, part) in parts.iter().enumerate() {
            if *part == "*" {
                if i + 1 != parts.len() {
                    return Err(format!("{raw:?}: `*` can only end a pattern"));
                }
                splat = true;
            } else if part.contains('*') {
                return Err(format!("{raw:?}: `*` must be a whole segment"));
            } else if let Some(name) = part.strip_prefix(':') {
                if name.is_empty()
                    || name == "splat"
                    || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    return Err(format!("{raw:?}: bad placeholder {part:?}"));
                }
                segments.push(Segment::Param(name.to_owned()));
            } else if part.is_empty() || *part == "." || *part == ".." {
                return Err(format!("{raw:?}: empty, `.` or `..` segment"));
            } else {
                segments.push(Segment::Literal((*part).to_owned()));
            }
        }
        Ok(Self {
            raw: raw.to_owned(),
            segments,
            splat,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Matches a decoded site path (`/`-led, a trailing `/` ignored).
    pub fn matches(&self, path: &str) -> Option<Captures> {
        let rest = path.strip_prefix('/')?.trim_end_matches('/');
        let parts: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('/').collect()
        };
        if parts.len() < self.segments.len() || (!self.splat && parts.len() != self.segments.len())
        {
            return None;
        }
        let mut captures = Captures::new();
        for (segment, part) in self.segments.iter().zip(&parts) {
            match segment {
                Segment::Literal(literal) if literal == part => {}
                Segment::Literal(_) => return None,
                Segment::Param(name) => {
                    captures.insert(name.clone(), (*part).to_owned());
                }
            }
        }
        if self.splat {
            captures.insert("splat".to_owned(), parts[self.segments.len()..].join("/"));
        }
        Some(captures)
    }
}

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// One redirect or rewrite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Redirect {
    pub from: Pattern,
    /// A site path (`/…`, may use the pattern's placeholders) or an `http(s)://` URL.
    pub to: String,
    #[serde(default = "default_status")]
    pub status: u16,
    /// Applies even when a file answers the path.
    #[serde(default)]
    pub force: bool,
}

fn default_status() -> u16 {
    301
}

/// Statuses a redirect rule can have: 200 rewrites, 3xx redirect, 404/410/451 serve the target
/// with that status.
const STATUSES: &[u16] = &[200, 301, 302, 303, 307, 308, 404, 410, 451];

impl Redirect {
    pub fn validate(&self) -> Result<(), String> {
        if !STATUSES.contains(&self.status) {
            return Err(format!(
                "status {} is not one of 200, 301, 302, 303, 307, 308, 404, 410, 451",
                self.status
            ));
        }
        let external = self.to.starts_with("https://") || self.to.starts_with("http://");
        let site_path = self.to.starts_with('/') && !self.to.starts_with("//");
        if !external && !site_path {
            return Err(format!(
                "{:?} must be a path starting with / or an http(s):// URL",
                self.to
            ));
        }
        if external && self.status != 200 && !is_redirect(self.status) {
            return Err(format!(
                "{:?}: only redirects (3xx) can point to another site",
                self.to
            ));
        }
        if external && self.status == 200 {
            return Err(format!(
                "{:?}: rewrites (200) must stay on the site; proxying to other sites is not supported",
                self.to
            ));
        }
        if self.to.chars().any(|c| c.is_control() || c == ' ') || self.to.contains('\\') {
            return Err(format!(
                "{:?} holds a space, backslash or control character",
                self.to
            ));
        }
        for placeholder in placeholders(&self.to) {
            let known = placeholder == "splat" && self.from.splat
                || self
                    .from
                    .segments
                    .iter()
                    .any(|s| matches!(s, Segment::Param(n) if *n == placeholder));
            if !known {
                return Err(format!(
                    "{:?} uses :{placeholder}, which {} does not capture",
                    self.to, self.from
                ));
            }
        }
        Ok(())
    }

    /// The target for a match: placeholders replaced by what they captured.
    pub fn target(&self, captures: &Captures) -> String {
        let mut out = String::with_capacity(self.to.len());
        let mut rest = self.to.as_str();
        while let Some(at) = rest.find(':') {
            out.push_str(&rest[..at]);
            let name_len = rest[at + 1..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len() - at - 1);
            let name = &rest[at + 1..at + 1 + name_len];
            match captures.get(name) {
                Some(value) if !name.is_empty() => out.push_str(value),
                _ => out.push_str(&rest[at..at + 1 + name_len]),
            }
            rest = &rest[at + 1 + name_len..];
        }
        out.push_str(rest);
        out
    }
}

pub fn is_redirect(status: u16) -> bool {
    (300..400).contains(&status)
}

/// `:name` placeholders in a target, leaving `https://` and ports alone.
fn placeholders(to: &str) -> Vec<String> {
    let path = match to.find("://") {
        Some(at) => match to[at + 3..].find('/') {
            Some(slash) => &to[at + 3 + slash..],
            None => "",
        },
        None => to,
    };
    path.split([':'])
        .skip(1)
        .map(|s| {
            s.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|n| !n.is_empty())
        .collect()
}

/// Headers added to responses for paths matching `path`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderRule {
    pub path: Pattern,
    pub headers: BTreeMap<String, String>,
}

impl HeaderRule {
    pub fn validate(&self) -> Result<(), String> {
        for (name, value) in &self.headers {
            check_header(name, value)?;
        }
        Ok(())
    }
}

fn check_header(name: &str, value: &str) -> Result<(), String> {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || name.len() > 256 || !name.chars().all(token) {
        return Err(format!("{name:?} is not a header name"));
    }
    if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(format!("{name} is set by the server and cannot be changed"));
    }
    if value.len() > MAX_LINE || value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(format!(
            "the value of {name} holds a control character or is too long"
        ));
    }
    if sets_domain_cookie(name, value) {
        return Err(format!(
            "{name} cannot carry a Domain attribute: a cookie for a whole domain reaches every \
             other site under it; leave Domain out, and the cookie stays with this site's host"
        ));
    }
    Ok(())
}

/// Whether a header sets a cookie with a `Domain` attribute (`a=b; Path=/; Domain=example.com`).
fn sets_domain_cookie(name: &str, value: &str) -> bool {
    name.eq_ignore_ascii_case("set-cookie")
        && value.split(';').skip(1).any(|attribute| {
            attribute
                .split('=')
                .next()
                .is_some_and(|a| a.trim().eq_ignore_ascii_case("domain"))
        })
}

/// What to answer for a path no file, rule or folder answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NotFound {
    /// A single-page app when the site has no top-level `404.html`, else `404-page`.
    #[default]
    Auto,
    /// `/index.html` with 200 for page requests (paths without a file extension, or `.html`).
    SinglePageApplication,
    /// The nearest `404.html` up the path's folders, with 404; a plain page when there is none.
    #[serde(rename = "404-page")]
    NotFoundPage,
}

/// The routing part of a deployment: what the proxy needs beyond the file list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Routing {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redirects: Vec<Redirect>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderRule>,
    #[serde(default)]
    pub not_found: NotFound,
}

impl Routing {
    pub fn is_empty(&self) -> bool {
        self.redirects.is_empty() && self.headers.is_empty() && self.not_found == NotFound::Auto
    }

    /// Refuses rules no rules file could have given: too many, or one that does not validate
    /// (what is wrong, naming the rule). Whoever sends a manifest is held to what the CLI and
    /// the builder check as they read `_redirects`, `_headers` and `scalemesh.json`.
    pub fn validate(&self) -> Result<(), String> {
        if self.redirects.len() > MAX_REDIRECTS {
            return Err(format!("a site has at most {MAX_REDIRECTS} redirects"));
        }
        if self.headers.len() > MAX_HEADER_RULES {
            return Err(format!(
                "a site has at most {MAX_HEADER_RULES} header rules"
            ));
        }
        for rule in &self.redirects {
            rule.validate()
                .map_err(|e| format!("the redirect from {}: {e}", rule.from))?;
        }
        for rule in &self.headers {
            rule.validate()
                .map_err(|e| format!("the headers for {}: {e}", rule.path))?;
        }
        Ok(())
    }

    /// The first redirect matching `path`, among those `force`d or not.
    pub fn redirect(&self, path: &str, forced: bool) -> Option<(&Redirect, Captures)> {
        self.redirects
            .iter()
            .filter(|r| r.force == forced)
            .find_map(|r| r.from.matches(path).map(|c| (r, c)))
    }

    /// Every header the rules add for `path`, in rule order; a name set twice is joined with
    /// `, ` as HTTP lists are.
    pub fn headers_for(&self, path: &str) -> Vec<(&str, String)> {
        let mut out: Vec<(&str, String)> = Vec::new();
        for rule in self
            .headers
            .iter()
            .filter(|r| r.path.matches(path).is_some())
        {
            for (name, value) in &rule.headers {
                // Refused when the deployment was made; one made before a rule was refused (or
                // by hand) still never sends it: neither a header that frames the message nor
                // a cookie for a whole domain.
                if check_header(name, value).is_err() {
                    continue;
                }
                match out.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
                    Some((_, existing)) => {
                        existing.push_str(", ");
                        existing.push_str(value);
                    }
                    None => out.push((name.as_str(), value.clone())),
                }
            }
        }
        out
    }
}

fn error(file: &str, line: usize, message: impl Into<String>) -> RulesError {
    RulesError {
        file: file.to_owned(),
        line,
        message: message.into(),
    }
}

/// Parses a `_redirects` file.
pub fn parse_redirects(text: &str) -> Result<Vec<Redirect>, RulesError> {
    let file = REDIRECTS_FILE;
    let mut rules = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let n = index + 1;
        if line.len() > MAX_LINE {
            return Err(error(file, n, "the line is too long"));
        }
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 2 {
            return Err(error(file, n, "expected `from to [status]`"));
        }
        let from = Pattern::parse(fields[0]).map_err(|m| error(file, n, m))?;
        let (status, force) = match fields.get(2) {
            None => (301, false),
            Some(raw) => {
                let (digits, force) = match raw.strip_suffix('!') {
                    Some(d) => (d, true),
                    None => (*raw, false),
                };
                let status = digits.parse::<u16>().map_err(|_| {
                    if raw.contains('=') {
                        error(file, n, "conditions (`key=value`) are not supported")
                    } else {
                        error(file, n, format!("{raw:?} is not a status code"))
                    }
                })?;
                (status, force)
            }
        };
        if fields.len() > 3 {
            return Err(error(
                file,
                n,
                "unexpected text after the status (conditions are not supported)",
            ));
        }
        let rule = Redirect {
            from,
            to: fields[1].to_owned(),
            status,
            force,
        };
        rule.validate().map_err(|m| error(file, n, m))?;
        rules.push(rule);
        if rules.len() > MAX_REDIRECTS {
            return Err(error(file, n, format!("more than {MAX_REDIRECTS} rules")));
        }
    }
    Ok(rules)
}

/// Parses a `_headers` file.
pub fn parse_headers(text: &str) -> Result<Vec<HeaderRule>, RulesError> {
    let file = HEADERS_FILE;
    let mut rules: Vec<HeaderRule> = Vec::new();
    for (index, raw_line) in text.lines().enumerate() {
        let n = index + 1;
        if raw_line.len() > MAX_LINE {
            return Err(error(file, n, "the line is too long"));
        }
        let line = raw_line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let indented = raw_line.starts_with([' ', '\t']);
        if !indented {
            let path = Pattern::parse(line).map_err(|m| error(file, n, m))?;
            rules.push(HeaderRule {
                path,
                headers: BTreeMap::new(),
            });
            if rules.len() > MAX_HEADER_RULES {
                return Err(error(
                    file,
                    n,
                    format!("more than {MAX_HEADER_RULES} rules"),
                ));
            }
            continue;
        }
        let Some(rule) = rules.last_mut() else {
            return Err(error(file, n, "a header before any path"));
        };
        let Some((name, value)) = line.split_once(':') else {
            return Err(error(file, n, "expected `Name: value`"));
        };
        let (name, value) = (name.trim(), value.trim());
        check_header(name, value).map_err(|m| error(file, n, m))?;
        match rule.headers.get_mut(name) {
            Some(existing) => {
                existing.push_str(", ");
                existing.push_str(value);
            }
            None => {
                rule.headers.insert(name.to_owned(), value.to_owned());
            }
        }
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_placeholders_and_splats() {
        let p = Pattern::parse("/blog/:year/:slug").expect("valid");
        let c = p.matches("/blog/2024/hello").expect("matches");
        assert_eq!(c["year"], "2024");
        assert_eq!(c["slug"], "hello");
        assert!(p.matches("/blog/2024").is_none());
        assert!(p.matches("/blog/2024/hello/x").is_none());
        let s = Pattern::parse("/docs/*").expect("valid");
        assert_eq!(s.matches("/docs/a/b.html").expect("m")["splat"], "a/b.html");
        assert_eq!(s.matches("/docs/").expect("m")["splat"], "");
        assert_eq!(s.matches("/docs").expect("m")["splat"], "");
        assert!(s.matches("/doc").is_none());
        assert!(Pattern::parse("/").expect("valid").matches("/").is_some());
        assert!(
            Pattern::parse("/about")
                .expect("v")
                .matches("/about/")
                .is_some()
        );
        for bad in [
            "no-slash", "/a/*/b", "/a*", "/:", "/a/../b", "/a?x=1", "//x",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_redirects_like_netlify() {
        let rules = parse_redirects(
            "# comment\n\n/old /new\n/blog/:slug  /posts/:slug 302\n/app/*  /index.html  200\n/go  https://example.com/x 308!\n",
        )
        .expect("valid");
        assert_eq!(rules.len(), 4);
        assert_eq!((rules[0].status, rules[0].force), (301, false));
        assert_eq!(rules[1].status, 302);
        assert_eq!(rules[2].status, 200);
        assert!(rules[3].force);
        let c = rules[1].from.matches("/blog/hi").expect("m");
        assert_eq!(rules[1].target(&c), "/posts/hi");
        let splat = parse_redirects("/a/* /b/:splat").expect("valid");
        let c = splat[0].from.matches("/a/x/y").expect("m");
        assert_eq!(splat[0].target(&c), "/b/x/y");
    }

    #[test]
    fn redirect_errors_name_the_line() {
        let cases = [
            ("/a /b\n/c\n", 2, "expected"),
            ("/a /b 299\n", 1, "status"),
            ("/a /b abc\n", 1, "not a status"),
            ("\n\n/a /b 301 Country=us\n", 3, "conditions"),
            ("/a //evil.com\n", 1, "must be a path"),
            ("/a javascript:alert(1)\n", 1, "must be a path"),
            ("/a https://x.test/ 200\n", 1, "rewrites"),
            ("/a /b/:slug\n", 1, "does not capture"),
            ("/a /b/:splat\n", 1, "does not capture"),
            ("a /b\n", 1, "must start with /"),
        ];
        for (text, line, needle) in cases {
            let err = parse_redirects(text).expect_err(text);
            assert_eq!(err.line, line, "{text:?}: {err}");
            assert!(err.to_string().contains(needle), "{text:?}: {err}");
            assert!(err.to_string().starts_with("_redirects line "), "{err}");
        }
    }

    #[test]
    fn parses_headers_blocks() {
        let rules = parse_headers(
            "/*\n  X-Frame-Options: DENY\n  X-Test: a\n  X-Test: b\n/assets/*\n\tCache-Control: public, max-age=31536000, immutable\n",
        )
        .expect("valid");
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].headers["X-Test"], "a, b");
        let routing = Routing {
            headers: rules,
            ..Routing::default()
        };
        let got = routing.headers_for("/assets/app.js");
        assert_eq!(got.len(), 3);
        assert_eq!(routing.headers_for("/index.html").len(), 2);
        for (text, line) in [
            ("  X-A: b\n", 1),
            ("/a\n  no colon\n", 2),
            ("/a\n  Content-Length: 5\n", 2),
            ("/a\n  Bad Name: 5\n", 2),
            ("/a\n  Transfer-Encoding: chunked\n", 2),
            ("/a\n  X-Ok: 1\n  Set-Cookie: s=1; Domain=localhost\n", 3),
            ("/a\n  set-cookie: s=1; path=/; DOMAIN = .example.com\n", 2),
            ("/a\n  Set-Cookie: s=1;Domain\n", 2),
        ] {
            assert_eq!(parse_headers(text).expect_err(text).line, line, "{text:?}");
        }
    }

    #[test]
    fn cookies_never_reach_other_sites() {
        // A host-only cookie is fine, even one whose value mentions a domain.
        let rules = parse_headers("/*\n  Set-Cookie: s=domain=x; Path=/; Secure\n").expect("valid");
        assert_eq!(rules[0].headers["Set-Cookie"], "s=domain=x; Path=/; Secure");
        let rule = HeaderRule {
            path: Pattern::parse("/*").expect("pattern"),
            headers: BTreeMap::from([("Set-Cookie".into(), "a=1; Domain=localhost".into())]),
        };
        assert!(rule.validate().expect_err("refused").contains("Domain"));
        // One stored before the rule existed is not sent.
        let routing = Routing {
            headers: vec![rule],
            ..Routing::default()
        };
        assert!(routing.headers_for("/x").is_empty());
    }

    /// Routing sent by hand (not read from rules files) is held to what the files are, and a
    /// rule that frames the message is never sent, even from a deployment already stored.
    #[test]
    fn routing_no_rules_file_could_give_is_refused() {
        let rules = |json: &str| serde_json::from_str::<Routing>(json).expect("json");
        // (routing, refused because)
        let table = [
            (r#"{"redirects":[{"from":"/a","to":"/b"}]}"#, None),
            (r#"{"headers":[{"path":"/*","headers":{"X-A":"1"}}]}"#, None),
            (
                r#"{"headers":[{"path":"/*","headers":{"Content-Length":"0"}}]}"#,
                Some("the headers for /*: Content-Length is set by the server"),
            ),
            (
                r#"{"headers":[{"path":"/*","headers":{"X-A":"a\u0007b"}}]}"#,
                Some("control character"),
            ),
            (
                r#"{"redirects":[{"from":"/x","to":"javascript:alert(1)","status":302}]}"#,
                Some("the redirect from /x: \"javascript:alert(1)\" must be a path"),
            ),
            (
                r#"{"redirects":[{"from":"/y","to":"/z","status":999}]}"#,
                Some("status 999"),
            ),
        ];
        for (json, refused) in table {
            match (rules(json).validate(), refused) {
                (Ok(()), None) => {}
                (Err(e), Some(why)) => assert!(e.contains(why), "{json}: {e}"),
                (got, _) => panic!("{json}: {got:?}"),
            }
        }
        let many = format!(
            r#"{{"redirects":[{}]}}"#,
            vec![r#"{"from":"/a","to":"/b"}"#; MAX_REDIRECTS + 1].join(",")
        );
        assert!(rules(&many).validate().is_err());
        let stored = rules(
            r#"{"headers":[{"path":"/*","headers":{"Transfer-Encoding":"chunked","X-A":"1"}}]}"#,
        );
        assert_eq!(stored.headers_for("/x"), vec![("X-A", "1".to_owned())]);
    }

    #[test]
    fn routing_round_trips_through_json() {
        let routing = Routing {
            redirects: parse_redirects("/a/:x /b/:x 302!").expect("valid"),
            headers: parse_headers("/*\n  X-A: 1").expect("valid"),
            not_found: NotFound::SinglePageApplication,
        };
        let json = serde_json::to_string(&routing).expect("json");
        assert!(json.contains("single-page-application"), "{json}");
        let back: Routing = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, routing);
        let page: NotFound = serde_json::from_str("\"404-page\"").expect("parse");
        assert_eq!(page, NotFound::NotFoundPage);
    }
}
