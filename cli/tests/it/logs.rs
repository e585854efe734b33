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
