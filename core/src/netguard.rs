//! Which hosts a build may fetch its source from. A repository URL is the user's word, and the
//! fetch runs inside the platform's network: without this, `http://169.254.169.254/…` reads a
//! cloud's instance credentials and `http://127.0.0.1:9000/…` makes the platform call its own
//! API. Every address a host resolves to must be public unless an operator allowed it
//! (`--allow-private-git-hosts`); the builder then connects to the address it checked, never
//! to what a second lookup says.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// Hosts, addresses and networks an operator allows even though they are not public: a
/// company's git server on its LAN, repositories served on loopback in tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    names: Vec<String>,
    nets: Vec<IpNet>,
}

impl AllowList {
    /// `git.corp.lan, 10.0.0.0/8, 127.0.0.1` (empty entries skipped).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut list = Self::default();
        for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if let Ok(net) = entry.parse::<IpNet>() {
                list.nets.push(net);
            } else if let Ok(ip) = entry.trim_matches(['[', ']']).parse::<IpAddr>() {
                list.nets.push(IpNet::from(ip.to_canonical()));
            } else if is_host_name(entry) {
                list.names
                    .push(entry.trim_end_matches('.').to_ascii_lowercase());
            } else {
                return Err(format!(
                    "{entry:?} is not a host name, an address or a network such as 10.0.0.0/8"
                ));
            }
        }
        Ok(list)
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty() && self.nets.is_empty()
    }

    fn allows_name(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.names.contains(&host)
    }

    fn allows_ip(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// Back to the form [`AllowList::parse`] reads, for handing on to a builder.
    pub fn to_setting(&self) -> String {
        self.names
            .iter()
            .cloned()
            .chain(self.nets.iter().map(ToString::to_string))
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn is_host_name(raw: &str) -> bool {
    let name = raw.trim_end_matches('.');
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Why a build may not fetch from `ip`, when it may not.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip.to_canonical() {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        _ if ip.is_unspecified() || a == 0 => "an unspecified address",
        _ if ip.is_loopback() => "a loopback address",
        _ if ip.is_link_local() => "a link-local address (where cloud metadata services answer)",
        _ if ip.is_private() => "a private address",
        (100, 64..=127, _) => "a shared (carrier-grade NAT) address",
        (192, 0, 0) => "an IETF protocol address",
        (198, 18..=19, _) => "a benchmarking address",
        // Azure's host endpoint (DHCP, DNS, the wire server): metadata by another name.
        (168, 63, 129) if ip.octets()[3] == 16 => "a cloud host endpoint",
        _ if ip.is_documentation() => "a documentation address",
        _ if ip.is_multicast() => "a multicast address",
        _ if ip.is_broadcast() || a >= 240 => "a reserved address",
        _ => return None,
    })
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    // IPv4 carried inside IPv6: NAT64 (64:ff9b::/96), 6to4 (2002::/16), IPv4-compatible (::/96).
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || (s[..6] == [0; 6] && (s[6] | s[7]) > 1) {
        return forbidden_v4(embedded(s[6], s[7])).or(Some("an IPv6 address for a reserved one"));
    }
    if s[0] == 0x2002 {
        return forbidden_v4(embedded(s[1], s[2]));
    }
    // The local-use NAT64 prefix (RFC 8215) translates to whatever the operator routes.
    if s[..2] == [0x64, 0xff9b] && s[2] == 1 {
        return Some("a local NAT64 address");
    }
    Some(match s[0] {
        _ if ip.is_unspecified() => "an unspecified address",
        _ if ip.is_loopback() => "a loopback address",
        0xfe80..=0xfebf => "a link-local address",
        0xfec0..=0xfeff => "a site-local address",
        0xfc00..=0xfdff => "a unique-local (private) address",
        0xff00..=0xffff => "a multicast address",
        0x2001 if s[1] == 0x0db8 => "a documentation address",
        // Teredo tunnels to whatever its client is.
        0x2001 if s[1] == 0 => "a Teredo address",
        0x0100 if s[1..4] == [0, 0, 0] => "a discard address",
        _ => return None,
    })
}

/// Why fetching from a host is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the repository host {host} {why}: builds fetch only from public addresses; an operator can allow it with --allow-private-git-hosts"
)]
pub struct Refused {
    pub host: String,
    pub why: String,
}

