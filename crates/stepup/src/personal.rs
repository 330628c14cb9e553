//! The customer's step-up factors and attempts for their export and erasure (PIPL), over
//! the `step_up_*` tables. The export names each factor and when it was set up and used,
//! never a secret (PIN hash, authenticator secret, passkey key). Erasure deletes every
//! row: factors, challenges, tokens, attempts, codes sent and lockout counters — except a
//! factor's lockout (a counter with a lock set), a safety control and not data about the
//! person, which stays so the erasure cannot lift it while the customer's session still
//! works (a lock whose cool-down has passed is inert and restarts at the next failure).
//! The attempts stay in the audit trail, which records them by customer id only.

use huoban_kit::{
    ApiError, Db, DbError,
    personal::{BoxFuture, PersonalData, rows_json},
};
use serde_json::{Value, json};
use uuid::Uuid;

/// Step-up's part of a customer's personal data.
#[derive(Debug, Clone)]
pub struct StepUpData {
    db: Db,
}

impl StepUpData {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    async fn rows(&self, sql: &str, customer: Uuid) -> Result<Value, DbError> {
        Ok(Value::Array(rows_json(&self.db, sql, customer).await?))
    }
}

/// What erasure deletes: every row of the customer's, but a lockout.
const ERASE: &[&str] = &[
    "DELETE FROM step_up_tokens WHERE customer_id = $1",
    "DELETE FROM step_up_challenges WHERE customer_id = $1",
    "DELETE FROM step_up_pins WHERE customer_id = $1",
    "DELETE FROM step_up_totp WHERE customer_id = $1",
    "DELETE FROM step_up_failures WHERE customer_id = $1 AND locked_until IS NULL",
    "DELETE FROM step_up_attempts WHERE customer_id = $1",
    "DELETE FROM step_up_outbox WHERE customer_id = $1",
    "DELETE FROM step_up_passkeys WHERE customer_id = $1",
    "DELETE FROM step_up_passkey_registrations WHERE customer_id = $1",
];

impl PersonalData for StepUpData {
    fn section(&self) -> &'static str {
        "step_up"
    }

    fn export<'a>(&'a self, customer: Uuid) -> BoxFuture<'a, Result<Value, ApiError>> {
        Box::pin(async move {
            Ok(json!({
                "pin": self.rows("SELECT created_at, updated_at FROM step_up_pins WHERE customer_id = $1", customer).await?,
                "authenticator": self.rows(
                    "SELECT confirmed, created_at, confirmed_at FROM step_up_totp WHERE customer_id = $1",
                    customer,
                ).await?,
                "passkeys": self.rows(
                    "SELECT id, created_at, last_used_at FROM step_up_passkeys WHERE customer_id = $1 ORDER BY id",
                    customer,
                ).await?,
                "attempts": self.rows(
                    "SELECT factor, action, outcome, at FROM step_up_attempts WHERE customer_id = $1 ORDER BY at",
                    customer,
                ).await?,
                "codes_sent": self.rows(
                    "SELECT channel, created_at FROM step_up_outbox WHERE customer_id = $1 ORDER BY created_at",
                    customer,
                ).await?,
            }))
        })
    }

    fn erase<'a>(&'a self, customer: Uuid) -> BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(async move { Ok(huoban_kit::personal::erase_rows(&self.db, customer, ERASE).await?) })
    }
}
