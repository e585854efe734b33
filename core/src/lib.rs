//! Shared vocabulary of Scale Mesh: the names and ids every part validates the same way, the wire
//! types of the HTTP API and the log stream, the builder's job contract, the site configuration
//! file, the storage layout and the storage seam.
//!
//! Nothing here knows about axum, SQLite or the AWS SDK, so the CLI can depend on it cheaply.

pub mod access;
pub mod commit;
pub mod content_type;
pub mod duration;
pub mod fingerprint;
pub mod git;
pub mod git_remote;
pub mod going_live;
pub mod hosts;
pub mod id;
pub mod job;
pub mod layout;
pub mod local;
pub mod name;
pub mod netguard;
pub mod retention;
pub mod rules;
pub mod site_config;
pub mod size;
pub mod status;
pub mod storage;
pub mod sync;
#[cfg(feature = "testing")]
pub mod testing;
pub mod upload;
pub mod wire;
pub mod words;

pub use id::DeploymentId;
pub use name::ProjectName;
pub use status::{DeploymentStatus, Phase};
