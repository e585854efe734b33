//! Hexo: `hexo generate` writes `public` (or `public_dir` of `_config.yml`).

use crate::detect::app::{App, reasons};
use crate::detect::plan::Output;
use crate::detect::preset::{Framework, Preset, RuntimeKind, config_names, setting};

pub const PRESET: Preset = Preset {
    id: "hexo",
    name: "Hexo",
    runtime: RuntimeKind::Node,
    detect,
    plan,
};

fn detect(app: &App) -> Option<Vec<String>> {
    let configs = config_names("_config", &["yml"]);
    reasons(app.dependency(&["hexo"]), app.file(&configs))
}

fn plan(app: &App) -> Framework {
    let config = app.text("_config.yml").unwrap_or_default();
    let output = setting(&config, "public_dir").unwrap_or("public");
    Framework::new(
        app.build_script_or("node_modules/.bin/hexo generate"),
        Output::Folder(output.trim_end_matches('/').to_owned()),
    )
}
