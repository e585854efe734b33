//! The JSON of outgoing notifications: subscriptions to a project's deployment events, and the
//! log of their deliveries.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The events a subscription may name; all of them when it names none.
pub const NOTIFY_EVENTS: [&str; 4] = ["created", "ready", "failed", "promoted"];

/// `POST /api/v1/projects/{name}/notifications`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddSubscription {
    pub url: String,
    /// Some of [`NOTIFY_EVENTS`]; all when left out.
    #[serde(default)]
    pub events: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: i64,
    pub url: String,
    pub events: Vec<String>,
    /// Only in the answer to adding it: the secret deliveries are signed with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionList {
    pub subscriptions: Vec<Subscription>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationDelivery {
    pub id: i64,
    pub subscription: i64,
    pub url: String,
    /// `deployment.ready` and so on.
    pub event: String,
    pub deployment: Option<String>,
    /// `pending` (tried again later), `delivered` or `failed` (out of attempts).
    pub state: String,
    pub attempts: u32,
    /// The receiver's last answer, or why it could not be reached.
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationLog {
    pub deliveries: Vec<NotificationDelivery>,
}
