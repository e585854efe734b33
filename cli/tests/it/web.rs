//! The web page at `/`, driven in headless Chromium through chromedriver (both from Debian's
//! `chromium` and `chromium-driver`, installed by `.ci/run`): sign in, create a project from a
//! git repository served on loopback, watch its build, follow the production link; a failing
//! build; hostile log text shown as text. The log stream's own checks (token in a subprotocol,
//! `Origin`) are tested without a browser.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::support::{GitServer, Stack};

/// The build script of the fixture: a hostile log line (markup and ANSI escapes), a pause so
/// the page sees the build running, then the site.
const BUILD_SH: &str = r#"printf 'building the site\n'
printf '\033[1;32mgreen <img src=x onerror=alert(1)> \033]0;title\007done\033[0m\n'
sleep 1
mkdir -p out
cp index.html out/index.html
"#;

const FAIL_SH: &str = "printf 'about to fail\\n'\nexit 3\n";

/// chromedriver on a free loopback port, and a headless Chromium session through it.
struct Browser {
    client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start(width: u32, height: u32) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs: install chromium and chromium-driver (see .ci/run)");
        let profile = tempfile::tempdir().expect("tempdir");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium(),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-dev-shm-usage",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = loop {
            match ClientBuilder::rustls()
                .expect("tls roots")
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                Err(e) if Instant::now() > deadline => panic!("no webdriver session: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        Self {
            client,
            driver,
            _profile: profile,
        }
    }

    async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }

    /// The element's text once it exists.
    async fn text(&self, css: &str) -> String {
        self.wait_for(css).await.text().await.expect("text")
    }

    async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    async fn fill(&self, css: &str, text: &str) {
        let input = self.wait_for(css).await;
        input.clear().await.expect("clear");
        input.send_keys(text).await.expect("type");
    }

    async fn script(&self, js: &str) -> serde_json::Value {
        self.client.execute(js, vec![]).await.expect("script runs")
    }

    /// Waits until `js` (an expression) is truthy in the page.
    async fn until(&self, what: &str, js: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let v = self.script(&format!("return !!({js});")).await;
            if v == serde_json::Value::Bool(true) {
                return;
            }
            if Instant::now() > deadline {
                let body = self.script("return document.body.innerText;").await;
                panic!("timed out waiting for {what}; the page shows:\n{body}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn save_screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = artifacts();
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join(name);
        std::fs::write(&path, png).expect("write screenshot");
        eprintln!("screenshot: {}", path.display());
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}

fn chromium() -> String {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("chromium")
        .to_owned()
}

/// Where tests leave files for people to look at: `target/test-artifacts`.
fn artifacts() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/test-artifacts")
        .canonicalize()
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts")
        })
}

