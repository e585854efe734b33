//! Slowing down token guessing: each client address may fail to authenticate a number of times
//! a minute (a bucket that refills steadily); past that it is told to wait (429 with
//! `Retry-After`) before its next try, right or wrong. And which address a request comes from,
//! believing `X-Forwarded-For` only from a trusted proxy.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use ipnet::IpNet;

/// Addresses remembered at most; past this, those whose buckets are full again are forgotten.
const MAX_TRACKED: usize = 10_000;

pub struct Throttle {
    /// Failures allowed a minute (and at once); 0 turns the throttle off.
    per_minute: u32,
    buckets: HashMap<IpAddr, Bucket>,
    /// When the buckets were last swept for ones full again.
    swept: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Failures still allowed, refilled over time.
    left: f64,
    at: Instant,
}

impl Throttle {
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            buckets: HashMap::new(),
            swept: None,
        }
    }

    fn refill(&self, bucket: Bucket, now: Instant) -> f64 {
        let rate = f64::from(self.per_minute) / 60.0;
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        (bucket.left + elapsed * rate).min(f64::from(self.per_minute))
    }

    /// How long `ip` must wait before it may try to authenticate, if it must.
    pub fn wait(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        if self.per_minute == 0 {
            return None;
        }
        let bucket = self.buckets.get(&key(ip))?;
        let left = self.refill(*bucket, now);
        (left < 1.0).then(|| {
            let rate = f64::from(self.per_minute) / 60.0;
            Duration::from_secs_f64((1.0 - left) / rate).max(Duration::from_secs(1))
        })
    }

    /// `ip` failed to authenticate.
    pub fn failed(&mut self, ip: IpAddr, now: Instant) {
        if self.per_minute == 0 {
            return;
        }
        if self.buckets.len() >= MAX_TRACKED {
            self.sweep(now);
        }
        let start = Bucket {
            left: f64::from(self.per_minute),
            at: now,
        };
        let bucket = self.buckets.get(&key(ip)).copied().unwrap_or(start);
        let left = (self.refill(bucket, now) - 1.0).max(0.0);
        self.buckets.insert(key(ip), Bucket { left, at: now });
    }
}

impl Throttle {
    /// Forgets addresses whose buckets are full again, at most once a second; if that is not
    /// enough, the half that failed longest ago.
    fn sweep(&mut self, now: Instant) {
        if self
            .swept
            .is_some_and(|at| now.saturating_duration_since(at) < Duration::from_secs(1))
        {
            return;
        }
        self.swept = Some(now);
        let full = f64::from(self.per_minute);
        let buckets = std::mem::take(&mut self.buckets);
        let mut kept: Vec<(IpAddr, Bucket)> = buckets
            .into_iter()
            .filter(|(_, b)| self.refill(*b, now) < full)
            .collect();
        if kept.len() >= MAX_TRACKED {
            kept.sort_by_key(|(_, b)| std::cmp::Reverse(b.at));
            kept.truncate(MAX_TRACKED / 2);
        }
        self.buckets = kept.into_iter().collect();
    }
}

/// IPv6 clients are counted by their /64, which one host usually has to itself; an IPv4 client
/// on a dual-stack socket (`::ffff:a.b.c.d`) by its IPv4 address.
fn key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        v4 @ IpAddr::V4(_) => v4,
        IpAddr::V6(v6) => {
            let mut segments = v6.segments();
            segments[4..].fill(0);
            IpAddr::V6(segments.into())
        }
    }
}

