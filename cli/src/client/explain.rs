//! What an API error means for the user: its message, and a `hint:` on what to do next, which
//! depends on where the token came from.

use reqwest::StatusCode;

use super::{Client, ClientError};
use crate::error::CliError;
use crate::settings::{Settings, TokenSource};

impl Client {
    /// Turns an API error into what the user reads, with a hint on what to do.
    pub fn explain(&self, err: ClientError) -> CliError {
        let hint = hint(&err, &self.settings);
        let explained = CliError::new(err.to_string());
        match hint {
            Some(hint) => explained.hint(hint),
            None => explained,
        }
    }
}

fn hint(err: &ClientError, settings: &Settings) -> Option<String> {
    let (status, message, retry_after) = match err {
        ClientError::Unreachable { .. } => {
            return Some(
                "is scalemesh-server running? Start one on this machine with `scalemesh up`, or point --api-url / SCALEMESH_API_URL at yours"
                    .to_owned(),
            );
        }
        ClientError::Decode(_) => return None,
        ClientError::Storage { .. } => {
            return Some(
                "run the same command again: files already stored are not sent twice".to_owned(),
            );
        }
        ClientError::Api {
            status,
            message,
            retry_after,
            ..
        } => (*status, message.as_str(), *retry_after),
    };
    match status {
        StatusCode::UNAUTHORIZED => Some(unauthorized(err.token_lapsed(), settings)),
        StatusCode::FORBIDDEN => Some(
            "your role on the project, or your token's role, is not enough (the message says which it takes): \
             ask an owner of the project or an admin, or use a token with a wider role; `scalemesh whoami` shows yours"
                .to_owned(),
        ),
        StatusCode::TOO_MANY_REQUESTS => Some(match retry_after {
            Some(secs) => format!(
                "too many failed sign-ins from this address: wait {secs}s before trying again, and check the token meanwhile"
            ),
            None => "too many failed sign-ins from this address: wait a minute before trying again".to_owned(),
        }),
        StatusCode::NOT_FOUND if message.starts_with("there is no endpoint") => Some(format!(
            "the server at {} may be older than this CLI (scalemesh {}): upgrade scalemesh-server",
            shown(&settings.api_url),
            env!("CARGO_PKG_VERSION")
        )),
        StatusCode::NOT_FOUND if message.starts_with("project ") => Some(
            "`scalemesh projects` lists the projects you can see; one your token may not see is answered as not found too"
                .to_owned(),
        ),
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT => {
            Some("the server is briefly unavailable: try again in a moment".to_owned())
        }
        _ => None,
    }
}

fn unauthorized(lapsed: bool, settings: &Settings) -> String {
    if lapsed {
        return "create a new token with `scalemesh tokens create` and `scalemesh login` (from a token that still works, or ask an admin for one)"
            .to_owned();
    }
    match settings.token_source {
        TokenSource::Flag => {
            "the token was refused: check --token or SCALEMESH_TOKEN (they come before the config file's token)"
                .to_owned()
        }
        TokenSource::ConfigFile => format!(
            "the token in {} was refused: sign in again with `scalemesh login`",
            settings
                .config_path
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "the config file".to_owned())
        ),
        TokenSource::LocalAdmin => format!(
            "the admin token in {} was refused: is {} the server that data folder belongs to? \
             Sign in with `scalemesh login` otherwise",
            settings.admin_token_path().display(),
            shown(&settings.api_url)
        ),
        TokenSource::None => format!(
            "sign in with `scalemesh login`, or give a token with --token or SCALEMESH_TOKEN; \
             on the server's machine its admin token is read from {}",
            settings.admin_token_path().display()
        ),
    }
}

fn shown(url: &url::Url) -> &str {
    url.as_str().trim_end_matches('/')
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn settings(token_source: TokenSource) -> Settings {
        Settings {
            api_url: url::Url::parse("https://deploy.example.com").expect("url"),
            token: (token_source != TokenSource::None).then(|| "smk_x".to_owned()),
            token_source,
            data_dir: PathBuf::from("/data"),
            config_path: Some(PathBuf::from("/home/ada/.config/scalemesh/config.toml")),
        }
    }

    fn api(status: u16, message: &str, retry_after: Option<u64>) -> ClientError {
        ClientError::Api {
            status: StatusCode::from_u16(status).expect("status"),
            code: "x".into(),
            message: message.into(),
            retry_after,
        }
    }

    #[test]
    fn hints_say_what_to_do() {
        let cases: &[(ClientError, TokenSource, Option<&str>)] = &[
            (
                api(401, "the token expired on 2025-01-01", None),
                TokenSource::ConfigFile,
                Some("`scalemesh tokens create` and `scalemesh login`"),
            ),
            (
                api(401, "The token was Revoked", None),
                TokenSource::Flag,
                Some("`scalemesh tokens create` and `scalemesh login`"),
            ),
            (
                api(401, "unknown token", None),
                TokenSource::ConfigFile,
                Some("the token in /home/ada/.config/scalemesh/config.toml was refused"),
            ),
            (
                api(401, "unknown token", None),
                TokenSource::Flag,
                Some("check --token or SCALEMESH_TOKEN"),
            ),
            (
                api(401, "unknown token", None),
                TokenSource::LocalAdmin,
                Some("the admin token in /data/"),
            ),
            (
                api(401, "a token is needed", None),
                TokenSource::None,
                Some("sign in with `scalemesh login`"),
            ),
            (
                api(403, "deploying takes a developer", None),
                TokenSource::ConfigFile,
                Some("`scalemesh whoami` shows yours"),
            ),
            (
                api(429, "too many", Some(17)),
                TokenSource::ConfigFile,
                Some("wait 17s"),
            ),
            (
                api(429, "too many", None),
                TokenSource::ConfigFile,
                Some("wait a minute"),
            ),
            (
                api(404, "project blog does not exist", None),
                TokenSource::ConfigFile,
                Some("`scalemesh projects`"),
            ),
            (
                api(404, "there is no endpoint GET /api/v1/me", None),
                TokenSource::ConfigFile,
                Some("upgrade scalemesh-server"),
            ),
            (
                api(404, "deployment x does not exist", None),
                TokenSource::ConfigFile,
                None,
            ),
            (api(409, "name_taken", None), TokenSource::ConfigFile, None),
            (
                api(503, "storage is unavailable", None),
                TokenSource::ConfigFile,
                Some("try again in a moment"),
            ),
            (
                ClientError::Unreachable {
                    url: "x".into(),
                    reason: "refused".into(),
                },
                TokenSource::None,
                Some("scalemesh up"),
            ),
        ];
        for (err, source, want) in cases {
            let got = hint(err, &settings(*source));
            match (want, &got) {
                (Some(want), Some(got)) => assert!(got.contains(want), "{err:?}: {got}"),
                (None, None) => {}
                _ => panic!("{err:?} with {source:?}: {got:?}, wanted {want:?}"),
            }
        }
    }
}
