//! How the page looks and works at 360 and 1280 px, light and dark, and from the keyboard.

use super::browser::{Browser, api_post, status_is};
use super::{FAIL_SH, SLOW_SH};
use crate::support::{GitServer, Stack};

/// A build with a long log: numbered lines with colours, warnings on stderr, and lines with no
/// place to break (a minified bundle's name, a long URL).
const LONG_LOG_SH: &str = r#"i=1
while [ $i -le 150 ]; do
  printf 'step %s: compiling src/components/module-%s.tsx \033[32mok\033[0m\n' $i $i
  if [ $((i % 40)) -eq 0 ]; then printf 'warning: module-%s.tsx is large (120 kB)\n' $i >&2; fi
  i=$((i + 1))
done
printf 'dist/assets/index-%s.js\n' "$(printf '%0180d' 0)"
printf 'see https://example.com/docs/%s for details\n' "$(printf '%0160d' 7)"
printf '\033[1;33mdone\033[0m in 4.2s\n'
mkdir -p out
cp index.html out/index.html
"#;

/// Whether the page scrolls sideways, and which elements stick out past the window.
pub(super) const OVERFLOW_JS: &str = "return {
    wide: document.documentElement.scrollWidth,
    view: window.innerWidth,
    out: [...document.querySelectorAll('body *')]
        .filter(e => e.offsetParent !== null && e.getBoundingClientRect().right > window.innerWidth + 1
                     && !e.closest('.table-wrap, #log'))
        .map(e => e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className).slice(0, 10),
};";

