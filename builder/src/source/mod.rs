//! Getting the source into a fresh folder: a shallow git clone, or an uploaded tarball.

mod archive;
mod git;

pub use archive::{UnpackLimits, unpack};
pub use git::clone;
