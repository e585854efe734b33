//! `scalemesh holds ls | release` (admins): names and domains of deleted projects, kept for
//! their owner for a while so nobody else takes them over; release frees one now.

use reqwest::StatusCode;
use time::OffsetDateTime;

use crate::args::HoldsCommand;
use crate::client::Client;
use crate::commands::list::table;
use crate::commands::{explained, print_json};
use crate::escape::sanitize;
use crate::when;

pub async fn run(client: &Client, command: HoldsCommand) -> anyhow::Result<i32> {
    match command {
        HoldsCommand::Ls(args) => list(client, args.json).await,
        HoldsCommand::Release { name } => release(client, &name).await,
    }
}

async fn list(client: &Client, json: bool) -> anyhow::Result<i32> {
    let list = client.holds().await.map_err(|e| client.explain(e))?;
    if json {
        print_json(&list)?;
        return Ok(0);
    }
    if list.holds.is_empty() {
        eprintln!("No names are held");
        return Ok(0);
    }
    let now = OffsetDateTime::now_utc();
    let rows: Vec<[String; 4]> = list
        .holds
        .iter()
        .map(|h| {
            [
                h.name.clone(),
                h.kind.clone(),
                h.held_for.clone().unwrap_or_else(|| "-".into()),
                format!("{} ({})", when::date(h.until), when::until(h.until, now)),
            ]
        })
        .collect();
    table(["NAME", "KIND", "HELD FOR", "UNTIL"], &rows);
    Ok(0)
}

async fn release(client: &Client, name: &str) -> anyhow::Result<i32> {
    client.release_hold(name).await.map_err(|e| {
        explained(
            client,
            e,
            StatusCode::NOT_FOUND,
            "`scalemesh holds ls` lists the held names",
        )
    })?;
    eprintln!("{} is free: anyone may take it now", sanitize(name, false));
    Ok(0)
}
