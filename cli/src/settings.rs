//! Settings resolved once: flags, then `SCALEMESH_*` variables (clap reads both), then the config
//! file, then defaults — and for the token, last, the admin token of a server on this machine.

use std::path::{Path, PathBuf};

use url::Url;

use crate::args::GlobalArgs;
use crate::config_file::{self, ConfigFile};
use crate::error::CliError;

pub const DEFAULT_API_URL: &str = "http://127.0.0.1:9000";
use scalemesh_core::local::{ADMIN_TOKEN_FILE, default_data_dir};

#[derive(Debug, Clone)]
pub struct Settings {
    pub api_url: Url,
    pub token: Option<String>,
    /// Where the token came from.
    pub token_source: TokenSource,
    pub data_dir: PathBuf,
    /// The config file, whether or not it exists (none when there is no home folder).
    pub config_path: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// `--token` or `SCALEMESH_TOKEN`.
    Flag,
    ConfigFile,
    /// The admin token of a server on this machine.
    LocalAdmin,
    None,
}

impl Settings {
    pub fn resolve(args: &GlobalArgs) -> anyhow::Result<Self> {
        let config_path = args.config.clone().or_else(default_config_path);
        let config = match &config_path {
            Some(path) => config_file::read(path)?,
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
        let (token, token_source) = if let Some(token) = args.token.clone() {
            (Some(token), TokenSource::Flag)
        } else if let Some(token) = config.token {
            (Some(token), TokenSource::ConfigFile)
        } else if let Some(token) = is_local(&api_url)
            .then(|| read_admin_token(&data_dir))
            .flatten()
        {
            (Some(token), TokenSource::LocalAdmin)
        } else {
            (None, TokenSource::None)
        };
        let (token, token_source) = match token.filter(|t| !t.is_empty()) {
            Some(token) => (Some(token), token_source),
            None => (None, TokenSource::None),
        };
        Ok(Self {
            api_url,
            token,
            token_source,
            data_dir,
            config_path,
        })
    }

    pub fn admin_token_path(&self) -> PathBuf {
        self.data_dir.join(ADMIN_TOKEN_FILE)
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
