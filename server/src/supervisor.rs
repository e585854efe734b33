//! Keeps every deployment moving to a finished status: on start it picks up what the previous run
//! left unfinished; then it fails deployments whose builder ended without a report and those no
//! builder has reported on within the build timeout, and sweeps storage (`retention/`) at start
//! and every `--sweep-interval`.

use std::sync::Arc;
use std::time::Duration;

use scalemesh_core::duration;
use scalemesh_core::{DeploymentStatus, Phase};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::runner::{JobOutcome, RunnerEvent};

/// How often deployments are checked against the build timeout.
const REAP_EVERY: Duration = Duration::from_secs(15);

/// Beyond the build timeout, how long a build may stay silent before the server gives up on it.
const REAP_GRACE: Duration = Duration::from_secs(120);

/// Handles runner events and reaps overdue builds until `stop`.
pub async fn run(
    app: Arc<App>,
    mut events: mpsc::UnboundedReceiver<RunnerEvent>,
    stop: CancellationToken,
) {
    let mut reap = tokio::time::interval(REAP_EVERY);
    let mut reconcile = tokio::time::interval(app.reconcile_every);
    // The first tick is at once: what a previous run left (a disk that filled) goes at start.
    let mut sweep = tokio::time::interval(app.sweep_every.max(Duration::from_secs(1)));
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = sweep.tick() => {
                if let Err(e) = app.sweep().await {
                    tracing::error!(error = format!("{e:#}"), "sweeping storage failed");
                }
            }
            _ = reconcile.tick() => {
                if let Err(e) = reconcile_jobs(&app).await {
                    tracing::error!(error = format!("{e:#}"), "reconciling runner jobs failed");
                }
            }
            Some(event) = events.recv() => {
                if let Err(e) = on_event(&app, event).await {
                    tracing::error!(error = format!("{e:#}"), "handling a runner event failed");
                }
            }
            _ = reap.tick() => {
                if let Err(e) = reap_overdue(&app).await {
                    tracing::error!(error = format!("{e:#}"), "checking build timeouts failed");
                }
            }
        }
    }
}

/// Picks up what a previous run left unfinished, before the API takes requests: queued
/// deployments are handed to the runner again; builds that were running cannot be followed any
/// more and fail with a reason that says so.
pub async fn recover(app: &App) -> anyhow::Result<()> {
    for dep in app.store.unfinished_deployments().await? {
        if app.runner.survives_restart() && dep.runner_ref.is_some() {
            // Its task runs on; the reconciler follows it from here.
            continue;
        }
        if dep.status == DeploymentStatus::Queued {
            tracing::info!(deployment = %dep.id, "queuing again after restart");
            app.submit(&dep).await;
            continue;
        }
        let reason = "the server restarted while this build was running; deploy again".to_owned();
        if let Err(e) = app.finish(&dep.id, DeploymentStatus::Failed, reason).await {
            tracing::error!(deployment = %dep.id, error = format!("{e:#}"), "could not fail an interrupted build");
        }
    }
    Ok(())
}

async fn on_event(app: &App, event: RunnerEvent) -> anyhow::Result<()> {
    let RunnerEvent::Ended {
        deployment,
        outcome,
    } = event;
    let Some(dep) = app.store.deployment(&deployment).await? else {
        return Ok(());
    };
    if dep.status.is_terminal() {
        return Ok(());
    }
    let reason = match outcome {
        JobOutcome::Exited(how) => {
            format!("the builder stopped ({how}) without reporting a result")
        }
        JobOutcome::TimedOut => format!(
            "the build timed out after {}",
            duration::display(app.build_timeout)
        ),
        JobOutcome::Stopped => "the build was stopped".to_owned(),
        JobOutcome::FailedToStart(why) => why,
    };
    app.finish(&deployment, DeploymentStatus::Failed, reason)
        .await?;
    Ok(())
}

/// Asks the runner about every unfinished deployment it knows by reference.
async fn reconcile_jobs(app: &App) -> anyhow::Result<()> {
    let jobs: Vec<_> = app
        .store
        .unfinished_deployments()
        .await?
        .into_iter()
        .filter_map(|dep| dep.runner_ref.map(|r| (dep.id, r)))
        .collect();
    if jobs.is_empty() {
        return Ok(());
    }
    for event in app.runner.poll(&jobs).await {
        on_event(app, event).await?;
    }
    Ok(())
}

async fn reap_overdue(app: &App) -> anyhow::Result<()> {
    let limit = app.build_timeout + REAP_GRACE;
    let now = time::OffsetDateTime::now_utc();
    for dep in app.store.unfinished_deployments().await? {
        let Some(started) = dep.building_at else {
            continue;
        };
        if dep.phase == Phase::Queued || (now - started) < limit {
            continue;
        }
        let reason = format!(
            "no result from the builder within the build timeout ({})",
            duration::display(app.build_timeout)
        );
        app.finish(&dep.id, DeploymentStatus::Failed, reason)
            .await?;
        app.runner.cancel(&dep.id, dep.runner_ref.as_deref()).await;
    }
    Ok(())
}
