//! Deployments move queued → building → uploading → ready | failed | canceled, only the server
//! moves them, and only a complete upload goes live.

use std::time::Duration;

use scalemesh_core::layout;
use scalemesh_core::storage::{Body, ObjectMeta, Storage};
use scalemesh_core::wire::{BuilderReport, LogFrame};
use scalemesh_core::{DeploymentStatus, Phase};
use scalemesh_server::runner::{JobOutcome, RunnerEvent};
use serde_json::json;

use crate::helpers::{FakeBuilder, spawn_app};

#[tokio::test]
async fn a_ready_deployment_goes_live_and_keeps_its_own_url() {
    let app = spawn_app().await;
    let (id, job) = app.deploy("site").await;
    let builder = FakeBuilder::new(job);
    assert_eq!(app.deployment(&id).await["status"], "queued");
    builder
        .succeed(
            &app.storage,
            &[
                ("index.html", "<h1>v1</h1>"),
                ("about/index.html", "about"),
                ("a.css", "b{}"),
            ],
        )
        .await;
    let dep = app.deployment(&id).await;
    assert_eq!(dep["status"], "ready");
    assert_eq!(dep["production"], true);
    for stamp in ["building_at", "uploading_at", "finished_at"] {
        assert!(dep[stamp].is_string(), "{stamp} is recorded");
    }
    let port = app.sites.port();
    let res = app.site(&format!("site.localhost:{port}"), "/").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(res.text().await.expect("body"), "<h1>v1</h1>");
    let res = app.site("site.localhost", "/about/").await;
    assert_eq!(res.text().await.expect("body"), "about");
    let res = app.site("site.localhost", "/a.css").await;
    assert_eq!(res.headers()["content-type"], "text/css; charset=utf-8");
    let preview = format!("{id}--site.localhost:{port}");
    let res = app.site(&preview, "/").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-robots-tag"], "noindex");
    // No 404.html: a single-page app, whose page requests get its index; assets stay missing.
    let res = app.site("site.localhost", "/missing").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.expect("body"), "<h1>v1</h1>");
    let res = app.site("site.localhost", "/missing.js").await;
    assert_eq!(res.status(), 404);
    let res = app.site("other.localhost", "/").await;
    assert_eq!(res.status(), 404, "an unknown project is no site");
    let res = app.site("localhost", "/").await;
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn a_failed_build_never_replaces_the_live_site() {
    let app = spawn_app().await;
    let (_, job) = app.deploy("site").await;
    FakeBuilder::new(job)
        .succeed(&app.storage, &[("index.html", "v1")])
        .await;
    let (id2, job2) = app.deploy("site").await;
    let b2 = FakeBuilder::new(job2);
    b2.reported(BuilderReport::Phase {
        phase: Phase::Building,
        progress: None,
    })
    .await;
    // Half of an upload exists, then the build fails.
    b2.upload(&app.storage, &[("index.html", "v2")]).await;
    let (status, _) = b2
        .report(BuilderReport::Failed {
            reason: "`npm run build` failed (exit code 1)".into(),
        })
        .await;
    assert_eq!(status, 200);
    let dep = app.deployment(&id2).await;
    assert_eq!(dep["status"], "failed");
    assert_eq!(dep["reason"], "`npm run build` failed (exit code 1)");
    assert_eq!(dep["production"], false);
    let res = app.site("site.localhost", "/").await;
    assert_eq!(res.text().await.expect("body"), "v1");
    // A finished deployment takes no more reports.
    let (status, _) = b2.report(BuilderReport::Ready).await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn ready_without_a_manifest_fails_instead_of_going_live() {
    let app = spawn_app().await;
    let (id, job) = app.deploy("site").await;
    let b = FakeBuilder::new(job);
    for phase in [Phase::Fetching, Phase::Uploading] {
        b.reported(BuilderReport::Phase {
            phase,
            progress: None,
        })
        .await;
    }
    let (status, _) = b.report(BuilderReport::Ready).await;
    assert_eq!(status, 409);
    let dep = app.deployment(&id).await;
    assert_eq!(dep["status"], "failed");
    assert!(
        dep["reason"]
            .as_str()
            .expect("reason")
            .contains("upload is not complete")
    );
    assert_eq!(app.site("site.localhost", "/").await.status(), 404);
}

#[tokio::test]
async fn reports_must_follow_the_lifecycle() {
    let app = spawn_app().await;
    let (_, job) = app.deploy("site").await;
    let b = FakeBuilder::new(job);
    // Ready straight from queued is refused; so is a phase the builder does not own.
    let (status, _) = b.report(BuilderReport::Ready).await;
    assert_eq!(status, 409);
    let (status, body) = b
        .report(BuilderReport::Phase {
            phase: Phase::Done,
            progress: None,
        })
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_phase"))
    );
}

