//! The build cache: folders a build fills that the next build of the same project with the same
//! lockfile can start from (package manager stores, `node_modules`, framework caches). Restored
//! before install, saved after a successful build. A cache is only ever a speed-up: one that
//! cannot be read or written is a line in the log, and the build goes on without it.

mod archive;
mod dirs;
mod entry;
mod key;
mod store;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use scalemesh_core::ProjectName;
use scalemesh_core::job::BuildJob;
use scalemesh_core::storage::Storage;
use scalemesh_core::words::human_bytes;

pub use archive::{ArchiveError, Limits};
pub use dirs::{BadDir, CachedDir, Placed, Roots, Under};
pub use entry::{Entry, install_over_cache};
pub use key::{CacheKey, KeyParts};
pub use store::Store;

use crate::sandbox::Sandbox;

/// Where log lines go: the build's log.
pub type Say<'a> = &'a (dyn Fn(String) + Sync);

pub struct BuildCache<'a> {
    store: Option<Store>,
    restore: bool,
    project: ProjectName,
    /// A folder of the build's for copies and unpacking.
    scratch: PathBuf,
    limits: Limits,
    say: Say<'a>,
}

/// What `restore` found out, for `save`: the key, computed before install could change the
/// lockfile.
#[derive(Debug)]
pub struct Session {
    key: Option<CacheKey>,
    /// What was put in place from the cache kept under that very key.
    restored: Vec<CachedDir>,
}

impl Session {
    /// Whether `path` of the app came from the cache of this key (`node_modules`).
    pub fn restored_in_app(&self, path: &str) -> bool {
        self.restored
            .iter()
            .any(|d| d.under() == Under::App && d.path() == path)
    }
}

impl<'a> BuildCache<'a> {
    /// The cache `job` names (none when it names none), unpacking in `scratch`.
    pub fn open(job: &BuildJob, storage: Arc<dyn Storage>, scratch: &Path, say: Say<'a>) -> Self {
        let (store, restore) = match &job.build_cache {
            Some(setting) => match Store::from_setting(&setting.location, setting.limit, storage) {
                Ok(store) => (Some(store), setting.restore),
                Err(e) => {
                    say(format!("The build cache is not used: {e}"));
                    (None, false)
                }
            },
            None => (None, false),
        };
        Self {
            store,
            restore,
            project: job.project.clone(),
            scratch: scratch.to_path_buf(),
            limits: Limits::default(),
            say,
        }
    }

    /// Puts the cached `dirs` in place, where they are not already, and gives them to the
    /// build's user. Never fails: a cache that cannot be restored is built without.
    pub async fn restore(
        &self,
        parts: &KeyParts,
        dirs: &[CachedDir],
        roots: Roots<'_>,
        sandbox: &Sandbox,
    ) -> Session {
        let Some(store) = &self.store else {
            return Session {
                key: None,
                restored: Vec::new(),
            };
        };
        let key = match CacheKey::of(parts, roots.app) {
            Ok(key) => key,
            Err(e) => {
                (self.say)(format!(
                    "The build cache is not used: reading the lockfile failed: {e}"
                ));
                return Session {
                    key: None,
                    restored: Vec::new(),
                };
            }
        };
        let mut restored = Vec::new();
        if !self.restore {
            (self.say)("Not restoring the build cache, as asked; a fresh one is saved".into());
        } else {
            match self.restore_key(store, &key, dirs, roots, sandbox).await {
                Ok(placed) => restored = placed,
                Err(e) => (self.say)(format!(
                    "The build cache could not be restored ({e:#}); building without it"
                )),
            }
        }
        Session {
            key: Some(key),
            restored,
        }
    }

