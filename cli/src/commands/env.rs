//! `scalemesh env add | ls | rm | pull <project>`: a project's environment variables, given to
//! its builds. A value never comes from the command line (shell history, `ps`): it is typed at a
//! hidden prompt or piped in. `pull` writes a target's readable values to a `.env` file.

use std::path::Path;

use anyhow::Context;
use reqwest::StatusCode;
use scalemesh_core::access::{EnvTarget, EnvTargets};
use scalemesh_core::job::is_allowed_env_name;
use scalemesh_core::wire::{EnvVar, PutEnv};
use time::OffsetDateTime;

use crate::args::EnvCommand;
use crate::client::Client;
use crate::commands::list::table;
use crate::commands::{explained, print_json};
use crate::error::CliError;
use crate::escape::sanitize;
use crate::{private_file, secret_input, when};

/// Longest value shown in `env ls`'s table (`--json` has them whole).
const SHOWN_VALUE_CHARS: usize = 48;

pub async fn run(client: &Client, command: EnvCommand) -> anyhow::Result<i32> {
    match command {
        EnvCommand::Add {
            project,
            key,
            target,
            sensitive,
        } => add(client, &project, &key, target, sensitive).await,
        EnvCommand::Ls { project, json } => list(client, &project, json.json).await,
        EnvCommand::Rm {
            project,
            key,
            target,
        } => remove(client, &project, &key, target).await,
        EnvCommand::Pull {
            project,
            file,
            target,
        } => pull(client, &project, &file, target).await,
    }
}

async fn add(
    client: &Client,
    project: &str,
    key: &str,
    target: EnvTargets,
    sensitive: bool,
) -> anyhow::Result<i32> {
    check_key(key)?;
    let value = read_value(key)?;
    let body = PutEnv {
        value,
        target,
        sensitive,
    };
    let written = client
        .put_env(project, key, &body)
        .await
        .map_err(|e| explained(client, e, StatusCode::FORBIDDEN, write_hint(target)))?;
    let targets: Vec<&str> = written.env.iter().map(|v| v.target.as_str()).collect();
    let targets = if targets.is_empty() {
        targets_text(target)
    } else {
        targets.join(" and ")
    };
    eprintln!(
        "Set {key} for {targets} builds of {}{}",
        sanitize(project, false),
        if sensitive {
            " (sensitive: its value will not be shown again)"
        } else {
            ""
        }
    );
    eprintln!("Builds from now on get it; deploy again to use it");
    Ok(0)
}

