//! The SQL of rewards: `rewards` (the catalog), `reward_stock` (one contended row per
//! reward), `reward_holders` (claims held per customer and reward) and `reward_claims`
//! (one row per claim, keyed by the customer's idempotency key).
//!
//! Every stock movement is a guarded single-statement update whose `rows_affected` says
//! whether it happened, so the guard and the write are one atomic step on both backends
//! (PostgreSQL re-checks the `WHERE` after waiting for a concurrent writer's row lock;
//! SQLite has one writer connection). Claim state changes are conditional on the state
//! they leave (`WHERE state = 'reserved'`), so of a live request and recovery racing on
//! the same claim exactly one moves the stock.

use std::collections::BTreeMap;

use huoban_kit::{Db, DbError, clock::to_micros};
use jiff::Timestamp;
use uuid::Uuid;

use super::{
    domain::{ClaimState, NewReward},
    writer::{ClaimOp, ClaimWriter, Done},
};

/// A catalog entry with its stock.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RewardRow {
    pub id: String,
    pub titles: String,
    pub points_price: i64,
    pub per_customer_limit: i64,
    pub claimable_from: i64,
    pub claimable_until: i64,
    pub coupon_valid_days: i64,
    pub created_at: i64,
    /// The campaign it belongs to: claimable only while that campaign is live for the customer.
    pub campaign_id: Option<String>,
    pub total: i64,
    pub claimed: i64,
    pub reserved: i64,
}

impl RewardRow {
    pub fn titles(&self) -> BTreeMap<String, String> {
        serde_json::from_str(&self.titles).unwrap_or_default()
    }
}

const REWARD_COLUMNS: &str = "r.id, r.titles, r.points_price, r.per_customer_limit, r.claimable_from, \
     r.claimable_until, r.coupon_valid_days, r.created_at, r.campaign_id, s.total, s.claimed, s.reserved";

/// A reward as one claim attempt sees it: see [`RewardsStore::outlook`].
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Outlook {
    #[sqlx(flatten)]
    pub reward: RewardRow,
    /// Claims the customer holds, reserved or claimed.
    pub held: i64,
    /// The claim this customer already made with the same key, if any.
    pub key_claim: Option<String>,
}

/// A stored claim.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ClaimRow {
    pub id: String,
    pub reward_id: String,
    pub customer_id: String,
    pub idem_key: String,
    pub state: String,
    pub points: i64,
    pub code: String,
    pub failure: Option<String>,
    pub transfer_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub claimed_at: Option<i64>,
    pub valid_until: Option<i64>,
}

impl ClaimRow {
    pub fn state(&self) -> Option<ClaimState> {
        ClaimState::parse(&self.state)
    }
}

pub(super) const CLAIM_COLUMNS: &str = "id, reward_id, customer_id, idem_key, state, points, code, failure, transfer_id, \
     created_at, updated_at, claimed_at, valid_until";

/// A claim about to be reserved.
#[derive(Debug, Clone)]
pub struct NewClaim {
    pub id: Uuid,
    pub reward_id: Uuid,
    pub customer_id: Uuid,
    pub idem_key: String,
    pub points: i64,
    pub code: String,
    pub per_customer_limit: i64,
}

impl NewClaim {
    /// The row step 1 writes for this claim at `now`.
    pub fn row(&self, now: Timestamp) -> ClaimRow {
        ClaimRow {
            id: self.id.to_string(),
            reward_id: self.reward_id.to_string(),
            customer_id: self.customer_id.to_string(),
            idem_key: self.idem_key.clone(),
            state: ClaimState::Reserved.as_str().to_owned(),
            points: self.points,
            code: self.code.clone(),
            failure: None,
            transfer_id: None,
            created_at: to_micros(now),
            updated_at: to_micros(now),
            claimed_at: None,
            valid_until: None,
        }
    }
}

/// What step 1 of a claim did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// A unit of stock is reserved and the claim row written, in one commit.
    Reserved,
    /// The customer already used this key: nothing was written; load the first claim.
    Replay,
    /// Nothing was written.
    LimitReached,
    /// Nothing was written.
    OutOfStock,
}

