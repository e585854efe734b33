//! Vite, whatever the template (React, Vue, Svelte, Preact, Lit, Solid, vanilla): `vite build`
//! writes `dist` (or `build.outDir`). Frameworks built on Vite come earlier in the list.

use crate::detect::app::App;
use crate::detect::plan::Output;
use crate::detect::preset::{Framework, Preset, RuntimeKind, config_names, setting};

pub const PRESET: Preset = Preset {
    id: "vite",
    name: "Vite",
    runtime: RuntimeKind::Node,
    detect,
    plan,
};

fn configs() -> Vec<String> {
    config_names("vite.config", &["ts", "js", "mjs", "mts", "cjs", "cts"])
}

fn detect(app: &App) -> Option<Vec<String>> {
    let reasons: Vec<String> = app
        .dependency(&["vite"])
        .into_iter()
        .chain(app.file(&configs()))
        .collect();
    (!reasons.is_empty()).then_some(reasons)
}

fn plan(app: &App) -> Framework {
    let (_, text) = app.config(&configs());
    let output = setting(&text, "outDir")
        .map(|dir| dir.trim_start_matches("./").trim_end_matches('/'))
        .unwrap_or("dist");
    Framework::new(
        app.build_script_or("node_modules/.bin/vite build"),
        Output::Folder(output.to_owned()),
    )
    .caches(&["node_modules/.vite"])
}
