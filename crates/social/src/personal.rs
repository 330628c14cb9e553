//! The customer's invites and team memberships for their export and erasure (PIPL), over
//! social's own tables.
//!
//! Erasure keeps the rows other customers' progress depends on — an inviter's code and
//! counts, an invitee's attribution, a team membership and its contribution — since they
//! hold only ids and numbers, and overwrites the free text and identifiers that point at
//! the person: the name of a team they captain, the device an accepted invite came from
//! (so that device is no longer barred from another invite of the programme).

use huoban_kit::{
    ApiError, Db, DbError,
    personal::{BoxFuture, PersonalData, rows_json},
};
use serde_json::{Value, json};
use uuid::Uuid;

/// Social's part of a customer's personal data.
#[derive(Debug, Clone)]
pub struct SocialData {
    db: Db,
}

impl SocialData {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    async fn rows(&self, sql: &str, customer: Uuid) -> Result<Value, DbError> {
        Ok(Value::Array(rows_json(&self.db, sql, customer).await?))
    }
}

const ERASE: &[&str] = &[
    "UPDATE teams SET name = 'Team ' || substr(id, 1, 8) WHERE captain_id = $1 AND name <> 'Team ' || substr(id, 1, 8)",
    "UPDATE invite_attributions SET device_id = 'erased:' || invitee_id WHERE invitee_id = $1 \
     AND device_id <> 'erased:' || invitee_id",
];

impl PersonalData for SocialData {
    fn section(&self) -> &'static str {
        "social"
    }

    fn export<'a>(&'a self, customer: Uuid) -> BoxFuture<'a, Result<Value, ApiError>> {
        Box::pin(async move {
            Ok(json!({
                "invite_codes": self.rows(
                    "SELECT code, programme_id, accepted, qualified, created_at, unlocked_at, rewarded_at \
                     FROM invite_codes WHERE inviter_id = $1 ORDER BY created_at",
                    customer,
                ).await?,
                "invites_accepted": self.rows(
                    "SELECT programme_id, code, device_id, accepted_at, qualified_at FROM invite_attributions \
                     WHERE invitee_id = $1 ORDER BY accepted_at",
                    customer,
                ).await?,
                "teams": self.rows(
                    "SELECT t.id AS team_id, t.name, t.challenge_id, m.contribution, m.joined_at, m.rewarded_at, \
                     CASE WHEN t.captain_id = m.customer_id THEN 1 ELSE 0 END AS captain \
                     FROM team_members m JOIN teams t ON t.id = m.team_id WHERE m.customer_id = $1 ORDER BY m.joined_at",
                    customer,
                ).await?,
            }))
        })
    }

    fn erase<'a>(&'a self, customer: Uuid) -> BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(async move { Ok(huoban_kit::personal::erase_rows(&self.db, customer, ERASE).await?) })
    }
}
