//! A folder that remembers its project: after the first deploy of a folder, `.scalemesh/project.json`
//! there names the project (and the server), so `deploy`, `logs`, `deployments ls` and
//! `rollback` need no project argument in it. The folder ignores itself (`.scalemesh/.gitignore`
//! is `*`), so it is neither committed nor uploaded.

use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

const DIR: &str = ".scalemesh";
const FILE: &str = "project.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub project: String,
    /// The server the project lives on.
    pub api_url: String,
}

/// The link of `dir` or its nearest parent that has one. The search stops at a repository's
/// root (a folder with `.git`) and below the home folder, and reads only the user's own files,
/// so a link in a shared or higher folder never decides what an unrelated folder acts on.
pub fn find(dir: &Path) -> Option<Link> {
    let start = dir.canonicalize().ok()?;
    let home = dirs::home_dir().and_then(|h| h.canonicalize().ok());
    for d in start.ancestors() {
        if d != start && home.as_deref() == Some(d) {
            return None;
        }
        if let Some(link) = read_at(d) {
            return Some(link);
        }
        if d.join(".git").exists() {
            return None;
        }
    }
    None
}

/// The link of the current folder (or a parent), when it is for the server at `api_url`.
pub fn here(api_url: &str) -> Option<Link> {
    let dir = std::env::current_dir().ok()?;
    find(&dir).filter(|l| same_server(&l.api_url, api_url))
}

/// The link of `dir` itself (not a parent's), when it is for the server at `api_url`: what a
/// deploy of `dir` uses, so a subfolder never deploys to its parent's project.
pub fn at(dir: &Path, api_url: &str) -> Option<Link> {
    read_at(dir).filter(|l| same_server(&l.api_url, api_url))
}

fn same_server(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// `dir/.scalemesh/project.json`, if it is a small regular file of this user's in a real folder
/// of this user's: a link committed to a repository as a symbolic link, or left by someone
/// else, is not read.
fn read_at(dir: &Path) -> Option<Link> {
    let uid = nix::unistd::geteuid().as_raw();
    let ours = |path: &Path, dir: bool| {
        std::fs::symlink_metadata(path).is_ok_and(|m| {
            m.uid() == uid
                && if dir {
                    m.is_dir()
                } else {
                    m.is_file() && m.len() <= 64 * 1024
                }
        })
    };
    let folder = dir.join(DIR);
    let path = folder.join(FILE);
    if !ours(&folder, true) || !ours(&path, false) {
        return None;
    }
    let text = std::fs::read_to_string(&path).ok()?;
    serde_json::from_str(&text).ok()
}

/// Writes `dir/.scalemesh/project.json` (and the `.gitignore` that keeps the folder out of git).
/// Each file is written beside its place and renamed over it, so a symbolic link there is
/// replaced, never followed; a `.scalemesh` that is not a folder is left alone.
pub fn write(dir: &Path, link: &Link) -> io::Result<PathBuf> {
    let folder = dir.join(DIR);
    match std::fs::symlink_metadata(&folder) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} is not a folder", folder.display()),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::create_dir(&folder)?,
        Err(e) => return Err(e),
    }
    replace(&folder, ".gitignore", b"*\n")?;
    let text = serde_json::to_string_pretty(link).map_err(io::Error::other)?;
    replace(&folder, FILE, format!("{text}\n").as_bytes())?;
    Ok(folder.join(FILE))
}

fn replace(folder: &Path, name: &str, contents: &[u8]) -> io::Result<()> {
    let suffix: String = scalemesh_core::id::random_bytes::<6>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let tmp = folder.join(format!(".{name}.{suffix}.tmp"));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut f| f.write_all(contents))
        .and_then(|()| std::fs::rename(&tmp, folder.join(name)));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_and_its_subfolders_find_their_link() {
        let dir = tempfile::tempdir().expect("tempdir");
        let link = Link {
            project: "blog".into(),
            api_url: "http://127.0.0.1:9000/".into(),
        };
        write(dir.path(), &link).expect("write");
        let sub = dir.path().join("src/pages");
        std::fs::create_dir_all(&sub).expect("mkdir");
        assert_eq!(find(&sub), Some(link.clone()));
        assert_eq!(find(dir.path()), Some(link));
        assert_eq!(
            std::fs::read_to_string(dir.path().join(".scalemesh/.gitignore")).expect("ignore"),
            "*\n"
        );
        assert!(same_server(
            "http://127.0.0.1:9000/",
            "http://127.0.0.1:9000"
        ));
        let elsewhere = tempfile::tempdir().expect("tempdir");
        assert_eq!(find(elsewhere.path()), None);
        // A deploy reads the folder's own link only.
        assert_eq!(at(&sub, "http://127.0.0.1:9000"), None);
        assert!(at(dir.path(), "http://127.0.0.1:9000").is_some());
        assert_eq!(at(dir.path(), "http://127.0.0.1:9001"), None);
    }

    #[test]
    fn the_search_stops_at_a_repository_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let link = Link {
            project: "outer".into(),
            api_url: "http://127.0.0.1:9000".into(),
        };
        write(dir.path(), &link).expect("write");
        let repo = dir.path().join("repo");
        std::fs::create_dir_all(repo.join(".git")).expect("mkdir");
        std::fs::create_dir_all(repo.join("src")).expect("mkdir");
        assert_eq!(find(&repo.join("src")), None);
        assert_eq!(find(&repo), None);
    }

    #[test]
    fn symbolic_links_are_neither_read_nor_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious\n").expect("write");
        let site = dir.path().join("site");
        std::fs::create_dir_all(site.join(DIR)).expect("mkdir");
        std::os::unix::fs::symlink(&victim, site.join(DIR).join(FILE)).expect("symlink");
        std::os::unix::fs::symlink(&victim, site.join(DIR).join(".gitignore")).expect("symlink");
        assert_eq!(find(&site), None);
        let link = Link {
            project: "blog".into(),
            api_url: "http://127.0.0.1:9000".into(),
        };
        write(&site, &link).expect("write");
        assert_eq!(
            std::fs::read_to_string(&victim).expect("read"),
            "precious\n"
        );
        assert_eq!(find(&site), Some(link.clone()));

        // A `.scalemesh` that is a link to a folder elsewhere is not used at all.
        let other = dir.path().join("other");
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir_all(&other).expect("mkdir");
        std::fs::create_dir_all(&elsewhere).expect("mkdir");
        std::os::unix::fs::symlink(&elsewhere, other.join(DIR)).expect("symlink");
        assert!(write(&other, &link).is_err());
        assert_eq!(std::fs::read_dir(&elsewhere).expect("read").count(), 0);
    }
}
