//! What the build cache keeps for a detection plan, and what decides its key: the plan names
//! the folders (the package manager's store, `node_modules`, the framework's caches); the
//! preset, the package manager, its lockfile and the Node.js version that ran decide whether a
//! kept copy fits.

use std::path::Path;

use crate::detect::{Place, Plan, Runtime};

use super::dirs::{CachedDir, Under};
use super::key::KeyParts;

/// What to cache for an app, and what decides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub parts: KeyParts,
    pub dirs: Vec<CachedDir>,
}

/// Files whose bytes decide a Python site's packages, in the order they are looked for.
const PYTHON_LOCKS: [&str; 3] = [
    "requirements.txt",
    "docs/requirements.txt",
    "pyproject.toml",
];

impl Entry {
    /// The entry for the app in `app` built by `plan` on Node.js `node` (the version that
    /// ran, when one did).
    pub fn of(plan: &Plan, app: &Path, node: Option<&str>) -> Self {
        let (package_manager, lockfile) = match &plan.runtime {
            Runtime::Node(runtime) => (
                runtime
                    .declared
                    .clone()
                    .unwrap_or_else(|| runtime.package_manager.name().to_owned()),
                runtime.lockfile.as_ref().map(|lock| app.join(lock)),
            ),
            Runtime::Python => (
                "pip".to_owned(),
                PYTHON_LOCKS
                    .iter()
                    .map(|lock| app.join(lock))
                    .find(|path| path.is_file()),
            ),
            Runtime::None => ("none".to_owned(), None),
        };
        let dirs = plan
            .caches
            .iter()
            .filter_map(|place| match place {
                Place::App(rel) => CachedDir::new(Under::App, rel).ok(),
                Place::Home(rel) => CachedDir::new(Under::Home, rel).ok(),
            })
            .collect();
        Self {
            parts: KeyParts {
                preset: plan.preset.to_owned(),
                package_manager,
                lockfile,
                node: node.unwrap_or_default().to_owned(),
            },
            dirs,
        }
    }
}

/// What install runs once the cache is in place: `npm ci` throws `node_modules` away before it
/// installs, so over a `node_modules` restored under this very key (the same lockfile and
/// dependency lists, made by a frozen install that succeeded) `npm install` runs instead, which
/// keeps what already fits and so changes nothing. Other package managers' frozen installs keep
/// a fitting `node_modules` themselves.
pub fn install_over_cache(planned: &str, node_modules_restored: bool) -> &str {
    match planned {
        "npm ci" if node_modules_restored => "npm install --prefer-offline --no-audit --no-fund",
        _ => planned,
    }
}

#[cfg(test)]
mod tests {
    use scalemesh_core::site_config::BuildSettings;

    use super::*;

    #[test]
    fn only_npm_ci_over_a_restored_node_modules_changes() {
        let table = [
            (
                "npm ci",
                true,
                "npm install --prefer-offline --no-audit --no-fund",
            ),
            ("npm ci", false, "npm ci"),
            ("npm install", true, "npm install"),
            (
                "pnpm install --frozen-lockfile",
                true,
                "pnpm install --frozen-lockfile",
            ),
            (
                "yarn install --frozen-lockfile",
                true,
                "yarn install --frozen-lockfile",
            ),
            (
                "npm ci && npm run prepare-assets",
                true,
                "npm ci && npm run prepare-assets",
            ),
        ];
        for (planned, restored, want) in table {
            assert_eq!(
                install_over_cache(planned, restored),
                want,
                "{planned} {restored}"
            );
        }
    }

    #[test]
    fn the_plan_names_the_folders_and_the_key() {
        let app = tempfile::tempdir().expect("tempdir");
        let files = [
            (
                "package.json",
                r#"{"dependencies":{"astro":"5.1.0"},"scripts":{"build":"astro build"}}"#,
            ),
            ("astro.config.mjs", "export default {};\n"),
            ("pnpm-lock.yaml", "lockfileVersion: '9.0'\n"),
        ];
        for (name, body) in files {
            std::fs::write(app.path().join(name), body).expect("write");
        }
        let plan = crate::detect::plan(app.path(), &BuildSettings::default()).expect("plan");
        let entry = Entry::of(&plan, app.path(), Some("22.12.0"));
        assert_eq!(entry.parts.preset, "astro");
        assert_eq!(entry.parts.package_manager, "pnpm");
        assert_eq!(
            entry.parts.lockfile,
            Some(app.path().join("pnpm-lock.yaml"))
        );
        assert_eq!(entry.parts.node, "22.12.0");
        let labels: Vec<_> = entry.dirs.iter().map(CachedDir::label).collect();
        for want in ["node_modules", "~/.local/share/pnpm/store"] {
            assert!(labels.iter().any(|l| l == want), "{want} in {labels:?}");
        }
        assert!(labels.iter().any(|l| l.contains(".astro")), "{labels:?}");

        let python = tempfile::tempdir().expect("tempdir");
        std::fs::write(python.path().join("mkdocs.yml"), "site_name: x\n").expect("write");
        std::fs::write(python.path().join("requirements.txt"), "mkdocs\n").expect("write");
        let plan = crate::detect::plan(python.path(), &BuildSettings::default()).expect("plan");
        let entry = Entry::of(&plan, python.path(), None);
        assert_eq!(entry.parts.package_manager, "pip");
        assert_eq!(
            entry.parts.lockfile,
            Some(python.path().join("requirements.txt"))
        );
        let labels: Vec<_> = entry.dirs.iter().map(CachedDir::label).collect();
        assert_eq!(labels, ["~/.cache/pip"]);
    }
}
