//! `scalemesh projects` and `scalemesh deployments <project>`: tables on stdout.

use time::OffsetDateTime;

use crate::args::{DeploymentsArgs, DeploymentsCommand};
use crate::client::Client;
use crate::error::CliError;
use crate::escape::sanitize;
use crate::when;

pub async fn projects(client: &Client, json: bool) -> anyhow::Result<i32> {
    let list = client.projects().await.map_err(|e| client.explain(e))?;
    if json {
        super::print_json(&list)?;
        return Ok(0);
    }
    if list.projects.is_empty() {
        eprintln!("No projects yet: deploy one with `scalemesh deploy`");
        return Ok(0);
    }
    let rows: Vec<[String; 4]> = list
        .projects
        .iter()
        .map(|p| {
            [
                p.name.to_string(),
                p.url.clone(),
                p.production_deployment
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_else(|| "-".into()),
                p.git_url
                    .clone()
                    .unwrap_or_else(|| "(uploaded folder)".into()),
            ]
        })
        .collect();
    table(["NAME", "URL", "LIVE", "SOURCE"], &rows);
    Ok(0)
}

pub async fn deployments(client: &Client, args: DeploymentsArgs) -> anyhow::Result<i32> {
    let args = match args.command {
        Some(DeploymentsCommand::Ls(list)) => list,
        None => args.list,
    };
    let linked = || crate::linked::here(&client.display_url()).map(|l| l.project);
    let Some(project) = args.project.or_else(linked) else {
        return Err(CliError::new("no project given")
            .hint("scalemesh deployments ls <project>, or run it in a folder you deployed")
            .code(2)
            .into());
    };
    let list = client
        .deployments(&project, args.limit)
        .await
        .map_err(|e| client.explain(e))?;
    if args.json {
        super::print_json(&list)?;
        return Ok(0);
    }
    let now = OffsetDateTime::now_utc();
    let rows: Vec<[String; 5]> = list
        .deployments
        .iter()
        .map(|d| {
            [
                d.id.to_string(),
                if d.production {
                    format!("{} (live)", d.status)
                } else {
                    d.status.to_string()
                },
                when::ago(d.created_at, now),
                d.finished_at
                    .map(|f| format!("{:.1}s", (f - d.created_at).as_seconds_f64()))
                    .unwrap_or_else(|| "-".into()),
                d.url.clone(),
            ]
        })
        .collect();
    table(["ID", "STATUS", "CREATED", "DURATION", "URL"], &rows);
    Ok(0)
}

/// Prints an aligned table on stdout. Cells may hold what the server or another user wrote, so
/// they are made safe for the terminal first.
pub fn table<const N: usize>(head: [&str; N], rows: &[[String; N]]) {
    let rows: Vec<[String; N]> = rows
        .iter()
        .map(|row| row.clone().map(|cell| sanitize(&cell, false).into_owned()))
        .collect();
    let mut widths = head.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == N {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(head.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
}
