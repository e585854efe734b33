//! Astro, static by default: `dist` (or `outDir`). `output: 'server'` makes a server, which is
//! refused rather than published.

use crate::detect::app::{App, reasons};
use crate::detect::plan::Output;
use crate::detect::preset::{Framework, NotStatic, Preset, RuntimeKind, config_names, setting};

pub const PRESET: Preset = Preset {
    id: "astro",
    name: "Astro",
    runtime: RuntimeKind::Node,
    detect,
    plan,
};

fn configs() -> Vec<String> {
    config_names("astro.config", &["mjs", "js", "ts", "mts", "cjs"])
}

fn detect(app: &App) -> Option<Vec<String>> {
    reasons(app.dependency(&["astro"]), app.file(&configs()))
}

fn plan(app: &App) -> Framework {
    let (config, text) = app.config(&configs());
    let output = setting(&text, "outDir")
        .map(|dir| dir.trim_start_matches("./").trim_end_matches('/'))
        .unwrap_or("dist");
    Framework::new(
        app.build_script_or("node_modules/.bin/astro build"),
        Output::Folder(output.to_owned()),
    )
    .caches(&["node_modules/.astro", ".astro"])
    .not_static(server(
        config.as_deref().unwrap_or("astro.config.mjs"),
        &text,
    ))
}

/// Why an Astro app with this config would not build a static site.
pub fn server(name: &str, text: &str) -> Option<NotStatic> {
    let output = setting(text, "output")?;
    (output == "server").then(|| {
        NotStatic::new(format!(
            "Astro is set up for a server (`output: '{output}'` in {name}): remove it (static is \
             the default), or set buildCommand and outputDirectory in scalemesh.json"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_static_output_is_published() {
        let cases = [
            ("export default defineConfig({})", false),
            ("export default defineConfig({ output: 'static' })", false),
            (
                "export default defineConfig({ output: 'server', adapter: node() })",
                true,
            ),
            (
                "export default defineConfig({\n  output: \"server\",\n})",
                true,
            ),
        ];
        for (text, refused) in cases {
            assert_eq!(
                server("astro.config.mjs", text).is_some(),
                refused,
                "{text}"
            );
        }
    }
}
