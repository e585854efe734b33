//! Getting the source into a fresh folder: a shallow git clone, or an uploaded tarball.

mod archive;
pub mod git;

pub use archive::{UnpackLimits, unpack};
pub use git::clone;

pub use scalemesh_core::site_config::read_config_file;
