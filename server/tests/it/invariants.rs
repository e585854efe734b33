//! The invariants of ARCHITECTURE.md that no other test holds whole, one test each. Every one
//! was seen failing once with the behaviour it guards broken.

use std::time::{Duration, Instant};

use scalemesh_core::layout;
use scalemesh_core::storage::Storage;
use scalemesh_core::wire::{BuilderReport, LogFrame, LogLine, MAX_LOG_LINE_BYTES};
use scalemesh_core::{DeploymentId, Phase};
use serde_json::json;
use time::OffsetDateTime;

use crate::helpers::{
    FakeBuilder, FakeRunnerKind, TestApp, lines, spawn_app, spawn_app_at, spawn_app_on,
    spawn_app_with,
};

/// The server's database, opened beside it.
fn database(app_data: &std::path::Path) -> rusqlite::Connection {
    let db = rusqlite::Connection::open(app_data.join("scalemesh.db")).expect("the database");
    db.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    db
}

fn ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).expect("a time in range")
}

/// A cancel and the builder's `ready` sent at once: one of them wins, whole. A canceled
/// deployment answers nowhere and has no published manifest; a ready one answers and is live;
/// and neither moves again.
#[tokio::test]
async fn a_cancel_racing_success_ends_in_exactly_one_state() {
    let app = spawn_app().await;
    let mut finished = Vec::new();
    let mut live: Option<String> = None;
    for round in 0..20 {
        let (id, job) = app.deploy("race").await;
        let b = FakeBuilder::new(job);
        b.reach_uploading().await;
        let page = format!("round {round}");
        b.upload(&app.storage, &[("index.html", &page)]).await;
        let cancel_path = format!("/api/v1/deployments/{id}/cancel");
        // The cancel leaves a little later each round (the `ready` reads and writes storage
        // first), so it lands at different points of the `ready`.
        let cancel = async {
            for _ in 0..round * 3 {
                tokio::task::yield_now().await;
            }
            app.post(&cancel_path, json!({})).await
        };
        let ((canceled, _), (readied, _)) = tokio::join!(cancel, b.report(BuilderReport::Ready));
        let dep = app.deployment(&id).await;
        let status = dep["status"].as_str().expect("status").to_owned();
        let preview = app.site(&format!("{id}--race.localhost"), "/").await;
        let preview = (
            preview.status().as_u16(),
            preview.text().await.expect("body"),
        );
        let published = app
            .storage
            .get_bytes(&layout::manifest(&b.job.project, &id))
            .await
            .is_ok();
        match (canceled, readied, status.as_str()) {
            (200, 409, "canceled") => {
                assert_eq!(dep["production"], false, "round {round}");
                assert_eq!(
                    preview.0, 404,
                    "round {round}: a canceled deployment answers"
                );
                assert!(
                    !published,
                    "round {round}: a canceled deployment's manifest stays"
                );
            }
            (409, 200, "ready") => {
                assert_eq!(dep["production"], true, "round {round}");
                assert_eq!(preview, (200, page.clone()), "round {round}");
                assert!(
                    published,
                    "round {round}: a ready deployment has no manifest"
                );
                live = Some(page);
            }
            other => panic!("round {round}: cancel, ready and status were {other:?}"),
        }
        let production = app.site("race.localhost", "/").await;
        match &live {
            Some(page) => assert_eq!(production.text().await.expect("body"), *page),
            None => assert_eq!(production.status(), 404, "round {round}"),
        }
        finished.push((id, b, status));
    }
    for (id, b, status) in &finished {
        let (again, _) = app
            .post(&format!("/api/v1/deployments/{id}/cancel"), json!({}))
            .await;
        let (late, _) = b.report(BuilderReport::Ready).await;
        assert_eq!((again, late), (409, 409), "{id} takes no second ending");
        assert_eq!(app.deployment(id).await["status"], status.as_str(), "{id}");
    }
}

