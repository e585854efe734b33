//! Builds as ECS Fargate tasks: one `RunTask` per deployment, the builder contract in the
//! container's environment overrides. The task ARN is the deployment's runner reference; cancel
//! is `StopTask`; a task that stopped without its builder reporting is found by [`Runner::poll`]
//! (`DescribeTasks`) and fails its deployment with ECS's reason and the exit code.

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_config::meta::region::RegionProviderChain;
use aws_sdk_ecs::Client;
use aws_sdk_ecs::config::http::HttpResponse;
use aws_sdk_ecs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, ContainerOverride, KeyValuePair, LaunchType,
    NetworkConfiguration, TaskOverride,
};
use scalemesh_core::DeploymentId;
use scalemesh_core::job::BuildJob;

use super::contract::{JobOutcome, Runner, RunnerError, RunnerEvent};

/// Where and how build tasks run.
#[derive(Debug, Clone)]
pub struct EcsSettings {
    pub cluster: String,
    pub task_definition: String,
    /// The builder's container in the task definition.
    pub container: String,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub assign_public_ip: bool,
    /// An ECS-compatible endpoint instead of AWS (tests).
    pub endpoint: Option<String>,
}

pub struct EcsRunner {
    client: Client,
    settings: EcsSettings,
}

/// DescribeTasks takes at most this many tasks per call.
const DESCRIBE_BATCH: usize = 100;

impl EcsRunner {
    pub async fn connect(settings: EcsSettings) -> Self {
        let region = RegionProviderChain::default_provider().or_else("us-east-1");
        let shared = aws_config::defaults(BehaviorVersion::latest())
            .region(region)
            .load()
            .await;
        let mut config = aws_sdk_ecs::config::Builder::from(&shared);
        if let Some(endpoint) = &settings.endpoint {
            config = config.endpoint_url(endpoint);
        }
        Self {
            client: Client::from_conf(config.build()),
            settings,
        }
    }

    fn overrides(&self, job: &BuildJob) -> TaskOverride {
        let environment = job
            .to_env()
            .into_iter()
            .map(|(name, value)| KeyValuePair::builder().name(name).value(value).build())
            .collect();
        TaskOverride::builder()
            .container_overrides(
                ContainerOverride::builder()
                    .name(&self.settings.container)
                    .set_environment(Some(environment))
                    .build(),
            )
            .build()
    }
}

/// What AWS said, as one line.
fn aws_message<E>(err: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match (err.as_service_error(), err.raw_response()) {
        (Some(service), _) if service.code().is_some() || service.message().is_some() => format!(
            "{}: {}",
            service.code().unwrap_or("error"),
            service.message().unwrap_or("no message")
        ),
        (_, Some(raw)) if !raw.status().is_success() => {
            let body = raw
                .body()
                .bytes()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            format!(
                "HTTP {}: {}",
                raw.status().as_u16(),
                body.chars().take(300).collect::<String>()
            )
        }
        _ => DisplayErrorContext(err).to_string(),
    }
}

/// `startedBy` of a deployment's task, so tasks can be told apart in the ECS console.
pub fn started_by(deployment: &DeploymentId) -> String {
    format!("scalemesh-{deployment}")
}

#[async_trait]
impl Runner for EcsRunner {
    async fn submit(&self, job: BuildJob) -> Result<Option<String>, RunnerError> {
        let vpc = AwsVpcConfiguration::builder()
            .set_subnets(Some(self.settings.subnets.clone()))
            .set_security_groups(Some(self.settings.security_groups.clone()))
            .assign_public_ip(if self.settings.assign_public_ip {
                AssignPublicIp::Enabled
            } else {
                AssignPublicIp::Disabled
            })
            .build()
            .map_err(|e| {
                RunnerError::Rejected(format!("the ECS network settings are incomplete: {e}"))
            })?;
        let out = self
            .client
            .run_task()
            .cluster(&self.settings.cluster)
            .task_definition(&self.settings.task_definition)
            .launch_type(LaunchType::Fargate)
            .count(1)
            .started_by(started_by(&job.deployment))
            .network_configuration(
                NetworkConfiguration::builder()
                    .awsvpc_configuration(vpc)
                    .build(),
            )
            .overrides(self.overrides(&job))
            .send()
            .await
            .map_err(|e| {
                RunnerError::Rejected(format!("ECS RunTask failed: {}", aws_message(&e)))
            })?;
        if let Some(failure) = out.failures().first() {
            return Err(RunnerError::Rejected(format!(
                "ECS could not start the build task: {}{}",
                failure.reason().unwrap_or("no reason given"),
                failure
                    .detail()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            )));
        }
        let arn = out
            .tasks()
            .first()
            .and_then(|t| t.task_arn())
            .ok_or_else(|| RunnerError::Rejected("ECS RunTask started no task".to_owned()))?;
        Ok(Some(arn.to_owned()))
    }

    async fn cancel(&self, deployment: &DeploymentId, runner_ref: Option<&str>) {
        let Some(arn) = runner_ref else { return };
        let stopped = self
            .client
            .stop_task()
            .cluster(&self.settings.cluster)
            .task(arn)
            .reason(format!("Scale Mesh stopped deployment {deployment}"))
            .send()
            .await;
        if let Err(e) = stopped {
            tracing::warn!(deployment = %deployment, task = arn, error = aws_message(&e), "StopTask failed");
        }
    }

    async fn shutdown(&self) {
        // Tasks run on without the server; the next server reconciles them.
    }

    fn survives_restart(&self) -> bool {
        true
    }

    async fn poll(&self, jobs: &[(DeploymentId, String)]) -> Vec<RunnerEvent> {
        let mut events = Vec::new();
        for batch in jobs.chunks(DESCRIBE_BATCH) {
            let arns: Vec<String> = batch.iter().map(|(_, arn)| arn.clone()).collect();
            let out = match self
                .client
                .describe_tasks()
                .cluster(&self.settings.cluster)
                .set_tasks(Some(arns))
                .send()
                .await
            {
                Ok(out) => out,
                Err(e) => {
                    tracing::warn!(
                        error = aws_message(&e),
                        "DescribeTasks failed; trying again later"
                    );
                    continue;
                }
            };
            for (deployment, arn) in batch {
                let task = out
                    .tasks()
                    .iter()
                    .find(|t| t.task_arn() == Some(arn.as_str()));
                let outcome = match task {
                    Some(task) if task.last_status() == Some("STOPPED") => {
                        let reason = task.stopped_reason().unwrap_or("no reason given");
                        let exit = task
                            .containers()
                            .iter()
                            .find(|c| c.name() == Some(self.settings.container.as_str()))
                            .and_then(|c| c.exit_code())
                            .map(|code| format!("; exit code {code}"))
                            .unwrap_or_default();
                        JobOutcome::Exited(format!("the build task stopped: {reason}{exit}"))
                    }
                    Some(_) => continue,
                    None if out.failures().iter().any(|f| f.arn() == Some(arn.as_str())) => {
                        JobOutcome::Exited("the build task no longer exists in ECS".to_owned())
                    }
                    None => continue,
                };
                events.push(RunnerEvent::Ended {
                    deployment: deployment.clone(),
                    outcome,
                });
            }
        }
        events
    }
}
