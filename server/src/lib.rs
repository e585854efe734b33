//! `scalemesh-server`: the API, the log streams, the build runners, the state, and (embedded) the
//! site proxy. `main` only parses settings and calls [`Server::build`] and [`Server::run_until`];
//! tests do the same on port 0.

pub mod access;
mod aliases;
mod app;
mod auth;
mod blobs;
mod db;
mod deployments;
mod error;
pub mod forge;
mod hooks;
mod listen;
mod logs;
mod manifests;
pub mod notify;
mod outbound;
mod prebuilt;
mod private_file;
mod retention;
mod routes;
pub mod runner;
mod secrets;
pub mod settings;
mod slow_body;
mod supervisor;
mod variables;
mod views;
mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use scalemesh_core::hosts::SiteHosts;
use scalemesh_core::storage::{self, Storage, StorageOptions, StorageUrl};
use scalemesh_net::Limits;
use scalemesh_proxy::{Proxy, ProxyConfig};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use app::App;
use db::SqliteStore;
use logs::LogHub;
use runner::{EcsRunner, EcsSettings, LocalRunner, Runner, RunnerEvent};
use scalemesh_core::job::{BUILD_CACHE_IN_STORAGE, BuildCacheSetting, SandboxMode};
use settings::{RunnerKind, Settings};

/// The sockets the server answers on, bound by the caller (so tests can use port 0).
pub struct Listeners {
    pub api: TcpListener,
    pub proxy: Option<TcpListener>,
}

impl Listeners {
    pub async fn bind(settings: &Settings) -> anyhow::Result<Self> {
        let api = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("binding the API to {}", settings.listen))?;
        let proxy = if settings.no_proxy {
            None
        } else {
            Some(
                TcpListener::bind(settings.proxy_listen)
                    .await
                    .with_context(|| format!("binding the proxy to {}", settings.proxy_listen))?,
            )
        };
        Ok(Self { api, proxy })
    }
}

/// Where builds keep their cache: a folder of the data directory for local builds, the shared
/// storage for ECS tasks (which share no disk).
fn build_cache(settings: &Settings, data_dir: &std::path::Path) -> Option<BuildCacheSetting> {
    if settings.build_cache == 0 {
        return None;
    }
    let (location, limit) = match settings.runner {
        RunnerKind::Local => {
            let folder = data_dir.join("build-cache");
            (
                format!("file://{}", folder.display()),
                Some(settings.build_cache),
            )
        }
        RunnerKind::Ecs => (BUILD_CACHE_IN_STORAGE.to_owned(), None),
    };
    Some(BuildCacheSetting {
        location,
        limit,
        restore: true,
    })
}

pub struct Server {
    app: Arc<App>,
    listeners: Listeners,
    events: mpsc::UnboundedReceiver<RunnerEvent>,
    data_dir: PathBuf,
}

impl Server {
    /// Opens the state, storage and runner and gets ready to serve on `listeners`.
    pub async fn build(settings: &Settings, listeners: Listeners) -> anyhow::Result<Self> {
        match settings.runner {
            RunnerKind::Local => {
                let builder = builder_binary(settings)?;
                check_sandbox(settings.sandbox)?;
                let local = runner::LocalSettings {
                    builder,
                    max_running: usize::from(settings.max_builds),
                    build_timeout: settings.build_timeout,
                    sandbox: settings.sandbox,
                    build_uid_base: settings.build_uid_base,
                    toolchains: settings.data_dir().join("toolchains"),
                };
                Self::build_with_runner(settings, listeners, move |events| {
                    Arc::new(LocalRunner::new(local, events))
                })
                .await
            }
            RunnerKind::Ecs => {
                let ecs = Arc::new(EcsRunner::connect(ecs_settings(settings)?).await);
                Self::build_with_runner(settings, listeners, move |_| ecs).await
            }
        }
    }

