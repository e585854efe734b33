//! `scalemesh users add | ls | rm` (admins): people who may sign in. A new user's first token
//! goes to stdout alone, to be handed to them; it is never shown again.

use reqwest::StatusCode;
use scalemesh_core::access::UserName;
use scalemesh_core::wire::CreateUser;
use time::OffsetDateTime;

use crate::args::UsersCommand;
use crate::client::Client;
use crate::commands::list::table;
use crate::commands::{explained, explained_code, print_json};
use crate::when;

pub async fn run(client: &Client, command: UsersCommand) -> anyhow::Result<i32> {
    match command {
        UsersCommand::Add { name, admin, json } => add(client, name, admin, json).await,
        UsersCommand::Ls(args) => list(client, args.json).await,
        UsersCommand::Rm { name, transfer_to } => remove(client, name, transfer_to).await,
    }
}

async fn add(client: &Client, name: UserName, admin: bool, json: bool) -> anyhow::Result<i32> {
    let body = CreateUser {
        name: name.to_string(),
        admin,
    };
    let created = client.create_user(&body).await.map_err(|e| {
        explained(
            client,
            e,
            StatusCode::CONFLICT,
            "that name is taken: `scalemesh users ls` lists the users",
        )
    })?;
    if json {
        print_json(&created)?;
    } else {
        println!("{}", created.secret);
    }
    let role = if created.user.admin { " (admin)" } else { "" };
    eprintln!(
        "Added {}{role}. Their first token is shown only this once: hand it to them privately.",
        created.user.name
    );
    eprintln!(
        "They sign in with: scalemesh login --api-url {}",
        client.display_url()
    );
    Ok(0)
}

async fn list(client: &Client, json: bool) -> anyhow::Result<i32> {
    let list = client.users().await.map_err(|e| client.explain(e))?;
    if json {
        print_json(&list)?;
        return Ok(0);
    }
    let now = OffsetDateTime::now_utc();
    let rows: Vec<[String; 3]> = list
        .users
        .iter()
        .map(|u| {
            [
                u.name.to_string(),
                if u.admin { "yes" } else { "no" }.to_owned(),
                when::ago(u.created_at, now),
            ]
        })
        .collect();
    table(["NAME", "ADMIN", "CREATED"], &rows);
    Ok(0)
}

async fn remove(
    client: &Client,
    name: UserName,
    transfer_to: Option<UserName>,
) -> anyhow::Result<i32> {
    client
        .remove_user(name.as_str(), transfer_to.as_ref().map(UserName::as_str))
        .await
        .map_err(|e| {
            explained_code(
                client,
                e,
                "last_admin",
                "the last admin cannot be removed: add another first (`scalemesh users add <name> --admin`)",
            )
        })?;
    let heir = transfer_to
        .map(|u| u.to_string())
        .unwrap_or_else(|| "you".to_owned());
    eprintln!(
        "Removed {name}: their tokens no longer work, and the projects they created passed to {heir}"
    );
    Ok(0)
}
