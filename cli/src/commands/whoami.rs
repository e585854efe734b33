//! `scalemesh whoami`: who the token belongs to, which server it talks to, and what the token
//! may do until when (`GET /api/v1/me`).

use scalemesh_core::wire::Me;
use time::OffsetDateTime;

use crate::args::WhoamiArgs;
use crate::client::Client;
use crate::commands::print_json;
use crate::commands::tokens::{expiry, scope};
use crate::escape::sanitize;

pub async fn run(client: &Client, args: WhoamiArgs) -> anyhow::Result<i32> {
    let me = client.me().await.map_err(|e| client.explain(e))?;
    if args.json {
        print_json(&me)?;
        return Ok(0);
    }
    let lines = describe(&me, &client.display_url(), OffsetDateTime::now_utc());
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    for (key, value) in lines {
        println!("{:<width$} {}", format!("{key}:"), sanitize(&value, false));
    }
    Ok(0)
}

/// The lines `whoami` prints, as (label, value).
fn describe(me: &Me, url: &str, now: OffsetDateTime) -> Vec<(&'static str, String)> {
    let user = if me.user.admin {
        format!("{} (admin)", me.user.name)
    } else {
        me.user.name.to_string()
    };
    vec![
        ("User", user),
        ("Server", format!("{url} (version {})", me.server_version)),
        ("Token", format!("{} ({})", me.token.name, me.token.prefix)),
        ("Role", me.token.role.to_string()),
        ("Projects", scope(&me.token)),
        ("Expires", expiry(me.token.expires_at, now)),
    ]
}

#[cfg(test)]
mod tests {
    use scalemesh_core::access::{TokenRole, UserName};
    use scalemesh_core::wire::{Token, User};
    use time::macros::datetime;

    use super::*;

    fn me(admin: bool, projects: Option<Vec<String>>, expires: Option<OffsetDateTime>) -> Me {
        Me {
            user: User {
                name: UserName::parse("ada").expect("name"),
                admin,
                created_at: datetime!(2025-01-01 0:00 UTC),
            },
            token: Token {
                id: 7,
                name: "laptop".into(),
                prefix: "smk_AbCd".into(),
                role: TokenRole::Deploy,
                projects,
                created_at: datetime!(2025-01-01 0:00 UTC),
                last_used_at: None,
                expires_at: expires,
            },
            server_version: "0.1.0".into(),
        }
    }

    #[test]
    fn says_who_and_what() {
        let now = datetime!(2025-03-01 12:00 UTC);
        let lines = describe(&me(true, None, None), "https://deploy.example.com", now);
        let text: Vec<String> = lines.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        assert_eq!(
            text,
            [
                "User: ada (admin)",
                "Server: https://deploy.example.com (version 0.1.0)",
                "Token: laptop (smk_AbCd)",
                "Role: deploy",
                "Projects: all projects",
                "Expires: never",
            ]
        );

        let limited = me(
            false,
            Some(vec!["blog".into(), "docs".into()]),
            Some(datetime!(2025-03-31 12:00 UTC)),
        );
        let lines = describe(&limited, "http://127.0.0.1:9000", now);
        assert_eq!(lines[0].1, "ada");
        assert_eq!(lines[4].1, "blog, docs");
        assert_eq!(lines[5].1, "2025-03-31 12:00 UTC (in 30d)");
    }
}
