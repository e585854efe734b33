//! Sphinx: a `conf.py` in `docs/` (or at the root, beside an index page) is built with
//! `sphinx-build -b html <source> <source>/_build/html`, from a virtual environment.

use crate::detect::app::App;
use crate::detect::plan::Output;
use crate::detect::preset::{Framework, Preset, RuntimeKind};
use crate::detect::python;

pub const PRESET: Preset = Preset {
    id: "sphinx",
    name: "Sphinx",
    runtime: RuntimeKind::Python,
    detect,
    plan,
};

/// The folder holding `conf.py`: `docs`, or `.` when the root has an index page beside it.
fn source(app: &App) -> Option<&'static str> {
    if app.file(&["docs/conf.py"]).is_some() {
        Some("docs")
    } else if app.file(&["conf.py"]).is_some() && app.file(&["index.rst", "index.md"]).is_some() {
        Some(".")
    } else {
        None
    }
}

fn detect(app: &App) -> Option<Vec<String>> {
    source(app).map(|src| match src {
        "." => vec!["conf.py".to_owned()],
        src => vec![format!("{src}/conf.py")],
    })
}

fn plan(app: &App) -> Framework {
    let src = source(app).unwrap_or("docs");
    let out = match src {
        "." => "_build/html".to_owned(),
        src => format!("{src}/_build/html"),
    };
    Framework::new(
        format!("{} -b html {src} {out}", python::tool(app, "sphinx-build")),
        Output::Folder(out),
    )
}
