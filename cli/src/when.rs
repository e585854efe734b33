//! Instants as people read them in a table: how long ago, how long until, and a date. Each takes
//! `now`, so the tests need no clock.

use time::OffsetDateTime;
use time::macros::format_description;

/// `12s ago`, `5m ago`, `3h ago`, `4d ago`.
pub fn ago(t: OffsetDateTime, now: OffsetDateTime) -> String {
    format!("{} ago", span((now - t).whole_seconds().max(0)))
}

/// `in 5m`, `in 29d`, or `expired` once it has passed.
pub fn until(t: OffsetDateTime, now: OffsetDateTime) -> String {
    if t <= now {
        "expired".to_owned()
    } else {
        format!("in {}", span((t - now).whole_seconds().max(1)))
    }
}

/// `2025-03-01 14:05 UTC`.
pub fn date(t: OffsetDateTime) -> String {
    let format = format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    t.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_else(|_| t.to_string())
}

fn span(secs: i64) -> String {
    match secs {
        ..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86400 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86400),
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn spans_read_both_ways() {
        let now = datetime!(2025-03-01 12:00 UTC);
        let cases = [
            (datetime!(2025-03-01 11:59:30 UTC), "30s ago", "expired"),
            (datetime!(2025-03-01 11:00 UTC), "1h ago", "expired"),
            (datetime!(2025-02-20 12:00 UTC), "9d ago", "expired"),
            (datetime!(2025-03-01 12:00 UTC), "0s ago", "expired"),
            (datetime!(2025-03-01 12:05 UTC), "0s ago", "in 5m"),
            (datetime!(2025-03-01 12:00:00.3 UTC), "0s ago", "in 1s"),
            (datetime!(2025-03-31 12:00 UTC), "0s ago", "in 30d"),
        ];
        for (t, ago_text, until_text) in cases {
            assert_eq!(ago(t, now), ago_text, "{t}");
            assert_eq!(until(t, now), until_text, "{t}");
        }
    }

    #[test]
    fn dates_are_utc() {
        assert_eq!(
            date(datetime!(2025-03-01 23:30 -02:00)),
            "2025-03-02 01:30 UTC"
        );
    }
}
