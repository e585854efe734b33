//! What a newcomer meets on the page: a project deployed from a folder offers no "Deploy now"
//! and says how to deploy it again; the sign-in page says where the first token is; a developer sees no way to delete a project; an owner
//! deletes one by typing its name, and its site stops.

use serde_json::json;

use super::browser::{Browser, api_post};
use crate::support::{Stack, stderr};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_project_is_deployed_from_its_folder_and_an_owner_deletes_it() {
    let stack = Stack::start();
    let site = tempfile::tempdir().expect("tempdir");
    std::fs::write(site.path().join("index.html"), "<h1>from a folder</h1>").expect("write");
    let folder = site.path().to_str().expect("utf-8 path");
    let out = stack.cli(&["deploy", folder, "--project", "folder-site"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let dana = api_post(&stack, "/api/v1/users", json!({ "name": "dana" })).await;
    let dana_secret = dana["secret"].as_str().expect("secret").to_owned();
    api_post(
        &stack,
        "/api/v1/projects/folder-site/members",
        json!({ "user": "dana", "role": "developer" }),
    )
    .await;

    let browser = Browser::start(1280, 900).await;
    let b = &browser;

    // A developer: the folder hint, no Deploy now, no branch, and no way to delete.
    b.sign_in(&stack.api, &dana_secret).await;
    b.client
        .goto(&format!("{}/#/projects/folder-site", stack.api))
        .await
        .expect("project");
    b.until(
        "the project's history",
        "document.querySelector('#history tr[data-deployment]') !== null \
         && document.getElementById('members-body').rows.length > 0",
    )
    .await;
    let page = b
        .script(
            "const shown = (id) => document.getElementById(id).offsetParent !== null;
             return {
                 deploy: shown('deploy'),
                 hint: shown('folder-hint') ? document.getElementById('folder-hint').textContent : null,
                 branch: shown('project-branch-fact'),
                 repo: document.getElementById('project-repo').textContent,
                 danger: shown('danger'),
             };",
        )
        .await;
    assert_eq!(page["deploy"], false, "{page}");
    assert!(
        page["hint"]
            .as_str()
            .is_some_and(|h| h.contains("scalemesh deploy") && h.contains("folder")),
        "{page}"
    );
    assert_eq!(page["branch"], false, "no branch for an upload: {page}");
    assert_eq!(page["repo"], "uploaded folder", "{page}");
    assert_eq!(page["danger"], false, "a developer cannot delete: {page}");

    // The owner (the admin) deletes it: the button waits for the exact name.
    b.click("#signout").await;
    let hint = b.text("#token-hint").await;
    assert!(
        hint.contains("scalemesh up") && hint.contains("admin-token"),
        "the sign-in page says where the first token is: {hint}"
    );
    b.sign_in(&stack.api, &stack.token()).await;
    b.client
        .goto(&format!("{}/#/projects/folder-site", stack.api))
        .await
        .expect("project");
    b.until(
        "the delete form",
        "document.getElementById('danger').offsetParent !== null \
         && document.getElementById('delete-name').textContent === 'folder-site'",
    )
    .await;
    b.fill("#delete-confirm", "folder-sit").await;
    let disabled = b
        .script("return document.getElementById('delete-submit').disabled;")
        .await;
    assert_eq!(disabled, true, "a wrong name cannot delete");
    b.fill("#delete-confirm", "folder-site").await;
    b.click("#delete-submit").await;
    b.until(
        "the projects list with the notice",
        "!document.getElementById('view-projects').hidden \
         && document.getElementById('notice').textContent.includes('folder-site was deleted')",
    )
    .await;
    let status = reqwest::Client::new()
        .get(format!("{}/api/v1/projects/folder-site", stack.api))
        .bearer_auth(stack.token())
        .send()
        .await
        .expect("api")
        .status();
    assert_eq!(status.as_u16(), 404, "the project is gone");
    let site = stack.site("folder-site.localhost", "/").await;
    assert_eq!(site.status().as_u16(), 404, "its site stopped");
    browser.close().await;
}