#[tokio::test]
async fn the_commit_a_builder_cloned_is_kept_clean_and_only_while_it_builds() {
    let app = spawn_app().await;
    let (id, job) = app.deploy("site").await;
    let b = FakeBuilder::new(job);
    let commit = |sha: &str, message: &str| {
        BuilderReport::Commit(scalemesh_core::wire::CommitInfo {
            sha: sha.into(),
            branch: Some("main".into()),
            message: message.into(),
            author: "mona".into(),
        })
    };
    let sha = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
    let (status, body) = b.report(commit("6113728", "short")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_commit"))
    );
    let (status, body) = b
        .report(commit(sha, "Fix \u{1b}[2Jthe header\nand more"))
        .await;
    assert_eq!(status, 200, "{body}");
    let shown = app.deployment(&id).await;
    assert_eq!(shown["commit"]["sha"], sha);
    assert_eq!(shown["commit"]["branch"], "main");
    assert_eq!(shown["commit"]["message"], "Fix [2Jthe header");
    assert_eq!(shown["commit"]["author"], "mona");
    let (status, _) = b.report(BuilderReport::Failed { reason: "x".into() }).await;
    assert_eq!(status, 200);
    let (status, _) = b.report(commit(&"a".repeat(40), "later")).await;
    assert_eq!(status, 409, "a finished deployment keeps its commit");
    assert_eq!(app.deployment(&id).await["commit"]["sha"], sha);
}

#[tokio::test]
async fn job_tokens_are_scoped_to_their_deployment() {
    let app = spawn_app().await;
    let (_, job_a) = app.deploy("a").await;
    let (id_b, job_b) = app.deploy("b").await;
    let mut forged = job_b.clone();
    forged.job_token = job_a.job_token.clone();
    let (status, _) = FakeBuilder::new(forged)
        .report(BuilderReport::Failed { reason: "x".into() })
        .await;
    assert_eq!(status, 401);
    // The user's own token is no job token either.
    let mut user = job_b;
    user.job_token = app.token.clone();
    let (status, _) = FakeBuilder::new(user)
        .report(BuilderReport::Failed { reason: "x".into() })
        .await;
    assert_eq!(status, 401);
    assert_eq!(app.deployment(&id_b).await["status"], "queued");
}

#[tokio::test]
async fn cancel_stops_the_build_once() {
    let app = spawn_app().await;
    let (id, job) = app.deploy("site").await;
    let b = FakeBuilder::new(job);
    b.reported(BuilderReport::Phase {
        phase: Phase::Building,
        progress: None,
    })
    .await;
    let mut follower = app.follow(&id, 0).await;
    let (status, dep) = app
        .post(&format!("/api/v1/deployments/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, 200, "{dep}");
    assert_eq!(dep["status"], "canceled");
    assert!(
        app.recorded.canceled.lock().expect("lock").contains(&id),
        "the runner was told to stop it"
    );
    let (texts, _, end) = follower.until_end().await;
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("Canceled: canceled by admin")),
        "{texts:?}"
    );
    assert_eq!(
        end,
        LogFrame::End {
            status: DeploymentStatus::Canceled,
            reason: Some("canceled by admin".into()),
            url: None
        }
    );
    let (status, body) = app
        .post(&format!("/api/v1/deployments/{id}/cancel"), json!({}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("deployment_finished"))
    );
    // The builder's late success is refused.
    let (status, _) = b.report(BuilderReport::Ready).await;
    assert_eq!(status, 409);
}

