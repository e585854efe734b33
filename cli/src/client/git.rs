//! The endpoints of a project connected to its repository, and of its deploy hooks.

use reqwest::Method;
use scalemesh_core::wire::{
    ConnectGit, CreateDeployHook, DeployHook, DeployHookList, GitConnection,
};

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

    pub async fn create_deploy_hook(
        &self,
        project: &str,
        body: &CreateDeployHook,
    ) -> Result<DeployHook, ClientError> {
        self.send(
            self.request(Method::POST, &api(&["projects", project, "hooks"]))
                .json(body),
        )
        .await
    }

    pub async fn deploy_hooks(&self, project: &str) -> Result<DeployHookList, ClientError> {
        self.send(self.request(Method::GET, &api(&["projects", project, "hooks"])))
            .await
    }

    pub async fn remove_deploy_hook(&self, project: &str, id: i64) -> Result<(), ClientError> {
        self.send_raw(self.request(
            Method::DELETE,
            &api(&["projects", project, "hooks", &id.to_string()]),
        ))
        .await
        .map(|_| ())
    }
}