/// After a restart, before the first answer: what was queued is handed to the runner again
/// (with a new job token) and stays queued; what was running has failed, saying why.
#[tokio::test]
async fn on_restart_queued_builds_are_queued_again_before_the_api_answers() {
    let data = tempfile::tempdir().expect("tempdir");
    let path = data.path().to_path_buf();
    let (running, queued, old_job) = {
        let app = spawn_app_at(&path, None, |_| {}).await;
        let (running, job) = app.deploy("restart").await;
        FakeBuilder::new(job)
            .reported(BuilderReport::Phase {
                phase: Phase::Building,
                progress: None,
            })
            .await;
        let (queued, job) = app.deploy("restart").await;
        (running, queued, job)
    };
    let app = spawn_app_at(&path, Some(data), |_| {}).await;
    let first = app.deployment(&running).await;
    let submitted: Vec<DeploymentId> = app
        .recorded
        .jobs
        .lock()
        .expect("lock")
        .iter()
        .map(|j| j.deployment.clone())
        .collect();
    assert_eq!(first["status"], "failed", "the first answer: {first}");
    assert!(
        first["reason"]
            .as_str()
            .is_some_and(|r| r.contains("server restarted")),
        "{first}"
    );
    assert_eq!(
        submitted,
        std::slice::from_ref(&queued),
        "by the first answer, the queued build (only) is with the runner again"
    );
    assert_eq!(app.deployment(&queued).await["status"], "queued");
    let mut old_job = old_job;
    old_job.api_url = app.api.clone();
    let (status, _) = FakeBuilder::new(old_job)
        .report(BuilderReport::Phase {
            phase: Phase::Fetching,
            progress: None,
        })
        .await;
    assert_eq!(status, 401, "the job token of before the restart is void");
    let job = app.job_for(&queued).await;
    FakeBuilder::new(job)
        .succeed(&app.storage, &[("index.html", "after the restart")])
        .await;
    assert_eq!(app.deployment(&queued).await["status"], "ready");
}

/// The reaper fails a build still unfinished a grace period past the build timeout, counted
/// from when it started building: not one created long ago that started just now, not one
/// within the grace, not one still queued.
///
/// The reaper runs as the server starts and then every 15 s, with a grace of 2 minutes; so
/// the test stops the server, moves the times back in its database, and starts it again,
/// with a runner whose jobs outlive a restart (or the restart itself would fail them).
#[tokio::test]
async fn the_reaper_fails_builds_overdue_since_they_started_building() {
    let data = tempfile::tempdir().expect("tempdir");
    let path = data.path().to_path_buf();
    let timeout = |s: &mut scalemesh_server::settings::Settings| {
        s.build_timeout = Duration::from_secs(1);
    };
    let [queued, fresh, in_grace, overdue] = {
        let app = spawn_app_on(&path, None, FakeRunnerKind::Remote, timeout).await;
        let mut ids = Vec::new();
        for building in [false, true, true, true] {
            let (id, job) = app.deploy("slow").await;
            if building {
                FakeBuilder::new(job)
                    .reported(BuilderReport::Phase {
                        phase: Phase::Building,
                        progress: None,
                    })
                    .await;
            }
            ids.push(id);
        }
        <[DeploymentId; 4]>::try_from(ids).expect("four")
    };
    let now = OffsetDateTime::now_utc();
    let minutes = |m: i64| now - time::Duration::minutes(m);
    let db = database(&path);
    // Oldest first, as the reaper goes: each is judged before the overdue one fails.
    for (id, created, building) in [
        (&queued, minutes(3 * 24 * 60), None),
        (&fresh, minutes(2 * 24 * 60), Some(now)),
        (&in_grace, minutes(24 * 60), Some(minutes(1))),
        (&overdue, minutes(10), Some(minutes(5))),
    ] {
        db.execute(
            "UPDATE deployments SET created_at = ?2, building_at = ?3 WHERE id = ?1",
            rusqlite::params![id.as_str(), ms(created), building.map(ms)],
        )
        .expect("update");
    }
    drop(db);
    let app = spawn_app_on(&path, Some(data), FakeRunnerKind::Remote, timeout).await;
    let dep = app.wait_status(&overdue, "failed").await;
    assert_eq!(
        dep["reason"],
        "no result from the builder within the build timeout (1s)"
    );
    assert!(
        app.recorded
            .canceled
            .lock()
            .expect("lock")
            .contains(&overdue),
        "the runner was told to stop it"
    );
    for (id, what, status) in [
        (&queued, "queued long ago", "queued"),
        (&fresh, "created long ago, building since now", "building"),
        (&in_grace, "past the timeout, within the grace", "building"),
    ] {
        let dep = app.deployment(id).await;
        assert_eq!(dep["status"], status, "{what}: {dep}");
    }
}

