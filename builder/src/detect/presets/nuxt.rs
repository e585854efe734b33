//! Nuxt prerendered with `nuxt generate`, which writes `.output/public`. A `build` script of
//! `nuxt build` makes a server: the `generate` script runs instead when there is one, else the
//! build is refused rather than published.

use crate::detect::app::{App, reasons};
use crate::detect::plan::Output;
use crate::detect::preset::{Clearance, Framework, NotStatic, Preset, RuntimeKind, config_names};

pub const PRESET: Preset = Preset {
    id: "nuxt",
    name: "Nuxt",
    runtime: RuntimeKind::Node,
    detect,
    plan,
};

fn detect(app: &App) -> Option<Vec<String>> {
    let deps = ["nuxt", "nuxt3", "nuxt-edge", "nuxt-nightly"];
    let configs = config_names("nuxt.config", &["ts", "js", "mjs"]);
    reasons(app.dependency(&deps), app.file(&configs))
}

fn plan(app: &App) -> Framework {
    let generate = app.script("generate").filter(|s| is_nuxt(s, "generate"));
    let output = Output::Folder(".output/public".to_owned());
    let caches = [".nuxt", "node_modules/.cache/nuxt"];
    let run = |script: &str| match &app.node {
        Some(node) => node.run(script),
        None => format!("npm run {script}"),
    };
    match choose(app.script("build"), generate.is_some()) {
        NuxtBuild::Build => Framework::new(
            app.build_script_or("node_modules/.bin/nuxt generate"),
            output,
        )
        .caches(&caches),
        NuxtBuild::Generate => {
            let mut plan = Framework::new(run("generate"), output).caches(&caches);
            plan.notes
                .push("Running the generate script: Nuxt's build script makes a server".to_owned());
            plan
        }
        NuxtBuild::Server => Framework::new(run("build"), output)
            .caches(&caches)
            .not_static(Some(NotStatic {
                message: "Nuxt's build script runs `nuxt build`, which makes a server: use \
                          `nuxt generate` for a static site (as the build script, or as \
                          buildCommand in scalemesh.json)"
                    .to_owned(),
                cleared_by: Clearance::BuildCommand,
            })),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NuxtBuild {
    /// The build script (or, without one, `nuxt generate`).
    Build,
    /// The `generate` script, standing in for a build script that makes a server.
    Generate,
    Server,
}

/// Which command builds a static Nuxt site, from the `build` script and whether a `generate`
/// script runs `nuxt generate`.
pub fn choose(build: Option<&str>, has_generate: bool) -> NuxtBuild {
    match build {
        Some(script) if is_nuxt(script, "build") && !script.contains("--prerender") => {
            if has_generate {
                NuxtBuild::Generate
            } else {
                NuxtBuild::Server
            }
        }
        Some(_) => NuxtBuild::Build,
        None if has_generate => NuxtBuild::Generate,
        None => NuxtBuild::Build,
    }
}

/// Whether `script` runs `nuxt <command>` (or `nuxi <command>`).
fn is_nuxt(script: &str, command: &str) -> bool {
    ["nuxt", "nuxi"]
        .iter()
        .any(|bin| script.contains(&format!("{bin} {command}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_nuxt_statically_or_refuses() {
        let cases = [
            (Some("nuxt generate"), false, NuxtBuild::Build),
            (Some("nuxi generate"), true, NuxtBuild::Build),
            (Some("nuxt build --prerender"), false, NuxtBuild::Build),
            (Some("nuxt build"), true, NuxtBuild::Generate),
            (Some("nuxi build"), true, NuxtBuild::Generate),
            (Some("nuxt build"), false, NuxtBuild::Server),
            (Some("node scripts/site.js"), false, NuxtBuild::Build),
            (None, true, NuxtBuild::Generate),
            (None, false, NuxtBuild::Build),
        ];
        for (build, has_generate, want) in cases {
            assert_eq!(
                choose(build, has_generate),
                want,
                "{build:?} {has_generate}"
            );
        }
    }
}
