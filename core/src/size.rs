//! Sizes in settings: `512`, `64KiB`, `256MiB`, `2GiB` (also `MB`/`GB`, read as powers of
//! 1024 as people mean them for memory and disk).

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a size; write it like 512MiB, 2GiB or 4GB")]
pub struct BadSize(pub String);

/// Bytes in `raw`.
pub fn parse(raw: &str) -> Result<u64, BadSize> {
    let bad = || BadSize(raw.chars().take(40).collect());
    let trimmed = raw.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(bad()),
    };
    number.checked_mul(1 << shift).ok_or_else(bad)
}

/// `2147483648` → `2 GiB`, for messages.
pub fn display(bytes: u64) -> String {
    const UNITS: [(&str, u32); 4] = [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)];
    for (unit, shift) in UNITS {
        let size = 1u64 << shift;
        if bytes >= size {
            return if bytes.is_multiple_of(size) {
                format!("{} {unit}", bytes >> shift)
            } else {
                format!("{:.1} {unit}", bytes as f64 / size as f64)
            };
        }
    }
    format!("{bytes} B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays() {
        for (raw, bytes) in [
            ("512", 512),
            ("64KiB", 64 << 10),
            ("256MiB", 256 << 20),
            ("2GiB", 2 << 30),
            ("2G", 2 << 30),
            ("4 GB", 4 << 30),
            ("1tib", 1 << 40),
        ] {
            assert_eq!(parse(raw), Ok(bytes), "{raw}");
        }
        for bad in [
            "",
            "GiB",
            "1.5GiB",
            "-1",
            "12 parsecs",
            "99999999999999999999",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(display(2 << 30), "2 GiB");
        assert_eq!(display(512), "512 B");
        assert_eq!(display(1536 << 20), "1.5 GiB");
    }
}
