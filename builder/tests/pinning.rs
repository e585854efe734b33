//! git connects to the address the builder checked, never to what a later lookup of the same
//! name says (DNS rebinding), with the real git against a listener on loopback and a resolver
//! the test controls.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use scalemesh_builder::source::git::{Resolve, clone_command, pin};
use scalemesh_core::git::GitUrl;
use scalemesh_core::netguard::AllowList;

/// Answers each lookup with the next of its answers (the last one again when they run out).
struct Scripted {
    answers: Vec<Vec<IpAddr>>,
    asked: AtomicUsize,
}

impl Scripted {
    fn new(answers: &[&[&str]]) -> Self {
        Self {
            answers: answers
                .iter()
                .map(|a| a.iter().map(|ip| ip.parse().expect("ip")).collect())
                .collect(),
            asked: AtomicUsize::new(0),
        }
    }
}

impl Resolve for Scripted {
    fn resolve<'a>(
        &'a self,
        _host: &'a str,
        _port: u16,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = std::io::Result<Vec<IpAddr>>> + Send + 'a>,
    > {
        let n = self.asked.fetch_add(1, Ordering::SeqCst);
        let answer = self.answers[n.min(self.answers.len() - 1)].clone();
        Box::pin(async move { Ok(answer) })
    }
}

/// A listener on 127.0.0.1 that counts connections and closes them.
async fn canary() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (port, hits)
}

async fn try_clone(url: &GitUrl, allow: &AllowList, resolver: &Scripted) -> anyhow::Result<bool> {
    let pinned = pin(url, allow, resolver).await?;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = clone_command(
        url,
        None,
        &dir.path().join("src"),
        dir.path(),
        pinned.as_ref(),
        None,
    )?;
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .expect("git ends")
        .expect("git runs");
    Ok(out.status.success())
}

#[tokio::test]
async fn git_goes_to_the_checked_address_and_nowhere_else() {
    let (port, hits) = canary().await;
    let url = GitUrl::parse(&format!("http://rebinding.test:{port}/site.git")).expect("url");

    // The name exists for no resolver but ours: git reaching the canary at all shows it used
    // the address the builder checked.
    let loopback = AllowList::parse("127.0.0.1").expect("allow");
    let direct = Scripted::new(&[&["127.0.0.1"]]);
    assert!(!try_clone(&url, &loopback, &direct).await.expect("allowed"));
    assert!(
        hits.load(Ordering::SeqCst) >= 1,
        "git connected to the pinned address"
    );

    // First an address that passes, then loopback: git never asks again, so never gets there.
    hits.store(0, Ordering::SeqCst);
    let elsewhere = AllowList::parse("127.0.0.2").expect("allow");
    let rebinding = Scripted::new(&[&["127.0.0.2"], &["127.0.0.1"]]);
    assert!(
        !try_clone(&url, &elsewhere, &rebinding)
            .await
            .expect("allowed")
    );
    assert_eq!(rebinding.asked.load(Ordering::SeqCst), 1, "one lookup");
    assert_eq!(hits.load(Ordering::SeqCst), 0, "nothing reached loopback");

    // Loopback from the start, not allowed: refused before git runs.
    let refused = Scripted::new(&[&["127.0.0.1"]]);
    let err = try_clone(&url, &AllowList::default(), &refused)
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("resolves to 127.0.0.1"), "{err}");
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}
