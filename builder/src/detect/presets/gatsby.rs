//! Gatsby: `gatsby build` writes `public`; its `.cache` and `public` make the next build faster.

use crate::detect::app::{App, reasons};
use crate::detect::plan::Output;
use crate::detect::preset::{Framework, Preset, RuntimeKind, config_names};

pub const PRESET: Preset = Preset {
    id: "gatsby",
    name: "Gatsby",
    runtime: RuntimeKind::Node,
    detect,
    plan,
};

fn detect(app: &App) -> Option<Vec<String>> {
    let configs = config_names("gatsby-config", &["js", "ts", "mjs"]);
    reasons(app.dependency(&["gatsby"]), app.file(&configs))
}

fn plan(app: &App) -> Framework {
    Framework::new(
        app.build_script_or("node_modules/.bin/gatsby build"),
        Output::Folder("public".to_owned()),
    )
    .caches(&[".cache", "public"])
}
