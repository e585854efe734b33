//! Where a server on this machine keeps its data, so a CLI on the same machine finds its admin
//! token with no login step.

use std::path::PathBuf;

/// The file in the data directory holding the local admin token.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// `$XDG_DATA_HOME/scalemesh`, else `~/.local/share/scalemesh`.
pub fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from(".local/share"))
        .join("scalemesh")
}
