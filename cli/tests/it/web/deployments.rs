//! Working with deployments in the page: create, watch, fail, promote and roll back; cancel;
//! a dropped log connection resumed.

use super::browser::{Browser, status_is};
use super::{FAIL_SH, SLOW_SH};
use crate::support::{GitServer, Relay, Stack};

/// The build script of the fixture: a hostile log line (markup and ANSI escapes), a pause so
/// the page sees the build running, then the site.
const BUILD_SH: &str = r#"printf 'building the site\n'
printf '\033[1;32mgreen <img src=x onerror=alert(1)> \033]0;title\007done\033[0m\n'
sleep 1
mkdir -p out
cp index.html out/index.html
"#;

/// A build that prints `tick 1` … `tick 12` over six seconds, then the site.
const TICKING_SH: &str = r#"for i in 1 2 3 4 5 6 7 8 9 10 11 12; do printf 'tick %s\n' $i; sleep 0.5; done
mkdir -p out
cp index.html out/index.html
"#;

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

    // Every mistake is shown at once, next to the field it concerns, and nothing is created.
    b.fill("#np-git-url", &repo.url).await;
    b.fill("#np-name", "Not A Name").await;
    b.fill("#np-root", "../up").await;
    b.fill("#np-output", "/abs").await;
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
        .script(
            "return ['np-name', 'np-root', 'np-output', 'np-git-url']
                 .map(id => document.getElementById(id).getAttribute('aria-invalid'));",
        )
        .await;
    assert_eq!(
        invalid,
        serde_json::json!(["true", "true", "true", "false"]),
        "each wrong field is marked, and only those"
    );
    assert_eq!(
        b.script("return document.activeElement.id;").await,
        "np-name",
        "the first wrong field has the focus"
    );
    b.fill("#np-output", "").await;
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
    // Each deployment says the commit it was built from: its short name and message.
    b.until(
        "the commit of the deployment",
        "(() => { const cell = document.querySelector('#history tr[data-deployment] td[data-label=\"Commit\"]');          return cell !== null && /^[0-9a-f]{7} first$/.test(cell.textContent); })()",
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
    assert!(
        reason.contains("`sh fail.sh` failed (exit code 3)"),
        "the reason names the command and its exit code: {reason}"
    );

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
async fn a_person_cancels_a_running_build_from_its_page() {
    let git = GitServer::start().await;
    let repo = git.repo(
        "slow-site",
        &[
            ("index.html", "<h1>never served</h1>"),
            ("slow.sh", SLOW_SH),
        ],
    );
    let stack = Stack::start();
    let browser = Browser::start(1280, 900).await;
    let b = &browser;
    b.sign_in(&stack.api, &stack.token()).await;
    b.create_project(&repo.url, "slow-site", "sh slow.sh", "out")
        .await;
    b.until(
        "the build's first line",
        "document.getElementById('log').textContent.includes('started')",
    )
    .await;
    let id = b.text("#deployment-id").await;
    let dep = stack.api_get(&format!("/api/v1/deployments/{id}")).await;
    assert_eq!(dep["status"], "building", "{dep}");

    b.wait_for("#cancel").await.click().await.expect("cancel");
    b.until("a canceled deployment", &status_is("canceled"))
        .await;
    let dep = stack.api_get(&format!("/api/v1/deployments/{id}")).await;
    assert_eq!(dep["status"], "canceled", "the API agrees: {dep}");
    assert!(!dep["finished_at"].is_null(), "{dep}");

    // The page took the stream's last frame: no Cancel button, the reason shown, the elapsed
    // time stopped, and no reconnecting.
    b.until(
        "the stream's end",
        "current && current.ended && document.getElementById('cancel').hidden",
    )
    .await;
    let reason = b.text("#deployment-reason").await;
    assert!(reason.contains("canceled"), "{reason}");
    let page = b
        .script(
            "return {
                 reconnecting: !document.getElementById('log-connection').hidden,
                 focus: document.activeElement && document.activeElement.id,
             };",
        )
        .await;
    assert_eq!(page["reconnecting"], false, "{page}");
    assert_eq!(
        page["focus"], "deployment-title",
        "focus moves to the heading when the button goes: {page}"
    );
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_resumes_where_it_stopped_when_the_connection_drops() {
    let git = GitServer::start().await;
    let repo = git.repo(
        "ticking",
        &[("index.html", "<h1>ticked</h1>"), ("tick.sh", TICKING_SH)],
    );
    let stack = Stack::start();
    // The page is loaded through a relay, which drops every open connection when told to.
    let relay = Relay::start(&stack.api, 0, usize::MAX).await;
    let browser = Browser::start(1280, 900).await;
    let b = &browser;
    b.sign_in(&relay.url, &stack.token()).await;
    b.create_project(&repo.url, "ticking", "sh tick.sh", "out")
        .await;
    b.until(
        "the second tick",
        "document.getElementById('log').textContent.includes('tick 2')",
    )
    .await;
    // The "reconnecting…" note shows for a second or so: a watcher remembers it was seen.
    b.script(
        "window.sawReconnecting = false;
         const note = document.getElementById('log-connection');
         new MutationObserver(() => { if (!note.hidden) window.sawReconnecting = true; })
             .observe(note, { attributes: true });
         return null;",
    )
    .await;
    relay.cut_open();
    b.until("the reconnecting note", "window.sawReconnecting")
        .await;
    b.until("a ready deployment", &status_is("ready")).await;
    b.until(
        "the last tick",
        "document.getElementById('log').textContent.includes('tick 12')",
    )
    .await;

    // Every line once, in order: the new socket asked for the lines after the last one seen.
    let log = b
        .script(
            "const lines = [...document.querySelectorAll('#log .log-line')];
             return {
                 ticks: lines.map(l => l.textContent).filter(t => t.startsWith('tick ')),
                 seqs: lines.map(l => Number(l.dataset.seq)),
                 reconnecting: !document.getElementById('log-connection').hidden,
             };",
        )
        .await;
    let ticks: Vec<String> = (1..=12).map(|i| format!("tick {i}")).collect();
    assert_eq!(log["ticks"], serde_json::json!(ticks), "{log}");
    // Every line has its number (a missing one is NaN, which JSON carries as null).
    let seqs: Vec<u64> = log["seqs"]
        .as_array()
        .expect("seqs")
        .iter()
        .map(|v| {
            v.as_u64()
                .unwrap_or_else(|| panic!("a line without its number: {log}"))
        })
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "no line twice: {log}");
    assert_eq!(log["reconnecting"], false, "{log}");
    browser.close().await;
}
