//! The SQL of questionnaires: saved definitions (`questionnaires`), customers' sessions
//! (`questionnaire_sessions`) and suitability levels (`customer_suitability`). Returns
//! [`DbError`]; definitions and answers are JSON text, parsed back into domain types here.

use huoban_kit::{Db, DbError, clock::to_micros, db::flag, ids::new_id};
use jiff::Timestamp;
use uuid::Uuid;

use crate::events::store::{EventRow, EventsStore};

use super::domain::{Answer, Questionnaire, Suitability};

/// A saved questionnaire.
#[derive(Debug, Clone)]
pub struct StoredQuestionnaire {
    pub id: Uuid,
    pub definition: Questionnaire,
    pub published: bool,
    pub created_by: Uuid,
    pub created_at: i64,
}

#[derive(Debug, sqlx::FromRow)]
struct RawQuestionnaire {
    id: String,
    definition: String,
    published: i64,
    created_by: String,
    created_at: i64,
}

impl RawQuestionnaire {
    fn parse(self) -> Result<StoredQuestionnaire, DbError> {
        Ok(StoredQuestionnaire {
            id: parse_uuid(&self.id)?,
            definition: serde_json::from_str(&self.definition)
                .map_err(|e| DbError::Config(format!("questionnaire {} is unreadable: {e}", self.id)))?,
            published: flag(self.published),
            created_by: parse_uuid(&self.created_by)?,
            created_at: self.created_at,
        })
    }
}

/// A customer's session.
#[derive(Debug, Clone)]
pub struct StoredSession {
    pub id: Uuid,
    pub questionnaire_id: String,
    pub customer_id: Uuid,
    pub answers: Vec<Answer>,
    pub finished: bool,
}

#[derive(Debug, sqlx::FromRow)]
struct RawSession {
    id: String,
    questionnaire_id: String,
    customer_id: String,
    answers: String,
    finished_at: Option<i64>,
}

impl RawSession {
    fn parse(self) -> Result<StoredSession, DbError> {
        Ok(StoredSession {
            id: parse_uuid(&self.id)?,
            answers: serde_json::from_str(&self.answers)
                .map_err(|e| DbError::Config(format!("session {} is unreadable: {e}", self.id)))?,
            questionnaire_id: self.questionnaire_id,
            customer_id: parse_uuid(&self.customer_id)?,
            finished: self.finished_at.is_some(),
        })
    }
}

/// A customer's stored suitability level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSuitability {
    pub level: Suitability,
    pub score: i64,
    pub assessed_at: i64,
}

/// How a session ended, written together with the session's last answer.
#[derive(Debug, Clone, Copy)]
pub struct Completion {
    pub score: i64,
    /// Set for the risk-appetite questionnaire: stored as the customer's level.
    pub suitability: Option<Suitability>,
}