/// The builder is held between its manifest and its report, and a cancel lands then: the
/// deployment never answers, at its own URL or anywhere.
#[tokio::test]
async fn a_cancel_after_the_manifest_leaves_nothing_served() {
    let app = spawn_app().await;
    let (id, job) = app.deploy("site").await;
    let b = FakeBuilder::new(job);
    b.reach_uploading().await;
    b.upload(&app.storage, &[("index.html", "should never answer")])
        .await;
    let preview = format!("{id}--site.localhost");
    assert_eq!(
        app.site(&preview, "/").await.status(),
        404,
        "not before it is ready"
    );
    let (status, _) = app
        .post(&format!("/api/v1/deployments/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, 200);
    let (status, _) = b.report(BuilderReport::Ready).await;
    assert_eq!(status, 409);
    assert_eq!(app.site(&preview, "/").await.status(), 404);
    assert_eq!(app.site("site.localhost", "/").await.status(), 404);
    let served = layout::manifest(&b.job.project, &id);
    assert!(
        app.storage.get_bytes(&served).await.is_err(),
        "no manifest is published for it"
    );
}

/// A builder of an earlier version wrote the served manifest itself: a deployment that fails
/// takes it back.
#[tokio::test]
async fn a_failed_deployment_takes_back_a_manifest_it_published() {
    let app = spawn_app().await;
    let (id, job) = app.deploy("site").await;
    let b = FakeBuilder::new(job);
    b.upload(&app.storage, &[("index.html", "old builder")])
        .await;
    let pending = layout::pending_manifest(&b.job.project, &id);
    let served = layout::manifest(&b.job.project, &id);
    let bytes = app.storage.get_bytes(&pending).await.expect("pending");
    app.storage
        .put(&served, Body::Bytes(bytes), &ObjectMeta::default())
        .await
        .expect("put");
    let preview = format!("{id}--site.localhost");
    // Served, so the proxy holds the manifest (it would check it again only after 30 s).
    assert_eq!(app.site(&preview, "/").await.status(), 200);
    let (status, _) = b
        .report(BuilderReport::Failed {
            reason: "late".into(),
        })
        .await;
    assert_eq!(status, 200);
    let started = std::time::Instant::now();
    while app.site(&preview, "/").await.status() != 404 {
        assert!(started.elapsed() < Duration::from_secs(10), "still served");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_builder_that_ends_without_a_report_fails_the_deployment() {
    let app = spawn_app().await;
    let (id, _) = app.deploy("site").await;
    app.events
        .send(RunnerEvent::Ended {
            deployment: id.clone(),
            outcome: JobOutcome::Exited("killed by signal 9".into()),
        })
        .expect("event");
    let dep = app.wait_status(&id, "failed").await;
    assert_eq!(
        dep["reason"],
        "the builder stopped (killed by signal 9) without reporting a result"
    );
    let (id, _) = app.deploy("site").await;
    app.events
        .send(RunnerEvent::Ended {
            deployment: id.clone(),
            outcome: JobOutcome::TimedOut,
        })
        .expect("event");
    let dep = app.wait_status(&id, "failed").await;
    assert_eq!(dep["reason"], "the build timed out after 15m");
}

#[tokio::test]
async fn an_older_deployment_finishing_late_does_not_replace_a_newer_one() {
    let app = spawn_app().await;
    let (_, old) = app.deploy("site").await;
    let (_, new) = app.deploy("site").await;
    FakeBuilder::new(new)
        .succeed(&app.storage, &[("index.html", "new")])
        .await;
    FakeBuilder::new(old)
        .succeed(&app.storage, &[("index.html", "old")])
        .await;
    assert_eq!(
        app.site("site.localhost", "/")
            .await
            .text()
            .await
            .expect("body"),
        "new"
    );
}

#[tokio::test]
async fn previews_do_not_move_production() {
    let app = spawn_app().await;
    let (_, job) = app.deploy("site").await;
    FakeBuilder::new(job)
        .succeed(&app.storage, &[("index.html", "live")])
        .await;
    let (status, dep) = app
        .post(
            "/api/v1/projects/site/deployments",
            json!({"promote": false}),
        )
        .await;
    assert_eq!(status, 201);
    let id = scalemesh_core::DeploymentId::parse(dep["id"].as_str().expect("id")).expect("id");
    let preview = format!("{id}--site.localhost");
    // Asked for while it builds: nothing there yet, and the proxy remembers that…
    assert_eq!(app.site(&preview, "/").await.status(), 404);
    let job = app.job_for(&id).await;
    FakeBuilder::new(job)
        .succeed(&app.storage, &[("index.html", "preview")])
        .await;
    // …until the deployment is ready.
    assert_eq!(
        app.site("site.localhost", "/")
            .await
            .text()
            .await
            .expect("body"),
        "live"
    );
    assert_eq!(
        app.site(&preview, "/").await.text().await.expect("body"),
        "preview"
    );
}

#[tokio::test]
async fn deleting_a_project_takes_its_site_down_and_frees_its_name() {
    let app = spawn_app().await;
    let (live, job) = app.deploy("site").await;
    FakeBuilder::new(job)
        .succeed(&app.storage, &[("index.html", "live")])
        .await;
    let (running, _) = app.deploy("site").await;
    let res = app
        .http
        .delete(app.url("/api/v1/projects/site"))
        .bearer_auth(&app.token)
        .send()
        .await
        .expect("delete");
    assert_eq!(res.status(), 204);
    assert_eq!(app.site("site.localhost", "/").await.status(), 404);
    assert_eq!(
        app.site(&format!("{live}--site.localhost"), "/")
            .await
            .status(),
        404
    );
    assert!(
        app.recorded
            .canceled
            .lock()
            .expect("lock")
            .contains(&running)
    );
    let (status, _) = app.get("/api/v1/projects/site").await;
    assert_eq!(status, 404);
    // The files go, and the name can be taken again.
    let started = std::time::Instant::now();
    let left = || async {
        let mut keys = Vec::new();
        for prefix in ["__output/site/", "__blobs/site/"] {
            keys.extend(
                scalemesh_core::storage::Storage::list(&app.storage, prefix)
                    .await
                    .expect("list"),
            );
        }
        keys
    };
    while !left().await.is_empty() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "files remain"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (status, _) = app.post("/api/v1/projects", json!({"name": "site"})).await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn wrong_methods_get_405() {
    let app = spawn_app().await;
    let res = app
        .http
        .put(app.url("/api/v1/projects"))
        .bearer_auth(&app.token)
        .send()
        .await
        .expect("put");
    assert_eq!(res.status(), 405);
    let (_, body) = crate::helpers::status_json(res).await;
    assert_eq!(body["error"]["code"], "method_not_allowed");
}

/// Two `ready` reports at once (a retried request, a duplicated task): one wins, and the site
/// stays up.
#[tokio::test]
async fn a_second_ready_report_never_takes_the_site_down() {
    let app = spawn_app().await;
    for round in 0..5 {
        let (id, job) = app.deploy("site").await;
        let b = FakeBuilder::new(job);
        b.reach_uploading().await;
        b.upload(&app.storage, &[("index.html", "up")]).await;
        let (first, second) = tokio::join!(
            b.report(BuilderReport::Ready),
            b.report(BuilderReport::Ready)
        );
        let mut statuses = [first.0, second.0];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 409], "round {round}");
        let res = app.site(&format!("{id}--site.localhost"), "/").await;
        assert_eq!(res.status(), 200, "round {round}");
        assert_eq!(app.site("site.localhost", "/").await.status(), 200);
    }
}

/// The test builder uploads with the builder's own uploader: a deployment is served from the
/// real manifest, with the file's hash in its ETag and its compressed variant when asked for.
#[tokio::test]
async fn a_deployment_is_served_as_the_builder_uploaded_it() {
    use sha2::Digest;

    let app = spawn_app().await;
    let (_, job) = app.deploy("site").await;
    let page = format!("<h1>{}</h1>", "hello ".repeat(1000));
    FakeBuilder::new(job)
        .succeed(&app.storage, &[("index.html", &page)])
        .await;
    let hash = hex::encode(sha2::Sha256::digest(page.as_bytes()));
    let plain = app.site("site.localhost", "/").await;
    let etag = plain.headers()["etag"].to_str().expect("etag").to_owned();
    assert!(etag.contains(&hash[..32]), "{etag} names {hash}");
    assert_eq!(plain.text().await.expect("body"), page);
    let packed = app
        .http
        .get(format!("http://{}/", app.sites))
        .header("host", "site.localhost")
        .header("accept-encoding", "br")
        .send()
        .await
        .expect("proxy request");
    assert_eq!(packed.headers()["content-encoding"], "br");
    let body = packed.bytes().await.expect("body");
    assert!(body.len() < page.len() / 10, "{} bytes", body.len());
}
