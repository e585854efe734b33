//! The tools a build runs on, chosen per app: for now Node.js, in the version the app asks
//! for. `version` reads ranges, `wanted` finds what the app asks, `registry` and `unpack` fetch
//! a release, `node` puts it together. `job.rs` calls [`node::prepare`].

pub mod node;
pub mod registry;
pub mod unpack;
pub mod version;
pub mod wanted;
