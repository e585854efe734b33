//! What an API token looks like, checked before it is sent anywhere: `smk_`, 40 random base62
//! characters, then 6 base62 characters of the CRC32 of those 40 (the server makes them the same
//! way), so a typo is caught here rather than as a refused sign-in. Older tokens (`smk_` and 64
//! hex digits) and tokens of unknown shape are left for the server to judge.

const PREFIX: &str = "smk_";
const RANDOM_LEN: usize = 40;
const CHECK_LEN: usize = 6;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// What a token's shape says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `smk_` + 46 base62 characters whose checksum matches.
    Checked,
    /// `smk_` + 64 hex digits, as tokens were made before the checksum.
    Legacy,
    /// Anything else without whitespace: only the server can tell.
    Unknown,
}

/// Why a token cannot be one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadToken {
    #[error("the token is empty")]
    Empty,
    #[error("the token contains spaces or control characters")]
    Whitespace,
    #[error("the token's checksum does not match: it was mistyped or cut short")]
    Checksum,
}

/// Classifies `token`, refusing what cannot be a token at all.
pub fn check(token: &str) -> Result<Shape, BadToken> {
    if token.is_empty() {
        return Err(BadToken::Empty);
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(BadToken::Whitespace);
    }
    let Some(body) = token.strip_prefix(PREFIX) else {
        return Ok(Shape::Unknown);
    };
    if body.len() == RANDOM_LEN + CHECK_LEN && body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        let (random, check) = body.split_at(RANDOM_LEN);
        return if checksum(random) == check {
            Ok(Shape::Checked)
        } else {
            Err(BadToken::Checksum)
        };
    }
    if body.len() == 64 && body.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(Shape::Legacy);
    }
    Ok(Shape::Unknown)
}

/// The 6 base62 characters (big-endian, `0`-padded) of the IEEE CRC32 of `random`'s bytes.
pub fn checksum(random: &str) -> String {
    base62(crc32fast::hash(random.as_bytes()))
}

fn base62(mut n: u32) -> String {
    // 62^6 > 2^32: six characters always hold a CRC32.
    let mut out = [b'0'; CHECK_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out.iter().map(|&b| char::from(b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors computed apart from this code (Python's `zlib.crc32`), so the server's
    /// implementation of the format can be checked against the same table.
    const VECTORS: &[(&str, &str)] = &[
        ("0123456789abcdefghijABCDEFGHIJklmnopqrst", "1zpKRU"),
        ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "3gcfED"),
        ("0000000000000000000000000000000000000000", "2kaqcA"),
        ("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", "2x81PZ"),
        ("Xq3v9LmP2rT8wK4nB7cY1hJ6fD0sG5aZ2eU8iO3p", "2mlVys"),
        // A CRC below 62^5: the checksum is padded with a leading '0'.
        ("0000000000000000000000000000000000000003", "0HH22e"),
    ];

    #[test]
    fn checksums_match_the_vectors() {
        for (random, sum) in VECTORS {
            assert_eq!(checksum(random), *sum, "{random}");
            let token = format!("{PREFIX}{random}{sum}");
            assert_eq!(token.len(), 50);
            assert_eq!(check(&token), Ok(Shape::Checked), "{token}");
        }
    }

    #[test]
    fn base62_is_big_endian_and_padded() {
        for (n, want) in [
            (0, "000000"),
            (61, "00000z"),
            (62, "000010"),
            (u32::MAX, "4gfFC3"),
        ] {
            assert_eq!(base62(n), want, "{n}");
        }
    }

    #[test]
    fn shapes() {
        let good = format!("{PREFIX}0123456789abcdefghijABCDEFGHIJklmnopqrst1zpKRU");
        let legacy = format!("{PREFIX}{}", "0f".repeat(32));
        let cases: Vec<(String, Result<Shape, BadToken>)> = vec![
            (good.clone(), Ok(Shape::Checked)),
            // One character changed, in the random part or in the checksum.
            (good.replacen('a', "b", 1), Err(BadToken::Checksum)),
            (
                format!("{}V", &good[..good.len() - 1]),
                Err(BadToken::Checksum),
            ),
            // Two characters swapped.
            (good.replacen("01", "10", 1), Err(BadToken::Checksum)),
            (legacy.clone(), Ok(Shape::Legacy)),
            (
                legacy.to_uppercase().replacen("SMK_", PREFIX, 1),
                Ok(Shape::Legacy),
            ),
            // Cut short, too long, or of another kind: the server decides.
            (good[..good.len() - 1].to_owned(), Ok(Shape::Unknown)),
            (format!("{good}0"), Ok(Shape::Unknown)),
            (good.replacen("smk_", "smp_", 1), Ok(Shape::Unknown)),
            ("some-admin-token".to_owned(), Ok(Shape::Unknown)),
            (String::new(), Err(BadToken::Empty)),
            (format!("{good} "), Err(BadToken::Whitespace)),
            ("smk_abc\tdef".to_owned(), Err(BadToken::Whitespace)),
            ("smk_abc\u{1b}def".to_owned(), Err(BadToken::Whitespace)),
        ];
        for (token, want) in cases {
            assert_eq!(check(&token), want, "{token:?}");
        }
    }
}
