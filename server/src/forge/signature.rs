//! Whether a delivery comes from the forge that holds the project's webhook secret. GitHub
//! signs the raw body with HMAC-SHA256 (`X-Hub-Signature-256: sha256=<hex>`), Gitea and Forgejo
//! too (`X-Gitea-Signature` / `X-Forgejo-Signature: <hex>`, and GitHub's header besides);
//! GitLab sends the secret itself (`X-Gitlab-Token`). Every comparison takes the same time
//! whatever the bytes. This runs before the body is parsed: an unsigned body is never read.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::{Headers, Provider};

/// Why a delivery is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the delivery is not signed: {0} is missing")]
    Unsigned(&'static str),
    #[error("the delivery's signature is not in the form {0}")]
    Malformed(&'static str),
    #[error("the delivery's signature does not match this project's webhook secret")]
    WrongSecret,
}

/// Checks `body` as delivered with `headers` by `provider`, against `secret`.
pub fn verify(
    provider: Provider,
    headers: &(impl Headers + ?Sized),
    body: &[u8],
    secret: &[u8],
) -> Result<(), Refused> {
    match provider {
        Provider::GitLab => {
            let token = headers
                .get("x-gitlab-token")
                .ok_or(Refused::Unsigned("X-Gitlab-Token"))?;
            equal(token.as_bytes(), secret)
        }
        Provider::Gitea => {
            let (name, hex) = ["x-gitea-signature", "x-forgejo-signature"]
                .into_iter()
                .find_map(|n| headers.get(n).map(|v| (n, v)))
                .or_else(|| {
                    let v = headers.get("x-hub-signature-256")?;
                    Some((
                        "x-hub-signature-256",
                        v.strip_prefix("sha256=").unwrap_or(""),
                    ))
                })
                .ok_or(Refused::Unsigned("X-Gitea-Signature"))?;
            let form = if name == "x-hub-signature-256" {
                "sha256=<64 hex digits>"
            } else {
                "<64 hex digits>"
            };
            check_hmac(hex, body, secret, form)
        }
        Provider::GitHub | Provider::Generic => {
            let signed = headers
                .get("x-hub-signature-256")
                .ok_or(Refused::Unsigned("X-Hub-Signature-256"))?;
            let form = "sha256=<64 hex digits>";
            let hex = signed
                .strip_prefix("sha256=")
                .ok_or(Refused::Malformed(form))?;
            check_hmac(hex, body, secret, form)
        }
    }
}

/// The HMAC-SHA256 of `body` under `secret`, in hex, as a forge computes it.
pub fn sign(body: &[u8], secret: &[u8]) -> String {
    hex::encode(mac(secret, body).finalize().into_bytes())
}

fn mac(secret: &[u8], body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(body);
    mac
}

fn check_hmac(
    hex_sig: &str,
    body: &[u8],
    secret: &[u8],
    form: &'static str,
) -> Result<(), Refused> {
    let given = hex::decode(hex_sig.trim()).map_err(|_| Refused::Malformed(form))?;
    if given.len() != 32 {
        return Err(Refused::Malformed(form));
    }
    mac(secret, body)
        .verify_slice(&given)
        .map_err(|_| Refused::WrongSecret)
}

fn equal(given: &[u8], secret: &[u8]) -> Result<(), Refused> {
    // Lengths differ only for a wrong secret; the comparison of equal lengths is constant-time.
    if given.len() == secret.len() && bool::from(given.ct_eq(secret)) {
        Ok(())
    } else {
        Err(Refused::WrongSecret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_s_documented_vector_signs_as_github_does() {
        assert_eq!(
            sign(b"Hello, World!", b"It's a Secret to Everybody"),
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    /// A provider, the headers it sends, and whether they are taken.
    type Case<'a> = (Provider, Vec<(&'a str, &'a str)>, Result<(), Refused>);

    const SECRET: &[u8] = b"s3cret";
    const BODY: &[u8] = br#"{"ref":"refs/heads/main"}"#;

    #[test]
    fn deliveries_are_taken_only_with_the_project_s_secret() {
        let good = sign(BODY, SECRET);
        let other = sign(BODY, b"another");
        let prefixed = format!("sha256={good}");
        let prefixed_other = format!("sha256={other}");
        let upper = good.to_uppercase();
        let signed = Signed {
            good: &good,
            other: &other,
            prefixed: &prefixed,
            prefixed_other: &prefixed_other,
            upper: &upper,
        };
        for (provider, headers, expected) in cases(&signed) {
            assert_eq!(
                verify(provider, headers.as_slice(), BODY, SECRET),
                expected,
                "{provider} {headers:?}"
            );
        }
        // A body changed on the way is refused even with the signature of the original.
        let headers = [("X-Hub-Signature-256", prefixed.as_str())];
        let changed = br#"{"ref":"refs/heads/evil"}"#;
        assert_eq!(
            verify(Provider::GitHub, headers.as_slice(), changed, SECRET),
            Err(Refused::WrongSecret)
        );
    }

    /// Signatures of `BODY` made with the secret (`good`) or another (`other`), bare, prefixed
    /// as GitHub sends them, or in capitals.
    struct Signed<'a> {
        good: &'a str,
        other: &'a str,
        prefixed: &'a str,
        prefixed_other: &'a str,
        upper: &'a str,
    }

    fn cases<'a>(signed: &Signed<'a>) -> Vec<Case<'a>> {
        let Signed {
            good,
            other,
            prefixed,
            prefixed_other,
            upper,
        } = *signed;
        use Provider::*;
        vec![
            (GitHub, vec![("X-Hub-Signature-256", prefixed)], Ok(())),
            (Generic, vec![("x-hub-signature-256", prefixed)], Ok(())),
            (
                GitHub,
                vec![("X-Hub-Signature-256", prefixed_other)],
                Err(Refused::WrongSecret),
            ),
            (
                GitHub,
                vec![("X-Hub-Signature-256", good)],
                Err(Refused::Malformed("sha256=<64 hex digits>")),
            ),
            (
                GitHub,
                vec![("X-Hub-Signature-256", "sha256=zz")],
                Err(Refused::Malformed("sha256=<64 hex digits>")),
            ),
            (
                GitHub,
                vec![("X-Hub-Signature-256", "sha256=abcd")],
                Err(Refused::Malformed("sha256=<64 hex digits>")),
            ),
            (
                GitHub,
                vec![("X-Hub-Signature", "sha1=0000")],
                Err(Refused::Unsigned("X-Hub-Signature-256")),
            ),
            (
                GitHub,
                vec![],
                Err(Refused::Unsigned("X-Hub-Signature-256")),
            ),
            (Gitea, vec![("X-Gitea-Signature", good)], Ok(())),
            (Gitea, vec![("X-Gitea-Signature", upper)], Ok(())),
            (Gitea, vec![("X-Forgejo-Signature", good)], Ok(())),
            (Gitea, vec![("X-Hub-Signature-256", prefixed)], Ok(())),
            (
                Gitea,
                vec![("X-Gitea-Signature", other)],
                Err(Refused::WrongSecret),
            ),
            (Gitea, vec![], Err(Refused::Unsigned("X-Gitea-Signature"))),
            (GitLab, vec![("X-Gitlab-Token", "s3cret")], Ok(())),
            (
                GitLab,
                vec![("X-Gitlab-Token", "s3cre")],
                Err(Refused::WrongSecret),
            ),
            (
                GitLab,
                vec![("X-Gitlab-Token", "s3cret!")],
                Err(Refused::WrongSecret),
            ),
            (
                GitLab,
                vec![("X-Hub-Signature-256", prefixed)],
                Err(Refused::Unsigned("X-Gitlab-Token")),
            ),
        ]
    }
}
