//! What a newcomer trips on in their first hour, and what a script expects of the CLI.

use crate::support::{GitServer, Stack, stderr, stdout};

/// A deploy refused for its source leaves nothing behind, and says what was wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_deploy_creates_no_project() {
    let stack = Stack::start();
    let scratch = tempfile::tempdir().expect("tempdir");
    let file = scratch.path().join("README.md");
    std::fs::write(&file, "# not a site").expect("write");
    let file = file.to_str().expect("utf-8");
    let missing = scratch.path().join("nonexistent");
    let missing = missing.to_str().expect("utf-8");
    let cases: &[(&[&str], &str, &str)] = &[
        (&["deploy", file], "is not a folder", "scalemesh deploy ."),
        (
            &["deploy", missing, "--project", "x1"],
            "no such folder",
            "existing folder",
        ),
        (
            &["deploy", "./nonexistent"],
            "no such folder: ./nonexistent",
            "existing folder",
        ),
        (
            &["deploy", "~/sites/nope"],
            "no such folder",
            "existing folder",
        ),
        (
            &["deploy", "github.com/acme/site"],
            "no such folder: github.com/acme/site",
            "did you mean https://github.com/acme/site",
        ),
        // Refused by the server once the project would exist: it is removed again.
        (
            &[
                "deploy",
                "http://169.254.169.254/latest.git",
                "--project",
                "x2",
            ],
            "169.254.169.254",
            "",
        ),
    ];
    for (args, says, hint) in cases {
        let out = stack
            .cli_command(&stack.api, args)
            .current_dir(scratch.path())
            .output()
            .expect("runs");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(err.contains(hint), "{args:?}: {err}");
    }
    assert_no_projects(&stack, "nothing was created").await;
}

