//! The SQL of check-in: `checkins` (one row per customer and local day), `checkin_rewards`
//! (rewards planned with the check-in that earned them, marked once the ledger posted them)
//! and `checkin_customers` (the per-customer row a write locks, and make-up cards used).
//!
//! Queries that take an executor run either inside the caller's transaction (`&mut *tx`)
//! or on a pool; dates are stored as `YYYY-MM-DD` text, which sorts as dates do.

use huoban_kit::{Backend, Db, DbError, clock::to_micros, ids::new_id};
use jiff::{Timestamp, civil::Date};
use sqlx::{Any, AnyConnection, Executor, Transaction};
use uuid::Uuid;

use super::domain::{DayKind, Days, PaidMilestone, Plan, Reward, RewardReason, parse_date};

/// The make-up cards a customer has used, and the month they count for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CardsUsed {
    pub month: String,
    pub used: i64,
}

/// A stored check-in or make-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayRow {
    pub date: Date,
    pub kind: DayKind,
    pub streak_after: i64,
}

/// A reward row: what is owed or was paid for a day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewardRow {
    pub reward: Reward,
    pub source_date: Date,
    pub transfer_id: Option<String>,
}

#[derive(Debug, sqlx::FromRow)]
struct RawReward {
    local_date: String,
    reason: String,
    points: i64,
    source_date: String,
    transfer_id: Option<String>,
}

impl RawReward {
    /// `None` for a row this version cannot read (e.g. a reason from a newer node).
    fn parse(self) -> Option<RewardRow> {
        Some(RewardRow {
            reward: Reward {
                date: parse_date(&self.local_date)?,
                reason: RewardReason::parse(&self.reason)?,
                points: self.points,
            },
            source_date: parse_date(&self.source_date)?,
            transfer_id: self.transfer_id,
        })
    }
}

const REWARD_COLUMNS: &str = "local_date, reason, points, source_date, transfer_id";

#[derive(Debug, Clone)]
pub struct CheckinStore {
    db: Db,
}

