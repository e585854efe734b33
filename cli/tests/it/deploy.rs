//! `scalemesh deploy` from git and from a folder, then the site through the proxy.

use crate::support::{GitServer, PACKAGE_JSON, Stack, stderr, stdout};

const PNG: &[u8] = &[
    0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, b'I', b'H', b'D', b'R', 0xff,
    0x00,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploys_a_static_site_from_git_and_serves_its_files() {
    let git = GitServer::start().await;
    let repo = git.repo(
        "hello-site",
        &[
            ("index.html", "<h1>Hello</h1>"),
            ("about/index.html", "<h1>About</h1>"),
            ("css/site.css", "body{color:red}"),
            ("app.js", "console.log(1)"),
            ("data.json", "{\"a\":1}"),
            ("404.html", "<h1>Custom 404</h1>"),
            ("unicode é.txt", "ünïcödé"),
        ],
    );
    std::fs::write(repo.path.join("logo.png"), PNG).expect("write");
    repo.commit(&[], "logo");
    let stack = Stack::start();
    let out = stack.cli(&["deploy", &repo.url]);
    assert!(
        out.status.success(),
        "{}\n{}",
        stderr(&out),
        stack.server_log()
    );
    let url = format!("http://hello-site.localhost:{}", stack.sites.port());
    assert_eq!(stdout(&out), format!("{url}\n"), "the URL alone on stdout");
    let log = stderr(&out);
    assert!(
        !log.contains('\u{1b}'),
        "no escape codes without a terminal"
    );
    assert!(log.contains("Cloned commit"), "{log}");

    let host = format!("hello-site.localhost:{}", stack.sites.port());
    let cases: [(&str, &[u8], &str); 6] = [
        ("/", b"<h1>Hello</h1>", "text/html; charset=utf-8"),
        ("/about/", b"<h1>About</h1>", "text/html; charset=utf-8"),
        (
            "/css/site.css",
            b"body{color:red}",
            "text/css; charset=utf-8",
        ),
        (
            "/app.js",
            b"console.log(1)",
            "text/javascript; charset=utf-8",
        ),
        ("/logo.png", PNG, "image/png"),
        (
            "/unicode%20%C3%A9.txt",
            "ünïcödé".as_bytes(),
            "text/plain; charset=utf-8",
        ),
    ];
    for (path, body, content_type) in cases {
        let res = stack.site(&host, path).await;
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.headers()["content-type"], content_type, "{path}");
        assert_eq!(res.bytes().await.expect("body").as_ref(), body, "{path}");
    }
    let res = stack.site(&host, "/data.json").await;
    assert_eq!(
        res.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    let res = stack.site(&host, "/no/such/page").await;
    assert_eq!(res.status(), 404);
    assert_eq!(res.text().await.expect("body"), "<h1>Custom 404</h1>");
    let res = stack
        .site(&format!("other.localhost:{}", stack.sites.port()), "/")
        .await;
    assert_eq!(res.status(), 404);
    assert!(
        !res.text().await.expect("body").contains("Hello"),
        "never another project's files"
    );
    // Sent as written, not as an HTTP client would clean them up.
    for path in [
        "/../../../etc/passwd",
        "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/..%2f..%2f..%2fetc%2fpasswd",
        "/../../../../../admin-token",
    ] {
        let (status, body) = stack.site_raw(&host, path);
        assert!(status == 404 || status == 400, "{path}: {status}");
        assert!(
            !body.contains("root:") && !body.contains("smk_"),
            "{path}: {body}"
        );
    }

    // The deployment's own URL serves the same files and is not indexed.
    let deployments = stack
        .api_get("/api/v1/projects/hello-site/deployments")
        .await;
    let id = deployments["deployments"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let res = stack
        .site(&format!("{id}--hello-site.localhost"), "/")
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-robots-tag"], "noindex");
    the_commit_is_shown(&stack, &repo.path, &id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploys_exactly_the_commit_asked_for_even_after_its_branch_moved_on() {
    let git = GitServer::start().await;
    let repo = git.repo("pinned", &[("index.html", "<h1>one</h1>")]);
    let first = head(&repo.path);
    repo.commit(&[("index.html", "<h1>two</h1>")], "second");
    let stack = Stack::start();
    let out = stack.cli(&["deploy", &repo.url, "--ref", "main", "--commit", &first]);
    assert!(
        out.status.success(),
        "{}\n{}",
        stderr(&out),
        stack.server_log()
    );
    let host = format!("pinned.localhost:{}", stack.sites.port());
    let res = stack.site(&host, "/").await;
    assert_eq!(res.text().await.expect("body"), "<h1>one</h1>");
    let listed = stack.api_get("/api/v1/projects/pinned/deployments").await;
    assert_eq!(listed["deployments"][0]["commit"]["sha"], first.as_str());
    assert_eq!(listed["deployments"][0]["commit"]["message"], "first");

    // Not a full name: refused before anything is asked of the server.
    let out = stack.cli(&["deploy", &repo.url, "--commit", &first[..7]]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("hint: give all 40 hex digits"),
        "{}",
        stderr(&out)
    );
    // A commit the repository does not have: the build fails saying so, production stays.
    let out = stack.cli(&["deploy", &repo.url, "--commit", &"0123456789".repeat(4)]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("is not in"), "{}", stderr(&out));
    let res = stack.site(&host, "/").await;
    assert_eq!(res.text().await.expect("body"), "<h1>one</h1>");
}

fn head(repo: &std::path::Path) -> String {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(repo)
        .output()
        .expect("git");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The deployment says which commit it was built from: its full name, the branch, the message's
/// first line and the author, in `deployments ls` and `inspect`.
fn the_commit_is_shown(stack: &Stack, repo: &std::path::Path, id: &str) {
    let sha = head(repo);
    assert_eq!(sha.len(), 40);
    let out = stack.cli(&["deployments", "ls", "hello-site"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let listed = stdout(&out);
    assert!(listed.contains("COMMIT"), "{listed}");
    assert!(listed.contains(&format!("{} logo", &sha[..7])), "{listed}");
    let out = stack.cli(&["inspect", id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = stdout(&out);
    assert!(
        shown.contains(&format!("Commit       {sha} on ")) && shown.contains(": logo (t)"),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builds_a_node_project_and_serves_its_dist_folder() {
    let git = GitServer::start().await;
    let build = r#"
const fs = require("fs");
fs.mkdirSync("dist/assets", { recursive: true });
fs.writeFileSync("dist/index.html", "<h1>built by node " + process.version + "</h1>");
fs.writeFileSync("dist/assets/app.js", "export const built = true;");
console.log("wrote dist");
"#;
    let repo = git.repo(
        "node-app",
        &[
            ("package.json", PACKAGE_JSON),
            ("build.js", build),
            ("index.html", "<h1>source, not output</h1>"),
        ],
    );
    repo.branch("release");
    let stack = Stack::start();
    let out = stack.cli(&["deploy", &repo.url, "--ref", "release", "--project", "web"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        stderr(&out),
        stack.server_log()
    );
    let log = stderr(&out);
    for expected in [
        "Detected Node.js (package.json)",
        "Running build command: npm run build",
        "wrote dist",
        "(ref release)",
    ] {
        assert!(log.contains(expected), "missing {expected:?} in\n{log}");
    }
    assert_eq!(
        stdout(&out).trim(),
        format!("http://web.localhost:{}", stack.sites.port())
    );
    let res = stack.site("web.localhost", "/").await;
    let body = res.text().await.expect("body");
    assert!(body.starts_with("<h1>built by node v"), "{body}");
    let res = stack.site("web.localhost", "/assets/app.js").await;
    assert_eq!(
        res.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploys_a_local_folder_without_ignored_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = dir.path().join("My Folder_Site");
    for (path, body) in [
        ("index.html", "<h1>from a folder</h1>"),
        ("secret.txt", "do not upload"),
        (".gitignore", "secret.txt\n"),
        ("node_modules/dep/index.js", "dependency"),
        ("docs/guide.html", "guide"),
    ] {
        let p = site.join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, body).expect("write");
    }
    let stack = Stack::start();
    let out = stack.cli(&["deploy", site.to_str().expect("utf-8")]);
    assert!(
        out.status.success(),
        "{}\n{}",
        stderr(&out),
        stack.server_log()
    );
    let host = "my-folder-site.localhost";
    assert_eq!(
        stdout(&out).trim(),
        format!("http://{host}:{}", stack.sites.port())
    );
    assert_eq!(
        stack.site(host, "/").await.text().await.expect("body"),
        "<h1>from a folder</h1>"
    );
    assert_eq!(stack.site(host, "/docs/guide.html").await.status(), 200);
    assert_eq!(
        stack.site(host, "/secret.txt").await.status(),
        404,
        ".gitignore is honoured"
    );
    assert_eq!(
        stack
            .site(host, "/node_modules/dep/index.js")
            .await
            .status(),
        404
    );
    assert_eq!(
        stack.site(host, "/.gitignore").await.status(),
        404,
        "dotfiles are not served"
    );

    // Deploying again from the same folder replaces the site with the new content.
    std::fs::write(site.join("index.html"), "<h1>second</h1>").expect("write");
    let out = stack.cli(&["deploy", site.to_str().expect("utf-8"), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let dep: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json on stdout");
    assert_eq!(dep["status"], "ready");
    assert_eq!(dep["production"], true);
    assert_eq!(
        stack.site(host, "/").await.text().await.expect("body"),
        "<h1>second</h1>"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_a_hint_and_changes_nothing() {
    let stack = Stack::start();
    let cases: [&[&str]; 6] = [
        &["deploy", "ext::sh -c touch% /tmp/pwned"],
        &["deploy", "file:///etc"],
        &["deploy", "ssh://git@example.com/a/b.git"],
        &[
            "deploy",
            "https://example.com/a/b.git",
            "--project",
            "Not_A_Name",
        ],
        &[
            "deploy",
            "https://example.com/a/b.git",
            "--ref=--upload-pack=x",
        ],
        &["deploy", "/nonexistent/folder/of/scalemesh"],
    ];
    for args in cases {
        let out = stack.cli(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert!(err.contains("\nhint: "), "{args:?}: {err}");
        assert!(stdout(&out).is_empty());
    }
    let projects = stack.api_get("/api/v1/projects").await;
    assert_eq!(projects["projects"], serde_json::json!([]));
    assert!(!std::path::Path::new("/tmp/pwned").exists());

    // No server: a clear error, a hint to start one.
    let out = stack.cli_at(
        "http://127.0.0.1:9",
        &["deploy", "https://example.com/a/b.git"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("scalemesh up"), "{}", stderr(&out));
    // A wrong token: 401 explained.
    let out = stack
        .cli_command(&stack.api, &["projects"])
        .env("SCALEMESH_TOKEN", "smk_wrong")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("hint: the token was refused"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_is_quick_to_answer() {
    let stack = Stack::start();
    let out = stack.cli(&["--version"]);
    assert!(out.status.success());
    assert!(stdout(&out).starts_with("scalemesh "));
}
