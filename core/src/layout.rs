//! Where things live in storage. The bucket (or local folder) is the only thing proxies read, so
//! these keys are a contract between the builder, the server and every proxy.
//!
//! ```text
//! __blobs/<project>/<sha256>              a file's bytes, stored once for every deployment of the
//!                                          project that has them, its br and gzip variants after
//!                                          them in the same object (the manifest says where)
//! __output/<project>/<deployment>/<path>   a file of a deployment made before blobs (manifests
//!                                          without `"layout": "blobs"`), and its variants in
//! __output/<project>/<deployment>.br/<path>  `.br/` and `.gz/`; still served, never written
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

/// Every blob of `project`.
pub fn blob_prefix(project: &ProjectName) -> String {
    format!("__blobs/{project}/")
}

/// The object holding the file whose bytes have the hex SHA-256 `sha256`, followed by its
/// variants. Blobs are per project: a deployment can only name the bytes of its own project, and
/// asking which digests are missing tells nothing about another project's files.
pub fn blob(project: &ProjectName, sha256: &str) -> String {
    format!("__blobs/{project}/{sha256}")
}

/// Whether `s` is a hex SHA-256 as blobs are named: 64 lower-case hex digits.
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Every manifest of `project` and the files of its deployments made before blobs.
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

/// The alias of a branch's or pull request's preview host (`git-main`, `pr-12`): the same
/// [`Route`] as production's, one object per label.
pub fn label_route(project: &ProjectName, label: &str) -> String {
    format!("__routes/{project}/{label}.json")
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
    /// Where the files' bytes are.
    #[serde(default, skip_serializing_if = "FileLayout::is_folders")]
    pub layout: FileLayout,
}

/// Where a manifest's files are stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileLayout {
    /// Each deployment in its own folder (`__output/<project>/<deployment>/<path>`): how
    /// deployments were stored before blobs. Read, never written.
    #[default]
    Folders,
    /// By content, once per project (`__blobs/<project>/<sha256>`).
    Blobs,
}

impl FileLayout {
    fn is_folders(&self) -> bool {
        *self == Self::Folders
    }
}

/// Where the bytes of one coding of a file are: `len` bytes from `start` of the object `key`,
/// or, when `whole`, the object itself (a deployment made before blobs), whose size must be
/// `len`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub key: String,
    pub start: u64,
    pub len: u64,
    pub whole: bool,
}

impl Location {
    /// A name for these bytes, for caches: the object, and the part of it.
    pub fn cache_key(&self) -> String {
        if self.whole {
            self.key.clone()
        } else {
            format!("{}#{}+{}", self.key, self.start, self.len)
        }
    }
}

impl Manifest {
    /// Where the `coding` variant of `path` (the file itself for `None`) is stored, if the
    /// manifest lists it in that coding.
    pub fn locate(&self, path: &str, coding: Option<Encoding>) -> Option<Location> {
        let entry = self.files.get(path)?;
        let (start, len) = entry.part(coding)?;
        let (key, start, whole) = match (self.layout, coding) {
            (FileLayout::Blobs, _) => match &entry.pack {
                Some(pack) => (
                    blob(&self.project, &pack.sha256),
                    pack.offset.checked_add(start)?,
                    false,
                ),
                None => (blob(&self.project, &entry.sha256), start, false),
            },
            (FileLayout::Folders, None) => {
                (output_file(&self.project, &self.deployment, path), 0, true)
            }
            (FileLayout::Folders, Some(e)) => (
                output_variant(&self.project, &self.deployment, e, path),
                0,
                true,
            ),
        };
        Some(Location {
            key,
            start,
            len,
            whole,
        })
    }
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
    /// Where the blob is when it is one of many in a pack (small files sent straight to
    /// storage go in packs, one object for many files); else it is an object of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pack: Option<InPack>,
}

/// A blob inside a pack: the pack's name (the hex SHA-256 of its bytes, an object in
/// `__blobs/<project>/` like any blob) and where in it the blob starts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InPack {
    pub sha256: String,
    pub offset: u64,
}

