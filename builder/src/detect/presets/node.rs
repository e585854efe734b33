//! A Node.js app of no known framework: its `build` script, and an output folder looked for
//! once the build is done.

use crate::detect::app::App;
use crate::detect::plan::Output;
use crate::detect::preset::{Framework, Preset, RuntimeKind};

pub const PRESET: Preset = Preset {
    id: "node",
    name: "Node.js",
    runtime: RuntimeKind::Node,
    detect,
    plan,
};

fn detect(app: &App) -> Option<Vec<String>> {
    app.package
        .as_ref()
        .map(|_| vec!["package.json".to_owned()])
}

fn plan(app: &App) -> Framework {
    let build = match (&app.node, app.script("build")) {
        (Some(node), Some(_)) => Some(node.run("build")),
        _ => None,
    };
    Framework {
        build,
        output: Output::Find,
        caches: Vec::new(),
        notes: Vec::new(),
        not_static: None,
    }
}
