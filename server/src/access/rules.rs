//! The rules, once: what each action needs, what each route of the API is, and the one
//! function that decides. Handlers ask through `App::project_for` and `Caller::may`; the tests
//! run every route in [`ROUTES`] as every kind of caller and expect what [`decide`] says.

use scalemesh_core::access::{Role, TokenRole};

/// Something a caller asks to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Answered without a token.
    Public,
    /// A forge's delivery, signed with the project's webhook secret, or a deploy hook's secret
    /// URL: no token read.
    Delivery,
    /// Only a build's job token, for its own unfinished deployment.
    Job,
    /// Who am I.
    ReadSelf,
    /// List the projects the caller can see (each filtered, never refused).
    ListProjects,
    CreateProject,
    /// Create and list the caller's own tokens.
    ManageTokens,
    /// Revoke one of the caller's tokens (a token may always revoke itself).
    RevokeToken,
    ManageUsers,
    /// List and release names held after a project was deleted.
    ManageHolds,
    /// Sweep storage now, as the server does every `--sweep-interval`.
    Sweep,
    /// See a project, its deployments, logs, domains, members and variable names.
    ViewProject,
    Deploy,
    Cancel,
    /// Remove a finished deployment that is not production.
    RemoveDeployment,
    Promote,
    Rollback,
    ReadPreviewEnv,
    WritePreviewEnv,
    ReadProductionEnv,
    WriteProductionEnv,
    /// Repository, branch, build settings (and the whole-map form of variables).
    EditSettings,
    ManageDomains,
    ManageMembers,
    DeleteProject,
    /// Delete a project the caller created that has never had a deployment: whoever could
    /// create it may take it back (a deploy whose first build was refused cleans up after itself).
    DiscardNewProject,
}

/// What an action needs of the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Nothing,
    JobToken,
    /// A body signed with the project's webhook secret; tokens are not read.
    Signature,
    /// Any valid user token.
    AnyToken,
    /// A token for all of its user's projects that may create things (`full` or `deploy`).
    UnlimitedWriter,
    /// A `full` token for all of its user's projects.
    FullToken,
    /// An admin, with a `full` token for all projects.
    Admin,
    /// At least this role on the project.
    Project(Role),
}

/// Each action, what it needs, and how messages name it.
pub const RULES: &[(Action, Need, &str)] = &[
    (Action::Public, Need::Nothing, "this"),
    (Action::Job, Need::JobToken, "reporting on a build"),
    (
        Action::Delivery,
        Need::Signature,
        "delivering a repository's events",
    ),
    (Action::ReadSelf, Need::AnyToken, "reading who you are"),
    (Action::ListProjects, Need::AnyToken, "listing projects"),
    (
        Action::CreateProject,
        Need::UnlimitedWriter,
        "creating a project",
    ),
    (Action::ManageTokens, Need::FullToken, "managing tokens"),
    (
        Action::RevokeToken,
        Need::FullToken,
        "revoking another token",
    ),
    (Action::ManageUsers, Need::Admin, "managing users"),
    (Action::ManageHolds, Need::Admin, "managing held names"),
    (Action::Sweep, Need::Admin, "sweeping storage"),
    (
        Action::ViewProject,
        Need::Project(Role::Viewer),
        "seeing a project",
    ),
    (Action::Deploy, Need::Project(Role::Developer), "deploying"),
    (
        Action::Cancel,
        Need::Project(Role::Developer),
        "canceling a deployment",
    ),
    (
        Action::RemoveDeployment,
        Need::Project(Role::Developer),
        "removing a deployment",
    ),
    (
        Action::Promote,
        Need::Project(Role::Developer),
        "promoting a deployment",
    ),
    (
        Action::Rollback,
        Need::Project(Role::Developer),
        "rolling back",
    ),
    (
        Action::ReadPreviewEnv,
        Need::Project(Role::Developer),
        "reading preview variables",
    ),
    (
        Action::WritePreviewEnv,
        Need::Project(Role::Developer),
        "changing preview variables",
    ),
    (
        Action::ReadProductionEnv,
        Need::Project(Role::Owner),
        "reading production variables",
    ),
    (
        Action::WriteProductionEnv,
        Need::Project(Role::Owner),
        "changing production variables",
    ),
    (
        Action::EditSettings,
        Need::Project(Role::Owner),
        "changing a project's settings",
    ),
    (
        Action::ManageDomains,
        Need::Project(Role::Owner),
        "changing a project's domains",
    ),
    (
        Action::ManageMembers,
        Need::Project(Role::Owner),
        "changing a project's members",
    ),
    (
        Action::DeleteProject,
        Need::Project(Role::Owner),
        "deleting a project",
    ),
    (
        Action::DiscardNewProject,
        Need::UnlimitedWriter,
        "taking back a project you just created",
    ),
];

