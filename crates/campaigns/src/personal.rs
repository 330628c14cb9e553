//! The customer's campaign data for their export and erasure (PIPL), over the campaigns
//! capability's own tables: what rules did for them and why, nudges, task and badge
//! progress, counters, and the tags staff gave them.
//!
//! Erasure deletes it all except `rule_firings` — one row per (rule, event) that makes a
//! rule fire at most once, holding ids and an outcome only — so that an event still in
//! the feed can never pay again. Budgets stay as spent: they count the campaign's money.

use huoban_kit::{
    ApiError, Db, DbError,
    personal::{BoxFuture, PersonalData, rows_json},
};
use serde_json::{Value, json};
use uuid::Uuid;

/// Campaigns' part of a customer's personal data.
#[derive(Debug, Clone)]
pub struct CampaignsData {
    db: Db,
}

impl CampaignsData {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    async fn rows(&self, sql: &str, customer: Uuid) -> Result<Value, DbError> {
        Ok(Value::Array(rows_json(&self.db, sql, customer).await?))
    }
}

const DELETES: &[&str] = &[
    "DELETE FROM campaign_effects WHERE customer_id = $1",
    "DELETE FROM nudges WHERE customer_id = $1",
    "DELETE FROM customer_tags WHERE customer_id = $1",
    "DELETE FROM customer_counters WHERE customer_id = $1",
    "DELETE FROM rule_customer_state WHERE customer_id = $1",
    "DELETE FROM rule_window_hits WHERE customer_id = $1",
    "DELETE FROM task_progress WHERE customer_id = $1",
    "DELETE FROM badge_progress WHERE customer_id = $1",
];

impl PersonalData for CampaignsData {
    fn section(&self) -> &'static str {
        "campaigns"
    }

    fn export<'a>(&'a self, customer: Uuid) -> BoxFuture<'a, Result<Value, ApiError>> {
        Box::pin(async move {
            Ok(json!({
                "effects": self.rows(
                    "SELECT id, campaign_id, rule_id, event_id, kind, detail, created_at FROM campaign_effects \
                     WHERE customer_id = $1 ORDER BY id",
                    customer,
                ).await?,
                "nudges": self.rows(
                    "SELECT id, campaign_id, title, body, action_url, created_at, dismissed_at FROM nudges \
                     WHERE customer_id = $1 ORDER BY id",
                    customer,
                ).await?,
                "tasks": self.rows(
                    "SELECT task_id, period_key, progress, claimed_at FROM task_progress WHERE customer_id = $1 \
                     ORDER BY task_id, period_key",
                    customer,
                ).await?,
                "badges": self.rows(
                    "SELECT badge_id, progress, updated_at FROM badge_progress WHERE customer_id = $1 ORDER BY badge_id",
                    customer,
                ).await?,
                "counters": self.rows(
                    "SELECT name, value FROM customer_counters WHERE customer_id = $1 ORDER BY name",
                    customer,
                ).await?,
                "tags": self.rows("SELECT tag FROM customer_tags WHERE customer_id = $1 ORDER BY tag", customer).await?,
            }))
        })
    }

    fn erase<'a>(&'a self, customer: Uuid) -> BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(async move { Ok(huoban_kit::personal::erase_rows(&self.db, customer, DELETES).await?) })
    }
}
