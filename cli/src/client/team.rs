//! The endpoints of people and access: who a token is, tokens, users, project members,
//! environment variables, and names held after a project is deleted.

use reqwest::Method;
use scalemesh_core::access::EnvTargets;
use scalemesh_core::wire::{
    AddMember, CreateToken, CreateUser, CreatedToken, CreatedUser, EnvList, Me, Member, MemberList,
    NameHoldList, PutEnv, TokenList, UserList,
};

use super::{Client, ClientError, segment};

impl Client {
    pub async fn me(&self) -> Result<Me, ClientError> {
        self.send(self.request(Method::GET, "/api/v1/me")).await
    }

    pub async fn tokens(&self) -> Result<TokenList, ClientError> {
        self.send(self.request(Method::GET, "/api/v1/tokens")).await
    }

    pub async fn create_token(&self, body: &CreateToken) -> Result<CreatedToken, ClientError> {
        self.send(self.request(Method::POST, "/api/v1/tokens").json(body))
            .await
    }

    pub async fn revoke_token(&self, id: i64) -> Result<(), ClientError> {
        self.send_raw(self.request(Method::DELETE, &format!("/api/v1/tokens/{id}")))
            .await
            .map(|_| ())
    }

    pub async fn users(&self) -> Result<UserList, ClientError> {
        self.send(self.request(Method::GET, "/api/v1/users")).await
    }

    pub async fn create_user(&self, body: &CreateUser) -> Result<CreatedUser, ClientError> {
        self.send(self.request(Method::POST, "/api/v1/users").json(body))
            .await
    }

    /// Removes a user; the projects they created pass to `transfer_to` (the caller when none).
    pub async fn remove_user(
        &self,
        name: &str,
        transfer_to: Option<&str>,
    ) -> Result<(), ClientError> {
        let query = transfer_to
            .map(|to| format!("?transfer_to={}", segment(to)))
            .unwrap_or_default();
        self.send_raw(self.request(
            Method::DELETE,
            &format!("/api/v1/users/{}{query}", segment(name)),
        ))
        .await
        .map(|_| ())
    }

    pub async fn members(&self, project: &str) -> Result<MemberList, ClientError> {
        self.send(self.request(
            Method::GET,
            &format!("/api/v1/projects/{}/members", segment(project)),
        ))
        .await
    }

    /// Adds a member, or changes their role.
    pub async fn add_member(&self, project: &str, body: &AddMember) -> Result<Member, ClientError> {
        self.send(
            self.request(
                Method::POST,
                &format!("/api/v1/projects/{}/members", segment(project)),
            )
            .json(body),
        )
        .await
    }

    pub async fn remove_member(&self, project: &str, user: &str) -> Result<(), ClientError> {
        self.send_raw(self.request(
            Method::DELETE,
            &format!(
                "/api/v1/projects/{}/members/{}",
                segment(project),
                segment(user)
            ),
        ))
        .await
        .map(|_| ())
    }

    /// A project's variables, with the values the caller may read.
    pub async fn env(&self, project: &str) -> Result<EnvList, ClientError> {
        self.send(self.request(
            Method::GET,
            &format!("/api/v1/projects/{}/env", segment(project)),
        ))
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
            self.request(
                Method::PUT,
                &format!("/api/v1/projects/{}/env/{}", segment(project), segment(key)),
            )
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
        self.send_raw(self.request(
            Method::DELETE,
            &format!(
                "/api/v1/projects/{}/env/{}?target={}",
                segment(project),
                segment(key),
                target.as_str()
            ),
        ))
        .await
        .map(|_| ())
    }

    pub async fn holds(&self) -> Result<NameHoldList, ClientError> {
        self.send(self.request(Method::GET, "/api/v1/holds")).await
    }

    /// Frees a held name or domain for anyone.
    pub async fn release_hold(&self, name: &str) -> Result<(), ClientError> {
        self.send_raw(self.request(Method::DELETE, &format!("/api/v1/holds/{}", segment(name))))
            .await
            .map(|_| ())
    }
}
