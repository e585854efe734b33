//! A static site: nothing to install or build; the site is the first of the usual output
//! folders, else the app's root with its `index.html`.

use crate::detect::app::App;
use crate::detect::plan::Output;
use crate::detect::preset::{Framework, Preset, RuntimeKind};

pub const PRESET: Preset = Preset {
    id: "static",
    name: "static site",
    runtime: RuntimeKind::None,
    detect,
    plan,
};

/// Anything is a static site: this preset comes last.
fn detect(_: &App) -> Option<Vec<String>> {
    Some(Vec::new())
}

fn plan(_: &App) -> Framework {
    Framework {
        build: None,
        output: Output::Find,
        caches: Vec::new(),
        notes: Vec::new(),
        not_static: None,
    }
}
