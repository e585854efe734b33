//! The builder's contract: everything one build job needs, carried in environment variables so
//! the same binary runs as a child process (local runner) and as a container (ECS overrides).
//! Never a secret of the project's: its variables are fetched with the job token
//! (`GET /api/v1/deployments/{id}/env`), since task overrides are readable by anyone who may
//! describe the task and are kept in audit logs.

use crate::git::{GitRef, GitUrl};
use crate::site_config::BuildSettings;
use crate::{DeploymentId, ProjectName};

/// The names of the variables, shared by the runners that set them and the builder's flags.
pub mod env {
    pub const DEPLOYMENT_ID: &str = "SCALEMESH_DEPLOYMENT_ID";
    pub const PROJECT: &str = "SCALEMESH_PROJECT";
    pub const GIT_URL: &str = "SCALEMESH_GIT_URL";
    pub const GIT_REF: &str = "SCALEMESH_GIT_REF";
    pub const GIT_COMMIT: &str = "SCALEMESH_GIT_COMMIT";
    pub const SOURCE_ARCHIVE: &str = "SCALEMESH_SOURCE_ARCHIVE";
    pub const INSTALL_COMMAND: &str = "SCALEMESH_INSTALL_COMMAND";
    pub const BUILD_COMMAND: &str = "SCALEMESH_BUILD_COMMAND";
    pub const OUTPUT_DIRECTORY: &str = "SCALEMESH_OUTPUT_DIRECTORY";
    pub const ROOT_DIRECTORY: &str = "SCALEMESH_ROOT_DIRECTORY";
    pub const FRAMEWORK: &str = "SCALEMESH_FRAMEWORK";
    pub const NODE_VERSION: &str = "SCALEMESH_NODE_VERSION";
    pub const API_URL: &str = "SCALEMESH_API_URL";
    pub const JOB_TOKEN: &str = "SCALEMESH_JOB_TOKEN";
    pub const STORAGE: &str = "SCALEMESH_STORAGE";
    pub const BUILD_TIMEOUT: &str = "SCALEMESH_BUILD_TIMEOUT";
    pub const SANDBOX: &str = "SCALEMESH_SANDBOX";
    pub const S3_ENDPOINT: &str = "SCALEMESH_S3_ENDPOINT";
    pub const ALLOW_PRIVATE_GIT_HOSTS: &str = "SCALEMESH_ALLOW_PRIVATE_GIT_HOSTS";
    pub const BUILD_MEMORY: &str = "SCALEMESH_BUILD_MEMORY";
    pub const BUILD_PROCESSES: &str = "SCALEMESH_BUILD_PROCESSES";
    pub const BUILD_DISK: &str = "SCALEMESH_BUILD_DISK";
    pub const BUILD_UID: &str = "SCALEMESH_BUILD_UID";
    pub const NODE_MIRROR: &str = "SCALEMESH_NODE_MIRROR";
    pub const TOOLCHAINS: &str = "SCALEMESH_TOOLCHAINS";
    pub const BUILD_CACHE: &str = "SCALEMESH_BUILD_CACHE";
    pub const BUILD_CACHE_LIMIT: &str = "SCALEMESH_BUILD_CACHE_LIMIT";
    pub const BUILD_CACHE_RESTORE: &str = "SCALEMESH_BUILD_CACHE_RESTORE";
}

/// Where install and build commands run (`SCALEMESH_SANDBOX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxMode {
    /// Bubblewrap when it is installed and works, else no sandbox (with a warning).
    Auto,
    /// Bubblewrap, or the build fails.
    Bwrap,
    /// No sandbox: build scripts can read whatever the builder's user can.
    None,
}

impl SandboxMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Bwrap => "bwrap",
            Self::None => "none",
        }
    }
}

impl std::str::FromStr for SandboxMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "bwrap" => Ok(Self::Bwrap),
            "none" => Ok(Self::None),
            other => Err(format!(
                "{other:?} is not a sandbox: use auto, bwrap or none"
            )),
        }
    }
}

