//! What a preset is: how it recognises an app, and what it plans for one it recognises.

use super::app::App;
use super::place::Place;
use super::plan::Output;

/// One framework (or plain Node.js, or a static site) the builder knows how to build.
pub struct Preset {
    /// As `framework` in scalemesh.json names it: `astro`.
    pub id: &'static str,
    /// For the log: `Astro`.
    pub name: &'static str,
    pub runtime: RuntimeKind,
    /// What the app was recognised by, or `None` when it is not one of these.
    pub detect: fn(&App) -> Option<Vec<String>>,
    pub plan: fn(&App) -> Framework,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeKind {
    /// Installed with the app's package manager, when it has a package.json.
    Node,
    /// Installed into a virtual environment.
    Python,
    /// Nothing to install.
    None,
}

/// What a preset plans for an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Framework {
    pub build: Option<String>,
    pub output: Output,
    /// The framework's own caches.
    pub caches: Vec<Place>,
    pub notes: Vec<String>,
    /// Set when the app is set up to build a server, which cannot be published as a site.
    pub not_static: Option<NotStatic>,
}

impl Framework {
    pub fn new(build: String, output: Output) -> Self {
        Self {
            build: Some(build),
            output,
            caches: Vec::new(),
            notes: Vec::new(),
            not_static: None,
        }
    }

    pub fn caches(mut self, caches: &[&str]) -> Self {
        self.caches.extend(caches.iter().map(|c| Place::app(*c)));
        self
    }

    pub fn not_static(mut self, problem: Option<NotStatic>) -> Self {
        self.not_static = problem;
        self
    }
}

/// The app would build a server: what to do about it, and which settings vouch that the
/// user has done it another way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotStatic {
    pub message: String,
    pub cleared_by: Clearance,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clearance {
    /// A buildCommand of the user's (Nuxt: `nuxt generate` writes the planned folder).
    BuildCommand,
    /// A buildCommand and an outputDirectory of the user's.
    BuildAndOutput,
}

impl NotStatic {
    pub fn new(message: String) -> Self {
        Self {
            message,
            cleared_by: Clearance::BuildAndOutput,
        }
    }
}

/// The first config file of a framework among `stem` with each of `exts`: `next.config` with
/// `js`, `mjs` → `next.config.mjs`.
pub fn config_names(stem: &str, exts: &[&str]) -> Vec<String> {
    exts.iter().map(|ext| format!("{stem}.{ext}")).collect()
}

/// The value a JavaScript, YAML or Python config gives `key`, read as text, not run:
/// `output: 'export'`, `"distDir": "build"`, `site_dir: public`. The first occurrence outside
/// a comment line wins; a value that is not a literal comes back as the expression's first word.
pub fn setting<'t>(text: &'t str, key: &str) -> Option<&'t str> {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$' || c == '.';
    text.lines()
        .filter(|line| {
            let line = line.trim_start();
            !(line.starts_with("//") || line.starts_with('#') || line.starts_with('*'))
        })
        .flat_map(|line| line.match_indices(key).map(move |(at, _)| (line, at)))
        .find_map(|(line, at)| {
            if line[..at].chars().next_back().is_some_and(is_word) {
                return None;
            }
            let rest = line[at + key.len()..].trim_start_matches(['"', '\'']);
            let rest = rest.trim_start().strip_prefix([':', '='])?.trim_start();
            match rest.chars().next()? {
                q @ ('\'' | '"' | '`') => rest[1..].split(q).next(),
                _ => rest
                    .split(|c: char| c.is_whitespace() || c == ',' || c == '#' || c == '}')
                    .next()
                    .filter(|v| !v.is_empty()),
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_settings_from_config_text() {
        let cases = [
            ("output: 'export'", "output", Some("export")),
            ("  output : \"export\",", "output", Some("export")),
            ("{\"output\": \"export\"}", "output", Some("export")),
            ("outputPath: 'x'", "output", None),
            ("// output: 'export'", "output", None),
            ("site_dir: public # built here", "site_dir", Some("public")),
            ("distDir: `build`", "distDir", Some("build")),
            ("my_output: 'x'\noutput: 'server'", "output", Some("server")),
            ("output: process.env.X", "output", Some("process.env.X")),
            ("nothing here", "output", None),
        ];
        for (text, key, want) in cases {
            assert_eq!(setting(text, key), want, "{text}");
        }
    }
}
