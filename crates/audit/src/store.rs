//! The audit trail's tables. Appends take the chain head under a lock (`FOR UPDATE` on
//! PostgreSQL; SQLite's single writer connection serializes them anyway), so the chain
//! never forks.

use huoban_kit::{Backend, Db, DbError};

use crate::domain::{CheckpointRow, EntryRow};

const ENTRY_COLUMNS: &str = "seq, at, actor_kind, actor_id, action, subject, details, prev_hash, hash";

#[derive(Debug, Clone)]
pub struct AuditStore {
    db: Db,
}

/// Which entries a listing returns.
#[derive(Debug, Clone, Default)]
pub struct EntryFilter {
    pub actor_id: Option<String>,
    pub action: Option<String>,
    pub subject: Option<String>,
}

impl AuditStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Appends one entry built by `build` from the current head (seq, hash); `sign` may add
    /// a checkpoint for the new entry in the same transaction.
    pub async fn append(
        &self,
        build: impl FnOnce(i64, &str) -> EntryRow,
        sign: impl FnOnce(&EntryRow) -> Option<CheckpointRow>,
    ) -> Result<EntryRow, DbError> {
        let mut tx = self.db.begin().await?;
        let head_sql = match self.db.backend() {
            Backend::Postgres => "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE",
            Backend::Sqlite => "SELECT seq, hash FROM audit_head WHERE id = 1",
        };
        let (seq, hash): (i64, String) = sqlx::query_as(head_sql).fetch_one(&mut *tx).await?;
        let entry = build(seq + 1, &hash);
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO audit_log ({ENTRY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        )))
        .bind(entry.seq)
        .bind(entry.at)
        .bind(&entry.actor_kind)
        .bind(&entry.actor_id)
        .bind(&entry.action)
        .bind(&entry.subject)
        .bind(&entry.details)
        .bind(&entry.prev_hash)
        .bind(&entry.hash)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
            .bind(entry.seq)
            .bind(&entry.hash)
            .execute(&mut *tx)
            .await?;
        if let Some(c) = sign(&entry) {
            insert_checkpoint(&mut tx, &c).await?;
        }
        tx.commit().await?;
        Ok(entry)
    }

    /// Signs the head if it has no checkpoint yet; returns the checkpoint written.
    pub async fn checkpoint_head(
        &self,
        sign: impl FnOnce(i64, &str) -> CheckpointRow,
    ) -> Result<Option<CheckpointRow>, DbError> {
        let mut tx = self.db.begin().await?;
        let head_sql = match self.db.backend() {
            Backend::Postgres => "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE",
            Backend::Sqlite => "SELECT seq, hash FROM audit_head WHERE id = 1",
        };
        let (seq, hash): (i64, String) = sqlx::query_as(head_sql).fetch_one(&mut *tx).await?;
        let last: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM audit_checkpoints")
            .fetch_one(&mut *tx)
            .await?;
        if seq == 0 || last.is_some_and(|l| l >= seq) {
            tx.commit().await?;
            return Ok(None);
        }
        let c = sign(seq, &hash);
        insert_checkpoint(&mut tx, &c).await?;
        tx.commit().await?;
        Ok(Some(c))
    }

    pub async fn head(&self) -> Result<(i64, String), DbError> {
        Ok(sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(self.db.reader())
            .await?)
    }

    /// Entries with seq above `after`, in order, at most `limit`.
    pub async fn entries_after(&self, after: i64, limit: i64) -> Result<Vec<EntryRow>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ENTRY_COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
        )))
        .bind(after)
        .bind(limit)
        .fetch_all(self.db.reader())
        .await?)
    }

    pub async fn checkpoints(&self) -> Result<Vec<CheckpointRow>, DbError> {
        Ok(
            sqlx::query_as("SELECT seq, hash, at, public_key, signature FROM audit_checkpoints ORDER BY seq")
                .fetch_all(self.db.reader())
                .await?,
        )
    }

    /// Newest first, below `before` when given.
    pub async fn list(&self, filter: &EntryFilter, before: Option<i64>, limit: u32) -> Result<Vec<EntryRow>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ENTRY_COLUMNS} FROM audit_log \
             WHERE ($1 IS NULL OR actor_id = $1) AND ($2 IS NULL OR action = $2) \
               AND ($3 IS NULL OR subject = $3) AND ($4 IS NULL OR seq < $4) \
             ORDER BY seq DESC LIMIT $5"
        )))
        .bind(&filter.actor_id)
        .bind(&filter.action)
        .bind(&filter.subject)
        .bind(before)
        .bind(i64::from(limit) + 1)
        .fetch_all(self.db.reader())
        .await?)
    }
}

async fn insert_checkpoint(tx: &mut sqlx::Transaction<'static, sqlx::Any>, c: &CheckpointRow) -> Result<(), DbError> {
    sqlx::query("INSERT INTO audit_checkpoints (seq, hash, at, public_key, signature) VALUES ($1, $2, $3, $4, $5)")
        .bind(c.seq)
        .bind(&c.hash)
        .bind(c.at)
        .bind(&c.public_key)
        .bind(&c.signature)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
