//! [`QuestionnaireService`]: saving questionnaires (validated first), starting sessions,
//! taking answers, and what completion does — a passing quiz pays its points reward
//! through the ledger once per customer and quiz, the risk-appetite questionnaire stores
//! the customer's suitability level. The API types it answers with live here too.

use axum::http::StatusCode;
use huoban_accounts::AccountsService;
use huoban_identity::{IdentityService, Locale};
use huoban_kit::{ApiError, DbError, Page, PageQuery, SharedClock, clock::from_micros, page::encode_cursor};
use huoban_ledger::{Amount, IdempotencyKey, Ledger, TransferMeta, TransferRequest, Unit};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::{
    domain::{
        self, GraphError, Kind, Outcome, Position, Question, QuizRules, RISK_APPETITE_ID, Suitability, Text, WalkError,
    },
    store::{Completion, QuestionnaireStore, StoredQuestionnaire, StoredSession},
};
use crate::{EngageState, events::store::EventRow};

/// Ledger idempotency scope of quiz rewards; the key is `{quiz}:{customer}`, which is what
/// makes a reward payable once per customer and quiz, however often the quiz is retaken.
pub const QUIZ_REWARD_SCOPE: &str = "quiz";

/// Times an answer is retried when a concurrent answer to the same session got in first.
const ANSWER_ATTEMPTS: usize = 3;

/// A questionnaire as an operator saves it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewQuestionnaire {
    /// `survey` or `quiz` (the risk-appetite questionnaire is built in).
    pub kind: Kind,
    pub title: Text,
    /// Id of the first question.
    pub start: String,
    pub questions: Vec<Question>,
    /// Quizzes only: the pass mark and the points reward.
    #[serde(default)]
    pub quiz: Option<QuizRules>,
    /// Whether customers see it (default true); a draft (`false`) is listed to staff only.
    #[serde(default)]
    pub published: Option<bool>,
}

/// A saved questionnaire as staff see it: the whole definition.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StaffQuestionnaireView {
    pub id: Uuid,
    pub published: bool,
    pub created_by: Uuid,
    pub created_at: String,
    pub definition: domain::Questionnaire,
}

/// A questionnaire in the customer's list, in their language.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QuestionnaireSummary {
    /// A UUID, or `risk-appetite` for the built-in risk questionnaire.
    pub id: String,
    pub kind: Kind,
    pub title: String,
    pub question_count: usize,
    /// Quizzes: points paid once for passing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reward_points: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OptionView {
    pub id: String,
    pub text: String,
}

/// A question in the customer's language, without scores or where options lead.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QuestionView {
    pub id: String,
    pub text: String,
    pub options: Vec<OptionView>,
}

impl QuestionView {
    fn of(question: &Question, locale: Locale) -> Self {
        Self {
            id: question.id.clone(),
            text: question.text.get(locale).to_owned(),
            options: question
                .options
                .iter()
                .map(|o| OptionView {
                    id: o.id.clone(),
                    text: o.text.get(locale).to_owned(),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    InProgress,
    Finished,
}

/// A customer's suitability level.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SuitabilityView {
    pub level: Suitability,
    /// The level's name in the customer's language.
    pub name: String,
    pub score: i64,
    pub assessed_at: String,
}

/// What a finished session came to.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResultView {
    pub score: i64,
    /// The questions answered, in order.
    pub path: Vec<String>,
    /// Quizzes: whether the score reached the pass mark.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass_mark: Option<i64>,
    /// Quizzes: points paid by this completion; 0 when failed or when already paid before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub points_awarded: Option<i64>,
    /// Risk questionnaire: the level now stored for the customer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suitability: Option<SuitabilityView>,
}

/// A session: the next question while in progress, the result once finished.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionView {
    pub session_id: Uuid,
    pub questionnaire_id: String,
    pub status: SessionStatus,
    /// Answers given so far.
    pub answered: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub question: Option<QuestionView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<ResultView>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAnswer {
    pub question_id: String,
    pub option_id: String,
}

fn unknown_questionnaire(id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "unknown-questionnaire", "No such questionnaire")
        .detail(format!("There is no published questionnaire {id:?}."))
}

fn unknown_session() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown-session",
        "No such questionnaire session",
    )
}

