//! A folder that remembers its project: after the first deploy of a folder, `.scalemesh/project.json`
//! there names the project (and the server), so `deploy`, `logs`, `deployments ls` and
//! `rollback` need no project argument in it. The folder ignores itself (`.scalemesh/.gitignore`
//! is `*`), so it is neither committed nor uploaded.

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

/// The link of `dir` or its nearest parent that has one.
pub fn find(dir: &Path) -> Option<Link> {
    let start = dir.canonicalize().ok()?;
    start
        .ancestors()
        .find_map(|d| read(&d.join(DIR).join(FILE)))
}

/// The link of the current folder (or a parent), when it is for the server at `api_url`.
pub fn here(api_url: &str) -> Option<Link> {
    let dir = std::env::current_dir().ok()?;
    find(&dir).filter(|l| same_server(&l.api_url, api_url))
}

fn same_server(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

fn read(path: &Path) -> Option<Link> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// Writes `dir/.scalemesh/project.json` (and the `.gitignore` that keeps the folder out of git).
pub fn write(dir: &Path, link: &Link) -> std::io::Result<PathBuf> {
    let folder = dir.join(DIR);
    std::fs::create_dir_all(&folder)?;
    std::fs::write(folder.join(".gitignore"), "*\n")?;
    let path = folder.join(FILE);
    let text = serde_json::to_string_pretty(link).map_err(std::io::Error::other)?;
    std::fs::write(&path, format!("{text}\n"))?;
    Ok(path)
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
    }
}