#[derive(Debug, Clone)]
pub struct RewardsStore {
    db: Db,
    writer: ClaimWriter,
}

impl RewardsStore {
    pub fn new(db: Db) -> Self {
        Self {
            writer: ClaimWriter::new(db.clone()),
            db,
        }
    }

    #[tracing::instrument(skip_all, fields(reward = %id))]
    pub async fn insert_reward(&self, id: Uuid, new: &NewReward, staff: Uuid, now: Timestamp) -> Result<(), DbError> {
        let titles = serde_json::to_string(new.titles()).unwrap_or_else(|_| "{}".into());
        let mut tx = self.db.begin().await?;
        sqlx::query(
            "INSERT INTO rewards (id, titles, points_price, per_customer_limit, claimable_from, claimable_until, \
             coupon_valid_days, created_by, created_at, campaign_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(id.to_string())
        .bind(titles)
        .bind(new.points_price())
        .bind(new.per_customer_limit())
        .bind(to_micros(new.window().from))
        .bind(to_micros(new.window().until))
        .bind(new.coupon_valid_days())
        .bind(staff.to_string())
        .bind(to_micros(now))
        .bind(new.campaign_id())
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO reward_stock (reward_id, total, claimed, reserved) VALUES ($1, $2, 0, 0)")
            .bind(id.to_string())
            .bind(new.total_stock())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn reward(&self, id: Uuid) -> Result<Option<RewardRow>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {REWARD_COLUMNS} FROM rewards r JOIN reward_stock s ON s.reward_id = r.id WHERE r.id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(self.db.reader())
        .await?)
    }

