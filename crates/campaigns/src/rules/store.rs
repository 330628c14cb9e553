//! The SQL of rules: definitions (`campaign_rules`), the consumer's state
//! (`rule_firings`, `rule_customer_state`, `rule_window_hits`, `customer_counters`), what
//! it did (`campaign_effects`, `nudges`). A batch's writes are multi-row statements in one
//! transaction ([`RuleStore::write_plan`]); SQLite statements use `?` placeholders,
//! PostgreSQL `$N`.

use std::collections::HashMap;

use huoban_kit::{
    Db, DbError,
    clock::to_micros,
    db::{Bind, insert_rows},
    ids::new_id,
};
use jiff::Timestamp;
use sqlx::AnyConnection;
use uuid::Uuid;

use super::domain::{Loaded, Plan};
use crate::campaigns::store::in_list;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RuleRow {
    pub id: String,
    pub campaign_id: String,
    pub name: String,
    pub trigger_type: String,
    pub condition: String,
    pub aggregate_count: Option<i64>,
    pub aggregate_days: Option<i64>,
    pub max_per_customer: Option<i64>,
    pub actions: String,
    pub created_at: i64,
}

const RULE_COLUMNS: &str = "id, campaign_id, name, trigger_type, condition, aggregate_count, aggregate_days, \
     max_per_customer, actions, created_at";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EffectRow {
    pub id: String,
    pub campaign_id: String,
    pub rule_id: Option<String>,
    pub event_seq: Option<i64>,
    pub event_id: Option<String>,
    pub kind: String,
    pub detail: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NudgeRow {
    pub id: String,
    pub campaign_id: String,
    pub rule_id: String,
    pub title: String,
    pub body: String,
    pub action_url: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct RuleStore {
    db: Db,
}

impl RuleStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub async fn insert(
        &self,
        id: Uuid,
        campaign: Uuid,
        input: &super::domain::RuleInput,
        now: Timestamp,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO campaign_rules (id, campaign_id, name, trigger_type, condition, aggregate_count, aggregate_days, \
             max_per_customer, actions, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(id.to_string())
        .bind(campaign.to_string())
        .bind(input.name.trim())
        .bind(&input.trigger)
        .bind(input.condition.trim())
        .bind(input.aggregate.map(|a| a.count))
        .bind(input.aggregate.map(|a| a.within_days))
        .bind(input.max_per_customer)
        .bind(serde_json::to_string(&input.actions).unwrap_or_default())
        .bind(to_micros(now))
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    pub async fn of_campaign(&self, campaign: Uuid) -> Result<Vec<RuleRow>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {RULE_COLUMNS} FROM campaign_rules WHERE campaign_id = $1 ORDER BY id"
        )))
        .bind(campaign.to_string())
        .fetch_all(self.db.reader())
        .await?)
    }

    /// Rules of these campaigns.
    pub async fn of_campaigns(&self, campaigns: &[Uuid]) -> Result<Vec<RuleRow>, DbError> {
        if campaigns.is_empty() {
            return Ok(vec![]);
        }
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {RULE_COLUMNS} FROM campaign_rules WHERE campaign_id IN ({}) ORDER BY id",
            in_list(campaigns)
        )))
        .fetch_all(self.db.reader())
        .await?)
    }

    /// The consumer state of these rules for these customers; window hits at or after
    /// `hits_since` (micros).
    #[allow(clippy::too_many_arguments)]
    pub async fn load(
        &self,
        rules: &[Uuid],
        windowed: &[Uuid],
        tasks: &[Uuid],
        badges: &[Uuid],
        customers: &[Uuid],
        hits_since: i64,
        into: &mut Loaded,
    ) -> Result<(), DbError> {
        for chunk in customers.chunks(500) {
            let cs = in_list(chunk);
            let rows: Vec<(String, String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT customer_id, name, value FROM customer_counters WHERE customer_id IN ({cs})"
            )))
            .fetch_all(self.db.reader())
            .await?;
            for (c, name, value) in rows {
                if let Ok(c) = Uuid::parse_str(&c) {
                    into.counters.entry(c).or_default().insert(name, value);
                }
            }
            if !rules.is_empty() {
                let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT rule_id, customer_id, fired, last_fired_seq FROM rule_customer_state \
                     WHERE customer_id IN ({cs}) AND rule_id IN ({})",
                    in_list(rules)
                )))
                .fetch_all(self.db.reader())
                .await?;
                for (r, c, fired, last) in rows {
                    if let (Ok(r), Ok(c)) = (Uuid::parse_str(&r), Uuid::parse_str(&c)) {
                        into.rule_state.insert((r, c), (fired, last));
                    }
                }
            }
            if !windowed.is_empty() {
                let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT rule_id, customer_id, event_seq, at FROM rule_window_hits \
                     WHERE customer_id IN ({cs}) AND at >= $1 AND rule_id IN ({}) ORDER BY event_seq",
                    in_list(windowed)
                )))
                .bind(hits_since)
                .fetch_all(self.db.reader())
                .await?;
                for (r, c, seq, at) in rows {
                    if let (Ok(r), Ok(c)) = (Uuid::parse_str(&r), Uuid::parse_str(&c)) {
                        into.hits.entry((r, c)).or_default().push((seq, at));
                    }
                }
            }
            if !tasks.is_empty() {
                let rows: Vec<(String, String, String, i64, Option<i64>)> =
                    sqlx::query_as(sqlx::AssertSqlSafe(format!(
                        "SELECT task_id, customer_id, period_key, progress, claimed_at FROM task_progress \
                     WHERE customer_id IN ({cs}) AND task_id IN ({})",
                        in_list(tasks)
                    )))
                    .fetch_all(self.db.reader())
                    .await?;
                for (t, c, p, progress, claimed) in rows {
                    if let (Ok(t), Ok(c)) = (Uuid::parse_str(&t), Uuid::parse_str(&c)) {
                        into.tasks.insert((t, c, p), (progress, claimed.is_some()));
                    }
                }
            }
            if !badges.is_empty() {
                let rows: Vec<(String, String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT badge_id, customer_id, progress FROM badge_progress \
                     WHERE customer_id IN ({cs}) AND badge_id IN ({})",
                    in_list(badges)
                )))
                .fetch_all(self.db.reader())
                .await?;
                for (b, c, progress) in rows {
                    if let (Ok(b), Ok(c)) = (Uuid::parse_str(&b), Uuid::parse_str(&c)) {
                        into.badges.insert((b, c), progress);
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes a batch's plan inside the caller's transaction. Budget use moves with a
    /// guarded update; `Ok(false)` when a cap would be passed (the caller rolls back).
    pub async fn write_plan(
        &self,
        conn: &mut AnyConnection,
        plan: &Plan,
        dropped_coupons: &HashMap<Uuid, i64>,
        now: Timestamp,
    ) -> Result<bool, DbError> {
        let backend = self.db.backend();
        let now = to_micros(now);
        for (campaign, (points, coupons)) in &plan.budget {
            let coupons = coupons - dropped_coupons.get(campaign).copied().unwrap_or(0);
            if *points == 0 && coupons == 0 {
                continue;
            }
            let n = sqlx::query(
                "UPDATE campaigns SET points_used = points_used + $1, coupons_used = coupons_used + $2 \
                 WHERE id = $3 AND points_used + $1 <= points_cap AND coupons_used + $2 <= coupon_cap",
            )
            .bind(*points)
            .bind(coupons)
            .bind(campaign.to_string())
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if n != 1 {
                return Ok(false);
            }
        }
        insert_rows(
            conn,
            backend,
            "rule_firings (rule_id, event_seq, customer_id, outcome, at)",
            "",
            plan.firings
                .iter()
                .map(|f| {
                    vec![
                        Bind::Text(f.rule.to_string()),
                        Bind::Int(f.seq),
                        Bind::Text(f.customer.to_string()),
                        Bind::Text(f.outcome.to_owned()),
                        Bind::Int(now),
                    ]
                })
                .collect(),
        )
        .await?;
        insert_rows(
            conn,
            backend,
            "rule_customer_state (rule_id, customer_id, fired, last_fired_seq)",
            "ON CONFLICT (rule_id, customer_id) DO UPDATE SET fired = excluded.fired, last_fired_seq = excluded.last_fired_seq",
            plan.rule_state
                .iter()
                .map(|((r, c), (fired, last))| {
                    vec![
                        Bind::Text(r.to_string()),
                        Bind::Text(c.to_string()),
                        Bind::Int(*fired),
                        Bind::Int(*last),
                    ]
                })
                .collect(),
        )
        .await?;
        insert_rows(
            conn,
            backend,
            "rule_window_hits (rule_id, customer_id, event_seq, at)",
            "",
            plan.hits
                .iter()
                .map(|(r, c, seq, at)| {
                    vec![
                        Bind::Text(r.to_string()),
                        Bind::Text(c.to_string()),
                        Bind::Int(*seq),
                        Bind::Int(*at),
                    ]
                })
                .collect(),
        )
        .await?;
        insert_rows(
            conn,
            backend,
            "customer_counters (customer_id, name, value)",
            "ON CONFLICT (customer_id, name) DO UPDATE SET value = excluded.value",
            plan.counters
                .iter()
                .map(|((c, name), v)| vec![Bind::Text(c.to_string()), Bind::Text(name.clone()), Bind::Int(*v)])
                .collect(),
        )
        .await?;
        let mut effects = Vec::with_capacity(plan.effects.len());
        let mut nudges = Vec::new();
        for e in &plan.effects {
            let id = new_id().to_string();
            effects.push(vec![
                Bind::Text(id.clone()),
                Bind::Text(e.customer.to_string()),
                Bind::Text(e.campaign.to_string()),
                Bind::OptText(e.rule.map(|r| r.to_string())),
                Bind::OptInt(e.seq),
                Bind::OptText(e.event_id.clone()),
                Bind::Text(e.kind.to_owned()),
                Bind::Text(e.detail.to_string()),
                Bind::Int(now),
            ]);
            if e.kind == "nudge" {
                let text = |k: &str| e.detail.get(k).and_then(|v| v.as_str()).map(str::to_owned);
                nudges.push(vec![
                    Bind::Text(id),
                    Bind::Text(e.customer.to_string()),
                    Bind::Text(e.campaign.to_string()),
                    Bind::Text(e.rule.unwrap_or_default().to_string()),
                    Bind::Int(e.seq.unwrap_or_default()),
                    Bind::Text(text("title").unwrap_or_default()),
                    Bind::Text(text("body").unwrap_or_default()),
                    Bind::OptText(text("action_url")),
                    Bind::Int(now),
                ]);
            }
        }
        insert_rows(
            conn,
            backend,
            "campaign_effects (id, customer_id, campaign_id, rule_id, event_seq, event_id, kind, detail, created_at)",
            "",
            effects,
        )
        .await?;
        insert_rows(
            conn,
            backend,
            "nudges (id, customer_id, campaign_id, rule_id, event_seq, title, body, action_url, created_at)",
            "ON CONFLICT (rule_id, event_seq) DO NOTHING",
            nudges,
        )
        .await?;
        insert_rows(
            conn,
            backend,
            "task_progress (task_id, customer_id, period_key, progress)",
            "ON CONFLICT (task_id, customer_id, period_key) DO UPDATE SET progress = excluded.progress",
            plan.tasks
                .iter()
                .map(|((t, c, p), v)| {
                    vec![
                        Bind::Text(t.to_string()),
                        Bind::Text(c.to_string()),
                        Bind::Text(p.clone()),
                        Bind::Int(*v),
                    ]
                })
                .collect(),
        )
        .await?;
        insert_rows(
            conn,
            backend,
            "badge_progress (badge_id, customer_id, progress, updated_at)",
            "ON CONFLICT (badge_id, customer_id) DO UPDATE SET progress = excluded.progress, updated_at = excluded.updated_at",
            plan.badges
                .iter()
                .map(|((b, c), v)| {
                    vec![
                        Bind::Text(b.to_string()),
                        Bind::Text(c.to_string()),
                        Bind::Int(*v),
                        Bind::Int(now),
                    ]
                })
                .collect(),
        )
        .await?;
        Ok(true)
    }

    /// A customer's effects, newest first.
    pub async fn effects(&self, customer: Uuid, after: Option<&str>, limit: u32) -> Result<Vec<EffectRow>, DbError> {
        Ok(sqlx::query_as(
            "SELECT id, campaign_id, rule_id, event_seq, event_id, kind, detail, created_at FROM campaign_effects \
             WHERE customer_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(customer.to_string())
        .bind(after.unwrap_or("~"))
        .bind(i64::from(limit) + 1)
        .fetch_all(self.db.reader())
        .await?)
    }

    /// Records one effect outside a batch (a task claim).
    pub async fn record_effect(&self, e: &super::domain::Effect, now: Timestamp) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO campaign_effects (id, customer_id, campaign_id, rule_id, event_seq, event_id, kind, detail, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(new_id().to_string())
        .bind(e.customer.to_string())
        .bind(e.campaign.to_string())
        .bind(e.rule.map(|r| r.to_string()))
        .bind(e.seq)
        .bind(e.event_id.clone())
        .bind(e.kind)
        .bind(e.detail.to_string())
        .bind(to_micros(now))
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    pub async fn nudges(&self, customer: Uuid) -> Result<Vec<NudgeRow>, DbError> {
        Ok(sqlx::query_as(
            "SELECT id, campaign_id, rule_id, title, body, action_url, created_at FROM nudges \
             WHERE customer_id = $1 AND dismissed_at IS NULL ORDER BY id DESC LIMIT 20",
        )
        .bind(customer.to_string())
        .fetch_all(self.db.reader())
        .await?)
    }

    /// Dismisses a nudge; false when the customer has no such nudge.
    pub async fn dismiss(&self, customer: Uuid, id: Uuid, now: Timestamp) -> Result<bool, DbError> {
        let n = sqlx::query(
            "UPDATE nudges SET dismissed_at = COALESCE(dismissed_at, $1) WHERE id = $2 AND customer_id = $3",
        )
        .bind(to_micros(now))
        .bind(id.to_string())
        .bind(customer.to_string())
        .execute(self.db.writer())
        .await?
        .rows_affected();
        Ok(n == 1)
    }
}