impl CheckinStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub async fn begin(&self) -> Result<Transaction<'static, Any>, DbError> {
        self.db.begin().await
    }

    /// Creates the customer's row if missing and locks it for the rest of the transaction,
    /// so one customer's check-ins and make-ups are planned and written one at a time (two
    /// at once could both see a milestone unpaid). PostgreSQL takes a row lock; SQLite has
    /// one writer connection, so a write transaction is already exclusive.
    #[tracing::instrument(skip_all, fields(customer = %customer))]
    pub async fn lock_customer(
        &self,
        conn: &mut AnyConnection,
        customer: Uuid,
        now: Timestamp,
    ) -> Result<CardsUsed, DbError> {
        sqlx::query(
            "INSERT INTO checkin_customers (customer_id, cards_month, cards_used, updated_at) \
             VALUES ($1, '', 0, $2) ON CONFLICT (customer_id) DO NOTHING",
        )
        .bind(customer.to_string())
        .bind(to_micros(now))
        .execute(&mut *conn)
        .await?;
        let sql = match self.db.backend() {
            Backend::Postgres => {
                "SELECT cards_month, cards_used FROM checkin_customers WHERE customer_id = $1 FOR UPDATE"
            }
            Backend::Sqlite => "SELECT cards_month, cards_used FROM checkin_customers WHERE customer_id = $1",
        };
        let (month, used): (String, i64) = sqlx::query_as(sql)
            .bind(customer.to_string())
            .fetch_one(&mut *conn)
            .await?;
        Ok(CardsUsed { month, used })
    }

    /// Make-up cards used, without locking (for reads).
    pub async fn cards_used(&self, customer: Uuid) -> Result<CardsUsed, DbError> {
        let row: Option<(String, i64)> =
            sqlx::query_as("SELECT cards_month, cards_used FROM checkin_customers WHERE customer_id = $1")
                .bind(customer.to_string())
                .fetch_optional(self.db.reader())
                .await?;
        Ok(row.map(|(month, used)| CardsUsed { month, used }).unwrap_or_default())
    }

    /// Records one more card used in `month` (the caller holds the customer's lock).
    pub async fn use_card(
        &self,
        conn: &mut AnyConnection,
        customer: Uuid,
        month: &str,
        used_after: i64,
        now: Timestamp,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE checkin_customers SET cards_month = $2, cards_used = $3, updated_at = $4 WHERE customer_id = $1",
        )
        .bind(customer.to_string())
        .bind(month)
        .bind(used_after)
        .bind(to_micros(now))
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Every day the customer has, checked in or made up.
    pub async fn days<'e>(&self, exec: impl Executor<'e, Database = Any>, customer: Uuid) -> Result<Days, DbError> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT local_date, kind FROM checkins WHERE customer_id = $1 ORDER BY local_date")
                .bind(customer.to_string())
                .fetch_all(exec)
                .await?;
        let mut days = Days::new();
        for (date, kind) in rows {
            if let (Some(date), Some(kind)) = (parse_date(&date), DayKind::parse(&kind)) {
                days.insert(date, kind);
            }
        }
        Ok(days)
    }

    /// Milestones paid or planned, for the once-per-run rule.
    pub async fn paid_milestones<'e>(
        &self,
        exec: impl Executor<'e, Database = Any>,
        customer: Uuid,
    ) -> Result<Vec<PaidMilestone>, DbError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT local_date, streak_days FROM checkin_rewards WHERE customer_id = $1 AND streak_days > 0",
        )
        .bind(customer.to_string())
        .fetch_all(exec)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(date, days)| {
                Some(PaidMilestone {
                    date: parse_date(&date)?,
                    days: i32::try_from(days).ok()?,
                })
            })
            .collect())
    }

    /// Writes the day and the rewards it earned, in the caller's transaction. A second row
    /// for the same customer and day is refused by `checkins_customer_day`
    /// (`DbError::Conflict`).
    #[tracing::instrument(skip_all, fields(customer = %customer, date = %plan.date))]
    pub async fn insert_plan(
        &self,
        conn: &mut AnyConnection,
        customer: Uuid,
        plan: &Plan,
        now: Timestamp,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO checkins (id, customer_id, local_date, kind, at, streak_after) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(new_id().to_string())
        .bind(customer.to_string())
        .bind(plan.date.to_string())
        .bind(plan.kind.as_str())
        .bind(to_micros(now))
        .bind(i64::from(plan.streak_after))
        .execute(&mut *conn)
        .await?;
        for reward in &plan.rewards {
            let streak_days = match reward.reason {
                RewardReason::Base => 0,
                RewardReason::Streak(days) => i64::from(days),
            };
            sqlx::query(
                "INSERT INTO checkin_rewards \
                 (customer_id, local_date, reason, streak_days, points, source_date, transfer_id, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, NULL, $7)",
            )
            .bind(customer.to_string())
            .bind(reward.date.to_string())
            .bind(reward.reason.as_string())
            .bind(streak_days)
            .bind(reward.points)
            .bind(plan.date.to_string())
            .bind(to_micros(now))
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    /// Rewards planned but not yet posted to the ledger, oldest first.
    pub async fn owed_rewards(&self, customer: Uuid) -> Result<Vec<RewardRow>, DbError> {
        let rows: Vec<RawReward> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {REWARD_COLUMNS} FROM checkin_rewards \
             WHERE customer_id = $1 AND transfer_id IS NULL ORDER BY local_date, reason"
        )))
        .bind(customer.to_string())
        .fetch_all(self.db.reader())
        .await?;
        Ok(rows.into_iter().filter_map(RawReward::parse).collect())
    }

    /// The rewards a day's check-in or make-up earned.
    pub async fn rewards_earned_on(&self, customer: Uuid, source_date: Date) -> Result<Vec<RewardRow>, DbError> {
        let rows: Vec<RawReward> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {REWARD_COLUMNS} FROM checkin_rewards \
             WHERE customer_id = $1 AND source_date = $2 ORDER BY local_date, reason"
        )))
        .bind(customer.to_string())
        .bind(source_date.to_string())
        .fetch_all(self.db.reader())
        .await?;
        Ok(rows.into_iter().filter_map(RawReward::parse).collect())
    }

    /// Records the ledger transfer that paid a reward.
    pub async fn mark_posted(&self, customer: Uuid, reward: &Reward, transfer_id: Uuid) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE checkin_rewards SET transfer_id = $4 \
             WHERE customer_id = $1 AND local_date = $2 AND reason = $3 AND transfer_id IS NULL",
        )
        .bind(customer.to_string())
        .bind(reward.date.to_string())
        .bind(reward.reason.as_string())
        .bind(transfer_id.to_string())
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    /// One stored day.
    pub async fn day(&self, customer: Uuid, date: Date) -> Result<Option<DayRow>, DbError> {
        let row: Option<(String, i64)> =
            sqlx::query_as("SELECT kind, streak_after FROM checkins WHERE customer_id = $1 AND local_date = $2")
                .bind(customer.to_string())
                .bind(date.to_string())
                .fetch_optional(self.db.reader())
                .await?;
        Ok(row.and_then(|(kind, streak_after)| {
            Some(DayRow {
                date,
                kind: DayKind::parse(&kind)?,
                streak_after,
            })
        }))
    }
}
