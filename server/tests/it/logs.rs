//! The log pipeline: builder batches are stored once and in order, followers get the backlog,
//! then live lines, then the end frame, and can resume from any sequence number.

use futures_util::StreamExt;
use scalemesh_core::wire::{BuilderReport, LogAck, LogFrame};
use scalemesh_core::{DeploymentId, DeploymentStatus, Phase};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use crate::helpers::{FakeBuilder, TestApp, batch, lines, spawn_app};

#[tokio::test]
async fn retried_and_overlapping_batches_are_stored_once() {
    let app = spawn_app().await;
    let (id, job) = app.deploy("site").await;
    let b = FakeBuilder::new(job);
    let first = batch(0, &lines(0..100));
    for _ in 0..3 {
        let (status, ack) = b.post_batch(&first).await;
        assert_eq!(status, 200);
        assert_eq!(
            serde_json::from_value::<LogAck>(ack).expect("ack").acked,
            100
        );
    }
    // Overlaps the first batch by 50 lines.
    let (_, ack) = b.post_batch(&batch(50, &lines(50..150))).await;
    assert_eq!(
        serde_json::from_value::<LogAck>(ack).expect("ack").acked,
        150
    );
    // A gap is not stored; the ack says where to resume.
    let (_, ack) = b.post_batch(&batch(400, &lines(400..410))).await;
    assert_eq!(
        serde_json::from_value::<LogAck>(ack).expect("ack").acked,
        150
    );

    let res = app
        .http
        .get(app.url(&format!("/api/v1/deployments/{id}/logs")))
        .bearer_auth(&app.token)
        .send()
        .await
        .expect("logs");
    assert_eq!(res.headers()["content-type"], "application/x-ndjson");
    let body = res.text().await.expect("body");
    let stored: Vec<scalemesh_core::wire::LogLine> = body
        .lines()
        .map(|l| serde_json::from_str(l).expect("line"))
        .collect();
    assert_eq!(stored.len(), 150);
    for (i, line) in stored.iter().enumerate() {
        assert_eq!(line.seq, i as u64 + 1, "sequence numbers have no gaps");
        assert_eq!(line.text, format!("line {i}"));
    }
    let paged = app
        .http
        .get(app.url(&format!("/api/v1/deployments/{id}/logs?since=140&limit=5")))
        .bearer_auth(&app.token)
        .send()
        .await
        .expect("logs");
    let text = paged.text().await.expect("body");
    assert_eq!(text.lines().count(), 5);
    assert!(text.lines().next().expect("first").contains("\"seq\":141"));
}

#[tokio::test]
async fn a_follower_gets_backlog_live_lines_and_the_end() {
    let app = spawn_app().await;
    let (id, job) = app.deploy("site").await;
    let mut b = FakeBuilder::new(job);
    b.log(&lines(0..500)).await;
    let mut follower = app.follow(&id, 0).await;
    let mut late = app.follow(&id, 0).await;
    for chunk in 0..10 {
        b.log(&lines(500 + chunk * 100..600 + chunk * 100)).await;
    }
    b.succeed(&app.storage, &[("index.html", "x")]).await;
    for f in [&mut follower, &mut late] {
        let (texts, seqs, end) = f.until_end().await;
        let built: Vec<_> = texts
            .iter()
            .filter(|t| t.starts_with("line "))
            .cloned()
            .collect();
        assert_eq!(built, lines(0..1500), "every line once, in order");
        assert!(
            seqs.windows(2).all(|w| w[1] == w[0] + 1),
            "no seq repeated or skipped"
        );
        let LogFrame::End { status, url, .. } = end else {
            unreachable!()
        };
        assert_eq!(status, DeploymentStatus::Ready);
        assert_eq!(
            url,
            Some(format!("http://site.localhost:{}", app.sites.port()))
        );
    }
}

