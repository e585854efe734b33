//! `scalemesh git`: connect a project to its repository's webhooks (push to deploy), show the
//! connection and what its deliveries did, disconnect. `scalemesh hooks`: deploy hooks.

use reqwest::StatusCode;
use scalemesh_core::wire::{ConnectGit, CreateDeployHook, GitConnection};
use time::OffsetDateTime;

use crate::args::{GitCommand, HooksCommand};
use crate::client::Client;
use crate::commands::explained;
use crate::commands::list::table;
use crate::escape::sanitize;
use crate::when::ago;

pub async fn run(client: &Client, command: GitCommand) -> anyhow::Result<i32> {
    match command {
        GitCommand::Connect {
            project,
            production_branch,
            provider,
            status_token,
            deploy_token,
            api_url,
            poll,
            json,
        } => {
            let deploy_token = if deploy_token {
                Some(read_token("Deploy token (read access to the repository)")?)
            } else {
                None
            };
            let status_token = if status_token {
                Some(read_token("Forge token for commit statuses")?)
            } else {
                None
            };
            let body = ConnectGit {
                provider: Some(provider),
                production_branch,
                status_token,
                api_url,
                poll,
                deploy_token,
            };
            let connection = client.connect_git(&project, &body).await.map_err(|e| {
                explained(
                    client,
                    e,
                    StatusCode::CONFLICT,
                    "deploy the project from its repository once first: scalemesh deploy <git url> --project <project>",
                )
            })?;
            if json.json {
                super::print_json(&with_url(client, connection))?;
            } else {
                connected(client, &project, &connection);
            }
        }
        GitCommand::Show { project, json } => {
            let connection = client
                .git_connection(&project)
                .await
                .map_err(|e| client.explain(e))?;
            if json.json {
                super::print_json(&with_url(client, connection))?;
            } else {
                show(client, &connection);
            }
        }
        GitCommand::Disconnect { project } => {
            client
                .disconnect_git(&project)
                .await
                .map_err(|e| client.explain(e))?;
            eprintln!(
                "{project} no longer deploys on pushes; remove the webhook from the forge too. \
                 Branch and pull-request URLs keep serving what they serve."
            );
        }
    }
    Ok(0)
}

/// A token, typed without echo or piped in (a line each): never from the command line.
fn read_token(what: &str) -> anyhow::Result<String> {
    let token = if crate::secret_input::stdin_is_terminal() {
        crate::secret_input::prompt_hidden(&format!("{what}: "))?
    } else {
        crate::secret_input::line_from_stdin()?.unwrap_or_default()
    };
    let token = token.trim().to_owned();
    if token.is_empty() {
        return Err(crate::error::CliError::new(format!("no token was given ({what})"))
            .hint("pipe it in, a line each: printf '%s\\n' \"$TOKEN\" | scalemesh git connect <project> --deploy-token")
            .into());
    }
    Ok(token)
}

fn webhook_url(client: &Client, connection: &GitConnection) -> String {
    format!("{}{}", client.display_url(), connection.webhook_path)
}

/// The connection as JSON, with the webhook's whole URL.
fn with_url(client: &Client, connection: GitConnection) -> serde_json::Value {
    let url = webhook_url(client, &connection);
    let mut value = serde_json::to_value(connection).unwrap_or_default();
    value["webhook_url"] = serde_json::Value::String(url);
    value
}

fn connected(client: &Client, project: &str, connection: &GitConnection) {
    let (secret_name, how) = match connection.provider.as_str() {
        "gitlab" => (
            "Secret token",
            "Settings → Webhooks: push and merge request events",
        ),
        "gitea" => (
            "Secret",
            "Settings → Webhooks → Gitea: push, delete and pull request events, POST, application/json",
        ),
        _ => (
            "Secret",
            "Settings → Webhooks → Add webhook: content type application/json; push, branch or tag deletion and pull request events",
        ),
    };
    eprintln!(
        "{project} deploys on pushes: {} goes live, every other branch and pull request gets its own URL.",
        connection.production_branch
    );
    if let Some(every) = &connection.poll {
        eprintln!(
            "Its branches are listed every {every}; a webhook is not needed, but deploys at once:"
        );
    }
    eprintln!("Add this webhook to the repository ({how}):");
    println!("Payload URL: {}", webhook_url(client, connection));
    if let Some(secret) = &connection.secret {
        println!("{secret_name}: {secret}");
    }
    eprintln!(
        "The secret is shown only now; `scalemesh git connect {project}` again makes a new one."
    );
}

