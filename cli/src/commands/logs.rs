//! `scalemesh logs <deployment | project> [--follow]`: the stored log, in order; with
//! `--follow`, then the live lines until the build ends.

use std::io::{IsTerminal, Write};

use scalemesh_core::wire::LogLine;
use scalemesh_core::{DeploymentId, ProjectName};

use crate::args::LogsArgs;
use crate::client::Client;
use crate::error::CliError;
use crate::escape::{colors_wanted, sanitize};
use crate::follow::{self, Event};

const PAGE: u32 = 10_000;

pub async fn run(client: &Client, args: LogsArgs) -> anyhow::Result<i32> {
    let target = match args.target.clone() {
        Some(target) => target,
        None => crate::linked::here(&client.display_url())
            .map(|link| link.project)
            .ok_or_else(|| {
                CliError::new("no deployment or project given")
                    .hint(
                        "scalemesh logs <deployment | project>, or run it in a folder you deployed",
                    )
                    .code(2)
            })?,
    };
    let id = resolve(client, &target).await?;
    let colors = colors_wanted(std::io::stdout().is_terminal());
    let print = |lines: &[LogLine]| {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdout.lock());
        for line in lines {
            let text = sanitize(&line.text, colors);
            let _ = if args.timestamps {
                writeln!(out, "{} {text}", stamp(line.ts))
            } else {
                writeln!(out, "{text}")
            };
        }
        let _ = out.flush();
    };
    if args.follow {
        let end = follow::follow(client, id.as_str(), 0, |event| {
            if let Event::Lines(lines) = event {
                print(lines);
            }
        })
        .await?;
        let reason = end
            .reason
            .map(|r| format!(": {}", sanitize(&r, false)))
            .unwrap_or_default();
        eprintln!("deployment {id} is {}{reason}", end.status);
        return Ok(super::exit_code(end.status));
    }
    let mut since = 0;
    loop {
        let lines = client
            .log_lines(id.as_str(), since, PAGE)
            .await
            .map_err(|e| client.explain(e))?;
        print(&lines);
        // Pages end at a line or a byte limit; an empty page is the end.
        match lines.last() {
            Some(last) => since = last.seq,
            None => return Ok(0),
        }
    }
}

/// A line's time for `--timestamps`: UTC, to the millisecond, always 24 characters, so the
/// log's text starts in one column.
fn stamp(ts: time::OffsetDateTime) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    ts.to_offset(time::UtcOffset::UTC)
        .format(FORMAT)
        .unwrap_or_default()
}

/// A deployment id as given, or the latest deployment of the project of that name.
async fn resolve(client: &Client, target: &str) -> anyhow::Result<DeploymentId> {
    if let Ok(id) = DeploymentId::parse(target) {
        match client.deployment(id.as_str()).await {
            Ok(_) => return Ok(id),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(client.explain(e).into()),
        }
    }
    let Ok(project) = ProjectName::parse(target) else {
        return Err(CliError::new(format!(
            "{target:?} is neither a deployment id nor a project name"
        ))
        .hint("list them with `scalemesh projects` and `scalemesh deployments <project>`")
        .into());
    };
    let list = client.deployments(project.as_str(), 1).await.map_err(|e| {
        if e.is_not_found() {
            CliError::new(format!("there is no deployment or project named {target}"))
                .hint("list your projects with `scalemesh projects`")
        } else {
            client.explain(e)
        }
    })?;
    list.deployments
        .into_iter()
        .next()
        .map(|d| d.id)
        .ok_or_else(|| {
            CliError::new(format!("project {project} has no deployments yet"))
                .hint("deploy it with `scalemesh deploy`")
                .into()
        })
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::stamp;

    #[test]
    fn timestamps_have_one_width() {
        for (ts, want) in [
            (
                datetime!(2026-12-04 15:51:39 UTC),
                "2026-12-04T15:51:39.000Z",
            ),
            (
                datetime!(2026-12-04 15:51:39.5 UTC),
                "2026-12-04T15:51:39.500Z",
            ),
            (
                datetime!(2026-12-04 15:51:39.123456789 UTC),
                "2026-12-04T15:51:39.123Z",
            ),
            (
                datetime!(2026-12-04 16:51:39.02 +1),
                "2026-12-04T15:51:39.020Z",
            ),
        ] {
            assert_eq!(stamp(ts), want);
        }
    }
}
