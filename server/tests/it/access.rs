//! Every route of the API, as every kind of caller: the status each gets is what the rules
//! table (`scalemesh_server::access`) says — 404 for what they may not see, 403 for what they
//! may see but not do, 401 for tokens that do not work, success otherwise. And docs/api.md
//! lists exactly the routes the table has.

use std::collections::BTreeSet;

use scalemesh_core::access::{Role, TokenRole};
use scalemesh_core::wire::BuilderReport;
use scalemesh_server::access::{Action, Decision, Grant, ROUTES, Standing, decide};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{FakeBuilder, TestApp, spawn_app, spawn_app_with};

/// What a caller is, for the expectations.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A working token: its user's admin flag and role on the tested projects, the token's
    /// role, and whether it covers them.
    Works {
        admin: bool,
        member: Option<Role>,
        token_role: TokenRole,
        limited: bool,
    },
    /// Expired or revoked: refused everywhere.
    Refused,
}

struct Principal {
    label: &'static str,
    token: String,
    kind: Kind,
    /// Another token of the same user, for the revoke route.
    spare_token: i64,
}

impl Principal {
    /// The status this caller must get for `action` (on the tested project, for project
    /// actions), per the rules.
    fn expected(&self, action: Action) -> Expect {
        let Kind::Works {
            admin,
            member,
            token_role,
            limited,
        } = self.kind
        else {
            return match action {
                Action::Public => Expect::Success,
                _ => Expect::Status(401),
            };
        };
        if matches!(action, Action::Job | Action::Delivery) {
            // A user's token is never a job token, nor a forge's signature.
            return Expect::Status(401);
        }
        let grant = Grant {
            admin,
            token_role,
            limited,
        };
        let standing = Standing {
            member,
            in_scope: !limited,
        };
        match decide(&grant, Some(standing), action) {
            Decision::Allow => Expect::Success,
            Decision::Hidden => Expect::Status(404),
            Decision::Denied(_) => Expect::Status(403),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Expect {
    Success,
    Status(u16),
}

/// One request of the run; `{p}`, `{r}`, `{q}`, `{j}`, `{i}`, `{spare}` are filled in per
/// caller. `action` is the route's own unless a body makes it another (a production variable).
struct Case {
    method: &'static str,
    path: &'static str,
    body: Option<Value>,
    action: Option<Action>,
}

const fn case(method: &'static str, path: &'static str) -> Case {
    Case {
        method,
        path,
        body: None,
        action: None,
    }
}

impl Case {
    fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    fn acting(mut self, action: Action) -> Self {
        self.action = Some(action);
        self
    }
}

/// The requests, in order: a project is deleted last.
fn cases() -> Vec<Case> {
    let mut cases = vec![
        case("GET", "/health"),
        case("POST", "/project")
            .body(json!({"gitURL": "https://git.example.com/a/compat-{i}.git"})),
        case("GET", "/api/v1/me"),
        case("GET", "/api/v1/tokens"),
        case("POST", "/api/v1/tokens").body(json!({"name": "made by {i}"})),
        case("DELETE", "/api/v1/tokens/{spare}"),
        case("GET", "/api/v1/users"),
        case("POST", "/api/v1/users").body(json!({"name": "new-{i}"})),
        case("DELETE", "/api/v1/users/gone-{i}"),
        case("GET", "/api/v1/holds"),
        case("DELETE", "/api/v1/holds/held-{i}"),
        case("GET", "/api/v1/projects"),
        case("POST", "/api/v1/projects").body(json!({"name": "fresh-{i}"})),
        case("GET", "/api/v1/projects/{p}"),
        case("PATCH", "/api/v1/projects/{p}").body(json!({"git_ref": "main"})),
        case("GET", "/api/v1/projects/{p}/deployments"),
        case("POST", "/api/v1/projects/{p}/deployments").body(json!({"promote": false})),
        case("POST", "/api/v1/projects/{p}/rollback").body(json!({"to": "{r}"})),
        case("GET", "/api/v1/projects/{p}/domains"),
        case("POST", "/api/v1/projects/{p}/domains").body(json!({"host": "new-{i}.example.com"})),
        case("DELETE", "/api/v1/projects/{p}/domains/www-{i}.example.com"),
        case("GET", "/api/v1/projects/{p}/members"),
        case("POST", "/api/v1/projects/{p}/members").body(json!({"user": "una", "role": "viewer"})),
        case("DELETE", "/api/v1/projects/{p}/members/tim"),
    ];
    cases.extend(push_cases());
    cases.extend([
        case("GET", "/api/v1/projects/{p}/env"),
        case("GET", "/api/v1/projects/{p}/env/SHARED_KEY"),
        case("PUT", "/api/v1/projects/{p}/env/NEW_KEY")
            .body(json!({"value": "preview-value", "target": "preview"})),
        case("PUT", "/api/v1/projects/{p}/env/NEW_KEY")
            .body(json!({"value": "production-value", "target": "production"}))
            .acting(Action::WriteProductionEnv),
        case("PUT", "/api/v1/projects/{p}/env/NEW_KEY")
            .body(json!({"value": "both-value"}))
            .acting(Action::WriteProductionEnv),
        case(
            "DELETE",
            "/api/v1/projects/{p}/env/SHARED_KEY?target=preview",
        ),
        case(
            "DELETE",
            "/api/v1/projects/{p}/env/OTHER_KEY?target=production",
        )
        .acting(Action::WriteProductionEnv),
        case("DELETE", "/api/v1/projects/{p}/env/THIRD_KEY").acting(Action::WriteProductionEnv),
        case("GET", "/api/v1/deployments/{r}"),
        case("POST", "/api/v1/deployments/{r}/promote"),
        case("POST", "/api/v1/deployments/{q}/cancel"),
        // Canceled just above by whoever may; removing needs the same role.
        case("DELETE", "/api/v1/deployments/{q}"),
        case("POST", "/api/v1/projects/{p}/prebuilt").body(json!({"promote": false})),
        case("POST", "/api/v1/sweep"),
        case("GET", "/api/v1/deployments/{r}/logs"),
        case("GET", "/api/v1/deployments/{r}/logs/stream"),
        case("POST", "/api/v1/deployments/{j}/logs").body(json!({"first": 0, "lines": []})),
        case("POST", "/api/v1/deployments/{j}/report")
            .body(json!({"kind": "phase", "phase": "building"})),
        case("GET", "/api/v1/deployments/{j}/env"),
        case("POST", "/api/v1/deployments/{j}/blobs").body(json!({"blobs": []})),
        case("POST", "/api/v1/deployments/{j}/blobs/stored").body(json!({"blobs": []})),
        case("POST", "/api/v1/deployments/{j}/blobs/abandon"),
        case("POST", "/api/v1/deployments/{j}/packs").body(json!({"packs": []})),
        case("PUT", "/api/v1/deployments/{j}/blobs/BLOB?size=1"),
        case("PUT", "/api/v1/deployments/{j}/manifest"),
        case("DELETE", "/api/v1/projects/{p}"),
    ]);
    cases
}

/// Push to deploy and telling the world: the connection, deploy hooks, notifications.
fn push_cases() -> Vec<Case> {
    vec![
        case("GET", "/api/v1/projects/{p}/git"),
        case("PUT", "/api/v1/projects/{p}/git").body(json!({"provider": "gitea"})),
        // Connected (by its owner, or just above): only a signed delivery is taken.
        case("POST", "/hooks/git/{p}").body(json!({"ref": "refs/heads/main"})),
        case("DELETE", "/api/v1/projects/{p}/git"),
        case("GET", "/api/v1/projects/{p}/hooks"),
        case("POST", "/api/v1/projects/{p}/hooks").body(json!({"name": "cms-{i}"})),
        case("DELETE", "/api/v1/projects/{p}/hooks/{hook}"),
        case("GET", "/api/v1/projects/{p}/notifications"),
        case("POST", "/api/v1/projects/{p}/notifications")
            .body(json!({"url": "http://127.0.0.1:9/{i}", "events": ["ready"]})),
        case("GET", "/api/v1/projects/{p}/notifications/log"),
        case("DELETE", "/api/v1/projects/{p}/notifications/{sub}"),
        // Not a hook's secret: only the secret URL of a hook runs it.
        case("POST", "/hooks/deploy/smh_{i}"),
    ]
}

/// What one caller's requests refer to.
struct Fixture {
    project: String,
    /// A deploy hook's id.
    hook: String,
    /// A notification URL's id.
    subscription: String,
    ready: String,
    queued: String,
    job: String,
}

fn fill(template: &str, i: usize, f: &Fixture, p: &Principal) -> String {
    template
        .replace("{p}", &f.project)
        .replace("{r}", &f.ready)
        .replace("{q}", &f.queued)
        .replace("{j}", &f.job)
        .replace("{spare}", &p.spare_token.to_string())
        .replace("{hook}", &f.hook)
        .replace("{sub}", &f.subscription)
        .replace("BLOB", &"a".repeat(64))
        .replace("{i}", &i.to_string())
}

fn fill_json(value: &Value, i: usize, f: &Fixture, p: &Principal) -> Value {
    serde_json::from_str(&fill(&value.to_string(), i, f, p)).expect("json")
}

/// A project like every tested one: made by olivia, dave a developer, vera a viewer, tim a
/// viewer to be removed; a ready deployment in production, a queued one, another queued one
/// whose job is played; a domain; variables for both targets.
async fn project(app: &TestApp, olivia: &str, name: &str, i: usize) -> Fixture {
    let (status, body) = app
        .call(
            olivia,
            "POST",
            "/api/v1/projects",
            Some(json!({"name": name, "git_url": format!("https://git.example.com/a/{name}.git")})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    for (user, role) in [("dave", "developer"), ("vera", "viewer"), ("tim", "viewer")] {
        let (status, body) = app
            .call(
                olivia,
                "POST",
                &format!("/api/v1/projects/{name}/members"),
                Some(json!({"user": user, "role": role})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    for (key, value) in [
        ("SHARED_KEY", "shared-value"),
        ("OTHER_KEY", "other-value"),
        ("THIRD_KEY", "third-value"),
    ] {
        let (status, body) = app
            .call(
                olivia,
                "PUT",
                &format!("/api/v1/projects/{name}/env/{key}"),
                Some(json!({"value": value})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = app
        .call(
            olivia,
            "POST",
            &format!("/api/v1/projects/{name}/domains"),
            Some(json!({"host": format!("www-{i}.example.com")})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (hook, subscription) = connect_with_a_hook(app, olivia, name).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (status, dep) = app
            .call(
                olivia,
                "POST",
                &format!("/api/v1/projects/{name}/deployments"),
                Some(json!({})),
            )
            .await;
        assert_eq!(status, 201, "{dep}");
        ids.push(dep["id"].as_str().expect("id").to_owned());
    }
    let ready = scalemesh_core::DeploymentId::parse(&ids[0]).expect("id");
    let builder = FakeBuilder::new(app.job_for(&ready).await);
    builder.succeed(&app.storage, &[("index.html", "hi")]).await;
    app.wait_status(&ready, "ready").await;
    Fixture {
        project: name.to_owned(),
        hook,
        subscription,
        ready: ids[0].clone(),
        queued: ids[1].clone(),
        job: ids[2].clone(),
    }
}

/// Connects project `name` to its repository, gives it a deploy hook and a notification URL:
/// their ids.
async fn connect_with_a_hook(app: &TestApp, olivia: &str, name: &str) -> (String, String) {
    let (status, body) = app
        .call(
            olivia,
            "PUT",
            &format!("/api/v1/projects/{name}/git"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, hook) = app
        .call(
            olivia,
            "POST",
            &format!("/api/v1/projects/{name}/hooks"),
            Some(json!({"name": "nightly"})),
        )
        .await;
    assert_eq!(status, 201, "{hook}");
    let (status, sub) = app
        .call(
            olivia,
            "POST",
            &format!("/api/v1/projects/{name}/notifications"),
            Some(json!({"url": "http://127.0.0.1:9/in"})),
        )
        .await;
    assert_eq!(status, 201, "{sub}");
    (hook["id"].to_string(), sub["id"].to_string())
}

/// Sends one case as `p`; the status, and the body (for WebSockets: the handshake's status).
async fn send(
    app: &TestApp,
    case: &Case,
    path: &str,
    body: Option<Value>,
    p: &Principal,
) -> (u16, Value) {
    if path.ends_with("/logs/stream") {
        let url = format!("{}{path}", app.api.replacen("http", "ws", 1));
        let mut req = url.into_client_request().expect("request");
        req.headers_mut().insert(
            "authorization",
            format!("Bearer {}", p.token).parse().expect("header"),
        );
        return match tokio_tungstenite::connect_async(req).await {
            Ok((mut socket, res)) => {
                let _ = socket.close(None).await;
                (res.status().as_u16(), Value::Null)
            }
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
                (res.status().as_u16(), Value::Null)
            }
            Err(e) => panic!("{path}: {e}"),
        };
    }
    app.call(&p.token, case.method, path, body).await
}

/// Olivia, dave, vera and sam, whose tokens those are; tim and una are added too, to be
/// members of the tested projects.
async fn users(app: &TestApp) -> [String; 4] {
    let olivia = app.add_user("olivia", false).await;
    let dave = app.add_user("dave", false).await;
    let vera = app.add_user("vera", false).await;
    let sam = app.add_user("sam", false).await;
    for user in ["tim", "una"] {
        app.add_user(user, false).await;
    }
    [olivia, dave, vera, sam]
}

/// Olivia's other tokens: one limited to a project the tested ones are not, a read-only one,
/// one about to expire, and a revoked one.
async fn olivias_other_tokens(app: &TestApp, olivia: &str) -> [String; 4] {
    // A project of olivia's that the tested ones are not, for the limited token.
    let (status, body) = app
        .call(
            olivia,
            "POST",
            "/api/v1/projects",
            Some(json!({"name": "elsewhere"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let limited = app
        .make_token(
            olivia,
            json!({"name": "limited", "projects": ["elsewhere"]}),
        )
        .await
        .0;
    let read = app
        .make_token(olivia, json!({"name": "read", "role": "read"}))
        .await
        .0;
    let expiring = app
        .make_token(olivia, json!({"name": "expiring", "expires": "1s"}))
        .await
        .0;
    let (revoked, revoked_id) = app.make_token(olivia, json!({"name": "revoked"})).await;
    let (status, body) = app
        .call(
            olivia,
            "DELETE",
            &format!("/api/v1/tokens/{revoked_id}"),
            None,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    [limited, read, expiring, revoked]
}

/// Another token of the user of `token`, for the revoke route: its id.
async fn spare(app: &TestApp, token: &str) -> i64 {
    app.make_token(token, json!({"name": "spare"})).await.1
}

/// Every kind of caller, each with a spare token of its user's.
async fn principals(app: &TestApp, users: [String; 4], others: [String; 4]) -> Vec<Principal> {
    let admin_token = app.token.clone();
    let [olivia, dave, vera, sam] = users;
    let [limited, read, expiring, revoked] = others;
    let works = |admin, member, token_role, limited| Kind::Works {
        admin,
        member,
        token_role,
        limited,
    };
    let owner = Some(Role::Owner);
    vec![
        Principal {
            label: "admin",
            spare_token: spare(app, &admin_token).await,
            token: admin_token.clone(),
            kind: works(true, None, TokenRole::Full, false),
        },
        Principal {
            label: "owner",
            spare_token: spare(app, &olivia).await,
            token: olivia.clone(),
            kind: works(false, owner, TokenRole::Full, false),
        },
        Principal {
            label: "developer",
            spare_token: spare(app, &dave).await,
            token: dave.clone(),
            kind: works(false, Some(Role::Developer), TokenRole::Full, false),
        },
        Principal {
            label: "viewer",
            spare_token: spare(app, &vera).await,
            token: vera.clone(),
            kind: works(false, Some(Role::Viewer), TokenRole::Full, false),
        },
        Principal {
            label: "stranger",
            spare_token: spare(app, &sam).await,
            token: sam.clone(),
            kind: works(false, None, TokenRole::Full, false),
        },
        Principal {
            label: "token limited to another project",
            spare_token: spare(app, &olivia).await,
            token: limited,
            kind: works(false, owner, TokenRole::Full, true),
        },
        Principal {
            label: "read-only token",
            spare_token: spare(app, &olivia).await,
            token: read,
            kind: works(false, owner, TokenRole::Read, false),
        },
        Principal {
            label: "expired token",
            spare_token: spare(app, &olivia).await,
            token: expiring,
            kind: Kind::Refused,
        },
        Principal {
            label: "revoked token",
            spare_token: spare(app, &olivia).await,
            token: revoked,
            kind: Kind::Refused,
        },
    ]
}

/// Each caller gets its own project, users to remove and names to release.
async fn fixtures(app: &TestApp, olivia: &str, callers: usize) -> Vec<Fixture> {
    let mut fixtures = Vec::new();
    for i in 0..callers {
        fixtures.push(project(app, olivia, &format!("tested-{i}"), i).await);
        app.add_user(&format!("gone-{i}"), false).await;
        let name = format!("held-{i}");
        let (status, body) = app
            .call(
                olivia,
                "POST",
                "/api/v1/projects",
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let (status, body) = app
            .call(olivia, "DELETE", &format!("/api/v1/projects/{name}"), None)
            .await;
        assert_eq!(status, 204, "{body}");
    }
    fixtures
}

/// The path of `ROUTES` that the case's path template stands for.
fn route_path(case: &Case) -> String {
    let route_path = case.path.split('?').next().unwrap_or(case.path);
    route_path
        .replace("{spare}", "{id}")
        .replace("gone-{i}", "{name}")
        .replace("held-{i}", "{name}")
        .replace("{p}", "{name}")
        .replace("www-{i}.example.com", "{host}")
        .replace("/tim", "/{user}")
        .replace("SHARED_KEY", "{key}")
        .replace("NEW_KEY", "{key}")
        .replace("OTHER_KEY", "{key}")
        .replace("THIRD_KEY", "{key}")
        .replace("{r}", "{id}")
        .replace("{q}", "{id}")
        .replace("{j}", "{id}")
        .replace("BLOB", "{sha256}")
        .replace("{hook}", "{id}")
        .replace("{sub}", "{id}")
        .replace("smh_{i}", "{secret}")
}

/// Sends `case` as the `i`th caller `p`, on its fixture `f`; a wrong answer goes to `failures`.
/// The route of `ROUTES` it tried.
async fn try_case(
    app: &TestApp,
    i: usize,
    p: &Principal,
    f: &Fixture,
    case: &Case,
    failures: &mut Vec<String>,
) -> (&'static str, &'static str) {
    let route_path = route_path(case);
    let route = ROUTES
        .iter()
        .find(|r| r.method == case.method && r.path == route_path)
        .unwrap_or_else(|| panic!("{} {route_path} is not in access::ROUTES", case.method));
    let action = case.action.unwrap_or(route.action);
    let path = fill(case.path, i, f, p);
    let body = case.body.as_ref().map(|b| fill_json(b, i, f, p));
    let (status, answer) = send(app, case, &path, body, p).await;
    assert!(
        !answer.to_string().contains("there is no endpoint"),
        "{} {path} is not routed",
        case.method
    );
    let ok = match p.expected(action) {
        Expect::Success => (200..300).contains(&status) || status == 101,
        Expect::Status(want) => status == want,
    };
    if !ok {
        failures.push(format!(
            "{}: {} {path} ({action:?}) → {status}, expected {:?}: {answer}",
            p.label,
            case.method,
            p.expected(action)
        ));
    }
    check_listing(
        app,
        p,
        f,
        case,
        route_path.as_str(),
        status,
        &answer,
        failures,
    );
    (route.method, route.path)
}

#[tokio::test]
async fn every_route_answers_every_caller_as_the_rules_say() {
    // Notifications go to a closed port on loopback: never off this machine.
    let app = spawn_app_with(|s| {
        s.allow_private_notify =
            scalemesh_core::netguard::AllowList::parse("127.0.0.1").expect("allow");
    })
    .await;
    let users = users(&app).await;
    let olivia = users[0].clone();
    let others = olivias_other_tokens(&app, &olivia).await;
    let principals = principals(&app, users, others).await;
    let fixtures = fixtures(&app, &olivia, principals.len()).await;
    // The expiring token has expired by now (the setup takes longer than a second).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let routes: BTreeSet<(&str, &str)> = ROUTES.iter().map(|r| (r.method, r.path)).collect();
    let mut covered = BTreeSet::new();
    let mut failures = Vec::new();
    for (i, (p, f)) in principals.iter().zip(&fixtures).enumerate() {
        for case in cases() {
            covered.insert(try_case(&app, i, p, f, &case, &mut failures).await);
        }
    }
    assert!(
        failures.is_empty(),
        "{} wrong answers:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(covered, routes, "every route of access::ROUTES is tried");
}

/// Listings show what the caller may see and nothing more: projects they can see, variable
/// values they may read.
#[allow(clippy::too_many_arguments)]
fn check_listing(
    _app: &TestApp,
    p: &Principal,
    f: &Fixture,
    case: &Case,
    route: &str,
    status: u16,
    answer: &Value,
    failures: &mut Vec<String>,
) {
    if status != 200 || case.method != "GET" {
        return;
    }
    if route == "/api/v1/projects" {
        let listed = answer["projects"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|x| x["name"] == f.project.as_str()));
        let visible = p.expected(Action::ViewProject) == Expect::Success;
        if listed != visible {
            failures.push(format!(
                "{}: project list shows {}: {listed}, may see it: {visible}",
                p.label, f.project
            ));
        }
    }
    if route == "/api/v1/projects/{name}/env" {
        for var in answer["env"].as_array().into_iter().flatten() {
            let action = match var["target"].as_str() {
                Some("production") => Action::ReadProductionEnv,
                _ => Action::ReadPreviewEnv,
            };
            let shown = var.get("value").is_some();
            let may = p.expected(action) == Expect::Success;
            if shown != may {
                failures.push(format!(
                    "{}: {} value shown: {shown}, may read it: {may}",
                    p.label, var
                ));
            }
        }
    }
}

/// docs/api.md documents exactly the routes of the rules table.
#[test]
fn the_api_document_lists_every_route() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api.md"))
        .expect("docs/api.md");
    let mut documented = BTreeSet::new();
    for piece in doc.split('`').skip(1).step_by(2) {
        let mut words = piece.split_whitespace();
        let (Some(method), Some(path)) = (words.next(), words.next()) else {
            continue;
        };
        if ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method) && path.starts_with('/') {
            let path = path.split('?').next().unwrap_or(path);
            documented.insert((method.to_owned(), path.to_owned()));
        }
    }
    let table: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect();
    let missing: Vec<_> = table.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&table).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "not in docs/api.md: {missing:?}; in docs/api.md but not in access::ROUTES: {unknown:?}"
    );
}

/// A job token is what the builder routes take, and only for its own deployment.
#[tokio::test]
async fn builder_routes_take_their_own_job_token_only() {
    let app = spawn_app().await;
    let (a, job_a) = app.deploy("job-a").await;
    let (_, job_b) = app.deploy("job-b").await;
    let (status, _) = app
        .call(
            &job_b.job_token,
            "GET",
            &format!("/api/v1/deployments/{a}/env"),
            None,
        )
        .await;
    assert_eq!(status, 401, "another build's job token");
    let (status, _) = app
        .call(
            &job_a.job_token,
            "GET",
            &format!("/api/v1/deployments/{a}"),
            None,
        )
        .await;
    assert_eq!(status, 401, "a job token is not an API token");
    let builder = FakeBuilder::new(job_a);
    let (status, body) = builder
        .report(BuilderReport::Phase {
            phase: scalemesh_core::Phase::Building,
            progress: None,
        })
        .await;
    assert_eq!(status, 200, "{body}");

    // Finished: its own token learns that, and nobody else learns anything.
    let (status, _) = builder
        .report(BuilderReport::Failed {
            reason: "done".into(),
        })
        .await;
    assert_eq!(status, 200);
    let blob = format!("blobs/{}?size=1", "a".repeat(64));
    for tail in [
        "env",
        "logs",
        "report",
        "blobs",
        "blobs/stored",
        "blobs/abandon",
        "packs",
        &blob,
        "manifest",
    ] {
        let path = format!("/api/v1/deployments/{a}/{tail}");
        let method = match tail {
            "env" => "GET",
            "manifest" => "PUT",
            t if t.starts_with("blobs/aaaa") => "PUT",
            _ => "POST",
        };
        let body = (tail != "env").then(|| json!({"kind": "ready"}));
        let (status, answer) = app.call("smj_guess", method, &path, body.clone()).await;
        assert_eq!(status, 401, "{tail}: {answer}");
        let (status, answer) = app
            .call(&job_b.job_token, method, &path, body.clone())
            .await;
        assert_eq!(status, 401, "{tail}: {answer}");
        let missing = format!("/api/v1/deployments/zzzzzzzzzzzz/{tail}");
        let (status, _) = app.call("smj_guess", method, &missing, body.clone()).await;
        assert_eq!(status, 401, "the same for a deployment that does not exist");
    }
    let (status, answer) = builder.report(BuilderReport::Ready).await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["error"]["code"], "deployment_finished");
}
