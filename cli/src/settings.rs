//! Settings resolved once: flags, then `SCALEMESH_*` variables (clap reads both), then the config
//! file, then defaults — and for the token, last, the admin token of a server on this machine.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;
use url::Url;

use crate::args::GlobalArgs;
use crate::error::CliError;

pub const DEFAULT_API_URL: &str = "http://127.0.0.1:9000";
use scalemesh_core::local::{ADMIN_TOKEN_FILE, default_data_dir};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    api_url: Option<String>,
    token: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub api_url: Url,
    pub token: Option<String>,
    pub data_dir: PathBuf,
}

impl Settings {
    pub fn resolve(args: &GlobalArgs) -> anyhow::Result<Self> {
        let config_path = args.config.clone().or_else(default_config_path);
        let config = match &config_path {
            Some(path) => read_config(path)?,
            None => ConfigFile::default(),
        };
        let raw_url = args
            .api_url
            .clone()
            .or(config.api_url)
            .unwrap_or_else(|| DEFAULT_API_URL.to_owned());
        let api_url = Url::parse(&raw_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| {
                CliError::new(format!("{raw_url:?} is not an API URL"))
                    .hint("give it as http://host:port, e.g. --api-url http://127.0.0.1:9000")
            })?;
        let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
        let token = args
            .token
            .clone()
            .or(config.token)
            .or_else(|| {
                is_local(&api_url)
                    .then(|| read_admin_token(&data_dir))
                    .flatten()
            })
            .filter(|t| !t.is_empty());
        Ok(Self {
            api_url,
            token,
            data_dir,
        })
    }

    pub fn admin_token_path(&self) -> PathBuf {
        self.data_dir.join(ADMIN_TOKEN_FILE)
    }
}

fn read_config(path: &Path) -> anyhow::Result<ConfigFile> {
    match std::fs::read_to_string(path) {
        Ok(raw) => toml::from_str(&raw).map_err(|e| {
            CliError::new(format!(
                "the config file {} is not valid: {}",
                path.display(),
                e.message()
            ))
            .hint("it holds `api_url = \"…\"` and `token = \"…\"`")
            .into()
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConfigFile::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn default_config_path() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("scalemesh").join("config.toml"))
}

/// The local admin token is only ever sent to a server on this machine.
fn is_local(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn read_admin_token(data_dir: &Path) -> Option<String> {
    std::fs::read_to_string(data_dir.join(ADMIN_TOKEN_FILE))
        .ok()
        .map(|t| t.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_token_is_only_for_local_servers() {
        for (url, local) in [
            ("http://127.0.0.1:9000", true),
            ("http://localhost:9000", true),
            ("http://[::1]:9000", true),
            ("https://deploy.example.com", false),
            ("http://10.0.0.1:9000", false),
        ] {
            assert_eq!(is_local(&Url::parse(url).expect("url")), local, "{url}");
        }
    }
}
