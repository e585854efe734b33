//! A headless Chromium driven through chromedriver, and small helpers for the page's tests.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

use crate::support::Stack;

/// chromedriver on a free loopback port, and a headless Chromium session through it.
pub(super) struct Browser {
    pub(super) client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub(super) async fn start(width: u32, height: u32) -> Self {
        Self::start_with(width, height, &[]).await
    }

    /// With extra Chromium flags, e.g. `--force-dark-mode` for `prefers-color-scheme: dark`.
    pub(super) async fn start_with(width: u32, height: u32, flags: &[&str]) -> Self {
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
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        args.extend(flags.iter().map(|f| (*f).to_owned()));
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({ "binary": chromium(), "args": args }),
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

    pub(super) async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }

    /// The element's text once it exists.
    pub(super) async fn text(&self, css: &str) -> String {
        self.wait_for(css).await.text().await.expect("text")
    }

    pub(super) async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    pub(super) async fn fill(&self, css: &str, text: &str) {
        let input = self.wait_for(css).await;
        input.clear().await.expect("clear");
        input.send_keys(text).await.expect("type");
    }

    /// Clicks the element at `css` once a person could: present, shown and enabled (a page
    /// still revealing its top bar after signing in has the link, hidden, for a moment).
    pub(super) async fn click(&self, css: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let element = self.wait_for(css).await;
            let ready = element.is_displayed().await.unwrap_or(false)
                && element.is_enabled().await.unwrap_or(false);
            if ready {
                match element.click().await {
                    Ok(()) => return,
                    Err(e) if Instant::now() > deadline => panic!("click {css}: {e}"),
                    Err(_) => {}
                }
            } else if Instant::now() > deadline {
                panic!("click {css}: it never became visible and enabled");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Picks the option with `value` in the `<select>` at `css`.
    pub(super) async fn select(&self, css: &str, value: &str) {
        self.wait_for(css)
            .await
            .select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("select {value} in {css}: {e}"));
    }

    pub(super) async fn script(&self, js: &str) -> serde_json::Value {
        self.client.execute(js, vec![]).await.expect("script runs")
    }

    /// Waits until `js` (an expression) is truthy in the page.
    pub(super) async fn until(&self, what: &str, js: &str) {
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

    /// Opens the page at `api` and signs in with `token`, the way a person does: type, Enter.
    pub(super) async fn sign_in(&self, api: &str, token: &str) {
        self.client
            .goto(&format!("{api}/"))
            .await
            .expect("open page");
        self.fill("#token", &format!("{token}\u{E007}")).await;
        self.until(
            "the projects view",
            "!document.getElementById('view-projects').hidden",
        )
        .await;
    }

    /// Creates a project from the projects page's form, with the given build command and
    /// output folder, and waits for its first deployment's page.
    pub(super) async fn create_project(
        &self,
        git_url: &str,
        name: &str,
        build: &str,
        output: &str,
    ) {
        self.fill("#np-git-url", git_url).await;
        self.fill("#np-name", name).await;
        self.fill("#np-build", build).await;
        self.fill("#np-output", output).await;
        self.wait_for("#np-submit")
            .await
            .click()
            .await
            .expect("submit");
        self.until(
            "the new deployment's page",
            &format!(
                "!document.getElementById('view-deployment').hidden \
                 && document.getElementById('project-link').textContent === '{name}'"
            ),
        )
        .await;
    }

    pub(super) async fn save_screenshot(&self, name: &str) {
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

pub(super) fn status_is(status: &str) -> String {
    format!("document.getElementById('deployment-status')?.dataset.status === '{status}'")
}

/// POST `body` to an API path as the admin; the JSON answer.
pub(super) async fn api_post(
    stack: &Stack,
    path: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let res = reqwest::Client::new()
        .post(format!("{}{path}", stack.api))
        .bearer_auth(stack.token())
        .json(&body)
        .send()
        .await
        .expect("api");
    let status = res.status();
    let body: serde_json::Value = res.json().await.expect("json");
    assert!(status.is_success(), "POST {path}: {status} {body}");
    body
}
