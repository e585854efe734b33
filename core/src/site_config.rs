//! Build settings: what a project's API settings and a repository's `scalemesh.json` may say
//! about how to build it. Detection fills in whatever neither says.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::rules::{HeaderRule, MAX_HEADER_RULES, MAX_REDIRECTS, NotFound, Redirect, Routing};

/// The file a repository can carry at its root to override detection.
pub const SITE_CONFIG_FILE: &str = "scalemesh.json";

const MAX_COMMAND_LEN: usize = 4096;

/// Largest configuration file read from a repository or a folder.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Reads `name` in `dir` if it is there. It must be a regular file (not a link a repository
/// could point at `/dev/zero` or a host file) of at most 1 MiB. The builder reads a source's
/// files this way, and the CLI reads a folder's `scalemesh.json` the same way before uploading.
pub fn read_config_file(dir: &Path, name: &str) -> std::io::Result<Option<String>> {
    use std::io::{Error, ErrorKind, Read};
    let path = dir.join(name);
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::new(e.kind(), format!("reading {name}: {e}"))),
    };
    if !meta.is_file() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("{name} must be a regular file, not a link or a folder"),
        ));
    }
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("{name} is larger than 1 MiB"),
        ));
    }
    let mut text = String::new();
    std::fs::File::open(&path)
        .and_then(|f| f.take(MAX_CONFIG_BYTES).read_to_string(&mut text))
        .map_err(|e| Error::new(e.kind(), format!("reading {name}: {e}")))?;
    Ok(Some(text))
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BuildSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install_command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_directory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_directory: Option<String>,
    /// The preset to build with instead of the detected one (`astro`), or `none` for no
    /// preset at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framework: Option<String>,
    /// The Node.js version the build needs (`22`, `20.11.1`, `>=18 <23`), instead of the one
    /// `.nvmrc`, `.node-version` or `engines.node` asks for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("{SITE_CONFIG_FILE} is not valid: {0}")]
    Parse(String),
    #[error("{field} must be a relative folder inside the repository without '..' (got {value:?})")]
    Folder { field: &'static str, value: String },
    #[error("{field} is longer than {MAX_COMMAND_LEN} characters or contains a NUL byte")]
    Command { field: &'static str },
    #[error("{field} must be {what} (got {value:?})")]
    Word {
        field: &'static str,
        what: &'static str,
        value: String,
    },
}

impl SettingsError {
    /// The API request field the error is about: `build.` and the setting's key.
    pub fn field(&self) -> Option<&'static str> {
        let key = match self {
            Self::Parse(_) => return None,
            Self::Folder { field, .. } | Self::Command { field } | Self::Word { field, .. } => {
                *field
            }
        };
        Some(match key {
            "outputDirectory" => "build.outputDirectory",
            "rootDirectory" => "build.rootDirectory",
            "installCommand" => "build.installCommand",
            "buildCommand" => "build.buildCommand",
            "framework" => "build.framework",
            "nodeVersion" => "build.nodeVersion",
            _ => return None,
        })
    }
}

/// The serving part of a `scalemesh.json`: the same rules `_redirects` and `_headers` hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RoutingSettings {
    #[serde(default)]
    redirects: Vec<Redirect>,
    #[serde(default)]
    headers: Vec<HeaderRule>,
    #[serde(default)]
    not_found: NotFound,
}

const ROUTING_KEYS: [&str; 3] = ["redirects", "headers", "notFound"];

