//! `scalemesh members add | ls | rm <project>`: who works on a project, as viewer, developer
//! or owner.

use scalemesh_core::access::{Role, UserName};
use scalemesh_core::wire::AddMember;
use time::OffsetDateTime;

use crate::args::MembersCommand;
use crate::client::Client;
use crate::commands::list::table;
use crate::commands::{explained_code, print_json};
use crate::escape::sanitize;
use crate::when;

pub async fn run(client: &Client, command: MembersCommand) -> anyhow::Result<i32> {
    match command {
        MembersCommand::Add {
            project,
            user,
            role,
        } => add(client, &project, user, role).await,
        MembersCommand::Ls { project, json } => list(client, &project, json.json).await,
        MembersCommand::Rm { project, user } => remove(client, &project, user).await,
    }
}

async fn add(client: &Client, project: &str, user: UserName, role: Role) -> anyhow::Result<i32> {
    let body = AddMember {
        user: user.to_string(),
        role,
    };
    let member = client.add_member(project, &body).await.map_err(|e| {
        explained_code(
            client,
            e,
            "last_owner",
            "a project keeps at least one owner: make someone else owner first",
        )
    })?;
    eprintln!(
        "{} is now {} of {}",
        member.user,
        member.role,
        sanitize(project, false)
    );
    Ok(0)
}

async fn list(client: &Client, project: &str, json: bool) -> anyhow::Result<i32> {
    let list = client
        .members(project)
        .await
        .map_err(|e| client.explain(e))?;
    if json {
        print_json(&list)?;
        return Ok(0);
    }
    if list.members.is_empty() {
        eprintln!(
            "{0} has no members: add one with `scalemesh members add {0} <user> --role developer`",
            sanitize(project, false)
        );
        return Ok(0);
    }
    let now = OffsetDateTime::now_utc();
    let rows: Vec<[String; 3]> = list
        .members
        .iter()
        .map(|m| {
            [
                m.user.to_string(),
                m.role.to_string(),
                when::ago(m.created_at, now),
            ]
        })
        .collect();
    table(["USER", "ROLE", "ADDED"], &rows);
    Ok(0)
}

async fn remove(client: &Client, project: &str, user: UserName) -> anyhow::Result<i32> {
    client
        .remove_member(project, user.as_str())
        .await
        .map_err(|e| {
            let hint = format!(
                "a project keeps at least one owner: make someone else owner first (`scalemesh members add {} <user> --role owner`)",
                sanitize(project, false)
            );
            explained_code(client, e, "last_owner", &hint)
        })?;
    eprintln!(
        "{user} is no longer a member of {}",
        sanitize(project, false)
    );
    Ok(0)
}
