//! `scalemesh logout [--revoke]`: forget the config file's token (the API URL stays); with
//! `--revoke`, first have the server revoke it, so it stops working everywhere.

use reqwest::StatusCode;

use crate::args::LogoutArgs;
use crate::client::Client;
use crate::config_file::{self, Changes, TOKEN};
use crate::error::CliError;
use crate::escape::sanitize;
use crate::settings::{Settings, TokenSource};

pub async fn run(client: &Client, settings: &Settings, args: LogoutArgs) -> anyhow::Result<i32> {
    let Some(config_path) = settings.config_path.as_deref() else {
        return Err(CliError::new("there is no config file (no home folder)")
            .hint("name it with --config or SCALEMESH_CONFIG")
            .into());
    };
    let saved = config_file::read(config_path)?
        .token
        .filter(|t| !t.is_empty());
    let Some(token) = saved else {
        eprintln!("Not signed in: {} holds no token", config_path.display());
        return Ok(0);
    };
    if args.revoke {
        revoke(&client.with_token(&token)).await?;
    }
    let changes = Changes {
        set: vec![],
        remove: vec![TOKEN],
    };
    config_file::update(config_path, &changes)?;
    eprintln!(
        "Signed out of {}: the token is gone from {}",
        client.display_url(),
        config_path.display()
    );
    if settings.token_source == TokenSource::Flag {
        eprintln!("note: --token or SCALEMESH_TOKEN is still set, and still used");
    }
    Ok(0)
}

/// Revokes the token the client sends: the server says which one it is.
async fn revoke(client: &Client) -> anyhow::Result<()> {
    let me = match client.me().await {
        Ok(me) => me,
        Err(e) if e.status() == Some(StatusCode::UNAUTHORIZED) => {
            eprintln!(
                "The token no longer works ({}): nothing to revoke",
                sanitize(&e.to_string(), false)
            );
            return Ok(());
        }
        Err(e) => return Err(not_revoked(client.explain(e)).into()),
    };
    client
        .revoke_token(me.token.id)
        .await
        .map_err(|e| not_revoked(client.explain(e)))?;
    eprintln!(
        "Revoked token {} ({})",
        sanitize(&me.token.name, false),
        sanitize(&me.token.prefix, false)
    );
    Ok(())
}

/// The token is kept when it could not be revoked; the user may still forget it here.
fn not_revoked(err: CliError) -> CliError {
    let alone = "to forget the token here without revoking it, run `scalemesh logout` alone";
    let hint = match &err.hint {
        Some(hint) => format!("{hint}; {alone}"),
        None => alone.to_owned(),
    };
    err.hint(hint)
}
