//! The customer's engagement data for their export and erasure (PIPL): check-ins,
//! questionnaire answers and suitability, savings goals, coupons and behaviour events —
//! over engage's own tables.
//!
//! Erasure deletes what only describes the customer (check-in days, answers, the
//! suitability level, behaviour events with their properties, reminders) and blanks the
//! free text that must keep its row: a goal's name (the goal keeps its pocket on the
//! ledger, which holds money, and a partner may share it). A partner's membership in
//! someone else's goal is removed; their past deposits stay, as the goal's history.
//! Coupons stay: they are value bought with points (their codes are random and name no
//! one), and stock and per-customer limits count them. The invitations the customer's
//! goals sent to partners are retracted from the partners' inboxes: they carry the
//! customer's name.

use huoban_inbox::InboxService;
use huoban_kit::{
    ApiError, Db, DbError,
    personal::{BoxFuture, PersonalData, rows_json},
};
use serde_json::{Value, json};
use uuid::Uuid;

/// Engage's part of a customer's personal data.
#[derive(Debug, Clone)]
pub struct EngageData {
    db: Db,
    inbox: InboxService,
}

impl EngageData {
    pub fn new(db: Db, inbox: InboxService) -> Self {
        Self { db, inbox }
    }

    async fn rows(&self, sql: &str, customer: Uuid) -> Result<Value, DbError> {
        Ok(Value::Array(rows_json(&self.db, sql, customer).await?))
    }
}

/// What is deleted, table by table (each statement binds the customer id to `$1`).
const DELETES: &[&str] = &[
    "DELETE FROM checkins WHERE customer_id = $1",
    "DELETE FROM checkin_rewards WHERE customer_id = $1",
    "DELETE FROM checkin_customers WHERE customer_id = $1",
    "DELETE FROM questionnaire_sessions WHERE customer_id = $1",
    "DELETE FROM customer_suitability WHERE customer_id = $1",
    "DELETE FROM goal_reminders WHERE goal_id IN (SELECT id FROM goals WHERE owner_id = $1)",
    "DELETE FROM goal_members WHERE customer_id = $1 AND role = 'partner'",
    "UPDATE goals SET name = '' WHERE owner_id = $1 AND name <> ''",
    "DELETE FROM behaviour_events WHERE customer_id = $1",
];

impl PersonalData for EngageData {
    fn section(&self) -> &'static str {
        "engagement"
    }

    fn export<'a>(&'a self, customer: Uuid) -> BoxFuture<'a, Result<Value, ApiError>> {
        Box::pin(async move {
            Ok(json!({
                "check_ins": self.rows(
                    "SELECT local_date, kind, at, streak_after FROM checkins WHERE customer_id = $1 ORDER BY local_date",
                    customer,
                ).await?,
                "check_in_rewards": self.rows(
                    "SELECT local_date, reason, streak_days, points, transfer_id FROM checkin_rewards \
                     WHERE customer_id = $1 ORDER BY local_date",
                    customer,
                ).await?,
                "questionnaire_answers": self.rows(
                    "SELECT id, questionnaire_id, answers, score, finished_at, created_at FROM questionnaire_sessions \
                     WHERE customer_id = $1 ORDER BY id",
                    customer,
                ).await?,
                "suitability": self.rows(
                    "SELECT level, score, assessed_at FROM customer_suitability WHERE customer_id = $1",
                    customer,
                ).await?,
                "goals": self.rows(
                    "SELECT g.id, g.name, g.category, g.target_amount, g.target_date, g.pocket_id, m.role, g.created_at \
                     FROM goal_members m JOIN goals g ON g.id = m.goal_id WHERE m.customer_id = $1 ORDER BY g.id",
                    customer,
                ).await?,
                "goal_deposits": self.rows(
                    "SELECT goal_id, transfer_id, amount, at FROM goal_contributions WHERE customer_id = $1 \
                     ORDER BY at",
                    customer,
                ).await?,
                "coupons": self.rows(
                    "SELECT id, reward_id, state, points, code, claimed_at, valid_until FROM reward_claims \
                     WHERE customer_id = $1 ORDER BY id",
                    customer,
                ).await?,
                "behaviour_events": self.rows(
                    "SELECT event_id, type, channel, at, properties FROM behaviour_events WHERE customer_id = $1 \
                     ORDER BY seq",
                    customer,
                ).await?,
            }))
        })
    }

    fn erase<'a>(&'a self, customer: Uuid) -> BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(async move {
            let goals: Vec<String> = sqlx::query_scalar("SELECT id FROM goals WHERE owner_id = $1")
                .bind(customer.to_string())
                .fetch_all(self.db.reader())
                .await
                .map_err(DbError::from)?;
            for goal in goals {
                // The key goals/service.rs delivers a partner's invitation under.
                self.inbox.retract(&format!("goal:{goal}:invite")).await?;
            }
            Ok(huoban_kit::personal::erase_rows(&self.db, customer, DELETES).await?)
        })
    }
}
