//! Which Node.js an app asks for, and where it says so: the build settings (`nodeVersion`),
//! else `.nvmrc`, else `.node-version`, else `engines.node` in `package.json`.

use std::fmt;
use std::path::Path;

use scalemesh_core::site_config::read_config_file;

use super::version::Range;

/// Where the wanted version was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `nodeVersion` in the project's settings or `scalemesh.json`.
    Settings,
    Nvmrc,
    NodeVersionFile,
    PackageEngines,
    /// The `engines.node` of the app's own dependencies, as `package-lock.json` records them.
    DependencyEngines,
    /// Nothing asks: any Node.js, preferring the machine's, else the newest long-term one.
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Settings => "the nodeVersion setting",
            Self::Nvmrc => ".nvmrc",
            Self::NodeVersionFile => ".node-version",
            Self::PackageEngines => "package.json engines.node",
            Self::DependencyEngines => "its dependencies' engines in package-lock.json",
            Self::Default => "no version asked",
        })
    }
}

/// A range and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub range: Range,
    pub origin: Origin,
}

#[derive(Debug, thiserror::Error)]
pub enum WantedError {
    #[error("reading {file}: {source}")]
    Read {
        file: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("package.json is not valid JSON: {0}")]
    PackageJson(serde_json::Error),
    #[error("package.json engines.node must be a string")]
    EnginesNotText,
    #[error("the Node.js version from {origin}: {source}")]
    Range {
        origin: Origin,
        #[source]
        source: super::version::RangeError,
    },
}

/// What the app in `root` asks for, given the `nodeVersion` setting; `None` when it is no
/// Node.js app (no `package.json`) and asks for no version.
pub fn wanted(root: &Path, setting: Option<&str>) -> Result<Option<Wanted>, WantedError> {
    let read = |file: &'static str| {
        read_config_file(root, file).map_err(|source| WantedError::Read { file, source })
    };
    let package = read("package.json")?;
    let asked = match setting {
        Some(raw) => Some((raw.to_owned(), Origin::Settings)),
        None => match version_file(read(".nvmrc")?) {
            Some(raw) => Some((raw, Origin::Nvmrc)),
            None => version_file(read(".node-version")?)
                .map(|raw| (raw, Origin::NodeVersionFile))
                .or(engines(package.as_deref())?.map(|raw| (raw, Origin::PackageEngines))),
        },
    };
    let (range, origin) = match asked {
        Some((raw, origin)) => (
            Range::parse(&raw).map_err(|source| WantedError::Range { origin, source })?,
            origin,
        ),
        None => match package.as_deref() {
            Some(text) => match dependency_engines(root, text) {
                Some(range) => (range, Origin::DependencyEngines),
                None => (Range::any(), Origin::Default),
            },
            None => return Ok(None),
        },
    };
    Ok(Some(Wanted { range, origin }))
}

/// The version in an `.nvmrc` or `.node-version`: its first line that is not empty or a
/// comment, without a trailing comment.
/// Largest `package-lock.json` read for its engines.
const MAX_LOCKFILE_BYTES: u64 = 64 * 1024 * 1024;

/// What the app's direct dependencies ask of Node.js together, from the `engines` that
/// `package-lock.json` records for each (a framework that needs Node.js 22 says so there even
/// when the app says nothing). `None` when there is no lockfile or none of them asks. A lockfile
/// that cannot be read is passed over: the build then runs as if nothing were asked.
fn dependency_engines(root: &Path, package: &str) -> Option<Range> {
    let path = root.join("package-lock.json");
    let meta = std::fs::symlink_metadata(&path).ok()?;
    if !meta.is_file() || meta.len() > MAX_LOCKFILE_BYTES {
        return None;
    }
    let lock: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    let package: serde_json::Value = serde_json::from_str(package).ok()?;
    let direct = ["dependencies", "devDependencies"]
        .iter()
        .filter_map(|field| package.get(*field)?.as_object())
        .flat_map(|deps| deps.keys());
    let ranges: Vec<Range> = direct
        .filter_map(|name| {
            let entry = lock.get("packages")?.get(format!("node_modules/{name}"))?;
            Range::parse(entry.get("engines")?.get("node")?.as_str()?).ok()
        })
        .collect();
    (!ranges.is_empty()).then(|| Range::all_of(&ranges))
}

