//! Detection over small apps written by the tests, and over the fixture apps of
//! `builder/tests/fixtures/presets/`, laid out as each framework's generator writes them.

use std::fs;
use std::path::PathBuf;

use super::*;

fn app(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, body) in files {
        let p = dir.path().join(path);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).expect("mkdir");
        }
        fs::write(p, body).expect("write");
    }
    dir
}

fn npm(lockfile: Option<&str>) -> Runtime {
    Runtime::Node(NodeRuntime {
        package_manager: PackageManager::Npm,
        lockfile: lockfile.map(str::to_owned),
        declared: None,
        pnp: false,
    })
}

/// The plan of a Node.js app of no known framework.
fn node_plan(runtime: Runtime, install: Option<&str>, build: Option<&str>) -> Plan {
    let Runtime::Node(node) = &runtime else {
        panic!("not node")
    };
    Plan {
        preset: "node",
        name: "Node.js",
        reasons: vec!["package.json".into()],
        setup: node.setup(),
        install: install.map(str::to_owned),
        build: build.map(str::to_owned),
        output: Output::Find,
        path: node.path_and_env().0,
        env: node.path_and_env().1,
        caches: node.caches(),
        notes: vec![],
        runtime,
    }
}

fn static_plan() -> Plan {
    Plan {
        preset: "static",
        name: "static site",
        reasons: vec![],
        runtime: Runtime::None,
        setup: None,
        install: None,
        build: None,
        output: Output::Find,
        path: vec![],
        env: vec![],
        caches: vec![],
        notes: vec![],
    }
}

