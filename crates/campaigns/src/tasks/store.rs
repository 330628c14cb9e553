//! The SQL of tasks: `campaign_tasks`, `task_progress`.

use huoban_kit::{Db, DbError, clock::to_micros};
use jiff::Timestamp;
use sqlx::AnyConnection;
use uuid::Uuid;

use super::domain::TaskInput;
use crate::campaigns::store::in_list;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TaskRow {
    pub id: String,
    pub campaign_id: String,
    pub titles: String,
    pub period: String,
    pub event_type: String,
    pub filter: String,
    pub target: i64,
    pub reward_points: i64,
    pub reward_coupon: Option<String>,
    pub created_at: i64,
}

const COLUMNS: &str =
    "id, campaign_id, titles, period, event_type, filter, target, reward_points, reward_coupon, created_at";

#[derive(Debug, Clone)]
pub struct TaskStore {
    db: Db,
}

impl TaskStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub async fn insert(&self, id: Uuid, campaign: Uuid, t: &TaskInput, now: Timestamp) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO campaign_tasks (id, campaign_id, titles, period, event_type, filter, target, reward_points, \
             reward_coupon, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(id.to_string())
        .bind(campaign.to_string())
        .bind(serde_json::to_string(&t.titles).unwrap_or_default())
        .bind(t.period.as_str())
        .bind(&t.event_type)
        .bind(t.filter.trim())
        .bind(t.target)
        .bind(t.reward_points)
        .bind(t.reward_coupon.map(|r| r.to_string()))
        .bind(to_micros(now))
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    pub async fn get(&self, id: Uuid) -> Result<Option<TaskRow>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM campaign_tasks WHERE id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(self.db.reader())
        .await?)
    }

    pub async fn of_campaigns(&self, campaigns: &[Uuid]) -> Result<Vec<TaskRow>, DbError> {
        if campaigns.is_empty() {
            return Ok(vec![]);
        }
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM campaign_tasks WHERE campaign_id IN ({}) ORDER BY id",
            in_list(campaigns)
        )))
        .fetch_all(self.db.reader())
        .await?)
    }

    /// (progress, claimed) of a customer in a period.
    pub async fn progress(&self, task: Uuid, customer: Uuid, period: &str) -> Result<(i64, bool), DbError> {
        let row: Option<(i64, Option<i64>)> = sqlx::query_as(
            "SELECT progress, claimed_at FROM task_progress WHERE task_id = $1 AND customer_id = $2 AND period_key = $3",
        )
        .bind(task.to_string())
        .bind(customer.to_string())
        .bind(period)
        .fetch_optional(self.db.reader())
        .await?;
        Ok(row.map_or((0, false), |(p, c)| (p, c.is_some())))
    }

    /// Marks a complete, unclaimed task claimed inside the caller's transaction (the one
    /// that pays its reward); false when it was claimed meanwhile or is not complete.
    pub async fn mark_claimed(
        &self,
        conn: &mut AnyConnection,
        task: &TaskRow,
        customer: Uuid,
        period: &str,
        now: Timestamp,
    ) -> Result<bool, DbError> {
        let n = sqlx::query(
            "UPDATE task_progress SET claimed_at = $1 WHERE task_id = $2 AND customer_id = $3 AND period_key = $4 \
             AND claimed_at IS NULL AND progress >= $5",
        )
        .bind(to_micros(now))
        .bind(&task.id)
        .bind(customer.to_string())
        .bind(period)
        .bind(task.target)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        Ok(n == 1)
    }
}
