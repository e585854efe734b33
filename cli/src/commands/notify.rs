//! `scalemesh notify`: URLs told of a project's deployment events (signed JSON), and what was
//! sent to them.

use scalemesh_core::wire::AddSubscription;
use time::OffsetDateTime;

use crate::args::NotifyCommand;
use crate::client::Client;
use crate::commands::list::table;
use crate::when::ago;

pub async fn run(client: &Client, command: NotifyCommand) -> anyhow::Result<i32> {
    match command {
        NotifyCommand::Add {
            project,
            url,
            events,
            json,
        } => {
            let body = AddSubscription {
                url,
                events: (!events.is_empty()).then_some(events),
            };
            let sub = client
                .subscribe(&project, &body)
                .await
                .map_err(|e| client.explain(e))?;
            if json.json {
                super::print_json(&sub)?;
            } else {
                eprintln!(
                    "{} now hears of {}'s deployments ({}). Check each delivery's X-Scalemesh-Signature with this secret, shown only now:",
                    sub.url,
                    project,
                    sub.events.join(", ")
                );
                println!("{}", sub.secret.as_deref().unwrap_or_default());
            }
        }
        NotifyCommand::Ls { project, json } => {
            let list = client
                .subscriptions(&project)
                .await
                .map_err(|e| client.explain(e))?;
            if json.json {
                super::print_json(&list)?;
            } else if list.subscriptions.is_empty() {
                eprintln!(
                    "{project} tells no URL of its deployments: add one with `scalemesh notify add {project} <url>`"
                );
            } else {
                let rows: Vec<[String; 3]> = list
                    .subscriptions
                    .iter()
                    .map(|s| [s.id.to_string(), s.events.join(","), s.url.clone()])
                    .collect();
                table(["ID", "EVENTS", "URL"], &rows);
            }
        }
        NotifyCommand::Rm { project, id } => {
            client
                .unsubscribe(&project, id)
                .await
                .map_err(|e| client.explain(e))?;
            eprintln!("Notification URL {id} of {project} removed: nothing more is sent to it");
        }
        NotifyCommand::Log { project, json } => log(client, &project, json.json).await?,
    }
    Ok(0)
}

/// `notify log`: what was sent lately, and what came of it.
async fn log(client: &Client, project: &str, json: bool) -> anyhow::Result<()> {
    let log = client
        .notification_log(project)
        .await
        .map_err(|e| client.explain(e))?;
    if json {
        super::print_json(&log)?;
    } else if log.deliveries.is_empty() {
        eprintln!("Nothing was sent for {project} yet");
    } else {
        let now = OffsetDateTime::now_utc();
        let rows: Vec<[String; 6]> = log
            .deliveries
            .iter()
            .map(|d| {
                let answer = match (&d.last_status, &d.last_error) {
                    (Some(status), _) => status.to_string(),
                    (None, Some(error)) => error.clone(),
                    (None, None) => "-".into(),
                };
                [
                    ago(d.created_at, now),
                    d.event.clone(),
                    d.deployment.clone().unwrap_or_default(),
                    format!("{} ({} tries)", d.state, d.attempts),
                    answer,
                    d.url.clone(),
                ]
            })
            .collect();
        table(
            ["WHEN", "EVENT", "DEPLOYMENT", "STATE", "ANSWER", "URL"],
            &rows,
        );
    }
    Ok(())
}