#[tokio::test]
async fn a_follower_resumes_after_the_last_line_it_saw() {
    let app = spawn_app().await;
    let (id, job) = app.deploy("site").await;
    let mut b = FakeBuilder::new(job);
    b.log(&lines(0..1000)).await;
    // Someone saw lines up to seq 700 and comes back.
    let mut follower = app.follow(&id, 700).await;
    b.log(&lines(1000..1200)).await;
    b.reported(BuilderReport::Failed {
        reason: "boom".into(),
    })
    .await;
    let (texts, seqs, end) = follower.until_end().await;
    assert_eq!(seqs.first(), Some(&701));
    let built: Vec<_> = texts
        .iter()
        .filter(|t| t.starts_with("line "))
        .cloned()
        .collect();
    assert_eq!(built, lines(700..1200));
    assert_eq!(texts.last().map(String::as_str), Some("Failed: boom"));
    assert_eq!(
        end,
        LogFrame::End {
            status: DeploymentStatus::Failed,
            reason: Some("boom".into()),
            url: None
        }
    );
    // Following a finished deployment replays and ends at once.
    let mut after = app.follow(&id, 0).await;
    let (texts, _, _) = after.until_end().await;
    assert_eq!(texts.len(), 1201);
    after.close().await;
}

#[tokio::test]
async fn lines_after_the_end_are_refused() {
    let app = spawn_app().await;
    let (_, job) = app.deploy("site").await;
    let mut b = FakeBuilder::new(job);
    b.log(&lines(0..3)).await;
    b.reported(BuilderReport::Failed { reason: "x".into() })
        .await;
    let (status, body) = b.post_batch(&batch(3, &lines(3..4))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("deployment_finished"))
    );
}

#[tokio::test]
async fn log_streams_need_the_owner_token() {
    let app = spawn_app().await;
    let (id, _) = app.deploy("site").await;
    let url = format!(
        "{}/api/v1/deployments/{id}/logs/stream",
        app.api.replacen("http", "ws", 1)
    );
    let err = tokio_tungstenite::connect_async(url)
        .await
        .expect_err("refused without a token");
    match err {
        tokio_tungstenite::tungstenite::Error::Http(res) => assert_eq!(res.status(), 401),
        other => panic!("unexpected: {other}"),
    }
}

#[tokio::test]
async fn a_deployment_keeps_a_bounded_log_and_says_where_it_is_cut() {
    let app = spawn_app().await;
    let (id, job) = app.deploy("site").await;
    let mut b = FakeBuilder::new(job);
    for chunk in 0..21 {
        let acked = b.log(&lines(chunk * 10_000..(chunk + 1) * 10_000)).await;
        assert_eq!(
            acked,
            (chunk as u64 + 1) * 10_000,
            "every line is acknowledged"
        );
    }
    let tail = app
        .http
        .get(app.url(&format!("/api/v1/deployments/{id}/logs?since=199995")))
        .bearer_auth(&app.token)
        .send()
        .await
        .expect("logs")
        .text()
        .await
        .expect("body");
    let tail: Vec<scalemesh_core::wire::LogLine> = tail
        .lines()
        .map(|l| serde_json::from_str(l).expect("line"))
        .collect();
    assert_eq!(tail.len(), 6, "200,000 lines and the note");
    assert_eq!(tail[4].text, "line 199999");
    assert!(
        tail[5].text.starts_with("[the log is cut here"),
        "{}",
        tail[5].text
    );
    assert_eq!(tail[5].seq, 200_001);
}

/// A WebSocket as a client holds it.
type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens the log WebSocket of `id` from its first line, as `app`'s admin, with a socket that
/// sends without delay.
async fn follow_from_the_start(app: &TestApp, id: &DeploymentId) -> Socket {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
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
    socket
}

/// Reads `socket` until it closes: the close frame, and the last line received before it.
async fn read_until_closed(socket: &mut Socket) -> (CloseFrame, u64) {
    let mut last = 0;
    let close = loop {
        match tokio::time::timeout(std::time::Duration::from_secs(20), socket.next())
            .await
            .expect("frames keep coming")
        {
            Some(Ok(Message::Text(text))) => {
                if let Ok(LogFrame::Lines { lines }) = serde_json::from_str(text.as_str()) {
                    last = lines.last().map_or(last, |l| l.seq);
                }
            }
            Some(Ok(Message::Close(frame))) => break frame.expect("a close frame with a reason"),
            Some(Ok(_)) => {}
            other => panic!("the stream ended without a close frame: {other:?}"),
        }
    };
    (close, last)
}