    async fn restore_key(
        &self,
        store: &Store,
        key: &CacheKey,
        dirs: &[CachedDir],
        roots: Roots<'_>,
        sandbox: &Sandbox,
    ) -> anyhow::Result<Vec<CachedDir>> {
        let started = Instant::now();
        let Some(fetched) = store.fetch(&self.project, key, &self.scratch).await? else {
            (self.say)("No build cache yet for this lockfile".into());
            return Ok(Vec::new());
        };
        let staging = self.scratch.join("cache-staging");
        let (limits, dirs_owned) = (self.limits, dirs.to_vec());
        let (app, home) = (roots.app.to_path_buf(), roots.home.to_path_buf());
        let archive = fetched.path.clone();
        let staging_owned = staging.clone();
        let unpacked = tokio::task::spawn_blocking(move || {
            let _ = std::fs::remove_dir_all(&staging_owned);
            std::fs::create_dir(&staging_owned)?;
            let contents = archive::unpack(&archive, &staging_owned, limits)?;
            let roots = Roots {
                app: &app,
                home: &home,
            };
            let placed = dirs::place(&staging_owned, &dirs_owned, roots);
            anyhow::Ok((contents, placed))
        })
        .await;
        let _ = std::fs::remove_dir_all(&staging);
        if fetched.temporary {
            let _ = std::fs::remove_file(&fetched.path);
        }
        let (contents, placed) = unpacked??;
        let handed = placed.iter().try_for_each(|p| sandbox.hand_over(&p.handed));
        if let Err(e) = handed {
            // Files the build's user cannot write would fail its install: none rather.
            for place in &placed {
                let _ = std::fs::remove_dir_all(&place.handed);
            }
            return Err(e);
        }
        let labels: Vec<_> = placed.iter().map(|p| p.dir.label()).collect();
        (self.say)(format!(
            "Restored the build cache ({}: {}) in {:.1}s",
            human_bytes(contents.bytes),
            if labels.is_empty() {
                "nothing new".to_owned()
            } else {
                labels.join(", ")
            },
            started.elapsed().as_secs_f64()
        ));
        Ok(placed.into_iter().map(|p| p.dir).collect())
    }

    /// Packs `dirs` and keeps them under the session's key. Call it after a successful build
    /// only. Never fails: a cache that cannot be saved is a line in the log.
    pub async fn save(&self, session: &Session, dirs: &[CachedDir], roots: Roots<'_>) {
        let (Some(store), Some(key)) = (&self.store, &session.key) else {
            return;
        };
        if !session.restored.is_empty() {
            // What is kept under this key already made this build: packing it again would
            // cost every warm build the time the cache saves. A `--no-cache` build refreshes it.
            (self.say)("The build cache is kept as it was restored".into());
            return;
        }
        if let Err(e) = self.save_key(store, key, dirs, roots).await {
            (self.say)(format!("The build cache was not saved: {e:#}"));
        }
    }

    async fn save_key(
        &self,
        store: &Store,
        key: &CacheKey,
        dirs: &[CachedDir],
        roots: Roots<'_>,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        let staged = store.staging(&self.project, key, &self.scratch)?;
        let (limits, dirs_owned, staged_owned) = (self.limits, dirs.to_vec(), staged.clone());
        let (app, home) = (roots.app.to_path_buf(), roots.home.to_path_buf());
        let within = self.scratch.clone();
        let packed = tokio::task::spawn_blocking(move || {
            let roots = Roots {
                app: &app,
                home: &home,
            };
            archive::pack(&dirs_owned, roots, &within, &staged_owned, limits)
        })
        .await?;
        let contents = match packed {
            Ok(contents) if !contents.dirs.is_empty() => contents,
            other => {
                let _ = std::fs::remove_file(&staged);
                if other?.dirs.is_empty() {
                    (self.say)("No folders to keep in the build cache".into());
                }
                return Ok(());
            }
        };
        let size = store.commit(&staged, &self.project, key).await?;
        (self.say)(format!(
            "Saved the build cache ({}, {} compressed) in {:.1}s",
            human_bytes(contents.bytes),
            human_bytes(size),
            started.elapsed().as_secs_f64()
        ));
        Ok(())
    }
}

#[cfg(test)]
mod tests;
