//! The parts of one build job: fetching the source, detecting the build, running its commands
//! in the sandbox, uploading the output, reporting to the API. `main.rs` puts them together;
//! `examples/upload.rs` (the upload benchmark) uses the uploader alone.

pub mod cache;
pub mod detect;
pub mod exec;
pub mod job;
pub mod limits;
pub mod report;
pub mod sandbox;
pub mod source;
pub mod toolchain;
pub mod upload;