/// The close says the follower was too slow, and names a line it received to resume from.
fn the_close_names_where_to_resume(close: &CloseFrame, last: u64) {
    assert_eq!(u16::from(close.code), 4008);
    // The frame being sent when it gave up may or may not have arrived: the reason names the
    // last line surely sent, and a client resumes from its own last line anyway.
    let named: u64 = close
        .reason
        .rsplit("since=")
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{}", close.reason));
    assert!(
        named <= last && named > 0,
        "{} (last line received: {last})",
        close.reason
    );
    assert!(last < 80_000, "it was cut before the end");
}

/// Followed from after `last`, the rest of `id`'s log arrives once each, up to its end.
async fn the_rest_arrives_once_each(app: &TestApp, id: &DeploymentId, b: &FakeBuilder, last: u64) {
    let mut follower = app.follow(id, last).await;
    let rest = tokio::spawn(async move {
        let mut seqs = Vec::new();
        loop {
            match follower.next().await {
                Some(LogFrame::Lines { lines }) => seqs.extend(lines.iter().map(|l| l.seq)),
                Some(LogFrame::End { .. }) | None => return seqs,
                Some(LogFrame::State { .. }) => {}
            }
        }
    });
    let (status, _) = b
        .report(BuilderReport::Failed {
            reason: "done".into(),
        })
        .await;
    assert_eq!(status, 200);
    let seqs = rest.await.expect("follower");
    assert_eq!(seqs.first(), Some(&(last + 1)));
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "no gap, no repeat"
    );
}

/// A follower that stops reading is closed with a reason that says where to resume, and gets
/// every line after that from there.
#[tokio::test]
async fn a_follower_that_does_not_read_is_closed_and_resumes() {
    let app = crate::helpers::spawn_app_with(|s| {
        s.follower_timeout = std::time::Duration::from_secs(1);
    })
    .await;
    let (id, job) = app.deploy("site").await;
    let mut b = FakeBuilder::new(job);
    // About 40 MB: more than the sockets between the two hold.
    let long: Vec<String> = (0..80_000)
        .map(|i| format!("{i:08} {}", "x".repeat(500)))
        .collect();
    for chunk in long.chunks(2000) {
        b.log(chunk).await;
    }
    let mut socket = follow_from_the_start(&app, &id).await;
    // Read nothing for a while.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let (close, last) = read_until_closed(&mut socket).await;
    the_close_names_where_to_resume(&close, last);
    // From there, the rest arrives once each.
    the_rest_arrives_once_each(&app, &id, &b, last).await;
}

/// A follower that comes late gets the stored lines before the state, so a phase header never
/// lands ahead of the lines logged before it; a finished deployment gets no state at all.
#[tokio::test]
async fn a_late_follower_gets_the_lines_before_the_state() {
    let app = spawn_app().await;
    let (id, job) = app.deploy("site").await;
    let mut b = FakeBuilder::new(job);
    b.log(&lines(0..5)).await;
    b.reported(BuilderReport::Phase {
        phase: Phase::Building,
        progress: None,
    })
    .await;
    b.log(&lines(5..10)).await;

    let mut follower = app.follow(&id, 0).await;
    let mut seen = Vec::new();
    while seen.len() < 10 {
        match follower.next().await.expect("a frame") {
            LogFrame::Lines { lines } => seen.extend(lines.into_iter().map(|l| l.text)),
            other => panic!(
                "{other:?} came before the stored lines ({} seen)",
                seen.len()
            ),
        }
    }
    match follower.next().await.expect("a frame") {
        LogFrame::State { phase, .. } => assert_eq!(phase, Phase::Building),
        other => panic!("expected the state after the lines, got {other:?}"),
    }
    b.reported(BuilderReport::Failed {
        reason: "stop".into(),
    })
    .await;
    follower.until_end().await;

    let mut after = app.follow(&id, 0).await;
    loop {
        match after.next().await.expect("a frame") {
            LogFrame::Lines { .. } => {}
            LogFrame::State { .. } => panic!("a finished deployment's stream has no state frame"),
            LogFrame::End { status, .. } => {
                assert_eq!(status, DeploymentStatus::Failed);
                break;
            }
        }
    }
}
