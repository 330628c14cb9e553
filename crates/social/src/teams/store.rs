//! The team challenge tables, SQL only: `team_challenges`, `teams` (with their member
//! count, progress and completion) and `team_members` (one team per customer and
//! challenge, with each member's contribution).

use huoban_kit::{Db, DbError};
use sqlx::{Any, AnyConnection, Transaction};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChallengeRow {
    pub id: String,
    pub name: String,
    pub campaign_id: Option<String>,
    pub event_type: String,
    pub event_match: String,
    pub target: i64,
    pub max_members: i64,
    pub reward_points: Option<i64>,
    pub reward_id: Option<String>,
    pub starts_at: i64,
    pub ends_at: i64,
    pub created_by: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TeamRow {
    pub id: String,
    pub challenge_id: String,
    pub name: String,
    pub join_code: String,
    pub captain_id: String,
    pub members: i64,
    pub progress: i64,
    pub completed_at: Option<i64>,
    pub created_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemberRow {
    pub challenge_id: String,
    pub customer_id: String,
    pub team_id: String,
    pub contribution: i64,
    pub joined_at: i64,
    pub rewarded_at: Option<i64>,
}

const CHALLENGE_COLUMNS: &str = "id, name, campaign_id, event_type, event_match, target, max_members, \
     reward_points, reward_id, starts_at, ends_at, created_by, created_at";
const TEAM_COLUMNS: &str = "id, challenge_id, name, join_code, captain_id, members, progress, completed_at, created_at";
const MEMBER_COLUMNS: &str = "challenge_id, customer_id, team_id, contribution, joined_at, rewarded_at";

#[derive(Debug, Clone)]
pub struct TeamsStore {
    db: Db,
}

impl TeamsStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub async fn begin(&self) -> Result<Transaction<'static, Any>, DbError> {
        self.db.begin().await
    }

    pub async fn insert_challenge(&self, c: &ChallengeRow) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO team_challenges (id, name, campaign_id, event_type, event_match, target, max_members, \
             reward_points, reward_id, starts_at, ends_at, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(&c.id)
        .bind(&c.name)
        .bind(&c.campaign_id)
        .bind(&c.event_type)
        .bind(&c.event_match)
        .bind(c.target)
        .bind(c.max_members)
        .bind(c.reward_points)
        .bind(&c.reward_id)
        .bind(c.starts_at)
        .bind(c.ends_at)
        .bind(&c.created_by)
        .bind(c.created_at)
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    pub async fn challenge(&self, id: &str) -> Result<Option<ChallengeRow>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CHALLENGE_COLUMNS} FROM team_challenges WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.db.reader())
        .await?)
    }

    /// Newest first after the cursor id; with `open_at`, only those not ended then.
    pub async fn challenges(
        &self,
        after: Option<&str>,
        limit: u32,
        open_at: Option<i64>,
    ) -> Result<Vec<ChallengeRow>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CHALLENGE_COLUMNS} FROM team_challenges WHERE id < $1 AND ($2 < 0 OR ends_at > $2) \
             ORDER BY id DESC LIMIT $3"
        )))
        .bind(after.unwrap_or("~"))
        .bind(open_at.unwrap_or(-1))
        .bind(i64::from(limit) + 1)
        .fetch_all(self.db.reader())
        .await?)
    }

    /// Challenges still running at `at` (events received then may count).
    pub async fn running(&self, conn: &mut AnyConnection, at: i64) -> Result<Vec<ChallengeRow>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CHALLENGE_COLUMNS} FROM team_challenges WHERE ends_at > $1"
        )))
        .bind(at)
        .fetch_all(&mut *conn)
        .await?)
    }

    pub async fn membership(
        &self,
        conn: &mut AnyConnection,
        challenge: &str,
        customer: &str,
    ) -> Result<Option<MemberRow>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {MEMBER_COLUMNS} FROM team_members WHERE challenge_id = $1 AND customer_id = $2"
        )))
        .bind(challenge)
        .bind(customer)
        .fetch_optional(&mut *conn)
        .await?)
    }

    pub async fn memberships_of(&self, conn: &mut AnyConnection, customer: &str) -> Result<Vec<MemberRow>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {MEMBER_COLUMNS} FROM team_members WHERE customer_id = $1"
        )))
        .bind(customer)
        .fetch_all(&mut *conn)
        .await?)
    }

    pub async fn my_teams(&self, customer: &str) -> Result<Vec<MemberRow>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {MEMBER_COLUMNS} FROM team_members WHERE customer_id = $1"
        )))
        .bind(customer)
        .fetch_all(self.db.reader())
        .await?)
    }

    pub async fn insert_team(&self, conn: &mut AnyConnection, t: &TeamRow) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO teams (id, challenge_id, name, join_code, captain_id, members, progress, created_at) \
             VALUES ($1, $2, $3, $4, $5, 1, 0, $6)",
        )
        .bind(&t.id)
        .bind(&t.challenge_id)
        .bind(&t.name)
        .bind(&t.join_code)
        .bind(&t.captain_id)
        .bind(t.created_at)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    pub async fn insert_member(
        &self,
        conn: &mut AnyConnection,
        challenge: &str,
        customer: &str,
        team: &str,
        at: i64,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO team_members (challenge_id, customer_id, team_id, contribution, joined_at) \
             VALUES ($1, $2, $3, 0, $4)",
        )
        .bind(challenge)
        .bind(customer)
        .bind(team)
        .bind(at)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// One more member, only while the team has room and has not completed.
    pub async fn take_seat(&self, conn: &mut AnyConnection, team: &str, max: i64) -> Result<bool, DbError> {
        let n = sqlx::query(
            "UPDATE teams SET members = members + 1 WHERE id = $1 AND members < $2 AND completed_at IS NULL",
        )
        .bind(team)
        .bind(max)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    pub async fn team(&self, id: &str) -> Result<Option<TeamRow>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {TEAM_COLUMNS} FROM teams WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.db.reader())
        .await?)
    }

    pub async fn team_by_code(&self, conn: &mut AnyConnection, code: &str) -> Result<Option<TeamRow>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {TEAM_COLUMNS} FROM teams WHERE join_code = $1"
        )))
        .bind(code)
        .fetch_optional(&mut *conn)
        .await?)
    }

    pub async fn members(&self, team: &str) -> Result<Vec<MemberRow>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {MEMBER_COLUMNS} FROM team_members WHERE team_id = $1 ORDER BY joined_at, customer_id"
        )))
        .bind(team)
        .fetch_all(self.db.reader())
        .await?)
    }

    /// Every team of a challenge (the leaderboard ranks them).
    pub async fn teams_of(&self, challenge: &str) -> Result<Vec<TeamRow>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {TEAM_COLUMNS} FROM teams WHERE challenge_id = $1"
        )))
        .bind(challenge)
        .fetch_all(self.db.reader())
        .await?)
    }

    /// Adds one to the member's contribution and the team's progress; returns the team's
    /// progress after.
    pub async fn count(
        &self,
        conn: &mut AnyConnection,
        challenge: &str,
        customer: &str,
        team: &str,
    ) -> Result<i64, DbError> {
        sqlx::query(
            "UPDATE team_members SET contribution = contribution + 1 WHERE challenge_id = $1 AND customer_id = $2",
        )
        .bind(challenge)
        .bind(customer)
        .execute(&mut *conn)
        .await?;
        let (progress,): (i64,) =
            sqlx::query_as("UPDATE teams SET progress = progress + 1 WHERE id = $1 RETURNING progress")
                .bind(team)
                .fetch_one(&mut *conn)
                .await?;
        Ok(progress)
    }

    pub async fn complete(&self, conn: &mut AnyConnection, team: &str, at: i64) -> Result<(), DbError> {
        sqlx::query("UPDATE teams SET completed_at = $1 WHERE id = $2 AND completed_at IS NULL")
            .bind(at)
            .bind(team)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Members of completed teams not yet rewarded.
    pub async fn owed(&self, limit: i64) -> Result<Vec<MemberRow>, DbError> {
        Ok(sqlx::query_as(
            "SELECT m.challenge_id, m.customer_id, m.team_id, m.contribution, m.joined_at, m.rewarded_at \
             FROM team_members m JOIN teams t ON t.id = m.team_id \
             WHERE t.completed_at IS NOT NULL AND m.rewarded_at IS NULL ORDER BY t.completed_at LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.db.reader())
        .await?)
    }

    pub async fn mark_rewarded(&self, challenge: &str, customer: &str, at: i64) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE team_members SET rewarded_at = $1 \
             WHERE challenge_id = $2 AND customer_id = $3 AND rewarded_at IS NULL",
        )
        .bind(at)
        .bind(challenge)
        .bind(customer)
        .execute(self.db.writer())
        .await?;
        Ok(())
    }
}