fn parse_uuid(s: &str) -> Result<Uuid, DbError> {
    Uuid::parse_str(s).map_err(|_| DbError::Config(format!("stored id {s:?} is not a UUID")))
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, DbError> {
    serde_json::to_string(value).map_err(|e| DbError::Config(e.to_string()))
}

#[derive(Debug, Clone)]
pub struct QuestionnaireStore {
    db: Db,
}

impl QuestionnaireStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Saves a validated definition under a new id.
    #[tracing::instrument(skip_all, fields(staff = %staff))]
    pub async fn insert(
        &self,
        definition: &Questionnaire,
        published: bool,
        staff: Uuid,
        now: Timestamp,
    ) -> Result<StoredQuestionnaire, DbError> {
        let stored = StoredQuestionnaire {
            id: new_id(),
            definition: definition.clone(),
            published,
            created_by: staff,
            created_at: to_micros(now),
        };
        sqlx::query(
            "INSERT INTO questionnaires (id, kind, definition, published, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(stored.id.to_string())
        .bind(definition.kind.as_str())
        .bind(to_json(definition)?)
        .bind(i64::from(published))
        .bind(staff.to_string())
        .bind(stored.created_at)
        .execute(self.db.writer())
        .await?;
        Ok(stored)
    }

    pub async fn get(&self, id: Uuid) -> Result<StoredQuestionnaire, DbError> {
        let raw: RawQuestionnaire = sqlx::query_as(
            "SELECT id, definition, published, created_by, created_at FROM questionnaires WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_one(self.db.reader())
        .await?;
        raw.parse()
    }

    /// Up to `limit + 1` questionnaires after the cursor id, oldest first; only published
    /// ones when `published_only`.
    pub async fn list(
        &self,
        published_only: bool,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredQuestionnaire>, DbError> {
        let rows: Vec<RawQuestionnaire> = sqlx::query_as(
            "SELECT id, definition, published, created_by, created_at FROM questionnaires \
             WHERE ($1 = 0 OR published = 1) AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(i64::from(published_only))
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit) + 1)
        .fetch_all(self.db.reader())
        .await?;
        rows.into_iter().map(RawQuestionnaire::parse).collect()
    }

    #[tracing::instrument(skip_all, fields(customer = %customer, questionnaire = questionnaire))]
    pub async fn start_session(
        &self,
        questionnaire: &str,
        customer: Uuid,
        now: Timestamp,
    ) -> Result<StoredSession, DbError> {
        let session = StoredSession {
            id: new_id(),
            questionnaire_id: questionnaire.to_owned(),
            customer_id: customer,
            answers: Vec::new(),
            finished: false,
        };
        sqlx::query(
            "INSERT INTO questionnaire_sessions (id, questionnaire_id, customer_id, answers, answered, created_at) \
             VALUES ($1, $2, $3, '[]', 0, $4)",
        )
        .bind(session.id.to_string())
        .bind(questionnaire)
        .bind(customer.to_string())
        .bind(to_micros(now))
        .execute(self.db.writer())
        .await?;
        Ok(session)
    }

    /// The session, if it is this customer's; another customer's is `NotFound`, so ids
    /// reveal nothing.
    pub async fn session(&self, id: Uuid, customer: Uuid) -> Result<StoredSession, DbError> {
        let raw: RawSession = sqlx::query_as(
            "SELECT id, questionnaire_id, customer_id, answers, finished_at FROM questionnaire_sessions \
             WHERE id = $1 AND customer_id = $2",
        )
        .bind(id.to_string())
        .bind(customer.to_string())
        // The reader sees every committed answer (WAL); a stale read can only lose the
        // race in `record_answers`, which then reads again.
        .fetch_one(self.db.reader())
        .await?;
        raw.parse()
    }

    /// Stores the answers of a session that had `previous` answers, finishing it when
    /// `completion` is given (and, for the risk questionnaire, storing the level in the
    /// same transaction). False when another request changed the session first.
    #[tracing::instrument(skip_all, fields(session = %session.id))]
    pub async fn record_answers(
        &self,
        session: &StoredSession,
        answers: &[Answer],
        completion: Option<Completion>,
        event: Option<&EventRow>,
        now: Timestamp,
    ) -> Result<bool, DbError> {
        let at = now;
        let now = to_micros(now);
        let mut tx = self.db.begin().await?;
        let updated = sqlx::query(
            "UPDATE questionnaire_sessions SET answers = $1, answered = $2, score = $3, finished_at = $4 \
             WHERE id = $5 AND answered = $6 AND finished_at IS NULL",
        )
        .bind(to_json(&answers)?)
        .bind(answers.len() as i64)
        .bind(completion.map(|c| c.score))
        .bind(completion.map(|_| now))
        .bind(session.id.to_string())
        .bind(session.answers.len() as i64)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated != 1 {
            return Ok(false);
        }
        if let Some(Completion {
            score,
            suitability: Some(level),
        }) = completion
        {
            // The latest assessment wins: a customer may retake it as their situation changes.
            sqlx::query(
                "INSERT INTO customer_suitability (customer_id, level, score, session_id, assessed_at) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (customer_id) DO UPDATE SET level = excluded.level, score = excluded.score, \
                 session_id = excluded.session_id, assessed_at = excluded.assessed_at",
            )
            .bind(session.customer_id.to_string())
            .bind(level.as_str())
            .bind(score)
            .bind(session.id.to_string())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(event) = event {
            // "Finished" as a behaviour event, committed with the session (crates/engage/src/events).
            EventsStore::new(self.db.clone())
                .insert(&mut tx, std::slice::from_ref(event), at)
                .await?;
        }
        tx.commit().await?;
        if event.is_some() {
            crate::events::feed::announce();
        }
        Ok(true)
    }

    pub async fn suitability(&self, customer: Uuid) -> Result<Option<StoredSuitability>, DbError> {
        let row: Option<(String, i64, i64)> =
            sqlx::query_as("SELECT level, score, assessed_at FROM customer_suitability WHERE customer_id = $1")
                .bind(customer.to_string())
                .fetch_optional(self.db.reader())
                .await?;
        row.map(|(level, score, assessed_at)| {
            Ok(StoredSuitability {
                level: Suitability::parse(&level)
                    .ok_or_else(|| DbError::Config(format!("unknown suitability level {level:?}")))?,
                score,
                assessed_at,
            })
        })
        .transpose()
    }
}
