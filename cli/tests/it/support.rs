use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;

/// A binary of this workspace, built beside the CLI.
pub fn bin(name: &str) -> PathBuf {
    let cli = PathBuf::from(env!("CARGO_BIN_EXE_scalemesh"));
    let path = cli.parent().expect("target dir").join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the workspace first (cargo build --workspace)",
        path.display()
    );
    path
}

/// A running `scalemesh-server` with its own data directory, on free loopback ports.
pub struct Stack {
    pub api: String,
    pub sites: SocketAddr,
    pub data: tempfile::TempDir,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    env: Vec<(String, String)>,
}

impl Stack {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts the server with extra flags, and returns once it is listening.
    pub fn start_with(flags: &[&str]) -> Self {
        Self::start_with_env(flags, &[])
    }

    /// Starts the server with extra flags and environment variables.
    pub fn start_with_env(flags: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_in(tempfile::tempdir().expect("tempdir"), flags, env)
    }

    /// [`Stack::start_with_env`] in `data`, whose `data` folder holds the server's data.
    pub fn start_in(data: tempfile::TempDir, flags: &[&str], env: &[(&str, &str)]) -> Self {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let (child, api, sites, log) = launch(data.path(), flags, &env);
        Self {
            api,
            sites,
            data,
            child,
            log,
            env,
        }
    }

    /// Kills the server with SIGKILL, as a crash would, and starts a new one on the same data.
    pub fn crash_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, api, sites, log) = launch(self.data.path(), &[], &self.env);
        self.child = child;
        self.api = api;
        self.sites = sites;
        self.log = log;
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data.path().join("data")
    }

    /// `scalemesh <args>` against this server, as a CI job would run it.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_at(&self.api, args)
    }

    pub fn cli_at(&self, api: &str, args: &[&str]) -> Output {
        self.cli_command(api, args)
            .output()
            .expect("scalemesh runs")
    }

    pub fn cli_command(&self, api: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin("scalemesh"));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.data.path())
            .env("CI", "true")
            .env("SCALEMESH_API_URL", api)
            .env("SCALEMESH_DATA_DIR", self.data_dir())
            .env("SCALEMESH_CONFIG", self.data.path().join("no-config.toml"))
            .stdin(Stdio::null());
        cmd
    }

    /// GET `path` from the proxy with the given `Host`.
    pub async fn site(&self, host: &str, path: &str) -> reqwest::Response {
        reqwest::Client::new()
            .get(format!("http://{}{path}", self.sites))
            .header("host", host)
            .send()
            .await
            .expect("proxy answers")
    }

    /// GET `path` from the proxy exactly as written (an HTTP client would remove `..` and
    /// `%2e%2e` before sending): the status and the body.
    pub fn site_raw(&self, host: &str, path: &str) -> (u16, String) {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(self.sites).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .expect("send");
        let mut bytes = Vec::new();
        s.read_to_end(&mut bytes).expect("read");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
        (status, body)
    }

    pub fn server_log(&self) -> String {
        self.log.lock().expect("lock").join("\n")
    }

    pub fn token(&self) -> String {
        std::fs::read_to_string(self.data_dir().join("admin-token"))
            .expect("token")
            .trim()
            .to_owned()
    }

    /// GET an API path as JSON.
    pub async fn api_get(&self, path: &str) -> serde_json::Value {
        reqwest::Client::new()
            .get(format!("{}{path}", self.api))
            .bearer_auth(self.token())
            .send()
            .await
            .expect("api")
            .json()
            .await
            .expect("json")
    }
}

/// Spawns `scalemesh-server` on `data` and waits for the line saying where it listens.
fn launch(
    data: &Path,
    flags: &[&str],
    env: &[(String, String)],
) -> (Child, String, SocketAddr, Arc<Mutex<Vec<String>>>) {
    let mut child = Command::new(bin("scalemesh-server"))
        .args(flags)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", data)
        .env("SCALEMESH_DATA_DIR", data.join("data"))
        .env("SCALEMESH_LISTEN", "127.0.0.1:0")
        .env("SCALEMESH_PROXY_LISTEN", "127.0.0.1:0")
        .env("SCALEMESH_BUILDER_BIN", bin("scalemesh-builder"))
        // The tests serve their repositories on loopback, which builds may not reach otherwise.
        .env("SCALEMESH_ALLOW_PRIVATE_GIT_HOSTS", "127.0.0.1")
        .env("RUST_LOG", "scalemesh_server=info")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("scalemesh-server starts");
    let stderr = child.stderr.take().expect("stderr");
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let log = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("scalemesh-server is up") {
                    let _ = tx.send(line.clone());
                }
                log.lock().expect("lock").push(line);
            }
        });
    }
    let up = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| {
            panic!(
                "scalemesh-server did not start:\n{}",
                log.lock().expect("lock").join("\n")
            )
        });
    let field = |name: &str| -> String {
        let start = up.find(&format!("{name}=")).expect("field") + name.len() + 1;
        up[start..]
            .split_whitespace()
            .next()
            .expect("value")
            .to_owned()
    };
    let api = format!("http://{}", field("api"));
    let sites = field("sites").parse().expect("sites address");
    (child, api, sites, log)
}

