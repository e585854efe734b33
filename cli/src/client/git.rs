//! The endpoints of a project connected to its repository.

use reqwest::Method;
use scalemesh_core::wire::{ConnectGit, GitConnection};

use super::{Client, ClientError, api};

impl Client {
    pub async fn connect_git(
        &self,
        project: &str,
        body: &ConnectGit,
    ) -> Result<GitConnection, ClientError> {
        self.send(
            self.request(Method::PUT, &api(&["projects", project, "git"]))
                .json(body),
        )
        .await
    }

    pub async fn git_connection(&self, project: &str) -> Result<GitConnection, ClientError> {
        self.send(self.request(Method::GET, &api(&["projects", project, "git"])))
            .await
    }

    pub async fn disconnect_git(&self, project: &str) -> Result<(), ClientError> {
        self.send_raw(self.request(Method::DELETE, &api(&["projects", project, "git"])))
            .await
            .map(|_| ())
    }
}
