//! Requests this server makes to addresses people give it (notification URLs, a forge's API):
//! the host checked by its spelling, then looked up and every address checked, and the
//! connection made to the address checked; redirects are not followed; a time limit. And how
//! long a failed request waits before it is tried again.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use scalemesh_core::netguard::{self, AllowList};

/// Attempts a request gets before it is given up.
pub const ATTEMPTS: u32 = 6;
/// How long one attempt may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// How long to wait after the `attempts`th failed attempt, `None` when there is no attempt
/// left: `base`, then four times longer each time.
pub fn retry_after(base: Duration, attempts: u32) -> Option<Duration> {
    if attempts == 0 || attempts >= ATTEMPTS {
        return None;
    }
    Some(base.saturating_mul(4u32.saturating_pow(attempts - 1)))
}

/// A client for `url` that connects only to an address `allow` lets it call.
pub async fn client_for(url: &url::Url, allow: &AllowList) -> Result<reqwest::Client, String> {
    let mut client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(TIMEOUT)
        .user_agent(concat!("scalemesh/", env!("CARGO_PKG_VERSION")));
    if let Some((name, addr)) = address(url, allow).await? {
        client = client.resolve(&name, addr);
    }
    client.build().map_err(|e| e.to_string())
}

/// What tells a person why a request failed: the innermost cause ("Connection refused").
pub fn innermost(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return format!("no answer within {} s", TIMEOUT.as_secs());
    }
    let mut cause: &(dyn std::error::Error + 'static) = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// For a URL naming its host by name: the name and the checked address to connect to.
async fn address(
    url: &url::Url,
    allow: &AllowList,
) -> Result<Option<(String, SocketAddr)>, String> {
    let host = url.host().ok_or("the URL has no host")?;
    let port = url.port_or_known_default().unwrap_or(80);
    let literal =
        netguard::check_host(&host, allow).map_err(|r| format!("{} {}", r.host, r.why))?;
    if literal.is_some() {
        return Ok(None);
    }
    let name = host.to_string();
    let found: Vec<IpAddr> = tokio::net::lookup_host((name.as_str(), port))
        .await
        .map_err(|e| format!("{name} could not be looked up: {e}"))?
        .map(|a| a.ip())
        .collect();
    let ip = netguard::check_addresses(&name, &found, allow)
        .map_err(|r| format!("{} {}", r.host, r.why))?;
    Ok(Some((name, SocketAddr::new(ip, port))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_delivery_waits_four_times_longer_each_time_six_attempts_in_all() {
        let base = Duration::from_secs(10);
        // (failed attempts so far, wait before the next)
        let table = [
            (1, Some(10)),
            (2, Some(40)),
            (3, Some(160)),
            (4, Some(640)),
            (5, Some(2560)),
            (6, None),
            (7, None),
        ];
        for (attempts, wait) in table {
            assert_eq!(
                retry_after(base, attempts),
                wait.map(Duration::from_secs),
                "{attempts}"
            );
        }
    }
}
