//! What detection decides: how to install, build and find the site, and why.

use super::package_manager::NodeRuntime;
use super::place::Place;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The preset's id, as `framework` in scalemesh.json names it: `astro`.
    pub preset: &'static str,
    /// The preset's name, for the log: `Astro`.
    pub name: &'static str,
    /// What it was recognised by: `astro in dependencies`, `astro.config.mjs`.
    pub reasons: Vec<String>,
    pub runtime: Runtime,
    /// Run before the install, to make the package manager available.
    pub setup: Option<String>,
    pub install: Option<String>,
    pub build: Option<String>,
    pub output: Output,
    /// Folders to put first on PATH for every command.
    pub path: Vec<Place>,
    /// Variables every command gets, besides the build's own.
    pub env: Vec<(String, String)>,
    /// What is worth keeping between builds: the framework's caches and the installed packages
    /// (in the app), the package manager's downloads (in HOME).
    pub caches: Vec<Place>,
    /// Said in the log: why install was left out, which script stands in for `build`.
    pub notes: Vec<String>,
}

impl Plan {
    /// The log's line: `Detected Astro (astro in dependencies, astro.config.mjs)`.
    pub fn detected(&self) -> String {
        if self.reasons.is_empty() {
            format!("Detected {}", self.name)
        } else {
            format!("Detected {} ({})", self.name, self.reasons.join(", "))
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runtime {
    /// Nothing to install: a plain static site.
    None,
    Node(NodeRuntime),
    /// Commands run under `sh -c` in the app's folder, from a virtual environment in `.venv`.
    Python,
}

/// Which folder holds the built site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// This folder, relative to the app.
    Folder(String),
    /// This folder's `browser` subfolder when the build made one (Angular's application
    /// builder), else the folder itself.
    BrowserIn(String),
    /// Not known before the build: the first of the usual folders that exists then.
    Find,
}