impl Drop for Stack {
    fn drop(&mut self) {
        // A failing test shows what the server said: the tail of its log.
        if std::thread::panicking() {
            let log = self.server_log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            eprintln!("--- the server's log, last lines ---\n{}", tail.join("\n"));
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap_or(0)),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

/// Starts `cmd` with its stderr read line by line as it comes: the child and the lines.
pub fn spawn_reading_stderr(mut cmd: Command) -> (Child, std::sync::mpsc::Receiver<String>) {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    let pipe = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// `len` bytes that do not compress (xorshift from `seed`), as media files are.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Git repositories served over `git://` on a loopback port: each connection is handed to
/// `git daemon --inetd`.
pub struct GitServer {
    pub root: tempfile::TempDir,
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl GitServer {
    pub async fn start() -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let base = root.path().to_path_buf();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let base = base.clone();
                tokio::spawn(async move {
                    let mut child = tokio::process::Command::new("git")
                        .args(["daemon", "--inetd", "--export-all", "--informative-errors"])
                        .arg(format!("--base-path={}", base.display()))
                        .arg(&base)
                        .stdin(Stdio::piped())
                        .stdout(Stdio::piped())
                        .stderr(Stdio::null())
                        .kill_on_drop(true)
                        .spawn()
                        .expect("git daemon");
                    let (mut read, mut write) = socket.into_split();
                    let mut stdin = child.stdin.take().expect("stdin");
                    let mut stdout = child.stdout.take().expect("stdout");
                    let up = tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut read, &mut stdin).await;
                    });
                    let _ = tokio::io::copy(&mut stdout, &mut write).await;
                    up.abort();
                    let _ = child.wait().await;
                });
            }
        });
        Self { root, addr, task }
    }

    /// A new repository `name` with `files` committed on `main`.
    pub fn repo(&self, name: &str, files: &[(&str, &str)]) -> Repo {
        let path = self.root.path().join(name);
        std::fs::create_dir_all(&path).expect("mkdir");
        git(&path, &["init", "-q", "-b", "main"]);
        let repo = Repo {
            path,
            url: format!("git://{}/{name}", self.addr),
        };
        repo.commit(files, "first");
        repo
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub struct Repo {
    pub path: PathBuf,
    pub url: String,
}

impl Repo {
    /// Writes `files` (an empty body deletes the file) and commits them.
    pub fn commit(&self, files: &[(&str, &str)], message: &str) {
        for (rel, body) in files {
            let p = self.path.join(rel);
            if body.is_empty() {
                let _ = std::fs::remove_file(&p);
                continue;
            }
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, body).expect("write");
        }
        git(&self.path, &["add", "-A"]);
        git(
            &self.path,
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.com",
                "commit",
                "-q",
                "--allow-empty",
                "-m",
                message,
            ],
        );
    }

    pub fn branch(&self, name: &str) {
        git(&self.path, &["branch", name]);
    }
}

pub fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .status()
        .expect("git");
    assert!(status.success(), "git {args:?} failed");
}

/// A TCP relay in front of the API that cuts its first `cuts` connections abruptly once
/// `after` bytes went back to the client, the way a flaky network drops a WebSocket; and cuts
/// every open connection when told to (`cut_open`).
pub struct Relay {
    pub url: String,
    pub cut: Arc<AtomicUsize>,
    cut_open: tokio::sync::watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    pub async fn start(upstream: &str, cuts: usize, after: usize) -> Self {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .parse()
            .expect("upstream");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let cut = Arc::new(AtomicUsize::new(0));
        let counter = cut.clone();
        let (cut_open, cuts_ordered) = tokio::sync::watch::channel(0u64);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                    continue;
                };
                let counter = counter.clone();
                let mut ordered = cuts_ordered.clone();
                ordered.mark_unchanged();
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let up = tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut cr, &mut sw).await;
                    });
                    let mut buf = vec![0u8; 8192];
                    let mut sent = 0usize;
                    let mut big = false;
                    loop {
                        let n = tokio::select! {
                            read = sr.read(&mut buf) => match read {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            },
                            _ = ordered.changed() => break,
                        };
                        if cw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        sent += n;
                        // Only long-lived (streaming) connections are cut.
                        if sent > after && !big {
                            big = true;
                            if counter.fetch_add(1, Ordering::SeqCst) < cuts {
                                break;
                            }
                        }
                    }
                    up.abort();
                });
            }
        });
        Self {
            url,
            cut,
            cut_open,
            task,
        }
    }

    /// Cuts every connection open now, as a network outage would; later ones pass.
    pub fn cut_open(&self) {
        self.cut_open.send_modify(|n| *n += 1);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Processes whose command line mentions `marker`.
pub fn processes_with(marker: &str) -> Vec<i32> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let zombie = stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z'));
        if !zombie && String::from_utf8_lossy(&cmdline).contains(marker) {
            found.push(pid);
        }
    }
    found
}

