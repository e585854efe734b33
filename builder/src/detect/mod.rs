//! Build detection: what to install, what to build and which folder to upload, from the files
//! of the app and its settings. Each preset (`presets/`) recognises one framework and plans its
//! build; planning reads files but runs nothing. A preset that would publish a server instead
//! of a site refuses, and says how to make it static.

mod app;
mod error;
mod output;
mod package_json;
mod package_manager;
mod place;
mod plan;
mod preset;
mod presets;
mod python;

use std::path::Path;

use scalemesh_core::site_config::BuildSettings;

use app::App;
use preset::{Clearance, Framework, Preset, RuntimeKind};
use presets::{PLAIN, PRESETS};

pub use error::DetectError;
pub use output::{OUTPUT_CANDIDATES, check_output, output_folder};
pub use package_manager::{NodeRuntime, PackageManager};
pub use place::Place;
pub use plan::{Output, Plan, Runtime};

/// Plans the build of the app in `root` with `settings` (the project's, overlaid with
/// `scalemesh.json`) taking precedence over detection.
pub fn plan(root: &Path, settings: &BuildSettings) -> Result<Plan, DetectError> {
    let app = App::read(root)?;
    let (preset, reasons) = choose(&app, settings.framework.as_deref())?;
    let framework = (preset.plan)(&app);
    refuse_a_server(&framework, settings)?;
    let mut plan = assemble(&app, preset, reasons, framework);
    if let Some(cmd) = &settings.install_command {
        plan.install = (!cmd.trim().is_empty()).then(|| cmd.clone());
    }
    if let Some(cmd) = &settings.build_command {
        plan.build = (!cmd.trim().is_empty()).then(|| cmd.clone());
    }
    if let Some(dir) = &settings.output_directory {
        plan.output = Output::Folder(dir.clone());
    }
    Ok(plan)
}

/// The ids `framework` may name, besides `none`.
pub fn preset_ids() -> Vec<&'static str> {
    PRESETS.iter().map(|p| p.id).collect()
}

/// The preset the settings name, else the first that recognises the app.
fn choose(
    app: &App,
    framework: Option<&str>,
) -> Result<(&'static Preset, Vec<String>), DetectError> {
    let detect = |presets: &[&'static Preset]| {
        presets
            .iter()
            .find_map(|preset| Some((*preset, (preset.detect)(app)?)))
    };
    let found = match framework {
        None => detect(&PRESETS),
        Some("none") => detect(&PLAIN).map(|(preset, mut reasons)| {
            reasons.push("framework \"none\" in the settings".to_owned());
            (preset, reasons)
        }),
        Some(id) => {
            let preset = PRESETS.iter().find(|p| p.id == id).ok_or_else(|| {
                DetectError::UnknownFramework {
                    given: id.to_owned(),
                    known: preset_ids().join(", "),
                }
            })?;
            Some((*preset, vec![format!("framework \"{id}\" in the settings")]))
        }
    };
    // The static site preset recognises anything, so this is only a fallback's fallback.
    Ok(found.unwrap_or((PLAIN[1], Vec::new())))
}

/// Refuses a build that would make a server, unless the user's settings say what to build
/// and publish instead.
fn refuse_a_server(framework: &Framework, settings: &BuildSettings) -> Result<(), DetectError> {
    let Some(problem) = &framework.not_static else {
        return Ok(());
    };
    let cleared = match problem.cleared_by {
        Clearance::BuildCommand => settings.build_command.is_some(),
        Clearance::BuildAndOutput => {
            settings.build_command.is_some() && settings.output_directory.is_some()
        }
    };
    if cleared {
        Ok(())
    } else {
        Err(DetectError::NotStatic(problem.message.clone()))
    }
}

/// The preset's plan, with the runtime's install, setup and caches around it.
fn assemble(app: &App, preset: &Preset, reasons: Vec<String>, framework: Framework) -> Plan {
    let mut plan = Plan {
        preset: preset.id,
        name: preset.name,
        reasons,
        runtime: Runtime::None,
        setup: None,
        install: None,
        build: framework.build,
        output: framework.output,
        path: Vec::new(),
        env: Vec::new(),
        caches: framework.caches,
        notes: framework.notes,
    };
    match (preset.runtime, &app.node, &app.package) {
        (RuntimeKind::Node, Some(node), Some(package)) => {
            if package.has_dependencies() {
                plan.install = Some(node.install());
            } else {
                plan.notes.insert(
                    0,
                    "No dependencies in package.json: skipping install".to_owned(),
                );
            }
            plan.setup = node.setup();
            (plan.path, plan.env) = node.path_and_env();
            plan.caches.extend(node.caches());
            plan.notes.extend(node.note());
            plan.runtime = Runtime::Node(node.clone());
        }
        (RuntimeKind::Python, _, _) => {
            match python::install(app) {
                python::Install::Venv(cmd) => plan.install = Some(cmd),
                python::Install::Skip(note) => plan.notes.insert(0, note),
            }
            plan.caches.push(Place::home(".cache/pip"));
            plan.runtime = Runtime::Python;
        }
        _ => {}
    }
    plan
}

#[cfg(test)]
mod tests;