/// `projects rm` asks on a terminal and needs `--yes` without one; `rm` is the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projects_can_be_removed() {
    let stack = Stack::start();
    let git = GitServer::start().await;
    let repo = git.repo("gone-soon", &[("index.html", "<h1>bye</h1>")]);
    let out = stack.cli(&["deploy", &repo.url]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stack.site("gone-soon.localhost", "/").await.status(), 200);

    let out = stack.cli(&["projects", "rm", "gone-soon"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--yes"), "{}", stderr(&out));
    assert_eq!(
        stack.site("gone-soon.localhost", "/").await.status(),
        200,
        "still there"
    );

    let out = stack.cli(&["rm", "gone-soon", "--yes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stack.site("gone-soon.localhost", "/").await.status(), 404);
    let out = stack.cli(&["projects", "rm", "gone-soon", "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
}

/// Every listing's `--json` is one document with the documented fields; an error under
/// `--json` is one document too, with the same exit code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_is_one_document() {
    let stack = Stack::start();
    let git = GitServer::start().await;
    let repo = git.repo("listed", &[("index.html", "<h1>listed</h1>")]);
    let out = stack.cli(&["deploy", &repo.url]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = stack.cli(&["domains", "add", "listed", "www.listed.test"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // A variable, and a deleted project's held name, so those listings have rows.
    let res = reqwest::Client::new()
        .put(format!("{}/api/v1/projects/listed/env/API_URL", stack.api))
        .bearer_auth(stack.token())
        .json(&serde_json::json!({"value": "https://api.example.com"}))
        .send()
        .await
        .expect("api");
    assert!(res.status().is_success(), "{}", res.status());
    let site = tempfile::tempdir().expect("tempdir");
    std::fs::write(site.path().join("index.html"), "<h1>gone</h1>").expect("write");
    let folder = site.path().to_str().expect("utf-8");
    let out = stack.cli(&["deploy", folder, "--project", "gone"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = stack.cli(&["projects", "rm", "gone", "--yes"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let listings: &[(&[&str], &str, &[&str])] = &[
        (
            &["projects", "--json"],
            "projects",
            &["name", "url", "production_deployment", "role"],
        ),
        (&["projects", "ls", "--json"], "projects", &["name"]),
        (
            &["deployments", "ls", "listed", "--json"],
            "deployments",
            &["id", "status", "production", "url", "created_at"],
        ),
        (
            &["domains", "ls", "listed", "--json"],
            "domains",
            &["host", "project", "url"],
        ),
        (
            &["tokens", "ls", "--json"],
            "tokens",
            &["id", "name", "role", "expires_at"],
        ),
        (&["users", "ls", "--json"], "users", &["name", "admin"]),
        (
            &["members", "ls", "listed", "--json"],
            "members",
            &["user", "role"],
        ),
        (
            &["env", "ls", "listed", "--json"],
            "env",
            &["key", "target", "sensitive", "value", "updated_at"],
        ),
        (
            &["holds", "ls", "--json"],
            "holds",
            &["name", "kind", "held_for", "until"],
        ),
    ];
    for (args, key, fields) in listings {
        let out = stack.cli(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let doc: serde_json::Value = serde_json::from_str(&stdout(&out))
            .unwrap_or_else(|e| panic!("{args:?}: not one JSON document ({e}): {}", stdout(&out)));
        let items = doc[key]
            .as_array()
            .unwrap_or_else(|| panic!("{args:?}: no {key}: {doc}"));
        assert!(!items.is_empty(), "{args:?}: nothing listed: {doc}");
        for item in items {
            for field in *fields {
                assert!(
                    item.get(*field).is_some(),
                    "{args:?}: {field} missing in {item}"
                );
            }
        }
    }
    let whoami: serde_json::Value =
        serde_json::from_str(&stdout(&stack.cli(&["whoami", "--json"]))).expect("json");
    assert_eq!(whoami["user"]["name"], "admin");

    for args in [
        &["deployments", "ls", "no-such-project", "--json"][..],
        &["members", "ls", "no-such-project", "--json"][..],
        &["domains", "ls", "no-such-project", "--json"][..],
    ] {
        let out = stack.cli(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let doc: serde_json::Value = serde_json::from_str(&stdout(&out))
            .unwrap_or_else(|e| panic!("{args:?}: the error is not JSON ({e}): {}", stdout(&out)));
        assert!(doc["error"]["message"].is_string(), "{args:?}: {doc}");
        assert_eq!(doc["error"]["exit_code"], 1);
    }
}

/// After a folder's first deploy the folder remembers its project: `deploy`, `logs`,
/// `deployments ls` and `open` need no project there, and `.scalemesh` is never uploaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployed_folder_remembers_its_project() {
    let stack = Stack::start();
    let site = tempfile::tempdir().expect("tempdir");
    std::fs::write(site.path().join("index.html"), "<h1>one</h1>").expect("write");
    let out = stack
        .cli_command(&stack.api, &["deploy", ".", "--project", "linked"])
        .current_dir(site.path())
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let link: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(site.path().join(".scalemesh/project.json")).expect("link"),
    )
    .expect("json");
    assert_eq!(link["project"], "linked");

    // A second deploy from a subfolder of it goes to the same project, without --project.
    std::fs::write(site.path().join("index.html"), "<h1>two</h1>").expect("write");
    let sub = site.path().join("assets");
    std::fs::create_dir_all(&sub).expect("mkdir");
    let out = stack
        .cli_command(&stack.api, &["deploy", ".."])
        .current_dir(&sub)
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let body = stack
        .site("linked.localhost", "/")
        .await
        .text()
        .await
        .expect("body");
    assert_eq!(body, "<h1>two</h1>");
    assert_eq!(
        stack
            .site("linked.localhost", "/.scalemesh/project.json")
            .await
            .status(),
        404,
        "the link is not uploaded"
    );

    let here = |args: &[&str]| {
        stack
            .cli_command(&stack.api, args)
            .current_dir(site.path())
            .output()
            .expect("runs")
    };
    let out = here(&["deployments", "ls", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    let deployments = doc["deployments"].as_array().expect("list");
    assert_eq!(deployments.len(), 2);
    let latest = deployments[0]["id"].as_str().expect("id").to_owned();

    let out = here(&["logs"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).is_empty(), "the latest build's log");

    let out = here(&["open"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 1, "{}", stdout(&out));
    assert!(
        stdout(&out).contains("linked.localhost"),
        "{}",
        stdout(&out)
    );

    let out = here(&["inspect", &latest, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let dep: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(dep["id"], latest.as_str());
    assert_eq!(dep["production"], true);
    let out = here(&["inspect", &latest]);
    let text = stdout(&out);
    assert!(text.contains("uploaded folder"), "{text}");
    assert!(text.contains("yes, live now"), "{text}");

    // Elsewhere there is no project to fall back on, and the CLI says how to name one.
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let out = stack
        .cli_command(&stack.api, &["logs"])
        .current_dir(elsewhere.path())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("hint:"), "{}", stderr(&out));
}

/// `completions` prints a script for each shell clap knows.
#[test]
fn completions_are_printed_for_each_shell() {
    for (shell, says) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef scalemesh"),
        ("fish", "complete -c scalemesh"),
    ] {
        let out = std::process::Command::new(crate::support::bin("scalemesh"))
            .args(["completions", shell])
            .output()
            .expect("runs");
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        assert!(stdout(&out).contains(says), "{shell}");
        assert!(stdout(&out).contains("deploy"), "{shell}");
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `scalemesh up -- --listen … --proxy-listen …` waits on the address it was given, says where
/// everything is (with the ports it really uses), and `down` stops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_on_other_ports_says_where_it_is() {
    let home = tempfile::tempdir().expect("tempdir");
    let data = home.path().join("data");
    let (api, proxy) = (free_port(), free_port());
    let scalemesh = |args: &[&str]| {
        std::process::Command::new(crate::support::bin("scalemesh"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .env("SCALEMESH_DATA_DIR", &data)
            .env("SCALEMESH_CONFIG", home.path().join("config.toml"))
            .stdin(std::process::Stdio::null())
            .output()
            .expect("runs")
    };
    let listen = format!("127.0.0.1:{api}");
    let proxy_listen = format!("127.0.0.1:{proxy}");
    let out = scalemesh(&[
        "up",
        "--",
        "--listen",
        &listen,
        "--proxy-listen",
        &proxy_listen,
    ]);
    let said = stderr(&out);
    let stop = || scalemesh(&["down"]);
    if !out.status.success() {
        stop();
        panic!("up failed: {said}");
    }
    let checks = [
        format!("API          http://{listen}"),
        format!("Web page     http://{listen}/"),
        "other programs may not".to_owned(),
        format!("http://<project>.localhost:{proxy}"),
        format!("{}", data.join("admin-token").display()),
        format!("export SCALEMESH_API_URL=http://{listen}"),
    ];
    let missing: Vec<&String> = checks
        .iter()
        .filter(|c| !said.contains(c.as_str()))
        .collect();
    let health = reqwest::get(format!("http://{listen}/health")).await;
    let down = stop();
    assert!(missing.is_empty(), "{missing:?} not in: {said}");
    let health: serde_json::Value = health.expect("answers").json().await.expect("json");
    assert_eq!(
        health["sites"],
        format!("http://<project>.localhost:{proxy}")
    );
    assert!(down.status.success(), "{}", stderr(&down));
    assert!(
        reqwest::get(format!("http://{listen}/health"))
            .await
            .is_err(),
        "down stopped it"
    );
}

/// A custom domain's URL carries the proxy's port, like the project's own URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_domain_urls_keep_the_proxy_port() {
    let stack = Stack::start();
    let git = GitServer::start().await;
    let repo = git.repo("ported", &[("index.html", "<h1>ported</h1>")]);
    assert!(stack.cli(&["deploy", &repo.url]).status.success());
    let out = stack.cli(&["domains", "add", "ported", "www.ported.test"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let port = stack.sites.port();
    let url = format!("http://www.ported.test:{port}");
    assert!(
        stdout(&out).contains(&url) || stderr(&out).contains(&url),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let doc: serde_json::Value =
        serde_json::from_str(&stdout(&stack.cli(&["domains", "ls", "ported", "--json"])))
            .expect("json");
    assert_eq!(doc["domains"][0]["url"], url.as_str());
    assert_eq!(stack.site("www.ported.test", "/").await.status(), 200);
}

/// In plain output (CI) each `==>` phase header comes before that phase's lines, there is no
/// `==> done` ahead of the result, and one file is "1 file".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_output_puts_phases_in_order() {
    let stack = Stack::start();
    let site = tempfile::tempdir().expect("tempdir");
    std::fs::write(site.path().join("index.html"), "<h1>one file</h1>").expect("write");
    let out = stack
        .cli_command(&stack.api, &["deploy", ".", "--project", "plain"])
        .current_dir(site.path())
        .output()
        .expect("runs");
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let at = |needle: &str| {
        err.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} is not in:\n{err}"))
    };
    assert!(at("==> uploading") < at("Uploading 1 file ("), "{err}");
    assert!(at("Uploaded 1 new file (") < at("==> Live"), "{err}");
    assert!(!err.contains("==> done"), "{err}");
    assert!(!err.contains("1 files"), "{err}");
    let headers: Vec<&str> = err.lines().filter(|l| l.starts_with("==> ")).collect();
    let mut unique = headers.clone();
    unique.dedup();
    assert_eq!(headers, unique, "each header once: {err}");
}

/// A folder with `index.html`, deployed to `project` with `extra` arguments; its output.
fn deploy_folder(stack: &Stack, project: &str, files: &[(&str, &str)], extra: &[&str]) -> String {
    let site = tempfile::tempdir().expect("tempdir");
    for (path, text) in files {
        std::fs::write(site.path().join(path), text).expect("write");
    }
    let mut args = vec!["deploy", ".", "--project", project];
    args.extend_from_slice(extra);
    let out = stack
        .cli_command(&stack.api, &args)
        .current_dir(site.path())
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    // The deployment's id is the last path segment of the note "(deployment <id>)".
    let err = stderr(&out);
    err.split("(deployment ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no deployment id in:\n{err}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_timestamps_have_one_width() {
    let stack = Stack::start();
    deploy_folder(&stack, "stamps", &[("index.html", "<h1>hi</h1>")], &[]);
    let out = stack.cli(&["logs", "stamps", "--timestamps"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 2, "{text}");
    for line in lines {
        let (stamp, _) = line
            .split_at_checked(24)
            .unwrap_or_else(|| panic!("{line:?}"));
        let shape: String = stamp
            .chars()
            .map(|c| if c.is_ascii_digit() { 'd' } else { c })
            .collect();
        assert_eq!(shape, "dddd-dd-ddTdd:dd:dd.dddZ", "{line:?}");
        assert!(line[24..].starts_with(' '), "{line:?}");
    }
}

#[test]
fn help_shows_no_empty_environment_values() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(crate::support::bin("scalemesh"))
        .arg("--help")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .output()
        .expect("runs");
    let help = stdout(&out);
    assert!(help.contains("[env: SCALEMESH_API_URL]"), "{help}");
    assert!(!help.contains("=]"), "{help}");
    // Each argument of `domains add` says what it is.
    let out = std::process::Command::new(crate::support::bin("scalemesh"))
        .args(["domains", "add", "--help"])
        .env_clear()
        .env("HOME", home.path())
        .output()
        .expect("runs");
    let help = stdout(&out);
    for arg in ["<PROJECT>  ", "<HOST>  "] {
        assert!(help.contains(arg), "{arg} has no help: {help}");
    }
    assert!(!help.contains("=]"), "{help}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_ls_marks_previews_and_a_pinned_production() {
    let stack = Stack::start();
    let page = [("index.html", "<h1>hi</h1>")];
    let first = deploy_folder(&stack, "marks", &page, &[]);
    let second = deploy_folder(&stack, "marks", &page, &[]);
    let preview = deploy_folder(&stack, "marks", &page, &["--preview"]);
    let out = stack.cli(&["deployments", "ls", "marks"]);
    let table = stdout(&out);
    let row = |id: &str| {
        table
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{id} is not in:\n{table}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert!(table.starts_with("ID "), "{table}");
    assert!(
        table.lines().next().is_some_and(|h| h.contains("TARGET")),
        "{table}"
    );
    assert_eq!(
        row(&second)[1..4],
        ["ready", "(live)", "production"],
        "{table}"
    );
    assert_eq!(row(&preview)[1..3], ["ready", "preview"], "{table}");
    assert!(!stderr(&out).contains("pinned"), "{}", stderr(&out));

    let out = stack.cli(&["rollback", "marks"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = stack.cli(&["deployments", "ls", "marks"]);
    let table = stdout(&out);
    let row = |id: &str| {
        table
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{id} is not in:\n{table}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        row(&first)[1..5],
        ["ready", "(live,", "pinned)", "production"],
        "{table}"
    );
    assert_eq!(row(&second)[1..3], ["ready", "production"], "{table}");
    let note = stderr(&out);
    assert!(
        note.contains(&format!("pinned to {first}")) && note.contains("scalemesh promote"),
        "{note}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_promote_says_why_once() {
    let stack = Stack::start();
    let site = tempfile::tempdir().expect("tempdir");
    std::fs::write(site.path().join("index.html"), "<h1>hi</h1>").expect("write");
    std::fs::write(
        site.path().join("scalemesh.json"),
        r#"{"buildCommand": "exit 3"}"#,
    )
    .expect("write");
    let out = stack
        .cli_command(&stack.api, &["deploy", ".", "--project", "refused"])
        .current_dir(site.path())
        .output()
        .expect("runs");
    assert!(!out.status.success(), "the build fails");
    let deps = stack.api_get("/api/v1/projects/refused/deployments").await;
    let id = deps["deployments"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let out = stack.cli(&["promote", &id]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.matches("only a ready deployment").count(), 1, "{err}");
    assert_eq!(err.matches("hint:").count(), 1, "{err}");
    assert!(err.contains("scalemesh deployments ls"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scalemesh_json_mistakes_are_found_before_the_upload() {
    let stack = Stack::start();
    for (config, says) in [
        (r#"{"outputDirectory": "../out"}"#, "outputDirectory"),
        (r#"{"buildComand": "npm run build"}"#, "buildComand"),
        (r#"{"redirects": [{"from": "nope"}]}"#, "must start with /"),
        ("{not json", "scalemesh.json is not valid"),
        // A link (here to a file that never ends) is refused as the builder refuses it.
        ("@/dev/zero", "must be a regular file"),
    ] {
        let site = tempfile::tempdir().expect("tempdir");
        std::fs::write(site.path().join("index.html"), "<h1>hi</h1>").expect("write");
        let config_path = site.path().join("scalemesh.json");
        match config.strip_prefix('@') {
            Some(target) => std::os::unix::fs::symlink(target, &config_path).expect("symlink"),
            None => std::fs::write(&config_path, config).expect("write"),
        }
        let out = stack
            .cli_command(&stack.api, &["deploy", ".", "--project", "configured"])
            .current_dir(site.path())
            .output()
            .expect("runs");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{config}: {err}");
        assert!(err.contains(says), "{config}: {err}");
        assert!(err.contains("nothing was uploaded"), "{config}: {err}");
        assert!(!err.contains("Uploading"), "{config}: {err}");
    }
    assert_no_projects(&stack, "nothing was made").await;
}

/// Ctrl-C while a deploy is followed stops the following, says that the build goes on and how
/// to stop it, and exits 130; the build does go on, and goes live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_a_deploy_says_the_build_goes_on() {
    let stack = Stack::start();
    let site = tempfile::tempdir().expect("tempdir");
    std::fs::write(site.path().join("index.html"), "<h1>still built</h1>").expect("write");
    std::fs::write(
        site.path().join("scalemesh.json"),
        r#"{"buildCommand": "echo started; sleep 3"}"#,
    )
    .expect("write");
    let mut deploy = stack.cli_command(&stack.api, &["deploy", ".", "--project", "interrupted"]);
    deploy.current_dir(site.path());
    let (mut child, rx) = crate::support::spawn_reading_stderr(deploy);
    // Once the CLI prints the build's own line, it is following: press Ctrl-C.
    let mut said = Vec::new();
    let started = loop {
        match rx.recv_timeout(std::time::Duration::from_secs(30)) {
            Ok(line) => {
                let started = line.contains("started");
                said.push(line);
                if started {
                    break true;
                }
            }
            Err(_) => break false,
        }
    };
    if !started {
        let _ = child.kill();
        panic!("the build never said it started: {said:?}");
    }
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("exit status");
    said.extend(rx.iter());
    let err = said.join("\n");
    let deps = stack
        .api_get("/api/v1/projects/interrupted/deployments")
        .await;
    let id = deps["deployments"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(
        err.contains("The build continues on the server")
            && err.contains(&format!("scalemesh cancel {id}")),
        "{err}"
    );
    // The build went on without the terminal, and went live.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let dep = stack.api_get(&format!("/api/v1/deployments/{id}")).await;
        if dep["status"] == "ready" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never ready: {dep}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let body = stack
        .site("interrupted.localhost", "/")
        .await
        .text()
        .await
        .expect("body");
    assert!(body.contains("still built"), "{body}");
}

/// A deploy refused after its project was made (here the upload is too large) removes the
/// project again, also when it runs with a CI's deploy token, which may not delete projects
/// that were ever deployed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_refused_after_its_project_was_made_leaves_nothing() {
    let stack = Stack::start_with(&["--max-upload-mb", "1"]);
    let out = stack.cli(&["tokens", "create", "ci", "--role", "deploy"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ci = stdout(&out).trim().to_owned();
    let site = tempfile::tempdir().expect("tempdir");
    std::fs::write(site.path().join("index.html"), "<h1>big</h1>").expect("write");
    // 3 MB that do not compress.
    let noise = crate::support::noise(3_000_000, 0x2545_f491_4f6c_dd1d);
    std::fs::write(site.path().join("noise.bin"), noise).expect("write");
    let out = stack
        .cli_command(&stack.api, &["deploy", ".", "--project", "too-big"])
        .env("SCALEMESH_TOKEN", &ci)
        .current_dir(site.path())
        .output()
        .expect("runs");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("could not be removed"), "{err}");
    assert_no_projects(&stack, &err).await;
}

/// The server lists no project at all: `why` says what that shows.
async fn assert_no_projects(stack: &Stack, why: &str) {
    let projects = stack.api_get("/api/v1/projects").await;
    assert_eq!(projects["projects"], serde_json::json!([]), "{why}");
}
