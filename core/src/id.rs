//! Deployment ids: 12 characters of `[a-z0-9]` starting with a letter, safe in a DNS label, a
//! storage key and a URL path without escaping. Random, so they cannot be guessed or enumerated.

use std::fmt;

use serde::{Deserialize, Serialize};

pub const DEPLOYMENT_ID_LEN: usize = 12;

const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DeploymentId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a deployment id (12 lowercase letters and digits, starting with a letter)")]
pub struct BadDeploymentId(pub String);

impl DeploymentId {
    pub fn generate() -> Self {
        let bytes = random_bytes::<DEPLOYMENT_ID_LEN>();
        let mut id = String::with_capacity(DEPLOYMENT_ID_LEN);
        for (i, b) in bytes.iter().enumerate() {
            // The first character is a letter, so an id is never all digits.
            let n = if i == 0 { 26 } else { 36 };
            id.push(char::from(ALPHABET[usize::from(*b) % n]));
        }
        Self(id)
    }

    pub fn parse(raw: &str) -> Result<Self, BadDeploymentId> {
        let ok = raw.len() == DEPLOYMENT_ID_LEN
            && raw.as_bytes()[0].is_ascii_lowercase()
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(BadDeploymentId(raw.chars().take(80).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Random bytes from the operating system. Failing to read them is not recoverable.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut buf).expect("the operating system's random source is unavailable");
    buf
}

impl fmt::Display for DeploymentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for DeploymentId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DeploymentId {
    type Error = BadDeploymentId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<DeploymentId> for String {
    fn from(value: DeploymentId) -> Self {
        value.0
    }
}

impl std::str::FromStr for DeploymentId {
    type Err = BadDeploymentId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_and_differ() {
        let a = DeploymentId::generate();
        let b = DeploymentId::generate();
        assert_ne!(a, b);
        assert_eq!(DeploymentId::parse(a.as_str()), Ok(a));
    }

    #[test]
    fn rejects_malformed_ids() {
        for bad in [
            "",
            "abc",
            "1bcdefghijkl",
            "Abcdefghijkl",
            "abcdefghijk-",
            "abcdefghijklm",
            "../../etc/pa",
        ] {
            assert!(DeploymentId::parse(bad).is_err(), "{bad:?}");
        }
    }
}
