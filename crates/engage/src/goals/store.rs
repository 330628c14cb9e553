//! The SQL of savings goals: `goals`, `goal_members`, `goal_contributions`,
//! `goal_milestones` and `goal_reminders` (see the migration for what each row means).
//! Dates are `YYYY-MM-DD` text, instants microseconds since the epoch.

use std::collections::BTreeMap;

use huoban_kit::{Db, DbError, clock::to_micros};
use jiff::{Timestamp, civil::Date};
use uuid::Uuid;

use super::domain::parse_date;

/// A stored goal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoalRow {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub name: String,
    pub category: Option<String>,
    pub target_amount: i64,
    pub target_date: Date,
    pub plan_start: Date,
    pub transfer_day: i8,
    pub pocket_id: Uuid,
    pub created_at: i64,
}

#[derive(Debug, sqlx::FromRow)]
struct RawGoal {
    id: String,
    owner_id: String,
    name: String,
    category: Option<String>,
    target_amount: i64,
    target_date: String,
    plan_start: String,
    transfer_day: i64,
    pocket_id: String,
    created_at: i64,
}

impl RawGoal {
    /// `None` for a row this version cannot read.
    fn parse(self) -> Option<GoalRow> {
        Some(GoalRow {
            id: Uuid::parse_str(&self.id).ok()?,
            owner_id: Uuid::parse_str(&self.owner_id).ok()?,
            name: self.name,
            category: self.category,
            target_amount: self.target_amount,
            target_date: parse_date(&self.target_date)?,
            plan_start: parse_date(&self.plan_start)?,
            transfer_day: i8::try_from(self.transfer_day).ok()?,
            pocket_id: Uuid::parse_str(&self.pocket_id).ok()?,
            created_at: self.created_at,
        })
    }
}

const GOAL_COLUMNS: &str = "g.id, g.owner_id, g.name, g.category, g.target_amount, g.target_date, g.plan_start, \
                            g.transfer_day, g.pocket_id, g.created_at";

/// A goal member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub customer_id: Uuid,
    /// `owner` or `partner`.
    pub role: String,
}

/// A reminder a node has claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedReminder {
    pub goal_id: Uuid,
    pub due_at: Timestamp,
}

/// A goal's automatic monthly transfer.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AutoTransferRow {
    pub goal_id: String,
    pub customer_id: String,
    pub from_account: String,
    pub transfer_day: i64,
    pub due_at: i64,
    pub month: String,
    pub attempts: i64,
}

const AUTO_COLUMNS: &str = "goal_id, customer_id, from_account, transfer_day, due_at, month, attempts";

/// A points-to-money offer for goals.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OfferRow {
    pub id: String,
    pub titles: String,
    pub campaign_id: Option<String>,
    pub points: i64,
    pub fen: i64,
    pub max_points: i64,
    pub created_at: i64,
}

impl OfferRow {
    /// The offer's titles by locale (empty when the stored JSON is unreadable).
    pub fn titles(&self) -> BTreeMap<String, String> {
        serde_json::from_str(&self.titles).unwrap_or_default()
    }
}

const OFFER_COLUMNS: &str = "id, titles, campaign_id, points, fen, max_points, created_at";

#[derive(Debug, Clone)]
pub struct GoalStore {
    db: Db,
}

