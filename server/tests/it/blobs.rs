//! Files by content through the API: the digest handshake, blobs sent through the server,
//! prebuilt manifests, removal, retention policies, and the sweep, which never takes a blob an
//! upload in flight has named and takes everything nobody names.

use scalemesh_core::layout::{self, FileLayout, Manifest, ManifestEntry};
use scalemesh_core::storage::{Body, ObjectMeta, Storage};
use scalemesh_core::wire::{BlobLayout, InlineBlob};
use scalemesh_core::{DeploymentId, ProjectName};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{TestApp, spawn_app};

fn sha(content: &str) -> String {
    hex::encode(Sha256::digest(content.as_bytes()))
}

/// A prebuilt deployment being uploaded, with its job token.
struct Upload {
    id: String,
    token: String,
    project: String,
}

impl Upload {
    async fn start(app: &TestApp, project: &str, promote: bool) -> Self {
        let (status, body) = app
            .post(
                &format!("/api/v1/projects/{project}/prebuilt"),
                json!({ "promote": promote }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["deployment"]["status"], "uploading", "{body}");
        Self {
            id: body["deployment"]["id"].as_str().expect("id").to_owned(),
            token: body["job_token"].as_str().expect("token").to_owned(),
            project: project.to_owned(),
        }
    }

    /// The handshake for these contents: (present, missing) digests.
    async fn check(&self, app: &TestApp, contents: &[&str]) -> (Vec<String>, Vec<String>) {
        let blobs: Vec<Value> = contents
            .iter()
            .map(|c| json!({"sha256": sha(c), "size": c.len()}))
            .collect();
        let (status, body) = app
            .call(
                &self.token,
                "POST",
                &format!("/api/v1/deployments/{}/blobs", self.id),
                Some(json!({ "blobs": blobs })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let present = body["present"]
            .as_object()
            .expect("present")
            .keys()
            .cloned()
            .collect();
        let missing = body["missing"]
            .as_array()
            .expect("missing")
            .iter()
            .map(|m| m["sha256"].as_str().expect("sha").to_owned())
            .collect();
        (present, missing)
    }

    /// Sends `body` through the API as the blob named `name`.
    async fn put_as(&self, app: &TestApp, name: &str, body: &str) -> (u16, Value) {
        let url = app.url(&format!(
            "/api/v1/deployments/{}/blobs/{name}?size={}",
            self.id,
            body.len()
        ));
        let res = app
            .http
            .put(url)
            .bearer_auth(&self.token)
            .body(body.to_owned())
            .send()
            .await
            .expect("put");
        crate::helpers::status_json(res).await
    }

    async fn put(&self, app: &TestApp, content: &str) {
        let (status, body) = self.put_as(app, &sha(content), content).await;
        assert_eq!(status, 204, "{body}");
    }

    fn manifest(&self, files: &[(&str, &str)]) -> Manifest {
        Manifest {
            project: ProjectName::parse(&self.project).expect("name"),
            deployment: DeploymentId::parse(&self.id).expect("id"),
            created_at: time::OffsetDateTime::now_utc(),
            files: files
                .iter()
                .map(|(path, content)| {
                    let entry = ManifestEntry {
                        size: content.len() as u64,
                        content_type: "text/html".into(),
                        sha256: sha(content),
                        immutable: false,
                        br: None,
                        gzip: None,
                        pack: None,
                    };
                    ((*path).to_owned(), entry)
                })
                .collect(),
            routing: Default::default(),
            layout: FileLayout::Blobs,
        }
    }

    async fn send_manifest(&self, app: &TestApp, manifest: &Manifest) -> (u16, Value) {
        let res = app
            .http
            .put(app.url(&format!("/api/v1/deployments/{}/manifest", self.id)))
            .bearer_auth(&self.token)
            .json(manifest)
            .send()
            .await
            .expect("manifest");
        crate::helpers::status_json(res).await
    }

    /// Sends the manifest of `files` and reports ready: the deployment as it then is.
    async fn finish(&self, app: &TestApp, files: &[(&str, &str)]) -> Value {
        let (status, body) = self.send_manifest(app, &self.manifest(files)).await;
        assert_eq!(status, 204, "{body}");
        let (status, body) = self.report(app, json!({"kind": "ready"})).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn report(&self, app: &TestApp, report: Value) -> (u16, Value) {
        app.call(
            &self.token,
            "POST",
            &format!("/api/v1/deployments/{}/report", self.id),
            Some(report),
        )
        .await
    }

    /// All of it: handshake, the missing blobs, manifest, ready.
    async fn deploy(app: &TestApp, project: &str, promote: bool, files: &[(&str, &str)]) -> Value {
        let upload = Self::start(app, project, promote).await;
        let contents: Vec<&str> = files.iter().map(|(_, c)| *c).collect();
        let (_, missing) = upload.check(app, &contents).await;
        for content in &contents {
            if missing.contains(&sha(content)) {
                upload.put(app, content).await;
            }
        }
        upload.finish(app, files).await
    }
}

async fn project(app: &TestApp, name: &str) {
    let (status, body) = app.post("/api/v1/projects", json!({ "name": name })).await;
    assert_eq!(status, 201, "{body}");
}

async fn stored(app: &TestApp, project: &str, content: &str) -> bool {
    let project = ProjectName::parse(project).expect("name");
    app.storage
        .size(&layout::blob(&project, &sha(content)))
        .await
        .expect("storage")
        .is_some()
}

fn host(dep: &Value) -> String {
    let url = dep["url"].as_str().expect("url");
    url.split("://")
        .nth(1)
        .expect("scheme")
        .split('/')
        .next()
        .expect("host")
        .to_owned()
}

async fn page(app: &TestApp, host: &str, path: &str) -> (u16, String) {
    let res = app.site(host, path).await;
    (res.status().as_u16(), res.text().await.expect("body"))
}

async fn sweep(app: &TestApp) -> Value {
    let (status, body) = app.post("/api/v1/sweep", json!({})).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// A build of project `gc-build` that stored the blob of `built` and then failed (a build is
/// never resumed: its blobs go at the next sweep).
async fn a_build_stores_a_blob_and_fails(app: &TestApp) {
    let meta = ObjectMeta::default();
    let (_, job) = app.deploy("gc-build").await;
    let builder = crate::helpers::FakeBuilder::new(job.clone());
    builder.reach_uploading().await;
    let (status, body) = app
        .call(
            &job.job_token,
            "POST",
            &format!("/api/v1/deployments/{}/blobs", job.deployment),
            Some(json!({"blobs": [{"sha256": sha("built"), "size": 5}]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    app.storage
        .put(
            &layout::blob(&job.project, &sha("built")),
            Body::Bytes("built".into()),
            &meta,
        )
        .await
        .expect("put");
    builder
        .reported(scalemesh_core::wire::BuilderReport::Failed {
            reason: "the build broke".into(),
        })
        .await;
}

/// A blob of `gc` nobody ever named, and a file of a deployment that does not exist; the
/// latter's key.
/// A blob no deployment names any more, from which another's file is read as from a pack,
/// stays through a sweep (its record goes; its object is read).
#[tokio::test]
async fn a_sweep_keeps_a_blob_other_blobs_are_read_from() {
    let app = spawn_app().await;
    project(&app, "packed").await;
    let whole = "the whole of an object that holds another file at its start";
    let first = Upload::start(&app, "packed", false).await;
    first.check(&app, &[whole]).await;
    first.put(&app, whole).await;
    first.finish(&app, &[("whole.html", whole)]).await;
    let part = &whole[..9];
    let second = Upload::start(&app, "packed", true).await;
    second.check(&app, &[part]).await;
    let stored = json!({"blobs": [{
        "sha256": sha(part),
        "size": part.len(),
        "pack": {"sha256": sha(whole), "offset": 0},
    }]});
    let url = format!("/api/v1/deployments/{}/blobs/stored", second.id);
    let (status, body) = app.call(&second.token, "POST", &url, Some(stored)).await;
    assert_eq!(status, 200, "{body}");
    second.finish(&app, &[("index.html", part)]).await;
    let url = format!("/api/v1/deployments/{}", first.id);
    let (status, body) = app.call(&app.token, "DELETE", &url, None).await;
    assert!(status < 300, "{status} {body}");
    sweep(&app).await;
    assert_eq!(
        page(&app, "packed.localhost", "/").await,
        (200, part.into())
    );
}

async fn leave_what_nobody_names(app: &TestApp) -> &'static str {
    let gc = ProjectName::parse("gc").expect("name");
    let orphan = layout::blob(&gc, &sha("orphan"));
    let leftover = "__output/gc/zzzzzzzzzzzz/x.html";
    for key in [orphan.as_str(), leftover] {
        app.storage
            .put(key, Body::Bytes("orphan".into()), &ObjectMeta::default())
            .await
            .expect("put");
    }
    leftover
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_keeps_what_an_upload_in_flight_named_and_takes_what_nobody_names() {
    let app = spawn_app().await;
    project(&app, "gc").await;
    let first = Upload::deploy(&app, "gc", true, &[("a.html", "x"), ("b.html", "y")]).await;
    assert_eq!(first["production"], true, "{first}");
    Upload::deploy(&app, "gc", true, &[("c.html", "w")]).await;

    // An upload starts and names x, which the first deployment holds; then the first
    // deployment is removed and storage swept while the upload is still going.
    let late = Upload::start(&app, "gc", true).await;
    let (present, missing) = late.check(&app, &["x", "z"]).await;
    assert_eq!((present, missing), (vec![sha("x")], vec![sha("z")]));
    let first_id = first["id"].as_str().expect("id");
    let (status, body) = app
        .call(
            &app.token,
            "DELETE",
            &format!("/api/v1/deployments/{first_id}"),
            None,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(
        page(&app, &host(&first), "/a.html").await.0,
        404,
        "its URL stops answering"
    );

    // A failed upload's blob stays a while (running the deploy again resumes with it); a blob
    // nobody ever named, and files of a deployment that does not exist, go.
    let failed = Upload::start(&app, "gc", true).await;
    failed.check(&app, &["q"]).await;
    failed.put(&app, "q").await;
    let (status, body) = failed
        .report(&app, json!({"kind": "failed", "reason": "cut off"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let leftover = leave_what_nobody_names(&app).await;

    a_build_stores_a_blob_and_fails(&app).await;

    let swept = sweep(&app).await;
    assert_eq!(
        swept["blobs"], 3,
        "y, the orphan and the failed build's: {swept}"
    );
    assert!(!stored(&app, "gc-build", "built").await);
    assert_eq!(swept["files"], 1, "{swept}");
    assert!(
        stored(&app, "gc", "x").await,
        "named by the upload in flight"
    );
    assert!(stored(&app, "gc", "w").await, "named by production");
    assert!(
        stored(&app, "gc", "q").await,
        "a failed upload's, within the grace"
    );
    assert!(!stored(&app, "gc", "y").await, "named by nobody");
    assert!(!stored(&app, "gc", "orphan").await);
    assert!(app.storage.size(leftover).await.expect("size").is_none());

    // The upload finishes with what it was told was there.
    late.put(&app, "z").await;
    let done = late.finish(&app, &[("a.html", "x"), ("d.html", "z")]).await;
    assert_eq!(done["status"], "ready", "{done}");
    assert_eq!(
        page(&app, "gc.localhost", "/a.html").await,
        (200, "x".into())
    );
    assert_eq!(
        page(&app, "gc.localhost", "/d.html").await,
        (200, "z".into())
    );
    assert_eq!(sweep(&app).await["blobs"], 0, "nothing more to take");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retention_policy_removes_old_previews_never_production_or_its_history() {
    let app = spawn_app().await;
    project(&app, "keep").await;
    let live = Upload::deploy(&app, "keep", true, &[("index.html", "live")]).await;
    let mut previews = Vec::new();
    for n in 0..3 {
        let content = format!("preview {n}");
        previews.push(Upload::deploy(&app, "keep", false, &[("index.html", &content)]).await);
    }
    assert_eq!(
        sweep(&app).await["deployments"],
        0,
        "no policy keeps everything"
    );
    let (status, body) = app
        .call(
            &app.token,
            "PATCH",
            "/api/v1/projects/keep",
            Some(json!({"retention": {"keep": 1}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["retention"], json!({"keep": 1}));
    let swept = sweep(&app).await;
    assert_eq!(swept["deployments"], 2, "{swept}");
    assert_eq!(swept["blobs"], 2, "{swept}");
    let (_, list) = app.get("/api/v1/projects/keep/deployments").await;
    let ids: Vec<&str> = list["deployments"]
        .as_array()
        .expect("list")
        .iter()
        .map(|d| d["id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        ids,
        [
            previews[2]["id"].as_str().expect("id"),
            live["id"].as_str().expect("id")
        ]
    );
    assert_eq!(page(&app, &host(&previews[0]), "/").await.0, 404);
    assert_eq!(
        page(&app, &host(&previews[2]), "/").await,
        (200, "preview 2".into())
    );
    assert_eq!(
        page(&app, "keep.localhost", "/").await,
        (200, "live".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_that_lie_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    project(&app, "liar").await;
    let live = Upload::deploy(&app, "liar", true, &[("index.html", "truth")]).await;
    let upload = Upload::start(&app, "liar", true).await;
    let blobs_url = format!("/api/v1/deployments/{}/blobs", upload.id);
    for (blobs, why) in [
        (json!([{"sha256": "ABC", "size": 1}]), "not a digest"),
        (
            json!([{"sha256": sha("truth"), "size": 99}]),
            "another size than stored",
        ),
        (
            json!([{"sha256": sha("x"), "size": 1, "extra": true}]),
            "an unknown field",
        ),
    ] {
        let (status, body) = app
            .call(
                &upload.token,
                "POST",
                &blobs_url,
                Some(json!({ "blobs": blobs })),
            )
            .await;
        assert_eq!(status, 400, "{why}: {body}");
    }
    let (status, _) = app
        .call(&app.token, "POST", &blobs_url, Some(json!({"blobs": []})))
        .await;
    assert_eq!(status, 401, "a user's token is not the job's");

    upload.check(&app, &["lie"]).await;
    let (status, body) = upload.put_as(&app, &sha("lie"), "not the same bytes").await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = upload.put_as(&app, &sha("lie"), "eil").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("digest"),
        "{body}"
    );
    assert!(!stored(&app, "liar", "lie").await);

    let mut manifest = upload.manifest(&[("index.html", "lie")]);
    let (status, body) = upload.send_manifest(&app, &manifest).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("blobs_missing")),
        "{body}"
    );
    manifest.deployment = DeploymentId::parse(live["id"].as_str().expect("id")).expect("id");
    let (status, body) = upload.send_manifest(&app, &manifest).await;
    assert_eq!(status, 400, "another deployment's: {body}");
    let (status, body) = upload.report(&app, json!({"kind": "ready"})).await;
    assert_eq!(status, 409, "no manifest, no ready: {body}");

    let live_id = live["id"].as_str().expect("id");
    let (status, body) = app
        .call(
            &app.token,
            "DELETE",
            &format!("/api/v1/deployments/{live_id}"),
            None,
        )
        .await;
    assert_eq!(status, 409, "production stays: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("promote another")
    );
    assert_eq!(
        page(&app, "liar.localhost", "/").await,
        (200, "truth".into())
    );
}

/// Where a blob's variants are is the server's to say: a manifest placing a stored blob in a
/// pack, with variants it does not have, is completed as recorded; one giving it another size
/// is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_names_blobs_and_the_server_says_where_they_are() {
    let app = spawn_app().await;
    project(&app, "liar").await;
    Upload::deploy(&app, "liar", true, &[("index.html", "truth")]).await;
    let again = Upload::start(&app, "liar", true).await;
    again.check(&app, &["truth"]).await;
    let mut manifest = again.manifest(&[("index.html", "truth"), ("other.txt", "truth")]);
    let entry = manifest.files.get_mut("other.txt").expect("entry");
    entry.size = 99;
    let (status, body) = again.send_manifest(&app, &manifest).await;
    assert_eq!(status, 400, "another size: {body}");
    let entry = manifest.files.get_mut("other.txt").expect("entry");
    entry.size = "truth".len() as u64;
    entry.br = Some(4_000);
    entry.pack = Some(scalemesh_core::layout::InPack {
        sha256: sha("truth"),
        offset: 3,
    });
    let (status, body) = again.send_manifest(&app, &manifest).await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = again.report(&app, json!({"kind": "ready"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        page(&app, "liar.localhost", "/other.txt").await,
        (200, "truth".into())
    );
}

/// A prebuilt deploy in three requests: the start carries the handshake, the manifest says the
/// upload is complete. A malformed handshake starts nothing.
#[tokio::test]
async fn a_prebuilt_deploy_starts_with_its_handshake_and_ends_with_its_manifest() {
    let app = spawn_app().await;
    project(&app, "short").await;
    Upload::deploy(&app, "short", true, &[("index.html", "kept")]).await;
    let wants = json!({"blobs": [
        {"sha256": sha("kept"), "size": 4},
        {"sha256": sha("new page"), "size": 8}
    ]});
    let (status, body) = app
        .post(
            "/api/v1/projects/short/prebuilt",
            json!({"promote": true, "blobs": wants}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let missing: Vec<&str> = body["check"]["missing"]
        .as_array()
        .expect("the handshake's answer")
        .iter()
        .filter_map(|m| m["sha256"].as_str())
        .collect();
    assert_eq!(missing, [sha("new page").as_str()]);
    let upload = Upload {
        id: body["deployment"]["id"].as_str().expect("id").to_owned(),
        token: body["job_token"].as_str().expect("token").to_owned(),
        project: "short".to_owned(),
    };
    upload.put(&app, "new page").await;
    let manifest = upload.manifest(&[("index.html", "kept"), ("new.html", "new page")]);
    let res = app
        .http
        .put(app.url(&format!(
            "/api/v1/deployments/{}/manifest?ready=true",
            upload.id
        )))
        .bearer_auth(&upload.token)
        .json(&manifest)
        .send()
        .await
        .expect("manifest");
    let (status, ended) = crate::helpers::status_json(res).await;
    assert_eq!(
        (status, ended["status"].clone()),
        (200, json!("ready")),
        "{ended}"
    );
    assert_eq!(
        page(&app, "short.localhost", "/new").await,
        (200, "new page".into())
    );

    let (_, before) = app.get("/api/v1/projects/short/deployments").await;
    let bad = json!({"promote": true, "blobs": {"blobs": [{"sha256": "NOT-A-DIGEST", "size": 1}]}});
    let (status, body) = app.post("/api/v1/projects/short/prebuilt", bad).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("invalid_digest")),
        "{body}"
    );
    let (_, after) = app.get("/api/v1/projects/short/deployments").await;
    assert_eq!(
        before["deployments"].as_array().map(Vec::len),
        after["deployments"].as_array().map(Vec::len)
    );
}

/// A start carrying the whole manifest and the blobs that may be new: this one a redeploy's, sent
/// with one changed page.
fn whole_start(project: &str, files: &[(&str, &str)], inline: &[&str]) -> Value {
    let upload = Upload {
        id: DeploymentId::generate().to_string(),
        token: String::new(),
        project: project.to_owned(),
    };
    let inline: Vec<InlineBlob> = inline
        .iter()
        .map(|c| InlineBlob::new(&sha(c), BlobLayout::plain(c.len() as u64), c.as_bytes()))
        .collect();
    json!({"promote": true, "manifest": upload.manifest(files), "inline": inline})
}

async fn deployments(app: &TestApp, project: &str) -> usize {
    let (_, body) = app
        .get(&format!("/api/v1/projects/{project}/deployments"))
        .await;
    body["deployments"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn a_redeploy_sent_whole_ends_in_its_one_request() {
    let app = spawn_app().await;
    project(&app, "whole").await;
    Upload::deploy(
        &app,
        "whole",
        true,
        &[("index.html", "kept"), ("a.html", "a v1")],
    )
    .await;
    let v2 = [("index.html", "kept"), ("a.html", "a v2")];
    let (status, body) = app
        .post(
            "/api/v1/projects/whole/prebuilt",
            whole_start("whole", &v2, &["a v2"]),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["complete"], true, "{body}");
    assert_eq!(body["deployment"]["status"], "ready", "{body}");
    assert_eq!(
        page(&app, "whole.localhost", "/a").await,
        (200, "a v2".into())
    );
    assert!(stored(&app, "whole", "a v2").await);

    // A blob neither held nor sent: the answer asks for it, and the upload goes on as after a
    // handshake.
    let v3 = [
        ("index.html", "kept"),
        ("a.html", "a v3"),
        ("b.html", "b v3"),
    ];
    let (status, body) = app
        .post(
            "/api/v1/projects/whole/prebuilt",
            whole_start("whole", &v3, &["a v3"]),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body.get("complete"), None, "{body}");
    assert_eq!(body["deployment"]["status"], "uploading", "{body}");
    assert_eq!(
        body["check"]["missing"][0]["sha256"],
        json!(sha("b v3")),
        "{body}"
    );
    assert_eq!(body["check"]["missing"].as_array().map(Vec::len), Some(1));
    let upload = Upload {
        id: body["deployment"]["id"].as_str().expect("id").to_owned(),
        token: body["job_token"].as_str().expect("token").to_owned(),
        project: "whole".to_owned(),
    };
    assert!(
        stored(&app, "whole", "a v3").await,
        "sent with the manifest"
    );
    upload.put(&app, "b v3").await;
    let ended = upload.finish(&app, &v3).await;
    assert_eq!(ended["status"], "ready", "{ended}");
    assert_eq!(
        page(&app, "whole.localhost", "/b").await,
        (200, "b v3".into())
    );
}

/// A start sending whole a blob the project holds with other variants (another version of
/// the CLI compresses otherwise) keeps the one held: nothing is stored again and the deployment
/// ends ready, serving the file.
#[tokio::test]
async fn a_blob_held_with_other_variants_is_not_stored_again() {
    let app = spawn_app().await;
    project(&app, "held").await;
    let long = "<p>the same page, long enough to be compressed</p>\n".repeat(40);
    let files = [("index.html", "kept"), ("c.html", long.as_str())];
    Upload::deploy(&app, "held", true, &files).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.html");
    std::fs::write(&path, &long).expect("write");
    let packed = scalemesh_core::upload::pack::pack(&path, true, None).expect("pack");
    assert!(packed.layout.br.is_some(), "sent with variants");
    let scalemesh_core::upload::pack::BlobBody::Bytes(bytes) = packed.body() else {
        panic!("a small file is packed in memory");
    };
    let mut start = whole_start("held", &files, &[]);
    start["inline"] = json!([InlineBlob::new(&sha(&long), packed.layout, &bytes)]);
    let (status, body) = app.post("/api/v1/projects/held/prebuilt", start).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["complete"], true, "{body}");
    assert_eq!(page(&app, "held.localhost", "/c").await, (200, long));
}

/// More starts that lie, for project `liar`: a blob sent twice, routing no rules file could
/// give, a blob the project holds with another size.
fn lying_repeats_rules_and_sizes() -> Vec<(&'static str, Value, u16, &'static str)> {
    let files = [("index.html", "kept"), ("a.html", "new")];
    let start = || whole_start("liar", &files, &["new"]);
    let mut twice = start();
    let sent = twice["inline"][0].clone();
    twice["inline"] = json!([sent.clone(), sent]);
    let routed = |routing: Value| {
        let mut start = start();
        start["manifest"]["routing"] = routing;
        start
    };
    let framing = routed(json!({"headers": [{"path": "/*", "headers": {"Content-Length": "0"}}]}));
    let scripted =
        routed(json!({"redirects": [{"from": "/x", "to": "javascript:alert(1)", "status": 302}]}));
    let odd_status = routed(json!({"redirects": [{"from": "/y", "to": "/z", "status": 999}]}));
    // The project holds "kept" with 4 bytes; no blob is sent, so none is stored.
    let mut resized = whole_start("liar", &[("index.html", "kept")], &[]);
    resized["manifest"]["files"]["index.html"]["size"] = json!(999);
    vec![
        ("a blob sent twice", twice, 400, "invalid_inline"),
        (
            "a header that frames the message",
            framing,
            400,
            "invalid_routing",
        ),
        ("a redirect to a script", scripted, 400, "invalid_routing"),
        (
            "a redirect with no such status",
            odd_status,
            400,
            "invalid_routing",
        ),
        ("a held blob with another size", resized, 400, "wrong_size"),
    ]
}

/// Starts that lie, for project `liar` (which serves "kept"): what each is, its body, and the
/// status and code it is refused with.
fn lying_starts() -> Vec<(&'static str, Value, u16, &'static str)> {
    let files = [("index.html", "kept"), ("a.html", "new")];
    let start = || whole_start("liar", &files, &["new"]);
    let mut mismatched = start();
    mismatched["inline"][0]["body"] = json!("b3RoZXI="); // "other"
    let mut not_base64 = start();
    not_base64["inline"][0]["body"] = json!("%%%");
    let mut both = start();
    both["blobs"] = json!({"blobs": []});
    let mut no_manifest = start();
    no_manifest["manifest"].take();
    let many: Vec<String> = (0..17).map(|n| format!("page {n}")).collect();
    let paths: Vec<String> = many.iter().map(|c| format!("{c}.html")).collect();
    let many_files: Vec<(&str, &str)> = paths
        .iter()
        .zip(&many)
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let many_inline: Vec<&str> = many.iter().map(String::as_str).collect();
    let large = "x".repeat(1_100_000);
    vec![
        ("bytes not its digest's", mismatched, 400, "blob_mismatch"),
        ("a body not base64", not_base64, 400, "invalid_inline"),
        (
            "a blob the manifest does not name",
            whole_start("liar", &[("index.html", "kept")], &["new"]),
            400,
            "invalid_inline",
        ),
        ("a handshake and a manifest", both, 400, "invalid_start"),
        (
            "blobs without a manifest",
            no_manifest,
            400,
            "invalid_start",
        ),
        (
            "another project's manifest",
            whole_start("other", &files, &["new"]),
            400,
            "invalid_manifest",
        ),
        (
            "a path no site has",
            whole_start("liar", &[("../up.html", "new")], &["new"]),
            400,
            "invalid_manifest",
        ),
        (
            "too many blobs",
            whole_start("liar", &many_files, &many_inline),
            400,
            "too_many_inline",
        ),
        (
            "too many bytes",
            whole_start("liar", &[("big.html", &large)], &[&large]),
            413,
            "too_large",
        ),
    ]
}

#[tokio::test]
async fn a_whole_start_that_lies_is_refused_and_makes_nothing() {
    let app = spawn_app().await;
    project(&app, "liar").await;
    Upload::deploy(&app, "liar", true, &[("index.html", "kept")]).await;
    for (what, body, status, code) in lying_starts()
        .into_iter()
        .chain(lying_repeats_rules_and_sizes())
    {
        let before = deployments(&app, "liar").await;
        let (got, answer) = app.post("/api/v1/projects/liar/prebuilt", body).await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{what}: {answer}"
        );
        assert_eq!(
            deployments(&app, "liar").await,
            before,
            "{what}: nothing is made"
        );
    }
    assert!(!stored(&app, "liar", "new").await);
    assert_eq!(
        page(&app, "liar.localhost", "/").await,
        (200, "kept".into())
    );
}
