use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use scalemesh_builder::upload::{self, UploadLimits};
use scalemesh_core::DeploymentId;
use scalemesh_core::job::BuildJob;
use scalemesh_core::rules::Routing;
use scalemesh_core::storage::FsStorage;
use scalemesh_core::wire::{
    BuilderReport, LogAck, LogBatch, LogFrame, LogLine, LogStream, NewLogLine,
};
use scalemesh_server::runner::{Runner, RunnerError, RunnerEvent};
use scalemesh_server::settings::Settings;
use scalemesh_server::{Listeners, Server};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Records what the server asks of a runner.
#[derive(Default)]
pub struct Recorded {
    pub jobs: Mutex<Vec<BuildJob>>,
    pub canceled: Mutex<Vec<DeploymentId>>,
    pub changed: Notify,
}

/// Where the fake runner's jobs run, as far as the server can tell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FakeRunnerKind {
    /// Like the local runner: jobs have no name and die with the server.
    #[default]
    Local,
    /// Like ECS: each job is named (`task-<deployment>`) and runs on across a restart.
    Remote,
}

pub struct FakeRunner {
    recorded: Arc<Recorded>,
    kind: FakeRunnerKind,
}

#[async_trait]
impl Runner for FakeRunner {
    async fn submit(&self, job: BuildJob) -> Result<Option<String>, RunnerError> {
        let name =
            (self.kind == FakeRunnerKind::Remote).then(|| format!("task-{}", job.deployment));
        self.recorded.jobs.lock().expect("lock").push(job);
        self.recorded.changed.notify_waiters();
        Ok(name)
    }

    async fn cancel(&self, deployment: &DeploymentId, _runner_ref: Option<&str>) {
        self.recorded
            .canceled
            .lock()
            .expect("lock")
            .push(deployment.clone());
        self.recorded.changed.notify_waiters();
    }

    async fn shutdown(&self) {}

    fn survives_restart(&self) -> bool {
        self.kind == FakeRunnerKind::Remote
    }
}

pub struct TestApp {
    pub api: String,
    pub sites: SocketAddr,
    pub token: String,
    pub http: reqwest::Client,
    pub recorded: Arc<Recorded>,
    pub events: mpsc::UnboundedSender<RunnerEvent>,
    pub storage: FsStorage,
    data_path: std::path::PathBuf,
    _data: Option<tempfile::TempDir>,
    _stop: oneshot::Sender<()>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// [`spawn_app`] with settings changed by `configure` (no limit on failed sign-ins unless it
/// sets one: the tests make many on purpose).
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_in(tempfile::tempdir().expect("tempdir"), configure).await
}

/// [`spawn_app_with`] on the data directory `data`, as it is.
pub async fn spawn_app_in(
    data: tempfile::TempDir,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    let path = data.path().to_path_buf();
    spawn_app_at(&path, Some(data), configure).await
}

/// [`spawn_app_with`] on the data directory at `path`, removed with the app when `data` is
/// given.
pub async fn spawn_app_at(
    path: &std::path::Path,
    data: Option<tempfile::TempDir>,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    spawn_app_on(path, data, FakeRunnerKind::Local, configure).await
}

