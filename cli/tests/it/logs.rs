//! Build logs end to end: every line once and in order, live, across dropped connections, and
//! printed safely.

use crate::support::{GitServer, PACKAGE_JSON, Relay, Stack, stderr, stdout};

/// A build that prints `line 0` … `line 9999` over about a second and a half.
const TEN_THOUSAND_LINES: &str = r#"
let i = 0;
function chunk() {
  let out = "";
  for (let n = 0; n < 100 && i < 10000; n++, i++) out += "line " + i + "\n";
  process.stdout.write(out);
  if (i < 10000) setTimeout(chunk, 15);
  else {
    require("fs").mkdirSync("dist", { recursive: true });
    require("fs").writeFileSync("dist/index.html", "done");
  }
}
chunk();
"#;

/// The numbered lines of a log, as `logs` prints them or under `deploy`'s gutter.
fn numbered(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.strip_prefix("│ ").unwrap_or(l))
        .filter(|l| l.starts_with("line "))
        .map(str::to_owned)
        .collect()
}

fn expected() -> Vec<String> {
    (0..10_000).map(|i| format!("line {i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_gets_ten_thousand_lines_once_each_across_dropped_connections() {
    let git = GitServer::start().await;
    let repo = git.repo(
        "chatty",
        &[
            ("package.json", PACKAGE_JSON),
            ("build.js", TEN_THOUSAND_LINES),
        ],
    );
    let stack = Stack::start();
    // Every connection that streams more than 40 KB is cut, three times over.
    let relay = Relay::start(&stack.api, 3, 40 * 1024).await;

    let out = stack.cli(&["deploy", &repo.url, "--no-wait", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let dep: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let id = dep["id"].as_str().expect("id").to_owned();

    let out = stack.cli_at(&relay.url, &["logs", &id, "--follow"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        stderr(&out),
        stack.server_log()
    );
    assert!(
        relay.cut.load(std::sync::atomic::Ordering::SeqCst) >= 3,
        "the stream was really cut"
    );
    assert_eq!(
        numbered(&stdout(&out)),
        expected(),
        "each line exactly once, in order"
    );
    assert!(stderr(&out).contains("is ready"), "{}", stderr(&out));

    // The stored log replays the same way, by project name too.
    let out = stack.cli(&["logs", "chatty"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(numbered(&stdout(&out)), expected());
    let first = stdout(&out)
        .lines()
        .next()
        .expect("a first line")
        .to_owned();
    assert!(first.starts_with("Cloning git://"), "{first}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_streams_the_build_log_live() {
    let git = GitServer::start().await;
    let repo = git.repo(
        "chatty",
        &[
            ("package.json", PACKAGE_JSON),
            ("build.js", TEN_THOUSAND_LINES),
        ],
    );
    let stack = Stack::start();
    let out = stack.cli(&["deploy", &repo.url]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(numbered(&stderr(&out)), expected());
}

/// A line reaches the terminal while the build that printed it still runs: when the CLI shows
/// it, the API still says `building`. (A pipeline that delivered lines only at the end would
/// show it with the deployment ready.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_reaches_the_terminal_while_its_build_runs() {
    let git = GitServer::start().await;
    let build = "console.log('first line');\n\
        setTimeout(() => {\n\
          require('fs').mkdirSync('dist', { recursive: true });\n\
          require('fs').writeFileSync('dist/index.html', 'ok');\n\
          console.log('last line');\n\
        }, 6000);\n";
    let repo = git.repo(
        "live-lines",
        &[("package.json", PACKAGE_JSON), ("build.js", build)],
    );
    let stack = Stack::start();
    let (mut child, lines) =
        crate::support::spawn_reading_stderr(stack.cli_command(&stack.api, &["deploy", &repo.url]));
    let mut seen = Vec::new();
    let shown = loop {
        match lines.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok(line) => {
                let first = line.contains("first line");
                seen.push(line);
                if first {
                    break true;
                }
            }
            Err(_) => break false,
        }
    };
    let deps = stack
        .api_get("/api/v1/projects/live-lines/deployments")
        .await;
    let status = deps["deployments"][0]["status"].clone();
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("exit");
    seen.extend(lines.iter());
    assert!(shown, "the line never came: {seen:?}");
    assert_eq!(
        status, "building",
        "the line came only after the build: {seen:?}"
    );
    assert!(exit.success(), "{seen:?}");
    assert!(seen.iter().any(|l| l.contains("last line")), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_text_cannot_drive_the_terminal() {
    let git = GitServer::start().await;
    let build = r#"
console.log("title \x1b]0;pwned\x07 clear \x1b[2J\x1b[1;1H fake prompt");
console.log("html <img src=x onerror=alert(1)> \x1b[31mred\x1b[0m");
console.log("carriage\rreturn");
console.log("==> Live in 0.1s");
console.log("\x1b[32m✓\x1b[0m Live in 0.1s spoof");
console.log("Live at http://spoof.example");
require("fs").mkdirSync("dist", { recursive: true });
require("fs").writeFileSync("dist/index.html", "ok");
"#;
    let repo = git.repo(
        "hostile",
        &[("package.json", PACKAGE_JSON), ("build.js", build)],
    );
    let stack = Stack::start();
    let out = stack.cli(&["deploy", &repo.url]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        !err.contains('\u{1b}') && !err.contains('\u{7}') && !err.contains('\r'),
        "{err:?}"
    );
    assert!(
        err.contains("title ^[]0;pwned^G clear ^[[2J^[[1;1H fake prompt"),
        "{err}"
    );
    assert!(
        err.contains("html <img src=x onerror=alert(1)> red"),
        "colours are dropped off a terminal: {err}"
    );
    assert!(err.contains("carriage^Mreturn"), "{err}");
    // Build output cannot pass for the CLI's own lines.
    for line in err.lines().filter(|l| l.contains("spoof")) {
        assert!(line.starts_with("│ "), "{line:?}");
    }
    assert_eq!(
        err.lines().filter(|l| l.starts_with("==> Live in")).count(),
        1,
        "{err}"
    );
    let out = stack.cli(&["logs", "hostile"]);
    assert!(!stdout(&out).contains('\u{1b}'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_of_unknown_things_explain_themselves() {
    let stack = Stack::start();
    for target in ["abcdefghijkl", "no-such-project", "Not Valid"] {
        let out = stack.cli(&["logs", target]);
        assert_eq!(out.status.code(), Some(1), "{target}");
        assert!(stderr(&out).contains("hint:"), "{}", stderr(&out));
    }
}

/// The server's resident memory, in bytes.
fn resident(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

/// 300 followers that never read, of a deployment with a 64 MB log: the server holds a frame
/// for each at most, not their backlog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_that_never_read_cost_little_memory() {
    use tokio::io::AsyncWriteExt;

    let git = GitServer::start().await;
    // 200,000 lines of 330 bytes: the log's caps, in lines and in bytes.
    let build = r#"
const line = "x".repeat(320);
let out = [];
for (let i = 0; i < 200000; i++) {
  out.push(String(i).padStart(8, "0") + " " + line);
  if (out.length === 5000) { process.stdout.write(out.join("\n") + "\n"); out = []; }
}
require("fs").mkdirSync("dist", { recursive: true });
require("fs").writeFileSync("dist/index.html", "big log");
"#;
    let repo = git.repo(
        "biglog",
        &[("package.json", PACKAGE_JSON), ("build.js", build)],
    );
    let stack = Stack::start();
    let out = stack.cli(&["deploy", &repo.url, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let dep: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let id = dep["id"].as_str().expect("id").to_owned();
    let before = resident(stack.pid());

    let addr = stack.api.trim_start_matches("http://").to_owned();
    let request = format!(
        "GET /api/v1/deployments/{id}/logs/stream?since=0 HTTP/1.1\r\nHost: {addr}\r\n\
         Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer {}\r\n\r\n",
        stack.token()
    );
    let mut idle = Vec::new();
    for _ in 0..300 {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        // Small receive buffers, so the test's own kernel memory stays small too.
        socket.set_recv_buffer_size(64 * 1024).expect("rcvbuf");
        let mut stream = socket
            .connect(addr.parse().expect("addr"))
            .await
            .expect("connect");
        stream.write_all(request.as_bytes()).await.expect("write");
        idle.push(stream);
    }
    // Let every follower push until its socket is full.
    tokio::time::sleep(std::time::Duration::from_secs(8)).await;
    let during = resident(stack.pid());
    let health = reqwest::get(format!("{}/health", stack.api))
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
    eprintln!(
        "server resident memory: {} MB before, {} MB with 300 idle followers",
        before / 1_000_000,
        during / 1_000_000
    );
    assert!(during < 300_000_000, "{} MB", during / 1_000_000);
    drop(idle);
}

/// On SIGTERM, followers are told the server is going away (and reconnect), not cut off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_server_tells_its_followers() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let git = GitServer::start().await;
    let repo = git.repo(
        "stopping",
        &[
            ("package.json", PACKAGE_JSON),
            (
                "build.js",
                "console.log('started'); setTimeout(() => {}, 60000);\n",
            ),
        ],
    );
    let stack = Stack::start();
    let out = stack.cli(&["deploy", &repo.url, "--no-wait", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let dep: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let url = format!(
        "{}/api/v1/deployments/{}/logs/stream?since=0",
        stack.api.replacen("http", "ws", 1),
        dep["id"].as_str().expect("id")
    );
    let mut req = url.into_client_request().expect("request");
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", stack.token()).parse().expect("header"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("websocket");
    let first = socket.next().await.expect("a frame").expect("ok");
    assert!(matches!(first, Message::Text(_)), "{first:?}");
    let pid = nix::unistd::Pid::from_raw(i32::try_from(stack.pid()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    let close = loop {
        match tokio::time::timeout(std::time::Duration::from_secs(20), socket.next())
            .await
            .expect("the server says something")
        {
            Some(Ok(Message::Close(frame))) => break frame.expect("a close frame"),
            Some(Ok(_)) => {}
            other => panic!("no close frame: {other:?}"),
        }
    };
    assert_eq!(u16::from(close.code), 1001, "{close:?}");
    assert!(close.reason.contains("restarting"), "{close:?}");
}
