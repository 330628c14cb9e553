//! The SQL of badges (`badges`, `badge_progress`) and of points earned (ledger entries).

use huoban_kit::{Db, DbError, clock::to_micros};
use jiff::Timestamp;
use uuid::Uuid;

use super::domain::BadgeInput;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BadgeRow {
    pub id: String,
    pub campaign_id: Option<String>,
    pub titles: String,
    pub event_type: String,
    pub filter: String,
    pub tiers: String,
    pub created_at: i64,
}

const COLUMNS: &str = "id, campaign_id, titles, event_type, filter, tiers, created_at";

#[derive(Debug, Clone)]
pub struct BadgeStore {
    db: Db,
}

impl BadgeStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub async fn insert(&self, id: Uuid, b: &BadgeInput, now: Timestamp) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO badges (id, campaign_id, titles, event_type, filter, tiers, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id.to_string())
        .bind(b.campaign_id.map(|c| c.to_string()))
        .bind(serde_json::to_string(&b.titles).unwrap_or_default())
        .bind(&b.event_type)
        .bind(b.filter.trim())
        .bind(serde_json::to_string(&b.tiers).unwrap_or_default())
        .bind(to_micros(now))
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    pub async fn all(&self) -> Result<Vec<BadgeRow>, DbError> {
        Ok(
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM badges ORDER BY id")))
                .fetch_all(self.db.reader())
                .await?,
        )
    }

    pub async fn get(&self, id: Uuid) -> Result<Option<BadgeRow>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM badges WHERE id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(self.db.reader())
        .await?)
    }

    /// badge id → progress of a customer.
    pub async fn progress_of(&self, customer: Uuid) -> Result<Vec<(String, i64)>, DbError> {
        Ok(
            sqlx::query_as("SELECT badge_id, progress FROM badge_progress WHERE customer_id = $1")
                .bind(customer.to_string())
                .fetch_all(self.db.reader())
                .await?,
        )
    }

    /// Points credited to the customer's points accounts by rewards (category `rewards`).
    pub async fn points_earned(&self, customer: Uuid) -> Result<i64, DbError> {
        let (sum,): (Option<i64>,) = sqlx::query_as(
            "SELECT CAST(SUM(e.amount) AS BIGINT) FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id \
             WHERE a.owner_kind = 'customer' AND a.owner_id = $1 AND a.account_type = 'points' \
             AND e.amount > 0 AND e.merchant_category = 'rewards'",
        )
        .bind(customer.to_string())
        .fetch_one(self.db.reader())
        .await?;
        Ok(sum.unwrap_or(0))
    }
}
