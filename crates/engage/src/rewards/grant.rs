//! A prize granted inside the caller's database transaction
//! ([`RewardsService::grant_in`]), for capabilities whose own rows must commit with the
//! coupon — a campaign rule's effect and its coupon budget, a task claim. It follows the
//! same rules as [`RewardsService::grant`] (window, stock, per-customer limit, idempotent
//! on the key), but a grant costs no points, so it needs no ledger step and is written
//! `claimed` at once: it exists exactly when the caller's transaction commits.
//!
//! The stock row is taken first (its guarded update locks it), then the claim row and the
//! customer's count — the order the claim writer takes them — so on PostgreSQL a grant and
//! a concurrent claim of the same reward wait for each other instead of deadlocking. A
//! refusal rolls back a savepoint: nothing of it stays, and the caller's transaction goes
//! on.

use huoban_kit::{ApiError, DbError, clock::to_micros, idempotency, ids::new_id};
use jiff::Timestamp;
use sqlx::{Acquire, AnyConnection};
use uuid::Uuid;

use super::{
    domain::{ClaimState, CouponCode, Refusal, coupon_valid_until},
    service::{ClaimView, RewardsService, claim_view, failure_problem, random_bits},
    store::{CLAIM_COLUMNS, ClaimRow, RewardRow},
};

impl RewardsService {
    /// Grants a unit of `reward` to `customer` as a prize, inside the caller's open
    /// transaction on `conn`. The outer `Err` is a storage failure (roll back); the inner
    /// one a refusal (`out-of-stock`, `claim-limit-reached`, `reward-not-claimable`, or the
    /// stored problem of an earlier released claim with this key) that wrote nothing. A key
    /// granted before answers its coupon again.
    pub async fn grant_in(
        &self,
        conn: &mut AnyConnection,
        customer: Uuid,
        reward: &RewardRow,
        key: &str,
        now: Timestamp,
    ) -> Result<Result<ClaimView, ApiError>, DbError> {
        if let Some(existing) = claim_by_key(conn, customer, key).await? {
            return replay(conn, existing, reward, now).await;
        }
        if let Err(refusal) = super::service::window_of(reward).check(now) {
            return Ok(Err(refusal.into()));
        }
        let valid_until = to_micros(coupon_valid_until(now, reward.coupon_valid_days));
        let at = to_micros(now);
        let mut savepoint = conn.begin().await?;
        let taken = sqlx::query(
            "UPDATE reward_stock SET claimed = claimed + 1 WHERE reward_id = $1 AND claimed + reserved < total",
        )
        .bind(&reward.id)
        .execute(&mut *savepoint)
        .await?
        .rows_affected();
        if taken == 0 {
            savepoint.rollback().await?;
            return Ok(Err(Refusal::OutOfStock.into()));
        }
        let inserted = sqlx::query(
            "INSERT INTO reward_claims (id, reward_id, customer_id, idem_key, state, points, code, created_at, \
             updated_at, claimed_at, valid_until) VALUES ($1, $2, $3, $4, 'claimed', 0, $5, $6, $6, $6, $7) \
             ON CONFLICT (customer_id, idem_key) DO NOTHING",
        )
        .bind(new_id().to_string())
        .bind(&reward.id)
        .bind(customer.to_string())
        .bind(key)
        .bind(CouponCode::from_random(random_bits()).to_string())
        .bind(at)
        .bind(valid_until)
        .execute(&mut *savepoint)
        .await?
        .rows_affected();
        if inserted == 0 {
            // Unreachable after the lookup above unless another transaction committed the key.
            savepoint.rollback().await?;
            return match claim_by_key(conn, customer, key).await? {
                Some(existing) => replay(conn, existing, reward, now).await,
                None => Err(DbError::NotFound),
            };
        }
        let counted = sqlx::query(
            "INSERT INTO reward_holders (reward_id, customer_id, held) VALUES ($1, $2, 1) \
             ON CONFLICT (reward_id, customer_id) DO UPDATE SET held = reward_holders.held + 1 \
             WHERE reward_holders.held < $3",
        )
        .bind(&reward.id)
        .bind(customer.to_string())
        .bind(reward.per_customer_limit)
        .execute(&mut *savepoint)
        .await?
        .rows_affected();
        if counted == 0 {
            savepoint.rollback().await?;
            return Ok(Err(Refusal::LimitReached {
                limit: reward.per_customer_limit,
            }
            .into()));
        }
        savepoint.commit().await?;
        Ok(match claim_by_key(conn, customer, key).await? {
            Some(claim) => Ok(claim_view(&claim)),
            None => Err(ApiError::internal("a granted claim vanished")),
        })
    }
}

async fn claim_by_key(conn: &mut AnyConnection, customer: Uuid, key: &str) -> Result<Option<ClaimRow>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {CLAIM_COLUMNS} FROM reward_claims WHERE customer_id = $1 AND idem_key = $2"
    )))
    .bind(customer.to_string())
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?)
}

/// The answer for a key used before: its coupon, its stored problem, or — for a grant an
/// older, two-step path left `reserved` — the grant finished now, in this transaction.
async fn replay(
    conn: &mut AnyConnection,
    claim: ClaimRow,
    reward: &RewardRow,
    now: Timestamp,
) -> Result<Result<ClaimView, ApiError>, DbError> {
    if claim.reward_id != reward.id || claim.points != 0 {
        return Ok(Err(idempotency::mismatch()));
    }
    match claim.state() {
        Some(ClaimState::Claimed) => Ok(Ok(claim_view(&claim))),
        Some(ClaimState::Released) => Ok(Err(failure_problem(claim.failure.as_deref()))),
        Some(ClaimState::Reserved) => {
            // The stock row first, as everywhere (a no-op write takes its lock).
            sqlx::query("UPDATE reward_stock SET total = total WHERE reward_id = $1")
                .bind(&claim.reward_id)
                .execute(&mut *conn)
                .await?;
            let at = to_micros(now);
            let moved = sqlx::query(
                "UPDATE reward_claims SET state = 'claimed', updated_at = $2, claimed_at = $2, valid_until = $3 \
                 WHERE id = $1 AND state = 'reserved'",
            )
            .bind(&claim.id)
            .bind(at)
            .bind(to_micros(coupon_valid_until(now, reward.coupon_valid_days)))
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if moved == 1 {
                sqlx::query(
                    "UPDATE reward_stock SET reserved = reserved - 1, claimed = claimed + 1 WHERE reward_id = $1",
                )
                .bind(&claim.reward_id)
                .execute(&mut *conn)
                .await?;
            }
            Ok(
                match claim_by_key(conn, claim.customer_id.parse().unwrap_or_default(), &claim.idem_key).await? {
                    Some(c) if c.state() == Some(ClaimState::Claimed) => Ok(claim_view(&c)),
                    Some(c) => Err(failure_problem(c.failure.as_deref())),
                    None => Err(ApiError::internal("a granted claim vanished")),
                },
            )
        }
        None => Ok(Err(ApiError::internal(format!(
            "claim {} has an unknown state",
            claim.id
        )))),
    }
}
