//! Conditional requests: `If-None-Match`, `If-Modified-Since` and `If-Range`, against a file's
//! `ETag` (its content hash, and the coding) and the deployment's `Last-Modified`.

use std::time::SystemTime;

use axum::http::{HeaderMap, header};
use scalemesh_core::layout::Encoding;

use super::headers::tag_suffix;

/// Whether `tag` (quotes included) is the `ETag` of `hash` in `coding`.
fn is_tag(tag: &str, hash: &str, coding: Option<Encoding>) -> bool {
    tag.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .and_then(|t| t.strip_prefix(hash))
        .is_some_and(|rest| rest == tag_suffix(coding))
}

/// `If-None-Match` (weak comparison, `*`), or without it `If-Modified-Since`.
pub fn not_modified(
    request: &HeaderMap,
    hash: &str,
    coding: Option<Encoding>,
    modified: SystemTime,
) -> bool {
    let mut tags = request.get_all(header::IF_NONE_MATCH).iter().peekable();
    if tags.peek().is_some() {
        return tags
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|v| v.trim().trim_start_matches("W/"))
            .any(|v| v == "*" || is_tag(v, hash, coding));
    }
    request
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
        .is_some_and(|since| seconds(modified) <= seconds(since))
}

fn seconds(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `If-Range`: the range applies only to the representation the client has — a strong ETag
/// equal to ours, or exactly our `Last-Modified`.
pub fn if_range_holds(request: &HeaderMap, hash: &str, modified: SystemTime) -> bool {
    let Some(value) = request.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) else {
        return request.get(header::IF_RANGE).is_none();
    };
    let value = value.trim();
    if value.starts_with('"') || value.starts_with("W/") {
        return is_tag(value, hash, None);
    }
    httpdate::parse_http_date(value).is_ok_and(|date| seconds(date) == seconds(modified))
}