/// What `action` needs, and its name in messages.
pub fn rule(action: Action) -> (Need, &'static str) {
    RULES
        .iter()
        .find(|(a, _, _)| *a == action)
        .map_or((Need::Admin, "this"), |(_, need, what)| (*need, *what))
}

/// One route of the API and the action it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub action: Action,
}

const fn route(method: &'static str, path: &'static str, action: Action) -> Route {
    Route {
        method,
        path,
        action,
    }
}

/// Every route of the API. Routes on variables take the target's action too: a route listed
/// with `WritePreviewEnv` also needs `WriteProductionEnv` when it touches production values.
pub const ROUTES: &[Route] = &[
    route("GET", "/health", Action::Public),
    route("POST", "/project", Action::CreateProject),
    route("POST", "/hooks/git/{name}", Action::Delivery),
    route("POST", "/hooks/deploy/{secret}", Action::Delivery),
    route("GET", "/api/v1/me", Action::ReadSelf),
    route("GET", "/api/v1/tokens", Action::ManageTokens),
    route("POST", "/api/v1/tokens", Action::ManageTokens),
    route("DELETE", "/api/v1/tokens/{id}", Action::RevokeToken),
    route("GET", "/api/v1/users", Action::ManageUsers),
    route("POST", "/api/v1/users", Action::ManageUsers),
    route("DELETE", "/api/v1/users/{name}", Action::ManageUsers),
    route("GET", "/api/v1/holds", Action::ManageHolds),
    route("DELETE", "/api/v1/holds/{name}", Action::ManageHolds),
    route("GET", "/api/v1/projects", Action::ListProjects),
    route("POST", "/api/v1/projects", Action::CreateProject),
    route("GET", "/api/v1/projects/{name}", Action::ViewProject),
    route("PATCH", "/api/v1/projects/{name}", Action::EditSettings),
    route("DELETE", "/api/v1/projects/{name}", Action::DeleteProject),
    route(
        "GET",
        "/api/v1/projects/{name}/deployments",
        Action::ViewProject,
    ),
    route(
        "POST",
        "/api/v1/projects/{name}/deployments",
        Action::Deploy,
    ),
    route("POST", "/api/v1/projects/{name}/rollback", Action::Rollback),
    route(
        "GET",
        "/api/v1/projects/{name}/domains",
        Action::ViewProject,
    ),
    route(
        "POST",
        "/api/v1/projects/{name}/domains",
        Action::ManageDomains,
    ),
    route(
        "DELETE",
        "/api/v1/projects/{name}/domains/{host}",
        Action::ManageDomains,
    ),
    route(
        "GET",
        "/api/v1/projects/{name}/members",
        Action::ViewProject,
    ),
    route(
        "POST",
        "/api/v1/projects/{name}/members",
        Action::ManageMembers,
    ),
    route(
        "DELETE",
        "/api/v1/projects/{name}/members/{user}",
        Action::ManageMembers,
    ),
    route("GET", "/api/v1/projects/{name}/git", Action::ViewProject),
    route("PUT", "/api/v1/projects/{name}/git", Action::EditSettings),
    route(
        "DELETE",
        "/api/v1/projects/{name}/git",
        Action::EditSettings,
    ),
    route("GET", "/api/v1/projects/{name}/hooks", Action::ViewProject),
    route(
        "GET",
        "/api/v1/projects/{name}/notifications",
        Action::ViewProject,
    ),
    route(
        "POST",
        "/api/v1/projects/{name}/notifications",
        Action::EditSettings,
    ),
    route(
        "GET",
        "/api/v1/projects/{name}/notifications/log",
        Action::ViewProject,
    ),
    route(
        "DELETE",
        "/api/v1/projects/{name}/notifications/{id}",
        Action::EditSettings,
    ),
    route(
        "POST",
        "/api/v1/projects/{name}/hooks",
        Action::EditSettings,
    ),
    route(
        "DELETE",
        "/api/v1/projects/{name}/hooks/{id}",
        Action::EditSettings,
    ),
    route("GET", "/api/v1/projects/{name}/env", Action::ViewProject),
    route(
        "GET",
        "/api/v1/projects/{name}/env/{key}",
        Action::ViewProject,
    ),
    route(
        "PUT",
        "/api/v1/projects/{name}/env/{key}",
        Action::WritePreviewEnv,
    ),
    route(
        "DELETE",
        "/api/v1/projects/{name}/env/{key}",
        Action::WritePreviewEnv,
    ),
    route("POST", "/api/v1/projects/{name}/prebuilt", Action::Deploy),
    route("GET", "/api/v1/deployments/{id}", Action::ViewProject),
    route(
        "DELETE",
        "/api/v1/deployments/{id}",
        Action::RemoveDeployment,
    ),
    route("POST", "/api/v1/deployments/{id}/promote", Action::Promote),
    route("POST", "/api/v1/deployments/{id}/cancel", Action::Cancel),
    route("GET", "/api/v1/deployments/{id}/logs", Action::ViewProject),
    route(
        "GET",
        "/api/v1/deployments/{id}/logs/stream",
        Action::ViewProject,
    ),
    route("POST", "/api/v1/deployments/{id}/logs", Action::Job),
    route("POST", "/api/v1/deployments/{id}/report", Action::Job),
    route("GET", "/api/v1/deployments/{id}/env", Action::Job),
    route("POST", "/api/v1/deployments/{id}/blobs", Action::Job),
    route("POST", "/api/v1/deployments/{id}/blobs/stored", Action::Job),
    route(
        "POST",
        "/api/v1/deployments/{id}/blobs/abandon",
        Action::Job,
    ),
    route("POST", "/api/v1/deployments/{id}/packs", Action::Job),
    route(
        "PUT",
        "/api/v1/deployments/{id}/blobs/{sha256}",
        Action::Job,
    ),
    route("PUT", "/api/v1/deployments/{id}/manifest", Action::Job),
    route("POST", "/api/v1/sweep", Action::Sweep),
];

