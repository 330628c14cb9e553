//! The SQL of step-up: `step_up_challenges`, `step_up_tokens`, `step_up_pins`,
//! `step_up_totp`, `step_up_failures`, `step_up_attempts`, `step_up_outbox`, `step_up_passkeys` and
//! `step_up_passkey_registrations`. Every guard that makes something single-use is a conditional
//! `UPDATE` (`… WHERE verified_at IS NULL`, `… WHERE used_at IS NULL`): one statement on
//! one row, so of two concurrent attempts exactly one changes it.

use huoban_kit::{
    Db, DbError,
    clock::{from_micros, to_micros},
    db::flag,
    ids::new_id,
};
use jiff::Timestamp;
use uuid::Uuid;

use crate::domain::{Factor, FailureState};

#[derive(Debug, Clone)]
pub struct ChallengeRow {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub purpose: String,
    pub reference: Option<String>,
    pub factor: Factor,
    pub code_digest: Option<String>,
    pub passkey_state: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub verified_at: Option<Timestamp>,
}

#[derive(Debug, sqlx::FromRow)]
struct RawChallenge {
    id: String,
    customer_id: String,
    purpose: String,
    reference: Option<String>,
    factor: String,
    code_digest: Option<String>,
    passkey_state: Option<String>,
    created_at: i64,
    expires_at: i64,
    verified_at: Option<i64>,
}

impl RawChallenge {
    fn parse(self) -> Option<ChallengeRow> {
        Some(ChallengeRow {
            id: Uuid::parse_str(&self.id).ok()?,
            customer_id: Uuid::parse_str(&self.customer_id).ok()?,
            purpose: self.purpose,
            reference: self.reference,
            factor: Factor::parse(&self.factor)?,
            code_digest: self.code_digest,
            passkey_state: self.passkey_state,
            created_at: from_micros(self.created_at),
            expires_at: from_micros(self.expires_at),
            verified_at: self.verified_at.map(from_micros),
        })
    }
}

/// A token about to be issued (only its hash is stored).
#[derive(Debug, Clone)]
pub struct NewToken<'a> {
    pub token_hash: &'a str,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct TotpRow {
    pub secret: String,
    pub confirmed: bool,
    pub last_step: Option<i64>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: String,
    pub customer_id: String,
    pub channel: String,
    pub body: String,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct StepUpStore {
    db: Db,
}

