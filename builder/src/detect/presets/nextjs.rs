//! Next.js as a static export: `output: 'export'` in next.config writes `out` (or `distDir`).
//! Without it, `next build` makes a server, which is refused rather than published.

use crate::detect::app::{App, reasons};
use crate::detect::plan::Output;
use crate::detect::preset::{Framework, NotStatic, Preset, RuntimeKind, config_names, setting};

pub const PRESET: Preset = Preset {
    id: "nextjs",
    name: "Next.js",
    runtime: RuntimeKind::Node,
    detect,
    plan,
};

fn configs() -> Vec<String> {
    config_names("next.config", &["js", "mjs", "ts", "cjs"])
}

fn detect(app: &App) -> Option<Vec<String>> {
    reasons(app.dependency(&["next"]), app.file(&configs()))
}

fn plan(app: &App) -> Framework {
    let (config, text) = app.config(&configs());
    let output = setting(&text, "distDir").unwrap_or("out");
    Framework::new(
        app.build_script_or("node_modules/.bin/next build"),
        Output::Folder(output.to_owned()),
    )
    .caches(&[".next/cache"])
    .not_static(server(config.as_deref(), &text))
}

/// Why a Next.js app with this config (`None`: it has none) would not export a static site.
pub fn server(config: Option<&str>, text: &str) -> Option<NotStatic> {
    if setting(text, "output") == Some("export") {
        return None;
    }
    let fix = match config {
        Some(name) => format!("add `output: 'export'` to {name}"),
        None => "add a next.config.mjs holding `export default { output: 'export' }`".to_owned(),
    };
    Some(NotStatic::new(format!(
        "Next.js is set up for a server (next.config has no `output: 'export'`), which cannot be \
         published as a site: {fix}, or set buildCommand and outputDirectory in scalemesh.json"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_static_export_is_published() {
        let cases = [
            (
                Some("next.config.mjs"),
                "const c = { output: 'export' };",
                false,
            ),
            (
                Some("next.config.js"),
                "module.exports = {\n  output: \"export\",\n}",
                false,
            ),
            (
                Some("next.config.ts"),
                "export default { output: 'standalone' }",
                true,
            ),
            (Some("next.config.mjs"), "export default {}", true),
            (
                Some("next.config.mjs"),
                "// output: 'export'\nexport default {}",
                true,
            ),
            (None, "", true),
        ];
        for (config, text, refused) in cases {
            let got = server(config, text);
            assert_eq!(got.is_some(), refused, "{text}");
            if let (Some(name), Some(problem)) = (config, got) {
                assert!(problem.message.contains(name), "{}", problem.message);
            }
        }
    }
}
