//! Integration tests of the API server: the real server on 127.0.0.1:0 with a temporary data
//! directory, real SQLite and a real storage folder. The runner is a recording fake, so each
//! test plays the builder itself over the HTTP API, with the job token the server issued.

mod access;
mod api;
mod blobs;
mod deploy_hooks;
mod helpers;
mod hooks;
mod invariants;
mod lifecycle;
mod logs;
mod notify;
mod statuses;
mod team;