/// Waits up to `limit` for `check` to hold.
pub async fn eventually(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < limit, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Fails the test unless bubblewrap is installed.
pub fn require_bwrap() {
    assert!(
        Command::new("bwrap").arg("--version").output().is_ok(),
        "this test needs bubblewrap: apt-get install -y bubblewrap"
    );
}

/// A random marker to find a test's processes by.
pub fn marker(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("sm-{tag}-{nanos}-{}", std::process::id())
}

/// A Node.js `package.json` whose build runs `build.js`.
pub const PACKAGE_JSON: &str =
    r#"{ "name": "fixture", "private": true, "scripts": { "build": "node build.js" } }"#;

/// Git repositories over smart HTTP (`git http-backend` as a CGI program) behind HTTP basic
/// authentication, on a loopback port.
pub struct GitHttpServer {
    pub root: tempfile::TempDir,
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl GitHttpServer {
    pub async fn start(user: &str, password: &str) -> Self {
        use axum::body::Body;
        use axum::http::{Request, Response, StatusCode};

        let root = tempfile::tempdir().expect("tempdir");
        let base = root.path().to_path_buf();
        let expected = format!("{user}:{password}");
        let handler = move |req: Request<Body>| {
            let base = base.clone();
            let expected = expected.clone();
            async move {
                let authorized = req
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Basic "))
                    .and_then(|b| decode_base64(b.trim()))
                    .is_some_and(|creds| creds == expected.as_bytes());
                if !authorized {
                    return Response::builder()
                        .status(StatusCode::UNAUTHORIZED)
                        .header("www-authenticate", "Basic realm=\"git\"")
                        .body(Body::empty())
                        .expect("response");
                }
                cgi(&base, req).await
            }
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = axum::Router::new().fallback(handler);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { root, addr, task }
    }

    /// A new repository `name` with `files` committed on `main`.
    pub fn repo(&self, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let path = self.root.path().join(name);
        std::fs::create_dir_all(&path).expect("mkdir");
        git(&path, &["init", "-q", "-b", "main"]);
        Repo {
            path: path.clone(),
            url: String::new(),
        }
        .commit(files, "first");
        path
    }
}

impl Drop for GitHttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Runs `git http-backend` for one request, the CGI way.
async fn cgi(
    base: &Path,
    req: axum::http::Request<axum::body::Body>,
) -> axum::http::Response<axum::body::Body> {
    use axum::body::Body;
    use axum::http::Response;
    use tokio::io::AsyncWriteExt;

    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .expect("request body");
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let mut child = tokio::process::Command::new("git")
        .arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", base)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("PATH_INFO", parts.uri.path())
        .env("QUERY_STRING", parts.uri.query().unwrap_or(""))
        .env("CONTENT_TYPE", header("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("GIT_PROTOCOL", header("git-protocol"))
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("git http-backend");
    let mut stdin = child.stdin.take().expect("stdin");
    let feed = tokio::spawn(async move {
        let _ = stdin.write_all(&body).await;
    });
    let out = child
        .wait_with_output()
        .await
        .expect("git http-backend output");
    let _ = feed.await;
    let split = out
        .stdout
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| {
            out.stdout
                .windows(2)
                .position(|w| w == b"\n\n")
                .map(|i| (i, 2))
        })
        .expect("CGI headers");
    let head = String::from_utf8_lossy(&out.stdout[..split.0]).into_owned();
    let mut res = Response::builder();
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.eq_ignore_ascii_case("status") {
            let code: u16 = value
                .split_whitespace()
                .next()
                .and_then(|c| c.parse().ok())
                .unwrap_or(200);
            res = res.status(code);
        } else {
            res = res.header(name.trim(), value.trim());
        }
    }
    res.body(Body::from(out.stdout[split.0 + split.1..].to_vec()))
        .expect("response")
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes().filter(|c| *c != b'=') {
        let v = ALPHABET.iter().position(|a| *a == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}
