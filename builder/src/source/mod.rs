//! Getting the source into a fresh folder: a shallow git clone, or an uploaded tarball.

mod archive;
pub mod git;

pub use archive::{UnpackLimits, unpack};
pub use git::clone;

use std::io::Read;
use std::path::Path;

/// Largest configuration file read from a repository.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Reads `name` in `dir` if it is there. It must be a regular file (not a link a repository
/// could point at `/dev/zero` or a host file) of at most 1 MiB.
pub fn read_config_file(dir: &Path, name: &str) -> anyhow::Result<Option<String>> {
    let path = dir.join(name);
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(anyhow::Error::new(e).context(format!("reading {name}"))),
    };
    if !meta.is_file() {
        anyhow::bail!("{name} must be a regular file, not a link or a folder");
    }
    if meta.len() > MAX_CONFIG_BYTES {
        anyhow::bail!("{name} is larger than 1 MiB");
    }
    let mut text = String::new();
    std::fs::File::open(&path)?
        .take(MAX_CONFIG_BYTES)
        .read_to_string(&mut text)?;
    Ok(Some(text))
}
