//! The SQL of campaigns (`campaigns`) and of the profile attributes audiences read
//! (`customers`, `customer_suitability`, `customer_tags`).

use std::collections::HashMap;

use huoban_kit::{Db, DbError, clock::to_micros};
use jiff::Timestamp;
use sqlx::AnyConnection;
use uuid::Uuid;

use super::domain::{Definition, State};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CampaignRow {
    pub id: String,
    pub name: String,
    pub titles: String,
    pub theme: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub audience: String,
    pub points_cap: i64,
    pub points_used: i64,
    pub coupon_cap: i64,
    pub coupons_used: i64,
    /// The campaign's points budget account on the ledger (absent only for campaigns
    /// created before budgets moved to the ledger, until first needed).
    pub points_account: Option<String>,
    pub state: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl CampaignRow {
    pub fn stored_state(&self) -> State {
        State::parse(&self.state).unwrap_or(State::Ended)
    }
}

const COLUMNS: &str = "id, name, titles, theme, starts_at, ends_at, audience, points_cap, points_used, \
     coupon_cap, coupons_used, points_account, state, created_at, updated_at";

/// Raw profile attributes of a customer.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProfileRow {
    pub id: String,
    pub birthday: Option<String>,
    pub locale: String,
    pub time_zone: String,
    pub preferences: String,
    pub suitability: Option<String>,
}

#[derive(Debug, Clone)]
pub struct CampaignStore {
    db: Db,
    identity: huoban_identity::store::IdentityStore,
}

