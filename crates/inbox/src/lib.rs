//! The inbox: messages Huoban leaves for a customer (balance alerts, security questions,
//! milestones, campaign news), an unread count, marking read, and a live stream (SSE) so
//! open pages show a message the moment it lands. Other capabilities deliver through
//! [`InboxService::deliver`]; a `dedupe_key` makes a delivery idempotent, so a retried
//! event never leaves the same message twice.
//!
//! Live push reaches pages connected to this node. With several nodes behind a load
//! balancer, a page connected elsewhere sees the message on its next list or reconnect.

pub mod routes;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::http::StatusCode;
use huoban_kit::{
    ApiError, Db, DbError, MigrationSpec, Page, SharedClock,
    clock::{from_micros, to_micros},
    db::{Bind, insert_rows_returning},
    ids::new_id,
};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use uuid::Uuid;

pub const MIGRATIONS: &[MigrationSpec] = &[MigrationSpec {
    version: 2026112220,
    name: "inbox",
    sqlite: include_str!("../migrations/sqlite/2026112220_inbox.sql"),
    postgres: include_str!("../migrations/postgres/2026112220_inbox.sql"),
}];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Message {
    pub id: Uuid,
    /// What the message is about, e.g. `balance_alert`, `security`, `milestone`.
    pub kind: String,
    pub title: String,
    pub body: String,
    /// A page or deep link the message leads to.
    pub link: Option<String>,
    /// Details for the page (amounts, ids); shape depends on `kind`.
    pub data: serde_json::Value,
    pub created_at: String,
    pub read: bool,
}

/// A message to deliver.
#[derive(Debug, Clone, Default)]
pub struct NewMessage {
    pub customer_id: Uuid,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub link: Option<String>,
    pub data: serde_json::Value,
    /// Delivering twice with the same key leaves one message.
    pub dedupe_key: Option<String>,
}

/// Messages stored in a transaction that has not been pushed yet; see
/// [`InboxService::deliver_in`].
#[derive(Debug, Default)]
#[must_use = "push the messages once the transaction has committed"]
pub struct Undelivered(Vec<(Uuid, Message)>);

impl Undelivered {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Debug, sqlx::FromRow)]
struct Row {
    id: String,
    kind: String,
    title: String,
    body: String,
    link: Option<String>,
    data: String,
    created_at: i64,
    read_at: Option<i64>,
}

impl From<Row> for Message {
    fn from(r: Row) -> Self {
        Message {
            id: Uuid::parse_str(&r.id).unwrap_or_default(),
            kind: r.kind,
            title: r.title,
            body: r.body,
            link: r.link,
            data: serde_json::from_str(&r.data).unwrap_or(serde_json::Value::Null),
            created_at: from_micros(r.created_at).to_string(),
            read: r.read_at.is_some(),
        }
    }
}

/// Per-customer live channels for open pages. A customer has a channel only while a page
/// listens: the last [`Subscription`] to end takes the channel with it, so customers who
/// once opened the app do not each keep a buffer here for the life of the process.
#[derive(Debug, Clone, Default)]
pub struct Hub(Arc<Mutex<HashMap<Uuid, broadcast::Sender<Message>>>>);

impl Hub {
    pub fn subscribe(&self, customer: Uuid) -> Subscription {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let receiver = map
            .entry(customer)
            .or_insert_with(|| broadcast::channel(64).0)
            .subscribe();
        Subscription {
            hub: self.clone(),
            customer,
            receiver,
        }
    }

    fn publish(&self, customer: Uuid, message: &Message) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = map.get(&customer)
            && tx.send(message.clone()).is_err()
        {
            // Nobody listens any more.
            map.remove(&customer);
        }
    }
}

/// One open page's feed of a customer's new messages.
#[derive(Debug)]
pub struct Subscription {
    hub: Hub,
    customer: Uuid,
    receiver: broadcast::Receiver<Message>,
}

impl Subscription {
    pub async fn recv(&mut self) -> Result<Message, broadcast::error::RecvError> {
        self.receiver.recv().await
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut map = self.hub.0.lock().unwrap_or_else(|e| e.into_inner());
        // Our receiver is still alive here (it drops after this), so the last page counts
        // one. While it lives the channel cannot have been replaced: `publish` only removes
        // a channel nobody listens to.
        if map.get(&self.customer).is_some_and(|tx| tx.receiver_count() <= 1) {
            map.remove(&self.customer);
        }
    }
}

#[derive(Debug, Clone)]
pub struct InboxService {
    db: Db,
    clock: SharedClock,
    hub: Hub,
}