/// The 422 for a graph that does not validate: every error, each with a readable message.
pub fn invalid_questionnaire(errors: &[GraphError]) -> ApiError {
    let listed: Vec<Value> = errors
        .iter()
        .map(|e| {
            let mut value = serde_json::to_value(e).unwrap_or_default();
            if let Value::Object(map) = &mut value {
                map.insert("message".into(), Value::String(e.to_string()));
            }
            value
        })
        .collect();
    let detail = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-questionnaire",
        "The questionnaire is not a valid graph",
    )
    .detail(detail)
    .with("errors", listed)
}

fn walk_error(err: WalkError) -> ApiError {
    match err {
        WalkError::NotOnPath { ref expected, .. } => {
            let current = expected.clone();
            ApiError::conflict("not-on-path", "That question is not the current one")
                .detail(err.to_string())
                .with("current_question", current)
        }
        WalkError::UnknownOption { .. } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown-option",
            "The question has no such option",
        )
        .detail(err.to_string()),
        WalkError::Finished => ApiError::conflict("session-finished", "The questionnaire is already finished")
            .detail("Start a new session to answer it again."),
        WalkError::Inconsistent => ApiError::internal(err),
    }
}

/// The handle the questionnaire routes use. Cheap to clone.
#[derive(Debug, Clone)]
pub struct QuestionnaireService {
    store: QuestionnaireStore,
    clock: SharedClock,
    identity: IdentityService,
    accounts: AccountsService,
    ledger: Ledger,
}

impl QuestionnaireService {
    pub fn new(state: EngageState) -> Self {
        Self {
            store: QuestionnaireStore::new(state.db),
            clock: state.clock,
            identity: state.identity,
            accounts: state.accounts,
            ledger: state.ledger,
        }
    }

    pub fn identity(&self) -> &IdentityService {
        &self.identity
    }

    fn staff_view(stored: StoredQuestionnaire) -> StaffQuestionnaireView {
        StaffQuestionnaireView {
            id: stored.id,
            published: stored.published,
            created_by: stored.created_by,
            created_at: from_micros(stored.created_at).to_string(),
            definition: stored.definition,
        }
    }

    /// Validates and saves a questionnaire; an invalid one stores nothing.
    pub async fn save(&self, staff: Uuid, new: NewQuestionnaire) -> Result<StaffQuestionnaireView, ApiError> {
        if new.kind == Kind::RiskAppetite {
            return Err(ApiError::invalid_field(
                "kind",
                "the risk-appetite questionnaire is built in; save a survey or a quiz",
            ));
        }
        let definition = domain::Questionnaire {
            kind: new.kind,
            title: new.title,
            start: new.start,
            questions: new.questions,
            quiz: new.quiz,
        };
        domain::validate(&definition).map_err(|errors| invalid_questionnaire(&errors))?;
        let stored = self
            .store
            .insert(&definition, new.published.unwrap_or(true), staff, self.clock.now())
            .await?;
        Ok(Self::staff_view(stored))
    }

    pub async fn staff_list(&self, page: PageQuery) -> Result<Page<StaffQuestionnaireView>, ApiError> {
        let limit = page.limit()?;
        let rows = self.store.list(false, page.after()?.as_deref(), limit).await?;
        let page = Page::from_rows(rows, limit, |r| r.id.to_string());
        Ok(Page {
            items: page.items.into_iter().map(Self::staff_view).collect(),
            next_cursor: page.next_cursor,
        })
    }

    async fn locale_of(&self, customer: Uuid) -> Result<Locale, ApiError> {
        Ok(self.identity.profile(customer).await?.locale)
    }

