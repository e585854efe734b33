//! Outgoing notifications: what a project's subscribers receive when one of its deployments is
//! created, becomes ready, fails or is promoted. Each delivery is signed so its receiver can
//! tell it came from this server and is not a replay (`sign.rs`), and goes only to addresses
//! the server may call (`destination`): never loopback, link-local or private ones unless the
//! operator allowed them, as for git hosts (`core::netguard`).

pub(crate) mod send;
pub mod sign;
mod subscriptions;

pub use subscriptions::Event;

use scalemesh_core::netguard::{self, AllowList};

/// Why a notification URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadDestination {
    #[error("{0:.200} is not a URL")]
    NotUrl(String),
    #[error("notifications go to http:// or https:// URLs, not {0}:")]
    Scheme(String),
    #[error(
        "a notification URL carries no user name or password; sign deliveries with the secret instead"
    )]
    Credentials,
    #[error(
        "{host} {why}: notifications go only to public addresses unless the server allows it (--allow-private-notify)"
    )]
    Internal { host: String, why: String },
}

/// The URL a subscriber gave, checked before it is kept: a scheme this server speaks, no
/// credentials, and a host that is not an internal address by its spelling. A name is looked up
/// and its addresses checked again at each delivery, where the connection goes to the address
/// that was checked.
pub fn destination(raw: &str, allow: &AllowList) -> Result<url::Url, BadDestination> {
    let url = url::Url::parse(raw.trim()).map_err(|_| BadDestination::NotUrl(raw.to_owned()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(BadDestination::Scheme(url.scheme().to_owned()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(BadDestination::Credentials);
    }
    let host = url
        .host()
        .ok_or_else(|| BadDestination::NotUrl(raw.to_owned()))?;
    netguard::check_host(&host, allow).map_err(|refused| BadDestination::Internal {
        host: refused.host,
        why: refused.why,
    })?;
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_go_only_where_the_server_may_call() {
        let none = AllowList::default();
        let lan = AllowList::parse("10.0.0.0/8").expect("allow");
        // (url, allowed networks, kept)
        let table = [
            ("https://hooks.example.com/scalemesh", &none, true),
            ("http://93.184.216.34:8080/in", &none, true),
            ("http://127.0.0.1:9000/", &none, false),
            ("http://localhost/", &none, false),
            ("http://api.localhost/", &none, false),
            ("http://169.254.169.254/latest/meta-data/", &none, false),
            ("http://[::1]/", &none, false),
            ("http://0x7f.1/", &none, false),
            ("http://2130706433/", &none, false),
            ("http://10.1.2.3/hook", &none, false),
            ("http://10.1.2.3/hook", &lan, true),
            ("http://192.168.1.1/", &lan, false),
            ("ftp://example.com/", &none, false),
            ("file:///etc/passwd", &none, false),
            ("https://user:pw@example.com/", &none, false),
            ("not a url", &none, false),
        ];
        for (url, allow, kept) in table {
            assert_eq!(destination(url, allow).is_ok(), kept, "{url}");
        }
        assert!(matches!(
            destination("http://127.0.0.1/", &none),
            Err(BadDestination::Internal { .. })
        ));
    }
}