    /// [`Server::build`] with the runner made by `make_runner` (given the channel it reports
    /// on) instead of the one the settings name.
    pub async fn build_with_runner(
        settings: &Settings,
        listeners: Listeners,
        make_runner: impl FnOnce(mpsc::UnboundedSender<RunnerEvent>) -> Arc<dyn Runner>,
    ) -> anyhow::Result<Self> {
        let data_dir = settings.data_dir();
        create_private_dir(&data_dir)
            .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
        let store =
            SqliteStore::open(&data_dir.join("scalemesh.db")).context("opening the database")?;
        auth::bootstrap_admin(&store, &data_dir).await?;
        let secrets = open_secrets(&store, &data_dir, settings.secret_key_file.as_deref()).await?;

        let storage = open_storage(settings, &data_dir).await?;
        let api_addr = listeners.api.local_addr()?;
        let hosts = site_hosts(settings, &listeners)?;
        let proxy = listeners
            .proxy
            .as_ref()
            .map(|_| embedded_proxy(settings, &storage));

        let (events_tx, events) = mpsc::unbounded_channel();
        let runner = make_runner(events_tx);
        let builder_api_url = settings
            .builder_api_url
            .clone()
            .unwrap_or_else(|| format!("http://{api_addr}"));

        let app = Arc::new(App {
            store,
            storage,
            hub: LogHub::default(),
            runner,
            hosts,
            proxy,
            builder_api_url,
            s3_endpoint: settings.s3_endpoint.clone(),
            node_mirror: settings.node_mirror.clone(),
            build_timeout: settings.build_timeout,
            reconcile_every: settings.reconcile_interval,
            max_upload_bytes: settings.max_upload_mb.saturating_mul(1024 * 1024),
            log_order: tokio::sync::Mutex::new(()),
            promotion: tokio::sync::Mutex::new(()),
            sweeping: tokio::sync::RwLock::new(()),
            checked_manifests: std::sync::Mutex::default(),
            sweep_every: settings.sweep_interval,
            secrets,
            name_hold: settings.name_hold,
            throttle: std::sync::Mutex::new(auth::throttle::Throttle::new(settings.auth_failures)),
            trusted_proxies: settings.trusted_proxy.clone(),
            allow_private_git_hosts: settings.allow_private_git_hosts.clone(),
            max_queued_per_user: settings.max_queued_per_user,
            stopping: CancellationToken::new(),
            follower_timeout: settings.follower_timeout,
            body_rate: slow_body::MinRate {
                grace: settings.body_timeout,
                ..slow_body::MinRate::DEFAULT
            },
            build_limits: scalemesh_core::job::BuildLimits {
                memory: Some(settings.build_memory),
                processes: Some(settings.build_processes),
                disk: Some(settings.build_disk),
            },
            build_cache: build_cache(settings, &data_dir),
            notify_allow: settings.allow_private_notify.clone(),
            notify_retry: settings.notify_retry,
            notify_wake: tokio::sync::Notify::new(),
        });
        Ok(Self {
            app,
            listeners,
            events,
            data_dir,
        })
    }

    pub fn api_addr(&self) -> SocketAddr {
        self.listeners
            .api
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    pub fn proxy_addr(&self) -> Option<SocketAddr> {
        self.listeners
            .proxy
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    /// Serves until `shutdown` completes, then stops the builds and returns.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            app,
            listeners,
            events,
            ..
        } = self;
        // Before the API takes requests, so nothing is handed to the runner twice.
        supervisor::recover(&app)
            .await
            .context("recovering unfinished deployments")?;
        let stop = CancellationToken::new();
        let supervisor = tokio::spawn(supervisor::run(app.clone(), events, stop.clone()));
        let notifications = tokio::spawn(notify::send::run(app.clone(), stop.clone()));
        let polling = tokio::spawn(hooks::poll::run(app.clone(), stop.clone()));

        let api = listen::serve_router(
            listeners.api,
            routes::router(app.clone()),
            Limits::API,
            stop.clone().cancelled_owned(),
        );
        let proxy = listeners
            .proxy
            .zip(app.proxy.clone())
            .map(|(listener, proxy)| {
                scalemesh_net::serve(
                    listener,
                    proxy.handler(),
                    Limits::SITES,
                    stop.clone().cancelled_owned(),
                )
            });
        let trigger = {
            let stop = stop.clone();
            let stopping = app.stopping.clone();
            tokio::spawn(async move {
                shutdown.await;
                stopping.cancel();
                stop.cancel();
            })
        };
        let served = match proxy {
            Some(proxy) => tokio::try_join!(api, proxy).map(|_| ()),
            None => api.await,
        };
        stop.cancel();
        trigger.abort();
        app.runner.shutdown().await;
        let _ = supervisor.await;
        let _ = notifications.await;
        let _ = polling.await;
        served.context("serving")
    }
}

/// Where sites are stored: the setting, else the data directory's `sites` folder.
async fn open_storage(
    settings: &Settings,
    data_dir: &std::path::Path,
) -> anyhow::Result<Arc<dyn Storage>> {
    let storage_url = match &settings.storage {
        Some(raw) => StorageUrl::parse(raw)?,
        None => StorageUrl::Folder(data_dir.join("sites")),
    };
    let storage_options = StorageOptions {
        s3_endpoint: settings.s3_endpoint.clone(),
    };
    storage::open(&storage_url, &storage_options)
        .await
        .context("opening storage")
}

/// Sites' addresses: on the proxy's own port unless the settings name the one users reach.
fn site_hosts(settings: &Settings, listeners: &Listeners) -> anyhow::Result<SiteHosts> {
    let proxy_port = match &listeners.proxy {
        Some(l) => Some(l.local_addr()?.port()),
        None => None,
    };
    Ok(SiteHosts::new(
        &settings.base_domain,
        &settings.sites_scheme,
        settings.sites_port.or(proxy_port),
    ))
}

