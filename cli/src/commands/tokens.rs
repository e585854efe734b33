//! `scalemesh tokens create | ls | revoke`: the caller's API tokens. A new token's secret goes
//! to stdout alone (`T=$(scalemesh tokens create ci)`), and is never shown again.

use reqwest::StatusCode;
use scalemesh_core::wire::{CreateToken, Token};
use time::OffsetDateTime;

use crate::args::{TokenCreateArgs, TokensCommand};
use crate::client::Client;
use crate::commands::list::table;
use crate::commands::{explained, print_json};
use crate::escape::sanitize;
use crate::when;

pub async fn run(client: &Client, command: TokensCommand) -> anyhow::Result<i32> {
    match command {
        TokensCommand::Create(args) => create(client, args).await,
        TokensCommand::Ls(args) => list(client, args.json).await,
        TokensCommand::Revoke { id } => revoke(client, id).await,
    }
}

async fn create(client: &Client, args: TokenCreateArgs) -> anyhow::Result<i32> {
    let body = CreateToken {
        name: args.name,
        projects: (!args.projects.is_empty()).then_some(args.projects),
        role: args.role,
        expires: args.expires,
    };
    let created = client.create_token(&body).await.map_err(|e| {
        explained(
            client,
            e,
            StatusCode::FORBIDDEN,
            "only a token with the full role, not limited to projects, creates tokens",
        )
    })?;
    if args.json {
        print_json(&created)?;
    } else {
        println!("{}", created.secret);
    }
    let token = &created.token;
    eprintln!(
        "Created token {} (id {}; role {}; {}; expires {}).",
        sanitize(&token.name, false),
        token.id,
        token.role,
        sanitize(&scope(token), false),
        expiry(token.expires_at, OffsetDateTime::now_utc()),
    );
    eprintln!("Its secret is shown only this once: store it now. Sign in with it: scalemesh login");
    Ok(0)
}

async fn list(client: &Client, json: bool) -> anyhow::Result<i32> {
    let list = client.tokens().await.map_err(|e| {
        explained(
            client,
            e,
            StatusCode::FORBIDDEN,
            "only a token with the full role, not limited to projects, lists tokens",
        )
    })?;
    if json {
        print_json(&list)?;
        return Ok(0);
    }
    if list.tokens.is_empty() {
        eprintln!("No tokens: create one with `scalemesh tokens create <name>`");
        return Ok(0);
    }
    let now = OffsetDateTime::now_utc();
    let rows: Vec<[String; 8]> = list
        .tokens
        .iter()
        .map(|t| {
            [
                t.id.to_string(),
                t.name.clone(),
                t.prefix.clone(),
                t.role.to_string(),
                scope(t),
                when::ago(t.created_at, now),
                t.last_used_at
                    .map(|at| when::ago(at, now))
                    .unwrap_or_else(|| "never".into()),
                t.expires_at
                    .map(|at| when::until(at, now))
                    .unwrap_or_else(|| "never".into()),
            ]
        })
        .collect();
    table(
        [
            "ID",
            "NAME",
            "PREFIX",
            "ROLE",
            "PROJECTS",
            "CREATED",
            "LAST USED",
            "EXPIRES",
        ],
        &rows,
    );
    Ok(0)
}

async fn revoke(client: &Client, id: i64) -> anyhow::Result<i32> {
    client.revoke_token(id).await.map_err(|e| {
        explained(
            client,
            e,
            StatusCode::NOT_FOUND,
            "`scalemesh tokens ls` lists your tokens and their ids",
        )
    })?;
    eprintln!("Revoked token {id}: it stops working at once");
    Ok(0)
}

/// The projects a token may act on.
pub fn scope(token: &Token) -> String {
    match &token.projects {
        None => "all projects".to_owned(),
        Some(projects) if projects.is_empty() => "no projects".to_owned(),
        Some(projects) => projects.join(", "),
    }
}

/// `never`, or the date and how long until it.
pub fn expiry(expires_at: Option<OffsetDateTime>, now: OffsetDateTime) -> String {
    match expires_at {
        None => "never".to_owned(),
        Some(at) => format!("{} ({})", when::date(at), when::until(at, now)),
    }
}
