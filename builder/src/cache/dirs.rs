//! Which folders a build cache holds: each relative to the app's folder or to the build's HOME,
//! never climbing out of it; the default list for the package manager an app uses; and the
//! checks that keep the builder (which may be root) from following a link the build made.

use std::path::{Component, Path, PathBuf};

/// What a cached folder is relative to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Under {
    /// The app's folder (the repository, or its root directory).
    App,
    /// The build's HOME, where package managers keep their stores.
    Home,
}

impl Under {
    /// The first segment of the folder's entries in an archive.
    pub fn name(self) -> &'static str {
        match self {
            Self::App => "app",
            Self::Home => "home",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "app" => Some(Self::App),
            "home" => Some(Self::Home),
            _ => None,
        }
    }
}

/// A folder to cache: `path` below `under`, made only of plain segments.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CachedDir {
    under: Under,
    path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} cannot be a cached folder: use a relative path without `..`")]
pub struct BadDir(String);

impl CachedDir {
    pub fn new(under: Under, path: &str) -> Result<Self, BadDir> {
        if scalemesh_core::layout::is_path_of_segments(path) {
            Ok(Self {
                under,
                path: path.to_owned(),
            })
        } else {
            Err(BadDir(path.to_owned()))
        }
    }

    pub fn under(&self) -> Under {
        self.under
    }

    /// The folder below its root, `/`-separated.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The folder's name in log lines: `node_modules`, `~/.npm`.
    pub fn label(&self) -> String {
        match self.under {
            Under::App => self.path.clone(),
            Under::Home => format!("~/{}", self.path),
        }
    }

    /// Whether `self` lies inside `other` (or is it).
    pub fn is_within(&self, other: &CachedDir) -> bool {
        self.under == other.under
            && (self.path == other.path || self.path.starts_with(&format!("{}/", other.path)))
    }
}

/// The two folders cached paths are relative to.
#[derive(Debug, Clone, Copy)]
pub struct Roots<'a> {
    pub app: &'a Path,
    pub home: &'a Path,
}

impl Roots<'_> {
    pub fn of(&self, under: Under) -> &Path {
        match under {
            Under::App => self.app,
            Under::Home => self.home,
        }
    }

    pub fn join(&self, dir: &CachedDir) -> PathBuf {
        self.of(dir.under).join(&dir.path)
    }
}

/// `root/rel` when it and every folder between are real folders, never links; `None` when
/// something on the way is missing, a link, or not a folder.
pub fn real_dir(root: &Path, rel: &str) -> Option<PathBuf> {
    let mut path = root.to_path_buf();
    for segment in rel.split('/') {
        path.push(segment);
        let meta = std::fs::symlink_metadata(&path).ok()?;
        if !meta.file_type().is_dir() {
            return None;
        }
    }
    Some(path)
}

/// Makes the folders between `root` and `rel` (exclusive) as real folders, refusing to pass
/// through a link or a file. Returns the first folder it had to make, if any, so it can be
/// handed to the build's user with what lands inside.
pub fn make_parents(root: &Path, rel: &str) -> std::io::Result<Option<PathBuf>> {
    let mut path = root.to_path_buf();
    let mut first_made = None;
    let parents = Path::new(rel).parent().map(Path::components);
    for component in parents.into_iter().flatten() {
        let Component::Normal(segment) = component else {
            return Err(std::io::Error::other("not a plain path"));
        };
        path.push(segment);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_dir() => {}
            Ok(_) => {
                return Err(std::io::Error::other(format!(
                    "{} is not a folder",
                    path.display()
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(&path)?;
                first_made.get_or_insert_with(|| path.clone());
            }
            Err(e) => return Err(e),
        }
    }
    Ok(first_made)
}

/// A cached folder put in place, and the folder to hand to the build's user for it (the
/// first of its parents that had to be made, or itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub dir: CachedDir,
    pub handed: PathBuf,
}

/// Moves each of `dirs` from `staging/<app|home>/<path>` (as unpacked) to its place under
/// `roots`, unless something is there already (the repository's own, say): cached folders only
/// ever land where nothing was. The way there is checked, never through a link.
pub fn place(staging: &Path, dirs: &[CachedDir], roots: Roots<'_>) -> Vec<Placed> {
    let mut placed = Vec::new();
    for dir in dirs {
        if dirs.iter().any(|d| d != dir && dir.is_within(d)) {
            continue;
        }
        let unpacked = format!("{}/{}", dir.under().name(), dir.path());
        let Some(from) = real_dir(staging, &unpacked) else {
            continue;
        };
        let root = roots.of(dir.under());
        let to = roots.join(dir);
        if std::fs::symlink_metadata(&to).is_ok() {
            continue;
        }
        let Ok(made) = make_parents(root, dir.path()) else {
            continue;
        };
        if std::fs::rename(&from, &to).is_ok() {
            placed.push(Placed {
                dir: dir.clone(),
                handed: made.unwrap_or(to),
            });
        }
    }
    placed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_folders_stay_below_their_root() {
        for ok in ["node_modules", ".next/cache", ".local/share/pnpm/store"] {
            assert!(CachedDir::new(Under::App, ok).is_ok(), "{ok}");
        }
        for bad in ["", "/etc", "../x", "a/../../b", "a//b", "./a", "a/"] {
            assert!(CachedDir::new(Under::Home, bad).is_err(), "{bad:?}");
        }
        let modules = CachedDir::new(Under::App, "node_modules").expect("valid");
        let vite = CachedDir::new(Under::App, "node_modules/.vite").expect("valid");
        let other = CachedDir::new(Under::App, "node_modules2").expect("valid");
        assert!(vite.is_within(&modules));
        assert!(!other.is_within(&modules));
        assert!(!modules.is_within(&vite));
    }

    #[test]
    fn links_on_the_way_are_never_passed() {
        let root = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(root.path().join("a/b")).expect("mkdir");
        std::os::unix::fs::symlink(outside.path(), root.path().join("link")).expect("link");
        assert!(real_dir(root.path(), "a/b").is_some());
        assert!(real_dir(root.path(), "link").is_none());
        assert!(real_dir(root.path(), "missing").is_none());
        assert!(make_parents(root.path(), "link/x/y").is_err());
        assert_eq!(
            make_parents(root.path(), "a/c/d/e").expect("made"),
            Some(root.path().join("a/c"))
        );
        assert!(root.path().join("a/c/d").is_dir());
        assert_eq!(std::fs::read_dir(outside.path()).expect("read").count(), 0);
    }
}