#[test]
fn plans_small_apps() {
    let yarn = Runtime::Node(NodeRuntime {
        package_manager: PackageManager::Yarn,
        lockfile: Some("yarn.lock".into()),
        declared: None,
        pnp: false,
    });
    let pnpm = Runtime::Node(NodeRuntime {
        package_manager: PackageManager::Pnpm,
        lockfile: Some("pnpm-lock.yaml".into()),
        declared: None,
        pnp: false,
    });
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, BuildSettings, Plan);
    let cases: Vec<Case> = vec![
        (
            "plain static site",
            vec![("index.html", "<h1>hi</h1>")],
            BuildSettings::default(),
            static_plan(),
        ),
        (
            "node without dependencies",
            vec![("package.json", r#"{"scripts":{"build":"node build.js"}}"#)],
            BuildSettings::default(),
            Plan {
                notes: vec!["No dependencies in package.json: skipping install".into()],
                ..node_plan(npm(None), None, Some("npm run build"))
            },
        ),
        (
            "npm with a lockfile",
            vec![
                (
                    "package.json",
                    r#"{"dependencies":{"a":"1"},"scripts":{"build":"node build.js"}}"#,
                ),
                ("package-lock.json", "{}"),
            ],
            BuildSettings::default(),
            node_plan(
                npm(Some("package-lock.json")),
                Some("npm ci"),
                Some("npm run build"),
            ),
        ),
        (
            "yarn",
            vec![
                (
                    "package.json",
                    r#"{"devDependencies":{"a":"1"},"scripts":{"build":"x"}}"#,
                ),
                ("yarn.lock", ""),
            ],
            BuildSettings::default(),
            node_plan(
                yarn,
                Some("yarn install --frozen-lockfile"),
                Some("yarn run build"),
            ),
        ),
        (
            "pnpm without a build script",
            vec![
                ("package.json", r#"{"dependencies":{"a":"1"}}"#),
                ("pnpm-lock.yaml", ""),
            ],
            BuildSettings::default(),
            node_plan(pnpm, Some("pnpm install --frozen-lockfile"), None),
        ),
        (
            "npm without a lockfile",
            vec![("package.json", r#"{"dependencies":{"a":"1"}}"#)],
            BuildSettings::default(),
            node_plan(npm(None), Some("npm install"), None),
        ),
        (
            "settings override detection",
            vec![(
                "package.json",
                r#"{"dependencies":{"a":"1"},"scripts":{"build":"x"}}"#,
            )],
            BuildSettings {
                install_command: Some("".into()),
                build_command: Some("make site".into()),
                output_directory: Some("_site".into()),
                ..Default::default()
            },
            Plan {
                output: Output::Folder("_site".into()),
                ..node_plan(npm(None), None, Some("make site"))
            },
        ),
    ];
    for (name, files, settings, want) in cases {
        let dir = app(&files);
        let got = plan(dir.path(), &settings).expect(name);
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn broken_package_json_is_an_error() {
    let dir = app(&[("package.json", "{nope")]);
    assert!(matches!(
        plan(dir.path(), &BuildSettings::default()),
        Err(DetectError::PackageJson(_))
    ));
    let dir = app(&[("package.json", r#"{"packageManager":"pnpm@latest"}"#)]);
    assert!(matches!(
        plan(dir.path(), &BuildSettings::default()),
        Err(DetectError::PackageManagerField(_))
    ));
}

#[test]
fn finds_the_output_folder() {
    let plan = static_plan();
    let dir = app(&[
        ("public/favicon.ico", ""),
        ("build/index.html", ""),
        ("index.html", ""),
    ]);
    assert_eq!(output_folder(dir.path(), &plan), Ok("build".into()));
    let dir = app(&[("index.html", "")]);
    assert_eq!(output_folder(dir.path(), &plan), Ok(".".into()));
    let dir = app(&[("README.md", "")]);
    assert!(
        output_folder(dir.path(), &plan)
            .expect_err("none")
            .contains("outputDirectory")
    );
    let explicit = Plan {
        output: Output::Folder("site".into()),
        ..plan.clone()
    };
    assert!(output_folder(dir.path(), &explicit).is_err());
    let angular = Plan {
        output: Output::BrowserIn("dist/shop".into()),
        ..plan
    };
    let dir = app(&[("dist/shop/browser/index.html", "")]);
    assert_eq!(
        output_folder(dir.path(), &angular),
        Ok("dist/shop/browser".into())
    );
    let dir = app(&[("dist/shop/index.html", "")]);
    assert_eq!(output_folder(dir.path(), &angular), Ok("dist/shop".into()));
}

#[test]
fn checks_that_the_output_is_a_site() {
    let dir = app(&[("out/index.html", ""), ("out/a/b.css", "")]);
    assert_eq!(check_output(dir.path(), "out"), Ok(vec![]));
    let dir = app(&[("out/docs/intro.html", ""), ("out/app.js", "")]);
    let warnings = check_output(dir.path(), "out").expect("a site");
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("no index.html"), "{warnings:?}");
    let dir = app(&[("out/server/index.mjs", ""), ("out/README.md", "")]);
    let error = check_output(dir.path(), "out").expect_err("not a site");
    assert!(
        error.starts_with("the output folder \"out\" holds no HTML page"),
        "{error}"
    );
}

#[test]
fn check_output_does_not_follow_links() {
    let dir = app(&[("out/app.js", ""), ("elsewhere/index.html", "")]);
    let elsewhere = dir.path().join("elsewhere");
    std::os::unix::fs::symlink(&elsewhere, dir.path().join("out/linked")).expect("link");
    std::os::unix::fs::symlink(
        elsewhere.join("index.html"),
        dir.path().join("out/index.html"),
    )
    .expect("link");
    assert!(check_output(dir.path(), "out").is_err());
}

#[test]
fn settings_pick_a_preset() {
    let dir = app(&[
        ("package.json", r#"{"dependencies":{"vite":"6"}}"#),
        ("index.html", ""),
    ]);
    let with = |framework: &str| BuildSettings {
        framework: Some(framework.into()),
        ..Default::default()
    };
    let got = plan(dir.path(), &with("astro")).expect("astro");
    assert_eq!(got.preset, "astro");
    assert_eq!(got.reasons, ["framework \"astro\" in the settings"]);
    let got = plan(dir.path(), &with("none")).expect("none");
    assert_eq!(
        (got.preset, got.build, got.output),
        ("node", None, Output::Find)
    );
    let error = plan(dir.path(), &with("jekyll")).expect_err("unknown");
    let message = error.to_string();
    assert!(
        message.contains("\"jekyll\"") && message.contains("astro, react-router"),
        "{message}"
    );
}

#[test]
fn a_server_build_is_refused_unless_the_settings_say_otherwise() {
    let next = [
        (
            "package.json",
            r#"{"dependencies":{"next":"15"},"scripts":{"build":"next build"}}"#,
        ),
        ("next.config.mjs", "export default {};"),
    ];
    let dir = app(&next);
    let error = plan(dir.path(), &BuildSettings::default()).expect_err("server");
    assert!(error.to_string().contains("next.config.mjs"), "{error}");
    let build_only = BuildSettings {
        build_command: Some("next build".into()),
        ..Default::default()
    };
    assert!(plan(dir.path(), &build_only).is_err());
    let both = BuildSettings {
        output_directory: Some(".next/server/app".into()),
        ..build_only
    };
    assert!(plan(dir.path(), &both).is_ok());

    let dir = app(&[(
        "package.json",
        r#"{"dependencies":{"nuxt":"3"},"scripts":{"build":"nuxt build"}}"#,
    )]);
    assert!(plan(dir.path(), &BuildSettings::default()).is_err());
    let generate = BuildSettings {
        build_command: Some("npx nuxi generate".into()),
        ..Default::default()
    };
    let got = plan(dir.path(), &generate).expect("cleared");
    assert_eq!(got.output, Output::Folder(".output/public".into()));
}

#[test]
fn detected_names_the_preset_and_its_reasons() {
    let plan = Plan {
        preset: "astro",
        name: "Astro",
        reasons: vec!["astro in dependencies".into(), "astro.config.mjs".into()],
        ..static_plan()
    };
    assert_eq!(
        plan.detected(),
        "Detected Astro (astro in dependencies, astro.config.mjs)"
    );
    assert_eq!(static_plan().detected(), "Detected static site");
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/presets")
}

/// The folder a fixture's plan names.
#[derive(Debug, Clone, Copy)]
enum Want {
    Folder(&'static str),
    BrowserIn(&'static str),
    Find,
}

impl Want {
    fn output(self) -> Output {
        match self {
            Self::Folder(dir) => Output::Folder(dir.to_owned()),
            Self::BrowserIn(dir) => Output::BrowserIn(dir.to_owned()),
            Self::Find => Output::Find,
        }
    }
}

const YARN_SHIM: &str = "command -v yarn >/dev/null || npm install --global --prefix \"$HOME/.scalemesh/tools\" --globalconfig \"$(npm config get globalconfig)\" --no-audit --no-fund yarn@1";
const PNPM_SHIM: &str = "command -v pnpm >/dev/null || npm install --global --prefix \"$HOME/.scalemesh/tools\" --globalconfig \"$(npm config get globalconfig)\" --no-audit --no-fund pnpm@latest";
const BERRY_SHIM: &str = "command -v yarn >/dev/null || npm install --global --prefix \"$HOME/.scalemesh/tools\" --globalconfig \"$(npm config get globalconfig)\" --no-audit --no-fund @yarnpkg/cli-dist@latest";
const BUN_SHIM: &str = "command -v bun >/dev/null || npm install --global --prefix \"$HOME/.scalemesh/tools\" --globalconfig \"$(npm config get globalconfig)\" --no-audit --no-fund bun@latest";
const PNPM_DECLARED: &str = "[ \"$(pnpm --version 2>/dev/null)\" = \"9.12.0\" ] || npm install --global --prefix \"$HOME/.scalemesh/tools\" --globalconfig \"$(npm config get globalconfig)\" --no-audit --no-fund pnpm@9.12.0";

/// Fixture, preset, reasons, setup, install, build, output.
type Row = (
    &'static str,
    &'static str,
    &'static [&'static str],
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    Want,
);

const PLANNED: &[Row] = &[
    (
        "vite",
        "vite",
        &["vite in devDependencies", "vite.config.ts"],
        None,
        Some("npm ci"),
        Some("npm run build"),
        Want::Folder("dist"),
    ),
    (
        "nextjs",
        "nextjs",
        &["next in dependencies", "next.config.mjs"],
        None,
        Some("npm install"),
        Some("npm run build"),
        Want::Folder("out"),
    ),
    (
        "astro",
        "astro",
        &["astro in dependencies", "astro.config.mjs"],
        None,
        Some("npm install"),
        Some("npm run build"),
        Want::Folder("dist"),
    ),
    (
        "sveltekit",
        "sveltekit",
        &["@sveltejs/kit in devDependencies", "svelte.config.js"],
        None,
        Some("npm install"),
        Some("npm run build"),
        Want::Folder("build"),
    ),
    (
        "nuxt",
        "nuxt",
        &["nuxt in dependencies", "nuxt.config.ts"],
        None,
        Some("npm install"),
        Some("npm run generate"),
        Want::Folder(".output/public"),
    ),
    (
        "angular",
        "angular",
        &["@angular/cli in devDependencies", "angular.json"],
        None,
        Some("npm install"),
        Some("npm run build"),
        Want::BrowserIn("dist/shop"),
    ),
    (
        "react-router",
        "react-router",
        &[
            "@react-router/dev in devDependencies",
            "react-router.config.ts",
        ],
        None,
        Some("npm install"),
        Some("npm run build"),
        Want::Folder("build/client"),
    ),
    (
        "gatsby",
        "gatsby",
        &["gatsby in dependencies", "gatsby-config.js"],
        Some(YARN_SHIM),
        Some("yarn install --frozen-lockfile"),
        Some("yarn run build"),
        Want::Folder("public"),
    ),
    (
        "docusaurus",
        "docusaurus",
        &["@docusaurus/core in dependencies", "docusaurus.config.js"],
        None,
        Some("npm install"),
        Some("npm run build"),
        Want::Folder("build"),
    ),
    (
        "eleventy",
        "eleventy",
        &["@11ty/eleventy in devDependencies", "eleventy.config.js"],
        None,
        Some("npm install"),
        Some("node_modules/.bin/eleventy"),
        Want::Folder("_site"),
    ),
    (
        "vitepress",
        "vitepress",
        &["vitepress in devDependencies", "docs/.vitepress/config.mts"],
        None,
        Some("npm install"),
        Some("npm run docs:build"),
        Want::Folder("docs/.vitepress/dist"),
    ),
    (
        "hexo",
        "hexo",
        &["hexo in dependencies", "_config.yml"],
        None,
        Some("npm install"),
        Some("npm run build"),
        Want::Folder("public"),
    ),
    (
        "create-react-app",
        "create-react-app",
        &["react-scripts in dependencies"],
        None,
        Some("npm install"),
        Some("npm run build"),
        Want::Folder("build"),
    ),
    (
        "node",
        "node",
        &["package.json"],
        None,
        Some("npm install"),
        Some("npm run build"),
        Want::Find,
    ),
    ("static", "static", &[], None, None, None, Want::Find),
    (
        "mkdocs",
        "mkdocs",
        &["mkdocs.yml"],
        None,
        Some("python3 -m venv .venv && .venv/bin/pip install -r requirements.txt"),
        Some(".venv/bin/mkdocs build"),
        Want::Folder("site"),
    ),
    (
        "mkdocs-site-dir",
        "mkdocs",
        &["mkdocs.yml"],
        None,
        None,
        Some("mkdocs build"),
        Want::Folder("public"),
    ),
    (
        "sphinx",
        "sphinx",
        &["docs/conf.py"],
        None,
        Some("python3 -m venv .venv && .venv/bin/pip install ."),
        Some(".venv/bin/sphinx-build -b html docs docs/_build/html"),
        Want::Folder("docs/_build/html"),
    ),
    (
        "pnpm",
        "vite",
        &["vite in devDependencies"],
        Some(PNPM_SHIM),
        Some("pnpm install --frozen-lockfile"),
        Some("pnpm run build"),
        Want::Folder("dist"),
    ),
    (
        "yarn1",
        "node",
        &["package.json"],
        Some(YARN_SHIM),
        Some("yarn install --frozen-lockfile"),
        Some("yarn run build"),
        Want::Find,
    ),
    (
        "yarn-berry",
        "node",
        &["package.json"],
        Some(BERRY_SHIM),
        Some("yarn install --immutable"),
        Some("yarn run build"),
        Want::Find,
    ),
    (
        "bun",
        "node",
        &["package.json"],
        Some(BUN_SHIM),
        Some("bun install --frozen-lockfile"),
        Some("bun run build"),
        Want::Find,
    ),
    (
        "declared-pnpm",
        "astro",
        &["astro in dependencies", "astro.config.mjs"],
        Some(PNPM_DECLARED),
        Some("pnpm install --frozen-lockfile"),
        Some("pnpm run build"),
        Want::Folder("dist"),
    ),
];

/// Fixtures set up for a server, and words their refusal must hold.
const REFUSED: &[(&str, &str)] = &[
    ("nextjs-server", "add `output: 'export'` to next.config.ts"),
    ("astro-server", "`output: 'server'` in astro.config.mjs"),
    ("sveltekit-auto", "uses @sveltejs/adapter-auto"),
    ("nuxt-server", "`nuxt build`, which makes a server"),
];

#[test]
fn plans_the_fixture_apps() {
    let mut names: Vec<String> = fs::read_dir(fixtures())
        .expect("fixtures")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let fixture_count = names.len();
    for name in names {
        let got = plan(&fixtures().join(&name), &BuildSettings::default());
        if let Some((_, words)) = REFUSED.iter().find(|(fixture, _)| *fixture == name) {
            let error = got.expect_err(&name);
            assert!(
                matches!(error, DetectError::NotStatic(_)),
                "{name}: {error}"
            );
            assert!(error.to_string().contains(words), "{name}: {error}");
            continue;
        }
        let Some(&(_, preset, reasons, setup, install, build, output)) =
            PLANNED.iter().find(|row| row.0 == name)
        else {
            panic!("fixture {name} has no row in PLANNED or REFUSED");
        };
        let got = got.unwrap_or_else(|e| panic!("{name}: {e}"));
        let got_reasons: Vec<&str> = got.reasons.iter().map(String::as_str).collect();
        assert_eq!(
            (got.preset, got_reasons.as_slice(), got.setup.as_deref()),
            (preset, reasons, setup),
            "{name}"
        );
        assert_eq!(
            (got.install.as_deref(), got.build.as_deref(), &got.output),
            (install, build, &output.output()),
            "{name}"
        );
    }
    assert_eq!(
        PLANNED.len() + REFUSED.len(),
        fixture_count,
        "a row without a fixture"
    );
}

#[test]
fn package_managers_bring_their_caches_and_setup() {
    let got = plan(&fixtures().join("yarn-berry"), &BuildSettings::default()).expect("berry");
    assert_eq!(
        got.caches,
        [
            Place::app(".yarn/cache"),
            Place::home(".yarn/berry/cache"),
            Place::home(".scalemesh/tools")
        ]
    );
    let got =
        plan(&fixtures().join("declared-pnpm"), &BuildSettings::default()).expect("declared-pnpm");
    let Runtime::Node(node) = &got.runtime else {
        panic!("node")
    };
    assert_eq!(node.declared.as_deref(), Some("pnpm@9.12.0"));
    assert_eq!(node.lockfile.as_deref(), Some("pnpm-lock.yaml"));
    assert_eq!(got.path, [Place::home(".scalemesh/tools/bin")]);
    assert_eq!(
        got.caches,
        [
            Place::app("node_modules/.astro"),
            Place::app(".astro"),
            Place::app("node_modules"),
            Place::home(".local/share/pnpm/store"),
            Place::home(".scalemesh/tools"),
        ]
    );
    let got = plan(&fixtures().join("mkdocs"), &BuildSettings::default()).expect("mkdocs");
    assert_eq!(
        (got.runtime, got.caches),
        (Runtime::Python, vec![Place::home(".cache/pip")])
    );
}
