//! The `Range` a request asks for, as the proxy serves it: one range of bytes, or the whole.

use axum::http::{HeaderMap, header};

#[derive(Debug, PartialEq, Eq)]
pub enum Range {
    /// No range, one we do not serve (several ranges, another unit), or a malformed one: the
    /// whole file.
    Whole,
    /// Bytes `start..=end`.
    Part {
        start: u64,
        end: u64,
    },
    Unsatisfiable,
}

pub fn byte_range(request: &HeaderMap, size: u64) -> Range {
    let mut values = request.get_all(header::RANGE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Range::Whole;
    };
    let Some(spec) = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return Range::Whole;
    };
    if spec.contains(',') {
        return Range::Whole;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Range::Whole;
    };
    let number = |s: &str| {
        let s = s.trim();
        (!s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    match (first.trim().is_empty(), number(first), number(last)) {
        // The last `n` bytes.
        (true, _, Some(n)) => {
            if n == 0 || size == 0 {
                Range::Unsatisfiable
            } else {
                Range::Part {
                    start: size.saturating_sub(n),
                    end: size - 1,
                }
            }
        }
        (false, Some(start), end) if last.trim().is_empty() || end.is_some() => {
            let end = end.unwrap_or(u64::MAX);
            if end < start {
                Range::Whole
            } else if start >= size {
                Range::Unsatisfiable
            } else {
                Range::Part {
                    start,
                    end: end.min(size - 1),
                }
            }
        }
        _ => Range::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::respond::headers::tests::with;

    #[test]
    fn parses_single_byte_ranges() {
        let range = |v: &str| byte_range(&with(header::RANGE, v), 100);
        assert_eq!(range("bytes=0-9"), Range::Part { start: 0, end: 9 });
        assert_eq!(range("bytes=90-"), Range::Part { start: 90, end: 99 });
        assert_eq!(range("bytes=-10"), Range::Part { start: 90, end: 99 });
        assert_eq!(range("bytes=-1000"), Range::Part { start: 0, end: 99 });
        assert_eq!(range("bytes=50-1000"), Range::Part { start: 50, end: 99 });
        assert_eq!(range("bytes=100-"), Range::Unsatisfiable);
        assert_eq!(range("bytes=-0"), Range::Unsatisfiable);
        for whole in [
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=5-1",
            "bytes=a-b",
            "bytes=+1-2",
            "bytes=-",
            "bytes=99999999999999999999-",
            "",
        ] {
            assert_eq!(range(whole), Range::Whole, "{whole:?}");
        }
    }
}
