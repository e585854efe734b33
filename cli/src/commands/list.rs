//! `scalemesh projects` and `scalemesh deployments <project>`: tables on stdout.

use scalemesh_core::wire::Deployment;
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

/// `scalemesh deployments rm <id>`.
async fn remove(client: &Client, id: &str) -> anyhow::Result<i32> {
    client
        .remove_deployment(id)
        .await
        .map_err(|e| client.explain(e))?;
    eprintln!(
        "Removed deployment {}: its URL no longer answers",
        crate::escape::sanitize(id, false)
    );
    Ok(0)
}

pub async fn deployments(client: &Client, args: DeploymentsArgs) -> anyhow::Result<i32> {
    let args = match args.command {
        Some(DeploymentsCommand::Ls(list)) => list,
        Some(DeploymentsCommand::Rm(rm)) => return remove(client, &rm.deployment).await,
        None => args.list,
    };
    let linked = || crate::linked::here(&client.display_url()).map(|l| l.project);
    let Some(project) = args.project.or_else(linked) else {
        return Err(CliError::new("no project given")
            .hint("scalemesh deployments ls <project>, or run it in a folder you deployed")
            .code(2)
            .into());
    };
    let (list, project) = tokio::try_join!(
        client.deployments(&project, args.limit),
        client.project(&project)
    )
    .map_err(|e| client.explain(e))?;
    if args.json {
        super::print_json(&list)?;
        return Ok(0);
    }
    let now = OffsetDateTime::now_utc();
    let rows: Vec<[String; 7]> = list
        .deployments
        .iter()
        .map(|d| deployment_row(d, project.pinned, now))
        .collect();
    table(
        [
            "ID", "STATUS", "TARGET", "COMMIT", "CREATED", "DURATION", "URL",
        ],
        &rows,
    );
    if project.pinned
        && let Some(live) = &project.production_deployment
    {
        eprintln!(
            "Production is pinned to {live} since a rollback: new deployments stay at their own URL until one is promoted (scalemesh promote <id>)"
        );
    }
    Ok(0)
}

/// One deployment as a row of `deployments ls`: what it was built for (production or a
/// preview), and whether it is live, and pinned there.
fn deployment_row(d: &Deployment, pinned: bool, now: OffsetDateTime) -> [String; 7] {
    let status = match (d.production, pinned) {
        (true, true) => format!("{} (live, pinned)", d.status),
        (true, false) => format!("{} (live)", d.status),
        (false, _) => d.status.to_string(),
    };
    [
        d.id.to_string(),
        status,
        if d.promote { "production" } else { "preview" }.to_owned(),
        d.commit.as_ref().map_or_else(
            || "-".to_owned(),
            |c| {
                let message: String = c.message.chars().take(40).collect();
                format!("{} {message}", c.short()).trim_end().to_owned()
            },
        ),
        when::ago(d.created_at, now),
        d.finished_at
            .map(|f| format!("{:.1}s", (f - d.created_at).as_seconds_f64()))
            .unwrap_or_else(|| "-".into()),
        d.url.clone(),
    ]
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

#[cfg(test)]
mod tests {
    use scalemesh_core::wire::{Deployment, DeploymentSource};
    use scalemesh_core::{DeploymentId, DeploymentStatus, Phase, ProjectName};
    use time::macros::datetime;

    use super::deployment_row;

    fn deployment(status: DeploymentStatus, promote: bool, production: bool) -> Deployment {
        Deployment {
            id: DeploymentId::parse("dq3k9x2m1pz0").expect("id"),
            project: ProjectName::parse("blog").expect("name"),
            status,
            phase: Phase::Done,
            progress: None,
            reason: None,
            source: DeploymentSource::Archive,
            promote,
            runner_ref: None,
            production,
            url: "http://dq3k9x2m1pz0--blog.localhost:8080".into(),
            project_url: "http://blog.localhost:8080".into(),
            created_at: datetime!(2026-12-04 12:00:00 UTC),
            building_at: None,
            uploading_at: None,
            finished_at: Some(datetime!(2026-12-04 12:00:02.5 UTC)),
            commit: None,
        }
    }

    #[test]
    fn rows_say_the_target_and_what_is_live() {
        let now = datetime!(2026-12-04 12:05:00 UTC);
        let ready = DeploymentStatus::Ready;
        for (d, pinned, status, target) in [
            (
                deployment(ready, true, true),
                false,
                "ready (live)",
                "production",
            ),
            (
                deployment(ready, true, true),
                true,
                "ready (live, pinned)",
                "production",
            ),
            (deployment(ready, true, false), true, "ready", "production"),
            (deployment(ready, false, false), false, "ready", "preview"),
            (
                deployment(DeploymentStatus::Failed, false, false),
                true,
                "failed",
                "preview",
            ),
        ] {
            let row = deployment_row(&d, pinned, now);
            assert_eq!(
                (row[1].as_str(), row[2].as_str()),
                (status, target),
                "{row:?}"
            );
            assert_eq!(row[5], "2.5s");
            assert_eq!(row[3], "-", "no commit");
        }
        let mut built = deployment(ready, true, true);
        built.commit = Some(scalemesh_core::wire::CommitInfo {
            sha: "6113728f27ae82c7b1a177c8d03f9e96e0adf246".into(),
            branch: Some("main".into()),
            message: "Fix the header of every page on the site at once".into(),
            author: "mona".into(),
        });
        let row = deployment_row(&built, false, now);
        assert_eq!(row[3], "6113728 Fix the header of every page on the site");
    }
}
