//! Talking to the server: log lines are shipped in batches as they come (one request in flight,
//! everything produced meanwhile goes in the next), retried until acknowledged; reports are
//! retried until the server answers.

use std::time::Duration;

use anyhow::Context;
use scalemesh_core::wire::{
    ApiErrorBody, BuildEnv, BuilderReport, LogAck, LogBatch, LogStream, NewLogLine, Progress,
};
use scalemesh_core::{DeploymentId, Phase};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

/// Most lines per request.
const BATCH_LINES: usize = 2000;
/// Most bytes of text per request. JSON escaping can make text up to six times longer; the
/// server takes bodies up to 8 MiB.
const BATCH_BYTES: usize = 1024 * 1024;
/// How long the builder keeps retrying one request before it gives up.
const GIVE_UP_AFTER: Duration = Duration::from_secs(120);
/// How long it keeps retrying its final report: the deployment's outcome is not dropped while a
/// server that cannot write (a full disk) may still come back.
const FINAL_REPORT_GIVE_UP_AFTER: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The server took the deployment out of the builder's hands (canceled, timed out).
    #[error("the server no longer accepts reports for this deployment: {0}")]
    Finished(String),
    #[error("{0:#}")]
    Other(anyhow::Error),
}

#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
    deployment: DeploymentId,
}

