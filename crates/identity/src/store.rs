//! Identity's tables: customers, staff users, sessions, hand-off tokens and the record of
//! staff looking at customers. Plain loads and saves; rules live in the service.
//!
//! Customers' personal fields never reach the database in clear: the store seals them
//! on the way in and opens them on the way out with the [`Vault`], and finds customers by
//! phone through the blind index. [`CustomerRow`] is the clear form the rest of the code
//! works with.

use huoban_kit::{Db, DbError};
use uuid::Uuid;

use crate::{
    sessions::Revoked,
    vault::{DataKey, Vault},
};

/// A customer in clear, as the service sees it.
#[derive(Debug, Clone)]
pub struct CustomerRow {
    pub id: String,
    pub phone: String,
    pub name: String,
    pub birthday: Option<String>,
    pub id_number: Option<String>,
    pub locale: String,
    pub time_zone: String,
    pub preferences: String,
    pub password_hash: Option<String>,
    pub idp_subject: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// When the customer's personal data was erased at their request.
    pub erased_at: Option<i64>,
}

/// A customer as stored: sealed fields, the blind index, the wrapped data key.
#[derive(Debug, Clone, sqlx::FromRow)]
struct SealedRow {
    id: String,
    phone_index: String,
    phone_sealed: Option<String>,
    name_sealed: String,
    birthday_sealed: Option<String>,
    id_number_sealed: Option<String>,
    data_key: Option<String>,
    key_id: Option<String>,
    locale: String,
    time_zone: String,
    preferences: String,
    password_hash: Option<String>,
    idp_subject: Option<String>,
    created_at: i64,
    updated_at: i64,
    erased_at: Option<i64>,
}

fn vault_error(e: String) -> DbError {
    DbError::Config(format!("personal data: {e}"))
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

const CUSTOMER_COLUMNS: &str = "id, phone_index, phone_sealed, name_sealed, birthday_sealed, id_number_sealed, \
     data_key, key_id, locale, time_zone, preferences, password_hash, idp_subject, created_at, updated_at, erased_at";

/// What a key rotation batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RotationBatch {
    /// Rows examined.
    pub rows: u64,
    /// Rows now under the current key (some may have been changed meanwhile and are left
    /// for the next batch).
    pub moved: u64,
}

#[derive(Debug, Clone)]
pub struct IdentityStore {
    db: Db,
    vault: Vault,
}

