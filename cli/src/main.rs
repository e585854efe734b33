//! `scalemesh`: deploy web apps with one command.

mod args;
mod client;
mod commands;
mod config_file;
mod display;
mod error;
mod escape;
mod follow;
mod linked;
mod pack;
mod private_file;
mod secret_input;
mod settings;
mod token_format;
mod when;

use clap::Parser;

use crate::args::{Cli, Command};
use crate::client::Client;
use crate::error::{CliError, EXIT_ERROR};
use crate::settings::Settings;

fn main() {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let code = match &runtime {
        Ok(rt) => match rt.block_on(run(cli)) {
            Ok(code) => code,
            Err(err) => report(&err),
        },
        Err(e) => report(&anyhow::anyhow!("starting the async runtime: {e}")),
    };
    // Every task was awaited: the runtime is not shut down (joining its idle threads) before
    // the exit.
    std::process::exit(code);
}

async fn run(cli: Cli) -> anyhow::Result<i32> {
    let settings = Settings::resolve(&cli.global)?;
    let client = Client::new(&settings)?;
    match cli.command {
        Command::Deploy(args) => commands::deploy::run(&client, args).await,
        Command::Logs(args) => commands::logs::run(&client, args).await,
        Command::Cancel(args) => commands::cancel::run(&client, args).await,
        Command::Projects(args) => commands::projects::run(&client, args).await,
        Command::Rm(args) => commands::projects::remove(&client, args).await,
        Command::Deployments(args) => commands::list::deployments(&client, args).await,
        Command::Promote(args) => commands::alias::promote(&client, args).await,
        Command::Rollback(args) => commands::alias::rollback(&client, args).await,
        Command::Domains(command) => commands::alias::domains(&client, command).await,
        Command::Git(command) => commands::git::run(&client, command).await,
        Command::Hooks(command) => commands::git::hooks(&client, command).await,
        Command::Notify(command) => commands::notify::run(&client, command).await,
        Command::Up(args) => commands::up::up(&settings, args).await,
        Command::Down => commands::up::down(&settings).await,
        Command::Login(args) => commands::login::run(&client, &settings, args).await,
        Command::Logout(args) => commands::logout::run(&client, &settings, args).await,
        Command::Whoami(args) => commands::whoami::run(&client, args).await,
        Command::Tokens(command) => commands::tokens::run(&client, command).await,
        Command::Users(command) => commands::users::run(&client, command).await,
        Command::Members(command) => commands::members::run(&client, command).await,
        Command::Env(command) => commands::env::run(&client, command).await,
        Command::Holds(command) => commands::holds::run(&client, command).await,
        Command::Inspect(args) => commands::inspect::inspect(&client, args).await,
        Command::Open(args) => commands::inspect::open(&client, args).await,
        Command::Completions(args) => {
            // Made in memory first: a closed pipe (`| head`) is then not a panic.
            let mut command = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(args.shell, &mut command, "scalemesh", &mut script);
            use std::io::Write;
            let _ = std::io::stdout().write_all(&script);
            Ok(0)
        }
    }
}

/// Whether the command line asked for JSON (`--json` before any `--`).
fn json_wanted() -> bool {
    // Arguments need not be UTF-8 (a path): compared as they are, never converted.
    std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json")
}

/// Prints an error (and its hint) on stderr, or as one JSON document on stdout under `--json`;
/// returns the exit code. Messages may quote what a build or a server said, so they are made
/// safe for the terminal first.
fn report(err: &anyhow::Error) -> i32 {
    let (message, hint, code) = match err.downcast_ref::<CliError>() {
        Some(e) => (e.message.clone(), e.hint.clone(), e.code),
        None => (format!("{err:#}"), None, EXIT_ERROR),
    };
    if json_wanted() {
        // One JSON document on stdout, as the command's answer would have been.
        let body = serde_json::json!({
            "error": { "message": message, "hint": hint, "exit_code": code }
        });
        println!("{body}");
        return code;
    }
    for (i, line) in message.lines().enumerate() {
        let line = escape::sanitize(line, false);
        if i == 0 {
            eprintln!("error: {line}")
        } else {
            eprintln!("  {line}")
        }
    }
    if let Some(hint) = hint {
        eprintln!("hint: {}", escape::sanitize(&hint, false));
    }
    code
}