/// What a caller is, as far as the rules care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub admin: bool,
    pub token_role: TokenRole,
    /// The token is limited to some projects.
    pub limited: bool,
}

/// The caller's standing on one project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// Their role as a member, if they are one.
    pub member: Option<Role>,
    /// The token covers this project.
    pub in_scope: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Answered as if the project did not exist (404).
    Hidden,
    /// Refused with this message (403).
    Denied(String),
}

impl Grant {
    /// The role the caller acts with on a project: their own (an admin's is owner), at most
    /// what the token allows; `None` when they may not see it.
    pub fn role_on(&self, standing: Standing) -> Option<Role> {
        let own = if self.admin {
            Some(Role::Owner)
        } else {
            standing.member
        };
        match own {
            Some(own) if standing.in_scope => Some(own.min(self.token_role.cap())),
            _ => None,
        }
    }

    fn own_role(&self, standing: Standing) -> Option<Role> {
        if self.admin {
            Some(Role::Owner)
        } else {
            standing.member
        }
    }
}

/// Whether a caller with `grant` may take `action`, on a project where it has `standing` (for
/// project actions; `None` for the rest).
pub fn decide(grant: &Grant, standing: Option<Standing>, action: Action) -> Decision {
    let (need, what) = rule(action);
    let token_kind = || {
        let limit = if grant.limited {
            " limited to some projects"
        } else {
            ""
        };
        format!("this is a {} token{limit}", grant.token_role)
    };
    match need {
        Need::Nothing | Need::AnyToken => Decision::Allow,
        // User tokens never act as job tokens.
        Need::JobToken => Decision::Denied(format!("{what} needs the build's job token")),
        // No token stands for a forge's signature.
        Need::Signature => Decision::Denied(format!(
            "{what} needs a body signed with the project's webhook secret"
        )),
        Need::UnlimitedWriter => {
            if grant.limited || grant.token_role == TokenRole::Read {
                Decision::Denied(format!(
                    "{what} needs a full or deploy token for all your projects; {}",
                    token_kind()
                ))
            } else {
                Decision::Allow
            }
        }
        Need::FullToken => {
            if grant.limited || grant.token_role != TokenRole::Full {
                Decision::Denied(format!(
                    "{what} needs a full token for all your projects; {}",
                    token_kind()
                ))
            } else {
                Decision::Allow
            }
        }
        Need::Admin => {
            if !grant.admin {
                Decision::Denied(format!("{what} needs an admin"))
            } else if grant.limited || grant.token_role != TokenRole::Full {
                Decision::Denied(format!(
                    "{what} needs an admin's full token for all projects; {}",
                    token_kind()
                ))
            } else {
                Decision::Allow
            }
        }
        Need::Project(needed) => {
            let Some(standing) = standing else {
                return Decision::Hidden;
            };
            let Some(acting) = grant.role_on(standing) else {
                return Decision::Hidden;
            };
            if acting >= needed {
                return Decision::Allow;
            }
            let own = grant.own_role(standing).unwrap_or(Role::Viewer);
            if own >= needed {
                Decision::Denied(format!(
                    "{what} needs the {needed} role; {}, which acts at most as a {}",
                    token_kind(),
                    grant.token_role.cap()
                ))
            } else {
                Decision::Denied(format!(
                    "{what} needs the {needed} role on this project; you are a {own}"
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn grant(admin: bool, token_role: TokenRole, limited: bool) -> Grant {
        Grant {
            admin,
            token_role,
            limited,
        }
    }

    const fn member(role: Option<Role>, in_scope: bool) -> Option<Standing> {
        Some(Standing {
            member: role,
            in_scope,
        })
    }

    #[test]
    fn every_action_has_one_rule() {
        let mut seen = std::collections::HashSet::new();
        for (action, _, _) in RULES {
            assert!(seen.insert(*action), "{action:?} twice");
        }
        for r in ROUTES {
            assert!(seen.contains(&r.action), "{r:?} has no rule");
        }
    }

    /// What a decision is, without its message.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Kind {
        Allow,
        Hidden,
        Denied,
    }

    fn kind(d: &Decision) -> Kind {
        match d {
            Decision::Allow => Kind::Allow,
            Decision::Hidden => Kind::Hidden,
            Decision::Denied(_) => Kind::Denied,
        }
    }

    /// Who may do what on a project.
    #[test]
    fn project_rules() {
        use Action::*;
        use Kind::{Allow, Denied, Hidden};
        let full = grant(false, TokenRole::Full, false);
        let admin = grant(true, TokenRole::Full, false);
        let read = grant(false, TokenRole::Read, false);
        let deploy_limited = grant(false, TokenRole::Deploy, true);
        let owner = member(Some(Role::Owner), true);
        let dev = member(Some(Role::Developer), true);
        let viewer = member(Some(Role::Viewer), true);
        let stranger = member(None, true);
        let out_of_scope = member(Some(Role::Owner), false);
        let table: &[(Action, Grant, Option<Standing>, Kind)] = &[
            (ViewProject, full, viewer, Allow),
            (ViewProject, full, stranger, Hidden),
            (ViewProject, full, out_of_scope, Hidden),
            (ViewProject, admin, stranger, Allow),
            (ViewProject, admin, member(None, false), Hidden),
            (Deploy, full, viewer, Denied),
            (Deploy, full, dev, Allow),
            (Rollback, full, dev, Allow),
            (WritePreviewEnv, full, dev, Allow),
            (WriteProductionEnv, full, dev, Denied),
            (WriteProductionEnv, full, owner, Allow),
            (DeleteProject, full, dev, Denied),
            (DeleteProject, admin, stranger, Allow),
            (ManageMembers, full, owner, Allow),
            // Tokens narrow what their user can do.
            (Deploy, read, owner, Denied),
            (ViewProject, read, owner, Allow),
            (Deploy, deploy_limited, owner, Allow),
            (DeleteProject, deploy_limited, owner, Denied),
            (
                DeleteProject,
                grant(true, TokenRole::Deploy, false),
                stranger,
                Denied,
            ),
            // A project the caller cannot see is hidden, whatever they ask.
            (DeleteProject, full, stranger, Hidden),
            (Deploy, deploy_limited, out_of_scope, Hidden),
        ];
        for (i, (action, grant, standing, want)) in table.iter().enumerate() {
            let d = decide(grant, *standing, *action);
            assert_eq!(
                kind(&d),
                *want,
                "case {i}: {action:?} {grant:?} {standing:?} → {d:?}"
            );
        }
    }

    #[test]
    fn account_rules() {
        use Action::*;
        let allow = |g: Grant, a: Action| decide(&g, None, a) == Decision::Allow;
        let full = grant(false, TokenRole::Full, false);
        let admin = grant(true, TokenRole::Full, false);
        assert!(allow(full, CreateProject));
        assert!(allow(grant(false, TokenRole::Deploy, false), CreateProject));
        assert!(!allow(grant(false, TokenRole::Deploy, true), CreateProject));
        assert!(!allow(grant(false, TokenRole::Read, false), CreateProject));
        assert!(allow(full, ManageTokens));
        assert!(!allow(grant(false, TokenRole::Full, true), ManageTokens));
        assert!(!allow(grant(false, TokenRole::Deploy, false), ManageTokens));
        assert!(!allow(full, ManageUsers));
        assert!(allow(admin, ManageUsers));
        assert!(!allow(grant(true, TokenRole::Read, false), ManageUsers));
        assert!(!allow(grant(true, TokenRole::Full, true), ManageHolds));
        assert!(allow(grant(false, TokenRole::Read, true), ReadSelf));
        assert!(!allow(admin, Job));
    }

    #[test]
    fn refusals_name_the_role_needed() {
        let dev = member(Some(Role::Developer), true);
        let Decision::Denied(msg) = decide(
            &grant(false, TokenRole::Full, false),
            dev,
            Action::DeleteProject,
        ) else {
            panic!("a developer deleted a project");
        };
        assert_eq!(
            msg,
            "deleting a project needs the owner role on this project; you are a developer"
        );
        let Decision::Denied(msg) =
            decide(&grant(false, TokenRole::Read, false), dev, Action::Deploy)
        else {
            panic!("a read token deployed");
        };
        assert_eq!(
            msg,
            "deploying needs the developer role; this is a read token, which acts at most as a viewer"
        );
    }
}
