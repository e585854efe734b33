//! [`App`]: what request handlers, the supervisor and log followers share. Its methods live with
//! what they do (`deployments.rs`, `aliases.rs`, `access/`, …); this file imports none of them.

use std::sync::Arc;
use std::time::Duration;

use scalemesh_core::hosts::SiteHosts;
use scalemesh_core::job::{BuildCacheSetting, BuildLimits};
use scalemesh_core::netguard::AllowList;
use scalemesh_core::storage::Storage;
use scalemesh_proxy::Proxy;
use tokio_util::sync::CancellationToken;

use crate::auth::throttle::Throttle;
use crate::db::SqliteStore;
use crate::logs::LogHub;
use crate::runner::Runner;
use crate::secrets::SecretBox;
use crate::slow_body::MinRate;

/// Everything request handlers share.
pub struct App {
    pub(crate) store: SqliteStore,
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) hub: LogHub,
    pub(crate) runner: Arc<dyn Runner>,
    pub(crate) hosts: SiteHosts,
    pub(crate) proxy: Option<Proxy>,
    pub(crate) builder_api_url: String,
    pub(crate) s3_endpoint: Option<String>,
    /// The npm registry (or mirror) builds download Node.js from, when not the public one.
    pub(crate) node_mirror: Option<String>,
    pub(crate) build_timeout: Duration,
    /// How often the runner is asked about jobs it runs elsewhere.
    pub(crate) reconcile_every: Duration,
    pub(crate) max_upload_bytes: u64,
    /// Held while log lines are stored and published, so followers get them in `seq` order.
    pub(crate) log_order: tokio::sync::Mutex<()>,
    /// Held while a production alias moves.
    pub(crate) promotion: tokio::sync::Mutex<()>,
    /// Written while a project's unnamed blobs are swept, read while a handshake claims blobs:
    /// a blob is never answered present and then swept.
    pub(crate) sweeping: tokio::sync::RwLock<()>,
    /// Prebuilt manifests checked as they came, until their deployment is ready: `ready` takes
    /// them from here rather than reading and checking them again.
    pub(crate) checked_manifests:
        std::sync::Mutex<std::collections::HashMap<scalemesh_core::DeploymentId, bytes::Bytes>>,
    /// How often deployments past their project's retention and unnamed blobs are removed.
    pub(crate) sweep_every: Duration,
    /// Seals and opens project variables.
    pub(crate) secrets: SecretBox,
    /// How long a deleted project's names stay held.
    pub(crate) name_hold: Duration,
    /// Failed authentications by client address.
    pub(crate) throttle: std::sync::Mutex<Throttle>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub(crate) trusted_proxies: Vec<ipnet::IpNet>,
    /// Repository hosts builds may fetch from although they are not public.
    pub(crate) allow_private_git_hosts: AllowList,
    /// Builds one user may have waiting in the queue (0: no limit).
    pub(crate) max_queued_per_user: u64,
    /// Cancelled when the server begins to stop: log followers are told so.
    pub(crate) stopping: CancellationToken,
    /// How long a log follower may take to read a frame before it is closed.
    pub(crate) follower_timeout: Duration,
    /// How fast request bodies must come.
    pub(crate) body_rate: MinRate,
    /// What each build may use.
    pub(crate) build_limits: BuildLimits,
    /// Notification URLs that may be called although they are not public.
    pub(crate) notify_allow: AllowList,
    /// How long a failed notification waits before its first retry.
    pub(crate) notify_retry: Duration,
    /// Wakes the notification sender when something is queued.
    pub(crate) notify_wake: tokio::sync::Notify,
    /// Where builds keep their cache; `None` when it is turned off.
    pub(crate) build_cache: Option<BuildCacheSetting>,
}

impl App {
    pub(crate) fn throttle(&self) -> std::sync::MutexGuard<'_, Throttle> {
        scalemesh_core::sync::lock(&self.throttle)
    }
}
