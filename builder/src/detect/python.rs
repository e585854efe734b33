//! Python documentation tools (MkDocs, Sphinx): installed into a virtual environment in `.venv`
//! from `requirements.txt` or `pyproject.toml`, and run from there.

use super::app::App;

/// Where the app lists what to install, in the order they are tried.
const REQUIREMENTS: [&str; 2] = ["requirements.txt", "docs/requirements.txt"];

/// How the app's Python packages are installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Install {
    /// Into `.venv`, with this command.
    Venv(String),
    /// Nothing to install from: the tools must be on the builder's PATH.
    Skip(String),
}

pub fn install(app: &App) -> Install {
    const VENV: &str = "python3 -m venv .venv && .venv/bin/pip install";
    if let Some(file) = app.file(&REQUIREMENTS) {
        Install::Venv(format!("{VENV} -r {file}"))
    } else if app.file(&["pyproject.toml"]).is_some() {
        Install::Venv(format!("{VENV} ."))
    } else {
        Install::Skip(
            "No requirements.txt or pyproject.toml: skipping install; the builder's own tools run"
                .to_owned(),
        )
    }
}

/// The command `tool` of the virtual environment, or the builder's own when nothing is
/// installed.
pub fn tool(app: &App, tool: &str) -> String {
    match install(app) {
        Install::Venv(_) => format!(".venv/bin/{tool}"),
        Install::Skip(_) => tool.to_owned(),
    }
}