async fn list(client: &Client, project: &str, json: bool) -> anyhow::Result<i32> {
    let list = client.env(project).await.map_err(|e| client.explain(e))?;
    if json {
        print_json(&list)?;
        return Ok(0);
    }
    if list.env.is_empty() {
        eprintln!(
            "{0} has no variables: add one with `scalemesh env add {0} <KEY>`",
            sanitize(project, false)
        );
        return Ok(0);
    }
    let now = OffsetDateTime::now_utc();
    let rows: Vec<[String; 6]> = list
        .env
        .iter()
        .map(|v| {
            [
                v.key.clone(),
                v.target.to_string(),
                if v.sensitive { "yes" } else { "no" }.to_owned(),
                shown_value(v),
                when::ago(v.updated_at, now),
                v.updated_by.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    table(
        ["KEY", "TARGET", "SENSITIVE", "VALUE", "UPDATED", "BY"],
        &rows,
    );
    Ok(0)
}

async fn remove(
    client: &Client,
    project: &str,
    key: &str,
    target: EnvTargets,
) -> anyhow::Result<i32> {
    client.remove_env(project, key, target).await.map_err(|e| {
        if e.is_not_found() && !e.to_string().starts_with("project ") {
            let hint = format!(
                "`scalemesh env ls {}` lists its variables",
                sanitize(project, false)
            );
            explained(client, e, StatusCode::NOT_FOUND, &hint)
        } else {
            explained(client, e, StatusCode::FORBIDDEN, write_hint(target))
        }
    })?;
    eprintln!(
        "Removed {} from {} builds of {}",
        sanitize(key, false),
        targets_text(target),
        sanitize(project, false)
    );
    Ok(0)
}

async fn pull(
    client: &Client,
    project: &str,
    file: &Path,
    target: EnvTarget,
) -> anyhow::Result<i32> {
    let list = client.env(project).await.map_err(|e| client.explain(e))?;
    let pulled = Pulled::sort(&list.env, target);
    let text = dotenv(&pulled.values, project, target);
    // A checked-out repository may hold `.env` as a link to a file of the user's (a shell's
    // start-up file, say): never write through it.
    if std::fs::symlink_metadata(file).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(CliError::new(format!(
            "{} is a symbolic link; the variables are not written through it",
            file.display()
        ))
        .hint("remove the link, or name another file: scalemesh env pull <project> <file>")
        .into());
    }
    let existed = file.exists();
    private_file::write(file, text.as_bytes())
        .with_context(|| format!("writing {}", file.display()))?;
    eprintln!(
        "{} {} with {} {target} variable{} of {}",
        if existed { "Overwrote" } else { "Wrote" },
        file.display(),
        pulled.values.len(),
        plural(pulled.values.len()),
        sanitize(project, false)
    );
    if pulled.sensitive > 0 {
        eprintln!(
            "Left out {} sensitive variable{}: a sensitive value is never shown again once set",
            pulled.sensitive,
            plural(pulled.sensitive)
        );
    }
    if pulled.hidden > 0 {
        let who = match target {
            EnvTarget::Production => "an owner",
            EnvTarget::Preview => "a developer",
        };
        eprintln!(
            "Left out {} variable{} you may not read: reading {target} values takes {who} (and a token with that role)",
            pulled.hidden,
            plural(pulled.hidden)
        );
    }
    if pulled.bad_names > 0 {
        eprintln!(
            "Left out {} variable{} whose names a .env file cannot hold",
            pulled.bad_names,
            plural(pulled.bad_names)
        );
    }
    Ok(0)
}

/// A target's variables sorted into what a `.env` file gets and what it cannot.
#[derive(Debug, Default, PartialEq, Eq)]
struct Pulled<'a> {
    values: Vec<(&'a str, &'a str)>,
    sensitive: usize,
    hidden: usize,
    bad_names: usize,
}

impl<'a> Pulled<'a> {
    fn sort(vars: &'a [EnvVar], target: EnvTarget) -> Self {
        let mut pulled = Self::default();
        for var in vars.iter().filter(|v| v.target == target) {
            match &var.value {
                _ if var.sensitive => pulled.sensitive += 1,
                None => pulled.hidden += 1,
                Some(_) if !is_allowed_env_name(&var.key) => pulled.bad_names += 1,
                Some(value) => pulled.values.push((&var.key, value)),
            }
        }
        pulled.values.sort();
        pulled
    }
}

/// The `.env` file: a comment saying where it came from, then `KEY="value"` lines.
fn dotenv(values: &[(&str, &str)], project: &str, target: EnvTarget) -> String {
    let mut out = format!(
        "# {target} variables of {}, from `scalemesh env pull`; sensitive ones are left out\n",
        sanitize(project, false)
    );
    for (key, value) in values {
        out.push_str(key);
        out.push('=');
        out.push_str(&quoted(value));
        out.push('\n');
    }
    out
}

/// A value double-quoted as dotenv readers (dotenv-expand, dotenvy) read it back: `\` and `"`
/// escaped, line breaks as `\n` and `\r`, and `$` as `\$` so it is not taken for another
/// variable.
fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '$' => out.push_str("\\$"),
            // A shell that sources the file would run what is between backquotes.
            '`' => out.push_str("\\`"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn check_key(key: &str) -> Result<(), CliError> {
    if is_allowed_env_name(key) {
        return Ok(());
    }
    Err(CliError::new(format!(
        "{:?} cannot be an environment variable name",
        key.chars().take(60).collect::<String>()
    ))
    .hint("use letters, digits and '_', not starting with a digit (and not SCALEMESH_*, PATH or HOME), e.g. API_URL"))
}

/// The value, from a hidden prompt on a terminal, else all of stdin.
fn read_value(key: &str) -> anyhow::Result<String> {
    if !secret_input::stdin_is_terminal() {
        let value = secret_input::all_of_stdin().context("reading the value from stdin")?;
        if value.is_empty() {
            // `</dev/null` in a CI step, say: an empty value is rarely what was meant.
            return Err(CliError::new(format!("the value of {key} on stdin is empty"))
                .hint(format!(
                    "pipe the value in (printf %s \"$VALUE\" | scalemesh env add <project> {key}); to remove a variable, use scalemesh env rm"
                ))
                .into());
        }
        return Ok(value);
    }
    let value = secret_input::prompt_hidden(&format!("Value of {key} (not shown as you type): "))
        .context("reading the value")?;
    if value.is_empty() {
        return Err(CliError::new("no value typed")
            .hint("type the value; to remove a variable, use scalemesh env rm")
            .into());
    }
    Ok(value)
}

fn shown_value(var: &EnvVar) -> String {
    match &var.value {
        _ if var.sensitive => "(sensitive)".to_owned(),
        None => "(hidden)".to_owned(),
        Some(value) if value.chars().count() > SHOWN_VALUE_CHARS => {
            let start: String = value.chars().take(SHOWN_VALUE_CHARS - 1).collect();
            format!("{start}…")
        }
        Some(value) => value.clone(),
    }
}

fn write_hint(target: EnvTargets) -> &'static str {
    match target {
        EnvTargets::Preview => {
            "setting preview variables takes a developer of the project, with a full or deploy token"
        }
        EnvTargets::Production | EnvTargets::All => {
            "setting production variables takes an owner of the project, with a full token; a developer can set --target preview"
        }
    }
}

fn targets_text(target: EnvTargets) -> String {
    match target {
        EnvTargets::All => "production and preview".to_owned(),
        one => one.as_str().to_owned(),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn values_are_quoted_to_read_back_whole() {
        for (value, want) in [
            ("plain", r#""plain""#),
            ("", r#""""#),
            (r#"say "hi""#, r#""say \"hi\"""#),
            (r"C:\path\n", r#""C:\\path\\n""#),
            ("line1\nline2\r\n", r#""line1\nline2\r\n""#),
            ("pa$$word${HOME}", r#""pa\$\$word\${HOME}""#),
            ("# not a comment = x", r##""# not a comment = x""##),
            ("ünï ✓", r#""ünï ✓""#),
        ] {
            assert_eq!(quoted(value), want, "{value:?}");
        }
    }

    /// A shell that sources the file reads each value back as it was, and runs nothing.
    #[test]
    fn a_shell_sourcing_the_file_runs_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        for value in [
            "x`touch PWNED`y",
            "$(touch PWNED)",
            r#"a"b'c"#,
            r"back\slash\",
            "pa$$word${HOME}",
            "spaces  and\ttabs",
        ] {
            std::fs::write(dir.path().join("f.env"), format!("K={}\n", quoted(value)))
                .expect("write");
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(r#"set -a; . ./f.env; printf %s "$K""#)
                .current_dir(dir.path())
                .output()
                .expect("sh runs");
            assert_eq!(String::from_utf8_lossy(&out.stdout), value, "{value:?}");
            assert!(
                !dir.path().join("PWNED").exists(),
                "{value:?} ran a command"
            );
        }
    }

    fn var(key: &str, target: EnvTarget, sensitive: bool, value: Option<&str>) -> EnvVar {
        EnvVar {
            key: key.into(),
            target,
            sensitive,
            value: value.map(str::to_owned),
            updated_at: datetime!(2025-03-01 12:00 UTC),
            updated_by: Some("ada".into()),
        }
    }

    #[test]
    fn pull_takes_only_readable_values_of_its_target() {
        use EnvTarget::{Preview, Production};
        let vars = [
            var("B_URL", Preview, false, Some("https://b")),
            var("A_KEY", Preview, false, Some("a\"1")),
            var("PROD_ONLY", Production, false, Some("p")),
            var("SECRET", Preview, true, None),
            var("OWNER_ONLY", Preview, false, None),
            var("bad-name", Preview, false, Some("x")),
        ];
        let pulled = Pulled::sort(&vars, Preview);
        assert_eq!(
            pulled,
            Pulled {
                values: vec![("A_KEY", "a\"1"), ("B_URL", "https://b")],
                sensitive: 1,
                hidden: 1,
                bad_names: 1,
            }
        );
        assert_eq!(
            dotenv(&pulled.values, "blog", Preview),
            "# preview variables of blog, from `scalemesh env pull`; sensitive ones are left out\n\
             A_KEY=\"a\\\"1\"\n\
             B_URL=\"https://b\"\n"
        );
        let pulled = Pulled::sort(&vars, Production);
        assert_eq!(pulled.values, [("PROD_ONLY", "p")]);
    }

    #[test]
    fn long_and_unreadable_values_are_shown_short() {
        use EnvTarget::Preview;
        let long = "x".repeat(100);
        let shown = shown_value(&var("K", Preview, false, Some(&long)));
        assert_eq!(shown.chars().count(), SHOWN_VALUE_CHARS);
        assert!(shown.ends_with('…'));
        assert_eq!(shown_value(&var("K", Preview, true, None)), "(sensitive)");
        assert_eq!(shown_value(&var("K", Preview, false, None)), "(hidden)");
        assert_eq!(shown_value(&var("K", Preview, false, Some("v"))), "v");
    }
}