impl StepUpStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    // ---- challenges and tokens ----

    pub async fn insert_challenge(&self, c: &ChallengeRow) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO step_up_challenges (id, customer_id, purpose, reference, factor, code_digest, \
             passkey_state, created_at, expires_at, verified_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL)",
        )
        .bind(c.id.to_string())
        .bind(c.customer_id.to_string())
        .bind(c.purpose.as_str())
        .bind(c.reference.as_deref())
        .bind(c.factor.as_str())
        .bind(c.code_digest.as_deref())
        .bind(c.passkey_state.as_deref())
        .bind(to_micros(c.created_at))
        .bind(to_micros(c.expires_at))
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    pub async fn challenge(&self, id: Uuid) -> Result<Option<ChallengeRow>, DbError> {
        let raw: Option<RawChallenge> = sqlx::query_as(
            "SELECT id, customer_id, purpose, reference, factor, code_digest, passkey_state, created_at, \
             expires_at, verified_at FROM step_up_challenges WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(self.db.reader())
        .await?;
        Ok(raw.and_then(RawChallenge::parse))
    }

    /// Marks the challenge verified and stores its token, in one transaction; false
    /// (nothing written) when another request verified it first.
    pub async fn complete_challenge(
        &self,
        challenge: &ChallengeRow,
        token: NewToken<'_>,
        now: Timestamp,
    ) -> Result<bool, DbError> {
        let mut tx = self.db.begin().await?;
        let marked =
            sqlx::query("UPDATE step_up_challenges SET verified_at = $2 WHERE id = $1 AND verified_at IS NULL")
                .bind(challenge.id.to_string())
                .bind(to_micros(now))
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if marked != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO step_up_tokens (token_hash, customer_id, challenge_id, purpose, reference, factor, \
             created_at, expires_at, used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)",
        )
        .bind(token.token_hash)
        .bind(challenge.customer_id.to_string())
        .bind(challenge.id.to_string())
        .bind(challenge.purpose.as_str())
        .bind(challenge.reference.as_deref())
        .bind(challenge.factor.as_str())
        .bind(to_micros(now))
        .bind(to_micros(token.expires_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Redeems a token: the one statement that can succeed once. Returns the factor it
    /// was earned with, or `None` when it is unknown, someone else's, used, expired or
    /// for another purpose.
    pub async fn redeem_token(
        &self,
        token_hash: &str,
        customer: Uuid,
        purpose: &str,
        now: Timestamp,
    ) -> Result<Option<Factor>, DbError> {
        let factor: Option<String> = sqlx::query_scalar(
            "UPDATE step_up_tokens SET used_at = $4 WHERE token_hash = $1 AND customer_id = $2 \
             AND purpose = $3 AND used_at IS NULL AND expires_at > $4 RETURNING factor",
        )
        .bind(token_hash)
        .bind(customer.to_string())
        .bind(purpose)
        .bind(to_micros(now))
        .fetch_optional(self.db.writer())
        .await?;
        Ok(factor.as_deref().and_then(Factor::parse))
    }

    /// A customer's token by hash: (purpose, expiry, used, factor).
    pub async fn token(
        &self,
        token_hash: &str,
        customer: Uuid,
    ) -> Result<Option<(String, Timestamp, bool, String)>, DbError> {
        let row: Option<(String, i64, Option<i64>, String)> = sqlx::query_as(
            "SELECT purpose, expires_at, used_at, factor FROM step_up_tokens WHERE token_hash = $1 AND customer_id = $2",
        )
        .bind(token_hash)
        .bind(customer.to_string())
        .fetch_optional(self.db.writer())
        .await?;
        Ok(row.map(|(p, e, u, f)| (p, from_micros(e), u.is_some(), f)))
    }

    // ---- PIN ----

    pub async fn pin_hash(&self, customer: Uuid) -> Result<Option<String>, DbError> {
        Ok(
            sqlx::query_scalar("SELECT pin_hash FROM step_up_pins WHERE customer_id = $1")
                .bind(customer.to_string())
                .fetch_optional(self.db.reader())
                .await?,
        )
    }

    /// Sets the PIN. `replacing`: the hash the caller verified the old PIN against; the
    /// write only happens if it is still the stored one (a concurrent change wins once).
    /// False when the guard refused.
    pub async fn put_pin(
        &self,
        customer: Uuid,
        hash: &str,
        replacing: Option<&str>,
        now: Timestamp,
    ) -> Result<bool, DbError> {
        let changed = match replacing {
            None => sqlx::query(
                "INSERT INTO step_up_pins (customer_id, pin_hash, created_at, updated_at) VALUES ($1, $2, $3, $3) \
                 ON CONFLICT (customer_id) DO NOTHING",
            )
            .bind(customer.to_string())
            .bind(hash)
            .bind(to_micros(now))
            .execute(self.db.writer())
            .await?
            .rows_affected(),
            Some(old) => sqlx::query(
                "UPDATE step_up_pins SET pin_hash = $2, updated_at = $3 WHERE customer_id = $1 AND pin_hash = $4",
            )
            .bind(customer.to_string())
            .bind(hash)
            .bind(to_micros(now))
            .bind(old)
            .execute(self.db.writer())
            .await?
            .rows_affected(),
        };
        Ok(changed == 1)
    }

    // ---- TOTP ----

    pub async fn totp(&self, customer: Uuid) -> Result<Option<TotpRow>, DbError> {
        let row: Option<(String, i64, Option<i64>)> =
            sqlx::query_as("SELECT secret, confirmed, last_step FROM step_up_totp WHERE customer_id = $1")
                .bind(customer.to_string())
                .fetch_optional(self.db.writer())
                .await?;
        Ok(row.map(|(secret, confirmed, last_step)| TotpRow {
            secret,
            confirmed: flag(confirmed),
            last_step,
        }))
    }

    /// Stores a new, unconfirmed secret (replacing an unconfirmed one); false when a
    /// confirmed secret is already enrolled.
    pub async fn start_totp(&self, customer: Uuid, secret: &str, now: Timestamp) -> Result<bool, DbError> {
        Ok(sqlx::query(
            "INSERT INTO step_up_totp (customer_id, secret, confirmed, last_step, created_at, confirmed_at) \
             VALUES ($1, $2, 0, NULL, $3, NULL) \
             ON CONFLICT (customer_id) DO UPDATE SET secret = $2, created_at = $3 WHERE step_up_totp.confirmed = 0",
        )
        .bind(customer.to_string())
        .bind(secret)
        .bind(to_micros(now))
        .execute(self.db.writer())
        .await?
        .rows_affected()
            == 1)
    }

    /// Accepts a TOTP step: confirms the enrolment when `confirming`, and records the
    /// step so the same code never passes again. False when a concurrent request took
    /// this step (or a later one) first.
    pub async fn accept_totp_step(
        &self,
        customer: Uuid,
        secret: &str,
        step: i64,
        confirming: bool,
        now: Timestamp,
    ) -> Result<bool, DbError> {
        Ok(sqlx::query(
            "UPDATE step_up_totp SET last_step = $2, confirmed = 1, \
             confirmed_at = CASE WHEN confirmed = 1 THEN confirmed_at ELSE $3 END \
             WHERE customer_id = $1 AND secret = $4 AND confirmed = $5 AND (last_step IS NULL OR last_step < $2)",
        )
        .bind(customer.to_string())
        .bind(step)
        .bind(to_micros(now))
        .bind(secret)
        .bind(if confirming { 0i64 } else { 1i64 })
        .execute(self.db.writer())
        .await?
        .rows_affected()
            == 1)
    }

    // ---- failure counters ----

    pub async fn failures(&self, customer: Uuid, factor: Factor) -> Result<FailureState, DbError> {
        let row: Option<(i64, Option<i64>)> = sqlx::query_as(
            "SELECT failures, locked_until FROM step_up_failures WHERE customer_id = $1 AND factor = $2",
        )
        .bind(customer.to_string())
        .bind(factor.as_str())
        .fetch_optional(self.db.writer())
        .await?;
        Ok(row
            .map(|(failures, locked)| FailureState {
                failures,
                locked_until: locked.map(from_micros),
            })
            .unwrap_or_default())
    }

    pub async fn all_failures(&self, customer: Uuid) -> Result<Vec<(String, FailureState)>, DbError> {
        let rows: Vec<(String, i64, Option<i64>)> =
            sqlx::query_as("SELECT factor, failures, locked_until FROM step_up_failures WHERE customer_id = $1")
                .bind(customer.to_string())
                .fetch_all(self.db.reader())
                .await?;
        Ok(rows
            .into_iter()
            .map(|(f, failures, locked)| {
                (
                    f,
                    FailureState {
                        failures,
                        locked_until: locked.map(from_micros),
                    },
                )
            })
            .collect())
    }

    /// Counts one failure atomically and returns the consecutive count including it. A
    /// lock whose cool-down has passed starts the count again.
    pub async fn count_failure(&self, customer: Uuid, factor: Factor, now: Timestamp) -> Result<i64, DbError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO step_up_failures (customer_id, factor, failures, locked_until) VALUES ($1, $2, 1, NULL) \
             ON CONFLICT (customer_id, factor) DO UPDATE SET \
             failures = CASE WHEN step_up_failures.locked_until IS NOT NULL AND step_up_failures.locked_until <= $3 \
                        THEN 1 ELSE step_up_failures.failures + 1 END, \
             locked_until = CASE WHEN step_up_failures.locked_until IS NOT NULL AND step_up_failures.locked_until <= $3 \
                        THEN NULL ELSE step_up_failures.locked_until END \
             RETURNING failures",
        )
        .bind(customer.to_string())
        .bind(factor.as_str())
        .bind(to_micros(now))
        .fetch_one(self.db.writer())
        .await?)
    }

    pub async fn lock(&self, customer: Uuid, factor: Factor, until: Timestamp) -> Result<(), DbError> {
        sqlx::query("UPDATE step_up_failures SET locked_until = $3 WHERE customer_id = $1 AND factor = $2")
            .bind(customer.to_string())
            .bind(factor.as_str())
            .bind(to_micros(until))
            .execute(self.db.writer())
            .await?;
        Ok(())
    }

    pub async fn reset_failures(&self, customer: Uuid, factor: Factor) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE step_up_failures SET failures = 0, locked_until = NULL WHERE customer_id = $1 AND factor = $2",
        )
        .bind(customer.to_string())
        .bind(factor.as_str())
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    // ---- attempts and outbox ----

    pub async fn record_attempt(
        &self,
        customer: Uuid,
        factor: &str,
        action: &str,
        challenge: Option<Uuid>,
        outcome: &str,
        now: Timestamp,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO step_up_attempts (id, customer_id, factor, action, challenge_id, outcome, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(new_id().to_string())
        .bind(customer.to_string())
        .bind(factor)
        .bind(action)
        .bind(challenge.map(|c| c.to_string()))
        .bind(outcome)
        .bind(to_micros(now))
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    pub async fn push_outbox(&self, customer: Uuid, channel: &str, body: &str, now: Timestamp) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO step_up_outbox (id, customer_id, channel, body, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(new_id().to_string())
        .bind(customer.to_string())
        .bind(channel)
        .bind(body)
        .bind(to_micros(now))
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    /// The newest outbox messages, optionally of one customer.
    pub async fn outbox(&self, customer: Option<Uuid>, limit: i64) -> Result<Vec<OutboxRow>, DbError> {
        let rows =
            match customer {
                Some(c) => {
                    sqlx::query_as(
                        "SELECT id, customer_id, channel, body, created_at FROM step_up_outbox WHERE customer_id = $1 \
                     ORDER BY id DESC LIMIT $2",
                    )
                    .bind(c.to_string())
                    .bind(limit)
                    .fetch_all(self.db.reader())
                    .await?
                }
                None => sqlx::query_as(
                    "SELECT id, customer_id, channel, body, created_at FROM step_up_outbox ORDER BY id DESC LIMIT $1",
                )
                .bind(limit)
                .fetch_all(self.db.reader())
                .await?,
            };
        Ok(rows)
    }

    // ---- passkeys ----

    /// A customer's passkeys: (id, serialised passkey).
    pub async fn passkeys(&self, customer: Uuid) -> Result<Vec<(String, String)>, DbError> {
        Ok(
            sqlx::query_as("SELECT id, passkey FROM step_up_passkeys WHERE customer_id = $1 ORDER BY id")
                .bind(customer.to_string())
                .fetch_all(self.db.reader())
                .await?,
        )
    }

    pub async fn has_passkey(&self, customer: Uuid) -> Result<bool, DbError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM step_up_passkeys WHERE customer_id = $1")
            .bind(customer.to_string())
            .fetch_one(self.db.reader())
            .await?;
        Ok(n > 0)
    }

    pub async fn start_passkey_registration(
        &self,
        id: Uuid,
        customer: Uuid,
        state: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO step_up_passkey_registrations (id, customer_id, state, created_at, expires_at, finished_at) \
             VALUES ($1, $2, $3, $4, $5, NULL)",
        )
        .bind(id.to_string())
        .bind(customer.to_string())
        .bind(state)
        .bind(to_micros(now))
        .bind(to_micros(expires_at))
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    /// A customer's registration in progress: (state, expires_at, finished).
    pub async fn passkey_registration(
        &self,
        id: Uuid,
        customer: Uuid,
    ) -> Result<Option<(String, Timestamp, bool)>, DbError> {
        let row: Option<(String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT state, expires_at, finished_at FROM step_up_passkey_registrations WHERE id = $1 AND customer_id = $2",
        )
        .bind(id.to_string())
        .bind(customer.to_string())
        .fetch_optional(self.db.reader())
        .await?;
        Ok(row.map(|(s, e, f)| (s, from_micros(e), f.is_some())))
    }

    /// Finishes a registration and stores its passkey in one transaction; false when the
    /// registration was already finished.
    pub async fn finish_passkey_registration(
        &self,
        registration: Uuid,
        customer: Uuid,
        passkey_id: Uuid,
        credential_id: &str,
        passkey: &str,
        now: Timestamp,
    ) -> Result<bool, DbError> {
        let mut tx = self.db.begin().await?;
        let marked = sqlx::query(
            "UPDATE step_up_passkey_registrations SET finished_at = $2 WHERE id = $1 AND finished_at IS NULL",
        )
        .bind(registration.to_string())
        .bind(to_micros(now))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if marked != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO step_up_passkeys (id, customer_id, credential_id, passkey, created_at, last_used_at) \
             VALUES ($1, $2, $3, $4, $5, NULL)",
        )
        .bind(passkey_id.to_string())
        .bind(customer.to_string())
        .bind(credential_id)
        .bind(passkey)
        .bind(to_micros(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Stores a passkey's updated counter after a successful use.
    pub async fn touch_passkey(&self, id: &str, passkey: &str, now: Timestamp) -> Result<(), DbError> {
        sqlx::query("UPDATE step_up_passkeys SET passkey = $2, last_used_at = $3 WHERE id = $1")
            .bind(id)
            .bind(passkey)
            .bind(to_micros(now))
            .execute(self.db.writer())
            .await?;
        Ok(())
    }
}
