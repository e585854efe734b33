//! The shape of API token secrets: `smk_`, 40 random base62 characters (238 bits), then 6
//! base62 characters of the CRC32 of those 40, as GitHub's tokens carry one. The prefix lets
//! secret scanners find leaked tokens; the checksum lets them (and the CLI) tell a token from
//! random text without asking the server. Only the SHA-256 of a secret is stored.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const PREFIX: &str = "smk_";
const RANDOM_LEN: usize = 40;
const CHECK_LEN: usize = 6;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// How much of a secret is kept to tell tokens apart in listings.
const SHOWN: usize = PREFIX.len() + 4;

/// A fresh token secret.
pub fn generate() -> String {
    let mut random = String::with_capacity(RANDOM_LEN);
    while random.len() < RANDOM_LEN {
        for byte in scalemesh_core::id::random_bytes::<64>() {
            // 62 * 4 = 248: rejecting 248..=255 keeps every character equally likely.
            if byte < 248 && random.len() < RANDOM_LEN {
                random.push(char::from(BASE62[usize::from(byte % 62)]));
            }
        }
    }
    let check = checksum(&random);
    format!("{PREFIX}{random}{check}")
}

fn checksum(random: &str) -> String {
    let mut n = crc32fast::hash(random.as_bytes());
    let mut out = [b'0'; CHECK_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out.iter().map(|&b| char::from(b)).collect()
}

/// Whether `secret` has the shape and checksum of a token made by [`generate`].
pub fn well_formed(secret: &str) -> bool {
    let Some(body) = secret.strip_prefix(PREFIX) else {
        return false;
    };
    if body.len() != RANDOM_LEN + CHECK_LEN || !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let (random, check) = body.split_at(RANDOM_LEN);
    checksum(random) == check
}

/// The start of a secret, shown in listings.
pub fn shown(secret: &str) -> String {
    secret.chars().take(SHOWN).collect()
}

pub fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Whether `token` hashes to `expected`, compared in constant time.
pub fn matches(token: &str, expected: &[u8]) -> bool {
    hash(token).ct_eq(expected).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_checked_and_match_only_their_hash() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 46);
        assert!(well_formed(&a) && well_formed(&b), "{a} {b}");
        assert!(matches(&a, &hash(&a)));
        assert!(!matches(&b, &hash(&a)));
        assert_eq!(shown(&a).len(), 8);
    }

    #[test]
    fn a_typo_breaks_the_checksum() {
        // A fixed vector, so another implementation of the format can check itself against it.
        let random = "0123456789abcdefghijABCDEFGHIJklmnopqrst";
        let token = format!("smk_{random}{}", checksum(random));
        assert_eq!(checksum(random), "1zpKRU", "the CLI checks the same vector");
        assert!(well_formed(&token));
        let cases = [
            token.replacen('a', "b", 1),
            token.replacen("smk_", "smp_", 1),
            token[..token.len() - 1].to_owned(),
            format!("{token}0"),
            token.replacen('0', "-", 1),
            "smk_".to_owned(),
            String::new(),
        ];
        for bad in cases {
            assert!(!well_formed(&bad), "{bad}");
        }
    }
}
