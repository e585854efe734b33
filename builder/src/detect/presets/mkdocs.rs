//! MkDocs: `mkdocs build` writes `site` (or `site_dir` of mkdocs.yml), from a virtual
//! environment.

use crate::detect::app::App;
use crate::detect::plan::Output;
use crate::detect::preset::{Framework, Preset, RuntimeKind, setting};
use crate::detect::python;

pub const PRESET: Preset = Preset {
    id: "mkdocs",
    name: "MkDocs",
    runtime: RuntimeKind::Python,
    detect,
    plan,
};

const CONFIGS: [&str; 2] = ["mkdocs.yml", "mkdocs.yaml"];

fn detect(app: &App) -> Option<Vec<String>> {
    app.file(&CONFIGS).map(|config| vec![config])
}

fn plan(app: &App) -> Framework {
    let (_, text) = app.config(&CONFIGS);
    // Only a top-level `site_dir:`, not one a plugin's options happen to hold.
    let top_level: String = text
        .lines()
        .filter(|line| !line.starts_with([' ', '\t']))
        .collect::<Vec<_>>()
        .join("\n");
    let output = setting(&top_level, "site_dir")
        .map(|dir| dir.trim_start_matches("./").trim_end_matches('/'))
        .unwrap_or("site");
    Framework::new(
        format!("{} build", python::tool(app, "mkdocs")),
        Output::Folder(output.to_owned()),
    )
}