impl Api {
    pub fn new(base: &str, token: String, deployment: DeploymentId) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .context("creating the HTTP client")?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token,
            deployment,
        })
    }

    fn url(&self, tail: &str) -> String {
        format!(
            "{}/api/v1/deployments/{}/{tail}",
            self.base, self.deployment
        )
    }

    /// POSTs `body` until the server answers something other than a network error or a 5xx.
    async fn post<B: serde::Serialize, R: serde::de::DeserializeOwned>(
        &self,
        tail: &str,
        body: &B,
    ) -> Result<R, ReportError> {
        self.send(tail, Some(body), GIVE_UP_AFTER).await
    }

    /// GETs (without a body) or POSTs until the server answers something other than a network
    /// error or a 5xx.
    async fn send<B: serde::Serialize, R: serde::de::DeserializeOwned>(
        &self,
        tail: &str,
        body: Option<&B>,
        give_up_after: Duration,
    ) -> Result<R, ReportError> {
        let started = tokio::time::Instant::now();
        let mut backoff = Duration::from_millis(100);
        loop {
            let request = match body {
                Some(body) => self.http.post(self.url(tail)).json(body),
                None => self.http.get(self.url(tail)),
            };
            let attempt = request.bearer_auth(&self.token).send().await;
            let retry_reason = match attempt {
                Ok(res) if res.status().is_success() => {
                    return res
                        .json::<R>()
                        .await
                        .map_err(|e| ReportError::Other(e.into()));
                }
                Ok(res) if res.status() == reqwest::StatusCode::CONFLICT => {
                    let message = error_message(res).await;
                    return Err(ReportError::Finished(message));
                }
                Ok(res) if res.status().is_client_error() => {
                    let status = res.status();
                    let message = error_message(res).await;
                    return Err(ReportError::Other(anyhow::anyhow!(
                        "the server refused {tail}: {status}: {message}"
                    )));
                }
                Ok(res) => format!("server answered {}", res.status()),
                Err(e) => format!("{e}"),
            };
            if started.elapsed() > give_up_after {
                return Err(ReportError::Other(anyhow::anyhow!(
                    "could not reach the server at {} for {}s: {retry_reason}",
                    self.base,
                    give_up_after.as_secs()
                )));
            }
            eprintln!(
                "retrying {tail} in {}ms: {retry_reason}",
                backoff.as_millis()
            );
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// The project's variables for this build, and its deploy credential, fetched with the job
    /// token (they are never in the job's environment).
    pub async fn build_env(&self) -> Result<BuildEnv, ReportError> {
        self.send::<(), _>("env", None, GIVE_UP_AFTER).await
    }

    pub async fn report(&self, report: &BuilderReport) -> Result<(), ReportError> {
        let patience = match report {
            BuilderReport::Phase { .. } | BuilderReport::Commit(_) => GIVE_UP_AFTER,
            BuilderReport::Ready | BuilderReport::Failed { .. } => FINAL_REPORT_GIVE_UP_AFTER,
        };
        let _: serde_json::Value = self.send("report", Some(report), patience).await?;
        Ok(())
    }

    /// Which of the output's blobs the project holds already, and which to send.
    pub async fn check_blobs(
        &self,
        check: &scalemesh_core::wire::BlobCheck,
    ) -> Result<scalemesh_core::wire::BlobCheckAnswer, ReportError> {
        self.post("blobs", check).await
    }

    /// Claims packs this upload is about to store.
    pub async fn claim_packs(
        &self,
        request: &scalemesh_core::wire::PackRequest,
    ) -> Result<(), ReportError> {
        let _: serde_json::Value = self.post("packs", request).await?;
        Ok(())
    }

    /// Gives back the blobs only this failed upload stored; how many.
    pub async fn abandon_blobs(&self) -> Result<u64, ReportError> {
        let answer: serde_json::Value = self.post("blobs/abandon", &serde_json::json!({})).await?;
        Ok(answer["removed"].as_u64().unwrap_or(0))
    }

    pub async fn phase(&self, phase: Phase, progress: Option<Progress>) -> Result<(), ReportError> {
        self.report(&BuilderReport::Phase { phase, progress }).await
    }
}

async fn error_message(res: reqwest::Response) -> String {
    let text = res.text().await.unwrap_or_default();
    serde_json::from_str::<ApiErrorBody>(&text)
        .map(|b| b.error.message)
        .unwrap_or(text)
}

enum Msg {
    Line(NewLogLine),
    Flush(oneshot::Sender<Result<(), String>>),
}

/// Bytes of log text the builder holds before a command's output waits for the server (the
/// command then blocks on its pipe, as it would on a slow terminal).
const MAX_QUEUED_BYTES: usize = 8 * 1024 * 1024;

/// What the server keeps of one deployment's log (`server/src/db/logs.rs`): lines past it are
/// not shipped at all.
const SERVER_MAX_LINES: u64 = 200_000;
const SERVER_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// Where build output goes. Cheap to clone; lines are shipped by a background task.
#[derive(Clone)]
pub struct LogSink {
    tx: mpsc::UnboundedSender<Msg>,
    redact: std::sync::Arc<Vec<String>>,
    /// Bytes of text queued and not yet taken by the server.
    queued: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Woken when the server takes lines.
    drained: std::sync::Arc<tokio::sync::Notify>,
    /// Lines and bytes sent so far, to stop at what the server keeps.
    sent: std::sync::Arc<std::sync::Mutex<(u64, u64)>>,
}

/// `text` with every secret in it replaced by `***`, in the order given (the longest first, so
/// a part of one secret never breaks the match of a whole one).
pub fn mask(text: &str, secrets: &[String]) -> String {
    let mut text = text.to_owned();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        if text.contains(secret.as_str()) {
            text = text.replace(secret.as_str(), "***");
        }
    }
    text
}

impl LogSink {
    /// Starts shipping lines to the server.
    pub fn start(api: Api, redact: Vec<String>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let drained = std::sync::Arc::new(tokio::sync::Notify::new());
        tokio::spawn(ship(api, rx, queued.clone(), drained.clone()));
        Self {
            tx,
            redact: std::sync::Arc::new(redact.into_iter().filter(|s| !s.is_empty()).collect()),
            queued,
            drained,
            sent: std::sync::Arc::new(std::sync::Mutex::new((0, 0))),
        }
    }

