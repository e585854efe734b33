//! `scalemesh promote`, `scalemesh rollback` and `scalemesh domains`: what a project serves,
//! changed without a build.

use reqwest::StatusCode;

use crate::args::{DomainsCommand, PromoteArgs, RollbackArgs};
use crate::client::Client;
use crate::commands::list::table;
use crate::commands::{explained, explained_code};
use crate::error::CliError;

pub async fn promote(client: &Client, args: PromoteArgs) -> anyhow::Result<i32> {
    let dep = client.promote(&args.deployment).await.map_err(|e| {
        explained_code(
            client,
            e,
            "not_ready",
            "`scalemesh deployments ls <project>` lists its deployments and their status",
        )
    })?;
    eprintln!("Promoted {} to production of {}", dep.id, dep.project);
    println!("{}", dep.project_url);
    Ok(0)
}

pub async fn rollback(client: &Client, args: RollbackArgs) -> anyhow::Result<i32> {
    let project = match (&args.project, &args.to) {
        (Some(project), _) => project.clone(),
        (None, Some(to)) => client
            .deployment(to)
            .await
            .map_err(|e| client.explain(e))?
            .project
            .to_string(),
        (None, None) => match crate::linked::here(&client.display_url()) {
            Some(link) => link.project,
            None => {
                return Err(CliError::new("no project given")
                    .hint("scalemesh rollback <project> [--to <deployment>], or run it in a folder you deployed")
                    .code(2)
                    .into());
            }
        },
    };
    let dep = client
        .rollback(&project, args.to.as_deref())
        .await
        .map_err(|e| {
            explained(
                client,
                e,
                StatusCode::CONFLICT,
                "name a ready deployment with --to; `scalemesh deployments ls <project>` lists them",
            )
        })?;
    eprintln!(
        "Rolled back {} to {}; new builds will not go live until `scalemesh promote`",
        dep.project, dep.id
    );
    println!("{}", dep.project_url);
    Ok(0)
}

pub async fn domains(client: &Client, command: DomainsCommand) -> anyhow::Result<i32> {
    match command {
        DomainsCommand::Add { project, host } => {
            let domain = client.add_domain(&project, &host).await.map_err(|e| {
                explained(
                    client,
                    e,
                    StatusCode::CONFLICT,
                    "a host serves one project: remove it from the other first",
                )
            })?;
            eprintln!(
                "{} now serves {}; point its DNS at this server",
                domain.host, domain.project
            );
            println!("{}", domain.url);
        }
        DomainsCommand::Ls { project, json } => {
            let list = client
                .domains(&project)
                .await
                .map_err(|e| client.explain(e))?;
            if json.json {
                super::print_json(&list)?;
            } else if list.domains.is_empty() {
                eprintln!(
                    "{project} has no domains: add one with `scalemesh domains add {project} <host>`"
                );
            } else {
                let rows: Vec<[String; 2]> = list
                    .domains
                    .iter()
                    .map(|d| [d.host.clone(), d.url.clone()])
                    .collect();
                table(["HOST", "URL"], &rows);
            }
        }
        DomainsCommand::Rm { project, host } => {
            client
                .remove_domain(&project, &host)
                .await
                .map_err(|e| client.explain(e))?;
            eprintln!("{host} no longer serves {project}");
        }
    }
    Ok(0)
}
