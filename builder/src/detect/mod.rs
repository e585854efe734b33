//! Build detection: what to install, what to build and which folder to upload, from the files
//! of the app and its settings. Each provider looks at a folder and, when it recognises it,
//! plans the build; planning reads files but runs nothing.

mod node;
mod plan;

use std::path::Path;

use scalemesh_core::site_config::BuildSettings;

pub use plan::{DetectError, Plan};

/// Folders that commonly hold a built site, in the order they are tried.
pub const OUTPUT_CANDIDATES: [&str; 4] = ["dist", "build", "out", "public"];

/// Plans the build of the app in `root` with `settings` (the project's, overlaid with
/// `scalemesh.json`) taking precedence over detection.
pub fn plan(root: &Path, settings: &BuildSettings) -> Result<Plan, DetectError> {
    let mut plan = match node::detect(root)? {
        Some(plan) => plan,
        None => Plan {
            provider: "static site".to_owned(),
            install: None,
            build: None,
            output: None,
            notes: Vec::new(),
        },
    };
    if let Some(cmd) = &settings.install_command {
        plan.install = (!cmd.trim().is_empty()).then(|| cmd.clone());
    }
    if let Some(cmd) = &settings.build_command {
        plan.build = (!cmd.trim().is_empty()).then(|| cmd.clone());
    }
    if let Some(dir) = &settings.output_directory {
        plan.output = Some(dir.clone());
    }
    Ok(plan)
}

/// The folder to upload once the build is done: the planned one, else the first of
/// [`OUTPUT_CANDIDATES`] that exists, else the app's root when it has an `index.html`.
pub fn output_folder(root: &Path, plan: &Plan) -> Result<String, String> {
    if let Some(dir) = &plan.output {
        return if root.join(dir).is_dir() {
            Ok(dir.clone())
        } else {
            Err(format!(
                "the output folder {dir:?} does not exist after the build; check outputDirectory"
            ))
        };
    }
    if let Some(found) = OUTPUT_CANDIDATES.iter().find(|d| root.join(d).is_dir()) {
        return Ok((*found).to_owned());
    }
    if root.join("index.html").is_file() {
        return Ok(".".to_owned());
    }
    Err(format!(
        "no output folder: looked for {} and for an index.html at the root; set outputDirectory in scalemesh.json",
        OUTPUT_CANDIDATES.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use std::fs;

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

    #[test]
    fn plans_fixture_apps() {
        type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, BuildSettings, Plan);
        let cases: Vec<Case> = vec![
            (
                "plain static site",
                vec![("index.html", "<h1>hi</h1>")],
                BuildSettings::default(),
                Plan {
                    provider: "static site".into(),
                    install: None,
                    build: None,
                    output: None,
                    notes: vec![],
                },
            ),
            (
                "node without dependencies",
                vec![("package.json", r#"{"scripts":{"build":"node build.js"}}"#)],
                BuildSettings::default(),
                Plan {
                    provider: "Node.js (npm)".into(),
                    install: None,
                    build: Some("npm run build".into()),
                    output: None,
                    notes: vec!["No dependencies in package.json: skipping install".into()],
                },
            ),
            (
                "npm with a lockfile",
                vec![
                    (
                        "package.json",
                        r#"{"dependencies":{"a":"1"},"scripts":{"build":"vite build"}}"#,
                    ),
                    ("package-lock.json", "{}"),
                ],
                BuildSettings::default(),
                Plan {
                    provider: "Node.js (npm)".into(),
                    install: Some("npm ci".into()),
                    build: Some("npm run build".into()),
                    output: None,
                    notes: vec![],
                },
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
                Plan {
                    provider: "Node.js (yarn)".into(),
                    install: Some("yarn install --frozen-lockfile".into()),
                    build: Some("yarn run build".into()),
                    output: None,
                    notes: vec![],
                },
            ),
            (
                "pnpm without a build script",
                vec![
                    ("package.json", r#"{"dependencies":{"a":"1"}}"#),
                    ("pnpm-lock.yaml", ""),
                ],
                BuildSettings::default(),
                Plan {
                    provider: "Node.js (pnpm)".into(),
                    install: Some("pnpm install --frozen-lockfile".into()),
                    build: None,
                    output: None,
                    notes: vec![],
                },
            ),
            (
                "npm without a lockfile",
                vec![("package.json", r#"{"dependencies":{"a":"1"}}"#)],
                BuildSettings::default(),
                Plan {
                    provider: "Node.js (npm)".into(),
                    install: Some("npm install".into()),
                    build: None,
                    output: None,
                    notes: vec![],
                },
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
                    provider: "Node.js (npm)".into(),
                    install: None,
                    build: Some("make site".into()),
                    output: Some("_site".into()),
                    notes: vec![],
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
    }

    #[test]
    fn finds_the_output_folder() {
        let plan = Plan {
            provider: String::new(),
            install: None,
            build: None,
            output: None,
            notes: vec![],
        };
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
            output: Some("site".into()),
            ..plan
        };
        assert!(output_folder(dir.path(), &explicit).is_err());
    }
}
