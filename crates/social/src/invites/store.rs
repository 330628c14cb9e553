//! The invite tables, SQL only: `invite_programmes`, `invite_codes` (one per inviter and
//! programme, with its counters) and `invite_attributions` (one per invitee and
//! programme, unique per device).

use huoban_kit::{Db, DbError};
use sqlx::{Any, AnyConnection, Transaction};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProgrammeRow {
    pub id: String,
    pub name: String,
    pub campaign_id: Option<String>,
    pub event_type: String,
    pub event_match: String,
    pub unlock_count: i64,
    pub max_invitees: i64,
    pub reward_points: Option<i64>,
    pub reward_id: Option<String>,
    pub starts_at: i64,
    pub ends_at: i64,
    pub created_by: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CodeRow {
    pub code: String,
    pub programme_id: String,
    pub inviter_id: String,
    pub accepted: i64,
    pub qualified: i64,
    pub created_at: i64,
    pub unlocked_at: Option<i64>,
    pub rewarded_at: Option<i64>,
}

/// An attribution waiting for its qualifying action, with what the consumer needs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingRow {
    pub programme_id: String,
    pub code: String,
    pub accepted_at: i64,
}

const PROGRAMME_COLUMNS: &str = "id, name, campaign_id, event_type, event_match, unlock_count, max_invitees, \
     reward_points, reward_id, starts_at, ends_at, created_by, created_at";
const CODE_COLUMNS: &str = "code, programme_id, inviter_id, accepted, qualified, created_at, unlocked_at, rewarded_at";

#[derive(Debug, Clone)]
pub struct InvitesStore {
    db: Db,
}