impl GoalStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Writes a goal, its owner membership and its first reminder in one transaction.
    #[tracing::instrument(skip_all, fields(goal = %goal.id))]
    pub async fn insert_goal(&self, goal: &GoalRow, first_reminder: Option<Timestamp>) -> Result<(), DbError> {
        let mut tx = self.db.begin().await?;
        sqlx::query(
            "INSERT INTO goals (id, owner_id, name, category, target_amount, target_date, plan_start, \
             transfer_day, pocket_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(goal.id.to_string())
        .bind(goal.owner_id.to_string())
        .bind(&goal.name)
        .bind(&goal.category)
        .bind(goal.target_amount)
        .bind(goal.target_date.to_string())
        .bind(goal.plan_start.to_string())
        .bind(i64::from(goal.transfer_day))
        .bind(goal.pocket_id.to_string())
        .bind(goal.created_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO goal_members (goal_id, customer_id, role, added_at) VALUES ($1, $2, 'owner', $3)")
            .bind(goal.id.to_string())
            .bind(goal.owner_id.to_string())
            .bind(goal.created_at)
            .execute(&mut *tx)
            .await?;
        if let Some(due) = first_reminder {
            sqlx::query(
                "INSERT INTO goal_reminders (goal_id, due_at, claimed_until, updated_at) VALUES ($1, $2, 0, $3)",
            )
            .bind(goal.id.to_string())
            .bind(to_micros(due))
            .bind(goal.created_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The goal if `customer` is its owner or a partner; `None` otherwise, so someone
    /// else's goal looks exactly like a missing one.
    pub async fn goal_for_member(&self, goal: Uuid, customer: Uuid) -> Result<Option<GoalRow>, DbError> {
        let row: Option<RawGoal> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {GOAL_COLUMNS} FROM goals g JOIN goal_members m ON m.goal_id = g.id \
             WHERE g.id = $1 AND m.customer_id = $2"
        )))
        .bind(goal.to_string())
        .bind(customer.to_string())
        .fetch_optional(self.db.reader())
        .await?;
        Ok(row.and_then(RawGoal::parse))
    }

    pub async fn goal(&self, goal: Uuid) -> Result<Option<GoalRow>, DbError> {
        let row: Option<RawGoal> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {GOAL_COLUMNS} FROM goals g WHERE g.id = $1"
        )))
        .bind(goal.to_string())
        .fetch_optional(self.db.reader())
        .await?;
        Ok(row.and_then(RawGoal::parse))
    }

    /// Goals the customer owns or shares, oldest first.
    pub async fn goals_of(&self, customer: Uuid) -> Result<Vec<GoalRow>, DbError> {
        let rows: Vec<RawGoal> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {GOAL_COLUMNS} FROM goals g JOIN goal_members m ON m.goal_id = g.id \
             WHERE m.customer_id = $1 ORDER BY g.created_at, g.id LIMIT 200"
        )))
        .bind(customer.to_string())
        .fetch_all(self.db.reader())
        .await?;
        Ok(rows.into_iter().filter_map(RawGoal::parse).collect())
    }

    /// Goals whose pocket is one of `pockets`.
    pub async fn goals_by_pockets(&self, pockets: &[String]) -> Result<Vec<GoalRow>, DbError> {
        if pockets.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (1..=pockets.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT {GOAL_COLUMNS} FROM goals g WHERE g.pocket_id IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query_as::<_, RawGoal>(sqlx::AssertSqlSafe(sql));
        for p in pockets {
            query = query.bind(p.clone());
        }
        let rows = query.fetch_all(self.db.reader()).await?;
        Ok(rows.into_iter().filter_map(RawGoal::parse).collect())
    }

    pub async fn members(&self, goal: Uuid) -> Result<Vec<Member>, DbError> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT customer_id, role FROM goal_members WHERE goal_id = $1 ORDER BY added_at, customer_id",
        )
        .bind(goal.to_string())
        .fetch_all(self.db.reader())
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, role)| {
                Some(Member {
                    customer_id: Uuid::parse_str(&id).ok()?,
                    role,
                })
            })
            .collect())
    }

    /// Adds a partner; false when they were a member already.
    pub async fn add_partner(&self, goal: Uuid, customer: Uuid, now: Timestamp) -> Result<bool, DbError> {
        let done = sqlx::query(
            "INSERT INTO goal_members (goal_id, customer_id, role, added_at) VALUES ($1, $2, 'partner', $3) \
             ON CONFLICT (goal_id, customer_id) DO NOTHING",
        )
        .bind(goal.to_string())
        .bind(customer.to_string())
        .bind(to_micros(now))
        .execute(self.db.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records who paid a transfer into the pocket; a second record of the same transfer
    /// changes nothing.
    pub async fn record_contribution(
        &self,
        goal: Uuid,
        transfer: Uuid,
        customer: Option<Uuid>,
        amount: i64,
        at: Timestamp,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO goal_contributions (goal_id, transfer_id, customer_id, amount, at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (goal_id, transfer_id) DO NOTHING",
        )
        .bind(goal.to_string())
        .bind(transfer.to_string())
        .bind(customer.map(|c| c.to_string()))
        .bind(amount)
        .bind(to_micros(at))
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    /// Total contributed per customer (`None`: not from a customer), largest first.
    pub async fn contributions(&self, goal: Uuid) -> Result<Vec<(Option<Uuid>, i64)>, DbError> {
        let rows: Vec<(Option<String>, i64)> = sqlx::query_as(
            "SELECT customer_id, CAST(SUM(amount) AS BIGINT) FROM goal_contributions WHERE goal_id = $1 \
             GROUP BY customer_id ORDER BY 2 DESC",
        )
        .bind(goal.to_string())
        .fetch_all(self.db.reader())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(c, total)| (c.and_then(|c| Uuid::parse_str(&c).ok()), total))
            .collect())
    }

    /// Transfers already recorded as contributions.
    pub async fn contribution_transfers(&self, goal: Uuid) -> Result<Vec<String>, DbError> {
        Ok(
            sqlx::query_scalar("SELECT transfer_id FROM goal_contributions WHERE goal_id = $1")
                .bind(goal.to_string())
                .fetch_all(self.db.reader())
                .await?,
        )
    }

    pub async fn fired_milestones(&self, goal: Uuid) -> Result<Vec<i64>, DbError> {
        Ok(
            sqlx::query_scalar("SELECT pct FROM goal_milestones WHERE goal_id = $1 ORDER BY pct")
                .bind(goal.to_string())
                .fetch_all(self.db.writer())
                .await?,
        )
    }

    /// Records a fired milestone; false if another checker recorded it first.
    pub async fn record_milestone(&self, goal: Uuid, pct: i64, now: Timestamp) -> Result<bool, DbError> {
        let done = sqlx::query(
            "INSERT INTO goal_milestones (goal_id, pct, fired_at) VALUES ($1, $2, $3) \
             ON CONFLICT (goal_id, pct) DO NOTHING",
        )
        .bind(goal.to_string())
        .bind(pct)
        .bind(to_micros(now))
        .execute(self.db.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Claims up to `limit` reminders due at `now` for `lease_until`. The condition is
    /// repeated in the UPDATE itself: on PostgreSQL a node that waited for another's row
    /// lock re-checks it and skips the row the other claimed, and SQLite has one writer,
    /// so two nodes never both hold a claim.
    #[tracing::instrument(skip_all)]
    pub async fn claim_due(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        token: &str,
        limit: i64,
    ) -> Result<Vec<ClaimedReminder>, DbError> {
        let now = to_micros(now);
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "UPDATE goal_reminders SET claimed_until = $2, claim_token = $3, updated_at = $1 \
             WHERE goal_id IN (SELECT goal_id FROM goal_reminders WHERE due_at <= $1 AND claimed_until <= $1 \
                               ORDER BY due_at LIMIT $4) \
               AND due_at <= $1 AND claimed_until <= $1 \
             RETURNING goal_id, due_at",
        )
        .bind(now)
        .bind(to_micros(lease_until))
        .bind(token)
        .bind(limit)
        .fetch_all(self.db.writer())
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, due)| {
                Some(ClaimedReminder {
                    goal_id: Uuid::parse_str(&id).ok()?,
                    due_at: huoban_kit::clock::from_micros(due),
                })
            })
            .collect())
    }

    /// Moves a claimed reminder to its next due time and releases the claim, or deletes it
    /// when the goal needs no more reminders. Only the claim's holder can.
    pub async fn reschedule(
        &self,
        goal: Uuid,
        token: &str,
        next: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<(), DbError> {
        match next {
            Some(next) => {
                sqlx::query(
                    "UPDATE goal_reminders SET due_at = $3, claimed_until = 0, claim_token = NULL, updated_at = $4 \
                     WHERE goal_id = $1 AND claim_token = $2",
                )
                .bind(goal.to_string())
                .bind(token)
                .bind(to_micros(next))
                .bind(to_micros(now))
                .execute(self.db.writer())
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM goal_reminders WHERE goal_id = $1 AND claim_token = $2")
                    .bind(goal.to_string())
                    .bind(token)
                    .execute(self.db.writer())
                    .await?;
            }
        }
        Ok(())
    }

    /// The next reminder instant of a goal, if one is scheduled.
    pub async fn reminder_due(&self, goal: Uuid) -> Result<Option<Timestamp>, DbError> {
        let due: Option<i64> = sqlx::query_scalar("SELECT due_at FROM goal_reminders WHERE goal_id = $1")
            .bind(goal.to_string())
            .fetch_optional(self.db.reader())
            .await?;
        Ok(due.map(huoban_kit::clock::from_micros))
    }

    /// Turns a goal's automatic transfer on (or changes it): the row is replaced, so its
    /// next due time, month and attempts start afresh.
    pub async fn upsert_auto_transfer(&self, row: &AutoTransferRow, now: Timestamp) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO goal_auto_transfers (goal_id, customer_id, from_account, transfer_day, due_at, month, \
             attempts, claimed_until, claim_token, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 0, 0, NULL, $7, $7) \
             ON CONFLICT (goal_id) DO UPDATE SET customer_id = excluded.customer_id, \
               from_account = excluded.from_account, transfer_day = excluded.transfer_day, \
               due_at = excluded.due_at, month = excluded.month, attempts = 0, claimed_until = 0, \
               claim_token = NULL, updated_at = excluded.updated_at",
        )
        .bind(&row.goal_id)
        .bind(&row.customer_id)
        .bind(&row.from_account)
        .bind(row.transfer_day)
        .bind(row.due_at)
        .bind(&row.month)
        .bind(to_micros(now))
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    /// Turns it off; false when it was not on.
    pub async fn delete_auto_transfer(&self, goal: Uuid) -> Result<bool, DbError> {
        let done = sqlx::query("DELETE FROM goal_auto_transfers WHERE goal_id = $1")
            .bind(goal.to_string())
            .execute(self.db.writer())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn auto_transfer(&self, goal: Uuid) -> Result<Option<AutoTransferRow>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {AUTO_COLUMNS} FROM goal_auto_transfers WHERE goal_id = $1"
        )))
        .bind(goal.to_string())
        .fetch_optional(self.db.reader())
        .await?)
    }

    /// Claims up to `limit` automatic transfers due at `now` for `lease_until`, like
    /// [`GoalStore::claim_due`]: the condition is repeated in the UPDATE, so two nodes
    /// never hold the same claim.
    #[tracing::instrument(skip_all)]
    pub async fn claim_due_transfers(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        token: &str,
        limit: i64,
    ) -> Result<Vec<AutoTransferRow>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE goal_auto_transfers SET claimed_until = $2, claim_token = $3, updated_at = $1 \
             WHERE goal_id IN (SELECT goal_id FROM goal_auto_transfers WHERE due_at <= $1 AND claimed_until <= $1 \
                               ORDER BY due_at LIMIT $4) \
               AND due_at <= $1 AND claimed_until <= $1 \
             RETURNING {AUTO_COLUMNS}"
        )))
        .bind(to_micros(now))
        .bind(to_micros(lease_until))
        .bind(token)
        .bind(limit)
        .fetch_all(self.db.writer())
        .await?)
    }

    /// Moves a claimed transfer to its next attempt and releases the claim; only the
    /// claim's holder can (a transfer turned off meanwhile has no row left to move).
    pub async fn reschedule_transfer(
        &self,
        goal: &str,
        token: &str,
        due_at: Timestamp,
        month: &str,
        attempts: i64,
        now: Timestamp,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE goal_auto_transfers SET due_at = $3, month = $4, attempts = $5, claimed_until = 0, \
             claim_token = NULL, updated_at = $6 WHERE goal_id = $1 AND claim_token = $2",
        )
        .bind(goal)
        .bind(token)
        .bind(to_micros(due_at))
        .bind(month)
        .bind(attempts)
        .bind(to_micros(now))
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    /// Ends a claimed transfer for good (the goal is complete or gone).
    pub async fn finish_transfers(&self, goal: &str, token: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM goal_auto_transfers WHERE goal_id = $1 AND claim_token = $2")
            .bind(goal)
            .bind(token)
            .execute(self.db.writer())
            .await?;
        Ok(())
    }

    pub async fn insert_offer(&self, offer: &OfferRow, staff: Uuid) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO goal_conversion_offers (id, titles, campaign_id, points, fen, max_points, created_by, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&offer.id)
        .bind(&offer.titles)
        .bind(&offer.campaign_id)
        .bind(offer.points)
        .bind(offer.fen)
        .bind(offer.max_points)
        .bind(staff.to_string())
        .bind(offer.created_at)
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    pub async fn offer(&self, id: Uuid) -> Result<Option<OfferRow>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {OFFER_COLUMNS} FROM goal_conversion_offers WHERE id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(self.db.reader())
        .await?)
    }

    /// Offers newest first, at most 200 (a handful exist at any time).
    pub async fn offers(&self) -> Result<Vec<OfferRow>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {OFFER_COLUMNS} FROM goal_conversion_offers ORDER BY id DESC LIMIT 200"
        )))
        .fetch_all(self.db.reader())
        .await?)
    }
}
