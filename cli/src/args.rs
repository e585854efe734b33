//! The command line, as clap sees it. Resolved into [`crate::settings::Settings`] once.

use std::path::PathBuf;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};
use scalemesh_core::access::{EnvTarget, EnvTargets, Role, TokenRole, UserName};

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
    #[arg(long, global = true, env = "SCALEMESH_API_URL", hide_env_values = true)]
    pub api_url: Option<String>,
    /// API token [default: the one `scalemesh login` saved in the config file, else the local
    /// server's admin token]
    #[arg(long, global = true, env = "SCALEMESH_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The local server's data directory, where its admin token is found
    #[arg(
        long,
        global = true,
        env = "SCALEMESH_DATA_DIR",
        hide_env_values = true
    )]
    pub data_dir: Option<PathBuf>,
    /// Config file [default: ~/.config/scalemesh/config.toml]
    #[arg(long, global = true, env = "SCALEMESH_CONFIG", hide_env_values = true)]
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
    /// Your projects: ls (the default), rm
    Projects(ProjectsArgs),
    /// Delete a project (as `projects rm`)
    Rm(RemoveProjectArgs),
    /// List a project's deployments, newest first (`deployments ls <project>`)
    Deployments(DeploymentsArgs),
    /// Make a ready deployment the production one, without rebuilding
    Promote(PromoteArgs),
    /// Put production back on an earlier deployment, without rebuilding
    Rollback(RollbackArgs),
    /// Custom domains: add, ls, rm
    #[command(subcommand)]
    Domains(DomainsCommand),
    /// Push to deploy: connect a project to its repository's webhooks; show, disconnect
    #[command(subcommand)]
    Git(GitCommand),
    /// Deploy hooks, secret URLs that build a branch when POSTed: create, ls, rm
    #[command(subcommand)]
    Hooks(HooksCommand),
    /// Tell a URL of a project's deployments (signed JSON): add, ls, rm, log
    #[command(subcommand)]
    Notify(NotifyCommand),
    /// Start a Scale Mesh server on this machine in the background
    Up(UpArgs),
    /// Stop the server `scalemesh up` started
    Down,
    /// Sign in: check a token with the server, save it and the API URL in the config file
    Login(LoginArgs),
    /// Sign out: remove the token from the config file (--revoke also revokes it)
    Logout(LogoutArgs),
    /// Show who the token belongs to, what it may do and when it expires
    Whoami(WhoamiArgs),
    /// Your API tokens: create, ls, revoke
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Users (admins only): add, ls, rm
    #[command(subcommand)]
    Users(UsersCommand),
    /// Who works on a project, and with what role: add, ls, rm
    #[command(subcommand)]
    Members(MembersCommand),
    /// A project's environment variables, given to its builds: add, ls, rm, pull
    #[command(subcommand)]
    Env(EnvCommand),
    /// Names of deleted projects kept for their owner (admins only): ls, release
    #[command(subcommand)]
    Holds(HoldsCommand),
    /// Show one deployment: status, source, times, URLs
    Inspect(InspectArgs),
    /// Print a project's URL (and open it in a browser, on a terminal)
    Open(OpenArgs),
    /// Print shell completions: bash, zsh, fish, elvish or powershell
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The deployment's id
    pub deployment: String,
    /// Print the deployment as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct OpenArgs {
    /// The project [default: the one this folder deploys to]
    pub project: Option<String>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// A git URL (https://, http://, git://) or a folder [default: .]
    pub source: Option<String>,
    /// Branch or tag to deploy (git sources)
    #[arg(long = "ref", value_name = "REF")]
    pub git_ref: Option<String>,
    /// Build exactly this commit (its full SHA), reached from --ref or the default branch
    #[arg(long, value_name = "SHA")]
    pub commit: Option<String>,
    /// Project name [default: from the repository or folder name]
    #[arg(long)]
    pub project: Option<String>,
    /// Build without making the deployment live; it answers at its own URL only
    #[arg(long, alias = "no-promote")]
    pub preview: bool,
    /// Build without restoring the build cache (dependencies are installed afresh; the new
    /// cache is still saved)
    #[arg(long)]
    pub no_cache: bool,
    /// Deploy the folder as it is, already built: no install, no build; only files the
    /// project does not hold yet are uploaded
    #[arg(long, conflicts_with_all = ["git_ref", "no_cache"])]
    pub prebuilt: bool,
    /// Return as soon as the deployment is queued, printing its URL
    #[arg(long)]
    pub no_wait: bool,
    /// Print the finished deployment as JSON on stdout instead of its URL
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// A deployment id, or a project name for its latest deployment [default: the project
    /// this folder deploys to]
    pub target: Option<String>,
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
pub struct ProjectsArgs {
    #[command(subcommand)]
    pub command: Option<ProjectsCommand>,
    #[command(flatten)]
    pub list: JsonArgs,
}

