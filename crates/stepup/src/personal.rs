//! The customer's step-up factors and attempts for their export and erasure (PIPL), over
//! the `step_up_*` tables. The export names each factor and when it was set up and used,
//! never a secret (PIN hash, authenticator secret, passkey key). Erasure deletes every
//! row: factors, challenges, tokens, lockout counters, attempts and codes sent. The
//! attempts stay in the audit trail, which records them by customer id only.

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

const TABLES: &[&str] = &[
    "step_up_tokens",
    "step_up_challenges",
    "step_up_pins",
    "step_up_totp",
    "step_up_failures",
    "step_up_attempts",
    "step_up_outbox",
    "step_up_passkeys",
    "step_up_passkey_registrations",
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
        Box::pin(async move {
            let mut tx = self.db.writer().begin().await.map_err(DbError::from)?;
            for table in TABLES {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM {table} WHERE customer_id = $1"
                )))
                .bind(customer.to_string())
                .execute(&mut *tx)
                .await
                .map_err(DbError::from)?;
            }
            tx.commit().await.map_err(DbError::from)?;
            Ok(())
        })
    }
}
