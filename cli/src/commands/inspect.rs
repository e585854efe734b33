//! `scalemesh inspect <deployment>` (one deployment, in full) and `scalemesh open [project]`
//! (a project's URL, opened in a browser when there is a terminal to open it from).

use std::io::IsTerminal;

use time::OffsetDateTime;

use crate::args::{InspectArgs, OpenArgs};
use crate::client::Client;
use crate::error::CliError;
use crate::escape::sanitize;
use crate::when;
use scalemesh_core::wire::DeploymentSource;

pub async fn inspect(client: &Client, args: InspectArgs) -> anyhow::Result<i32> {
    let dep = client
        .deployment(&args.deployment)
        .await
        .map_err(|e| client.explain(e))?;
    if args.json {
        super::print_json(&dep)?;
        return Ok(0);
    }
    let now = OffsetDateTime::now_utc();
    let source = match &dep.source {
        DeploymentSource::Git { url, git_ref } => match git_ref {
            Some(r) => format!("{url} (ref {r})"),
            None => format!("{url} (default branch)"),
        },
        DeploymentSource::Archive => "uploaded folder".to_owned(),
        DeploymentSource::Prebuilt => "prebuilt folder (no build)".to_owned(),
    };
    let took = |from: Option<OffsetDateTime>, to: Option<OffsetDateTime>| match (from, to) {
        (Some(a), Some(b)) => format!("{:.1}s", (b - a).as_seconds_f64()),
        _ => "-".to_owned(),
    };
    let mut rows: Vec<(&str, String)> = vec![
        ("Deployment", dep.id.to_string()),
        ("Project", dep.project.to_string()),
        ("Status", dep.status.to_string()),
        ("Phase", dep.phase.label().to_owned()),
        ("Source", source),
        (
            "Target",
            if dep.promote { "production" } else { "preview" }.to_owned(),
        ),
        (
            "Production",
            if dep.production {
                "yes, live now"
            } else {
                "no"
            }
            .to_owned(),
        ),
        ("Created", when::ago(dep.created_at, now)),
        ("Build", took(dep.building_at, dep.uploading_at)),
        ("Upload", took(dep.uploading_at, dep.finished_at)),
        ("URL", dep.url.clone()),
        ("Project URL", dep.project_url.clone()),
    ];
    if let Some(c) = &dep.commit {
        let on = c
            .branch
            .as_ref()
            .map(|b| format!(" on {b}"))
            .unwrap_or_default();
        rows.insert(
            5,
            (
                "Commit",
                format!("{}{on}: {} ({})", c.sha, c.message, c.author),
            ),
        );
    }
    if let Some(reason) = &dep.reason {
        rows.push(("Reason", reason.clone()));
    }
    if let Some(task) = &dep.runner_ref {
        rows.push(("Build task", task.clone()));
    }
    for (name, value) in rows {
        println!("{:<12} {}", name, sanitize(&value, false));
    }
    Ok(0)
}

pub async fn open(client: &Client, args: OpenArgs) -> anyhow::Result<i32> {
    let linked = || crate::linked::here(&client.display_url()).map(|l| l.project);
    let Some(name) = args.project.or_else(linked) else {
        return Err(CliError::new("no project given")
            .hint("scalemesh open <project>, or run it in a folder you deployed")
            .code(2)
            .into());
    };
    let project = client.project(&name).await.map_err(|e| client.explain(e))?;
    // The server's answer is text from elsewhere: made safe to print, and opened only when it
    // is a web address (a browser launcher also opens files and other schemes).
    println!("{}", crate::escape::sanitize(&project.url, false));
    let web = project.url.starts_with("http://") || project.url.starts_with("https://");
    if web && std::io::stdout().is_terminal() {
        // Best effort, and only for a person at a terminal: scripts get the URL alone.
        let opened = std::process::Command::new("xdg-open")
            .arg(&project.url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .is_ok();
        if !opened {
            eprintln!("(no browser to open it with here)");
        }
    }
    Ok(0)
}