const COLUMNS: &str = "id, kind, title, body, link, data, created_at, read_at";

impl InboxService {
    pub fn new(db: Db, clock: SharedClock) -> Self {
        Self {
            db,
            clock,
            hub: Hub::default(),
        }
    }

    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Stores a message and pushes it to the customer's open pages. Returns `None` when a
    /// message with the same dedupe key was delivered before.
    pub async fn deliver(&self, new: NewMessage) -> Result<Option<Message>, DbError> {
        let stored = {
            let mut conn = self.db.writer().acquire().await?;
            self.deliver_in(&mut conn, vec![new]).await?
        };
        let message = stored.0.first().map(|(_, m)| m.clone());
        self.push(stored);
        Ok(message)
    }

    /// Stores messages inside the caller's open transaction, so that they exist exactly
    /// when the caller's own rows do (a rule's message and its effect commit together).
    /// Messages whose dedupe key was delivered before are skipped. Nothing is pushed to
    /// open pages yet: pass the answer to [`InboxService::push`] once the transaction has
    /// committed — a rolled-back message was never there.
    pub async fn deliver_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        messages: Vec<NewMessage>,
    ) -> Result<Undelivered, DbError> {
        if messages.is_empty() {
            return Ok(Undelivered::default());
        }
        let now = to_micros(self.clock.now());
        let mut rows = Vec::with_capacity(messages.len());
        let mut pending = HashMap::with_capacity(messages.len());
        for new in messages {
            let id = new_id().to_string();
            rows.push(vec![
                Bind::Text(id.clone()),
                Bind::Text(new.customer_id.to_string()),
                Bind::Text(new.kind.clone()),
                Bind::Text(new.title.clone()),
                Bind::Text(new.body.clone()),
                Bind::OptText(new.link.clone()),
                Bind::Text(new.data.to_string()),
                Bind::OptText(new.dedupe_key.clone()),
                Bind::Int(now),
            ]);
            let message = Message::from(Row {
                id: id.clone(),
                kind: new.kind,
                title: new.title,
                body: new.body,
                link: new.link,
                data: new.data.to_string(),
                created_at: now,
                read_at: None,
            });
            pending.insert(id, (new.customer_id, message));
        }
        let inserted = insert_rows_returning(
            conn,
            self.db.backend(),
            "inbox_messages (id, customer_id, kind, title, body, link, data, dedupe_key, created_at)",
            "ON CONFLICT (customer_id, dedupe_key) DO NOTHING RETURNING id",
            &rows,
        )
        .await?;
        Ok(Undelivered(
            inserted.into_iter().filter_map(|id| pending.remove(&id)).collect(),
        ))
    }

    /// Pushes messages stored by [`InboxService::deliver_in`] to open pages, after their
    /// transaction committed; returns how many there were.
    pub fn push(&self, committed: Undelivered) -> usize {
        let n = committed.0.len();
        for (customer, message) in committed.0 {
            self.hub.publish(customer, &message);
        }
        n
    }

    /// Newest first.
    pub async fn list(
        &self,
        customer: Uuid,
        unread_only: bool,
        before: Option<String>,
        limit: u32,
    ) -> Result<Page<Message>, ApiError> {
        let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM inbox_messages WHERE customer_id = $1 AND ($2 = 0 OR read_at IS NULL) \
             AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4"
        )))
        .bind(customer.to_string())
        .bind(i64::from(unread_only))
        .bind(before)
        .bind(i64::from(limit) + 1)
        .fetch_all(self.db.reader())
        .await
        .map_err(DbError::from)?;
        let messages = rows.into_iter().map(Message::from).collect();
        Ok(Page::from_rows(messages, limit, |m: &Message| m.id.to_string()))
    }

    pub async fn unread_count(&self, customer: Uuid) -> Result<i64, DbError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM inbox_messages WHERE customer_id = $1 AND read_at IS NULL")
                .bind(customer.to_string())
                .fetch_one(self.db.reader())
                .await?,
        )
    }

    /// Marks the given messages (or all) read; messages of other customers are untouched
    /// and reported as unknown.
    pub async fn mark_read(&self, customer: Uuid, ids: Option<&[Uuid]>) -> Result<u64, ApiError> {
        let now = to_micros(self.clock.now());
        let Some(ids) = ids else {
            return Ok(sqlx::query(
                "UPDATE inbox_messages SET read_at = $1 WHERE customer_id = $2 AND read_at IS NULL",
            )
            .bind(now)
            .bind(customer.to_string())
            .execute(self.db.writer())
            .await
            .map_err(DbError::from)?
            .rows_affected());
        };
        if ids.is_empty() || ids.len() > 500 {
            return Err(ApiError::invalid_field(
                "message_ids",
                "give 1 to 500 message ids, or all: true",
            ));
        }
        let mut tx = self.db.begin().await?;
        let mut marked = 0;
        for id in ids {
            let owned: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM inbox_messages WHERE id = $1 AND customer_id = $2")
                    .bind(id.to_string())
                    .bind(customer.to_string())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(DbError::from)?;
            if owned.is_none() {
                // Nothing of this request is applied.
                return Err(
                    ApiError::new(StatusCode::NOT_FOUND, "unknown-message", "No such message")
                        .detail(format!("Message {id} is not in your inbox."))
                        .with("message_id", id.to_string()),
                );
            }
            marked += sqlx::query(
                "UPDATE inbox_messages SET read_at = $1 WHERE id = $2 AND customer_id = $3 AND read_at IS NULL",
            )
            .bind(now)
            .bind(id.to_string())
            .bind(customer.to_string())
            .execute(&mut *tx)
            .await
            .map_err(DbError::from)?
            .rows_affected();
        }
        tx.commit().await.map_err(DbError::from)?;
        Ok(marked)
    }
}