/// Where a build's source comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobSource {
    Git {
        url: GitUrl,
        git_ref: Option<GitRef>,
        /// Exactly this commit (its full name), which the ref must lead to: a push's commit,
        /// not whatever the branch holds when the build starts.
        commit: Option<String>,
    },
    /// A `.tar.gz` in storage at this key (`__sources/<deployment>.tar.gz`).
    Archive { key: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildJob {
    pub deployment: DeploymentId,
    pub project: ProjectName,
    pub source: JobSource,
    pub settings: BuildSettings,
    pub api_url: String,
    pub job_token: String,
    pub storage: String,
    /// An S3-compatible endpoint for `storage`, when it is not AWS.
    pub s3_endpoint: Option<String>,
    pub timeout_secs: u64,
    /// Repository hosts that may be fetched from although they are not public.
    pub allow_private_git_hosts: crate::netguard::AllowList,
    /// Whose turn the job takes in a shared queue: the user who started it. Not part of the
    /// builder's environment.
    pub owner: String,
    /// What the build may use.
    pub limits: BuildLimits,
    /// The user id the build's commands run as, when the builder runs as root: one per build
    /// running at once, so builds cannot touch each other's files or processes.
    pub build_uid: Option<u32>,
    /// The npm registry (or a mirror of it) Node.js versions are downloaded from, instead of
    /// registry.npmjs.org.
    pub node_mirror: Option<String>,
    /// A folder where downloaded Node.js versions are kept for later builds; without one, a
    /// download serves one build only.
    pub toolchains: Option<String>,
    /// Where the build keeps what a next build can reuse; `None`: nowhere.
    pub build_cache: Option<BuildCacheSetting>,
}

/// Where a project's build cache lives, and whether this build starts from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildCacheSetting {
    /// `file:///abs/folder` (one machine's cache) or `storage` (the job's storage, shared by
    /// every task).
    pub location: String,
    /// Most bytes a local cache folder keeps, across projects.
    pub limit: Option<u64>,
    /// `false` when the user asked for a build without the cache: it is not restored, but the
    /// build still saves a fresh one.
    pub restore: bool,
}

/// `SCALEMESH_BUILD_CACHE=storage`: the cache is kept in the job's own storage.
pub const BUILD_CACHE_IN_STORAGE: &str = "storage";

/// The control groups of a build named `name` (its deployment id) under the hierarchy at
/// `root`: the one folder of cgroup v2, or one per v1 controller. The builder makes them; the
/// runner removes any that a builder stopped hard left behind.
pub fn cgroup_dirs(root: &std::path::Path, name: &str) -> Vec<std::path::PathBuf> {
    if root.join("cgroup.controllers").is_file() {
        vec![root.join("scalemesh").join(name)]
    } else {
        ["memory", "pids", "cpu"]
            .iter()
            .map(|controller| root.join(controller).join("scalemesh").join(name))
            .collect()
    }
}

/// What one build may use, in bytes and processes; `None` for no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BuildLimits {
    pub memory: Option<u64>,
    pub processes: Option<u64>,
    /// The work folder (sources, dependencies, output) and `/tmp` together.
    pub disk: Option<u64>,
}

impl BuildJob {
    /// The environment that hands this job to `scalemesh-builder`.
    pub fn to_env(&self) -> Vec<(&'static str, String)> {
        let mut vars = vec![
            (env::DEPLOYMENT_ID, self.deployment.to_string()),
            (env::PROJECT, self.project.to_string()),
            (env::API_URL, self.api_url.clone()),
            (env::JOB_TOKEN, self.job_token.clone()),
            (env::STORAGE, self.storage.clone()),
            (env::BUILD_TIMEOUT, self.timeout_secs.to_string()),
        ];
        let options = [
            (env::S3_ENDPOINT, &self.s3_endpoint),
            (env::NODE_MIRROR, &self.node_mirror),
            (env::TOOLCHAINS, &self.toolchains),
        ];
        for (name, value) in options {
            if let Some(v) = value {
                vars.push((name, v.clone()));
            }
        }
        let limits = [
            (env::BUILD_MEMORY, self.limits.memory),
            (env::BUILD_PROCESSES, self.limits.processes),
            (env::BUILD_DISK, self.limits.disk),
            (env::BUILD_UID, self.build_uid.map(u64::from)),
        ];
        for (name, value) in limits {
            if let Some(v) = value {
                vars.push((name, v.to_string()));
            }
        }
        if let Some(cache) = &self.build_cache {
            vars.push((env::BUILD_CACHE, cache.location.clone()));
            if let Some(limit) = cache.limit {
                vars.push((env::BUILD_CACHE_LIMIT, limit.to_string()));
            }
            if !cache.restore {
                vars.push((env::BUILD_CACHE_RESTORE, "false".to_owned()));
            }
        }
        if !self.allow_private_git_hosts.is_empty() {
            vars.push((
                env::ALLOW_PRIVATE_GIT_HOSTS,
                self.allow_private_git_hosts.to_setting(),
            ));
        }
        match &self.source {
            JobSource::Git {
                url,
                git_ref,
                commit,
            } => {
                vars.push((env::GIT_URL, url.as_str().to_owned()));
                if let Some(r) = git_ref {
                    vars.push((env::GIT_REF, r.to_string()));
                }
                if let Some(sha) = commit {
                    vars.push((env::GIT_COMMIT, sha.clone()));
                }
            }
            JobSource::Archive { key } => vars.push((env::SOURCE_ARCHIVE, key.clone())),
        }
        let settings = [
            (env::INSTALL_COMMAND, &self.settings.install_command),
            (env::BUILD_COMMAND, &self.settings.build_command),
            (env::OUTPUT_DIRECTORY, &self.settings.output_directory),
            (env::ROOT_DIRECTORY, &self.settings.root_directory),
            (env::FRAMEWORK, &self.settings.framework),
            (env::NODE_VERSION, &self.settings.node_version),
        ];
        for (name, value) in settings {
            if let Some(v) = value {
                vars.push((name, v.clone()));
            }
        }
        vars
    }
}

