//! How a notification is signed, and how its receiver checks it: the header
//! `X-Scalemesh-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. The
//! time is signed with the body, so a delivery replayed later than the receiver's tolerance is
//! refused even though its signature is right (as Stripe and Slack sign theirs).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header a delivery's signature travels in.
pub const HEADER: &str = "x-scalemesh-signature";

/// The signature header's value for `body` sent at `at` (unix seconds).
pub fn header(secret: &[u8], at: i64, body: &[u8]) -> String {
    format!("t={at},v1={}", hex::encode(mac(secret, at, body)))
}

/// Why a receiver refuses a delivery.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the signature header is not t=<seconds>,v1=<hex>")]
    Malformed,
    #[error("the delivery was signed {0} s away from now: a replay, or a clock far off")]
    Stale(i64),
    #[error("the signature does not match the secret")]
    WrongSecret,
}

/// Checks a delivery as its receiver does: the header's form, its time within `tolerance`
/// seconds of `now`, and the HMAC, compared in constant time. Any of several `v1=` values may
/// match (a server rotating its secret sends both).
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: i64,
    tolerance: i64,
) -> Result<(), Refused> {
    let mut at = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => at = Some(t.parse::<i64>().map_err(|_| Refused::Malformed)?),
            Some(("v1", sig)) => signatures.push(hex::decode(sig).map_err(|_| Refused::Malformed)?),
            _ => {}
        }
    }
    let at = at.ok_or(Refused::Malformed)?;
    if signatures.is_empty() {
        return Err(Refused::Malformed);
    }
    let off = now.saturating_sub(at);
    if off.abs() > tolerance {
        return Err(Refused::Stale(off));
    }
    let expected = mac_state(secret, at, body);
    if signatures
        .iter()
        .any(|sig| expected.clone().verify_slice(sig).is_ok())
    {
        Ok(())
    } else {
        Err(Refused::WrongSecret)
    }
}

fn mac_state(secret: &[u8], at: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(at.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

fn mac(secret: &[u8], at: i64, body: &[u8]) -> Vec<u8> {
    mac_state(secret, at, body).finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header, the body it came with, the receiver's clock, and what it makes of them.
    type Case<'a> = (&'a str, &'a [u8], i64, Result<(), Refused>);

    #[test]
    fn a_receiver_takes_fresh_deliveries_signed_with_the_secret_only() {
        let (secret, body, at) = (
            b"whsec_1",
            br#"{"event":"ready"}"#.as_slice(),
            1_780_000_000,
        );
        let signed = header(secret, at, body);
        // The signature of "1780000000.<body>" under the secret, as any HMAC library makes it.
        assert_eq!(
            signed,
            format!(
                "t=1780000000,v1={}",
                crate::forge::signature::sign(b"1780000000.{\"event\":\"ready\"}", secret)
            )
        );
        let other = header(b"another", at, body);
        let rotated = format!(
            "{},v1={}",
            signed,
            &other[other.find("v1=").expect("v1") + 3..]
        );
        // (header, body, now, outcome)
        let table: [Case; 8] = [
            (&signed, body, at, Ok(())),
            (&signed, body, at + 299, Ok(())),
            (&rotated, body, at, Ok(())),
            (&signed, body, at + 301, Err(Refused::Stale(301))),
            (
                &signed,
                br#"{"event":"failed"}"#,
                at,
                Err(Refused::WrongSecret),
            ),
            (&other, body, at, Err(Refused::WrongSecret)),
            ("v1=00", body, at, Err(Refused::Malformed)),
            ("t=x,v1=00", body, at, Err(Refused::Malformed)),
        ];
        for (header, body, now, outcome) in table {
            assert_eq!(verify(secret, header, body, now, 300), outcome, "{header}");
        }
    }
}
