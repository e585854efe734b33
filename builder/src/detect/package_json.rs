//! The parts of `package.json` detection reads: scripts, dependencies, `packageManager`.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageJson {
    #[serde(default)]
    scripts: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    dependencies: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    dev_dependencies: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub package_manager: Option<String>,
}

impl PackageJson {
    pub fn parse(raw: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(raw)
    }

    /// `"astro in dependencies"` when the app depends on `name`, for the log's reasons.
    pub fn dependency(&self, name: &str) -> Option<String> {
        if self.dependencies.contains_key(name) {
            Some(format!("{name} in dependencies"))
        } else if self.dev_dependencies.contains_key(name) {
            Some(format!("{name} in devDependencies"))
        } else {
            None
        }
    }

    pub fn has_dependencies(&self) -> bool {
        !self.dependencies.is_empty() || !self.dev_dependencies.is_empty()
    }

    /// The script called `name`, when there is one.
    pub fn script(&self, name: &str) -> Option<&str> {
        self.scripts.get(name).and_then(|v| v.as_str())
    }

    /// The first script (by name) whose command contains `needle`, as `(name, command)`.
    pub fn script_running(&self, needle: &str) -> Option<(&str, &str)> {
        self.scripts
            .iter()
            .filter_map(|(name, cmd)| Some((name.as_str(), cmd.as_str()?)))
            .find(|(_, cmd)| cmd.contains(needle))
    }
}