fn show(client: &Client, connection: &GitConnection) {
    let now = OffsetDateTime::now_utc();
    println!("Provider:          {}", connection.provider);
    println!(
        "Production branch: {}",
        sanitize(&connection.production_branch, false)
    );
    println!("Webhook:           {}", webhook_url(client, connection));
    println!("Connected:         {}", ago(connection.connected_at, now));
    let statuses = if connection.commit_statuses {
        format!(
            "set on each commit ({})",
            connection
                .api_url
                .as_deref()
                .unwrap_or("the forge's default API")
        )
    } else {
        "off (git connect --status-token)".to_owned()
    };
    println!("Commit statuses:   {statuses}");
    if let Some(every) = &connection.poll {
        println!("Polling:           every {every}");
    }
    if connection.deploy_credential {
        println!("Deploy credential: set (builds of the repository fetch with it)");
    }
    match connection.deliveries.first() {
        None => println!("Last delivery:     none yet"),
        Some(d) => println!(
            "Last delivery:     {} ({}): {}",
            ago(d.received_at, now),
            sanitize(&d.event, false),
            sanitize(&d.outcome, false)
        ),
    }
    if connection.previews.is_empty() {
        return;
    }
    println!();
    let rows: Vec<[String; 3]> = connection
        .previews
        .iter()
        .map(|p| {
            let name = match p.kind.as_str() {
                "pull_request" => format!("#{}", p.name),
                _ => p.name.clone(),
            };
            let serving = p
                .deployment
                .as_ref()
                .map_or_else(|| "(building)".to_owned(), ToString::to_string);
            [name, serving, p.url.clone()]
        })
        .collect();
    table(["BRANCH/PR", "DEPLOYMENT", "URL"], &rows);
}

pub async fn hooks(client: &Client, command: HooksCommand) -> anyhow::Result<i32> {
    match command {
        HooksCommand::Create {
            project,
            name,
            branch,
            json,
        } => {
            let body = CreateDeployHook { name, branch };
            let hook = client
                .create_deploy_hook(&project, &body)
                .await
                .map_err(|e| client.explain(e))?;
            let url = format!(
                "{}{}",
                client.display_url(),
                hook.path.as_deref().unwrap_or_default()
            );
            if json.json {
                let mut value = serde_json::to_value(&hook)?;
                value["url"] = serde_json::Value::String(url);
                super::print_json(&value)?;
            } else {
                let what = hook.branch.as_deref().map_or_else(
                    || format!("{project}'s branch"),
                    |b| format!("{} of {project}", sanitize(b, false)),
                );
                eprintln!(
                    "Deploy hook {} made: a POST to this URL builds {what}. Keep it secret; it is shown only now.",
                    hook.id
                );
                println!("{url}");
            }
        }
        HooksCommand::Ls { project, json } => {
            let list = client
                .deploy_hooks(&project)
                .await
                .map_err(|e| client.explain(e))?;
            if json.json {
                super::print_json(&list)?;
            } else if list.hooks.is_empty() {
                eprintln!(
                    "{project} has no deploy hooks: make one with `scalemesh hooks create {project}`"
                );
            } else {
                let now = OffsetDateTime::now_utc();
                let rows: Vec<[String; 4]> = list
                    .hooks
                    .iter()
                    .map(|h| {
                        [
                            h.id.to_string(),
                            h.name.clone(),
                            h.branch.clone().unwrap_or_else(|| "(the project's)".into()),
                            h.last_used_at
                                .map_or_else(|| "never".into(), |t| ago(t, now)),
                        ]
                    })
                    .collect();
                table(["ID", "NAME", "BRANCH", "LAST USED"], &rows);
            }
        }
        HooksCommand::Rm { project, id } => {
            client
                .remove_deploy_hook(&project, id)
                .await
                .map_err(|e| client.explain(e))?;
            eprintln!("Deploy hook {id} of {project} removed: its URL no longer builds anything");
        }
    }
    Ok(0)
}