impl IdentityStore {
    pub fn new(db: Db, vault: Vault) -> Self {
        Self { db, vault }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// The blind index a phone number (E.164) is found by.
    pub fn phone_index(&self, phone: &str) -> String {
        self.vault.phone_index(phone)
    }

    fn seal(&self, c: &CustomerRow, key: &DataKey) -> Result<[Option<String>; 4], DbError> {
        let seal = |field: &str, v: &str| self.vault.seal(key, &c.id, field, v).map_err(vault_error);
        Ok([
            Some(seal("phone", &c.phone)?),
            Some(seal("name", &c.name)?),
            c.birthday.as_deref().map(|b| seal("birthday", b)).transpose()?,
            c.id_number.as_deref().map(|n| seal("id_number", n)).transpose()?,
        ])
    }

    fn open(&self, r: SealedRow) -> Result<CustomerRow, DbError> {
        let clear = |phone: String, name: String, birthday, id_number| CustomerRow {
            id: r.id.clone(),
            phone,
            name,
            birthday,
            id_number,
            locale: r.locale.clone(),
            time_zone: r.time_zone.clone(),
            preferences: r.preferences.clone(),
            password_hash: r.password_hash.clone(),
            idp_subject: r.idp_subject.clone(),
            created_at: r.created_at,
            updated_at: r.updated_at,
            erased_at: r.erased_at,
        };
        if r.erased_at.is_some() {
            return Ok(clear(String::new(), String::new(), None, None));
        }
        let (Some(wrapped), Some(key_id)) = (&r.data_key, &r.key_id) else {
            // A row written before encryption, not yet sealed (see `rotate_batch`).
            return Ok(clear(
                r.phone_index.clone(),
                r.name_sealed.clone(),
                r.birthday_sealed.clone(),
                None,
            ));
        };
        let key = self.vault.unwrap(wrapped, &r.id, key_id).map_err(vault_error)?;
        let open = |field: &str, v: &str| self.vault.open(&key, &r.id, field, v).map_err(vault_error);
        Ok(clear(
            r.phone_sealed
                .as_deref()
                .map(|p| open("phone", p))
                .transpose()?
                .unwrap_or_default(),
            open("name", &r.name_sealed)?,
            r.birthday_sealed.as_deref().map(|b| open("birthday", b)).transpose()?,
            r.id_number_sealed
                .as_deref()
                .map(|n| open("id_number", n))
                .transpose()?,
        ))
    }

    fn open_all(&self, rows: Vec<SealedRow>) -> Result<Vec<CustomerRow>, DbError> {
        rows.into_iter().map(|r| self.open(r)).collect()
    }

    pub async fn insert_customer(&self, c: &CustomerRow) -> Result<(), DbError> {
        self.insert_customers(std::slice::from_ref(c)).await
    }

    /// Inserts customers in one transaction: all or none (one at sign-up, many for the demo).
    pub async fn insert_customers(&self, rows: &[CustomerRow]) -> Result<(), DbError> {
        // Seal before the transaction: the single SQLite writer is not held while encrypting.
        let mut sealed = Vec::with_capacity(rows.len());
        for c in rows {
            let (key, wrapped, key_id) = self.vault.new_data_key(&c.id).map_err(vault_error)?;
            sealed.push((self.seal(c, &key)?, wrapped, key_id, self.phone_index(&c.phone)));
        }
        let mut tx = self.db.begin().await?;
        for (c, ([phone, name, birthday, id_number], wrapped, key_id, index)) in rows.iter().zip(sealed) {
            sqlx::query(
                "INSERT INTO customers (id, phone_index, phone_sealed, name_sealed, birthday_sealed, id_number_sealed, \
                 data_key, key_id, locale, time_zone, preferences, password_hash, idp_subject, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            )
            .bind(&c.id)
            .bind(index)
            .bind(phone)
            .bind(name.unwrap_or_default())
            .bind(birthday)
            .bind(id_number)
            .bind(wrapped)
            .bind(key_id)
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
        let row: SealedRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id = $1"
        )))
        .bind(id.to_string())
        .fetch_one(self.db.reader())
        .await?;
        self.open(row)
    }

