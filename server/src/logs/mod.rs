//! The log pipeline inside the server: lines are stored first, then fanned out to followers,
//! who can always catch up from storage. A slow follower never slows a build.

pub mod follow;
mod hub;

pub use hub::LogHub;
