//! React Router 7 (and Remix, its predecessor) as a single-page app: with `ssr: false` (or
//! pages listed in `prerender`) the build writes the site to `build/client`. Otherwise it
//! renders on a server, which is refused rather than published.

use crate::detect::app::App;
use crate::detect::plan::Output;
use crate::detect::preset::{Framework, NotStatic, Preset, RuntimeKind, config_names, setting};

pub const PRESET: Preset = Preset {
    id: "react-router",
    name: "React Router",
    runtime: RuntimeKind::Node,
    detect,
    plan,
};

fn configs() -> Vec<String> {
    let mut names = config_names("react-router.config", &["ts", "js", "mjs"]);
    names.extend(config_names("vite.config", &["ts", "js", "mjs", "mts"]));
    names
}

fn detect(app: &App) -> Option<Vec<String>> {
    let dependency = app.dependency(&["@react-router/dev", "@remix-run/dev"]);
    let config = app.file(&config_names("react-router.config", &["ts", "js", "mjs"]));
    let mut reasons: Vec<String> = dependency.into_iter().chain(config).collect();
    (!reasons.is_empty()).then(|| {
        reasons.dedup();
        reasons
    })
}

fn plan(app: &App) -> Framework {
    let config = configs()
        .iter()
        .filter_map(|name| app.text(name))
        .collect::<Vec<_>>()
        .join("\n");
    Framework::new(
        app.build_script_or("node_modules/.bin/react-router build"),
        Output::Folder("build/client".to_owned()),
    )
    .caches(&["node_modules/.vite"])
    .not_static(server(&config))
}

/// Why an app whose react-router.config and vite.config read `config` would need a server.
pub fn server(config: &str) -> Option<NotStatic> {
    let spa = setting(config, "ssr") == Some("false");
    let prerendered = setting(config, "prerender").is_some_and(|v| v != "false");
    (!spa && !prerendered).then(|| {
        NotStatic::new(
            "React Router renders on a server unless told otherwise: set `ssr: false` in \
             react-router.config.ts (Remix: in the remix() plugin's options in vite.config.ts) \
             for a single-page app, or list pages in `prerender`; or set buildCommand and \
             outputDirectory in scalemesh.json"
                .to_owned(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_single_page_or_prerendered_app_is_published() {
        let cases = [
            ("export default { ssr: false } satisfies Config;", false),
            ("plugins: [remix({ ssr: false })]", false),
            ("export default { prerender: [\"/\", \"/about\"] }", false),
            ("export default { prerender: true }", false),
            ("export default { ssr: true } satisfies Config;", true),
            ("export default {} satisfies Config;", true),
            ("", true),
        ];
        for (config, refused) in cases {
            assert_eq!(server(config).is_some(), refused, "{config}");
        }
    }
}