impl ManifestEntry {
    /// Where the `coding` variant (the file itself for `None`) is in a blob: the file's bytes,
    /// then its brotli variant, then its gzip one.
    pub fn part(&self, coding: Option<Encoding>) -> Option<(u64, u64)> {
        match coding {
            None => Some((0, self.size)),
            Some(Encoding::Brotli) => self.br.map(|len| (self.size, len)),
            Some(Encoding::Gzip) => self.gzip.map(|len| (self.size + self.br.unwrap_or(0), len)),
        }
    }

    /// The size of the blob holding the file and its variants.
    pub fn blob_size(&self) -> u64 {
        self.size + self.br.unwrap_or(0) + self.gzip.unwrap_or(0)
    }

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
    fn files_are_found_in_their_layout() {
        let p = ProjectName::parse("site").expect("valid");
        let d = DeploymentId::parse("abcdefghijkl").expect("valid");
        let sha = "ab".repeat(32);
        let entry = |br: Option<u64>, gzip: Option<u64>| ManifestEntry {
            size: 100,
            content_type: "text/html".into(),
            sha256: sha.clone(),
            immutable: false,
            br,
            gzip,
            pack: None,
        };
        let mut manifest = Manifest {
            project: p.clone(),
            deployment: d.clone(),
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            files: [
                ("a.html".to_owned(), entry(Some(30), Some(40))),
                ("b.html".to_owned(), entry(None, Some(40))),
                (
                    "c.html".to_owned(),
                    ManifestEntry {
                        pack: Some(InPack {
                            sha256: "cd".repeat(32),
                            offset: 1000,
                        }),
                        ..entry(Some(30), None)
                    },
                ),
            ]
            .into(),
            routing: Routing::default(),
            layout: FileLayout::Blobs,
        };
        let at = |m: &Manifest, path, coding| {
            m.locate(path, coding)
                .map(|l: Location| (l.key, l.start, l.len, l.whole))
        };
        let blob_key = format!("__blobs/site/{sha}");
        let table = [
            ("a.html", None, Some((blob_key.clone(), 0, 100, false))),
            (
                "a.html",
                Some(Encoding::Brotli),
                Some((blob_key.clone(), 100, 30, false)),
            ),
            (
                "a.html",
                Some(Encoding::Gzip),
                Some((blob_key.clone(), 130, 40, false)),
            ),
            ("b.html", Some(Encoding::Brotli), None),
            (
                "b.html",
                Some(Encoding::Gzip),
                Some((blob_key.clone(), 100, 40, false)),
            ),
            ("d.html", None, None),
            (
                "c.html",
                Some(Encoding::Brotli),
                Some((format!("__blobs/site/{}", "cd".repeat(32)), 1100, 30, false)),
            ),
            ("c.html", Some(Encoding::Gzip), None),
        ];
        for (path, coding, want) in table {
            assert_eq!(at(&manifest, path, coding), want, "{path} {coding:?}");
        }
        assert_eq!(manifest.files["a.html"].blob_size(), 170);
        manifest.layout = FileLayout::Folders;
        let folder = "__output/site/abcdefghijkl";
        let table = [
            (
                "a.html",
                None,
                Some((format!("{folder}/a.html"), 0, 100, true)),
            ),
            (
                "a.html",
                Some(Encoding::Brotli),
                Some((format!("{folder}.br/a.html"), 0, 30, true)),
            ),
            (
                "a.html",
                Some(Encoding::Gzip),
                Some((format!("{folder}.gz/a.html"), 0, 40, true)),
            ),
            ("b.html", Some(Encoding::Brotli), None),
        ];
        for (path, coding, want) in table {
            assert_eq!(at(&manifest, path, coding), want, "{path} {coding:?}");
        }
        // A manifest of before blobs reads as folders, and one in folders is written as before.
        let json = serde_json::to_value(&manifest).expect("json");
        assert!(json.get("layout").is_none());
        manifest.layout = FileLayout::Blobs;
        let json = serde_json::to_string(&manifest).expect("json");
        assert!(json.contains(r#""layout":"blobs""#));
        assert!(is_sha256(&sha));
        for bad in [
            "AB".repeat(32),
            "ab".repeat(31),
            format!("{}g", "a".repeat(63)),
        ] {
            assert!(!is_sha256(&bad), "{bad}");
        }
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