/// Whether `host` (as a URL names it) may be fetched from at all, before any lookup: its
/// literal address must be public, and `localhost` names are never looked up. `Ok(Some(ip))`
/// for a literal address, `Ok(None)` for a name to resolve and check with [`check_addresses`].
pub fn check_host(host: &url::Host<&str>, allow: &AllowList) -> Result<Option<IpAddr>, Refused> {
    let refuse = |why: &str| Refused {
        host: host.to_string(),
        why: why.to_owned(),
    };
    match host {
        url::Host::Domain(name) => {
            if let Some(ip) = as_ip(name) {
                return check_ip(ip, allow)
                    .map(Some)
                    .map_err(|why| refuse(&format!("is {why}")));
            }
            if allow.allows_name(name) {
                return Ok(None);
            }
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name == "localhost" || name.ends_with(".localhost") {
                return Err(refuse("is this machine (localhost)"));
            }
            Ok(None)
        }
        url::Host::Ipv4(ip) => check_ip(IpAddr::V4(*ip), allow)
            .map(Some)
            .map_err(|why| refuse(&format!("is {why}"))),
        url::Host::Ipv6(ip) => check_ip(IpAddr::V6(*ip), allow)
            .map(Some)
            .map_err(|why| refuse(&format!("is {why}"))),
    }
}

/// The address a host name spells, as resolvers read it (`2130706433`, `0x7f.1`, `127.1`):
/// URLs of schemes the URL standard does not know (`git://`) keep such hosts as names.
fn as_ip(name: &str) -> Option<IpAddr> {
    let url = url::Url::parse(&format!("http://{name}/")).ok()?;
    match url.host()? {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    }
}

fn check_ip(ip: IpAddr, allow: &AllowList) -> Result<IpAddr, &'static str> {
    match forbidden(ip) {
        Some(why) if !allow.allows_ip(ip) => Err(why),
        _ => Ok(ip),
    }
}