impl BuildSettings {
    /// Parses and validates a `scalemesh.json`: how to build, and how to serve.
    pub fn from_json(raw: &str) -> Result<(Self, Routing), SettingsError> {
        let parse = |e: serde_json::Error| SettingsError::Parse(e.to_string());
        let mut all: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(raw).map_err(parse)?;
        let routing: serde_json::Map<_, _> = ROUTING_KEYS
            .iter()
            .filter_map(|k| all.remove_entry(*k))
            .collect();
        let settings: Self =
            serde_json::from_value(serde_json::Value::Object(all)).map_err(parse)?;
        settings.validate()?;
        let routing: RoutingSettings =
            serde_json::from_value(serde_json::Value::Object(routing)).map_err(parse)?;
        for (i, rule) in routing.redirects.iter().enumerate() {
            rule.validate()
                .map_err(|m| SettingsError::Parse(format!("redirects[{i}]: {m}")))?;
        }
        for (i, rule) in routing.headers.iter().enumerate() {
            rule.validate()
                .map_err(|m| SettingsError::Parse(format!("headers[{i}]: {m}")))?;
        }
        if routing.redirects.len() > MAX_REDIRECTS || routing.headers.len() > MAX_HEADER_RULES {
            return Err(SettingsError::Parse(format!(
                "at most {MAX_REDIRECTS} redirects and {MAX_HEADER_RULES} header rules"
            )));
        }
        Ok((
            settings,
            Routing {
                redirects: routing.redirects,
                headers: routing.headers,
                not_found: routing.not_found,
            },
        ))
    }

    pub fn validate(&self) -> Result<(), SettingsError> {
        match self.problems().into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Every field that is wrong, in the order a form shows them.
    pub fn problems(&self) -> Vec<SettingsError> {
        let mut problems = Vec::new();
        for (field, value) in [
            ("rootDirectory", &self.root_directory),
            ("outputDirectory", &self.output_directory),
        ] {
            if let Some(v) = value
                && !is_relative_folder(v)
            {
                problems.push(SettingsError::Folder {
                    field,
                    value: v.chars().take(100).collect(),
                });
            }
        }
        for (field, value) in [
            ("installCommand", &self.install_command),
            ("buildCommand", &self.build_command),
        ] {
            if let Some(v) = value
                && (v.len() > MAX_COMMAND_LEN || v.contains('\0'))
            {
                problems.push(SettingsError::Command { field });
            }
        }
        if let Some(v) = &self.framework
            && !is_preset_name(v)
        {
            problems.push(SettingsError::Word {
                field: "framework",
                what: "a preset name such as \"astro\" or \"none\" (see the README's table)",
                value: v.chars().take(100).collect(),
            });
        }
        if let Some(v) = &self.node_version
            && !is_version_range(v)
        {
            problems.push(SettingsError::Word {
                field: "nodeVersion",
                what: "a Node.js version or range such as \"22\", \"20.11.1\" or \">=18 <23\"",
                value: v.chars().take(100).collect(),
            });
        }
        problems
    }

    /// `self`, with every field `over` sets replaced by `over`'s value.
    pub fn overlaid_with(&self, over: &Self) -> Self {
        Self {
            install_command: over
                .install_command
                .clone()
                .or_else(|| self.install_command.clone()),
            build_command: over
                .build_command
                .clone()
                .or_else(|| self.build_command.clone()),
            output_directory: over
                .output_directory
                .clone()
                .or_else(|| self.output_directory.clone()),
            root_directory: over
                .root_directory
                .clone()
                .or_else(|| self.root_directory.clone()),
            framework: over.framework.clone().or_else(|| self.framework.clone()),
            node_version: over
                .node_version
                .clone()
                .or_else(|| self.node_version.clone()),
        }
    }
}

/// A preset's name as settings spell it: lower-case letters, digits and `-`.
fn is_preset_name(raw: &str) -> bool {
    (1..=40).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// What a version range may be made of: digits, `x`, `*`, dots, comparison signs, `||`,
/// spaces, a leading `v` and the words `lts`, `latest` and `node`. Whether it means anything
/// is the builder's to say.
fn is_version_range(raw: &str) -> bool {
    (1..=64).contains(&raw.len())
        && raw.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    '.' | '*' | '^' | '~' | '<' | '>' | '=' | '|' | ' ' | '-' | '/'
                )
        })
}

