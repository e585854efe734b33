//! `scalemesh login`: a token read without echo (or from stdin), checked for typos, then with
//! the server (`GET /api/v1/me`), then saved with the API URL in the config file.

use anyhow::Context;
use reqwest::StatusCode;

use crate::args::LoginArgs;
use crate::client::{Client, ClientError};
use crate::config_file::{self, API_URL, Changes, TOKEN};
use crate::error::CliError;
use crate::escape::sanitize;
use crate::secret_input;
use crate::settings::{Settings, TokenSource};
use crate::token_format::{self, BadToken};

pub async fn run(client: &Client, settings: &Settings, args: LoginArgs) -> anyhow::Result<i32> {
    let config_path = settings.config_path.as_deref().ok_or_else(|| {
        CliError::new("there is no config file to save the token in (no home folder)")
            .hint("name one with --config or SCALEMESH_CONFIG")
    })?;
    let url = client.display_url();
    let token = read_token(&url, args.token_stdin)?;
    check_shape(&token)?;
    let me = client
        .with_token(&token)
        .me()
        .await
        .map_err(|e| refused(client, &url, e))?;
    let changes = Changes {
        set: vec![(API_URL, &url), (TOKEN, &token)],
        remove: vec![],
    };
    config_file::update(config_path, &changes)?;
    eprintln!(
        "Signed in to {url} as {} (token {})",
        me.user.name,
        sanitize(&me.token.name, false)
    );
    if settings.token_source == TokenSource::Flag {
        eprintln!(
            "note: --token or SCALEMESH_TOKEN is set and is used instead of the saved token until it is unset"
        );
    }
    Ok(0)
}

/// A hidden prompt on a terminal (unless `--token-stdin`); otherwise the first line of stdin.
fn read_token(url: &str, from_stdin: bool) -> anyhow::Result<String> {
    let raw = if from_stdin || !secret_input::stdin_is_terminal() {
        secret_input::line_from_stdin()
            .context("reading the token from stdin")?
            .ok_or_else(|| {
                CliError::new("no token on stdin")
                    .hint("give it on the first line: scalemesh login --token-stdin < token.txt")
            })?
    } else {
        eprintln!("Signing in to {url}: paste your token (it is not shown as you type)");
        secret_input::prompt_hidden("Token: ").context("reading the token")?
    };
    Ok(raw.trim().to_owned())
}

fn check_shape(token: &str) -> Result<(), CliError> {
    let err = match token_format::check(token) {
        Ok(_) => return Ok(()),
        Err(err) => err,
    };
    let hint = match err {
        BadToken::Empty => {
            "paste the token that `scalemesh tokens create` or `scalemesh users add` printed"
        }
        BadToken::Whitespace => "paste the token alone, on one line",
        BadToken::Checksum => "a token is `smk_` and 46 letters and digits: copy it again, whole",
    };
    Err(CliError::new(err.to_string()).hint(hint))
}

/// Why the server would not take the token, and what to do.
fn refused(client: &Client, url: &str, err: ClientError) -> CliError {
    if err.status() == Some(StatusCode::UNAUTHORIZED) && !err.token_lapsed() {
        return CliError::new(format!("{url} refused the token: {err}")).hint(format!(
            "check that it was copied whole and that it was made by {url}, not another server"
        ));
    }
    client.explain(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_are_caught_before_asking_the_server() {
        let good = "smk_0123456789abcdefghijABCDEFGHIJklmnopqrst1zpKRU";
        assert!(check_shape(good).is_ok());
        assert!(check_shape(&format!("smk_{}", "ab".repeat(32))).is_ok());
        assert!(check_shape("an-admin-token-of-another-shape").is_ok());
        for bad in [
            "",
            "smk_0123456789abcdefghijABCDEFGHIJklmnopqrst1zpKRV",
            "smk_0123456789 abcdefghijABCDEFGHIJklmnopqrst1zpKRU",
        ] {
            let err = check_shape(bad).expect_err(bad);
            assert!(err.hint.is_some(), "{bad}");
        }
    }
}
