//! Eleventy: writes `_site` (or the config's `dir.output`). The output is always named, never
//! looked for, since an Eleventy site's `public/` is often a source folder.

use crate::detect::app::{App, reasons};
use crate::detect::plan::Output;
use crate::detect::preset::{Framework, Preset, RuntimeKind, config_names, setting};

pub const PRESET: Preset = Preset {
    id: "eleventy",
    name: "Eleventy",
    runtime: RuntimeKind::Node,
    detect,
    plan,
};

fn configs() -> Vec<String> {
    let mut names = vec![".eleventy.js".to_owned()];
    names.extend(config_names("eleventy.config", &["js", "mjs", "cjs", "ts"]));
    names
}

fn detect(app: &App) -> Option<Vec<String>> {
    reasons(app.dependency(&["@11ty/eleventy"]), app.file(&configs()))
}

fn plan(app: &App) -> Framework {
    let (_, text) = app.config(&configs());
    let output = setting(&text, "output")
        .map(|dir| dir.trim_start_matches("./").trim_end_matches('/'))
        .unwrap_or("_site");
    Framework::new(
        app.build_script_or("node_modules/.bin/eleventy"),
        Output::Folder(output.to_owned()),
    )
    .caches(&[".cache"])
}