/// The site proxy the server runs itself.
fn embedded_proxy(settings: &Settings, storage: &Arc<dyn Storage>) -> Proxy {
    Proxy::new(
        storage.clone(),
        &ProxyConfig {
            base_domain: settings.base_domain.clone(),
            body_cache_bytes: settings.body_cache_bytes(),
            ..ProxyConfig::default()
        },
    )
}

/// The key of project variables, checked against one stored value; variables an older version
/// kept in clear are sealed with it.
async fn open_secrets(
    store: &SqliteStore,
    data_dir: &std::path::Path,
    key_file: Option<&std::path::Path>,
) -> anyhow::Result<secrets::SecretBox> {
    let sealed = store.any_sealed().await?;
    let default_key = data_dir.join(secrets::KEY_FILE);
    if sealed.is_some() && key_file.is_none() && !default_key.exists() {
        // A new key would open none of them: do not make one.
        anyhow::bail!(
            "the secret key {} is missing, but project variables are sealed with it: restore it \
             from a backup of the data folder, or point --secret-key-file at it",
            default_key.display()
        );
    }
    let secrets = secrets::SecretBox::load(data_dir, key_file)?;
    if let Some((project_id, row)) = sealed {
        let id = secrets::RowId {
            project_id,
            key: &row.key,
            target: row.target,
        };
        secrets.open(&id, &row.sealed).map_err(|e| {
            anyhow::anyhow!(
                "{e}; start with the key these variables were sealed with (--secret-key-file)"
            )
        })?;
    }
    let sealed = store.seal_plain_env(secrets.clone()).await?;
    if sealed > 0 {
        tracing::info!(
            projects = sealed,
            "sealed the variables stored in clear by an older version"
        );
    }
    Ok(secrets)
}

/// Creates the data directory, or closes an existing one, to its owner only.
fn create_private_dir(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
}

/// The ECS settings, all there, with storage builders in ECS can reach.
fn ecs_settings(settings: &Settings) -> anyhow::Result<EcsSettings> {
    let missing = |flag: &str| anyhow::anyhow!("--runner ecs needs {flag}");
    if !settings
        .storage
        .as_deref()
        .is_some_and(|s| s.starts_with("s3://"))
    {
        anyhow::bail!(
            "--runner ecs needs --storage s3://bucket/prefix: build tasks cannot reach a local folder"
        );
    }
    if settings.builder_api_url.is_none() {
        anyhow::bail!(
            "--runner ecs needs --builder-api-url: the API's URL as build tasks reach it"
        );
    }
    if settings.ecs_subnets.is_empty() {
        return Err(missing("--ecs-subnets"));
    }
    Ok(EcsSettings {
        cluster: settings
            .ecs_cluster
            .clone()
            .ok_or_else(|| missing("--ecs-cluster"))?,
        task_definition: settings
            .ecs_task_definition
            .clone()
            .ok_or_else(|| missing("--ecs-task-definition"))?,
        container: settings.ecs_container.clone(),
        subnets: settings.ecs_subnets.clone(),
        security_groups: settings.ecs_security_groups.clone(),
        assign_public_ip: settings.ecs_assign_public_ip,
        endpoint: settings
            .ecs_endpoint
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL_ECS").ok()),
    })
}

/// Says, once at start, what the sandbox setting means on this machine.
fn check_sandbox(mode: SandboxMode) -> anyhow::Result<()> {
    let bwrap = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join("bwrap").is_file()));
    match (mode, bwrap) {
        (SandboxMode::Bwrap, false) => anyhow::bail!(
            "--sandbox bwrap needs bubblewrap: install the bubblewrap package (apt-get install bubblewrap)"
        ),
        (SandboxMode::Auto, false) => tracing::warn!(
            "bubblewrap (bwrap) is not installed: builds run without a sandbox and can read this \
             user's files, the database included; install bubblewrap, or use --sandbox bwrap to require it"
        ),
        (SandboxMode::None, _) => tracing::warn!("--sandbox none: builds run without a sandbox"),
        _ => {}
    }
    Ok(())
}

/// The builder binary: the setting, else the one beside this executable, else `PATH`'s.
fn builder_binary(settings: &Settings) -> anyhow::Result<PathBuf> {
    if let Some(path) = &settings.builder_bin {
        return Ok(path.clone());
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("scalemesh-builder")))
        .filter(|p| p.is_file());
    if let Some(path) = beside {
        return Ok(path);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("scalemesh-builder"))
            .find(|p| p.is_file())
    });
    on_path.context(
        "scalemesh-builder was not found beside scalemesh-server nor on PATH; install it \
         (./install.sh) or point --builder-bin at it",
    )
}
