//! VitePress: `vitepress build <docs>` writes `<docs>/.vitepress/dist`. The folder comes from
//! the script that runs it (`docs:build` as the generator writes it), else `docs`.

use crate::detect::app::{App, reasons};
use crate::detect::place::Place;
use crate::detect::plan::Output;
use crate::detect::preset::{Framework, Preset, RuntimeKind, config_names};

pub const PRESET: Preset = Preset {
    id: "vitepress",
    name: "VitePress",
    runtime: RuntimeKind::Node,
    detect,
    plan,
};

fn detect(app: &App) -> Option<Vec<String>> {
    let docs = docs_folder(script(app).map(|(_, cmd)| cmd));
    let configs = config_names(
        &format!("{docs}/.vitepress/config"),
        &["mts", "ts", "mjs", "js"],
    );
    reasons(app.dependency(&["vitepress"]), app.file(&configs))
}

/// The script that runs `vitepress build`, as `(name, command)`.
fn script<'a>(app: &'a App) -> Option<(&'a str, &'a str)> {
    app.package.as_ref()?.script_running("vitepress build")
}

fn plan(app: &App) -> Framework {
    let found = script(app);
    let docs = docs_folder(found.map(|(_, cmd)| cmd));
    let prefix = if docs == "." {
        String::new()
    } else {
        format!("{docs}/")
    };
    let (build, note) = match (app.script("build"), found, &app.node) {
        (None, Some((name, _)), Some(node)) => (
            node.run(name),
            Some(format!(
                "No build script: running {name}, which runs vitepress build"
            )),
        ),
        _ => (
            app.build_script_or(&format!("node_modules/.bin/vitepress build {docs}")),
            None,
        ),
    };
    let mut plan = Framework::new(build, Output::Folder(format!("{prefix}.vitepress/dist")));
    plan.caches
        .push(Place::app(format!("{prefix}.vitepress/cache")));
    plan.notes.extend(note);
    plan
}

/// The folder a `vitepress build` command builds: its first argument that is not an option,
/// `.` when it has none, `docs` when there is no such command.
pub fn docs_folder(command: Option<&str>) -> String {
    let Some(command) = command else {
        return "docs".to_owned();
    };
    let after = command.split("vitepress build").nth(1).unwrap_or("");
    // Options that take a value: `--base /docs/` is not the folder.
    const WITH_VALUE: [&str; 4] = ["--base", "--target", "--outDir", "--assetsInlineLimit"];
    let mut words = after
        .split_whitespace()
        .take_while(|word| !matches!(*word, "&&" | "||" | ";" | "|"));
    let mut arg = None;
    while let Some(word) = words.next() {
        if WITH_VALUE.contains(&word) {
            words.next();
        } else if !word.starts_with('-') {
            arg = Some(word);
            break;
        }
    }
    arg.map_or(".".to_owned(), |dir| {
        let dir = dir.trim_start_matches("./").trim_end_matches('/');
        if dir.is_empty() {
            ".".to_owned()
        } else {
            dir.to_owned()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_docs_folder() {
        let cases = [
            (Some("vitepress build docs"), "docs"),
            (Some("vitepress build ./site/"), "site"),
            (Some("vitepress build"), "."),
            (Some("vitepress build --base /x/ src"), "src"),
            (Some("vitepress build && node after.js"), "."),
            (None, "docs"),
        ];
        for (command, want) in cases {
            assert_eq!(docs_folder(command), want, "{command:?}");
        }
    }
}
