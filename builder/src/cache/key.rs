//! The build cache's key: a digest of everything that decides what the cached folders hold (the
//! preset, the package manager, the lockfile's bytes, the Node.js version), so a build never
//! starts from dependencies another lockfile installed.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// What decides the cache's contents, as the job knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyParts {
    /// The preset the build runs with (`next`, `vite`, `static`).
    pub preset: String,
    /// `npm`, `yarn`, `pnpm`, `bun`, `pip`, or empty for none.
    pub package_manager: String,
    /// The lockfile, when the app has one.
    pub lockfile: Option<PathBuf>,
    /// The Node.js version the build runs with, or empty for the builder's own.
    pub node: String,
}

/// A cache key: 64 hex characters, safe as a file name and a storage key segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey(String);

impl CacheKey {
    /// The key for `parts`, reading the lockfile and the dependency lists of `package.json` in
    /// `app` (only those lists count, so a change of scripts keeps the cache).
    pub fn of(parts: &KeyParts, app: &Path) -> std::io::Result<Self> {
        let lock = match &parts.lockfile {
            // The dependency lists count too: a `node_modules` kept for this key is then what a
            // frozen install of exactly these files made.
            Some(path) => format!(
                "{}:{}",
                hex::encode(Sha256::digest(std::fs::read(path)?)),
                declared_dependencies(app)
            ),
            None => format!("nolock:{}", declared_dependencies(app)),
        };
        Ok(Self::from_parts(
            &parts.preset,
            &parts.package_manager,
            &lock,
            &parts.node,
        ))
    }

    /// The key for parts already reduced to text. Each part is length-prefixed, so no two
    /// different lists of parts give the same digest input.
    pub fn from_parts(preset: &str, package_manager: &str, lock: &str, node: &str) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"scalemesh-build-cache-v1");
        for part in [preset, package_manager, lock, node] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        Self(hex::encode(hasher.finalize()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A digest of `package.json`'s dependency lists, in a canonical form (keys sorted); of nothing
/// when there is no readable `package.json`.
fn declared_dependencies(app: &Path) -> String {
    let lists = std::fs::read(app.join("package.json"))
        .ok()
        .and_then(|raw| serde_json::from_slice::<serde_json::Value>(&raw).ok())
        .map(|json| {
            let pick = |name: &str| json.get(name).cloned().unwrap_or_default();
            serde_json::json!([
                pick("dependencies"),
                pick("devDependencies"),
                pick("optionalDependencies"),
                pick("peerDependencies"),
            ])
        })
        .unwrap_or_default();
    hex::encode(Sha256::digest(lists.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(preset: &str, pm: &str, lock: &str, node: &str) -> String {
        CacheKey::from_parts(preset, pm, lock, node).0
    }

    #[test]
    fn every_part_changes_the_key() {
        let base = key("next", "npm", "aa", "20");
        assert_eq!(base.len(), 64);
        assert!(base.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(base, key("next", "npm", "aa", "20"), "a pure function");
        for (preset, pm, lock, node) in [
            ("vite", "npm", "aa", "20"),
            ("next", "pnpm", "aa", "20"),
            ("next", "npm", "ab", "20"),
            ("next", "npm", "aa", "22"),
            // Parts cannot run into each other.
            ("nextn", "pm", "aa", "20"),
            ("next", "npma", "a", "20"),
        ] {
            assert_ne!(
                base,
                key(preset, pm, lock, node),
                "{preset} {pm} {lock} {node}"
            );
        }
    }

    #[test]
    fn the_lockfile_bytes_decide_and_without_one_the_dependencies_do() {
        let app = tempfile::tempdir().expect("tempdir");
        let lock = app.path().join("package-lock.json");
        let parts = |lockfile: Option<PathBuf>| KeyParts {
            preset: "vite".into(),
            package_manager: "npm".into(),
            lockfile,
            node: "20".into(),
        };
        let of = |p: &KeyParts| CacheKey::of(p, app.path()).expect("key");
        std::fs::write(&lock, "{\"v\":1}").expect("write");
        let first = of(&parts(Some(lock.clone())));
        std::fs::write(&lock, "{\"v\":2}").expect("write");
        let second = of(&parts(Some(lock.clone())));
        assert_ne!(first, second);
        std::fs::write(
            app.path().join("package.json"),
            r#"{"dependencies":{"c":"1"}}"#,
        )
        .expect("write");
        assert_ne!(
            second,
            of(&parts(Some(lock.clone()))),
            "a dependency beside the lock"
        );

        let manifest = app.path().join("package.json");
        std::fs::write(
            &manifest,
            r#"{"scripts":{"a":"x"},"dependencies":{"b":"1","a":"2"}}"#,
        )
        .expect("write");
        let nolock = of(&parts(None));
        std::fs::write(
            &manifest,
            r#"{"dependencies":{"a":"2","b":"1"},"scripts":{"a":"y"}}"#,
        )
        .expect("write");
        assert_eq!(nolock, of(&parts(None)), "scripts and order do not count");
        std::fs::write(&manifest, r#"{"dependencies":{"a":"3","b":"1"}}"#).expect("write");
        assert_ne!(nolock, of(&parts(None)));
        assert!(CacheKey::of(&parts(Some(app.path().join("gone"))), app.path()).is_err());
    }
}