impl InboxService {
    /// Deletes the messages left under this dedupe key, in whichever inbox: a message
    /// that names a customer who asked to be erased (a goal invitation carries its owner's
    /// name to the partner). Returns how many were deleted.
    pub async fn retract(&self, dedupe_key: &str) -> Result<u64, DbError> {
        Ok(sqlx::query("DELETE FROM inbox_messages WHERE dedupe_key = $1")
            .bind(dedupe_key)
            .execute(self.db.writer())
            .await?
            .rows_affected())
    }
}

/// Every message left for the customer, for the data export; erasure deletes them (their
/// texts name amounts, goals and places).
impl huoban_kit::personal::PersonalData for InboxService {
    fn section(&self) -> &'static str {
        "inbox"
    }

    fn export<'a>(
        &'a self,
        customer: Uuid,
    ) -> huoban_kit::personal::BoxFuture<'a, Result<serde_json::Value, ApiError>> {
        Box::pin(async move {
            let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM inbox_messages WHERE customer_id = $1 ORDER BY id"
            )))
            .bind(customer.to_string())
            .fetch_all(self.db.reader())
            .await
            .map_err(DbError::from)?;
            let messages: Vec<Message> = rows.into_iter().map(Message::from).collect();
            Ok(serde_json::json!({ "messages": messages }))
        })
    }

    fn erase<'a>(&'a self, customer: Uuid) -> huoban_kit::personal::BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(async move {
            sqlx::query("DELETE FROM inbox_messages WHERE customer_id = $1")
                .bind(customer.to_string())
                .execute(self.db.writer())
                .await
                .map_err(DbError::from)?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(title: &str) -> Message {
        Message {
            id: new_id(),
            kind: "test".into(),
            title: title.into(),
            body: String::new(),
            link: None,
            data: serde_json::Value::Null,
            created_at: String::new(),
            read: false,
        }
    }

    fn channels(hub: &Hub) -> usize {
        hub.0.lock().map(|m| m.len()).unwrap_or_default()
    }

    #[test]
    fn the_hub_reaches_only_the_customers_listeners() {
        let hub = Hub::default();
        let (alice, bob) = (new_id(), new_id());
        let mut alices = hub.subscribe(alice);
        let mut bobs = hub.subscribe(bob);
        hub.publish(alice, &message("for alice"));
        assert_eq!(
            alices.receiver.try_recv().map(|m| m.title).ok().as_deref(),
            Some("for alice")
        );
        assert!(bobs.receiver.try_recv().is_err(), "bob hears nothing of alice's");
        // Publishing to someone with no open page keeps nothing.
        hub.publish(new_id(), &message("nobody listens"));
        assert_eq!(channels(&hub), 2);
    }

    #[test]
    fn the_hub_drops_a_channel_when_its_last_listener_goes() {
        let hub = Hub::default();
        let alice = new_id();
        let first = hub.subscribe(alice);
        let second = hub.subscribe(alice);
        drop(first);
        assert_eq!(channels(&hub), 1, "another page still listens");
        drop(second);
        assert_eq!(channels(&hub), 0, "no page listens, no message was ever sent");
        // A later page subscribes afresh and hears new messages.
        let mut again = hub.subscribe(alice);
        hub.publish(alice, &message("welcome back"));
        assert_eq!(
            again.receiver.try_recv().map(|m| m.title).ok().as_deref(),
            Some("welcome back")
        );
    }
}
