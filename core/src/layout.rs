//! Where things live in storage. The bucket (or local folder) is the only thing proxies read, so
//! these keys are a contract between the builder, the server and every proxy.
//!
//! ```text
//! __output/<project>/<deployment>/<path>   the site's files, immutable once the deployment is ready
//! __output/<project>/<deployment>.br/<path>  precompressed variants (also `.gz/`)
//! __output/<project>/<deployment>.pending.json  the builder's manifest, written after every file
//! __output/<project>/<deployment>.json     the manifest proxies serve from: copied from the
//!                                          pending one by the server when the deployment is ready
//! __routes/<project>.json                  the production alias, written last, in one put
//! __domains/<host>.json                    a custom domain: which project it serves
//! __sources/<deployment>.tar.gz            uploaded local sources
//! __cache/<project>/<key>.tar.zst          a build cache (dependencies, framework caches);
//!                                          builders only, never a site
//! ```

use serde::{Deserialize, Serialize};

use crate::rules::Routing;
use crate::{DeploymentId, ProjectName};

/// Every file, variant and manifest of every deployment of `project`.
pub fn project_prefix(project: &ProjectName) -> String {
    format!("__output/{project}/")
}

pub fn output_file(project: &ProjectName, deployment: &DeploymentId, path: &str) -> String {
    format!("__output/{project}/{deployment}/{path}")
}

/// Where the `encoding` variant of a file is: beside the deployment's folder, so no file of the
/// site (`app.js.gz`) can ever be mistaken for one.
pub fn output_variant(
    project: &ProjectName,
    deployment: &DeploymentId,
    encoding: Encoding,
    path: &str,
) -> String {
    format!(
        "__output/{project}/{deployment}.{}/{path}",
        encoding.suffix()
    )
}

pub fn domain(host: &str) -> String {
    format!("__domains/{host}.json")
}

/// The manifest proxies serve a deployment from. Only the server writes it, when the deployment
/// becomes ready, so a deployment that never does (failed, canceled, cut off by a crash) never
/// answers.
pub fn manifest(project: &ProjectName, deployment: &DeploymentId) -> String {
    format!("__output/{project}/{deployment}.json")
}

/// The manifest as the builder leaves it, once every file is uploaded. Proxies never read it
/// (`<id>.pending` is no deployment id).
pub fn pending_manifest(project: &ProjectName, deployment: &DeploymentId) -> String {
    format!("__output/{project}/{deployment}.pending.json")
}

pub fn route(project: &ProjectName) -> String {
    format!("__routes/{project}.json")
}

pub fn source_archive(deployment: &DeploymentId) -> String {
    format!("__sources/{deployment}.tar.gz")
}

/// Every build cache of `project`.
pub fn build_cache_prefix(project: &ProjectName) -> String {
    format!("__cache/{project}/")
}

/// A project's build cache for one key (a hex digest of what decides its contents). Only
/// builders read it: no proxy or server path looks under `__cache/`.
pub fn build_cache(project: &ProjectName, key: &str) -> String {
    format!("__cache/{project}/{key}.tar.zst")
}

/// The content of `__routes/<project>.json`: which deployment the project's host serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub project: ProjectName,
    pub deployment: DeploymentId,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: time::OffsetDateTime,
}

/// The content of `__domains/<host>.json`: the project a custom domain serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainRoute {
    pub host: String,
    pub project: ProjectName,
}

/// A content coding a file is stored in besides its own bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    Brotli,
    Gzip,
}

impl Encoding {
    /// Preferred first.
    pub const ALL: [Encoding; 2] = [Encoding::Brotli, Encoding::Gzip];

    /// The `Content-Encoding` token.
    pub fn token(self) -> &'static str {
        match self {
            Encoding::Brotli => "br",
            Encoding::Gzip => "gzip",
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Encoding::Brotli => "br",
            Encoding::Gzip => "gz",
        }
    }
}

/// The content of `__output/<project>/<deployment>.json`: every file of a deployment. A proxy
/// serves only paths listed here, so nothing outside a finished upload is ever reachable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub project: ProjectName,
    pub deployment: DeploymentId,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
    /// Site paths without a leading `/` (`index.html`, `assets/app.js`), sorted.
    pub files: std::collections::BTreeMap<String, ManifestEntry>,
    /// Redirects, header rules and what a miss serves.
    #[serde(default, skip_serializing_if = "Routing::is_empty")]
    pub routing: Routing,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub size: u64,
    pub content_type: String,
    /// Hex SHA-256 of the file's bytes.
    pub sha256: String,
    /// The name carries a content hash: the file never changes under it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub immutable: bool,
    /// Size of the brotli variant, when one was stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub br: Option<u64>,
    /// Size of the gzip variant, when one was stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gzip: Option<u64>,
}

impl ManifestEntry {
    /// The size of the stored `encoding` variant, if there is one.
    pub fn variant(&self, encoding: Encoding) -> Option<u64> {
        match encoding {
            Encoding::Brotli => self.br,
            Encoding::Gzip => self.gzip,
        }
    }
}

/// Whether `path` can name a file of a site: relative, `/`-separated, no empty, `.` or `..`
/// segment, no backslash, NUL or other control character. Used on both sides of the manifest.
pub fn is_site_path(path: &str) -> bool {
    path.len() <= 1024 && is_path_of_segments(path)
}

/// A non-empty relative `/`-separated path whose segments are neither empty, `.` nor `..`, and
/// hold no backslash or control character.
pub fn is_path_of_segments(path: &str) -> bool {
    !path.is_empty()
        && path.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && !seg.chars().any(|c| c == '\\' || c.is_control())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_layout() {
        let p = ProjectName::parse("site").expect("valid");
        let d = DeploymentId::parse("abcdefghijkl").expect("valid");
        assert_eq!(
            output_file(&p, &d, "a/b.css"),
            "__output/site/abcdefghijkl/a/b.css"
        );
        assert_eq!(manifest(&p, &d), "__output/site/abcdefghijkl.json");
        assert_eq!(route(&p), "__routes/site.json");
        assert_eq!(source_archive(&d), "__sources/abcdefghijkl.tar.gz");
        assert_eq!(project_prefix(&p), "__output/site/");
        assert_eq!(build_cache(&p, "ab12"), "__cache/site/ab12.tar.zst");
        assert!(build_cache(&p, "ab12").starts_with(&build_cache_prefix(&p)));
    }

    #[test]
    fn site_paths_never_climb() {
        for ok in ["index.html", "a/b/c.js", ".well-known/x", "a..b"] {
            assert!(is_site_path(ok), "{ok}");
        }
        for bad in [
            "", "/abs", "a//b", "../x", "a/../b", "a/./b", "a\\b", "a\0b", "x/",
        ] {
            assert!(!is_site_path(bad), "{bad:?}");
        }
    }
}
