//! The config file (`~/.config/scalemesh/config.toml`, or `--config`): `api_url` and `token`.
//! Read by [`crate::settings`]; written by `scalemesh login` and `logout`, which change only
//! their keys and keep any others.

use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

use crate::error::CliError;
use crate::private_file;

pub const API_URL: &str = "api_url";
pub const TOKEN: &str = "token";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub api_url: Option<String>,
    pub token: Option<String>,
}

/// The file's settings; none when it does not exist.
pub fn read(path: &Path) -> anyhow::Result<ConfigFile> {
    match std::fs::read_to_string(path) {
        Ok(raw) => toml::from_str(&raw).map_err(|e| invalid(path, e.message()).into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConfigFile::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// A change to the file: keys to set, keys to remove.
#[derive(Debug, Default)]
pub struct Changes<'a> {
    pub set: Vec<(&'static str, &'a str)>,
    pub remove: Vec<&'static str>,
}

/// Applies `changes` to the file, creating it (and its folder) when missing. The file is
/// replaced atomically and readable by its owner only, since it holds a token.
pub fn update(path: &Path, changes: &Changes<'_>) -> anyhow::Result<()> {
    let raw = match std::fs::read_to_string(path) {
        Ok(raw) => raw,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let text = edit(&raw, changes).map_err(|message| invalid(path, &message))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        private_file::create_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    private_file::write(path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// The file's new text. Other keys are kept (comments are not: the file is written anew).
fn edit(raw: &str, changes: &Changes<'_>) -> Result<String, String> {
    let mut table: toml::Table = toml::from_str(raw).map_err(|e| e.message().to_owned())?;
    for key in &changes.remove {
        table.remove(*key);
    }
    for (key, value) in &changes.set {
        table.insert((*key).to_owned(), toml::Value::String((*value).to_owned()));
    }
    toml::to_string(&table).map_err(|e| e.to_string())
}

fn invalid(path: &Path, message: &str) -> CliError {
    CliError::new(format!(
        "the config file {} is not valid: {message}",
        path.display()
    ))
    .hint("it holds `api_url = \"…\"` and `token = \"…\"`")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_and_removes_keys_keeping_others() {
        let cases = [
            (
                "",
                Changes {
                    set: vec![(API_URL, "https://deploy.example.com"), (TOKEN, "smk_x")],
                    remove: vec![],
                },
                "api_url = \"https://deploy.example.com\"\ntoken = \"smk_x\"\n",
            ),
            (
                "api_url = \"http://a\"\ntoken = \"old\"\ncolor = false\n",
                Changes {
                    set: vec![(TOKEN, "new \"quoted\"")],
                    remove: vec![],
                },
                "api_url = \"http://a\"\ntoken = 'new \"quoted\"'\ncolor = false\n",
            ),
            (
                "api_url = \"http://a\"\ntoken = \"old\"\n",
                Changes {
                    set: vec![],
                    remove: vec![TOKEN],
                },
                "api_url = \"http://a\"\n",
            ),
        ];
        for (raw, changes, want) in cases {
            let got = edit(raw, &changes).expect("edit");
            let got: toml::Table = toml::from_str(&got).expect("valid toml");
            let want: toml::Table = toml::from_str(want).expect("valid toml");
            assert_eq!(got, want, "{raw:?}");
        }
        assert!(edit("token = ", &Changes::default()).is_err());
    }

    #[test]
    fn update_writes_a_file_settings_can_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("scalemesh").join("config.toml");
        let login = Changes {
            set: vec![(API_URL, "http://127.0.0.1:9000"), (TOKEN, "smk_abc")],
            remove: vec![],
        };
        update(&path, &login).expect("login");
        let config = read(&path).expect("read");
        assert_eq!(config.api_url.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(config.token.as_deref(), Some("smk_abc"));

        let logout = Changes {
            set: vec![],
            remove: vec![TOKEN],
        };
        update(&path, &logout).expect("logout");
        let config = read(&path).expect("read");
        assert_eq!(config.api_url.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(config.token, None);
    }
}