fn version_file(text: Option<String>) -> Option<String> {
    text?
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .find(|l| !l.is_empty())
        .map(str::to_owned)
}

/// `engines.node` of a `package.json`, when there is one.
fn engines(package: Option<&str>) -> Result<Option<String>, WantedError> {
    let Some(text) = package else {
        return Ok(None);
    };
    let json: serde_json::Value = serde_json::from_str(text).map_err(WantedError::PackageJson)?;
    match json.get("engines").and_then(|e| e.get("node")) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(WantedError::EnginesNotText),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("write");
        }
        dir
    }

    fn asked(files: &[(&str, &str)], setting: Option<&str>) -> Option<(String, Origin)> {
        let dir = app(files);
        wanted(dir.path(), setting)
            .expect("readable")
            .map(|w| (w.range.to_string(), w.origin))
    }

    #[test]
    fn the_first_place_that_asks_wins() {
        let pkg = ("package.json", r#"{"engines":{"node":">=18 <23"}}"#);
        let nvmrc = (".nvmrc", "# pinned\nlts/iron # the team's\n");
        let node_version = (".node-version", "v20.11.1\n");
        let all = [pkg, nvmrc, node_version];
        let s = |r: &str, o| Some((r.to_owned(), o));
        assert_eq!(asked(&all, Some("22")), s("22", Origin::Settings));
        assert_eq!(asked(&all, None), s("lts/iron", Origin::Nvmrc));
        assert_eq!(
            asked(&[pkg, node_version], None),
            s("v20.11.1", Origin::NodeVersionFile)
        );
        assert_eq!(asked(&[pkg], None), s(">=18 <23", Origin::PackageEngines));
        assert_eq!(
            asked(&[("package.json", "{}")], None),
            s("*", Origin::Default)
        );
        assert_eq!(asked(&[("index.html", "")], None), None);
        assert_eq!(
            asked(&[("index.html", "")], Some("20")),
            s("20", Origin::Settings)
        );
    }

    #[test]
    fn bad_asks_say_where_they_are() {
        let dir = app(&[(".nvmrc", "banana\n")]);
        let err = wanted(dir.path(), None).expect_err("garbage");
        assert!(
            err.to_string()
                .starts_with("the Node.js version from .nvmrc"),
            "{err}"
        );
        let dir = app(&[("package.json", r#"{"engines":{"node":18}}"#)]);
        assert!(matches!(
            wanted(dir.path(), None),
            Err(WantedError::EnginesNotText)
        ));
        let dir = app(&[]);
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join(".nvmrc")).expect("link");
        assert!(matches!(
            wanted(dir.path(), None),
            Err(WantedError::Read { file: ".nvmrc", .. })
        ));
    }

    #[test]
    fn an_app_that_asks_nothing_gets_what_its_dependencies_ask() {
        let package = r#"{"dependencies":{"astro":"^5"},"devDependencies":{"typescript":"^5"}}"#;
        let lock = r#"{"lockfileVersion":3,"packages":{
            "": {"name":"site"},
            "node_modules/astro": {"version":"5.9.0","engines":{"node":">=22.12.0"}},
            "node_modules/typescript": {"version":"5.7.0","engines":{"node":">=14.17"}},
            "node_modules/deep": {"version":"1.0.0","engines":{"node":">=99"}}
        }}"#;
        assert_eq!(
            asked(
                &[("package.json", package), ("package-lock.json", lock)],
                None
            ),
            Some((
                ">=22.12.0 and >=14.17".to_owned(),
                Origin::DependencyEngines
            )),
            "only direct dependencies count"
        );
        assert_eq!(
            asked(
                &[
                    ("package.json", package),
                    ("package-lock.json", lock),
                    (".nvmrc", "24")
                ],
                None
            ),
            Some(("24".to_owned(), Origin::Nvmrc)),
            "what the app asks wins"
        );
        assert_eq!(
            asked(
                &[("package.json", package), ("package-lock.json", "{broken")],
                None
            ),
            Some(("*".to_owned(), Origin::Default))
        );
    }
}
