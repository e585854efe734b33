//! AWS on loopback for tests: `moto_server` (S3, ECS and EC2 on one port) started by the test,
//! driven with the AWS CLI, and a proxy in front of it that can make S3 writes fail.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Credentials moto accepts; builders in tests get them as an ECS task role would hand them out.
pub const AWS_ENV: [(&str, &str); 4] = [
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_REGION", "us-east-1"),
    ("AWS_DEFAULT_REGION", "us-east-1"),
];

pub const BUCKET: &str = "sites";

pub struct Moto {
    pub endpoint: String,
    child: Child,
}

impl Moto {
    /// Starts `moto_server` on a free loopback port, with a bucket, and waits until it answers.
    pub fn start() -> Self {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            probe.local_addr().expect("addr").port()
        };
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server runs (pip install 'moto[server]')");
        let moto = Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            child,
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "moto_server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        moto.aws(&["s3api", "create-bucket", "--bucket", BUCKET]);
        // By default moto moves a task one step towards STOPPED on every DescribeTasks, so a
        // server that polls while a slow builder runs would see it stop. A task runs until it
        // is stopped, as in ECS.
        moto.set_transition(
            r#"{"model_name": "ecs::task", "transition": {"progression": "manual", "times": 1000000}}"#,
        );
        moto
    }

    /// Sets how a kind of moto resource moves through its states.
    fn set_transition(&self, body: &str) {
        use std::io::{Read, Write};
        let addr = self.endpoint.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(addr).expect("connect to moto");
        write!(
            s,
            "POST /moto-api/state-manager/set-transition HTTP/1.1\r\nHost: {addr}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("send");
        let mut answer = String::new();
        s.read_to_string(&mut answer).expect("read");
        assert!(
            answer.starts_with("HTTP/1.1 20"),
            "set-transition: {answer}"
        );
    }

    /// `aws <args>` against this server, its JSON answer.
    pub fn aws(&self, args: &[&str]) -> Value {
        let out = Command::new("aws")
            .args(["--endpoint-url", &self.endpoint, "--output", "json"])
            .args(args)
            .envs(AWS_ENV)
            .stdin(Stdio::null())
            .output()
            .expect("the AWS CLI runs (pip install awscli)");
        assert!(
            out.status.success(),
            "aws {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if out.stdout.iter().all(u8::is_ascii_whitespace) {
            return Value::Null;
        }
        serde_json::from_slice(&out.stdout).expect("JSON from the AWS CLI")
    }

    /// A cluster, a Fargate task definition with a `builder` container, and the default VPC's
    /// first subnet and security group.
    pub fn ecs(&self) -> Ecs {
        self.aws(&["ecs", "create-cluster", "--cluster-name", "builds"]);
        self.aws(&[
            "ecs",
            "register-task-definition",
            "--family",
            "builder",
            "--network-mode",
            "awsvpc",
            "--requires-compatibilities",
            "FARGATE",
            "--cpu",
            "1024",
            "--memory",
            "2048",
            "--container-definitions",
            r#"[{"name":"builder","image":"scalemesh/builder","memory":2048,"essential":true}]"#,
        ]);
        let subnets = self.aws(&["ec2", "describe-subnets"]);
        let groups = self.aws(&["ec2", "describe-security-groups"]);
        Ecs {
            subnet: subnets["Subnets"][0]["SubnetId"]
                .as_str()
                .expect("a subnet")
                .to_owned(),
            security_group: groups["SecurityGroups"][0]["GroupId"]
                .as_str()
                .expect("a group")
                .to_owned(),
        }
    }

    /// The task ECS runs for `arn`, as DescribeTasks tells it.
    pub fn task(&self, arn: &str) -> Value {
        let tasks = self.aws(&[
            "ecs",
            "describe-tasks",
            "--cluster",
            "builds",
            "--tasks",
            arn,
        ]);
        tasks["tasks"][0].clone()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Ecs {
    pub subnet: String,
    pub security_group: String,
}

/// The container environment a task was started with: its overrides, name → value.
pub fn task_environment(task: &Value) -> Vec<(String, String)> {
    task["overrides"]["containerOverrides"][0]["environment"]
        .as_array()
        .expect("environment overrides")
        .iter()
        .map(|kv| {
            (
                kv["name"].as_str().expect("name").to_owned(),
                kv["value"].as_str().expect("value").to_owned(),
            )
        })
        .collect()
}

/// An HTTP proxy in front of moto. It can answer S3 writes with `503 SlowDown` while `failing`
/// is set (reads always pass), and it mends one known moto deviation from the ECS API that the
/// (strict) Rust SDK refuses: a task's container `cpu` and `memory` come as JSON numbers where
/// ECS has strings. (moto's other one, the root element of a completed multipart upload, is
/// left as it is: the storage layer copes with it.)
pub struct AwsProxy {
    pub endpoint: String,
    pub failing: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl AwsProxy {
    pub async fn start(upstream: &str) -> Self {
        use axum::body::Body;
        use axum::http::{Request, Response, StatusCode};

        let failing = Arc::new(AtomicBool::new(false));
        let upstream = upstream.to_owned();
        let client = reqwest::Client::new();
        let flag = failing.clone();
        let handler = move |req: Request<Body>| {
            let (client, upstream, flag) = (client.clone(), upstream.clone(), flag.clone());
            async move {
                let ecs = req.headers().get("x-amz-target").is_some();
                let write = matches!(req.method().as_str(), "PUT" | "POST" | "DELETE");
                if !ecs && write && flag.load(Ordering::SeqCst) {
                    return Response::builder()
                        .status(StatusCode::SERVICE_UNAVAILABLE)
                        .header("content-type", "application/xml")
                        .body(Body::from(
                            "<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>injected failure</Message></Error>",
                        ))
                        .expect("response");
                }
                let head = req.method() == axum::http::Method::HEAD;
                let (parts, body) = req.into_parts();
                let body = axum::body::to_bytes(body, 256 * 1024 * 1024)
                    .await
                    .expect("body");
                let path = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/");
                let mut forward = client
                    .request(parts.method.clone(), format!("{upstream}{path}"))
                    .body(body);
                for (name, value) in &parts.headers {
                    if name != "host" && name != "content-length" {
                        forward = forward.header(name, value);
                    }
                }
                let answer = forward.send().await.expect("upstream");
                let mut res = Response::builder().status(answer.status().as_u16());
                for (name, value) in answer.headers() {
                    if name != "transfer-encoding" && (head || name != "content-length") {
                        res = res.header(name, value);
                    }
                }
                let mut bytes = answer.bytes().await.expect("upstream body").to_vec();
                if ecs && let Ok(mut json) = serde_json::from_slice::<Value>(&bytes) {
                    mend_ecs(&mut json);
                    bytes = serde_json::to_vec(&json).expect("json");
                }
                res.body(Body::from(bytes)).expect("response")
            }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, axum::Router::new().fallback(handler)).await;
        });
        Self {
            endpoint: format!("http://{addr}"),
            failing,
            task,
        }
    }
}

/// Container `cpu`/`memory`/`memoryReservation` numbers become the strings the API specifies.
fn mend_ecs(json: &mut Value) {
    let Some(tasks) = json.get_mut("tasks").and_then(Value::as_array_mut) else {
        return;
    };
    for task in tasks {
        let Some(containers) = task.get_mut("containers").and_then(Value::as_array_mut) else {
            continue;
        };
        for container in containers {
            for field in ["cpu", "memory", "memoryReservation"] {
                if let Some(n) = container
                    .get(field)
                    .filter(|v| v.is_number())
                    .map(ToString::to_string)
                {
                    container[field] = Value::String(n);
                }
            }
        }
    }
}

impl Drop for AwsProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