/// `.`, or a relative `/`-separated path with no `..`, empty segment, backslash or control char,
/// and never into `.git` (which holds the repository's history and remote).
pub fn is_relative_folder(raw: &str) -> bool {
    let trimmed = raw.trim_end_matches('/');
    let trimmed = trimmed.strip_prefix("./").unwrap_or(trimmed);
    trimmed == "."
        || (crate::layout::is_site_path(trimmed)
            && !trimmed
                .split('/')
                .any(|seg| seg.eq_ignore_ascii_case(".git")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_overrides() {
        let (s, routing) = BuildSettings::from_json(
            r#"{"buildCommand":"node build.js","outputDirectory":"site","rootDirectory":"web"}"#,
        )
        .expect("valid");
        assert_eq!(routing, Routing::default());
        assert_eq!(s.build_command.as_deref(), Some("node build.js"));
        assert_eq!(s.output_directory.as_deref(), Some("site"));
        assert_eq!(s.root_directory.as_deref(), Some("web"));
        assert_eq!(s.install_command, None);
    }

    #[test]
    fn rejects_escapes_and_unknown_fields() {
        for raw in [
            r#"{"outputDirectory":"../../etc"}"#,
            r#"{"rootDirectory":"/abs"}"#,
            r#"{"outputDirectory":"a\\b"}"#,
            r#"{"buildCommnd":"typo"}"#,
            r#"{"buildCommand":1}"#,
            r#"{"outputDirectory":".git"}"#,
            r#"{"rootDirectory":"app/.git/x"}"#,
            "not json",
        ] {
            assert!(BuildSettings::from_json(raw).is_err(), "{raw}");
        }
        assert!(BuildSettings::from_json(r#"{"outputDirectory":"./dist/"}"#).is_ok());
        assert!(BuildSettings::from_json(r#"{"rootDirectory":"."}"#).is_ok());
        for raw in [
            r#"{"framework":"Astro"}"#,
            r#"{"framework":"a/../b"}"#,
            r#"{"nodeVersion":"22; rm -rf /"}"#,
            r#"{"nodeVersion":""}"#,
        ] {
            assert!(BuildSettings::from_json(raw).is_err(), "{raw}");
        }
        let (s, _) = BuildSettings::from_json(r#"{"framework":"astro","nodeVersion":">=18 <23"}"#)
            .expect("valid");
        assert_eq!(s.framework.as_deref(), Some("astro"));
        assert_eq!(s.node_version.as_deref(), Some(">=18 <23"));
    }

    #[test]
    fn carries_routing_rules() {
        let (s, routing) = BuildSettings::from_json(
            r#"{"outputDirectory":"dist","notFound":"404-page",
                "redirects":[{"from":"/old/*","to":"/new/:splat","status":308}],
                "headers":[{"path":"/*","headers":{"X-Frame-Options":"DENY"}}]}"#,
        )
        .expect("valid");
        assert_eq!(s.output_directory.as_deref(), Some("dist"));
        assert_eq!(routing.not_found, NotFound::NotFoundPage);
        assert_eq!(routing.redirects[0].status, 308);
        assert_eq!(routing.headers_for("/x").len(), 1);
        for bad in [
            r#"{"redirects":[{"from":"/a","to":"//evil.test"}]}"#,
            r#"{"redirects":[{"from":"/a","to":"/b","status":299}]}"#,
            r#"{"redirects":[{"from":"/a","to":"/b","typo":1}]}"#,
            r#"{"headers":[{"path":"/*","headers":{"Content-Length":"1"}}]}"#,
            r#"{"notFound":"maybe"}"#,
        ] {
            assert!(BuildSettings::from_json(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn overlay_prefers_the_override() {
        let base = BuildSettings {
            build_command: Some("a".into()),
            output_directory: Some("dist".into()),
            ..Default::default()
        };
        let over = BuildSettings {
            build_command: Some("b".into()),
            ..Default::default()
        };
        let merged = base.overlaid_with(&over);
        assert_eq!(merged.build_command.as_deref(), Some("b"));
        assert_eq!(merged.output_directory.as_deref(), Some("dist"));
    }
}
