//! Outgoing notifications: a project's subscriptions (URL, events, sealed secret) and their
//! deliveries, each pending until it succeeds or runs out of attempts.

use rusqlite::{OptionalExtension, params};
use time::OffsetDateTime;

use super::error::DbResult;
use super::store::{SqliteStore, from_ms, now_ms};

/// Subscriptions one project may have.
pub const MAX_SUBSCRIPTIONS: i64 = 20;
/// Deliveries kept per subscription once they ended: the newest.
const ENDED_KEPT: i64 = 200;

#[derive(Debug, Clone)]
pub struct SubscriptionRow {
    pub id: i64,
    pub project_id: i64,
    pub url: String,
    /// Comma-separated: `created,ready,failed,promoted`.
    pub events: String,
    pub secret: Vec<u8>,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub struct NotifyDeliveryRow {
    pub id: i64,
    pub subscription_id: i64,
    pub url: String,
    pub event: String,
    pub deployment: Option<String>,
    pub body: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub attempts: u32,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: OffsetDateTime,
}

fn subscription(r: &rusqlite::Row<'_>) -> rusqlite::Result<SubscriptionRow> {
    Ok(SubscriptionRow {
        id: r.get(0)?,
        project_id: r.get(1)?,
        url: r.get(2)?,
        events: r.get(3)?,
        secret: r.get(4)?,
        created_at: from_ms(r.get(5)?),
    })
}

const DELIVERY: &str = "SELECT d.id, d.subscription_id, s.url, d.event, d.deployment_id, d.body,
    d.state, d.attempts, d.last_status, d.last_error, d.created_at
    FROM notify_deliveries d JOIN notify_subscriptions s ON s.id = d.subscription_id";

fn delivery(r: &rusqlite::Row<'_>) -> rusqlite::Result<NotifyDeliveryRow> {
    Ok(NotifyDeliveryRow {
        id: r.get(0)?,
        subscription_id: r.get(1)?,
        url: r.get(2)?,
        event: r.get(3)?,
        deployment: r.get(4)?,
        body: r.get(5)?,
        state: r.get(6)?,
        attempts: r.get(7)?,
        last_status: r.get(8)?,
        last_error: r.get(9)?,
        created_at: from_ms(r.get(10)?),
    })
}

impl SqliteStore {
    /// Adds a subscription; `None` when the project has as many as it may.
    pub async fn subscribe(
        &self,
        project_id: i64,
        url: &str,
        events: &str,
        secret: Vec<u8>,
    ) -> DbResult<Option<SubscriptionRow>> {
        let (url, events) = (url.to_owned(), events.to_owned());
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let count: i64 = tx.query_row(
                "SELECT COUNT(*) FROM notify_subscriptions WHERE project_id = ?1",
                params![project_id],
                |r| r.get(0),
            )?;
            if count >= MAX_SUBSCRIPTIONS {
                return Ok(None);
            }
            tx.execute(
                "INSERT INTO notify_subscriptions (project_id, url, events, secret, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![project_id, url, events, secret, now_ms()],
            )?;
            let id = tx.last_insert_rowid();
            let row = tx.query_row(
                "SELECT id, project_id, url, events, secret, created_at FROM notify_subscriptions WHERE id = ?1",
                params![id],
                subscription,
            )?;
            tx.commit()?;
            Ok(Some(row))
        })
        .await
    }

    pub async fn subscriptions_of(&self, project_id: i64) -> DbResult<Vec<SubscriptionRow>> {
        self.read(move |conn| {
            let mut q = conn.prepare(
                "SELECT id, project_id, url, events, secret, created_at FROM notify_subscriptions
                 WHERE project_id = ?1 ORDER BY id",
            )?;
            let rows = q.query_map(params![project_id], subscription)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    pub async fn subscription(&self, id: i64) -> DbResult<Option<SubscriptionRow>> {
        self.read(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT id, project_id, url, events, secret, created_at FROM notify_subscriptions WHERE id = ?1",
                    params![id],
                    subscription,
                )
                .optional()?)
        })
        .await
    }

    /// Removes subscription `id` of `project_id` and its deliveries; whether it existed.
    pub async fn unsubscribe(&self, project_id: i64, id: i64) -> DbResult<bool> {
        self.call(move |conn| {
            Ok(conn.execute(
                "DELETE FROM notify_subscriptions WHERE id = ?1 AND project_id = ?2",
                params![id, project_id],
            )? > 0)
        })
        .await
    }

    /// Queues `body` for every subscription of `project_id` to `event`; how many.
    pub async fn queue_notifications(
        &self,
        project_id: i64,
        event: &str,
        deployment: &str,
        body: String,
    ) -> DbResult<usize> {
        let (event, deployment) = (event.to_owned(), deployment.to_owned());
        self.call(move |conn| {
            let tx = conn.transaction()?;
            let now = now_ms();
            let queued = tx.execute(
                "INSERT INTO notify_deliveries (subscription_id, event, deployment_id, body, state, next_at, created_at)
                 SELECT id, ?2, ?3, ?4, 'pending', ?5, ?5 FROM notify_subscriptions
                 WHERE project_id = ?1 AND (',' || events || ',') LIKE ('%,' || ?2 || ',%')",
                params![project_id, event, deployment, body, now],
            )?;
            tx.commit()?;
            Ok(queued)
        })
        .await
    }

    /// Pending deliveries due by now, oldest first; and when the next one not yet due is.
    pub async fn due_notifications(
        &self,
        limit: u32,
    ) -> DbResult<(Vec<NotifyDeliveryRow>, Option<OffsetDateTime>)> {
        self.read(move |conn| {
            let now = now_ms();
            let mut q = conn.prepare(&format!(
                "{DELIVERY} WHERE d.state = 'pending' AND d.next_at <= ?1 ORDER BY d.next_at, d.id LIMIT ?2"
            ))?;
            let due = q
                .query_map(params![now, limit], delivery)?
                .collect::<Result<Vec<_>, _>>()?;
            let next: Option<i64> = conn.query_row(
                "SELECT MIN(next_at) FROM notify_deliveries WHERE state = 'pending' AND next_at > ?1",
                params![now],
                |r| r.get(0),
            )?;
            Ok((due, next.map(from_ms)))
        })
        .await
    }

    /// What one attempt of delivery `id` came to: `state` after it, the answer's status or the
    /// error, and, while it stays pending, when to try again (milliseconds from now).
    pub async fn notification_attempted(
        &self,
        id: i64,
        state: &str,
        status: Option<u16>,
        error: Option<String>,
        retry_in_ms: i64,
    ) -> DbResult<()> {
        let state = state.to_owned();
        self.call(move |conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "UPDATE notify_deliveries SET state = ?2, attempts = attempts + 1, last_status = ?3,
                    last_error = ?4, next_at = ?5 WHERE id = ?1",
                params![id, state, status, error, now_ms() + retry_in_ms],
            )?;
            tx.execute(
                "DELETE FROM notify_deliveries WHERE state != 'pending' AND subscription_id =
                    (SELECT subscription_id FROM notify_deliveries WHERE id = ?1)
                 AND id NOT IN (SELECT id FROM notify_deliveries WHERE state != 'pending' AND
                    subscription_id = (SELECT subscription_id FROM notify_deliveries WHERE id = ?1)
                    ORDER BY id DESC LIMIT ?2)",
                params![id, ENDED_KEPT],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// The newest deliveries of `project_id`'s subscriptions, newest first.
    pub async fn notification_log(
        &self,
        project_id: i64,
        limit: u32,
    ) -> DbResult<Vec<NotifyDeliveryRow>> {
        self.read(move |conn| {
            let mut q = conn.prepare(&format!(
                "{DELIVERY} WHERE s.project_id = ?1 ORDER BY d.id DESC LIMIT ?2"
            ))?;
            let rows = q.query_map(params![project_id, limit], delivery)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }
}
