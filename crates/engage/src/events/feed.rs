//! The event feed: every stored behaviour event — client events, ledger postings and the
//! server's own (`check_in`, `questionnaire_completed`, …) — in commit order, for the
//! capabilities that react to events.
//!
//! Each consumer has a durable cursor, the last `seq` whose effects it committed
//! (`event_cursors`). A consumer reads a batch after its cursor ([`EventFeed::read`]),
//! applies its effects in one transaction and moves the cursor in that same transaction
//! ([`EventFeed::advance`], a conditional update), so an event's effects are committed
//! exactly once even when several nodes consume: the node whose update finds the cursor
//! moved rolls back and reads again.
//!
//! Commit order equals `seq` order: SQLite has one writer, and on PostgreSQL every
//! event-writing transaction takes one advisory lock before inserting (see
//! [`super::store::EventsStore::insert`]). So a reader never passes over a row that commits
//! later with a lower `seq`.
//!
//! Writers call [`announce`] after committing so that consumers on this node wake at once;
//! consumers also poll ([`EventFeed::wait`]) to hear events that other nodes stored.

use std::{sync::LazyLock, time::Duration};

use huoban_kit::{Db, DbError, clock::from_micros, clock::to_micros};
use jiff::Timestamp;
use serde_json::Value;
use sqlx::AnyConnection;
use tokio::sync::Notify;
use uuid::Uuid;

static WAKE: LazyLock<Notify> = LazyLock::new(Notify::new);

/// Wakes this node's consumers: events were committed.
pub fn announce() {
    WAKE.notify_waiters();
}

/// An event as consumers see it.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedEvent {
    pub seq: i64,
    pub customer: Uuid,
    pub event_id: String,
    pub kind: String,
    pub channel: String,
    pub at: Timestamp,
    pub received_at: Timestamp,
    /// A JSON object (`{}` if the stored text was not one).
    pub properties: Value,
}

#[derive(sqlx::FromRow)]
struct Row {
    seq: i64,
    customer_id: String,
    event_id: String,
    #[sqlx(rename = "type")]
    kind: String,
    channel: String,
    at: i64,
    received_at: i64,
    properties: String,
}

/// One consumer's view of the feed; cheap to clone.
#[derive(Debug, Clone)]
pub struct EventFeed {
    db: Db,
    consumer: String,
}

impl EventFeed {
    /// The feed for `consumer`, a stable name (`rules`, `invites`, …).
    pub fn new(db: Db, consumer: impl Into<String>) -> Self {
        Self {
            db,
            consumer: consumer.into(),
        }
    }

    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// The consumer's cursor; a new consumer starts at 0 (every event).
    pub async fn position(&self) -> Result<i64, DbError> {
        let found: Option<(i64,)> = sqlx::query_as("SELECT position FROM event_cursors WHERE consumer = $1")
            .bind(&self.consumer)
            .fetch_optional(self.db.reader())
            .await?;
        Ok(found.map_or(0, |(p,)| p))
    }

    /// Moves a new consumer's cursor to the current end of the feed, so it reacts only to
    /// events from now on. Does nothing for a consumer that already has a cursor.
    pub async fn start_at_end(&self, now: Timestamp) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO event_cursors (consumer, position, updated_at) \
             SELECT $1, COALESCE(MAX(seq), 0), $2 FROM behaviour_events WHERE true \
             ON CONFLICT (consumer) DO NOTHING",
        )
        .bind(&self.consumer)
        .bind(to_micros(now))
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    /// Up to `limit` events after `after`, in commit order.
    pub async fn read(&self, after: i64, limit: u32) -> Result<Vec<FeedEvent>, DbError> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT seq, customer_id, event_id, type, channel, at, received_at, properties \
             FROM behaviour_events WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(self.db.reader())
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                // Customer ids are written by the server from a parsed UUID.
                let customer = Uuid::parse_str(&r.customer_id).ok()?;
                let properties = serde_json::from_str::<Value>(&r.properties)
                    .ok()
                    .filter(Value::is_object)
                    .unwrap_or_else(|| Value::Object(Default::default()));
                Some(FeedEvent {
                    seq: r.seq,
                    customer,
                    event_id: r.event_id,
                    kind: r.kind,
                    channel: r.channel,
                    at: from_micros(r.at),
                    received_at: from_micros(r.received_at),
                    properties,
                })
            })
            .collect())
    }

    /// Moves the cursor from `from` to `to` inside the caller's transaction; false (and
    /// nothing written) when the cursor is no longer at `from` — another node consumed
    /// those events first, and the caller must roll back.
    ///
    /// Call it first in the transaction: the conditional update takes the cursor row's
    /// lock, so a second consumer of the same cursor waits for the first to finish and then
    /// sees the cursor moved, rather than applying the same events beside it.
    pub async fn advance(&self, conn: &mut AnyConnection, from: i64, to: i64, now: Timestamp) -> Result<bool, DbError> {
        let now = to_micros(now);
        if from == 0 {
            // A consumer's first move creates its row (a conflict means someone else did).
            let inserted = sqlx::query(
                "INSERT INTO event_cursors (consumer, position, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (consumer) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at \
                 WHERE event_cursors.position = 0",
            )
            .bind(&self.consumer)
            .bind(to)
            .bind(now)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            return Ok(inserted == 1);
        }
        let updated = sqlx::query(
            "UPDATE event_cursors SET position = $1, updated_at = $2 WHERE consumer = $3 AND position = $4",
        )
        .bind(to)
        .bind(now)
        .bind(&self.consumer)
        .bind(from)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        Ok(updated == 1)
    }

    /// Waits until this node announces new events or `poll` passes.
    pub async fn wait(&self, poll: Duration) {
        let _ = tokio::time::timeout(poll, WAKE.notified()).await;
    }
}