/// Whether `name` may be a project environment variable: a POSIX name that does not claim
/// a variable the platform sets itself.
pub fn is_allowed_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    let starts_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    starts_ok
        && name.len() <= 256
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("SCALEMESH_")
        // What the dynamic loader and the C library read (LD_AUDIT, LD_PRELOAD, …, tunables,
        // conversion modules): code to load, never a setting of the site.
        && !name.starts_with("LD_")
        && !matches!(
            name,
            "PATH" | "HOME" | "GLIBC_TUNABLES" | "GCONV_PATH" | "LOCPATH" | "NLSPATH" | "HOSTALIASES"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_carries_the_job() {
        let job = BuildJob {
            deployment: DeploymentId::parse("abcdefghijkl").expect("valid"),
            project: ProjectName::parse("site").expect("valid"),
            source: JobSource::Git {
                url: GitUrl::parse("https://example.com/a.git").expect("valid"),
                git_ref: Some(GitRef::parse("main").expect("valid")),
                commit: Some("6113728f27ae82c7b1a177c8d03f9e96e0adf246".into()),
            },
            settings: BuildSettings {
                build_command: Some("node build.js".into()),
                ..Default::default()
            },
            api_url: "http://127.0.0.1:9000".into(),
            job_token: "t".into(),
            storage: "file:///tmp/s".into(),
            s3_endpoint: None,
            timeout_secs: 900,
            allow_private_git_hosts: crate::netguard::AllowList::default(),
            owner: "ada".into(),
            limits: BuildLimits {
                memory: Some(1 << 30),
                processes: None,
                disk: None,
            },
            build_uid: Some(200_001),
            node_mirror: Some("http://127.0.0.1:4873".into()),
            toolchains: None,
            build_cache: Some(BuildCacheSetting {
                location: BUILD_CACHE_IN_STORAGE.into(),
                limit: None,
                restore: false,
            }),
        };
        let vars: std::collections::BTreeMap<_, _> = job.to_env().into_iter().collect();
        assert_eq!(vars[env::GIT_REF], "main");
        assert_eq!(
            vars[env::GIT_COMMIT],
            "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
        );
        assert_eq!(vars[env::BUILD_COMMAND], "node build.js");
        assert!(!vars.contains_key(env::SOURCE_ARCHIVE));
        assert!(!vars.contains_key(env::INSTALL_COMMAND));
        assert_eq!(vars[env::BUILD_MEMORY], "1073741824");
        assert_eq!(vars[env::BUILD_UID], "200001");
        assert!(!vars.contains_key(env::BUILD_PROCESSES));
        assert_eq!(vars[env::NODE_MIRROR], "http://127.0.0.1:4873");
        assert!(!vars.contains_key(env::TOOLCHAINS));
        assert_eq!(vars[env::BUILD_CACHE], "storage");
        assert_eq!(vars[env::BUILD_CACHE_RESTORE], "false");
        assert!(!vars.contains_key(env::BUILD_CACHE_LIMIT));
    }

    #[test]
    fn env_names_are_checked() {
        for ok in ["API_KEY", "_x", "NODE_ENV"] {
            assert!(is_allowed_env_name(ok), "{ok}");
        }
        for bad in [
            "",
            "1A",
            "A-B",
            "PATH",
            "SCALEMESH_JOB_TOKEN",
            "LD_PRELOAD",
            "LD_AUDIT",
            "GLIBC_TUNABLES",
            "GCONV_PATH",
            "A B",
        ] {
            assert!(!is_allowed_env_name(bad), "{bad:?}");
        }
    }
}