/// [`spawn_app_at`] with a fake runner of `kind`.
pub async fn spawn_app_on(
    path: &std::path::Path,
    data: Option<tempfile::TempDir>,
    kind: FakeRunnerKind,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    let mut settings = Settings::defaults();
    settings.data_dir = Some(path.to_path_buf());
    settings.storage = None;
    settings.auth_failures = 0;
    // The fake runner starts nothing: every deployment stays queued.
    settings.max_queued_per_user = 0;
    configure(&mut settings);
    let listeners = Listeners {
        api: tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind"),
        proxy: Some(
            tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind"),
        ),
    };
    let recorded = Arc::new(Recorded::default());
    let (events_tx, events_slot) = std::sync::mpsc::channel();
    let runner_recorded = recorded.clone();
    let server = Server::build_with_runner(&settings, listeners, move |events| {
        let _ = events_tx.send(events);
        Arc::new(FakeRunner {
            recorded: runner_recorded,
            kind,
        }) as Arc<dyn Runner>
    })
    .await
    .expect("server builds");
    let events = events_slot.recv().expect("events channel");
    let api = format!("http://{}", server.api_addr());
    let sites = server.proxy_addr().expect("proxy");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.run_until(async {
        let _ = stopped.await;
    }));
    // None when the local admin was removed.
    let token = std::fs::read_to_string(path.join("admin-token"))
        .unwrap_or_default()
        .trim()
        .to_owned();
    TestApp {
        api,
        sites,
        token,
        http: reqwest::Client::new(),
        recorded,
        events,
        storage: FsStorage::new(path.join("sites")),
        data_path: path.to_path_buf(),
        _data: data,
        _stop: stop,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api)
    }

    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_path
    }

    /// `method path` with `token` and, when given, a JSON body.
    pub async fn call(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        let mut req = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        status_json(req.send().await.expect("request")).await
    }

    /// Adds a user as the admin; returns their first token.
    pub async fn add_user(&self, name: &str, admin: bool) -> String {
        let (status, body) = self
            .post("/api/v1/users", json!({"name": name, "admin": admin}))
            .await;
        assert_eq!(status, 201, "{body}");
        body["secret"].as_str().expect("secret").to_owned()
    }

    /// Makes a token with `as_token` (`{"name", "projects"?, "role"?, "expires"?}`); returns
    /// its secret and id.
    pub async fn make_token(&self, as_token: &str, body: Value) -> (String, i64) {
        let (status, made) = self
            .call(as_token, "POST", "/api/v1/tokens", Some(body))
            .await;
        assert_eq!(status, 201, "{made}");
        (
            made["secret"].as_str().expect("secret").to_owned(),
            made["token"]["id"].as_i64().expect("id"),
        )
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let res = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("request");
        status_json(res).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let res = self
            .http
            .post(self.url(path))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .expect("request");
        status_json(res).await
    }

    /// Creates a project deploying from a (never cloned) repository URL and starts a deployment.
    pub async fn deploy(&self, project: &str) -> (DeploymentId, BuildJob) {
        let url = format!("https://git.example.com/acme/{project}.git");
        let (status, _) = self
            .post("/api/v1/projects", json!({"name": project, "git_url": url}))
            .await;
        assert!(
            status == 201 || status == 409,
            "creating {project}: {status}"
        );
        let (status, dep) = self
            .post(
                &format!("/api/v1/projects/{project}/deployments"),
                json!({}),
            )
            .await;
        assert_eq!(status, 201, "{dep}");
        let id = DeploymentId::parse(dep["id"].as_str().expect("id")).expect("valid id");
        let job = self.job_for(&id).await;
        (id, job)
    }

    /// The job the runner got for `id`, waiting for it if needed.
    pub async fn job_for(&self, id: &DeploymentId) -> BuildJob {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let notified = self.recorded.changed.notified();
                if let Some(job) = self
                    .recorded
                    .jobs
                    .lock()
                    .expect("lock")
                    .iter()
                    .find(|j| j.deployment == *id)
                {
                    return job.clone();
                }
                notified.await;
            }
        })
        .await
        .expect("the runner got the job")
    }

    pub async fn deployment(&self, id: &DeploymentId) -> Value {
        let (status, body) = self.get(&format!("/api/v1/deployments/{id}")).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Waits until the deployment has `status`.
    pub async fn wait_status(&self, id: &DeploymentId, status: &str) -> Value {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let dep = self.deployment(id).await;
                if dep["status"] == status {
                    return dep;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("deployment {id} never became {status}"))
    }

    /// One answer of the stored log of `id`: the lines after `since`, at most `limit`.
    pub async fn stored_log(
        &self,
        id: &DeploymentId,
        since: u64,
        limit: Option<u32>,
    ) -> Vec<LogLine> {
        let mut path = format!("/api/v1/deployments/{id}/logs?since={since}");
        if let Some(limit) = limit {
            path.push_str(&format!("&limit={limit}"));
        }
        let res = self
            .http
            .get(self.url(&path))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("logs");
        assert_eq!(res.status(), 200);
        res.text()
            .await
            .expect("body")
            .lines()
            .map(|l| serde_json::from_str(l).expect("a stored line"))
            .collect()
    }

    /// Fetches `path` from the embedded proxy with `host`.
    pub async fn site(&self, host: &str, path: &str) -> reqwest::Response {
        self.http
            .get(format!("http://{}{path}", self.sites))
            .header("host", host)
            .send()
            .await
            .expect("proxy request")
    }

    /// Opens the log WebSocket of `id` from `since`.
    pub async fn follow(&self, id: &DeploymentId, since: u64) -> Follower {
        let url = format!(
            "{}/api/v1/deployments/{id}/logs/stream?since={since}",
            self.api.replacen("http", "ws", 1)
        );
        let mut req = url.into_client_request().expect("request");
        req.headers_mut().insert(
            "authorization",
            format!("Bearer {}", self.token).parse().expect("header"),
        );
        let (socket, _) = tokio_tungstenite::connect_async(req)
            .await
            .expect("websocket");
        Follower { socket }
    }
}

pub async fn status_json(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let text = res.text().await.expect("body");
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, value)
}

