//! The SQL of behaviour events: `behaviour_events`, one row per (customer, event id).
//!
//! A batch is written with multi-row `INSERT … ON CONFLICT DO NOTHING RETURNING event_id`
//! in chunks of [`CHUNK_ROWS`], inside the caller's transaction: the ids returned are the
//! rows inserted, every other one was already there. SQLite statements use `?`
//! placeholders (sqlx-sqlite resolves numbered `$N` ones in quadratic time); PostgreSQL
//! needs `$N`.

use std::collections::HashSet;

use huoban_kit::{Backend, Db, DbError, clock::to_micros};
use jiff::Timestamp;
use sqlx::{Any, AnyConnection, Transaction};
use uuid::Uuid;

/// Rows per statement: 7 binds each, far under SQLite's 32,766 and PostgreSQL's 65,535.
pub const CHUNK_ROWS: usize = 500;

const COLUMNS: usize = 7;

/// The PostgreSQL advisory lock key that orders event-writing transactions ("hbev").
const FEED_LOCK: i64 = 0x6862_6576;

/// A row to insert.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    pub customer: Uuid,
    pub event_id: String,
    pub kind: String,
    pub channel: String,
    pub at: Timestamp,
    pub properties: String,
}

impl EventRow {
    /// An event the server records itself, on [`super::domain::SERVER_CHANNEL`].
    pub fn server(customer: Uuid, event_id: String, kind: &str, at: Timestamp, properties: serde_json::Value) -> Self {
        Self {
            customer,
            event_id,
            kind: kind.to_owned(),
            channel: super::domain::SERVER_CHANNEL.to_owned(),
            at,
            properties: properties.to_string(),
        }
    }
}

/// A stored event.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredEvent {
    pub seq: i64,
    pub event_id: String,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub channel: String,
    pub at: i64,
    pub received_at: i64,
    pub properties: String,
}

#[derive(Debug, Clone)]
pub struct EventsStore {
    db: Db,
}

impl EventsStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub async fn begin(&self) -> Result<Transaction<'static, Any>, DbError> {
        self.db.begin().await
    }

    /// How far postings have been swept: (posted_at in micros, last transfer id at that
    /// instant, '' for none); `None` before the first sweep.
    pub async fn sweep_mark(&self) -> Result<Option<(i64, String)>, DbError> {
        Ok(
            sqlx::query_as("SELECT swept_at, swept_id FROM posting_sweeps WHERE name = 'ledger'")
                .fetch_optional(self.db.writer())
                .await?,
        )
    }

    /// Moves the sweep mark forward to (`at`, `id`), never back (nodes sweep side by side).
    pub async fn advance_sweep_mark(&self, at: i64, id: &str) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO posting_sweeps (name, swept_at, swept_id) VALUES ('ledger', $1, $2) \
             ON CONFLICT (name) DO UPDATE SET swept_at = excluded.swept_at, swept_id = excluded.swept_id \
             WHERE posting_sweeps.swept_at < excluded.swept_at \
                OR (posting_sweeps.swept_at = excluded.swept_at AND posting_sweeps.swept_id < excluded.swept_id)",
        )
        .bind(at)
        .bind(id)
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    fn insert_sql(&self, rows: usize) -> String {
        huoban_kit::db::multi_row_insert(
            self.db.backend(),
            "behaviour_events (customer_id, event_id, type, channel, at, received_at, properties)",
            COLUMNS,
            rows,
            "ON CONFLICT (customer_id, event_id) DO NOTHING RETURNING customer_id, event_id",
        )
    }

    /// Inserts the rows that are new; returns the (customer, event id) pairs inserted.
    ///
    /// `conn` must be inside a transaction: on PostgreSQL the inserts take a
    /// transaction-scoped advisory lock first, so transactions that write events commit in
    /// the order of their `seq` values and the [feed](super::feed) never passes over a row
    /// that commits later with a lower `seq`. (SQLite has one writer, so it is already so.)
    #[tracing::instrument(skip_all, fields(rows = rows.len()))]
    pub async fn insert(
        &self,
        conn: &mut AnyConnection,
        rows: &[EventRow],
        received_at: Timestamp,
    ) -> Result<HashSet<(String, String)>, DbError> {
        if rows.is_empty() {
            return Ok(HashSet::new());
        }
        if self.db.backend() == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(FEED_LOCK)
                .execute(&mut *conn)
                .await?;
        }
        let received_at = to_micros(received_at);
        let mut inserted = HashSet::with_capacity(rows.len());
        for chunk in rows.chunks(CHUNK_ROWS) {
            let sql = self.insert_sql(chunk.len());
            let mut query = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql));
            for row in chunk {
                query = query
                    .bind(row.customer.to_string())
                    .bind(row.event_id.clone())
                    .bind(row.kind.clone())
                    .bind(row.channel.clone())
                    .bind(to_micros(row.at))
                    .bind(received_at)
                    .bind(row.properties.clone());
            }
            inserted.extend(query.fetch_all(&mut *conn).await?);
        }
        Ok(inserted)
    }

    /// Inserts the rows that are new in a transaction of their own.
    pub async fn insert_committed(
        &self,
        rows: &[EventRow],
        received_at: Timestamp,
    ) -> Result<HashSet<(String, String)>, DbError> {
        let mut tx = self.begin().await?;
        let inserted = self.insert(&mut tx, rows, received_at).await?;
        tx.commit().await?;
        super::feed::announce();
        Ok(inserted)
    }

    /// The customer's events newest first, before `before_seq` if given; at most `limit`.
    pub async fn recent(
        &self,
        customer: Uuid,
        before_seq: Option<i64>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, DbError> {
        let rows = sqlx::query_as(
            "SELECT seq, event_id, type, channel, at, received_at, properties FROM behaviour_events \
             WHERE customer_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3",
        )
        .bind(customer.to_string())
        .bind(before_seq.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(self.db.reader())
        .await?;
        Ok(rows)
    }
}