/// The client's address: the connection's, or, when that is a trusted proxy, the last address
/// in `X-Forwarded-For` (all its headers, in order) that is not one. An entry that is not an
/// address ends the walk at the last address known.
pub fn client_ip(peer: IpAddr, forwarded_for: &[&str], trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = peer.to_canonical();
    if !is_trusted(&client) {
        return client;
    }
    let hops = forwarded_for
        .iter()
        .flat_map(|h| h.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for hop in hops.into_iter().rev() {
        match parse_hop(hop).map(|ip| ip.to_canonical()) {
            Some(ip) => {
                client = ip;
                if !is_trusted(&ip) {
                    break;
                }
            }
            None => break,
        }
    }
    client
}

/// `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:443`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Ok(addr) = hop.parse::<std::net::SocketAddr>() {
        return Some(addr.ip());
    }
    hop.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .and_then(|h| h.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn failures_past_the_limit_wait_and_refill() {
        let t0 = Instant::now();
        let mut throttle = Throttle::new(6);
        let a = ip("192.0.2.1");
        for _ in 0..6 {
            assert_eq!(throttle.wait(a, t0), None);
            throttle.failed(a, t0);
        }
        // Six a minute: one more after ten seconds.
        assert_eq!(throttle.wait(a, t0), Some(Duration::from_secs(10)));
        assert_eq!(
            throttle.wait(ip("192.0.2.2"), t0),
            None,
            "others are not slowed"
        );
        let later = t0 + Duration::from_secs(10);
        assert_eq!(throttle.wait(a, later), None);
        throttle.failed(a, later);
        assert!(throttle.wait(a, later).is_some());
        // A minute on, the bucket is full again.
        let much_later = later + Duration::from_secs(60);
        for _ in 0..6 {
            assert_eq!(throttle.wait(a, much_later), None);
            throttle.failed(a, much_later);
        }
        assert!(throttle.wait(a, much_later).is_some());
        assert_eq!(Throttle::new(0).wait(a, t0), None);
    }

    #[test]
    fn one_ipv6_host_is_its_64() {
        let t0 = Instant::now();
        let mut throttle = Throttle::new(2);
        throttle.failed(ip("2001:db8::1"), t0);
        throttle.failed(ip("2001:db8::ffff:1"), t0);
        assert!(throttle.wait(ip("2001:db8::2"), t0).is_some());
        assert!(throttle.wait(ip("2001:db8:0:1::2"), t0).is_none());
        // IPv4 clients of a dual-stack socket are not one /64.
        throttle.failed(ip("::ffff:192.0.2.1"), t0);
        throttle.failed(ip("::ffff:192.0.2.1"), t0);
        assert!(throttle.wait(ip("192.0.2.1"), t0).is_some());
        assert!(throttle.wait(ip("::ffff:192.0.2.2"), t0).is_none());
    }

    #[test]
    fn memory_stays_bounded() {
        let t0 = Instant::now();
        let mut throttle = Throttle::new(10);
        // Addresses whose buckets refill are forgotten.
        for i in 0..(MAX_TRACKED as u32 + 50) {
            throttle.failed(IpAddr::V4(i.into()), t0 + Duration::from_secs(u64::from(i)));
        }
        assert!(throttle.buckets.len() <= MAX_TRACKED);
        // Many addresses failing at once: swept once a second, to half the bound.
        let mut flooded = Throttle::new(10);
        let t1 = t0 + Duration::from_secs(1);
        for i in 0..(3 * MAX_TRACKED as u32) {
            flooded.failed(
                IpAddr::V4(i.into()),
                if i < 2 * MAX_TRACKED as u32 { t0 } else { t1 },
            );
        }
        assert!(
            flooded.buckets.len() < 2 * MAX_TRACKED,
            "{}",
            flooded.buckets.len()
        );
        // The newest are kept.
        assert!(
            flooded
                .wait(IpAddr::V4((3 * MAX_TRACKED as u32 - 1).into()), t1)
                .is_none()
        );
        flooded.failed(IpAddr::V4(7.into()), t1);
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec![
            "10.0.0.0/8".parse().expect("net"),
            "::1/128".parse().expect("net"),
        ];
        let cases: &[(&str, &[&str], &str)] = &[
            // Not from a proxy: the header is the client's own word, ignored.
            ("203.0.113.9", &["198.51.100.1"], "203.0.113.9"),
            ("10.0.0.2", &[], "10.0.0.2"),
            ("10.0.0.2", &["198.51.100.1"], "198.51.100.1"),
            // The client wrote the first entry; the proxy appended the real one.
            ("10.0.0.2", &["1.1.1.1, 198.51.100.1"], "198.51.100.1"),
            (
                "10.0.0.2",
                &["1.1.1.1, 198.51.100.1, 10.0.0.7"],
                "198.51.100.1",
            ),
            ("10.0.0.2", &["1.1.1.1", "198.51.100.1"], "198.51.100.1"),
            ("10.0.0.2", &["10.0.0.5, 10.0.0.6"], "10.0.0.5"),
            ("10.0.0.2", &["garbage, 10.0.0.6"], "10.0.0.6"),
            ("10.0.0.2", &["198.51.100.1:4711"], "198.51.100.1"),
            ("::1", &["[2001:db8::7]:443"], "2001:db8::7"),
            ("::1", &["2001:db8::7"], "2001:db8::7"),
            // A dual-stack socket's IPv4 peers are IPv4 addresses.
            ("::ffff:10.0.0.2", &["198.51.100.1"], "198.51.100.1"),
            ("::ffff:203.0.113.9", &[], "203.0.113.9"),
            ("10.0.0.2", &["::ffff:198.51.100.1"], "198.51.100.1"),
        ];
        for (peer, headers, want) in cases {
            assert_eq!(
                client_ip(ip(peer), headers, &trusted),
                ip(want),
                "{peer} {headers:?}"
            );
        }
    }
}
