//! People and access in the page: who is signed in; a project's variables and members, as an
//! owner, a developer and a viewer; the tokens page, where a token is made, its secret shown
//! once, used, and revoked; a revoked token signs the tab out with the reason.

use serde_json::json;

use super::browser::{Browser, api_post};
use super::layout::OVERFLOW_JS;
use crate::support::Stack;

/// A sensitive variable's value: it goes in, and never comes back to the page.
const SECRET_VALUE: &str = "s3cr3t-value-never-shown";

/// GET an API path with `token`: the status and the JSON answer.
async fn get_with(stack: &Stack, token: &str, path: &str) -> (u16, serde_json::Value) {
    let res = reqwest::Client::new()
        .get(format!("{}{path}", stack.api))
        .bearer_auth(token)
        .send()
        .await
        .expect("api");
    let status = res.status().as_u16();
    (status, res.json().await.expect("json"))
}

/// The page does not scroll sideways, and nothing sticks out past the window.
async fn fits(b: &Browser, what: &str) {
    let layout = b.script(OVERFLOW_JS).await;
    assert_eq!(layout["out"], json!([]), "{what}: {layout}");
    assert!(
        crate::web::width(&layout["wide"]) <= crate::web::width(&layout["view"]),
        "{what} scrolls sideways: {layout}"
    );
}

/// Whether focus is on a control rather than lost to `<body>` (after a row's button went away).
async fn focus_kept(b: &Browser) -> bool {
    b.script("return document.activeElement !== null && document.activeElement !== document.body;")
        .await
        == true
}