    /// Published questionnaires, the built-in risk questionnaire first on the first page.
    pub async fn customer_list(&self, customer: Uuid, page: PageQuery) -> Result<Page<QuestionnaireSummary>, ApiError> {
        let limit = page.limit()?;
        let after = page.after()?;
        let locale = self.locale_of(customer).await?;
        let summary = |id: String, q: &domain::Questionnaire| QuestionnaireSummary {
            id,
            kind: q.kind,
            title: q.title.get(locale).to_owned(),
            question_count: q.questions.len(),
            reward_points: q.quiz.map(|r| r.reward_points),
        };
        let rows = self.store.list(true, after.as_deref(), limit).await?;
        let more = rows.len() > limit as usize;
        let mut items: Vec<QuestionnaireSummary> = Vec::with_capacity(rows.len() + 1);
        if after.is_none() {
            items.push(summary(RISK_APPETITE_ID.to_owned(), &domain::risk_appetite()));
        }
        let saved: Vec<StoredQuestionnaire> = rows.into_iter().take(limit as usize).collect();
        let next_cursor = more
            .then(|| saved.last().map(|r| encode_cursor(&r.id.to_string())))
            .flatten();
        items.extend(saved.iter().map(|r| summary(r.id.to_string(), &r.definition)));
        Ok(Page { items, next_cursor })
    }

    /// The definition behind an id a customer may use: the built-in one or a published one.
    async fn definition(&self, id: &str) -> Result<domain::Questionnaire, ApiError> {
        if id == RISK_APPETITE_ID {
            return Ok(domain::risk_appetite());
        }
        let uuid = Uuid::parse_str(id).map_err(|_| unknown_questionnaire(id))?;
        match self.store.get(uuid).await {
            Ok(stored) if stored.published => Ok(stored.definition),
            Ok(_) | Err(DbError::NotFound) => Err(unknown_questionnaire(id)),
            Err(other) => Err(other.into()),
        }
    }

    pub async fn start(&self, customer: Uuid, questionnaire: &str) -> Result<SessionView, ApiError> {
        let definition = self.definition(questionnaire).await?;
        let first = match domain::walk(&definition, &[]).map_err(walk_error)? {
            Position::At(first) => first,
            Position::Finished(_) => return Err(ApiError::internal("a questionnaire finished before any answer")),
        };
        let locale = self.locale_of(customer).await?;
        let session = self
            .store
            .start_session(questionnaire, customer, self.clock.now())
            .await?;
        Ok(SessionView {
            session_id: session.id,
            questionnaire_id: session.questionnaire_id,
            status: SessionStatus::InProgress,
            answered: 0,
            question: Some(QuestionView::of(first, locale)),
            result: None,
        })
    }

    /// Takes an answer to the current question of the customer's session.
    pub async fn answer(&self, customer: Uuid, session_id: Uuid, new: NewAnswer) -> Result<SessionView, ApiError> {
        let locale = self.locale_of(customer).await?;
        for _ in 0..ANSWER_ATTEMPTS {
            let session = match self.store.session(session_id, customer).await {
                Err(DbError::NotFound) => return Err(unknown_session()),
                other => other?,
            };
            if session.finished {
                return Err(walk_error(WalkError::Finished));
            }
            let definition = self.definition(&session.questionnaire_id).await?;
            let (answers, position) =
                domain::answer(&definition, &session.answers, &new.question_id, &new.option_id).map_err(walk_error)?;
            let (completion, view) = match position {
                Position::At(next) => (
                    None,
                    SessionView {
                        session_id,
                        questionnaire_id: session.questionnaire_id.clone(),
                        status: SessionStatus::InProgress,
                        answered: answers.len(),
                        question: Some(QuestionView::of(next, locale)),
                        result: None,
                    },
                ),
                Position::Finished(outcome) => {
                    let (completion, result) = self.complete(&session, &definition, outcome, locale).await?;
                    (
                        Some(completion),
                        SessionView {
                            session_id,
                            questionnaire_id: session.questionnaire_id.clone(),
                            status: SessionStatus::Finished,
                            answered: answers.len(),
                            question: None,
                            result: Some(result),
                        },
                    )
                }
            };
            let event = view.result.as_ref().map(|result| {
                EventRow::server(
                    customer,
                    format!("questionnaire_completed:{session_id}"),
                    crate::events::domain::QUESTIONNAIRE_COMPLETED,
                    self.clock.now(),
                    serde_json::json!({
                        "questionnaire_id": session.questionnaire_id,
                        "kind": definition.kind.as_str(),
                        "score": result.score,
                        "passed": result.passed,
                        "suitability": result.suitability.as_ref().map(|s| s.level.as_str()),
                    }),
                )
            });
            if self
                .store
                .record_answers(&session, &answers, completion, event.as_ref(), self.clock.now())
                .await?
            {
                return Ok(view);
            }
            // Another answer to this session got in first: look again at where it stands.
        }
        Err(
            ApiError::conflict("session-busy", "The session is being answered elsewhere")
                .detail("Several answers to this session arrived at once; retry."),
        )
    }

