//! Angular: `ng build` writes `dist/<project>`, with the site in its `browser` subfolder for
//! the application builder. The project and its `outputPath` (a string, or `{base, browser}`)
//! come from angular.json.

use crate::detect::app::App;
use crate::detect::plan::Output;
use crate::detect::preset::{Framework, Preset, RuntimeKind};

pub const PRESET: Preset = Preset {
    id: "angular",
    name: "Angular",
    runtime: RuntimeKind::Node,
    detect,
    plan,
};

fn detect(app: &App) -> Option<Vec<String>> {
    let config = app.file(&["angular.json"])?;
    let mut reasons: Vec<String> = app.dependency(&["@angular/cli"]).into_iter().collect();
    reasons.push(config);
    Some(reasons)
}

fn plan(app: &App) -> Framework {
    let output = app
        .text("angular.json")
        .map_or(Output::BrowserIn("dist".to_owned()), |text| output(&text));
    Framework::new(app.build_script_or("node_modules/.bin/ng build"), output)
        .caches(&[".angular/cache"])
}

/// Where `ng build` puts the site of the workspace described by angular.json's `text`: the
/// default project, else the first application.
pub fn output(text: &str) -> Output {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(text) else {
        return Output::BrowserIn("dist".to_owned());
    };
    let projects = json.get("projects").and_then(|p| p.as_object());
    let name = json
        .get("defaultProject")
        .and_then(|p| p.as_str())
        .or_else(|| {
            let apps = projects?.iter();
            apps.filter(|(_, p)| p["projectType"] == "application")
                .map(|(name, _)| name.as_str())
                .next()
        });
    let Some(name) = name else {
        return Output::BrowserIn("dist".to_owned());
    };
    let path = &projects.and_then(|p| p.get(name)).unwrap_or(&json)["architect"]["build"]["options"]
        ["outputPath"];
    let tidy = |s: &str| s.trim_start_matches("./").trim_end_matches('/').to_owned();
    match (path.as_str(), path["base"].as_str()) {
        (Some(dir), _) => Output::BrowserIn(tidy(dir)),
        (None, Some(base)) => match path["browser"].as_str() {
            Some("") => Output::Folder(tidy(base)),
            browser => Output::Folder(format!("{}/{}", tidy(base), browser.unwrap_or("browser"))),
        },
        (None, None) => Output::BrowserIn(format!("dist/{name}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_output_path() {
        let project = |options: &str| {
            format!(
                r#"{{"projects":{{"lib":{{"projectType":"library"}},"shop":{{"projectType":"application",
                "architect":{{"build":{{"options":{options}}}}}}}}}}}"#
            )
        };
        let cases = [
            (project("{}"), Output::BrowserIn("dist/shop".into())),
            (
                project(r#"{"outputPath":"dist/shop"}"#),
                Output::BrowserIn("dist/shop".into()),
            ),
            (
                project(r#"{"outputPath":{"base":"dist/shop"}}"#),
                Output::Folder("dist/shop/browser".into()),
            ),
            (
                project(r#"{"outputPath":{"base":"www","browser":""}}"#),
                Output::Folder("www".into()),
            ),
            (
                project(r#"{"outputPath":{"base":"out/","browser":"public"}}"#),
                Output::Folder("out/public".into()),
            ),
            ("{nope".to_owned(), Output::BrowserIn("dist".into())),
        ];
        for (text, want) in cases {
            assert_eq!(output(&text), want, "{text}");
        }
    }
}
