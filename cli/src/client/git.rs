//! The endpoints of a project connected to its repository, of its deploy hooks and of its
//! notification URLs.

use reqwest::Method;
use scalemesh_core::wire::{
    AddSubscription, ConnectGit, CreateDeployHook, DeployHook, DeployHookList, GitConnection,
    NotificationLog, Subscription, SubscriptionList,
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

    pub async fn subscribe(
        &self,
        project: &str,
        body: &AddSubscription,
    ) -> Result<Subscription, ClientError> {
        self.send(
            self.request(Method::POST, &api(&["projects", project, "notifications"]))
                .json(body),
        )
        .await
    }

    pub async fn subscriptions(&self, project: &str) -> Result<SubscriptionList, ClientError> {
        self.send(self.request(Method::GET, &api(&["projects", project, "notifications"])))
            .await
    }

    pub async fn unsubscribe(&self, project: &str, id: i64) -> Result<(), ClientError> {
        self.send_raw(self.request(
            Method::DELETE,
            &api(&["projects", project, "notifications", &id.to_string()]),
        ))
        .await
        .map(|_| ())
    }

    pub async fn notification_log(&self, project: &str) -> Result<NotificationLog, ClientError> {
        self.send(self.request(
            Method::GET,
            &api(&["projects", project, "notifications", "log"]),
        ))
        .await
    }
}
