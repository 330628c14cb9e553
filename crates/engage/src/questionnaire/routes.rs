//! Questionnaire endpoints. Staff with `ManageCampaigns` save and list questionnaires;
//! customers list what they may take, answer it one question at a time and read their
//! suitability level. Handlers only translate between HTTP and [`QuestionnaireService`].

use axum::{extract::FromRef, extract::State, http::StatusCode};
use huoban_identity::{CustomerAuth, IdentityService, Permission, StaffAuth};
use huoban_kit::{ApiError, ApiJson, ApiPath, ApiQuery, Page, PageQuery, problem::Problem};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::service::{
    NewAnswer, NewQuestionnaire, QuestionnaireService, QuestionnaireSummary, SessionView, StaffQuestionnaireView,
    SuitabilityView,
};
use crate::EngageState;

pub const TAG: &str = "engage";

impl FromRef<QuestionnaireService> for IdentityService {
    fn from_ref(s: &QuestionnaireService) -> Self {
        s.identity().clone()
    }
}

pub fn router(state: EngageState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(staff_list, staff_save))
        .routes(routes!(list_questionnaires))
        .routes(routes!(start_session))
        .routes(routes!(answer))
        .routes(routes!(suitability))
        .with_state(QuestionnaireService::new(state))
}

/// Save a questionnaire or quiz. The graph is validated first: a start question, options
/// that lead to existing questions or to the end, no cycles, every question reachable,
/// unique ids, at least two options per question. An invalid one is refused with every
/// problem listed in `errors`, and nothing is stored.
#[utoipa::path(post, path = "/api/v1/staff/questionnaires", tag = TAG, security(("bearer" = [])),
    request_body = NewQuestionnaire,
    responses((status = 201, body = StaffQuestionnaireView),
              (status = 401, body = Problem),
              (status = 403, description = "permission-denied, staff-only", body = Problem),
              (status = 422, description = "invalid-questionnaire (with `errors`), validation, invalid-body", body = Problem)))]
#[tracing::instrument(skip_all, fields(staff = %auth.staff_id))]
async fn staff_save(
    State(s): State<QuestionnaireService>,
    auth: StaffAuth,
    ApiJson(body): ApiJson<NewQuestionnaire>,
) -> Result<(StatusCode, ApiJson<StaffQuestionnaireView>), ApiError> {
    auth.require(Permission::ManageCampaigns)?;
    Ok((StatusCode::CREATED, ApiJson(s.save(auth.staff_id, body).await?)))
}

/// Every saved questionnaire, drafts included, oldest first, with its whole definition.
#[utoipa::path(get, path = "/api/v1/staff/questionnaires", tag = TAG, security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, body = Page<StaffQuestionnaireView>),
              (status = 401, body = Problem),
              (status = 403, description = "permission-denied, staff-only", body = Problem)))]
#[tracing::instrument(skip_all, fields(staff = %auth.staff_id))]
async fn staff_list(
    State(s): State<QuestionnaireService>,
    auth: StaffAuth,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<ApiJson<Page<StaffQuestionnaireView>>, ApiError> {
    auth.require(Permission::ManageCampaigns)?;
    Ok(ApiJson(s.staff_list(page).await?))
}

/// Questionnaires and quizzes you can take, in your language: the built-in
/// `risk-appetite` questionnaire (first on the first page), then the published ones.
#[utoipa::path(get, path = "/api/v1/questionnaires", tag = TAG, security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, body = Page<QuestionnaireSummary>),
              (status = 401, body = Problem),
              (status = 403, description = "customers-only", body = Problem)))]
#[tracing::instrument(skip_all, fields(customer = %auth.customer_id))]
async fn list_questionnaires(
    State(s): State<QuestionnaireService>,
    auth: CustomerAuth,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<ApiJson<Page<QuestionnaireSummary>>, ApiError> {
    Ok(ApiJson(s.customer_list(auth.customer_id, page).await?))
}

/// Start a session: answers the first question, in your language.
#[utoipa::path(post, path = "/api/v1/questionnaires/{id}/sessions", tag = TAG, security(("bearer" = [])),
    params(("id" = String, Path, description = "Questionnaire id, or `risk-appetite`")),
    responses((status = 201, body = SessionView),
              (status = 401, body = Problem),
              (status = 404, description = "unknown-questionnaire", body = Problem)))]
#[tracing::instrument(skip_all, fields(customer = %auth.customer_id, questionnaire = %id))]
async fn start_session(
    State(s): State<QuestionnaireService>,
    auth: CustomerAuth,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, ApiJson<SessionView>), ApiError> {
    Ok((StatusCode::CREATED, ApiJson(s.start(auth.customer_id, &id).await?)))
}

/// Answer the current question. Answers the next question, or the result once the last
/// one is answered: a quiz's score, pass and points paid (once per quiz, however often it
/// is retaken); the risk questionnaire's suitability level.
#[utoipa::path(post, path = "/api/v1/questionnaires/sessions/{session_id}/answers", tag = TAG,
    security(("bearer" = [])), request_body = NewAnswer,
    params(("session_id" = Uuid, Path, description = "Session id")),
    responses((status = 200, body = SessionView),
              (status = 401, body = Problem),
              (status = 404, description = "unknown-session", body = Problem),
              (status = 409, description = "not-on-path (with `current_question`), session-finished, session-busy", body = Problem),
              (status = 422, description = "unknown-option, invalid-body", body = Problem)))]
#[tracing::instrument(skip_all, fields(customer = %auth.customer_id, session = %session_id))]
async fn answer(
    State(s): State<QuestionnaireService>,
    auth: CustomerAuth,
    ApiPath(session_id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<NewAnswer>,
) -> Result<ApiJson<SessionView>, ApiError> {
    Ok(ApiJson(s.answer(auth.customer_id, session_id, body).await?))
}

/// Your suitability level (C1 most cautious … C5 most risk-tolerant) from your latest
/// risk-appetite questionnaire.
#[utoipa::path(get, path = "/api/v1/suitability", tag = TAG, security(("bearer" = [])),
    responses((status = 200, body = SuitabilityView),
              (status = 401, body = Problem),
              (status = 404, description = "no-suitability", body = Problem)))]
#[tracing::instrument(skip_all, fields(customer = %auth.customer_id))]
async fn suitability(
    State(s): State<QuestionnaireService>,
    auth: CustomerAuth,
) -> Result<ApiJson<SuitabilityView>, ApiError> {
    Ok(ApiJson(s.suitability(auth.customer_id).await?))
}