/// A move of production as `alias_events` records it: to, from, what and who.
type AliasEvent = (String, Option<String>, String, String);

fn event(to: &DeploymentId, from: Option<&DeploymentId>, action: &str, actor: &str) -> AliasEvent {
    (
        to.to_string(),
        from.map(ToString::to_string),
        action.to_owned(),
        actor.to_owned(),
    )
}

/// `project`'s production moves, oldest first, read from the database.
fn alias_events(app: &TestApp, project: &str) -> Vec<AliasEvent> {
    let db = database(app.data_dir());
    let mut stmt = db
        .prepare(
            "SELECT e.deployment_id, e.previous, e.action, e.actor FROM alias_events e
             JOIN projects p ON p.id = e.project_id WHERE p.name = ?1 ORDER BY e.id",
        )
        .expect("query");
    stmt.query_map([project], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    })
    .expect("rows")
    .collect::<Result<_, _>>()
    .expect("rows")
}

/// Every move of production — a build going live, a rollback, a promote — is in
/// `alias_events` with who made it; a preview, a failed build and a build kept out by a
/// rollback move nothing and record nothing.
#[tokio::test]
async fn every_production_move_is_recorded_with_who_made_it() {
    let app = spawn_app().await;
    let bob = app.add_user("bob", false).await;
    let (v1, job) = app.deploy("moves").await;
    let (status, body) = app
        .post(
            "/api/v1/projects/moves/members",
            json!({"user": "bob", "role": "developer"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    FakeBuilder::new(job)
        .succeed(&app.storage, &[("index.html", "v1")])
        .await;
    let (status, body) = app
        .post(
            "/api/v1/projects/moves/deployments",
            json!({"promote": false}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let preview = DeploymentId::parse(body["id"].as_str().expect("id")).expect("id");
    FakeBuilder::new(app.job_for(&preview).await)
        .succeed(&app.storage, &[("index.html", "preview")])
        .await;
    let (_, job) = app.deploy("moves").await;
    FakeBuilder::new(job)
        .reported(BuilderReport::Failed {
            reason: "broken".into(),
        })
        .await;
    let (v2, job) = app.deploy("moves").await;
    FakeBuilder::new(job)
        .succeed(&app.storage, &[("index.html", "v2")])
        .await;
    assert_eq!(
        alias_events(&app, "moves"),
        [
            event(&v1, None, "deploy", "build"),
            event(&v2, Some(&v1), "deploy", "build"),
        ],
        "two builds went live"
    );
    let (status, body) = app
        .call(&bob, "POST", "/api/v1/projects/moves/rollback", None)
        .await;
    assert_eq!(status, 200, "{body}");
    let (v3, job) = app.deploy("moves").await;
    FakeBuilder::new(job)
        .succeed(&app.storage, &[("index.html", "v3")])
        .await;
    assert_eq!(app.deployment(&v3).await["production"], false, "pinned");
    for id in [&v3, &preview] {
        let (status, body) = app
            .post(&format!("/api/v1/deployments/{id}/promote"), json!({}))
            .await;
        assert_eq!(status, 200, "{body}");
    }

    assert_eq!(
        alias_events(&app, "moves"),
        [
            event(&v1, None, "deploy", "build"),
            event(&v2, Some(&v1), "deploy", "build"),
            event(&v1, Some(&v2), "rollback", "bob"),
            event(&v3, Some(&v1), "promote", "admin"),
            event(&preview, Some(&v3), "promote", "admin"),
        ]
    );
    let (_, project) = app.get("/api/v1/projects/moves").await;
    assert_eq!(project["production_deployment"], preview.as_str());
}

/// A line a follower gets live is in the stored log already, as it was stored (cut, if it was
/// too long): it is stored, then published. Each live frame is checked against the stored log
/// at once, while the builder goes on sending.
#[tokio::test]
async fn a_line_received_live_is_already_stored() {
    let app = spawn_app().await;
    let (id, job) = app.deploy("order").await;
    let mut follower = app.follow(&id, 0).await;
    let rounds = 40;
    let per_round = 101;
    let builder = tokio::spawn(async move {
        let mut b = FakeBuilder::new(job);
        for round in 0..rounds {
            let mut texts = lines(round * 100..(round + 1) * 100);
            // Longer than a line may be: published as it is stored, cut.
            texts.push(format!(
                "{round:04}{}",
                "x".repeat(MAX_LOG_LINE_BYTES + 100)
            ));
            b.log(&texts).await;
        }
    });
    let mut seen = 0;
    while seen < rounds * per_round {
        match follower.next().await.expect("a frame") {
            LogFrame::Lines { lines } => {
                let first = lines.first().expect("a line").seq;
                let stored = app
                    .stored_log(&id, first - 1, Some(lines.len() as u32))
                    .await;
                let seqs = |lines: &[LogLine]| lines.iter().map(|l| l.seq).collect::<Vec<_>>();
                assert_eq!(
                    seqs(&stored),
                    seqs(&lines),
                    "lines were received before they were stored"
                );
                for (stored, live) in stored.iter().zip(&lines) {
                    assert!(
                        stored.text == live.text && stored.stream == live.stream,
                        "line {} was received otherwise than it was stored",
                        live.seq
                    );
                }
                seen += lines.len();
            }
            LogFrame::State { .. } => {}
            end @ LogFrame::End { .. } => panic!("{end:?}"),
        }
    }
    builder.await.expect("the builder");
    follower.close().await;
}

/// Followers that never read, each with megabytes of backlog to catch up on, do not slow the
/// builder: every log batch is taken, and quickly.
#[tokio::test]
async fn followers_that_never_read_do_not_slow_the_build() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let app = spawn_app_with(|s| s.follower_timeout = Duration::from_secs(10)).await;
    let (id, job) = app.deploy("busy").await;
    let mut b = FakeBuilder::new(job);
    // About 16 MB: more than the sockets between a follower and the server hold.
    let backlog: Vec<String> = (0..32_000)
        .map(|i| format!("{i:08} {}", "x".repeat(500)))
        .collect();
    for chunk in backlog.chunks(2000) {
        b.log(chunk).await;
    }
    let mut stalled = Vec::new();
    for _ in 0..4 {
        let url = format!(
            "{}/api/v1/deployments/{id}/logs/stream?since=0",
            app.api.replacen("http", "ws", 1)
        );
        let mut req = url.into_client_request().expect("request");
        req.headers_mut().insert(
            "authorization",
            format!("Bearer {}", app.token).parse().expect("header"),
        );
        let (socket, _) = tokio_tungstenite::connect_async_with_config(req, None, false)
            .await
            .expect("websocket");
        // Kept open, never read.
        stalled.push(socket);
    }
    let mut acked = backlog.len() as u64;
    for round in 0..20 {
        let texts = lines(round * 500..(round + 1) * 500);
        let started = Instant::now();
        let now = b.log(&texts).await;
        let took = started.elapsed();
        acked += texts.len() as u64;
        assert_eq!(now, acked, "batch {round} was taken whole");
        assert!(
            took < Duration::from_secs(2),
            "batch {round} took {took:?} with {} followers not reading",
            stalled.len()
        );
    }
    drop(stalled);
}

/// A line longer than 16 KiB is stored cut to at most 16 KiB, followed by a mark that says so,
/// on a character boundary; a line of exactly 16 KiB is kept whole.
#[tokio::test]
async fn a_line_past_16_kib_is_cut_and_marked() {
    let app = spawn_app().await;
    let (id, job) = app.deploy("long").await;
    let mut b = FakeBuilder::new(job);
    let texts = [
        "a".repeat(MAX_LOG_LINE_BYTES),
        "b".repeat(MAX_LOG_LINE_BYTES + 1),
        // Three bytes a character: 16 KiB falls inside one.
        "€".repeat(MAX_LOG_LINE_BYTES / 3 + 10),
        "c".repeat(1024 * 1024),
    ];
    b.log(&texts).await;
    let stored = app.stored_log(&id, 0, None).await;
    assert_eq!(stored.len(), texts.len());
    assert_eq!(stored[0].text, texts[0], "16 KiB exactly is kept whole");
    for (line, sent) in stored.iter().zip(&texts).skip(1) {
        let kept = line
            .text
            .strip_suffix(" […line cut]")
            .unwrap_or_else(|| panic!("line {} is not marked as cut", line.seq));
        assert!(kept.len() <= MAX_LOG_LINE_BYTES, "line {}", line.seq);
        assert!(kept.len() > MAX_LOG_LINE_BYTES - 4, "line {}", line.seq);
        assert!(sent.starts_with(kept), "line {}", line.seq);
    }
}

/// A chatty build stops being stored at 64 MiB of text (less than one line past it), with one
/// note saying so, every line still acknowledged; a replay answer holds at most 4 MiB of text
/// past its first line, and a frame a follower catching up gets at most 64 KiB past its first
/// line.
#[tokio::test]
async fn the_byte_cap_bounds_the_log_and_every_replay_and_frame() {
    const MAX_BYTES: i64 = 64 * 1024 * 1024;
    const REPLAY_BYTES: usize = 4 * 1024 * 1024;
    const FRAME_BYTES: usize = 64 * 1024;
    let app = spawn_app().await;
    let (id, job) = app.deploy("chatty").await;
    let mut b = FakeBuilder::new(job);
    let line = |i: usize| format!("{i:06} {}", "x".repeat(16_000 - 7));
    // 4,200 lines of 16,000 bytes, 67 MB: the cap falls within the last batch.
    for chunk in 0..10 {
        let texts: Vec<String> = (chunk * 420..(chunk + 1) * 420).map(line).collect();
        assert_eq!(b.log(&texts).await, (chunk as u64 + 1) * 420, "all taken");
    }
    let (count, kept_bytes): (u64, i64) = database(app.data_dir())
        .query_row(
            "SELECT count(*), sum(length(CAST(text AS BLOB))) FROM log_lines
             WHERE deployment_id = ?1 AND stream != 'system'",
            [id.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("the stored log");
    assert!(
        (MAX_BYTES..MAX_BYTES + MAX_LOG_LINE_BYTES as i64).contains(&kept_bytes),
        "{kept_bytes} bytes kept"
    );
    let tail = app.stored_log(&id, count - 1, None).await;
    let texts: Vec<&str> = tail.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts.len(), 2, "the last line kept, and the note");
    assert_eq!(texts[0], line(count as usize - 1));
    assert!(texts[1].starts_with("[the log is cut here"), "{}", texts[1]);

    let text_bytes = |lines: &[LogLine]| lines.iter().map(|l| l.text.len()).sum::<usize>();
    for since in [0, 1000] {
        let answer = app.stored_log(&id, since, None).await;
        let first = answer.first().expect("lines");
        assert!(
            text_bytes(&answer) - first.text.len() < REPLAY_BYTES,
            "a replay from {since} holds {} bytes",
            text_bytes(&answer)
        );
    }
    let mut follower = app.follow(&id, 0).await;
    // Catching up on 64 MiB: the first frames show the bound.
    for _ in 0..50 {
        let Some(LogFrame::Lines { lines }) = follower.next().await else {
            panic!("a follower catching up gets lines");
        };
        let first = lines.first().expect("a line");
        assert!(
            text_bytes(&lines) - first.text.len() < FRAME_BYTES,
            "a frame from {} holds {} bytes",
            first.seq,
            text_bytes(&lines)
        );
    }
    follower.close().await;
}

/// What a 5xx says: the one error shape and a generic message, never a path, SQL, a stored
/// value or an error chain. Provoked for real: a corrupt row, a table gone from under the
/// server, and the storage folder replaced by a file.
#[tokio::test]
async fn a_5xx_carries_no_internals() {
    let app = spawn_app().await;
    let (ready, job) = app.deploy("broken").await;
    FakeBuilder::new(job)
        .succeed(&app.storage, &[("index.html", "up")])
        .await;
    let (corrupt, _) = app.deploy("broken").await;
    let db = database(app.data_dir());
    db.execute(
        "UPDATE deployments SET status = 'status-from-nowhere' WHERE id = ?1",
        [corrupt.as_str()],
    )
    .expect("update");
    db.execute_batch("DROP TABLE alias_events").expect("drop");
    drop(db);
    let answers = [
        app.get(&format!("/api/v1/deployments/{corrupt}")).await,
        app.get("/api/v1/projects/broken/deployments").await,
        app.post(&format!("/api/v1/deployments/{ready}/promote"), json!({}))
            .await,
    ];
    let sites = app.data_dir().join("sites");
    std::fs::rename(&sites, app.data_dir().join("sites.moved")).expect("move storage away");
    std::fs::write(&sites, "not a folder").expect("a file in its place");
    let storage_failed = app
        .post(
            "/api/v1/projects/broken/domains",
            json!({"host": "www.example.com"}),
        )
        .await;
    let internals = [
        app.data_dir().to_str().expect("a path"),
        "sites",
        "scalemesh.db",
        "status-from-nowhere",
        "corrupt",
        "alias_events",
        "no such table",
        "database",
        "sqlite",
        "INSERT",
        "SELECT",
        "os error",
        "directory",
        "domain",
        "www.example.com",
    ];
    let generic = |code: &str| match code {
        "internal" => "the server failed to handle this request; its log has the details",
        "storage_unavailable" => {
            "storage is unavailable: what was sent could not be stored, and nothing was \
             changed; try again in a moment (the server's log has the details)"
        }
        other => panic!("a 5xx with the code {other}"),
    };
    for (i, (status, body)) in answers.iter().chain([&storage_failed]).enumerate() {
        assert!(*status >= 500, "answer {i}: {status} {body}");
        let code = body["error"]["code"].as_str().unwrap_or_default();
        assert_eq!(
            *body,
            json!({"error": {"code": code, "message": generic(code)}}),
            "answer {i}"
        );
        let text = body.to_string().to_lowercase();
        for internal in internals {
            assert!(
                !text.contains(&internal.to_lowercase()),
                "answer {i} says {internal:?}: {body}"
            );
        }
    }
    assert_eq!(storage_failed.0, 503);
    assert!(answers.iter().all(|(status, _)| *status == 500));
}

/// A live frame is as bounded as a caught-up one, however large the builder's batch: a
/// follower that stops reading holds one small frame, not the batch.
#[tokio::test]
async fn live_frames_are_bounded_however_large_the_batch() {
    const FRAME_BYTES: usize = 64 * 1024;
    let app = spawn_app().await;
    let (id, job) = app.deploy("batchy").await;
    let mut b = FakeBuilder::new(job);
    let mut follower = app.follow(&id, 0).await;
    // Following before any line is stored: what comes next is live.
    let texts: Vec<String> = (0..420)
        .map(|i| format!("{i:06} {}", "y".repeat(15_993)))
        .collect();
    assert_eq!(b.log(&texts).await, 420);
    let mut seen = 0;
    while seen < texts.len() {
        match follower.next().await {
            Some(LogFrame::Lines { lines }) => {
                let last = lines.last().expect("a line");
                let bytes: usize = lines.iter().map(|l| l.text.len()).sum();
                assert!(
                    bytes - last.text.len() < FRAME_BYTES,
                    "a live frame of {} lines holds {bytes} bytes",
                    lines.len()
                );
                for line in &lines {
                    assert_eq!(line.text, texts[seen], "in order, once each");
                    seen += 1;
                }
            }
            Some(_) => {}
            None => panic!("the stream ended after {seen} lines"),
        }
    }
    follower.close().await;
}