/// The address to connect to for `name`, which resolved to `addresses`: refused when any of
/// them is not public (and not allowed), since which one a client picks is not ours to say.
pub fn check_addresses(
    name: &str,
    addresses: &[IpAddr],
    allow: &AllowList,
) -> Result<IpAddr, Refused> {
    let refuse = |why: String| Refused {
        host: name.to_owned(),
        why,
    };
    if allow.allows_name(name) {
        return addresses
            .first()
            .copied()
            .ok_or_else(|| refuse("has no address".into()));
    }
    for ip in addresses {
        check_ip(*ip, allow).map_err(|why| refuse(format!("resolves to {ip}, {why}")))?;
    }
    addresses
        .first()
        .copied()
        .ok_or_else(|| refuse("has no address".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a URL's host is after the URL parser has read it: the decimal, hex, octal and
    /// short spellings of IPv4 all become one address.
    fn host_of(url: &str) -> url::Url {
        url::Url::parse(url).expect("a URL")
    }

    #[test]
    fn forbidden_addresses_are_refused_in_every_spelling() {
        let none = AllowList::default();
        let refused = [
            "http://169.254.169.254/latest/meta-data",
            "http://[::ffff:169.254.169.254]/a.git",
            "http://[::ffff:a9fe:a9fe]/a.git",
            "http://2852039166/a.git",
            "http://0xa9fea9fe/a.git",
            "http://0251.0376.0251.0376/a.git",
            "http://169.254.43518/a.git",
            "http://0/a.git",
            "http://0.0.0.0/a.git",
            "http://127.1/a.git",
            "http://0x7f000001/a.git",
            "http://017700000001/a.git",
            "http://127.0.0.1:9000/api/v1/projects",
            "http://127.0.0.1./a.git",
            "http://[::1]/a.git",
            "http://[::]/a.git",
            "http://[0:0:0:0:0:ffff:127.0.0.1]/a.git",
            "http://localhost/a.git",
            "http://LOCALHOST./a.git",
            "http://api.localhost/a.git",
            "https://10.0.0.1/a.git",
            "https://10.255.255.255/a.git",
            "https://172.16.0.1/a.git",
            "https://172.31.255.254/a.git",
            "https://192.168.1.1/a.git",
            "https://100.64.0.1/a.git",
            "https://[fd00::1]/a.git",
            "https://[fc00::1]/a.git",
            "https://[fe80::1]/a.git",
            "https://224.0.0.1/a.git",
            "https://255.255.255.255/a.git",
            "https://240.0.0.1/a.git",
            "https://198.18.0.1/a.git",
            "https://[ff02::1]/a.git",
            "https://[64:ff9b::a9fe:a9fe]/a.git",
            "https://[2002:a9fe:a9fe::1]/a.git",
            "https://[64:ff9b:1::a00:1]/a.git",
            "http://168.63.129.16/a.git",
            "https://[::127.0.0.1]/a.git",
            "git://127.0.0.1/a",
            "git://2130706433/a",
            "git://0x7f.1/a",
            "git://[::1]:9418/a",
        ];
        for raw in refused {
            let url = host_of(raw);
            let host = url.host().expect("a host");
            let err = check_host(&host, &none).expect_err(raw);
            assert!(
                err.to_string().contains("--allow-private-git-hosts"),
                "{raw}: {err}"
            );
        }
    }

    #[test]
    fn public_and_allowed_hosts_pass() {
        let none = AllowList::default();
        for raw in [
            "https://github.com/acme/site.git",
            "https://8.8.8.8/a.git",
            "https://[2606:4700::1111]/a.git",
            "git://140.82.112.3/a",
        ] {
            let url = host_of(raw);
            assert!(
                check_host(&url.host().expect("host"), &none).is_ok(),
                "{raw}"
            );
        }
        let allow = AllowList::parse("127.0.0.1, 10.0.0.0/8 ,git.corp.lan, [::1]").expect("parses");
        for raw in [
            "http://127.0.0.1:8123/a.git",
            "http://127.1/a.git",
            "http://10.1.2.3/a.git",
            "http://[::1]/a.git",
            "http://[::ffff:127.0.0.1]/a.git",
            "https://git.corp.lan/a.git",
            "https://GIT.CORP.LAN./a.git",
        ] {
            let url = host_of(raw);
            assert!(
                check_host(&url.host().expect("host"), &allow).is_ok(),
                "{raw}"
            );
        }
        // Allowing one address allows no other.
        let url = host_of("http://127.0.0.2/a.git");
        assert!(check_host(&url.host().expect("host"), &allow).is_err());
        assert_eq!(
            AllowList::parse(&allow.to_setting()).expect("round trip"),
            allow
        );
        for bad in ["not a host", "10.0.0.0/33", "-x.lan"] {
            assert!(AllowList::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_address_a_name_resolves_to_must_be_public() {
        let none = AllowList::default();
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        // `169.254.169.254.nip.io` and friends: names for forbidden addresses.
        for addresses in [
            vec![ip("169.254.169.254")],
            vec![ip("140.82.112.3"), ip("127.0.0.1")],
            vec![ip("::ffff:10.0.0.1")],
            vec![],
        ] {
            assert!(
                check_addresses("x.example", &addresses, &none).is_err(),
                "{addresses:?}"
            );
        }
        assert_eq!(
            check_addresses(
                "github.com",
                &[ip("140.82.112.3"), ip("2606:50c0::1")],
                &none
            ),
            Ok(ip("140.82.112.3"))
        );
        let lan = AllowList::parse("git.corp.lan").expect("parses");
        assert_eq!(
            check_addresses("git.corp.lan", &[ip("10.0.0.5")], &lan),
            Ok(ip("10.0.0.5"))
        );
    }
}
