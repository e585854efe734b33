//! Files by content end to end: a prebuilt folder deployed, one file changed, deployed again:
//! the second upload stores exactly one new blob and touches no other, and the first
//! deployment's own URL still serves the old file. Removal and what it leaves.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::support::{Stack, stderr, stdout};

/// Every blob object of `project` in the stack's storage: name → (inode, modified ns).
fn blobs(stack: &Stack, project: &str) -> BTreeMap<String, (u64, i128)> {
    let dir = stack.data_dir().join("sites/__blobs").join(project);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return BTreeMap::new();
    };
    entries
        .map(|e| {
            let e = e.expect("entry");
            let meta = e.metadata().expect("meta");
            let modified = meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128;
            (
                e.file_name().to_string_lossy().into_owned(),
                (meta.ino(), modified),
            )
        })
        .collect()
}

/// A page of about 2 KB that differs in its number, as a documentation site's pages do.
fn page(n: usize, version: &str) -> String {
    format!(
        "<!doctype html><title>Page {n}</title><h1>Page {n} ({version})</h1>{}",
        "<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit.</p>\n".repeat(30)
    )
}

fn write_site(dir: &Path, changed: Option<usize>) {
    std::fs::create_dir_all(dir.join("pages")).expect("mkdir");
    std::fs::write(dir.join("index.html"), "<h1>Docs</h1>").expect("write");
    for n in 0..999 {
        let version = if changed == Some(n) { "v2" } else { "v1" };
        std::fs::write(dir.join(format!("pages/{n}.html")), page(n, version)).expect("write");
    }
}