impl InvitesStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub async fn begin(&self) -> Result<Transaction<'static, Any>, DbError> {
        self.db.begin().await
    }

    pub async fn insert_programme(&self, p: &ProgrammeRow) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO invite_programmes (id, name, campaign_id, event_type, event_match, unlock_count, \
             max_invitees, reward_points, reward_id, starts_at, ends_at, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(&p.id)
        .bind(&p.name)
        .bind(&p.campaign_id)
        .bind(&p.event_type)
        .bind(&p.event_match)
        .bind(p.unlock_count)
        .bind(p.max_invitees)
        .bind(p.reward_points)
        .bind(&p.reward_id)
        .bind(p.starts_at)
        .bind(p.ends_at)
        .bind(&p.created_by)
        .bind(p.created_at)
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    pub async fn programme(&self, id: &str) -> Result<Option<ProgrammeRow>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {PROGRAMME_COLUMNS} FROM invite_programmes WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.db.reader())
        .await?)
    }

    /// Newest first after the cursor id; with `live_at`, only programmes live then.
    pub async fn programmes(
        &self,
        after: Option<&str>,
        limit: u32,
        live_at: Option<i64>,
    ) -> Result<Vec<ProgrammeRow>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {PROGRAMME_COLUMNS} FROM invite_programmes WHERE id < $1 \
             AND ($2 < 0 OR (starts_at <= $2 AND ends_at > $2)) ORDER BY id DESC LIMIT $3"
        )))
        .bind(after.unwrap_or("~"))
        .bind(live_at.unwrap_or(-1))
        .bind(i64::from(limit) + 1)
        .fetch_all(self.db.reader())
        .await?)
    }

    /// Programmes with attributions still waiting for their qualifying action.
    pub async fn with_pending(&self, conn: &mut AnyConnection) -> Result<Vec<ProgrammeRow>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {PROGRAMME_COLUMNS} FROM invite_programmes \
             WHERE id IN (SELECT DISTINCT programme_id FROM invite_attributions WHERE qualified_at IS NULL)"
        )))
        .fetch_all(&mut *conn)
        .await?)
    }

    /// Inserts the code unless the inviter has one in the programme; returns theirs.
    pub async fn issue_code(&self, row: &CodeRow) -> Result<CodeRow, DbError> {
        sqlx::query(
            "INSERT INTO invite_codes (code, programme_id, inviter_id, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (programme_id, inviter_id) DO NOTHING",
        )
        .bind(&row.code)
        .bind(&row.programme_id)
        .bind(&row.inviter_id)
        .bind(row.created_at)
        .execute(self.db.writer())
        .await?;
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CODE_COLUMNS} FROM invite_codes WHERE programme_id = $1 AND inviter_id = $2"
        )))
        .bind(&row.programme_id)
        .bind(&row.inviter_id)
        .fetch_one(self.db.writer())
        .await
        .map_err(DbError::from)
    }

    pub async fn code_by_code(&self, code: &str) -> Result<Option<CodeRow>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CODE_COLUMNS} FROM invite_codes WHERE code = $1"
        )))
        .bind(code)
        .fetch_optional(self.db.reader())
        .await?)
    }

    /// The inviter's codes, newest first.
    pub async fn codes_of(&self, inviter: &str) -> Result<Vec<CodeRow>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CODE_COLUMNS} FROM invite_codes WHERE inviter_id = $1 ORDER BY created_at DESC, code LIMIT 200"
        )))
        .bind(inviter)
        .fetch_all(self.db.reader())
        .await?)
    }

    pub async fn attributed(&self, conn: &mut AnyConnection, programme: &str, invitee: &str) -> Result<bool, DbError> {
        let found: Option<(i64,)> =
            sqlx::query_as("SELECT 1 FROM invite_attributions WHERE programme_id = $1 AND invitee_id = $2")
                .bind(programme)
                .bind(invitee)
                .fetch_optional(&mut *conn)
                .await?;
        Ok(found.is_some())
    }

    pub async fn device_used(&self, conn: &mut AnyConnection, programme: &str, device: &str) -> Result<bool, DbError> {
        let found: Option<(i64,)> =
            sqlx::query_as("SELECT 1 FROM invite_attributions WHERE programme_id = $1 AND device_id = $2")
                .bind(programme)
                .bind(device)
                .fetch_optional(&mut *conn)
                .await?;
        Ok(found.is_some())
    }

    /// Counts an acceptance against the inviter's cap; false when the cap is reached.
    pub async fn count_acceptance(&self, conn: &mut AnyConnection, code: &str, cap: i64) -> Result<bool, DbError> {
        let n = sqlx::query("UPDATE invite_codes SET accepted = accepted + 1 WHERE code = $1 AND accepted < $2")
            .bind(code)
            .bind(cap)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    pub async fn insert_attribution(
        &self,
        conn: &mut AnyConnection,
        programme: &str,
        invitee: &str,
        code: &str,
        device: &str,
        at: i64,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO invite_attributions (programme_id, invitee_id, code, device_id, accepted_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(programme)
        .bind(invitee)
        .bind(code)
        .bind(device)
        .bind(at)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// The invitee's attributions still waiting for their qualifying action.
    pub async fn pending_of(&self, conn: &mut AnyConnection, invitee: &str) -> Result<Vec<PendingRow>, DbError> {
        Ok(sqlx::query_as(
            "SELECT programme_id, code, accepted_at FROM invite_attributions \
             WHERE invitee_id = $1 AND qualified_at IS NULL",
        )
        .bind(invitee)
        .fetch_all(&mut *conn)
        .await?)
    }

    /// Marks the invitee qualified (once) and counts it on the code; answers the code's
    /// qualified count after, or `None` if the invitee was already qualified.
    pub async fn qualify(
        &self,
        conn: &mut AnyConnection,
        programme: &str,
        invitee: &str,
        code: &str,
        seq: i64,
        at: i64,
    ) -> Result<Option<i64>, DbError> {
        let n = sqlx::query(
            "UPDATE invite_attributions SET qualified_seq = $1, qualified_at = $2 \
             WHERE programme_id = $3 AND invitee_id = $4 AND qualified_at IS NULL",
        )
        .bind(seq)
        .bind(at)
        .bind(programme)
        .bind(invitee)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if n != 1 {
            return Ok(None);
        }
        let (qualified,): (i64,) =
            sqlx::query_as("UPDATE invite_codes SET qualified = qualified + 1 WHERE code = $1 RETURNING qualified")
                .bind(code)
                .fetch_one(&mut *conn)
                .await?;
        Ok(Some(qualified))
    }

    pub async fn unlock(&self, conn: &mut AnyConnection, code: &str, at: i64) -> Result<(), DbError> {
        sqlx::query("UPDATE invite_codes SET unlocked_at = $1 WHERE code = $2 AND unlocked_at IS NULL")
            .bind(at)
            .bind(code)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Unlocked codes whose prize is not paid yet.
    pub async fn owed(&self, limit: i64) -> Result<Vec<CodeRow>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CODE_COLUMNS} FROM invite_codes WHERE unlocked_at IS NOT NULL AND rewarded_at IS NULL \
             ORDER BY unlocked_at LIMIT $1"
        )))
        .bind(limit)
        .fetch_all(self.db.reader())
        .await?)
    }

    pub async fn mark_rewarded(&self, code: &str, at: i64) -> Result<(), DbError> {
        sqlx::query("UPDATE invite_codes SET rewarded_at = $1 WHERE code = $2 AND rewarded_at IS NULL")
            .bind(at)
            .bind(code)
            .execute(self.db.writer())
            .await?;
        Ok(())
    }
}
