//! Talking to a repository the user named, for whoever runs git against it (the builder's
//! clone, the server's polling): the host resolved once and every address checked
//! (`netguard`), git then told to connect to the address that was checked, so a name that
//! resolves elsewhere a moment later gets nowhere; only the http(s) and git transports, no
//! redirects, hooks, submodules, prompts, system or global config.

use std::ffi::OsString;
use std::future::Future;
use std::net::IpAddr;
use std::path::Path;
use std::pin::Pin;

use anyhow::Context;

use crate::git::{ALLOWED_SCHEMES, GitUrl};
use crate::netguard::{self, AllowList};

/// A user name and token git sends to an http(s) repository.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GitCredential {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for GitCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GitCredential({}, ***)", self.username)
    }
}

/// The environment that makes git send `credential` to the repository at `url`: an
/// `Authorization` header set through git's environment (never its arguments, which `ps`
/// shows, nor the clone's saved config); nothing for a transport other than http(s).
pub fn credential_env(url: &GitUrl, credential: &GitCredential) -> Vec<(String, String)> {
    use base64::Engine;
    let http = url::Url::parse(url.as_str()).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
    if !http {
        return Vec::new();
    }
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", credential.username, credential.password));
    vec![
        ("GIT_CONFIG_COUNT".into(), "1".into()),
        ("GIT_CONFIG_KEY_0".into(), "http.extraHeader".into()),
        (
            "GIT_CONFIG_VALUE_0".into(),
            format!("Authorization: Basic {basic}"),
        ),
    ]
}

/// The environment git runs with, whatever it does: nothing of the caller's but `PATH`.
pub fn safe_env(home: &Path) -> Vec<(&'static str, OsString)> {
    vec![
        (
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
        ),
        ("HOME", home.as_os_str().to_owned()),
        ("LANG", "C.UTF-8".into()),
        ("GIT_TERMINAL_PROMPT", "0".into()),
        ("GIT_ALLOW_PROTOCOL", ALLOWED_SCHEMES.join(":").into()),
        ("GIT_PROTOCOL_FROM_USER", "0".into()),
        ("GIT_CONFIG_NOSYSTEM", "1".into()),
        ("GIT_CONFIG_GLOBAL", "/dev/null".into()),
        ("GIT_ASKPASS", "/bin/false".into()),
        ("SSH_ASKPASS", "/bin/false".into()),
        ("GIT_LFS_SKIP_SMUDGE", "1".into()),
    ]
}

/// Looks host names up. A trait so tests can answer differently from one lookup to the next.
pub trait Resolve: Send + Sync {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send + 'a>>;
}

/// The machine's resolver.
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send + 'a>> {
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host, port))
                .await?
                .map(|a| a.ip())
                .collect())
        })
    }
}

/// Where git must connect for a URL whose host is a name: that name, its port, and the address
/// that was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinned {
    pub host: String,
    pub port: u16,
    pub ip: IpAddr,
}

/// Checks the URL's host and, for a name, resolves it once and checks every address; `None` for
/// a literal address (checked, and connected to as it is).
pub async fn pin(
    url: &GitUrl,
    allow: &AllowList,
    resolver: &dyn Resolve,
) -> anyhow::Result<Option<Pinned>> {
    let parsed = url::Url::parse(url.as_str()).context("the repository URL is not a URL")?;
    let host = parsed.host().context("the repository URL has no host")?;
    if netguard::check_host(&host, allow)?.is_some() {
        return Ok(None);
    }
    let name = host.to_string();
    let port = parsed.port_or_known_default().unwrap_or(9418);
    let addresses = resolver
        .resolve(&name, port)
        .await
        .with_context(|| format!("could not resolve the repository host {name}"))?;
    let ip = netguard::check_addresses(&name, &addresses, allow)?;
    Ok(Some(Pinned {
        host: name,
        port,
        ip,
    }))
}

/// What git is told to clone, and the settings that make it connect to the pinned address:
/// for http(s) a resolve entry (the name stays in the URL, for TLS and `Host`); for git:// the
/// address in the URL itself.
fn target(url: &GitUrl, pinned: Option<&Pinned>) -> anyhow::Result<(String, Vec<String>)> {
    // git is given the URL as our parser reads it, never the raw text another parser might
    // read another way.
    let mut parsed = url::Url::parse(url.as_str()).context("the repository URL is not a URL")?;
    let Some(pinned) = pinned else {
        return Ok((parsed.to_string(), Vec::new()));
    };
    if parsed.scheme() == "git" {
        parsed
            .set_ip_host(pinned.ip)
            .map_err(|()| anyhow::anyhow!("could not point the repository URL at {}", pinned.ip))?;
        return Ok((parsed.to_string(), Vec::new()));
    }
    let address = match pinned.ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    };
    Ok((
        parsed.to_string(),
        vec![
            "-c".into(),
            format!(
                "http.curloptResolve={}:{}:{address}",
                pinned.host, pinned.port
            ),
        ],
    ))
}

/// The arguments of a git command that talks to the repository at `url`, connecting where
/// `pinned` says, with only the allowed transports, no redirects, hooks or submodules; and the
/// URL to give it.
pub fn remote_command(
    url: &GitUrl,
    pinned: Option<&Pinned>,
    command: &[&str],
) -> anyhow::Result<(Vec<String>, String)> {
    let (target, mut args) = target(url, pinned)?;
    args.extend(
        [
            "-c",
            "protocol.allow=never",
            "-c",
            "protocol.https.allow=always",
            "-c",
            "protocol.http.allow=always",
            "-c",
            "protocol.git.allow=always",
            "-c",
            "http.followRedirects=false",
            "-c",
            "core.hooksPath=/dev/null",
            "-c",
            "submodule.recurse=false",
        ]
        .iter()
        .chain(command)
        .map(|a| (*a).to_owned()),
    );
    Ok((args, target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_connects_where_the_pin_says() {
        let pinned = |host: &str, port, ip: &str| Pinned {
            host: host.into(),
            port,
            ip: ip.parse().expect("ip"),
        };
        let url = GitUrl::parse("https://git.example.com/a/b.git").expect("url");
        let (to, config) =
            target(&url, Some(&pinned("git.example.com", 443, "140.82.112.3"))).expect("target");
        assert_eq!(to, "https://git.example.com/a/b.git");
        assert_eq!(
            config,
            ["-c", "http.curloptResolve=git.example.com:443:140.82.112.3"]
        );
        let (_, config) =
            target(&url, Some(&pinned("git.example.com", 443, "2606:50c0::1"))).expect("target");
        assert_eq!(
            config[1],
            "http.curloptResolve=git.example.com:443:[2606:50c0::1]"
        );
        let git = GitUrl::parse("git://git.example.com/a").expect("url");
        let (to, config) =
            target(&git, Some(&pinned("git.example.com", 9418, "140.82.112.3"))).expect("target");
        assert_eq!(to, "git://140.82.112.3/a");
        assert!(config.is_empty());
        let (to, _) = target(&url, None).expect("target");
        assert_eq!(to, url.as_str());
        // What git gets is what was checked.
        let odd = GitUrl::parse("HTTPS://Git.Example.COM:443/a/../b.git").expect("url");
        let (to, _) = target(&odd, None).expect("target");
        assert_eq!(to, "https://git.example.com/b.git");
    }
}
