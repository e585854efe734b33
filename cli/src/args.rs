//! The command line, as clap sees it. Resolved into [`crate::settings::Settings`] once.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "scalemesh",
    version,
    about = "Deploy web apps with one command",
    long_about = "Deploy web apps with one command.\n\nExit codes: 0 success; 1 error (bad input, \
                  server unreachable or refusing); 2 usage error; 3 the deployment failed \
                  (build error, timeout); 4 the deployment was canceled."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// URL of the Scale Mesh API [default: http://127.0.0.1:9000, or api_url in the config file]
    #[arg(long, global = true, env = "SCALEMESH_API_URL")]
    pub api_url: Option<String>,
    /// API token [default: token in the config file, else the local server's admin token]
    #[arg(long, global = true, env = "SCALEMESH_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The local server's data directory, where its admin token is found
    #[arg(long, global = true, env = "SCALEMESH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Config file [default: ~/.config/scalemesh/config.toml]
    #[arg(long, global = true, env = "SCALEMESH_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Deploy a git repository or a local folder, stream its build log, print its URL
    Deploy(DeployArgs),
    /// Print a deployment's build log; --follow tails it until the build ends
    Logs(LogsArgs),
    /// Stop a queued or running deployment
    Cancel(CancelArgs),
    /// List your projects
    Projects,
    /// List a project's deployments, newest first (`deployments ls <project>`)
    Deployments(DeploymentsArgs),
    /// Make a ready deployment the production one, without rebuilding
    Promote(PromoteArgs),
    /// Put production back on an earlier deployment, without rebuilding
    Rollback(RollbackArgs),
    /// Custom domains: add, ls, rm
    #[command(subcommand)]
    Domains(DomainsCommand),
    /// Start a Scale Mesh server on this machine in the background
    Up(UpArgs),
    /// Stop the server `scalemesh up` started
    Down,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// A git URL (https://, http://, git://) or a folder [default: .]
    pub source: Option<String>,
    /// Branch or tag to deploy (git sources)
    #[arg(long = "ref", value_name = "REF")]
    pub git_ref: Option<String>,
    /// Project name [default: from the repository or folder name]
    #[arg(long)]
    pub project: Option<String>,
    /// Build without making the deployment live; it answers at its own URL only
    #[arg(long, alias = "no-promote")]
    pub preview: bool,
    /// Return as soon as the deployment is queued, printing its URL
    #[arg(long)]
    pub no_wait: bool,
    /// Print the finished deployment as JSON on stdout instead of its URL
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// A deployment id, or a project name for its latest deployment
    pub target: String,
    /// Keep printing new lines until the build ends
    #[arg(long, short)]
    pub follow: bool,
    /// Prefix each line with its time
    #[arg(long, short)]
    pub timestamps: bool,
}

#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The deployment to stop
    pub deployment: String,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_required = false)]
pub struct DeploymentsArgs {
    #[command(subcommand)]
    pub command: Option<DeploymentsCommand>,
    #[command(flatten)]
    pub list: DeploymentsList,
}

#[derive(Debug, Subcommand)]
pub enum DeploymentsCommand {
    /// List a project's deployments, newest first; the live one is marked
    Ls(DeploymentsList),
}

#[derive(Debug, Args)]
pub struct DeploymentsList {
    /// The project
    pub project: Option<String>,
    /// How many to show
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The ready deployment to serve as production
    pub deployment: String,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The project [default: the project of --to]
    pub project: Option<String>,
    /// The deployment to go back to [default: the one live before the current]
    #[arg(long, value_name = "DEPLOYMENT")]
    pub to: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DomainsCommand {
    /// Serve the project at a host name of your own
    Add { project: String, host: String },
    /// List the project's domains
    Ls { project: String },
    /// Stop serving the project at a host name
    Rm { project: String, host: String },
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Run the server in this terminal instead of the background
    #[arg(long)]
    pub foreground: bool,
    /// Flags for scalemesh-server (after --)
    #[arg(last = true)]
    pub server_args: Vec<String>,
}