/// In the history table: which headers, ids, statuses and times break over lines, and how far
/// the table scrolls sideways.
const WRAPPED_JS: &str = "const lines = (e) => {
        const range = document.createRange();
        range.selectNodeContents(e);
        const rects = [...range.getClientRects()].filter(r => r.width > 0)
            .sort((a, b) => a.top - b.top);
        let count = 0, bottom = -Infinity;
        for (const r of rects) {
            if (r.top >= bottom - 1) count += 1;
            bottom = Math.max(bottom, r.bottom);
        }
        return count;
    };
    const wrap = document.querySelector('#history').closest('.table-wrap');
    return {
        wrapped: [...document.querySelectorAll(
                '#history th, #history td code, #history .badges, #history time, #history td.duration')]
            .filter(e => !e.querySelector('.vh') && lines(e) > 1)
            .map(e => `${e.tagName} '${e.textContent}' on ${lines(e)} lines`),
        sideways: wrap.scrollWidth - wrap.clientWidth,
    };";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_fit_narrow_and_wide_screens_in_light_and_dark() {
    let git = GitServer::start().await;
    let site = git.repo(
        "site",
        &[
            ("index.html", "<h1>hi</h1>"),
            ("long.sh", LONG_LOG_SH),
            ("fail.sh", FAIL_SH),
            ("slow.sh", SLOW_SH),
        ],
    );
    let stack = Stack::start();
    // A few projects: one live, one failed, one building, one never deployed, with long names.
    let long_name = "a-project-with-a-long-name-for-a-narrow-screen";
    let projects = [
        ("marketing-site", "sh long.sh", true),
        ("docs", "sh fail.sh", true),
        (long_name, "sh slow.sh", true),
        ("empty", "sh long.sh", false),
    ];
    let mut long_log = String::new();
    for (name, build, deploy) in projects {
        api_post(
            &stack,
            "/api/v1/projects",
            serde_json::json!({
                "name": name,
                "git_url": site.url,
                "build": { "buildCommand": build, "outputDirectory": "out" },
            }),
        )
        .await;
        if deploy {
            let dep = api_post(
                &stack,
                &format!("/api/v1/projects/{name}/deployments"),
                serde_json::json!({}),
            )
            .await;
            if name == "marketing-site" {
                long_log = dep["id"].as_str().expect("id").to_owned();
            }
        }
    }

    for dark in [false, true] {
        let scheme = if dark { "dark" } else { "light" };
        let flags: &[&str] = if dark { &["--force-dark-mode"] } else { &[] };
        let browser = Browser::start_with(1280, 900, flags).await;
        let b = &browser;
        b.sign_in(&stack.api, &stack.token()).await;
        let is_dark = b
            .script("return matchMedia('(prefers-color-scheme: dark)').matches;")
            .await;
        assert_eq!(is_dark, dark, "the colour scheme is emulated");
        for (width, height) in [(360, 740), (1280, 900)] {
            b.client
                .set_window_size(width, height)
                .await
                .expect("window size");
            let shot = |page: &str| format!("web-{page}-{width}-{scheme}.png");

            // The projects list, every card with its status.
            b.client
                .goto(&format!("{}/#/", stack.api))
                .await
                .expect("projects");
            b.until(
                "four project cards with statuses",
                "document.querySelectorAll('#projects-list .status').length === 4 \
                 && document.querySelector('[data-project=\"marketing-site\"] .status[data-status=\"ready\"]') \
                 && document.querySelector('[data-project=\"docs\"] .status[data-status=\"failed\"]')",
            )
            .await;
            let layout = b.script(OVERFLOW_JS).await;
            assert_eq!(
                layout["out"],
                serde_json::json!([]),
                "projects at {width}: {layout}"
            );
            b.script("window.scrollTo(0, 0); return null;").await;
            b.save_screenshot(&shot("projects")).await;

            // The new-project form with an error next to its field.
            b.fill("#np-git-url", &site.url).await;
            b.fill("#np-name", "Not A Name").await;
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
            let layout = b.script(OVERFLOW_JS).await;
            assert_eq!(
                layout["out"],
                serde_json::json!([]),
                "form at {width}: {layout}"
            );
            b.script("document.getElementById('np-title').scrollIntoView(); return null;")
                .await;
            b.save_screenshot(&shot("form-error")).await;

            // A deployment with a long log.
            b.client
                .goto(&format!("{}/#/deployments/{long_log}", stack.api))
                .await
                .expect("deployment");
            b.until("a ready deployment", &status_is("ready")).await;
            b.until(
                "the whole log",
                "document.getElementById('log').textContent.includes('done in 4.2s')",
            )
            .await;
            let layout = b.script(OVERFLOW_JS).await;
            assert_eq!(
                layout["out"],
                serde_json::json!([]),
                "deployment at {width}: {layout}"
            );
            let log_wide = b
                .script(
                    "const log = document.getElementById('log');
                     return log.scrollWidth - log.clientWidth;",
                )
                .await;
            assert_eq!(log_wide, 0, "long log lines wrap at {width}");
            b.save_screenshot(&shot("deployment")).await;

            // The project page with its history.
            b.client
                .goto(&format!("{}/#/projects/marketing-site", stack.api))
                .await
                .expect("project");
            b.until(
                "the history",
                "document.querySelector('#history tr[data-deployment]') !== null",
            )
            .await;
            let layout = b.script(OVERFLOW_JS).await;
            assert_eq!(
                layout["out"],
                serde_json::json!([]),
                "project at {width}: {layout}"
            );
            b.save_screenshot(&shot("project")).await;
            if width == 1280 {
                // Also with a long name and a build running (a longer duration, a button).
                for name in ["marketing-site", long_name] {
                    b.client
                        .goto(&format!("{}/#/projects/{name}", stack.api))
                        .await
                        .expect("project");
                    b.until(
                        "the history",
                        &format!(
                            "document.getElementById('project-name').textContent === '{name}' \
                             && document.querySelector('#history tr[data-deployment]') !== null"
                        ),
                    )
                    .await;
                    let table = b.script(WRAPPED_JS).await;
                    assert_eq!(
                        table["wrapped"],
                        serde_json::json!([]),
                        "{name}: headers, ids, statuses and times on one line at 1280 px: {table}"
                    );
                    assert_eq!(
                        table["sideways"], 0,
                        "{name}: the table fits without scrolling: {table}"
                    );
                }
                b.save_screenshot(&shot("project-long-name")).await;
            }
        }
        browser.close().await;
    }
}

