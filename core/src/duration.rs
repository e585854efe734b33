//! Durations in settings: `900`, `900s`, `15m`, `1h30m`, `30d`.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a duration; write it like 90s, 15m, 1h30m or 30d")]
pub struct BadDuration(pub String);

pub fn parse(raw: &str) -> Result<Duration, BadDuration> {
    let bad = || BadDuration(raw.chars().take(40).collect());
    let raw_trimmed = raw.trim();
    if raw_trimmed.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = raw_trimmed.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in raw_trimmed.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = number.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        number.clear();
    }
    if !number.is_empty() {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// `900s` → `15m`, for messages.
pub fn display(d: Duration) -> String {
    let secs = d.as_secs();
    match (secs / 3600, (secs % 3600) / 60, secs % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, 0, 0) => format!("{h}h"),
        (h, m, 0) => format!("{h}h{m}m"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays() {
        let cases = [
            ("900", 900),
            ("90s", 90),
            ("15m", 900),
            ("1h30m", 5400),
            ("2h", 7200),
            ("1m5s", 65),
            ("30d", 2_592_000),
            ("1d12h", 129_600),
        ];
        for (raw, secs) in cases {
            assert_eq!(parse(raw), Ok(Duration::from_secs(secs)), "{raw}");
        }
        for bad in ["", "m", "15x", "1.5h", "-3", "10m5"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(display(Duration::from_secs(900)), "15m");
        assert_eq!(display(Duration::from_secs(65)), "1m5s");
        assert_eq!(display(Duration::from_secs(2)), "2s");
    }
}
