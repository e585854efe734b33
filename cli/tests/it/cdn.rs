//! What a project serves, changed without a build: promote, rollback, custom domains; and the
//! routing files a build carries.

use serde_json::Value;

use crate::support::*;

fn deploy_json(stack: &Stack, url: &str) -> Value {
    let out = stack.cli(&["deploy", url, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).expect("deployment JSON")
}

async fn body(stack: &Stack, host: &str, path: &str) -> String {
    stack.site(host, path).await.text().await.expect("body")
}

/// The row of `deployments ls` for `id`.
fn listed(stack: &Stack, project: &str, id: &str) -> String {
    let out = stack.cli(&["deployments", "ls", project]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
        .lines()
        .find(|l| l.starts_with(id))
        .unwrap_or_else(|| panic!("{id} is listed: {}", stdout(&out)))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_and_promote_move_production_without_a_build() {
    let git = GitServer::start().await;
    let repo = git.repo("shop", &[("index.html", "<h1>v1</h1>")]);
    let stack = Stack::start();
    let v1 = deploy_json(&stack, &repo.url)["id"]
        .as_str()
        .expect("id")
        .to_owned();
    repo.commit(&[("index.html", "<h1>v2</h1>")], "v2");
    let v2 = deploy_json(&stack, &repo.url)["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(body(&stack, "shop.localhost", "/").await, "<h1>v2</h1>");
    assert!(listed(&stack, "shop", &v2).contains("(live)"));

    // Back to the one live before, at once.
    let out = stack.cli(&["rollback", "shop"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        "http://shop.localhost:".to_owned() + &stack.sites.port().to_string()
    );
    assert_eq!(body(&stack, "shop.localhost", "/").await, "<h1>v1</h1>");
    // Live, and pinned there by the rollback.
    assert!(listed(&stack, "shop", &v1).contains("(live, pinned)"));
    assert!(!listed(&stack, "shop", &v2).contains("(live"));
    let log = stdout(&stack.cli(&["logs", &v1]));
    assert!(
        log.contains("Rolled back production to this deployment"),
        "{log}"
    );

    // Pinned: a new build stays at its own URL until promoted.
    repo.commit(&[("index.html", "<h1>v3</h1>")], "v3");
    let v3 = deploy_json(&stack, &repo.url);
    let v3_id = v3["id"].as_str().expect("id").to_owned();
    assert_eq!(v3["production"], false);
    assert_eq!(body(&stack, "shop.localhost", "/").await, "<h1>v1</h1>");
    assert_eq!(
        body(&stack, &format!("{v3_id}--shop.localhost"), "/").await,
        "<h1>v3</h1>"
    );
    let out = stack.cli(&["promote", &v3_id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(body(&stack, "shop.localhost", "/").await, "<h1>v3</h1>");

    // Back to a named one, then forward again: each is a move of the alias only.
    let out = stack.cli(&["rollback", "--to", &v2]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(body(&stack, "shop.localhost", "/").await, "<h1>v2</h1>");
    let history = stack.api_get("/api/v1/projects/shop/deployments").await;
    let live: Vec<&str> = history["deployments"]
        .as_array()
        .expect("list")
        .iter()
        .filter(|d| d["production"] == true)
        .map(|d| d["id"].as_str().expect("id"))
        .collect();
    assert_eq!(live, [v2.as_str()]);

    // Refusals leave production as it was.
    let failing = stack.cli(&["deploy", &repo.url, "--ref", "no-such-branch"]);
    assert_eq!(failing.status.code(), Some(3), "{}", stderr(&failing));
    let list = stack.api_get("/api/v1/projects/shop/deployments").await;
    let failed = list["deployments"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let out = stack.cli(&["promote", &failed]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("only a ready deployment"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("hint:"), "{}", stderr(&out));
    let out = stack.cli(&["rollback", "shop", "--to", "zzzzzzzzzzzz"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let out = stack.cli(&["promote", "../../x"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(body(&stack, "shop.localhost", "/").await, "<h1>v2</h1>");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_domains_serve_their_project_only() {
    let git = GitServer::start().await;
    let shop = git.repo("shop", &[("index.html", "<h1>shop</h1>")]);
    let blog = git.repo("blog", &[("index.html", "<h1>blog</h1>")]);
    let stack = Stack::start();
    deploy_json(&stack, &shop.url);
    deploy_json(&stack, &blog.url);

    let out = stack.cli(&["domains", "add", "shop", "WWW.Shop.Test."]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        format!("http://www.shop.test:{}", stack.sites.port())
    );
    assert_eq!(body(&stack, "www.shop.test", "/").await, "<h1>shop</h1>");
    let out = stack.cli(&["domains", "ls", "shop"]);
    assert!(stdout(&out).contains("www.shop.test"), "{}", stdout(&out));

    // One host, one project.
    let out = stack.cli(&["domains", "add", "blog", "www.shop.test"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("already serves another project") && !stderr(&out).contains("shop "),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("hint:"), "{}", stderr(&out));
    for bad in [
        "not a host",
        "127.0.0.1",
        "blog.localhost",
        "-x.test",
        "a..b",
    ] {
        let out = stack.cli(&["domains", "add", "blog", "--", bad]);
        assert_eq!(out.status.code(), Some(1), "{bad}: {}", stderr(&out));
    }
    assert_eq!(body(&stack, "www.shop.test", "/").await, "<h1>shop</h1>");
    let unknown = stack.site("www.blog.test", "/").await;
    assert_eq!(unknown.status(), 404);

    let out = stack.cli(&["domains", "rm", "shop", "www.shop.test"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stack.site("www.shop.test", "/").await.status(), 404);
    let out = stack.cli(&["domains", "rm", "shop", "www.shop.test"]);
    assert_eq!(out.status.code(), Some(1));
    // Now free for another project.
    let out = stack.cli(&["domains", "add", "blog", "www.shop.test"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(body(&stack, "www.shop.test", "/").await, "<h1>blog</h1>");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_files_apply_and_their_mistakes_fail_the_build() {
    let git = GitServer::start().await;
    let repo = git.repo(
        "docs",
        &[
            ("index.html", "<h1>home</h1>"),
            ("about.html", "<h1>about</h1>"),
            ("_redirects", "/old /about 301\n"),
            ("_headers", "/*\n  X-Frame-Options: DENY\n"),
            (
                "scalemesh.json",
                r#"{"redirects":[{"from":"/docs/*","to":"/about","status":302}]}"#,
            ),
        ],
    );
    let stack = Stack::start();
    deploy_json(&stack, &repo.url);
    let res = stack.site("docs.localhost", "/about").await;
    assert_eq!(res.headers()["x-frame-options"], "DENY");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let sites = format!("http://127.0.0.1:{}", stack.sites.port());
    let res = client
        .get(format!("{sites}/old"))
        .header("host", "docs.localhost")
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 301);
    assert_eq!(res.headers()["location"], "/about");
    let res = client
        .get(format!("{sites}/docs/x"))
        .header("host", "docs.localhost")
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 302);

    repo.commit(
        &[("_redirects", "# rules\n/old /about 301\n/broken /x 299\n")],
        "a typo",
    );
    let out = stack.cli(&["deploy", &repo.url]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("_redirects line 3"),
        "{}",
        stderr(&out)
    );
    // The live site is the previous one, rules and all.
    assert_eq!(
        client
            .get(format!("{sites}/old"))
            .header("host", "docs.localhost")
            .send()
            .await
            .expect("request")
            .status(),
        301
    );
}
