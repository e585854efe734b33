//! Each serving thread's own copies of whole responses it served a moment ago: a hit in the
//! shared body cache still takes its lock and touches reference counts that every core touches,
//! and those shared cache lines bounce between cores on every request. A copy held by one
//! thread alone is read without either.
//!
//! The copies are keyed by site (a deployment as loaded, unique in the process, so a reloaded
//! or deleted deployment's copies are never found again), coding and file path; deployments
//! are immutable, so a copy is never stale. Each thread holds at most its budget in bytes and
//! frees a quarter of it when full. A copy is made of a body the shared cache already held
//! (a second request, not the first), and it is used for a second at most before the request
//! goes through the shared cache again, so the shared cache keeps seeing which files are hot.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use bytes::Bytes;
use scalemesh_core::layout::Encoding;

use super::shared::head_cost;
use crate::values::common_value;

/// Larger bodies are not copied per thread: copying them out to the socket costs far more
/// than the shared cache's bookkeeping.
pub const MAX_OBJECT: u64 = 64 * 1024;

/// What a copy costs beyond its body and head: its key, its slot in the maps and the
/// allocations' own bookkeeping.
const OVERHEAD: usize = 256;

/// How long a copy is used before the shared cache is asked again.
const FRESH: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Copies {
    bytes: usize,
    /// (site, coding) → path → response.
    sites: HashMap<(u64, Option<Encoding>), HashMap<Box<str>, Copy>>,
}

struct Copy {
    head: HeaderMap,
    body: Bytes,
    cost: usize,
    until: Instant,
}

thread_local! {
    static COPIES: RefCell<Copies> = RefCell::new(Copies::default());
}

/// This thread's copy of the response for `path` of `site` in `coding`, unless it is due to
/// be checked against the shared cache.
pub fn get(
    site: u64,
    coding: Option<Encoding>,
    path: &str,
    now: Instant,
) -> Option<(HeaderMap, Bytes)> {
    COPIES.with_borrow(|copies| {
        copies
            .sites
            .get(&(site, coding))?
            .get(path)
            .filter(|copy| now < copy.until)
            .map(|copy| (copy.head.clone(), copy.body.clone()))
    })
}

/// Keeps a copy of `head` and `body` for this thread, within `budget` bytes.
pub fn keep(
    budget: usize,
    site: u64,
    coding: Option<Encoding>,
    path: &str,
    head: &HeaderMap,
    body: &Bytes,
) {
    if body.len() as u64 > MAX_OBJECT || body.len() > budget / 4 {
        return;
    }
    let head = own_head(head, body.is_empty());
    let cost = body.len() + path.len() + head_cost(&head) + OVERHEAD;
    if cost > budget / 4 {
        return;
    }
    let copy = Copy {
        head,
        body: Bytes::copy_from_slice(body),
        cost,
        until: Instant::now() + FRESH,
    };
    COPIES.with_borrow_mut(|copies| {
        let key = (site, coding);
        // A copy it replaces makes room first.
        if let Some(old) = copies
            .sites
            .get_mut(&key)
            .and_then(|paths| paths.remove(path))
        {
            copies.bytes -= old.cost;
        }
        if copies.bytes + cost > budget {
            copies.free(budget - budget / 4);
        }
        copies.bytes += cost;
        copies
            .sites
            .entry(key)
            .or_default()
            .insert(path.into(), copy);
    });
}

impl Copies {
    /// Drops copies until at most `target` bytes are held. Which ones is left to the maps'
    /// order, as good as random; a batch at once keeps the scans rare.
    fn free(&mut self, target: usize) {
        let mut bytes = self.bytes;
        self.sites.retain(|_, paths| {
            paths.retain(|_, copy| {
                if bytes <= target {
                    return true;
                }
                bytes -= copy.cost;
                false
            });
            !paths.is_empty()
        });
        self.bytes = bytes;
    }
}