    /// Queues a line. Lines past what the server keeps are dropped here.
    pub fn line(&self, stream: LogStream, text: &str) {
        let text = mask(text, &self.redact);
        {
            let mut sent = scalemesh_core::sync::lock(&self.sent);
            // One line past the caps still goes, so the server notes where the log was cut.
            if sent.0 > SERVER_MAX_LINES || sent.1 > SERVER_MAX_BYTES {
                return;
            }
            sent.0 += 1;
            sent.1 += text.len() as u64;
        }
        self.queued
            .fetch_add(text.len(), std::sync::atomic::Ordering::SeqCst);
        let _ = self.tx.send(Msg::Line(NewLogLine {
            stream,
            text,
            ts: OffsetDateTime::now_utc(),
        }));
    }

    /// [`LogSink::line`] for a command's output: waits while the server is behind, so a build
    /// printing without end holds its builder to a bounded amount of memory.
    pub async fn line_waiting(&self, stream: LogStream, text: &str) {
        loop {
            let drained = self.drained.notified();
            if self.queued.load(std::sync::atomic::Ordering::SeqCst) < MAX_QUEUED_BYTES {
                break;
            }
            drained.await;
        }
        self.line(stream, text);
    }

    /// A line from the builder itself.
    pub fn system(&self, text: impl AsRef<str>) {
        self.line(LogStream::System, text.as_ref());
    }

    /// Waits until every line so far is acknowledged by the server.
    pub async fn flush(&self) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).is_err() {
            return Err("the log shipper stopped".into());
        }
        rx.await
            .unwrap_or_else(|_| Err("the log shipper stopped".into()))
    }
}

async fn ship(
    api: Api,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    queued: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    drained: std::sync::Arc<tokio::sync::Notify>,
) {
    let forget = |lines: &[NewLogLine]| {
        let bytes: usize = lines.iter().map(|l| l.text.len()).sum();
        queued.fetch_sub(bytes, std::sync::atomic::Ordering::SeqCst);
        drained.notify_waiters();
    };
    let mut pending: Vec<NewLogLine> = Vec::new();
    // How many of this builder's lines the server holds.
    let mut acked: u64 = 0;
    let mut waiting: Vec<oneshot::Sender<Result<(), String>>> = Vec::new();
    let mut failure: Option<String> = None;
    let mut open = true;
    loop {
        if pending.is_empty() {
            for w in waiting.drain(..) {
                let _ = w.send(failure.clone().map_or(Ok(()), Err));
            }
            if !open {
                return;
            }
            // Idle: wait for the next line.
            match rx.recv().await {
                Some(Msg::Line(l)) => pending.push(l),
                Some(Msg::Flush(w)) => waiting.push(w),
                None => open = false,
            }
        }
        // Take everything that is there already.
        while open {
            match rx.try_recv() {
                Ok(Msg::Line(l)) => pending.push(l),
                Ok(Msg::Flush(w)) => waiting.push(w),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => open = false,
            }
        }
        if pending.is_empty() || failure.is_some() {
            forget(&pending);
            pending.clear();
            continue;
        }
        let mut take = 0;
        let mut bytes = 0;
        for l in pending.iter().take(BATCH_LINES) {
            bytes += l.text.len() + 64;
            if take > 0 && bytes > BATCH_BYTES {
                break;
            }
            take += 1;
        }
        let batch = LogBatch {
            first: acked,
            lines: pending[..take].to_vec(),
        };
        match api.post::<_, LogAck>("logs", &batch).await {
            Ok(ack) => {
                // The server holds `ack.acked` lines: drop those, resend the rest.
                let done = usize::try_from(ack.acked.saturating_sub(acked))
                    .unwrap_or(usize::MAX)
                    .min(pending.len());
                forget(&pending[..done]);
                pending.drain(..done);
                acked = ack.acked;
            }
            Err(e) => {
                eprintln!("log lines could not be delivered: {e}");
                failure = Some(e.to_string());
            }
        }
    }
}