    /// The customers with these ids (those that exist), opened; for capabilities that
    /// need profile attributes of many customers at once (campaign audiences).
    pub async fn customers(&self, ids: &[Uuid]) -> Result<Vec<CustomerRow>, DbError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let rows: Vec<SealedRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id IN ({})",
                huoban_kit::db::uuid_in_list(chunk)
            )))
            .fetch_all(self.db.reader())
            .await?;
            out.extend(self.open_all(rows)?);
        }
        Ok(out)
    }

    /// Finds a customer by phone number (E.164) through the blind index.
    pub async fn customer_by_phone(&self, phone: &str) -> Result<Option<CustomerRow>, DbError> {
        let row: Option<SealedRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE phone_index = $1"
        )))
        .bind(self.phone_index(phone))
        .fetch_optional(self.db.reader())
        .await?;
        row.map(|r| self.open(r)).transpose()
    }

    pub async fn customer_by_subject(&self, subject: &str) -> Result<Option<CustomerRow>, DbError> {
        let row: Option<SealedRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE idp_subject = $1"
        )))
        .bind(subject)
        .fetch_optional(self.db.reader())
        .await?;
        row.map(|r| self.open(r)).transpose()
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

    /// Saves the profile fields (name, birthday, ID number sealed under the row's own data key).
    pub async fn update_profile(&self, c: &CustomerRow) -> Result<(), DbError> {
        let (wrapped, key_id): (Option<String>, Option<String>) =
            sqlx::query_as("SELECT data_key, key_id FROM customers WHERE id = $1 AND erased_at IS NULL")
                .bind(&c.id)
                .fetch_one(self.db.reader())
                .await?;
        let (Some(wrapped), Some(key_id)) = (wrapped, key_id) else {
            return Err(vault_error("the row is not sealed yet; retry after start-up".into()));
        };
        let key = self.vault.unwrap(&wrapped, &c.id, &key_id).map_err(vault_error)?;
        let [_, name, birthday, id_number] = self.seal(c, &key)?;
        let done = sqlx::query(
            "UPDATE customers SET name_sealed = $1, birthday_sealed = $2, id_number_sealed = $8, locale = $3, \
             time_zone = $4, preferences = $5, updated_at = $6 WHERE id = $7 AND erased_at IS NULL",
        )
        .bind(name.unwrap_or_default())
        .bind(birthday)
        .bind(&c.locale)
        .bind(&c.time_zone)
        .bind(&c.preferences)
        .bind(c.updated_at)
        .bind(&c.id)
        .bind(id_number)
        .execute(self.db.writer())
        .await?;
        if done.rows_affected() == 0 {
            return Err(DbError::NotFound);
        }
        Ok(())
    }

    /// Records that the customer asked for erasure (once; a retry keeps the first time).
    /// `None` when there is no such customer, `Some(true)` when they are already erased.
    pub async fn request_erasure(&self, id: &str, now: i64) -> Result<Option<bool>, DbError> {
        sqlx::query(
            "UPDATE customers SET erasure_requested_at = $1 WHERE id = $2 AND erasure_requested_at IS NULL \
             AND erased_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(self.db.writer())
        .await?;
        let erased: Option<Option<i64>> = sqlx::query_scalar("SELECT erased_at FROM customers WHERE id = $1")
            .bind(id)
            .fetch_optional(self.db.writer())
            .await?;
        Ok(erased.map(|e| e.is_some()))
    }

    /// Customers whose erasure was asked for before `before` and has not finished.
    pub async fn pending_erasures(&self, before: i64, limit: u32) -> Result<Vec<String>, DbError> {
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT id FROM customers WHERE erasure_requested_at IS NOT NULL AND erased_at IS NULL \
             AND erasure_requested_at < $1 ORDER BY erasure_requested_at LIMIT {limit}"
        )))
        .bind(before)
        .fetch_all(self.db.reader())
        .await?)
    }

    /// Erases a customer's personal data, in one transaction: the wrapped data key and
    /// every sealed field are destroyed, the blind index freed, the password and IdP link
    /// dropped, every session revoked and unredeemed hand-off tokens spent. The row (its
    /// id, which accounts and the ledger refer to) stays, pseudonymous. Returns the
    /// sessions revoked, or `None` when the customer was already erased.
    pub async fn erase_customer(&self, id: &str, now: i64) -> Result<Option<u64>, DbError> {
        let mut tx = self.db.writer().begin().await?;
        let done = sqlx::query(
            "UPDATE customers SET phone_index = $1, phone_sealed = NULL, name_sealed = '', birthday_sealed = NULL, \
             id_number_sealed = NULL, data_key = NULL, password_hash = NULL, idp_subject = NULL, \
             preferences = '{}', erased_at = $2, updated_at = $2 WHERE id = $3 AND erased_at IS NULL",
        )
        .bind(format!("erased:{id}"))
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        let revoked = self.revoke_all_in(&mut tx, id, now).await?;
        // Unredeemed hand-off tokens would open a session for the erased customer.
        sqlx::query("UPDATE handoff_tokens SET used_at = $1 WHERE customer_id = $2 AND used_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(revoked))
    }

    /// Rows not yet under the current master key (or not sealed at all).
    pub async fn count_to_rotate(&self) -> Result<i64, DbError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM customers WHERE erased_at IS NULL AND (key_id IS NULL OR key_id <> $1)",
        )
        .bind(self.vault.current_key_id())
        .fetch_one(self.db.reader())
        .await?)
    }

    /// Moves up to `limit` rows under the current master key: rows sealed under an older
    /// key get their data key re-wrapped; rows still in clear (written before encryption)
    /// are sealed. Each row is written only if it is still as read, so the server keeps
    /// serving (and writing) while this runs; `legacy_only` limits it to rows in clear.
    pub async fn rotate_batch(&self, limit: i64, legacy_only: bool) -> Result<RotationBatch, DbError> {
        let current = self.vault.current_key_id();
        let rows: Vec<SealedRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE erased_at IS NULL \
             AND (key_id IS NULL OR ($2 = 0 AND key_id <> $1)) ORDER BY id LIMIT $3"
        )))
        .bind(&current)
        .bind(i64::from(legacy_only))
        .bind(limit)
        .fetch_all(self.db.reader())
        .await?;
        let mut batch = RotationBatch {
            rows: rows.len() as u64,
            moved: 0,
        };
        for r in rows {
            let moved = match (&r.data_key, &r.key_id) {
                (Some(wrapped), Some(old)) => {
                    let key = self.vault.unwrap(wrapped, &r.id, old).map_err(vault_error)?;
                    let rewrapped = self.vault.wrap(&key, &r.id, &current).map_err(vault_error)?;
                    sqlx::query("UPDATE customers SET data_key = $1, key_id = $2 WHERE id = $3 AND key_id = $4")
                        .bind(rewrapped)
                        .bind(&current)
                        .bind(&r.id)
                        .bind(old)
                        .execute(self.db.writer())
                        .await?
                        .rows_affected()
                }
                _ => {
                    let clear = self.open(r.clone())?;
                    let (key, wrapped, key_id) = self.vault.new_data_key(&r.id).map_err(vault_error)?;
                    let [phone, name, birthday, id_number] = self.seal(&clear, &key)?;
                    sqlx::query(
                        "UPDATE customers SET phone_index = $1, phone_sealed = $2, name_sealed = $3, \
                         birthday_sealed = $4, id_number_sealed = $5, data_key = $6, key_id = $7 \
                         WHERE id = $8 AND key_id IS NULL AND updated_at = $9",
                    )
                    .bind(self.phone_index(&clear.phone))
                    .bind(phone)
                    .bind(name.unwrap_or_default())
                    .bind(birthday)
                    .bind(id_number)
                    .bind(wrapped)
                    .bind(key_id)
                    .bind(&r.id)
                    .bind(r.updated_at)
                    .execute(self.db.writer())
                    .await?
                    .rows_affected()
                }
            };
            batch.moved += moved;
        }
        Ok(batch)
    }

    /// Customers ordered by id, after the given id, optionally only one phone number.
    pub async fn list_customers(
        &self,
        phone: Option<&str>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<CustomerRow>, DbError> {
        let rows: Vec<SealedRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CUSTOMER_COLUMNS} FROM customers \
             WHERE ($1 IS NULL OR phone_index = $1) AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
        )))
        .bind(phone.map(|p| self.phone_index(p)))
        .bind(after)
        .bind(i64::from(limit) + 1)
        .fetch_all(self.db.reader())
        .await?;
        self.open_all(rows)
    }

    /// A principal's sessions, newest first (for the customer's data export).
    pub async fn sessions_of(&self, principal_id: &str) -> Result<Vec<SessionRow>, DbError> {
        Ok(sqlx::query_as(
            "SELECT token_hash, principal_kind, principal_id, channel, created_at, expires_at, revoked_at \
             FROM sessions WHERE principal_id = $1 ORDER BY created_at DESC",
        )
        .bind(principal_id)
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
        let mut tx = self.db.writer().begin().await?;
        sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(token_hash)
            .execute(&mut *tx)
            .await?;
        self.announce(&mut tx, &Revoked::Token(token_hash.to_owned())).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Revokes every open session of a principal; returns how many.
    pub async fn revoke_all_sessions(&self, principal_id: &str, now: i64) -> Result<u64, DbError> {
        let mut tx = self.db.writer().begin().await?;
        let revoked = self.revoke_all_in(&mut tx, principal_id, now).await?;
        tx.commit().await?;
        Ok(revoked)
    }

    /// Revokes every open session of a principal inside the caller's transaction, and
    /// tells the other nodes at its commit; returns how many.
    async fn revoke_all_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        principal_id: &str,
        now: i64,
    ) -> Result<u64, DbError> {
        let revoked = sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE principal_id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(principal_id)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        self.announce(conn, &Revoked::Principal(principal_id.to_owned()))
            .await?;
        Ok(revoked)
    }

    /// On PostgreSQL, tells every node's session cache to forget these sessions once the
    /// transaction commits (a notification is delivered at commit, never on rollback).
    async fn announce(&self, conn: &mut sqlx::AnyConnection, revoked: &Revoked) -> Result<(), DbError> {
        if self.db.backend() == huoban_kit::Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(crate::sessions::CHANNEL)
                .bind(revoked.payload())
                .execute(conn)
                .await?;
        }
        Ok(())
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
