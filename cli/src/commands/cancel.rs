//! `scalemesh cancel <deployment>`.

use crate::args::CancelArgs;
use crate::client::Client;

pub async fn run(client: &Client, args: CancelArgs) -> anyhow::Result<i32> {
    let dep = client.cancel(&args.deployment).await.map_err(|e| {
        let conflict = e.status() == Some(reqwest::StatusCode::CONFLICT);
        let err = client.explain(e);
        if conflict {
            err.hint("only queued or running deployments can be canceled")
        } else {
            err
        }
    })?;
    eprintln!("Canceled deployment {} of {}", dep.id, dep.project);
    Ok(0)
}
