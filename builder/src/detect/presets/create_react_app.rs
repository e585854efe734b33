//! Create React App: `react-scripts build` writes `build`.

use crate::detect::app::App;
use crate::detect::plan::Output;
use crate::detect::preset::{Framework, Preset, RuntimeKind};

pub const PRESET: Preset = Preset {
    id: "create-react-app",
    name: "Create React App",
    runtime: RuntimeKind::Node,
    detect,
    plan,
};

fn detect(app: &App) -> Option<Vec<String>> {
    app.dependency(&["react-scripts"])
        .map(|dependency| vec![dependency])
}

fn plan(app: &App) -> Framework {
    Framework::new(
        app.build_script_or("node_modules/.bin/react-scripts build"),
        Output::Folder("build".to_owned()),
    )
    .caches(&["node_modules/.cache"])
}
