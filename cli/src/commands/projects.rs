//! `scalemesh projects [ls]` and `scalemesh projects rm` (also `scalemesh rm`): list the
//! projects you can see, delete one.

use std::io::{BufRead, IsTerminal, Write};

use crate::args::{ProjectsArgs, ProjectsCommand, RemoveProjectArgs};
use crate::client::Client;
use crate::error::CliError;
use crate::escape::sanitize;

pub async fn run(client: &Client, args: ProjectsArgs) -> anyhow::Result<i32> {
    match args.command {
        Some(ProjectsCommand::Ls(list)) => super::list::projects(client, list.json).await,
        Some(ProjectsCommand::Rm(rm)) => remove(client, rm).await,
        Some(ProjectsCommand::Retention(args)) => retention(client, args).await,
        None => super::list::projects(client, args.list.json).await,
    }
}

/// Sets (or with neither flag, shows) how long a project keeps its deployments.
async fn retention(client: &Client, args: crate::args::RetentionArgs) -> anyhow::Result<i32> {
    use scalemesh_core::retention::Retention;
    let wanted = Retention {
        keep: args.keep,
        days: args.days,
    };
    let project = if args.all || !wanted.is_unset() {
        let body = scalemesh_core::wire::UpdateProject {
            retention: Some(wanted),
            ..Default::default()
        };
        client.update_project(&args.project, &body).await
    } else {
        client.project(&args.project).await
    }
    .map_err(|e| client.explain(e))?;
    let r = project.retention;
    let said = match (r.keep, r.days) {
        (None, None) => "every deployment is kept".to_owned(),
        (Some(n), None) => format!("the newest {n} ready deployments are kept"),
        (None, Some(d)) => format!("deployments of the last {d} days are kept"),
        (Some(n), Some(d)) => {
            format!("the newest {n} ready deployments and those of the last {d} days are kept")
        }
    };
    println!(
        "{}: {said}; production and the deployments of its last {} moves always are",
        project.name,
        scalemesh_core::retention::HISTORY
    );
    Ok(0)
}

/// Deletes a project, after asking on a terminal; without one, `--yes` must say so.
pub async fn remove(client: &Client, args: RemoveProjectArgs) -> anyhow::Result<i32> {
    // Known to exist (and to be the caller's to see) before anything is asked.
    let project = client
        .project(&args.project)
        .await
        .map_err(|e| client.explain(e))?;
    if !args.yes {
        let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
        if !interactive {
            return Err(CliError::new(format!(
                "deleting {} needs a confirmation, and there is no terminal to ask on",
                project.name
            ))
            .hint(format!("scalemesh projects rm {} --yes", project.name))
            .code(2)
            .into());
        }
        eprint!(
            "Delete {} and every deployment of it? {} stops answering. Type the name to confirm: ",
            project.name,
            sanitize(&project.url, false)
        );
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if answer.trim() != project.name.as_str() {
            return Err(CliError::new("not deleted: the name typed did not match").into());
        }
    }
    client
        .delete_project(project.name.as_str())
        .await
        .map_err(|e| client.explain(e))?;
    eprintln!(
        "Deleted {}; its name stays yours for a while, so nobody else can take it",
        project.name
    );
    Ok(0)
}
