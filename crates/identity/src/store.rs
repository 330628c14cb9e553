//! Identity's tables: customers, staff users, sessions, hand-off tokens and the record of
//! staff looking at customers. Plain loads and saves; rules live in the service.

use huoban_kit::{Db, DbError};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CustomerRow {
    pub id: String,
    pub phone: String,
    pub name: String,
    pub birthday: Option<String>,
    pub locale: String,
    pub time_zone: String,
    pub preferences: String,
    pub password_hash: Option<String>,
    pub idp_subject: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StaffRow {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub password_hash: String,
    pub disabled: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub token_hash: String,
    pub principal_kind: String,
    pub principal_id: String,
    pub channel: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HandoffRow {
    pub customer_id: String,
    pub from_channel: String,
    pub target_channel: String,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AccessRow {
    pub id: String,
    pub staff_id: String,
    pub action: String,
    pub customer_id: Option<String>,
    pub at: i64,
}

const CUSTOMER_COLUMNS: &str =
    "id, phone, name, birthday, locale, time_zone, preferences, password_hash, idp_subject, created_at, updated_at";

#[derive(Debug, Clone)]
pub struct IdentityStore {
    db: Db,
}

impl IdentityStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub async fn insert_customer(&self, c: &CustomerRow) -> Result<(), DbError> {
        self.insert_customers(std::slice::from_ref(c)).await
    }

    /// Inserts customers in one transaction: all or none (one at sign-up, many for the demo).
    pub async fn insert_customers(&self, rows: &[CustomerRow]) -> Result<(), DbError> {
        let mut tx = self.db.begin().await?;
        for c in rows {
            sqlx::query(
                "INSERT INTO customers (id, phone, name, birthday, locale, time_zone, preferences, password_hash, idp_subject, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(&c.id)
            .bind(&c.phone)
            .bind(&c.name)
            .bind(&c.birthday)
            .bind(&c.locale)
            .bind(&c.time_zone)
            .bind(&c.preferences)
            .bind(&c.password_hash)
            .bind(&c.idp_subject)
            .bind(c.created_at)
            .bind(c.updated_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn customer(&self, id: Uuid) -> Result<CustomerRow, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id = $1"
        )))
        .bind(id.to_string())
        .fetch_one(self.db.reader())
        .await?)
    }

    pub async fn customer_by_phone(&self, phone: &str) -> Result<Option<CustomerRow>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE phone = $1"
        )))
        .bind(phone)
        .fetch_optional(self.db.reader())
        .await?)
    }

    pub async fn customer_by_subject(&self, subject: &str) -> Result<Option<CustomerRow>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE idp_subject = $1"
        )))
        .bind(subject)
        .fetch_optional(self.db.reader())
        .await?)
    }

    pub async fn link_subject(&self, id: &str, subject: &str, now: i64) -> Result<(), DbError> {
        sqlx::query("UPDATE customers SET idp_subject = $1, updated_at = $2 WHERE id = $3 AND idp_subject IS NULL")
            .bind(subject)
            .bind(now)
            .bind(id)
            .execute(self.db.writer())
            .await?;
        Ok(())
    }

    pub async fn update_profile(&self, c: &CustomerRow) -> Result<(), DbError> {
        let done = sqlx::query(
            "UPDATE customers SET name = $1, birthday = $2, locale = $3, time_zone = $4, preferences = $5, updated_at = $6 WHERE id = $7",
        )
        .bind(&c.name)
        .bind(&c.birthday)
        .bind(&c.locale)
        .bind(&c.time_zone)
        .bind(&c.preferences)
        .bind(c.updated_at)
        .bind(&c.id)
        .execute(self.db.writer())
        .await?;
        if done.rows_affected() == 0 {
            return Err(DbError::NotFound);
        }
        Ok(())
    }

    /// Customers ordered by id, after the given id, optionally only one phone number.
    pub async fn list_customers(
        &self,
        phone: Option<&str>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<CustomerRow>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CUSTOMER_COLUMNS} FROM customers \
             WHERE ($1 IS NULL OR phone = $1) AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
        )))
        .bind(phone)
        .bind(after)
        .bind(i64::from(limit) + 1)
        .fetch_all(self.db.reader())
        .await?)
    }

    pub async fn count_customers(&self) -> Result<i64, DbError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM customers")
            .fetch_one(self.db.reader())
            .await?)
    }

    pub async fn insert_staff(&self, s: &StaffRow) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO staff_users (id, username, display_name, role, password_hash, disabled, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&s.id)
        .bind(&s.username)
        .bind(&s.display_name)
        .bind(&s.role)
        .bind(&s.password_hash)
        .bind(s.disabled)
        .bind(s.created_at)
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    pub async fn staff(&self, id: &str) -> Result<StaffRow, DbError> {
        Ok(sqlx::query_as(
            "SELECT id, username, display_name, role, password_hash, disabled, created_at FROM staff_users WHERE id = $1",
        )
        .bind(id)
        .fetch_one(self.db.reader())
        .await?)
    }

    pub async fn staff_by_username(&self, username: &str) -> Result<Option<StaffRow>, DbError> {
        Ok(sqlx::query_as(
            "SELECT id, username, display_name, role, password_hash, disabled, created_at FROM staff_users WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(self.db.reader())
        .await?)
    }

    pub async fn list_staff(&self, after: Option<&str>, limit: u32) -> Result<Vec<StaffRow>, DbError> {
        Ok(sqlx::query_as(
            "SELECT id, username, display_name, role, password_hash, disabled, created_at FROM staff_users \
             WHERE ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit) + 1)
        .fetch_all(self.db.reader())
        .await?)
    }

    pub async fn count_staff(&self) -> Result<i64, DbError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM staff_users")
            .fetch_one(self.db.reader())
            .await?)
    }

    pub async fn insert_session(&self, s: &SessionRow) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, principal_kind, principal_id, channel, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&s.token_hash)
        .bind(&s.principal_kind)
        .bind(&s.principal_id)
        .bind(&s.channel)
        .bind(s.created_at)
        .bind(s.expires_at)
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    pub async fn session(&self, token_hash: &str) -> Result<Option<SessionRow>, DbError> {
        Ok(sqlx::query_as(
            "SELECT token_hash, principal_kind, principal_id, channel, created_at, expires_at, revoked_at \
             FROM sessions WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(self.db.reader())
        .await?)
    }

    pub async fn revoke_session(&self, token_hash: &str, now: i64) -> Result<(), DbError> {
        sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(token_hash)
            .execute(self.db.writer())
            .await?;
        Ok(())
    }

    /// Revokes every open session of a principal; returns how many.
    pub async fn revoke_all_sessions(&self, principal_id: &str, now: i64) -> Result<u64, DbError> {
        Ok(
            sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE principal_id = $2 AND revoked_at IS NULL")
                .bind(now)
                .bind(principal_id)
                .execute(self.db.writer())
                .await?
                .rows_affected(),
        )
    }

    pub async fn insert_handoff(
        &self,
        token_hash: &str,
        customer_id: &str,
        from: &str,
        target: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO handoff_tokens (token_hash, customer_id, from_channel, target_channel, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token_hash)
        .bind(customer_id)
        .bind(from)
        .bind(target)
        .bind(now)
        .bind(expires_at)
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    /// Marks a hand-off token used, in the same statement that checks it is unused, so two
    /// concurrent redemptions cannot both succeed. Returns the row as it is afterwards. The
    /// read comes after the update on purpose: a redemption that lost the race then sees
    /// the winner's `used_at` and can say "already used" rather than "expired".
    pub async fn consume_handoff(&self, token_hash: &str, now: i64) -> Result<(Option<HandoffRow>, bool), DbError> {
        let mut tx = self.db.begin().await?;
        let consumed = sqlx::query(
            "UPDATE handoff_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(token_hash)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        let row: Option<HandoffRow> = sqlx::query_as(
            "SELECT customer_id, from_channel, target_channel, expires_at, used_at FROM handoff_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((row, consumed))
    }

    pub async fn record_access(&self, row: &AccessRow) -> Result<(), DbError> {
        sqlx::query("INSERT INTO staff_access_log (id, staff_id, action, customer_id, at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&row.id)
            .bind(&row.staff_id)
            .bind(&row.action)
            .bind(&row.customer_id)
            .bind(row.at)
            .execute(self.db.writer())
            .await?;
        Ok(())
    }

    pub async fn access_log(
        &self,
        customer_id: Option<&str>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AccessRow>, DbError> {
        Ok(sqlx::query_as(
            "SELECT id, staff_id, action, customer_id, at FROM staff_access_log \
             WHERE ($1 IS NULL OR customer_id = $1) AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3",
        )
        .bind(customer_id)
        .bind(after)
        .bind(i64::from(limit) + 1)
        .fetch_all(self.db.reader())
        .await?)
    }
}