    /// Rewards newest first, after the cursor id; with `open_at`, only those claimable then.
    pub async fn rewards(
        &self,
        open_at: Option<Timestamp>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RewardRow>, DbError> {
        let window = if open_at.is_some() {
            "AND r.claimable_from <= $3 AND r.claimable_until > $3"
        } else {
            ""
        };
        let query = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {REWARD_COLUMNS} FROM rewards r JOIN reward_stock s ON s.reward_id = r.id \
             WHERE r.id < $1 {window} ORDER BY r.id DESC LIMIT $2"
        )))
        .bind(after.unwrap_or("~"))
        .bind(i64::from(limit) + 1);
        // PostgreSQL refuses a parameter the statement does not use.
        let query = match open_at {
            Some(at) => query.bind(to_micros(at)),
            None => query,
        };
        Ok(query.fetch_all(self.db.reader()).await?)
    }

    /// Everything a claim decides before writing, in ONE statement so it is one snapshot
    /// on both backends (a statement is its own read transaction on SQLite, and sees one
    /// snapshot under PostgreSQL's read committed): the reward and its stock, how many the
    /// customer holds, and whether this customer already used the key. Read on the reader
    /// pool: nothing here is written, and on SQLite it never waits behind the writer.
    pub async fn outlook(&self, reward: Uuid, customer: Uuid, key: &str) -> Result<Option<Outlook>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {REWARD_COLUMNS}, \
               COALESCE((SELECT h.held FROM reward_holders h WHERE h.reward_id = r.id AND h.customer_id = $2), 0) AS held, \
               (SELECT c.id FROM reward_claims c WHERE c.customer_id = $2 AND c.idem_key = $3) AS key_claim \
             FROM rewards r JOIN reward_stock s ON s.reward_id = r.id WHERE r.id = $1"
        )))
        .bind(reward.to_string())
        .bind(customer.to_string())
        .bind(key)
        .fetch_optional(self.db.reader())
        .await?)
    }

    /// What the customer holds (reserved or claimed) per reward id.
    pub async fn holdings(&self, customer: Uuid) -> Result<BTreeMap<String, i64>, DbError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT reward_id, held FROM reward_holders WHERE customer_id = $1")
                .bind(customer.to_string())
                .fetch_all(self.db.reader())
                .await?;
        Ok(rows.into_iter().collect())
    }

    pub async fn claim(&self, id: &str) -> Result<Option<ClaimRow>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CLAIM_COLUMNS} FROM reward_claims WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.db.writer())
        .await?)
    }

    /// Read on the writer pool: a replay must see the claim its first attempt just committed.
    pub async fn claim_by_key(&self, customer: Uuid, key: &str) -> Result<Option<ClaimRow>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CLAIM_COLUMNS} FROM reward_claims WHERE customer_id = $1 AND idem_key = $2"
        )))
        .bind(customer.to_string())
        .bind(key)
        .fetch_optional(self.db.writer())
        .await?)
    }

    /// Step 1: the claim row, the customer's count and a unit of stock, all or nothing,
    /// committed with the other claim writes of the moment ([`ClaimWriter`]).
    #[tracing::instrument(skip_all, fields(reward = %claim.reward_id, customer = %claim.customer_id))]
    pub async fn reserve(&self, claim: &NewClaim, now: Timestamp) -> Result<Reservation, DbError> {
        match self.writer.run(ClaimOp::Reserve(claim.clone()), now).await? {
            Done::Reserved(r) => Ok(r),
            Done::Moved(_) => Err(DbError::Other(sqlx::Error::Protocol(
                "the claim writer answered another step".into(),
            ))),
        }
    }

    /// Step 3: the claim becomes `claimed` and its unit moves from reserved to claimed.
    /// False when the claim was no longer reserved (finished or released by someone else).
    #[tracing::instrument(skip_all, fields(claim = %claim.id))]
    pub async fn finish(
        &self,
        claim: &ClaimRow,
        transfer_id: Option<&str>,
        now: Timestamp,
        valid_until: Timestamp,
    ) -> Result<bool, DbError> {
        let op = ClaimOp::Finish {
            claim: claim.id.clone(),
            reward: claim.reward_id.clone(),
            transfer_id: transfer_id.map(str::to_owned),
            valid_until,
        };
        self.writer.run(op, now).await.map(Done::moved)
    }

    /// The claim becomes `released` with the problem slug to answer on replay; its unit
    /// of stock and the customer's count are returned. False when it was no longer reserved.
    #[tracing::instrument(skip_all, fields(claim = %claim.id, failure))]
    pub async fn release(&self, claim: &ClaimRow, failure: &str, now: Timestamp) -> Result<bool, DbError> {
        let op = ClaimOp::Release {
            claim: claim.id.clone(),
            reward: claim.reward_id.clone(),
            customer: claim.customer_id.clone(),
            failure: failure.to_owned(),
        };
        self.writer.run(op, now).await.map(Done::moved)
    }

    /// Reservations untouched since `before`, oldest first.
    pub async fn stale_reservations(&self, before: Timestamp, limit: i64) -> Result<Vec<ClaimRow>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CLAIM_COLUMNS} FROM reward_claims WHERE state = 'reserved' AND updated_at < $1 \
             ORDER BY updated_at LIMIT $2"
        )))
        .bind(to_micros(before))
        .bind(limit)
        .fetch_all(self.db.writer())
        .await?)
    }

    /// The customer's coupons (claimed), newest first, with their reward's titles.
    pub async fn coupons(
        &self,
        customer: Uuid,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(ClaimRow, String)>, DbError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            claim: ClaimRow,
            titles: String,
        }
        let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {cols}, r.titles FROM reward_claims c JOIN rewards r ON r.id = c.reward_id \
             WHERE c.customer_id = $1 AND c.state = 'claimed' AND c.id < $2 ORDER BY c.id DESC LIMIT $3",
            cols = CLAIM_COLUMNS
                .split(", ")
                .map(|c| format!("c.{}", c.trim()))
                .collect::<Vec<_>>()
                .join(", ")
        )))
        .bind(customer.to_string())
        .bind(after.unwrap_or("~"))
        .bind(i64::from(limit) + 1)
        .fetch_all(self.db.reader())
        .await?;
        Ok(rows.into_iter().map(|r| (r.claim, r.titles)).collect())
    }
}
