//! Docusaurus 2 and later: `docusaurus build` writes `build`.

use crate::detect::app::{App, reasons};
use crate::detect::plan::Output;
use crate::detect::preset::{Framework, Preset, RuntimeKind, config_names};

pub const PRESET: Preset = Preset {
    id: "docusaurus",
    name: "Docusaurus",
    runtime: RuntimeKind::Node,
    detect,
    plan,
};

fn detect(app: &App) -> Option<Vec<String>> {
    let configs = config_names("docusaurus.config", &["js", "ts", "mjs"]);
    reasons(app.dependency(&["@docusaurus/core"]), app.file(&configs))
}

fn plan(app: &App) -> Framework {
    Framework::new(
        app.build_script_or("node_modules/.bin/docusaurus build"),
        Output::Folder("build".to_owned()),
    )
    .caches(&[".docusaurus", "node_modules/.cache"])
}