/// The variables the API holds for `team-site`, as `target/KEY`, sorted.
async fn env_rows(stack: &Stack) -> Vec<String> {
    let (status, env) = get_with(stack, &stack.token(), "/api/v1/projects/team-site/env").await;
    assert_eq!(status, 200, "{env}");
    let mut rows: Vec<String> = env["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|v| {
            format!(
                "{}/{}",
                v["target"].as_str().unwrap_or_default(),
                v["key"].as_str().unwrap_or_default()
            )
        })
        .collect();
    rows.sort();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_sets_variables_and_members_and_others_get_what_their_role_allows() {
    let stack = Stack::start();
    api_post(&stack, "/api/v1/projects", json!({ "name": "team-site" })).await;
    let dana = api_post(&stack, "/api/v1/users", json!({ "name": "dana" })).await;
    let dana_secret = dana["secret"].as_str().expect("secret").to_owned();
    api_post(&stack, "/api/v1/users", json!({ "name": "erin" })).await;

    let browser = Browser::start(1280, 900).await;
    let b = &browser;
    b.sign_in(&stack.api, &stack.token()).await;
    b.until(
        "the admin in the top bar",
        "document.getElementById('me-name').textContent === 'admin' \
         && !document.getElementById('me-admin').hidden \
         && document.getElementById('me-admin').textContent === 'admin'",
    )
    .await;

    b.client
        .goto(&format!("{}/#/projects/team-site", stack.api))
        .await
        .expect("project");
    b.until(
        "the variables form and an empty list",
        "!document.getElementById('env-form').hidden \
         && !document.getElementById('env-empty').hidden",
    )
    .await;
    let target = b
        .script("return document.getElementById('env-target').value;")
        .await;
    assert_eq!(target, "all", "an owner starts with both targets");

    // A name the API refuses: its message next to the key, nothing stored.
    b.fill("#env-key", "1BAD").await;
    b.fill("#env-value", "x").await;
    b.click("#env-submit").await;
    b.until(
        "the key's error",
        "document.getElementById('env-key-error').textContent.includes('1BAD') \
         && document.getElementById('env-key').getAttribute('aria-invalid') === 'true'",
    )
    .await;
    assert!(env_rows(&stack).await.is_empty());

    // A plain variable for both targets: its value is shown.
    b.fill("#env-key", "API_URL").await;
    b.fill("#env-value", "https://api.example.test/v1").await;
    b.click("#env-submit").await;
    b.until(
        "both rows of API_URL",
        "document.querySelector('tr[data-env=\"production/API_URL\"]') \
         && document.querySelector('tr[data-env=\"preview/API_URL\"]')",
    )
    .await;
    assert_eq!(
        b.text("tr[data-env=\"production/API_URL\"] .env-value")
            .await,
        "https://api.example.test/v1"
    );
    assert_eq!(
        b.script("return document.getElementById('env-key-error').textContent;")
            .await,
        "",
        "the earlier error is gone"
    );

    // A sensitive one for production: typed in a password field, never shown again.
    b.fill("#env-key", "DEPLOY_SECRET").await;
    b.click("#env-sensitive").await;
    let field = b
        .script(
            "const f = document.querySelector('#env-secret-field:not([hidden]) input');
             return [f ? f.type : null, document.getElementById('env-value-field').hidden];",
        )
        .await;
    assert_eq!(field, json!(["password", true]), "a password field instead");
    b.fill("#env-secret", SECRET_VALUE).await;
    b.select("#env-target", "production").await;
    b.click("#env-submit").await;
    b.until(
        "the sensitive row",
        "document.querySelector('tr[data-env=\"production/DEPLOY_SECRET\"]')",
    )
    .await;
    let row = b.text("tr[data-env=\"production/DEPLOY_SECRET\"]").await;
    assert!(
        row.contains("sensitive") && row.contains("hidden"),
        "marked and hidden: {row}"
    );
    let source = b.client.source().await.expect("page source");
    assert!(
        !source.contains(SECRET_VALUE),
        "the sensitive value is not in the page"
    );
    let left = b
        .script(
            "return [...document.querySelectorAll('input, textarea')]
                 .filter(i => i.value.includes('s3cr3t')).map(i => i.id);",
        )
        .await;
    assert_eq!(left, json!([]), "nor in a field");
    assert_eq!(
        env_rows(&stack).await,
        [
            "preview/API_URL",
            "production/API_URL",
            "production/DEPLOY_SECRET"
        ]
    );

    // Remove one target of API_URL: the other stays, focus stays in the table.
    b.click("tr[data-env=\"preview/API_URL\"] .env-remove")
        .await;
    b.until(
        "the preview row gone",
        "!document.querySelector('tr[data-env=\"preview/API_URL\"]') \
         && document.querySelector('tr[data-env=\"production/API_URL\"]')",
    )
    .await;
    assert!(focus_kept(b).await, "focus is not lost after a removal");
    assert_eq!(
        env_rows(&stack).await,
        ["production/API_URL", "production/DEPLOY_SECRET"]
    );

    // Members: the creator is the owner; add a developer and a viewer, refuse a stranger,
    // remove the viewer.
    b.until(
        "the owner in the members",
        "document.querySelector('tr[data-member=\"admin\"] .member-role')?.textContent === 'owner'",
    )
    .await;
    for (user, role) in [("dana", "developer"), ("erin", "viewer")] {
        b.fill("#member-user", user).await;
        b.select("#member-role", role).await;
        b.click("#member-submit").await;
        b.until(
            &format!("{user} as {role}"),
            &format!(
                "document.querySelector('tr[data-member=\"{user}\"] .member-role')?.textContent === '{role}'"
            ),
        )
        .await;
    }
    b.fill("#member-user", "nobody").await;
    b.click("#member-submit").await;
    b.until(
        "the unknown user's error",
        "document.getElementById('member-user-error').textContent.includes('nobody')",
    )
    .await;
    b.click("tr[data-member=\"erin\"] .member-remove").await;
    b.until(
        "erin gone",
        "!document.querySelector('tr[data-member=\"erin\"]')",
    )
    .await;
    assert!(focus_kept(b).await, "focus is not lost after a removal");
    let (_, members) = get_with(&stack, &stack.token(), "/api/v1/projects/team-site/members").await;
    let mut members: Vec<String> = members["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            format!(
                "{}:{}",
                m["user"].as_str().unwrap_or_default(),
                m["role"].as_str().unwrap_or_default()
            )
        })
        .collect();
    members.sort();
    assert_eq!(members, ["admin:owner", "dana:developer"]);

    for (width, height) in [(1280, 900), (360, 740)] {
        b.client
            .set_window_size(width, height)
            .await
            .expect("window size");
        fits(b, &format!("the project's settings at {width} px")).await;
        b.script("document.getElementById('env-title').scrollIntoView(); return null;")
            .await;
        b.save_screenshot(&format!("web-team-settings-{width}.png"))
            .await;
    }
    b.client
        .set_window_size(1280, 900)
        .await
        .expect("window size");

    // A developer: preview values only. Production values are not shown, the form starts on
    // preview, a production value is refused with the role it needs, members are read-only.
    b.click("#signout").await;
    b.sign_in(&stack.api, &dana_secret).await;
    b.until(
        "dana in the top bar, no admin badge",
        "document.getElementById('me-name').textContent === 'dana' \
         && document.getElementById('me-admin').hidden",
    )
    .await;
    b.client
        .goto(&format!("{}/#/projects/team-site", stack.api))
        .await
        .expect("project");
    b.until(
        "the variables and members",
        "document.querySelector('tr[data-env=\"production/API_URL\"]') \
         && document.querySelector('tr[data-member=\"dana\"]') \
         && !document.getElementById('env-form').hidden",
    )
    .await;
    let seen = b
        .script(
            "return {
                 target: document.getElementById('env-target').value,
                 value: document.querySelector('tr[data-env=\"production/API_URL\"] td[data-label=\"Value\"]').textContent,
                 removable: document.querySelectorAll('.env-remove, .member-remove').length,
                 memberForm: document.getElementById('member-form').hidden,
             };",
        )
        .await;
    assert_eq!(
        seen,
        json!({ "target": "preview", "value": "—needs the owner role", "removable": 0, "memberForm": true }),
        "what a developer is offered"
    );
    b.fill("#env-key", "FROM_DANA").await;
    b.fill("#env-value", "hello").await;
    b.select("#env-target", "production").await;
    b.click("#env-submit").await;
    b.until(
        "the refusal next to the form",
        "document.getElementById('env-form-error').textContent.includes('owner')",
    )
    .await;
    b.select("#env-target", "preview").await;
    b.click("#env-submit").await;
    b.until(
        "dana's preview variable, removable by her",
        "document.querySelector('tr[data-env=\"preview/FROM_DANA\"] .env-remove') \
         && document.getElementById('env-form-error').textContent === ''",
    )
    .await;
    assert_eq!(
        b.text("tr[data-env=\"preview/FROM_DANA\"] .env-value")
            .await,
        "hello"
    );

    // A viewer: names only, no form, no buttons.
    api_post(
        &stack,
        "/api/v1/projects/team-site/members",
        json!({ "user": "dana", "role": "viewer" }),
    )
    .await;
    b.client.refresh().await.expect("reload");
    b.until(
        "the variables as a viewer",
        "document.querySelector('tr[data-env=\"preview/FROM_DANA\"]') \
         && document.querySelector('tr[data-member=\"dana\"] .member-role')?.textContent === 'viewer'",
    )
    .await;
    let seen = b
        .script(
            "return {
                 envForm: document.getElementById('env-form').hidden,
                 memberForm: document.getElementById('member-form').hidden,
                 buttons: [...document.querySelectorAll('#env button, #members button')]
                     .filter(e => e.offsetParent !== null).length,
                 values: document.querySelectorAll('#env-body .env-value').length,
             };",
        )
        .await;
    assert_eq!(
        seen,
        json!({ "envForm": true, "memberForm": true, "buttons": 0, "values": 0 }),
        "what a viewer is offered"
    );
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_made_on_the_tokens_page_shown_once_used_and_revoked() {
    let stack = Stack::start();
    api_post(&stack, "/api/v1/projects", json!({ "name": "team-site" })).await;
    let browser = Browser::start(1280, 900).await;
    let b = &browser;
    b.sign_in(&stack.api, &stack.token()).await;
    b.until(
        "the admin in the top bar",
        "document.getElementById('me-name').textContent === 'admin' \
         && !document.getElementById('me-admin').hidden",
    )
    .await;

    // From the top bar, with the keyboard: focus the link, press Enter.
    b.wait_for("#nav-tokens")
        .await
        .send_keys("\u{E007}")
        .await
        .expect("enter");
    b.until(
        "the tokens page with this tab's token",
        "!document.getElementById('view-tokens').hidden \
         && !document.getElementById('token-form').hidden \
         && [...document.querySelectorAll('#tokens-body tr')].some(r => r.textContent.includes('this tab'))",
    )
    .await;
    assert_eq!(
        b.script("return document.activeElement.id;").await,
        "tokens-title",
        "focus starts at the heading"
    );

    // Make a deploy token for one project, expiring in 30 days.
    b.fill("#tk-name", "ci").await;
    b.select("#tk-role", "deploy").await;
    b.fill("#tk-projects", "team-site").await;
    b.select("#tk-expires", "30d").await;
    b.click("#tk-submit").await;
    b.until(
        "the new secret",
        "!document.getElementById('token-created').hidden \
         && document.getElementById('token-secret').value.startsWith('smk_')",
    )
    .await;
    let shown = b
        .script(
            "const s = document.getElementById('token-secret');
             return { secret: s.value, readOnly: s.readOnly, focused: document.activeElement === s,
                      label: s.labels[0].textContent };",
        )
        .await;
    let secret = shown["secret"].as_str().expect("secret").to_owned();
    assert_eq!(shown["readOnly"], true, "{shown}");
    assert_eq!(shown["focused"], true, "focus goes to the secret: {shown}");
    assert_eq!(shown["label"], "Token “ci”", "{shown}");
    b.click("#token-copy").await;
    b.until(
        "the copy's outcome",
        "document.getElementById('token-copied').textContent.length > 0",
    )
    .await;

    // The secret works, as the token the page says it made.
    let (status, me) = get_with(&stack, &secret, "/api/v1/me").await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["user"]["name"], "admin");
    assert_eq!(me["token"]["name"], "ci");
    assert_eq!(me["token"]["role"], "deploy");
    assert_eq!(me["token"]["projects"], json!(["team-site"]));
    let id = me["token"]["id"].as_i64().expect("token id");
    let row = format!("tr[data-token=\"{id}\"]");
    b.until(
        "the new token's row",
        &format!("document.querySelector('{row}')"),
    )
    .await;
    let cells = b
        .script(&format!(
            "const r = document.querySelector('{row}');
             const cell = (l) => r.querySelector(`td[data-label=\"${{l}}\"]`).textContent;
             return [cell('Name'), cell('Role'), cell('Projects'), cell('Last used'), cell('Expires')];"
        ))
        .await;
    let cells: Vec<String> = cells
        .as_array()
        .expect("cells")
        .iter()
        .map(|c| c.as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(cells[..3], ["ci", "deploy", "team-site"], "{cells:?}");
    assert!(cells[4] != "never", "it expires: {cells:?}");
    assert!(
        b.text(&format!("{row} .token-prefix"))
            .await
            .starts_with("smk_"),
        "the prefix tells it apart"
    );
    for (width, height) in [(360, 740), (1280, 900)] {
        b.client
            .set_window_size(width, height)
            .await
            .expect("window size");
        fits(b, &format!("the tokens page at {width} px")).await;
        b.script("window.scrollTo(0, 0); return null;").await;
        b.save_screenshot(&format!("web-team-tokens-{width}.png"))
            .await;
    }

    // After a reload the secret is gone for good: not in the page, not in a field.
    b.client.refresh().await.expect("reload");
    b.until(
        "the list again",
        &format!(
            "!document.getElementById('view-tokens').hidden && document.querySelector('{row}')"
        ),
    )
    .await;
    let after = b
        .script(
            "return [document.getElementById('token-created').hidden,
                     document.getElementById('token-secret').value];",
        )
        .await;
    assert_eq!(after, json!([true, ""]));
    let source = b.client.source().await.expect("page source");
    assert!(!source.contains(&secret), "the secret is shown only once");
    let used = b.text(&format!("{row} td[data-label=\"Last used\"]")).await;
    assert!(used != "never", "it was used by the request above: {used}");

    // Revoke it from the page: it stops working at once.
    b.click(&format!("{row} .token-revoke")).await;
    b.until("the row gone", &format!("!document.querySelector('{row}')"))
        .await;
    assert!(focus_kept(b).await, "focus is not lost after a revoke");
    let (status, body) = get_with(&stack, &secret, "/api/v1/me").await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("revoked"),
        "{body}"
    );

    // Signing in with it: the sign-in view says why not.
    b.click("#signout").await;
    b.fill("#token", &format!("{secret}\u{E007}")).await;
    b.until(
        "the sign-in error",
        "!document.getElementById('view-signin').hidden \
         && document.getElementById('signin-error').textContent.includes('revoked')",
    )
    .await;

    // A tab whose token is revoked elsewhere is signed out with the reason on its next request.
    let made = api_post(&stack, "/api/v1/tokens", json!({ "name": "tab" })).await;
    let tab_secret = made["secret"].as_str().expect("secret").to_owned();
    b.sign_in(&stack.api, &tab_secret).await;
    // Its own requests (who is signed in, the projects) are answered first: the next one is
    // the click's, not one the page was still making.
    b.until(
        "the page signed in and its projects loaded",
        "!document.getElementById('whoami').hidden \
         && document.getElementById('projects').getAttribute('aria-busy') === 'false'",
    )
    .await;
    let res = reqwest::Client::new()
        .delete(format!(
            "{}/api/v1/tokens/{}",
            stack.api, made["token"]["id"]
        ))
        .bearer_auth(stack.token())
        .send()
        .await
        .expect("revoke");
    assert_eq!(res.status(), 204);
    b.click("#nav-tokens").await;
    b.until(
        "signed out, with the reason",
        "!document.getElementById('view-signin').hidden \
         && document.getElementById('signin-error').textContent.includes('revoked') \
         && document.getElementById('session').hidden",
    )
    .await;
    let stored = b.script("return sessionStorage.length;").await;
    assert_eq!(stored, 0, "the token is forgotten");

    // A read-only token cannot list tokens: the page says so and offers no form.
    let made = api_post(
        &stack,
        "/api/v1/tokens",
        json!({ "name": "reader", "role": "read" }),
    )
    .await;
    b.sign_in(&stack.api, made["secret"].as_str().expect("secret"))
        .await;
    b.click("#nav-tokens").await;
    b.until(
        "the refusal",
        "!document.getElementById('tokens-denied').hidden \
         && document.getElementById('tokens-denied').textContent.includes('full token') \
         && document.getElementById('token-form').hidden",
    )
    .await;
    browser.close().await;
}
