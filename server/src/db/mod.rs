//! State in SQLite: users, their tokens and their roles on projects, projects and their sealed
//! variables, deployments and their logs, names held after a project is deleted. `store.rs` holds
//! the connections; each other file one kind of row.

mod aliases;
mod blobs;
mod checkpoint;
mod deploy_hooks;
mod deployment_row;
mod deployments;
mod env;
mod error;
mod git;
mod holds;
mod idempotency;
mod logs;
mod notify;
mod projects;
mod schema;
mod store;
mod tokens;
mod users;

pub use aliases::{AliasAction, DomainRow, DomainTaken};
pub use blobs::BlobRow;
pub use deploy_hooks::{DeployHookRow, MAX_DEPLOY_HOOKS};
pub use deployment_row::{DeploymentRow, PREBUILT};
pub use deployments::{NewDeployment, Readied, Transition, TransitionOutcome};
pub use env::{EnvRow, MAX_KEYS as MAX_ENV_KEYS, NewEnv, TooManyKeys};
pub use error::DbError;
pub use git::{NewConnection, StatusRow};
pub use idempotency::Claim;
pub use logs::AppendOutcome;
pub use notify::{MAX_SUBSCRIPTIONS, NotifyDeliveryRow, SubscriptionRow};
pub use projects::{Creation, NewProject, ProjectRow};
pub use store::{SqliteStore, to_ms};
pub use tokens::{NewToken, TokenRow};
pub use users::{MemberChange, MemberRow, Removal, User};
