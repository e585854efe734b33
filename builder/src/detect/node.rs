//! Node.js apps: `package.json`, the package manager from the lockfile (or `packageManager`),
//! the `build` script.

use std::path::Path;

use serde::Deserialize;

use super::plan::{DetectError, Plan};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageManager {
    Npm,
    Yarn,
    Pnpm,
}

impl PackageManager {
    fn name(self) -> &'static str {
        match self {
            Self::Npm => "npm",
            Self::Yarn => "yarn",
            Self::Pnpm => "pnpm",
        }
    }

    fn install(self, locked: bool) -> &'static str {
        match (self, locked) {
            (Self::Npm, true) => "npm ci",
            (Self::Npm, false) => "npm install",
            (Self::Yarn, true) => "yarn install --frozen-lockfile",
            (Self::Yarn, false) => "yarn install",
            (Self::Pnpm, true) => "pnpm install --frozen-lockfile",
            (Self::Pnpm, false) => "pnpm install",
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PackageJson {
    #[serde(default)]
    scripts: std::collections::BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    dependencies: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    dev_dependencies: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    package_manager: Option<String>,
}

pub fn detect(root: &Path) -> Result<Option<Plan>, DetectError> {
    let raw = match crate::source::read_config_file(root, "package.json") {
        Ok(Some(raw)) => raw,
        Ok(None) => return Ok(None),
        Err(e) => return Err(DetectError::Read(format!("{e:#}"))),
    };
    let pkg: PackageJson =
        serde_json::from_str(&raw).map_err(|e| DetectError::PackageJson(e.to_string()))?;
    let lock = [
        ("pnpm-lock.yaml", PackageManager::Pnpm),
        ("yarn.lock", PackageManager::Yarn),
        ("package-lock.json", PackageManager::Npm),
        ("npm-shrinkwrap.json", PackageManager::Npm),
    ]
    .into_iter()
    .find(|(file, _)| root.join(file).is_file())
    .map(|(_, pm)| pm);
    let declared = pkg
        .package_manager
        .as_deref()
        .and_then(|pm| match pm.split('@').next() {
            Some("pnpm") => Some(PackageManager::Pnpm),
            Some("yarn") => Some(PackageManager::Yarn),
            Some("npm") => Some(PackageManager::Npm),
            _ => None,
        });
    let pm = lock.or(declared).unwrap_or(PackageManager::Npm);
    let mut notes = Vec::new();
    let install = if pkg.dependencies.is_empty() && pkg.dev_dependencies.is_empty() {
        notes.push("No dependencies in package.json: skipping install".to_owned());
        None
    } else {
        Some(pm.install(lock == Some(pm)).to_owned())
    };
    let build = pkg
        .scripts
        .contains_key("build")
        .then(|| format!("{} run build", pm.name()));
    Ok(Some(Plan {
        provider: format!("Node.js ({})", pm.name()),
        install,
        build,
        output: None,
        notes,
    }))
}
