//! SvelteKit with `@sveltejs/adapter-static`, which writes `build` (or the adapter's `pages`).
//! Any other adapter makes a server (or, for adapter-auto, whatever the host it guesses wants),
//! which is refused rather than published.

use crate::detect::app::{App, reasons};
use crate::detect::plan::Output;
use crate::detect::preset::{Framework, NotStatic, Preset, RuntimeKind, config_names, setting};

pub const PRESET: Preset = Preset {
    id: "sveltekit",
    name: "SvelteKit",
    runtime: RuntimeKind::Node,
    detect,
    plan,
};

fn configs() -> Vec<String> {
    config_names("svelte.config", &["js", "mjs", "ts"])
}

fn detect(app: &App) -> Option<Vec<String>> {
    reasons(app.dependency(&["@sveltejs/kit"]), app.file(&configs()))
}

fn plan(app: &App) -> Framework {
    let (_, text) = app.config(&configs());
    let output = setting(&text, "pages").unwrap_or("build");
    Framework::new(
        app.build_script_or("node_modules/.bin/vite build"),
        Output::Folder(output.to_owned()),
    )
    .caches(&["node_modules/.vite"])
    .not_static(server(&text))
}

/// Why a SvelteKit app with this svelte.config would not build a static site.
pub fn server(config: &str) -> Option<NotStatic> {
    const PREFIX: &str = "@sveltejs/adapter-";
    let adapter = config.split(PREFIX).nth(1).map(|rest| {
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .unwrap_or(rest.len());
        &rest[..end]
    });
    let uses = match adapter {
        Some("static") => return None,
        Some(name) => format!("uses {PREFIX}{name}, which builds for a server or another host"),
        None => "names no adapter".to_owned(),
    };
    Some(NotStatic::new(format!(
        "SvelteKit's svelte.config.js {uses}: install @sveltejs/adapter-static and use it \
         (`import adapter from '@sveltejs/adapter-static'`), or set buildCommand and \
         outputDirectory in scalemesh.json"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_adapter_static_is_published() {
        let cases = [
            ("import adapter from '@sveltejs/adapter-static';", false),
            ("import adapter from \"@sveltejs/adapter-static\"", false),
            ("import adapter from '@sveltejs/adapter-auto';", true),
            ("import adapter from '@sveltejs/adapter-node';", true),
            ("import adapter from '@sveltejs/adapter-vercel';", true),
            ("export default { kit: {} }", true),
        ];
        for (config, refused) in cases {
            assert_eq!(server(config).is_some(), refused, "{config}");
        }
        let message = server("import adapter from '@sveltejs/adapter-node'").map(|p| p.message);
        assert!(message.is_some_and(|m| m.contains("@sveltejs/adapter-node")));
    }
}