/// The element with focus, described, and whether its focus ring shows.
const FOCUSED_JS: &str = "const e = document.activeElement;
    if (!e || e === document.body) return null;
    const style = getComputedStyle(e);
    return {
        name: e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
            + (e.className ? '.' + String(e.className).split(' ')[0] : '')
            + (e.closest('[data-project]') ? '@' + e.closest('[data-project]').dataset.project : ''),
        ring: e.matches(':focus-visible') && style.outlineStyle !== 'none'
            && parseFloat(style.outlineWidth) >= 2,
    };";

/// Every link, button and field of the visible view, described as `FOCUSED_JS` does.
const FOCUSABLE_JS: &str =
    "return [...document.querySelectorAll('a[href], button, input, [tabindex=\"0\"]')]
    .filter(e => e.offsetParent !== null && !e.disabled)
    .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
        + (e.className ? '.' + String(e.className).split(' ')[0] : '')
        + (e.closest('[data-project]') ? '@' + e.closest('[data-project]').dataset.project : ''));";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_of_the_projects_page_is_reachable_by_keyboard_with_a_visible_focus() {
    let git = GitServer::start().await;
    let repo = git.repo("keys", &[("index.html", "<h1>keys</h1>")]);
    let stack = Stack::start();
    let out = stack.cli(&["deploy", &repo.url]);
    assert!(out.status.success(), "{}", crate::support::stderr(&out));
    api_post(
        &stack,
        "/api/v1/projects",
        serde_json::json!({ "name": "undeployed", "git_url": repo.url }),
    )
    .await;
    let browser = Browser::start(1280, 900).await;
    let b = &browser;
    b.sign_in(&stack.api, &stack.token()).await;
    // A fresh load: focus starts at the top of the document.
    b.client.refresh().await.expect("reload");
    b.until(
        "both projects",
        "document.querySelectorAll('#projects-list [data-project] .status').length === 2 \
         && document.querySelector('.live-deployment')",
    )
    .await;
    let focusable = b.script(FOCUSABLE_JS).await;

    let mut reached = Vec::new();
    for _ in 0..60 {
        b.client
            .active_element()
            .await
            .expect("active element")
            .send_keys("\u{E004}")
            .await
            .expect("tab");
        let focused = b.script(FOCUSED_JS).await;
        if focused.is_null() || reached.contains(&focused["name"]) {
            break;
        }
        assert_eq!(focused["ring"], true, "focus is visible on {focused}");
        if focused["name"] == "a.live-deployment@keys" {
            b.save_screenshot("web-keyboard-focus.png").await;
        }
        reached.push(focused["name"].clone());
    }
    assert_eq!(
        serde_json::Value::Array(reached.clone()),
        focusable,
        "Tab reaches every control in order"
    );
    for expected in [
        "a.brand",
        "button#signout.btn",
        "a.project-link@keys",
        "a.production-url@keys",
        "a.live-deployment@keys",
        "a.project-link@undeployed",
        "input#np-git-url",
        "button#np-submit.btn",
    ] {
        assert!(
            reached.iter().any(|r| r == expected),
            "{expected} is reachable: {reached:?}"
        );
    }

    // Enter on a project's link opens it, with focus on its heading.
    b.wait_for("[data-project=\"undeployed\"] a.project-link")
        .await
        .send_keys("\u{E007}")
        .await
        .expect("enter");
    b.until(
        "the project page, focused",
        "!document.getElementById('view-project').hidden \
         && document.activeElement === document.getElementById('project-name')",
    )
    .await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_fits_a_phone_and_loads_nothing_from_elsewhere() {
    let stack = Stack::start();
    let browser = Browser::start(360, 740).await;
    let b = &browser;
    b.sign_in(&stack.api, &stack.token()).await;
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
        crate::web::width(&layout["wide"]) <= crate::web::width(&layout["view"]),
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
