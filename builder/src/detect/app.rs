//! The app as presets see it: its folder, its package.json and package manager, and small
//! questions about its files. Reading only; nothing runs.

use std::path::Path;

use super::error::DetectError;
use super::package_json::PackageJson;
use super::package_manager::NodeRuntime;

pub struct App<'a> {
    pub root: &'a Path,
    pub package: Option<PackageJson>,
    pub node: Option<NodeRuntime>,
}

impl<'a> App<'a> {
    pub fn read(root: &'a Path) -> Result<Self, DetectError> {
        let raw = crate::source::read_config_file(root, "package.json")
            .map_err(|e| DetectError::Read(format!("{e:#}")))?;
        let Some(raw) = raw else {
            return Ok(Self {
                root,
                package: None,
                node: None,
            });
        };
        let package =
            PackageJson::parse(&raw).map_err(|e| DetectError::PackageJson(e.to_string()))?;
        let node = NodeRuntime::detect(root, &package)?;
        Ok(Self {
            root,
            package: Some(package),
            node: Some(node),
        })
    }

    /// `"next in dependencies"` when the app depends on the first of `names` it has.
    pub fn dependency(&self, names: &[&str]) -> Option<String> {
        let package = self.package.as_ref()?;
        names.iter().find_map(|name| package.dependency(name))
    }

    pub fn script(&self, name: &str) -> Option<&str> {
        self.package.as_ref()?.script(name)
    }

    /// The first of `names` that is a file of the app.
    pub fn file<S: AsRef<str>>(&self, names: &[S]) -> Option<String> {
        names
            .iter()
            .map(AsRef::as_ref)
            .find(|name| self.root.join(name).is_file())
            .map(str::to_owned)
    }

    /// The text of the app's file `name`; `None` when it is missing or unreadable.
    pub fn text(&self, name: &str) -> Option<String> {
        crate::source::read_config_file(self.root, name)
            .ok()
            .flatten()
    }

    /// The name and text of the first of `names` the app has, or empty ones.
    pub fn config<S: AsRef<str>>(&self, names: &[S]) -> (Option<String>, String) {
        let name = self.file(names);
        let text = name
            .as_deref()
            .and_then(|n| self.text(n))
            .unwrap_or_default();
        (name, text)
    }

    /// The `build` script through the package manager (`pnpm run build`) when there is one,
    /// else `fallback`, the framework's own command from the app's installed binaries.
    pub fn build_script_or(&self, fallback: &str) -> String {
        match (&self.node, self.script("build")) {
            (Some(node), Some(_)) => node.run("build"),
            _ => fallback.to_owned(),
        }
    }
}

/// Reasons for a preset found by its dependencies and, when present, its config file.
pub fn reasons(dependency: Option<String>, config: Option<String>) -> Option<Vec<String>> {
    let mut reasons = vec![dependency?];
    reasons.extend(config);
    Some(reasons)
}
