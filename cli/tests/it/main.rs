//! End-to-end tests with the real binaries, the way a user runs them: `scalemesh` talks to a
//! running `scalemesh-server`, which runs `scalemesh-builder` for each build; sites are fetched
//! through the server's proxy. Git repositories are created by the tests and served on loopback
//! with `git daemon`; builds run with the machine's Node.js.

mod aws;
mod blobs;
mod cdn;
mod deploy;
mod disk;
mod first_hour;
mod lifecycle;
mod limits;
mod logs;
mod moto;
mod presets;
mod push;
mod security;
mod support;
mod team;
mod web;