#[derive(Debug, Subcommand)]
pub enum ProjectsCommand {
    /// List the projects you can see
    Ls(JsonArgs),
    /// Delete a project: its builds stop, its sites and domains stop answering, its files go
    Rm(RemoveProjectArgs),
    /// How long a project keeps its deployments: the newest --keep and those of the last
    /// --days; production and its rollback history always stay
    Retention(RetentionArgs),
}

#[derive(Debug, Args)]
pub struct RetentionArgs {
    /// The project
    pub project: String,
    /// Keep this many of the newest ready deployments
    #[arg(long)]
    pub keep: Option<u32>,
    /// Keep the deployments of this many last days
    #[arg(long)]
    pub days: Option<u32>,
    /// Keep every deployment (no policy)
    #[arg(long, conflicts_with_all = ["keep", "days"])]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct RemoveProjectArgs {
    /// The project to delete
    pub project: String,
    /// Do not ask (needed when there is no terminal to ask on)
    #[arg(long, short)]
    pub yes: bool,
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
    /// Remove a deployment that is not production: its URL stops answering, its files go
    Rm(RemoveDeploymentArgs),
}

#[derive(Debug, Args)]
pub struct RemoveDeploymentArgs {
    /// The deployment to remove
    pub deployment: String,
}

#[derive(Debug, Args)]
pub struct DeploymentsList {
    /// The project [default: the one this folder deploys to]
    pub project: Option<String>,
    /// How many to show
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// Print the list as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The ready deployment to serve as production
    pub deployment: String,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The project [default: the project of --to, else the one this folder deploys to]
    pub project: Option<String>,
    /// The deployment to go back to [default: the one live before the current]
    #[arg(long, value_name = "DEPLOYMENT")]
    pub to: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DomainsCommand {
    /// Serve the project at a host name of your own
    Add {
        /// The project
        project: String,
        /// The host name, e.g. www.example.com (point its DNS at the proxy first)
        host: String,
    },
    /// List the project's domains
    Ls {
        /// The project
        project: String,
        #[command(flatten)]
        json: JsonArgs,
    },
    /// Stop serving the project at a host name
    Rm {
        /// The project
        project: String,
        /// The host name to remove
        host: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum GitCommand {
    /// Connect the project's repository: prints the webhook URL and secret to give the forge
    Connect {
        /// The project (its repository is the project's git URL)
        project: String,
        /// The branch whose pushes go live [default: the project's branch, else main]
        #[arg(long, value_name = "BRANCH")]
        production_branch: Option<String>,
        /// Who sends the webhooks: github, gitlab, gitea (Forgejo too) or generic
        #[arg(long, default_value = "github")]
        provider: String,
        /// Show each deployment's state on its commit: read a forge token allowed to set commit
        /// statuses from stdin (or a prompt that does not echo)
        #[arg(long)]
        status_token: bool,
        /// A private repository: read a token that may read it over https (`<user>:<token>`, or
        /// the token alone) from stdin (or a prompt that does not echo); with --status-token
        /// too, this one is the first line
        #[arg(long)]
        deploy_token: bool,
        /// The forge's REST API, when not its default (https://api.github.com, or
        /// https://<host>/api/v4 for GitLab, /api/v1 for Gitea)
        #[arg(long, value_name = "URL")]
        api_url: Option<String>,
        /// No webhook reaches this server (a laptop, behind NAT): list the repository's branches
        /// this often instead (60s, 5m) and deploy what changed
        #[arg(long, value_name = "EVERY")]
        poll: Option<String>,
        #[command(flatten)]
        json: JsonArgs,
    },
    /// Show the connection: branch, provider, the last deliveries, the branch and pull-request URLs
    Show {
        /// The project
        project: String,
        #[command(flatten)]
        json: JsonArgs,
    },
    /// Stop deploying on pushes (branch and pull-request URLs keep serving)
    Disconnect {
        /// The project
        project: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum HooksCommand {
    /// Make a secret URL that builds the project's branch when POSTed (no token needed)
    Create {
        /// The project
        project: String,
        /// What it is for, as listed [default: hook]
        #[arg(long, default_value = "hook")]
        name: String,
        /// The branch it builds (live when it is the production branch) [default: the project's]
        #[arg(long)]
        branch: Option<String>,
        #[command(flatten)]
        json: JsonArgs,
    },
    /// List the project's deploy hooks (their URLs are shown only when made)
    Ls {
        /// The project
        project: String,
        #[command(flatten)]
        json: JsonArgs,
    },
    /// Remove a deploy hook: its URL stops working
    Rm {
        /// The project
        project: String,
        /// The hook's id (from `hooks ls`)
        id: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Send the project's deployment events to a URL; prints the secret that signs them
    Add {
        /// The project
        project: String,
        /// Where to POST them (http or https)
        url: String,
        /// Which events, comma-separated: created, ready, failed, promoted [default: all]
        #[arg(long, value_delimiter = ',')]
        events: Vec<String>,
        #[command(flatten)]
        json: JsonArgs,
    },
    /// List the project's notification URLs
    Ls {
        /// The project
        project: String,
        #[command(flatten)]
        json: JsonArgs,
    },
    /// Stop sending to a URL
    Rm {
        /// The project
        project: String,
        /// Its id (from `notify ls`)
        id: i64,
    },
    /// What was sent lately, to where, and what came of it
    Log {
        /// The project
        project: String,
        #[command(flatten)]
        json: JsonArgs,
    },
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

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Read the token from the first line of stdin instead of a hidden prompt (the default when
    /// stdin is not a terminal)
    #[arg(long)]
    pub token_stdin: bool,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Also revoke the token on the server, so it stops working everywhere
    #[arg(long)]
    pub revoke: bool,
}

#[derive(Debug, Args)]
pub struct WhoamiArgs {
    /// Print the server's answer as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create a token; its secret is printed on stdout, only this once
    Create(TokenCreateArgs),
    /// List your tokens (never their secrets)
    Ls(JsonArgs),
    /// Revoke a token: it stops working at once
    Revoke {
        /// The token's id, as `scalemesh tokens ls` shows it
        id: i64,
    },
}

#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// A name to tell it apart, e.g. ci or laptop
    pub name: String,
    /// Limit it to this project (repeat for several) [default: all of yours]
    #[arg(long = "project", value_name = "PROJECT")]
    pub projects: Vec<String>,
    /// The most it may do: full, deploy (a developer's rights) or read (a viewer's) [default: full]
    #[arg(long, value_parser = token_role())]
    pub role: Option<TokenRole>,
    /// How long it lives: 30d, 12h, … or never [default: 90d]
    #[arg(long, value_name = "DURATION", value_parser = expires)]
    pub expires: Option<String>,
    /// Print the new token and its secret as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a user; their first token's secret is printed on stdout, only this once
    Add {
        /// Their user name: lowercase letters, digits, '-', '_' or '.'
        #[arg(value_parser = user_name)]
        name: UserName,
        /// Make them an admin, who can do everything everywhere
        #[arg(long)]
        admin: bool,
        /// Print the new user, their token and its secret as JSON
        #[arg(long)]
        json: bool,
    },
    /// List the users
    Ls(JsonArgs),
    /// Remove a user: their tokens stop working at once
    Rm {
        /// The user to remove
        #[arg(value_parser = user_name)]
        name: UserName,
        /// Who gets the projects they created [default: you]
        #[arg(long, value_name = "USER", value_parser = user_name)]
        transfer_to: Option<UserName>,
    },
}

#[derive(Debug, Subcommand)]
pub enum MembersCommand {
    /// Give a user a role on a project (or change it)
    Add {
        /// The project
        project: String,
        /// The user
        #[arg(value_parser = user_name)]
        user: UserName,
        /// viewer (sees it), developer (also deploys), owner (also settings, members, deleting)
        #[arg(long, value_parser = role())]
        role: Role,
    },
    /// List a project's members and their roles
    Ls {
        /// The project
        project: String,
        #[command(flatten)]
        json: JsonArgs,
    },
    /// Take a user's role on a project away
    Rm {
        /// The project
        project: String,
        /// The user
        #[arg(value_parser = user_name)]
        user: UserName,
    },
}

#[derive(Debug, Subcommand)]
pub enum EnvCommand {
    /// Set a variable; its value is read from a hidden prompt, or from stdin when piped
    Add {
        /// The project
        project: String,
        /// The variable's name: letters, digits and '_', not starting with a digit
        key: String,
        /// Which builds get it: production, preview or all
        #[arg(long, value_parser = env_targets(), default_value = "all")]
        target: EnvTargets,
        /// Never show its value again once set (builds still get it)
        #[arg(long)]
        sensitive: bool,
    },
    /// List a project's variables, with the values you may read
    Ls {
        /// The project
        project: String,
        #[command(flatten)]
        json: JsonArgs,
    },
    /// Remove a variable
    Rm {
        /// The project
        project: String,
        /// The variable's name
        key: String,
        /// Remove its value for production, preview or all
        #[arg(long, value_parser = env_targets(), default_value = "all")]
        target: EnvTargets,
    },
    /// Write a target's variables to a .env file (sensitive ones are left out)
    Pull {
        /// The project
        project: String,
        /// The file to write (replaced if it exists)
        #[arg(default_value = ".env")]
        file: PathBuf,
        /// Whose values: production or preview
        #[arg(long, value_parser = env_target(), default_value = "preview")]
        target: EnvTarget,
    },
}

#[derive(Debug, Subcommand)]
pub enum HoldsCommand {
    /// List held project names and domains, with whom they are kept for and until when
    Ls(JsonArgs),
    /// Free a held name or domain for anyone now
    Release {
        /// The project name or domain
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct JsonArgs {
    /// Print the list as JSON
    #[arg(long)]
    pub json: bool,
}

fn token_role() -> impl TypedValueParser<Value = TokenRole> {
    PossibleValuesParser::new(TokenRole::ALL.map(TokenRole::as_str))
        .try_map(|s| s.parse::<TokenRole>())
}

fn role() -> impl TypedValueParser<Value = Role> {
    PossibleValuesParser::new(Role::ALL.map(Role::as_str)).try_map(|s| s.parse::<Role>())
}

fn env_targets() -> impl TypedValueParser<Value = EnvTargets> {
    PossibleValuesParser::new(["production", "preview", "all"]).try_map(|s| s.parse::<EnvTargets>())
}

fn env_target() -> impl TypedValueParser<Value = EnvTarget> {
    PossibleValuesParser::new(EnvTarget::ALL.map(EnvTarget::as_str)).try_map(|s| {
        EnvTarget::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not a target: use production or preview"))
    })
}

fn user_name(raw: &str) -> Result<UserName, String> {
    UserName::parse(raw).map_err(|e| e.to_string())
}

/// `never`, or a duration the server understands (`30d`, `12h`, `1h30m`).
fn expires(raw: &str) -> Result<String, String> {
    if raw == "never" {
        return Ok(raw.to_owned());
    }
    match scalemesh_core::duration::parse(raw) {
        Ok(d) if !d.is_zero() => Ok(raw.to_owned()),
        Ok(_) => Err("a token cannot expire at once: give 30d, 12h, … or never".to_owned()),
        Err(e) => Err(format!("{e}, or never")),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_the_access_commands() {
        let parse = |line: &str| Cli::try_parse_from(line.split_whitespace());
        let cli = parse(
            "scalemesh tokens create ci --project blog --project docs --role deploy --expires 30d",
        )
        .expect("tokens create");
        let Command::Tokens(TokensCommand::Create(args)) = cli.command else {
            panic!("not tokens create");
        };
        assert_eq!(args.projects, ["blog", "docs"]);
        assert_eq!(args.role, Some(TokenRole::Deploy));
        assert_eq!(args.expires.as_deref(), Some("30d"));

        let cli = parse("scalemesh env pull blog").expect("env pull");
        let Command::Env(EnvCommand::Pull { file, target, .. }) = cli.command else {
            panic!("not env pull");
        };
        assert_eq!(file, PathBuf::from(".env"));
        assert_eq!(target, EnvTarget::Preview);

        let cli = parse("scalemesh env add blog KEY").expect("env add");
        assert!(matches!(
            cli.command,
            Command::Env(EnvCommand::Add {
                target: EnvTargets::All,
                sensitive: false,
                ..
            })
        ));

        for bad in [
            "scalemesh tokens create ci --role admin",
            "scalemesh tokens create ci --expires soon",
            "scalemesh tokens create ci --expires 0s",
            "scalemesh members add blog ada",
            "scalemesh members add blog Ada --role owner",
            "scalemesh env pull blog --target all",
            "scalemesh env add blog KEY value",
            "scalemesh users add ada --transfer-to bob",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse("scalemesh tokens create ci --expires never").is_ok());
        assert!(parse("scalemesh members add blog ada --role viewer").is_ok());
    }
}
