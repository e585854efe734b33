//! Build settings: what a project's API settings and a repository's `scalemesh.json` may say
//! about how to build it. Detection fills in whatever neither says.

use serde::{Deserialize, Serialize};

/// The file a repository can carry at its root to override detection.
pub const SITE_CONFIG_FILE: &str = "scalemesh.json";

const MAX_COMMAND_LEN: usize = 4096;

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
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("{SITE_CONFIG_FILE} is not valid: {0}")]
    Parse(String),
    #[error("{field} must be a relative folder inside the repository without '..' (got {value:?})")]
    Folder { field: &'static str, value: String },
    #[error("{field} is longer than {MAX_COMMAND_LEN} characters or contains a NUL byte")]
    Command { field: &'static str },
}

impl BuildSettings {
    /// Parses and validates a `scalemesh.json`.
    pub fn from_json(raw: &str) -> Result<Self, SettingsError> {
        let settings: Self =
            serde_json::from_str(raw).map_err(|e| SettingsError::Parse(e.to_string()))?;
        settings.validate()?;
        Ok(settings)
    }

    pub fn validate(&self) -> Result<(), SettingsError> {
        for (field, value) in [
            ("outputDirectory", &self.output_directory),
            ("rootDirectory", &self.root_directory),
        ] {
            if let Some(v) = value
                && !is_relative_folder(v)
            {
                return Err(SettingsError::Folder {
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
                return Err(SettingsError::Command { field });
            }
        }
        Ok(())
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
        }
    }
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
        let s = BuildSettings::from_json(
            r#"{"buildCommand":"node build.js","outputDirectory":"site","rootDirectory":"web"}"#,
        )
        .expect("valid");
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