impl CampaignStore {
    pub fn new(db: Db, identity: huoban_identity::store::IdentityStore) -> Self {
        Self { db, identity }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Inserts a draft inside the caller's transaction (which also funds its budget).
    pub async fn insert(
        &self,
        conn: &mut AnyConnection,
        id: Uuid,
        staff: Uuid,
        d: &Definition,
        points_account: &str,
        now: Timestamp,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO campaigns (id, name, titles, theme, starts_at, ends_at, audience, points_cap, points_used, \
             coupon_cap, coupons_used, points_account, state, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, 0, $10, 'draft', $11, $12, $12)",
        )
        .bind(id.to_string())
        .bind(&d.name)
        .bind(serde_json::to_string(&d.titles).unwrap_or_default())
        .bind(&d.theme)
        .bind(to_micros(d.starts_at))
        .bind(to_micros(d.ends_at))
        .bind(&d.audience)
        .bind(d.points_cap)
        .bind(d.coupon_cap)
        .bind(points_account)
        .bind(staff.to_string())
        .bind(to_micros(now))
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Replaces a draft's definition inside the caller's transaction (which also moves
    /// the budget difference); false when it is no longer a draft or its budget changed
    /// meanwhile.
    pub async fn update_draft(
        &self,
        conn: &mut AnyConnection,
        id: Uuid,
        d: &Definition,
        points_cap_before: i64,
        now: Timestamp,
    ) -> Result<bool, DbError> {
        let n = sqlx::query(
            "UPDATE campaigns SET name = $1, titles = $2, theme = $3, starts_at = $4, ends_at = $5, audience = $6, \
             points_cap = $7, coupon_cap = $8, updated_at = $9 WHERE id = $10 AND state = 'draft' AND points_cap = $11",
        )
        .bind(&d.name)
        .bind(serde_json::to_string(&d.titles).unwrap_or_default())
        .bind(&d.theme)
        .bind(to_micros(d.starts_at))
        .bind(to_micros(d.ends_at))
        .bind(&d.audience)
        .bind(d.points_cap)
        .bind(d.coupon_cap)
        .bind(to_micros(now))
        .bind(id.to_string())
        .bind(points_cap_before)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Records the budget account of a campaign that had none, inside the transaction
    /// that funds it; false when another node did it first.
    pub async fn adopt_points_account(
        &self,
        conn: &mut AnyConnection,
        id: Uuid,
        account: &str,
    ) -> Result<bool, DbError> {
        let n = sqlx::query("UPDATE campaigns SET points_account = $1 WHERE id = $2 AND points_account IS NULL")
            .bind(account)
            .bind(id.to_string())
            .execute(&mut *conn)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    /// Takes `n` coupons from the campaign's coupon budget inside the caller's
    /// transaction (the one that grants them); false, and nothing taken, when fewer are
    /// left.
    pub async fn take_coupons(&self, conn: &mut AnyConnection, id: Uuid, n: i64) -> Result<bool, DbError> {
        if n == 0 {
            return Ok(true);
        }
        let taken = sqlx::query(
            "UPDATE campaigns SET coupons_used = coupons_used + $1 WHERE id = $2 AND coupons_used + $1 <= coupon_cap",
        )
        .bind(n)
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?
        .rows_affected();
        Ok(taken == 1)
    }

    /// The coupon budget of these campaigns: id → (cap, used).
    pub async fn coupon_budgets(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, (i64, i64)>, DbError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT id, coupon_cap, coupons_used FROM campaigns WHERE id IN ({})",
            in_list(ids)
        )))
        .fetch_all(self.db.reader())
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, cap, used)| Some((Uuid::parse_str(&id).ok()?, (cap, used))))
            .collect())
    }

    /// Moves the stored state from `from` to `to`; false when it was not `from` any more.
    pub async fn set_state(&self, id: Uuid, from: &str, to: State, now: Timestamp) -> Result<bool, DbError> {
        let n = sqlx::query("UPDATE campaigns SET state = $1, updated_at = $2 WHERE id = $3 AND state = $4")
            .bind(to.as_str())
            .bind(to_micros(now))
            .bind(id.to_string())
            .bind(from)
            .execute(self.db.writer())
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    pub async fn get(&self, id: Uuid) -> Result<Option<CampaignRow>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM campaigns WHERE id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(self.db.reader())
        .await?)
    }

    /// Campaigns newest first, after the cursor id.
    pub async fn list(&self, after: Option<&str>, limit: u32) -> Result<Vec<CampaignRow>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM campaigns WHERE id < $1 ORDER BY id DESC LIMIT $2"
        )))
        .bind(after.unwrap_or("~"))
        .bind(i64::from(limit) + 1)
        .fetch_all(self.db.reader())
        .await?)
    }

    /// Campaigns that may be live at `now` (scheduled, inside their window).
    pub async fn live(&self, now: Timestamp) -> Result<Vec<CampaignRow>, DbError> {
        let now = to_micros(now);
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM campaigns WHERE state = 'scheduled' AND starts_at <= $1 AND ends_at > $1 ORDER BY id"
        )))
        .bind(now)
        .fetch_all(self.db.reader())
        .await?)
    }

    /// (effects, customers reached) of a campaign.
    pub async fn stats(&self, id: Uuid) -> Result<(i64, i64), DbError> {
        let row: (i64, i64) =
            sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT customer_id) FROM campaign_effects WHERE campaign_id = $1")
                .bind(id.to_string())
                .fetch_one(self.db.reader())
                .await?;
        Ok(row)
    }

    /// Profile rows and tags of these customers, by id. The profile comes from identity
    /// (its personal fields are sealed at rest; only identity opens them), the suitability
    /// level and the tags from their own tables.
    pub async fn profiles(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, (ProfileRow, Vec<String>)>, DbError> {
        let mut out = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let list = in_list(chunk);
            let customers = self.identity.customers(chunk).await?;
            let levels: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT customer_id, level FROM customer_suitability WHERE customer_id IN ({list})"
            )))
            .fetch_all(self.db.reader())
            .await?;
            let mut levels: HashMap<String, String> = levels.into_iter().collect();
            let tags: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT customer_id, tag FROM customer_tags WHERE customer_id IN ({list}) ORDER BY tag"
            )))
            .fetch_all(self.db.reader())
            .await?;
            let mut by_customer: HashMap<String, Vec<String>> = HashMap::new();
            for (c, t) in tags {
                by_customer.entry(c).or_default().push(t);
            }
            for c in customers {
                let Ok(id) = Uuid::parse_str(&c.id) else { continue };
                let tags = by_customer.remove(&c.id).unwrap_or_default();
                let row = ProfileRow {
                    suitability: levels.remove(&c.id),
                    id: c.id,
                    birthday: c.birthday,
                    locale: c.locale,
                    time_zone: c.time_zone,
                    preferences: c.preferences,
                };
                out.insert(id, (row, tags));
            }
        }
        Ok(out)
    }

    /// Replaces a customer's tags.
    pub async fn set_tags(&self, customer: Uuid, tags: &[String]) -> Result<(), DbError> {
        let mut tx = self.db.begin().await?;
        sqlx::query("DELETE FROM customer_tags WHERE customer_id = $1")
            .bind(customer.to_string())
            .execute(&mut *tx)
            .await?;
        for tag in tags {
            sqlx::query("INSERT INTO customer_tags (customer_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(customer.to_string())
                .bind(tag)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// See [`huoban_kit::db::uuid_in_list`].
pub use huoban_kit::db::uuid_in_list as in_list;
