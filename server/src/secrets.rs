//! Project variables sealed at rest: XChaCha20-Poly1305 under the server's key, so the database
//! never holds a value in clear. Each value is bound to its row (project, key, target) as
//! associated data, so a sealed value moved to another row does not open.
//!
//! The key is 32 random bytes, hex-encoded, in `secret-key` in the data folder (made on first
//! start, readable by its owner only) or in the file `--secret-key-file` names.

use std::path::Path;

use anyhow::Context;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use scalemesh_core::access::EnvTarget;

/// The file in the data folder that holds the key, when no other is given.
pub const KEY_FILE: &str = "secret-key";

/// The first byte of every sealed value: which format (and, later, which key) sealed it.
const FORMAT: u8 = 1;
const NONCE_LEN: usize = 24;

#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "a stored variable does not open with this server's secret key: the key file was changed or \
     belongs to another data folder"
)]
pub struct OpenError;

impl SecretBox {
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new(key.into()),
        }
    }

    /// The key in `explicit`, else in the data folder's key file, made if missing.
    pub fn load(data_dir: &Path, explicit: Option<&Path>) -> anyhow::Result<Self> {
        let path = explicit.map_or_else(|| data_dir.join(KEY_FILE), Path::to_path_buf);
        let raw = match std::fs::read_to_string(&path) {
            Ok(raw) => raw,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => {
                let key = scalemesh_core::id::random_bytes::<32>();
                crate::private_file::write_private(&path, &format!("{}\n", hex::encode(key)))
                    .with_context(|| format!("saving a new secret key to {}", path.display()))?;
                tracing::info!(path = %path.display(), "created the secret key for project variables");
                hex::encode(key)
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("reading the secret key {}", path.display()));
            }
        };
        let bytes = hex::decode(raw.trim()).ok();
        let key: [u8; 32] = bytes
            .and_then(|b| b.try_into().ok())
            .with_context(|| {
                format!(
                    "{} is not a secret key: it must hold 64 hex digits (make one with `openssl rand -hex 32`)",
                    path.display()
                )
            })?;
        Ok(Self::new(&key))
    }

    /// Seals `value` for the row `(project_id, key, target)`.
    pub fn seal(&self, row: &RowId<'_>, value: &str) -> Vec<u8> {
        let nonce_bytes = scalemesh_core::id::random_bytes::<NONCE_LEN>();
        let nonce = XNonce::from_slice(&nonce_bytes);
        let aad = row.associated_data();
        // Encryption fails only for inputs of many gigabytes; values are at most 64 KiB.
        let sealed = self
            .cipher
            .encrypt(
                nonce,
                Payload {
                    msg: value.as_bytes(),
                    aad: &aad,
                },
            )
            .unwrap_or_default();
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(FORMAT);
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens what [`SecretBox::seal`] made for the same row.
    pub fn open(&self, row: &RowId<'_>, sealed: &[u8]) -> Result<String, OpenError> {
        let (format, rest) = sealed.split_first().ok_or(OpenError)?;
        if *format != FORMAT || rest.len() < NONCE_LEN {
            return Err(OpenError);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let aad = row.associated_data();
        let plain = self
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| OpenError)?;
        String::from_utf8(plain).map_err(|_| OpenError)
    }
}

/// The row a value belongs to, bound into its seal.
pub struct RowId<'a> {
    pub project_id: i64,
    pub key: &'a str,
    pub target: EnvTarget,
}

impl RowId<'_> {
    fn associated_data(&self) -> Vec<u8> {
        let mut aad = Vec::with_capacity(8 + self.key.len() + 12);
        aad.extend_from_slice(&self.project_id.to_be_bytes());
        aad.extend_from_slice(self.key.as_bytes());
        aad.push(0);
        aad.extend_from_slice(self.target.as_str().as_bytes());
        aad
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(project_id: i64, key: &str, target: EnvTarget) -> RowId<'_> {
        RowId {
            project_id,
            key,
            target,
        }
    }

    #[test]
    fn a_value_opens_only_for_its_own_row_and_key() {
        let secrets = SecretBox::new(&[7; 32]);
        let here = row(1, "API_KEY", EnvTarget::Production);
        let sealed = secrets.seal(&here, "hunter2-is-long");
        assert!(
            !sealed.windows(6).any(|w| w == b"hunter"),
            "sealed in clear"
        );
        assert_eq!(
            secrets.open(&here, &sealed).expect("opens"),
            "hunter2-is-long"
        );
        // Two seals of one value differ (a fresh nonce each time).
        assert_ne!(sealed, secrets.seal(&here, "hunter2-is-long"));
        for other in [
            row(2, "API_KEY", EnvTarget::Production),
            row(1, "API_KEY2", EnvTarget::Production),
            row(1, "API_KEY", EnvTarget::Preview),
        ] {
            assert!(secrets.open(&other, &sealed).is_err());
        }
        assert!(SecretBox::new(&[8; 32]).open(&here, &sealed).is_err());
        let mut tampered = sealed.clone();
        if let Some(last) = tampered.last_mut() {
            *last ^= 1;
        }
        assert!(secrets.open(&here, &tampered).is_err());
        for short in [&[][..], &[FORMAT][..], &sealed[..10]] {
            assert!(secrets.open(&here, short).is_err());
        }
    }

    #[test]
    fn the_key_is_made_once_and_must_be_hex() {
        let dir = tempfile::tempdir().expect("tempdir");
        let here = row(1, "K", EnvTarget::Preview);
        let sealed = SecretBox::load(dir.path(), None)
            .expect("made")
            .seal(&here, "v");
        let again = SecretBox::load(dir.path(), None).expect("read back");
        assert_eq!(again.open(&here, &sealed).expect("same key"), "v");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        let given = dir.path().join("given");
        assert!(
            SecretBox::load(dir.path(), Some(&given)).is_err(),
            "a given key file must exist"
        );
        std::fs::write(&given, "not hex").expect("write");
        let err = SecretBox::load(dir.path(), Some(&given))
            .err()
            .expect("refused");
        assert!(format!("{err:#}").contains("64 hex digits"), "{err:#}");
    }
}