fn status_is(status: &str) -> String {
    format!("document.getElementById('deployment-status')?.dataset.status === '{status}'")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_creates_deploys_and_watches_a_project_in_the_browser() {
    let git = GitServer::start().await;
    let repo = git.repo(
        "web-site",
        &[
            ("site/index.html", "<h1>Deployed from the page</h1>"),
            ("site/build.sh", BUILD_SH),
            ("site/fail.sh", FAIL_SH),
        ],
    );
    let stack = Stack::start();
    let browser = Browser::start(1280, 900).await;
    let b = &browser;

    // Sign in with the keyboard: type the token, press Enter.
    b.client
        .goto(&format!("{}/", stack.api))
        .await
        .expect("open page");
    b.fill("#token", "smk_not-a-real-token\u{E007}").await;
    b.until(
        "the sign-in error",
        "document.getElementById('signin-error').textContent.includes('not valid')",
    )
    .await;
    b.fill("#token", &format!("{}\u{E007}", stack.token()))
        .await;
    b.wait_for("#new-project-form").await;
    b.until(
        "the projects view",
        "!document.getElementById('view-projects').hidden",
    )
    .await;
    let stored = b
        .script("return [sessionStorage.length, localStorage.length, location.href];")
        .await;
    assert_eq!(stored[0], 1, "the token is kept for the session");
    assert_eq!(stored[1], 0, "nothing is kept beyond the session");
    assert!(
        !stored[2].as_str().unwrap_or_default().contains("smk_"),
        "the token is never in the URL: {stored}"
    );

    // A mistake is shown next to the field it concerns, and nothing is created.
    b.fill("#np-git-url", &repo.url).await;
    b.fill("#np-name", "Not A Name").await;
    b.fill("#np-root", "../up").await;
    b.wait_for("#np-submit")
        .await
        .click()
        .await
        .expect("submit");
    b.until(
        "the name error",
        "document.getElementById('np-name-error').textContent.length > 0",
    )
    .await;
    let invalid = b
        .script("return document.getElementById('np-name').getAttribute('aria-invalid');")
        .await;
    assert_eq!(invalid, "true");
    let projects = stack.api_get("/api/v1/projects").await;
    assert_eq!(projects["projects"].as_array().map(Vec::len), Some(0));
    b.fill("#np-name", "web-site").await;
    b.wait_for("#np-submit")
        .await
        .click()
        .await
        .expect("submit");
    b.until(
        "the root directory error",
        "document.getElementById('np-root-error').textContent.includes('rootDirectory')",
    )
    .await;

    // Create and deploy.
    b.fill("#np-root", "site").await;
    b.fill("#np-build", "sh build.sh").await;
    b.fill("#np-output", "out").await;
    b.wait_for("#np-submit")
        .await
        .click()
        .await
        .expect("submit");
    b.until(
        "the deployment page",
        "!document.getElementById('view-deployment').hidden",
    )
    .await;
    b.until(
        "log lines",
        "document.querySelectorAll('#log .log-line').length > 0",
    )
    .await;
    b.until("a ready deployment", &status_is("ready")).await;
    b.until(
        "the hostile line",
        "document.getElementById('log').textContent.includes('onerror')",
    )
    .await;

    // The hostile line is text: no element was made from it, no escape is left, and the colour
    // became a class.
    let log = b
        .script(
            "const log = document.getElementById('log');
             const line = [...log.querySelectorAll('.log-line')]
                 .find(l => l.textContent.includes('onerror'));
             return {
                 text: line.textContent,
                 imgs: log.querySelectorAll('img').length,
                 green: !!line.querySelector('.ansi-fg-2.ansi-bold'),
                 esc: log.textContent.includes('\\u001b'),
                 building: log.textContent.includes('building the site'),
             };",
        )
        .await;
    assert_eq!(
        log["text"], "green <img src=x onerror=alert(1)> done",
        "markup shown as text, escapes gone: {log}"
    );
    assert_eq!(log["imgs"], 0, "{log}");
    assert_eq!(log["green"], true, "{log}");
    assert_eq!(log["esc"], false, "{log}");
    assert_eq!(log["building"], true, "{log}");

    b.save_screenshot("web-deployment.png").await;

    // The production link serves the page that was built.
    let production = b
        .wait_for("#deployment-production-url")
        .await
        .attr("href")
        .await
        .expect("href")
        .expect("the production link");
    assert_eq!(
        production,
        format!("http://web-site.localhost:{}", stack.sites.port())
    );

    // The project page: history with the live deployment, then a screenshot of it.
    b.wait_for("#project-link")
        .await
        .click()
        .await
        .expect("to the project");
    b.until(
        "the history",
        "document.querySelector('#history tr[data-deployment] .live') !== null",
    )
    .await;
    b.save_screenshot("web-project.png").await;

    // A second deployment goes live; one click rolls back to the first, one click promotes the
    // second again.
    let first = b
        .script("return document.querySelector('#history tr[data-deployment]').dataset.deployment;")
        .await;
    b.wait_for("#deploy")
        .await
        .click()
        .await
        .expect("deploy now");
    b.until(
        "the second deployment",
        &format!(
            "!document.getElementById('view-deployment').hidden \
             && document.getElementById('deployment-id').textContent !== {first}"
        ),
    )
    .await;
    b.until("the second deployment ready", &status_is("ready"))
        .await;
    b.wait_for("#project-link")
        .await
        .click()
        .await
        .expect("to the project");
    let live_is = |id: &serde_json::Value| {
        format!("document.querySelector('#history tr[data-deployment={id}] .live') !== null")
    };
    b.until(
        "two deployments",
        "document.querySelectorAll('#history tr[data-deployment]').length === 2",
    )
    .await;
    let second = b
        .script("return document.querySelector('#history tr[data-deployment]').dataset.deployment;")
        .await;
    assert_ne!(first, second, "newest first");
    b.until("the second live", &live_is(&second)).await;
    b.wait_for("#rollback")
        .await
        .click()
        .await
        .expect("roll back");
    b.until("the first live again", &live_is(&first)).await;
    let project = stack.api_get("/api/v1/projects/web-site").await;
    assert_eq!(project["production_deployment"], first);
    b.wait_for(&format!(
        "#history tr[data-deployment={second}] button.promote"
    ))
    .await
    .click()
    .await
    .expect("promote");
    b.until("the second live again", &live_is(&second)).await;
    let project = stack.api_get("/api/v1/projects/web-site").await;
    assert_eq!(project["production_deployment"], second);

    // A failing build: deploy from the page, see the failure and its log.
    b.client
        .goto(&format!("{}/#/", stack.api))
        .await
        .expect("projects");
    b.fill("#np-git-url", &repo.url).await;
    b.fill("#np-name", "failing").await;
    b.fill("#np-root", "site").await;
    b.fill("#np-build", "sh fail.sh").await;
    b.wait_for("#np-submit")
        .await
        .click()
        .await
        .expect("submit");
    b.until(
        "the new deployment page",
        "!document.getElementById('view-deployment').hidden \
         && document.getElementById('project-link').textContent === 'failing'",
    )
    .await;
    b.until("a failed deployment", &status_is("failed")).await;
    b.until(
        "the failing build's log",
        "document.getElementById('log').textContent.includes('about to fail')",
    )
    .await;
    let reason = b.text("#deployment-reason").await;
    assert!(reason.contains("exit") || reason.contains('3'), "{reason}");

    // The projects list shows both, each with its newest status.
    b.client
        .goto(&format!("{}/#/", stack.api))
        .await
        .expect("projects");
    b.until(
        "both projects",
        "document.querySelector('[data-project=\"web-site\"] .status[data-status=\"ready\"]') \
         && document.querySelector('[data-project=\"failing\"] .status[data-status=\"failed\"]')",
    )
    .await;

    // The site itself, as a visitor sees it.
    b.client.goto(&production).await.expect("production site");
    b.until(
        "the deployed page",
        "document.body.innerText.includes('Deployed from the page')",
    )
    .await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_fits_a_phone_and_loads_nothing_from_elsewhere() {
    let stack = Stack::start();
    let browser = Browser::start(360, 740).await;
    let b = &browser;
    b.client
        .goto(&format!("{}/", stack.api))
        .await
        .expect("open page");
    b.fill("#token", &format!("{}\u{E007}", stack.token()))
        .await;
    b.until(
        "the projects view",
        "!document.getElementById('view-projects').hidden",
    )
    .await;
    let layout = b
        .script(
            "return {
                 wide: document.documentElement.scrollWidth,
                 view: window.innerWidth,
                 unlabelled: [...document.querySelectorAll('input, select, textarea')]
                     .filter(i => !i.labels || i.labels.length === 0).map(i => i.id),
                 foreign: performance.getEntriesByType('resource')
                     .map(r => r.name).filter(n => !n.startsWith(location.origin)),
             };",
        )
        .await;
    assert!(
        layout["wide"].as_u64() <= layout["view"].as_u64(),
        "no sideways scrolling at 360 px: {layout}"
    );
    assert_eq!(layout["unlabelled"], serde_json::json!([]), "{layout}");
    assert_eq!(layout["foreign"], serde_json::json!([]), "{layout}");
    browser.close().await;

    // The page's headers: a strict policy, no inline script.
    let res = reqwest::get(format!("{}/", stack.api)).await.expect("page");
    let csp = res
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let html = res.text().await.expect("html");
    assert!(!html.contains("<script>"), "no inline script");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_stream_takes_a_token_subprotocol_and_refuses_other_origins() {
    let git = GitServer::start().await;
    let repo = git.repo("ws-site", &[("index.html", "<h1>ws</h1>")]);
    let stack = Stack::start();
    let out = stack.cli(&["deploy", &repo.url]);
    assert!(out.status.success(), "{}", crate::support::stderr(&out));
    let deps = stack.api_get("/api/v1/projects/ws-site/deployments").await;
    let id = deps["deployments"][0]["id"]
        .as_str()
        .expect("a deployment")
        .to_owned();
    let ws = stack.api.replacen("http://", "ws://", 1);
    let url = format!("{ws}/api/v1/deployments/{id}/logs/stream?since=0");
    let host = stack.api.trim_start_matches("http://").to_owned();
    let request = |origin: Option<String>, protocols: String| {
        let mut req = url.as_str().into_client_request().expect("request");
        let headers = req.headers_mut();
        headers.insert(
            "sec-websocket-protocol",
            HeaderValue::from_str(&protocols).expect("header"),
        );
        if let Some(origin) = origin {
            headers.insert("origin", HeaderValue::from_str(&origin).expect("header"));
        }
        req
    };
    let token = stack.token();
    let offered = format!("scalemesh.logs.v1, bearer.{token}");

    // From the server's own page: accepted, and only the stream's protocol is answered.
    let (mut socket, res) =
        tokio_tungstenite::connect_async(request(Some(format!("http://{host}")), offered.clone()))
            .await
            .expect("same origin connects");
    assert_eq!(
        res.headers()
            .get("sec-websocket-protocol")
            .map(|v| v.as_bytes()),
        Some(&b"scalemesh.logs.v1"[..]),
        "the token is never echoed"
    );
    let first = socket.next().await.expect("a frame").expect("frame");
    assert!(first.to_text().unwrap_or_default().contains("\"state\""));

    // Another site's page, with the same token: refused before the upgrade.
    for origin in [
        "http://evil.example",
        "null",
        "http://127.0.0.1.evil.example",
    ] {
        let err =
            tokio_tungstenite::connect_async(request(Some(origin.to_owned()), offered.clone()))
                .await
                .expect_err("another origin is refused");
        let status = match err {
            tokio_tungstenite::tungstenite::Error::Http(res) => res.status().as_u16(),
            other => panic!("unexpected error {other}"),
        };
        assert_eq!(status, 403, "{origin}");
    }

    // A wrong token in the subprotocol is a 401.
    let err = tokio_tungstenite::connect_async(request(
        None,
        "scalemesh.logs.v1, bearer.smk_wrong".to_owned(),
    ))
    .await
    .expect_err("wrong token");
    match err {
        tokio_tungstenite::tungstenite::Error::Http(res) => assert_eq!(res.status(), 401),
        other => panic!("unexpected error {other}"),
    }
}