/// A head sharing no memory with `head`: its values are static or this thread's alone, so
/// copying it touches no reference count that another core writes. Without `Content-Length`
/// unless the body is `empty`: hyper writes it from the body's length (copies answer `GET`s
/// only, never `HEAD`s), except for an empty body over HTTP/2.
fn own_head(head: &HeaderMap, empty: bool) -> HeaderMap {
    let mut own = HeaderMap::with_capacity(head.len());
    for (name, value) in head {
        if name == header::CONTENT_LENGTH && !empty {
            continue;
        }
        let name =
            HeaderName::from_bytes(name.as_str().as_bytes()).unwrap_or_else(|_| name.clone());
        let value = common_value(value.as_bytes()).unwrap_or_else(|| {
            HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone())
        });
        own.append(name, value);
    }
    own
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(tag: &str) -> HeaderMap {
        let mut head = HeaderMap::new();
        head.insert(
            header::ETAG,
            HeaderValue::from_str(tag).expect("a valid value"),
        );
        head.insert("x-custom", HeaderValue::from_static("yes"));
        head
    }

    fn held() -> usize {
        COPIES.with_borrow(|copies| copies.bytes)
    }

    #[test]
    fn a_copy_is_found_only_for_its_site_coding_and_path() {
        let body = Bytes::from(vec![7u8; 1000]);
        keep(1 << 20, 1, None, "a.html", &head("\"a\""), &body);
        let (found_head, found_body) = get(1, None, "a.html", Instant::now()).expect("kept");
        assert_eq!(found_body, body);
        assert_eq!(found_head, head("\"a\""));
        // A copy, not the shared body: no memory, hence no reference count, in common.
        assert_ne!(found_body.as_ptr(), body.as_ptr());
        assert!(
            get(2, None, "a.html", Instant::now()).is_none(),
            "another site"
        );
        assert!(
            get(1, Some(Encoding::Gzip), "a.html", Instant::now()).is_none(),
            "another coding"
        );
        assert!(
            get(1, None, "b.html", Instant::now()).is_none(),
            "another path"
        );
        // Due to be checked against the shared cache after a while.
        let later = Instant::now() + FRESH;
        assert!(
            get(1, None, "a.html", later).is_none(),
            "used past its time"
        );
    }

    #[test]
    fn copies_stay_within_the_budget() {
        let budget = 64 * 1024;
        let body = Bytes::from(vec![1u8; 3000]);
        for n in 0..200 {
            keep(budget, 10, None, &format!("f{n}"), &head("\"x\""), &body);
            assert!(held() <= budget, "{} bytes held over {budget}", held());
        }
        let kept = (0..200)
            .filter(|n| get(10, None, &format!("f{n}"), Instant::now()).is_some())
            .count();
        assert!(kept > 5 && kept < 200, "{kept} kept");
        // The newest is always kept: room is made before it goes in.
        assert!(get(10, None, "f199", Instant::now()).is_some());
        // Replacing a copy does not count it twice.
        let before = held();
        keep(budget, 10, None, "f199", &head("\"x\""), &body);
        assert_eq!(held(), before);
    }

    #[test]
    fn large_bodies_and_a_zero_budget_keep_nothing() {
        let big = Bytes::from(vec![0u8; MAX_OBJECT as usize + 1]);
        keep(usize::MAX, 20, None, "big", &head("\"b\""), &big);
        assert!(get(20, None, "big", Instant::now()).is_none());
        keep(
            0,
            20,
            None,
            "small",
            &head("\"s\""),
            &Bytes::from_static(b"hi"),
        );
        assert!(get(20, None, "small", Instant::now()).is_none());
    }

    #[test]
    fn copies_leave_the_length_to_hyper_unless_the_body_is_empty() {
        let with_length = |len: usize| {
            let mut head = head("\"l\"");
            head.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            head
        };
        let body = Bytes::from_static(b"four");
        keep(1 << 20, 30, None, "a", &with_length(4), &body);
        let (found, _) = get(30, None, "a", Instant::now()).expect("kept");
        assert!(!found.contains_key(header::CONTENT_LENGTH));
        assert_eq!(
            found.get(header::ETAG),
            Some(&HeaderValue::from_static("\"l\""))
        );
        // hyper's HTTP/2 side writes no length for an empty body.
        keep(1 << 20, 30, None, "empty", &with_length(0), &Bytes::new());
        let (found, _) = get(30, None, "empty", Instant::now()).expect("kept");
        assert_eq!(
            found.get(header::CONTENT_LENGTH),
            Some(&HeaderValue::from(0))
        );
    }
}