    /// What finishing does beyond storing the session. The quiz reward is paid *before* the
    /// session is marked finished: its ledger key makes a second payment impossible, so if
    /// the session write then fails, answering the last question again is safe and pays
    /// nothing twice — whereas the other order could finish a session whose reward was lost.
    async fn complete(
        &self,
        session: &StoredSession,
        definition: &domain::Questionnaire,
        outcome: Outcome,
        locale: Locale,
    ) -> Result<(Completion, ResultView), ApiError> {
        let mut result = ResultView {
            score: outcome.score,
            path: outcome.path,
            passed: None,
            pass_mark: None,
            points_awarded: None,
            suitability: None,
        };
        let mut completion = Completion {
            score: outcome.score,
            suitability: None,
        };
        match (definition.kind, definition.quiz) {
            (Kind::Quiz, Some(rules)) => {
                let passed = domain::passes(rules, outcome.score);
                result.passed = Some(passed);
                result.pass_mark = Some(rules.pass_mark);
                let paid = if passed {
                    self.pay_reward(session, definition, rules.reward_points).await?
                } else {
                    0
                };
                result.points_awarded = Some(paid);
            }
            (Kind::RiskAppetite, _) => {
                let level = Suitability::from_score(outcome.score);
                completion.suitability = Some(level);
                result.suitability = Some(SuitabilityView {
                    level,
                    name: level.describe().get(locale).to_owned(),
                    score: outcome.score,
                    assessed_at: self.clock.now().to_string(),
                });
            }
            _ => {}
        }
        Ok((completion, result))
    }

    /// Pays a quiz reward from the bank's points clearing account; returns the points that
    /// moved now (0 when this customer was paid for this quiz before).
    async fn pay_reward(
        &self,
        session: &StoredSession,
        definition: &domain::Questionnaire,
        points: i64,
    ) -> Result<i64, ApiError> {
        if points == 0 {
            return Ok(0);
        }
        let customer = session.customer_id;
        let to = self.accounts.ensure_standard_accounts(customer).await?.points;
        let from = self.accounts.clearing(Unit::Points).await?;
        let key = IdempotencyKey::new(QUIZ_REWARD_SCOPE, format!("{}:{customer}", session.questionnaire_id))?;
        // Only what is the same for every retake goes in: a replay must match the first
        // request exactly, or the ledger would refuse it as a reused key.
        let request =
            TransferRequest::single(key, Unit::Points, from, to, Amount::new(points)?).with_meta(TransferMeta {
                description: Some(format!("Quiz reward: {}", definition.title.zh_cn)),
                metadata: Some(serde_json::json!({ "quiz": session.questionnaire_id })),
                ..TransferMeta::default()
            });
        let outcome = self.ledger.transfer(request).await?;
        Ok(if outcome.replayed { 0 } else { points })
    }

    pub async fn suitability(&self, customer: Uuid) -> Result<SuitabilityView, ApiError> {
        let stored = self.store.suitability(customer).await?.ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, "no-suitability", "No suitability assessment yet").detail(format!(
                "Answer the {RISK_APPETITE_ID} questionnaire to get a suitability level."
            ))
        })?;
        let locale = self.locale_of(customer).await?;
        Ok(SuitabilityView {
            level: stored.level,
            name: stored.level.describe().get(locale).to_owned(),
            score: stored.score,
            assessed_at: from_micros(stored.assessed_at).to_string(),
        })
    }
}