/// `deploy <dir> --prebuilt --json` for `project`: the finished deployment.
fn deploy_prebuilt(stack: &Stack, dir: &Path, project: &str) -> (serde_json::Value, String) {
    let dir = dir.to_str().expect("utf-8");
    let out = stack.cli(&["deploy", dir, "--prebuilt", "--project", project, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let deployment = serde_json::from_str(&stdout(&out)).expect("json");
    (deployment, stderr(&out))
}

fn host_of(url: &str) -> String {
    url.split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("host")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redeploy_stores_only_the_file_that_changed() {
    let stack = Stack::start();
    let site = tempfile::tempdir().expect("tempdir");
    write_site(site.path(), None);

    let (first, said) = deploy_prebuilt(&stack, site.path(), "docs");
    assert_eq!(first["status"], "ready", "{first}");
    assert!(
        said.contains("1,000 new files") || said.contains("1000 new files"),
        "{said}"
    );
    let before = blobs(&stack, "docs");
    assert_eq!(before.len(), 1000, "one blob per distinct file");

    write_site(site.path(), Some(7));
    let (second, said) = deploy_prebuilt(&stack, site.path(), "docs");
    assert_eq!(second["status"], "ready", "{second}");
    assert!(
        said.contains("1 new file ") && said.contains("999 already stored"),
        "{said}"
    );
    let after = blobs(&stack, "docs");
    let added: Vec<_> = after.keys().filter(|k| !before.contains_key(*k)).collect();
    assert_eq!(added.len(), 1, "exactly one blob written: {added:?}");
    let rewritten: Vec<_> = before
        .iter()
        .filter(|(k, v)| after.get(*k) != Some(v))
        .map(|(k, _)| k)
        .collect();
    assert!(rewritten.is_empty(), "no blob written again: {rewritten:?}");

    // Production serves the new page; the first deployment's own URL the old one.
    let live = stack.site("docs.localhost", "/pages/7.html").await;
    assert_eq!(live.status(), 200);
    assert!(live.text().await.expect("body").contains("(v2)"));
    let old_host = host_of(first["url"].as_str().expect("url"));
    let old = stack.site(&old_host, "/pages/7.html").await;
    assert_eq!(old.status(), 200);
    assert!(old.text().await.expect("body").contains("(v1)"));
    // Compressed variants come from the same blob.
    let gz = reqwest::Client::new()
        .get(format!("http://{}/pages/8.html", stack.sites))
        .header("host", "docs.localhost")
        .header("accept-encoding", "br")
        .send()
        .await
        .expect("proxy answers");
    assert_eq!(gz.headers()["content-encoding"], "br");

    // The first deployment is not production: it can be removed, and then no longer answers.
    let first_id = first["id"].as_str().expect("id");
    let second_id = second["id"].as_str().expect("id");
    let refused = stack.cli(&["deployments", "rm", second_id]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("serves production"),
        "{}",
        stderr(&refused)
    );
    let removed = stack.cli(&["deployments", "rm", first_id]);
    assert!(removed.status.success(), "{}", stderr(&removed));
    assert_eq!(stack.site(&old_host, "/pages/7.html").await.status(), 404);
    let live = stack.site("docs.localhost", "/pages/7.html").await;
    assert_eq!(live.status(), 200, "production is untouched");

    let set = stack.cli(&[
        "projects",
        "retention",
        "docs",
        "--keep",
        "5",
        "--days",
        "30",
    ]);
    assert!(set.status.success(), "{}", stderr(&set));
    assert!(
        stdout(&set)
            .contains("the newest 5 ready deployments and those of the last 30 days are kept"),
        "{}",
        stdout(&set)
    );
    let shown = stdout(&stack.cli(&["projects", "retention", "docs"]));
    assert!(shown.contains("the newest 5"), "{shown}");
    let reset = stdout(&stack.cli(&["projects", "retention", "docs", "--all"]));
    assert!(reset.contains("every deployment is kept"), "{reset}");
}

/// A prebuilt folder on S3: every blob goes to the bucket with a URL the server presigned (small
/// ones many to an object, a large one streamed from disk with its length), none through the
/// API; a `package.json` in it is a file like any other, never built.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prebuilt_folder_on_s3_goes_straight_to_the_bucket_unbuilt() {
    use crate::moto::{AWS_ENV, BUCKET, Moto};
    let moto = Moto::start();
    let storage = format!("s3://{BUCKET}/direct/");
    let mut env: Vec<(&str, &str)> = AWS_ENV.to_vec();
    env.extend([
        ("SCALEMESH_STORAGE", storage.as_str()),
        ("SCALEMESH_S3_ENDPOINT", moto.endpoint.as_str()),
    ]);
    let stack = Stack::start_with_env(&[], &env);
    let site = tempfile::tempdir().expect("tempdir");
    let built = site.path().join("built-by-a-build");
    let package = format!(
        r#"{{"name":"s","scripts":{{"build":"node -e \"require('fs').writeFileSync('{}','x')\""}}}}"#,
        built.display()
    );
    std::fs::write(site.path().join("package.json"), package).expect("write");
    std::fs::write(site.path().join("index.html"), "<h1>prebuilt</h1>").expect("write");
    std::fs::write(
        site.path().join("app.js"),
        "console.log('hello');\n".repeat(500),
    )
    .expect("write");
    for n in 0..10 {
        std::fs::write(site.path().join(format!("page-{n}.html")), page(n, "v1")).expect("write");
    }
    // Larger than what is read into memory, and not compressed: sent from the file itself.
    let clip = crate::support::noise(1_600_000, 0x9e37_79b9_7f4a_7c15);
    std::fs::write(site.path().join("clip.mp4"), &clip).expect("write");

    let (first, said) = deploy_prebuilt(&stack, site.path(), "straight");
    assert_eq!(first["status"], "ready", "{said}");
    assert_eq!(first["source"]["kind"], "prebuilt");
    assert!(said.contains("14 new files"), "{said}");
    let served = stack.site("straight.localhost", "/clip.mp4").await;
    assert_eq!(served.status(), 200);
    assert!(
        served.bytes().await.expect("body") == clip,
        "the large file as it is"
    );
    assert_eq!(
        crate::presets::page(&stack, "straight.localhost").await,
        "<h1>prebuilt</h1>"
    );
    let js = reqwest::Client::new()
        .get(format!("http://{}/app.js", stack.sites))
        .header("host", "straight.localhost")
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("proxy answers");
    assert_eq!(js.headers()["content-encoding"], "gzip");
    assert!(!built.exists(), "nothing was built");
    let log = stdout(&stack.cli(&["logs", "straight"]));
    assert!(log.contains("no install, no build"), "{log}");

    // The blobs are in the bucket, and none of them passed through the API.
    let listed = moto.aws(&[
        "s3api",
        "list-objects-v2",
        "--bucket",
        BUCKET,
        "--prefix",
        "direct/__blobs/straight/",
    ]);
    let keys = listed["Contents"].as_array().map_or(0, Vec::len);
    assert_eq!(
        keys, 2,
        "13 small files in one pack, the large one alone: {listed}"
    );
    let server_log = stack.server_log();
    assert!(
        !server_log.contains("received a blob through the API"),
        "{server_log}"
    );

    // The same folder again sends nothing, in one request: every file is read again (they had
    // just been written), and none holds what the last upload did not.
    let (_, said) = deploy_prebuilt(&stack, site.path(), "straight");
    assert!(
        said.contains("0 new files") && said.contains("14 already stored"),
        "{said}"
    );
    let whole = |log: &str| {
        log.matches("a prebuilt deployment was sent whole, in one request")
            .count()
    };
    assert_eq!(whole(&stack.server_log()), 1);

    // One file changed: a single small file goes through the API, not in a pack of its own.
    std::fs::write(site.path().join("index.html"), "<h1>prebuilt v2</h1>").expect("write");
    let (_, said) = deploy_prebuilt(&stack, site.path(), "straight");
    assert!(
        said.contains("1 new file ") && said.contains("13 already stored"),
        "{said}"
    );
    assert_eq!(
        crate::presets::page(&stack, "straight.localhost").await,
        "<h1>prebuilt v2</h1>"
    );
    let server_log = stack.server_log();
    assert_eq!(
        server_log
            .matches("received a blob through the API")
            .count(),
        1
    );
    // One page changed since the last upload of the folder: it goes with the manifest, in one
    // request.
    assert_eq!(whole(&server_log), 2, "{server_log}");

    // The same folder to another project: this machine knows its files, so the deploy starts
    // whole, but that project holds none of them: the server asks for them, and they go up as
    // after a handshake (straight to the bucket).
    let (copy, said) = deploy_prebuilt(&stack, site.path(), "straight-copy");
    assert_eq!(copy["status"], "ready", "{said}");
    assert!(said.contains("14 new files"), "{said}");
    assert_eq!(
        crate::presets::page(&stack, "straight-copy.localhost").await,
        "<h1>prebuilt v2</h1>"
    );
}

/// An upload cut off (here: one file the server refuses) fails the deployment with how to go
/// on, leaves production as it was, and running the command again sends only what had not
/// gone up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_prebuilt_deploy_resumes_where_it_stopped() {
    let stack = Stack::start_with(&["--max-upload-mb", "1"]);
    let site = tempfile::tempdir().expect("tempdir");
    std::fs::write(site.path().join("index.html"), "<h1>v1</h1>").expect("write");
    let (_, said) = deploy_prebuilt(&stack, site.path(), "resume");
    assert!(said.contains("1 new file "), "{said}");

    std::fs::write(site.path().join("index.html"), "<h1>v2</h1>").expect("write");
    for n in 0..60 {
        std::fs::write(site.path().join(format!("page-{n:02}.html")), page(n, "v2"))
            .expect("write");
    }
    // Sent last (files go in path order), and larger than the server takes.
    let noise: Vec<u8> = (0..1_500_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(site.path().join("zz-large.bin"), &noise).expect("write");
    let dir = site.path().to_str().expect("utf-8");
    let out = stack.cli(&["deploy", dir, "--prebuilt", "--project", "resume"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("run the same command again"), "{err}");
    assert_eq!(
        crate::presets::page(&stack, "resume.localhost").await,
        "<h1>v1</h1>"
    );

    std::fs::remove_file(site.path().join("zz-large.bin")).expect("remove");
    let (second, said) = deploy_prebuilt(&stack, site.path(), "resume");
    assert_eq!(second["status"], "ready", "{said}");
    let stored: usize = said
        .split(" already stored")
        .next()
        .and_then(|s| s.rsplit(", ").next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no count in {said}"));
    assert!(stored >= 40, "most pages went up the first time: {said}");
    assert_eq!(
        crate::presets::page(&stack, "resume.localhost").await,
        "<h1>v2</h1>"
    );
}