pub struct Follower {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Follower {
    pub async fn next(&mut self) -> Option<LogFrame> {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), self.socket.next())
                .await
                .expect("a frame in time")?;
            match msg.ok()? {
                Message::Text(t) => {
                    return Some(serde_json::from_str(t.as_str()).expect("a log frame"));
                }
                Message::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// Frames until the end frame (included), with every line's text.
    pub async fn until_end(&mut self) -> (Vec<String>, Vec<u64>, LogFrame) {
        let mut texts = Vec::new();
        let mut seqs = Vec::new();
        loop {
            match self
                .next()
                .await
                .expect("the stream ended without an end frame")
            {
                LogFrame::Lines { lines } => {
                    for l in lines {
                        seqs.push(l.seq);
                        texts.push(l.text);
                    }
                }
                LogFrame::State { .. } => {}
                end @ LogFrame::End { .. } => return (texts, seqs, end),
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}

/// Plays the builder of one job over the API.
pub struct FakeBuilder {
    pub job: BuildJob,
    http: reqwest::Client,
    sent: u64,
}

impl FakeBuilder {
    pub fn new(job: BuildJob) -> Self {
        Self {
            job,
            http: reqwest::Client::new(),
            sent: 0,
        }
    }

    fn url(&self, tail: &str) -> String {
        format!(
            "{}/api/v1/deployments/{}/{tail}",
            self.job.api_url, self.job.deployment
        )
    }

    pub async fn post_batch(&self, batch: &LogBatch) -> (u16, Value) {
        let res = self
            .http
            .post(self.url("logs"))
            .bearer_auth(&self.job.job_token)
            .json(batch)
            .send()
            .await
            .expect("logs");
        status_json(res).await
    }

    /// Sends `texts` as the next lines; returns the server's count.
    pub async fn log(&mut self, texts: &[String]) -> u64 {
        let batch = batch(self.sent, texts);
        let (status, body) = self.post_batch(&batch).await;
        assert_eq!(status, 200, "{body}");
        let ack: LogAck = serde_json::from_value(body).expect("ack");
        self.sent = ack.acked;
        ack.acked
    }

    /// Sends a report; the status and answer, which the caller checks (see [`Self::reported`]).
    #[must_use = "a report the server refused would go unnoticed"]
    pub async fn report(&self, report: BuilderReport) -> (u16, Value) {
        let res = self
            .http
            .post(self.url("report"))
            .bearer_auth(&self.job.job_token)
            .json(&report)
            .send()
            .await
            .expect("report");
        status_json(res).await
    }

    /// Sends a report the server must take (2xx).
    pub async fn reported(&self, report: BuilderReport) {
        let what = format!("{report:?}");
        let (status, body) = self.report(report).await;
        assert!((200..300).contains(&status), "{what} -> {status} {body}");
    }

    /// Uploads `files` (site path, contents) with the builder's own uploader: the files, their
    /// compressed variants and the pending manifest, with real hashes, as a build leaves them.
    pub async fn upload(&self, storage: &FsStorage, files: &[(&str, &str)]) {
        let output = tempfile::tempdir().expect("tempdir");
        for (path, body) in files {
            let file = output.path().join(path);
            if let Some(folder) = file.parent() {
                std::fs::create_dir_all(folder).expect("an output folder");
            }
            std::fs::write(&file, body).expect("an output file");
        }
        let (mut found, skipped) =
            upload::collect(output.path(), UploadLimits::default()).expect("the output listed");
        assert!(skipped.is_empty(), "the uploader skipped {skipped:?}");
        let routing = upload::take_routing(&mut found, Routing::default()).expect("rules files");
        upload::upload(
            Arc::new(storage.clone()),
            &self.job.project,
            &self.job.deployment,
            found,
            routing,
            |_, _| {},
        )
        .await
        .expect("the upload");
    }

    /// Reports the phases up to `uploading`.
    pub async fn reach_uploading(&self) {
        use scalemesh_core::Phase;
        for phase in [Phase::Fetching, Phase::Building, Phase::Uploading] {
            let (status, body) = self
                .report(BuilderReport::Phase {
                    phase,
                    progress: None,
                })
                .await;
            assert_eq!(status, 200, "{body}");
        }
    }

    /// Goes through the phases to `ready` with `files` uploaded.
    pub async fn succeed(&self, storage: &FsStorage, files: &[(&str, &str)]) {
        self.reach_uploading().await;
        self.upload(storage, files).await;
        let (status, body) = self.report(BuilderReport::Ready).await;
        assert_eq!(status, 200, "{body}");
    }
}

pub fn batch(first: u64, texts: &[String]) -> LogBatch {
    LogBatch {
        first,
        lines: texts
            .iter()
            .map(|t| NewLogLine {
                stream: LogStream::Stdout,
                text: t.clone(),
                ts: time::OffsetDateTime::now_utc(),
            })
            .collect(),
    }
}

pub fn lines(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("line {i}")).collect()
}
