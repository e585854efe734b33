//! A file's response: a conditional request answered first, then the whole body from memory
//! (the common case), or else a range, a `HEAD`, or a body streamed from storage.

use std::time::Instant;

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use scalemesh_core::layout::{Encoding, ManifestEntry};
use scalemesh_core::storage::StorageError;

use super::coding::negotiate;
use super::conditional::{if_range_holds, not_modified};
use super::headers::{self, file_headers};
use super::layers::Layers;
use super::pages::{self, page, response};
use super::range::{Range, byte_range};
use crate::bodies::{self, Part, Whole, Window};
use crate::resolve::Site;

/// A file a request asked for: the site, the file's path in it, the status its outcome gives
/// (`200`, or that of a rule or a `404.html`), the request, and when it arrived.
pub struct Asked<'a> {
    pub site: &'a Site,
    pub path: &'a str,
    pub status: u16,
    pub req: &'a Parts,
    pub now: Instant,
}

/// The representation a response carries: the file, in which coding, its size and validators.
struct Representation<'a> {
    site: &'a Site,
    entry: &'a ManifestEntry,
    /// The content hash the `ETag` is made of.
    hash: &'a str,
    coding: Option<Encoding>,
    size: u64,
    status: StatusCode,
}

impl Representation<'_> {
    fn headers(&self, status: StatusCode) -> HeaderMap {
        file_headers(self.site, self.entry, self.hash, self.coding, status)
    }

    /// The head of the whole `200` response, kept with the body when it is read.
    fn whole_head(&self) -> HeaderMap {
        let mut head = self.headers(StatusCode::OK);
        headers::whole(&mut head, self.size);
        head
    }

    fn body<'a>(&'a self, path: &'a str) -> bodies::File<'a> {
        bodies::File {
            site: self.site,
            path,
            coding: self.coding,
            size: self.size,
        }
    }
}

/// The response for the file `asked` names.
pub async fn respond(layers: Layers<'_>, asked: Asked<'_>) -> Response {
    let Some(entry) = asked.site.manifest.files.get(asked.path) else {
        return page(StatusCode::NOT_FOUND, pages::NOT_FOUND);
    };
    let status = StatusCode::from_u16(asked.status).unwrap_or(StatusCode::OK);
    let request = &asked.req.headers;
    let ranged = status == StatusCode::OK && request.contains_key(header::RANGE);
    // A range is of the file itself, never of a coding of it.
    let coding = if ranged {
        None
    } else {
        negotiate(request, entry)
    };
    let rep = Representation {
        site: asked.site,
        entry,
        hash: entry.sha256.get(..32).unwrap_or(&entry.sha256),
        coding,
        size: coding.and_then(|e| entry.variant(e)).unwrap_or(entry.size),
        status,
    };
    if status == StatusCode::OK && not_modified(request, rep.hash, coding, asked.site.modified) {
        let mut headers = rep.headers(status);
        headers.remove(header::CONTENT_TYPE);
        headers.remove(header::CONTENT_ENCODING);
        return response(StatusCode::NOT_MODIFIED, headers, Body::empty());
    }
    let whole_get = status == StatusCode::OK && !ranged && asked.req.method == Method::GET;
    if whole_get && layers.bodies.holds(rep.size) {
        whole(layers, &rep, &asked).await
    } else {
        part(layers, &rep, &asked, ranged).await
    }
}

/// A whole `200` body from memory, with the head made when it was read.
async fn whole(layers: Layers<'_>, rep: &Representation<'_>, asked: &Asked<'_>) -> Response {
    let file = rep.body(asked.path);
    let head = || rep.whole_head();
    match layers
        .bodies
        .whole(layers.storage, &file, asked.now, head)
        .await
    {
        // Sent from its memory file when it has one (`Sendable`).
        Ok(Whole { head, body }) => response(rep.status, head, Body::from(body.into_bytes())),
        Err(e) => failed(&e),
    }
}

/// Any other response with the file's content: a range, a `HEAD`, another status, or a body
/// too large to keep in memory.
async fn part(
    layers: Layers<'_>,
    rep: &Representation<'_>,
    asked: &Asked<'_>,
    ranged: bool,
) -> Response {
    let mut headers = rep.headers(rep.status);
    let (status, window) = if rep.status == StatusCode::OK {
        headers::whole(&mut headers, rep.size);
        match window(rep, asked, ranged, &mut headers) {
            Some(chosen) => chosen,
            None => return unsatisfiable(rep.size),
        }
    } else {
        (
            rep.status,
            Window {
                start: 0,
                len: rep.size,
            },
        )
    };
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(window.len));
    if asked.req.method == Method::HEAD {
        return response(status, headers, Body::empty());
    }
    let file = rep.body(asked.path);
    let head = || rep.whole_head();
    match layers
        .bodies
        .range(layers.storage, &file, window, head)
        .await
    {
        // Sent from its memory file when it has one (`Sendable`).
        Ok(Part::Memory(body)) => response(status, headers, Body::from(body.into_bytes())),
        Ok(Part::Stream(stream)) => response(status, headers, Body::from_stream(stream)),
        Err(e) => failed(&e),
    }
}

/// The status and bytes of a `200` file's response: the whole file, or the one range asked for
/// (a `206`, its `Content-Range` added to `headers`); `None` for a range outside the file.
fn window(
    rep: &Representation<'_>,
    asked: &Asked<'_>,
    ranged: bool,
    headers: &mut HeaderMap,
) -> Option<(StatusCode, Window)> {
    let size = rep.size;
    let all = (
        StatusCode::OK,
        Window {
            start: 0,
            len: size,
        },
    );
    let request = &asked.req.headers;
    if !ranged || !if_range_holds(request, rep.hash, asked.site.modified) {
        return Some(all);
    }
    match byte_range(request, size) {
        Range::Whole => Some(all),
        Range::Part { start, end } => {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{size}")) {
                headers.insert(header::CONTENT_RANGE, v);
            }
            let window = Window {
                start,
                len: end - start + 1,
            };
            Some((StatusCode::PARTIAL_CONTENT, window))
        }
        Range::Unsatisfiable => None,
    }
}

/// The answer to a range of which no byte is in a file of `size` bytes.
fn unsatisfiable(size: u64) -> Response {
    let mut res = page(StatusCode::RANGE_NOT_SATISFIABLE, pages::NO_RANGE);
    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
        res.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    res
}

/// A body that could not be read: listed but gone (the deployment is being deleted) is a 404;
/// anything else, storage failing.
fn failed(e: &StorageError) -> Response {
    if e.is_not_found() {
        page(StatusCode::NOT_FOUND, pages::NOT_FOUND)
    } else {
        pages::unavailable(e)
    }
}
