//! The endpoints of people and access: who a token is, tokens, users, project members,
//! environment variables, and names held after a project is deleted.

use reqwest::Method;
use scalemesh_core::access::EnvTargets;
use scalemesh_core::wire::{
    AddMember, CreateToken, CreateUser, CreatedToken, CreatedUser, EnvList, Me, Member, MemberList,
    NameHoldList, PutEnv, TokenList, UserList,
};

use super::{Client, ClientError, api, query};

impl Client {
    pub async fn me(&self) -> Result<Me, ClientError> {
        self.send(self.request(Method::GET, &api(&["me"]))).await
    }

    pub async fn tokens(&self) -> Result<TokenList, ClientError> {
        self.send(self.request(Method::GET, &api(&["tokens"])))
            .await
    }

    pub async fn create_token(&self, body: &CreateToken) -> Result<CreatedToken, ClientError> {
        self.send(self.request(Method::POST, &api(&["tokens"])).json(body))
            .await
    }

    pub async fn revoke_token(&self, id: i64) -> Result<(), ClientError> {
        self.send_raw(self.request(Method::DELETE, &api(&["tokens", &id.to_string()])))
            .await
            .map(|_| ())
    }

    pub async fn users(&self) -> Result<UserList, ClientError> {
        self.send(self.request(Method::GET, &api(&["users"]))).await
    }

    pub async fn create_user(&self, body: &CreateUser) -> Result<CreatedUser, ClientError> {
        self.send(self.request(Method::POST, &api(&["users"])).json(body))
            .await
    }

    /// Removes a user; the projects they created pass to `transfer_to` (the caller when none).
    pub async fn remove_user(
        &self,
        name: &str,
        transfer_to: Option<&str>,
    ) -> Result<(), ClientError> {
        let path = api(&["users", name]);
        let path = match transfer_to {
            Some(to) => query(path, &[("transfer_to", to)]),
            None => path,
        };
        self.send_raw(self.request(Method::DELETE, &path))
            .await
            .map(|_| ())
    }

    pub async fn members(&self, project: &str) -> Result<MemberList, ClientError> {
        self.send(self.request(Method::GET, &api(&["projects", project, "members"])))
            .await
    }

    /// Adds a member, or changes their role.
    pub async fn add_member(&self, project: &str, body: &AddMember) -> Result<Member, ClientError> {
        self.send(
            self.request(Method::POST, &api(&["projects", project, "members"]))
                .json(body),
        )
        .await
    }

    pub async fn remove_member(&self, project: &str, user: &str) -> Result<(), ClientError> {
        self.send_raw(self.request(
            Method::DELETE,
            &api(&["projects", project, "members", user]),
        ))
        .await
        .map(|_| ())
    }

    /// A project's variables, with the values the caller may read.
    pub async fn env(&self, project: &str) -> Result<EnvList, ClientError> {
        self.send(self.request(Method::GET, &api(&["projects", project, "env"])))
            .await
    }

    /// Sets a variable; answers what was written, one entry per target.
    pub async fn put_env(
        &self,
        project: &str,
        key: &str,
        body: &PutEnv,
    ) -> Result<EnvList, ClientError> {
        self.send(
            self.request(Method::PUT, &api(&["projects", project, "env", key]))
                .json(body),
        )
        .await
    }

    pub async fn remove_env(
        &self,
        project: &str,
        key: &str,
        target: EnvTargets,
    ) -> Result<(), ClientError> {
        let path = api(&["projects", project, "env", key]);
        let path = query(path, &[("target", target.as_str())]);
        self.send_raw(self.request(Method::DELETE, &path))
            .await
            .map(|_| ())
    }

    pub async fn holds(&self) -> Result<NameHoldList, ClientError> {
        self.send(self.request(Method::GET, &api(&["holds"]))).await
    }

    /// Frees a held name or domain for anyone.
    pub async fn release_hold(&self, name: &str) -> Result<(), ClientError> {
        self.send_raw(self.request(Method::DELETE, &api(&["holds", name])))
            .await
            .map(|_| ())
    }
}
