//! Savings-goal endpoints for customers. Handlers only translate between HTTP and
//! [`GoalsService`]; every one needs a customer session. A goal that is not yours (neither
//! owner nor partner) answers 404 `unknown-goal`, exactly like one that does not exist.

use axum::{
    extract::{FromRef, State},
    http::StatusCode,
};
use huoban_identity::{CustomerAuth, IdentityService};
use huoban_kit::idempotency::RequiredKey;
use huoban_kit::{ApiError, ApiJson, ApiPath, problem::Problem};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::service::{DepositView, GoalList, GoalView, GoalsService, NewDeposit, NewGoal, NewPartner};
use crate::EngageState;

pub const TAG: &str = "engage";

impl FromRef<GoalsService> for IdentityService {
    fn from_ref(s: &GoalsService) -> Self {
        s.identity().clone()
    }
}

pub fn router(state: EngageState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(list_goals, create_goal))
        .routes(routes!(get_goal))
        .routes(routes!(deposit))
        .routes(routes!(invite_partner))
        .with_state(GoalsService::new(&state))
}

/// Your savings goals and the goals shared with you.
#[utoipa::path(get, path = "/api/v1/goals", tag = TAG, security(("bearer" = [])),
    responses((status = 200, body = GoalList),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "customers-only", body = Problem)))]
#[tracing::instrument(skip_all, fields(customer = %auth.customer_id))]
async fn list_goals(State(s): State<GoalsService>, auth: CustomerAuth) -> Result<ApiJson<GoalList>, ApiError> {
    Ok(ApiJson(s.list(auth.customer_id).await?))
}

/// Create a goal: Huoban plans the monthly amount and transfer day (a few days after your
/// usual payday) and opens a goal pocket for it.
#[utoipa::path(post, path = "/api/v1/goals", tag = TAG, security(("bearer" = [])),
    request_body = NewGoal,
    responses((status = 201, body = GoalView),
              (status = 400, description = "malformed-json", body = Problem),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "customers-only", body = Problem),
              (status = 422, description = "invalid-target-amount, invalid-target-date, validation, invalid-body", body = Problem)))]
#[tracing::instrument(skip_all, fields(customer = %auth.customer_id))]
async fn create_goal(
    State(s): State<GoalsService>,
    auth: CustomerAuth,
    ApiJson(body): ApiJson<NewGoal>,
) -> Result<(StatusCode, ApiJson<GoalView>), ApiError> {
    Ok((StatusCode::CREATED, ApiJson(s.create(auth.customer_id, body).await?)))
}

/// One goal: saved, remaining, percent, plan, projected completion, behind plan,
/// members and contributions per person.
#[utoipa::path(get, path = "/api/v1/goals/{id}", tag = TAG, security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Goal id")),
    responses((status = 200, body = GoalView),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 404, description = "unknown-goal", body = Problem)))]
#[tracing::instrument(skip_all, fields(customer = %auth.customer_id, goal = %id))]
async fn get_goal(
    State(s): State<GoalsService>,
    auth: CustomerAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<ApiJson<GoalView>, ApiError> {
    Ok(ApiJson(s.get(auth.customer_id, id).await?))
}

/// Move money from one of your accounts into the goal's pocket (owner or partner).
/// `Idempotency-Key` is required and kept in the ledger: a retry never pays twice.
#[utoipa::path(post, path = "/api/v1/goals/{id}/deposits", tag = TAG, security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Goal id"),
           ("Idempotency-Key" = String, Header, description = "Required; unique per deposit")),
    request_body = NewDeposit,
    responses((status = 201, body = DepositView),
              (status = 400, description = "idempotency-key-required, invalid-idempotency-key, malformed-json", body = Problem),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "not-your-account", body = Problem),
              (status = 404, description = "unknown-goal, unknown-account", body = Problem),
              (status = 409, description = "insufficient-funds", body = Problem),
              (status = 422, description = "invalid-amount, unit-mismatch, idempotency-key-mismatch, invalid-body", body = Problem)))]
#[tracing::instrument(skip_all, fields(customer = %auth.customer_id, goal = %id))]
async fn deposit(
    State(s): State<GoalsService>,
    auth: CustomerAuth,
    ApiPath(id): ApiPath<Uuid>,
    RequiredKey(key): RequiredKey,
    ApiJson(body): ApiJson<NewDeposit>,
) -> Result<(StatusCode, ApiJson<DepositView>), ApiError> {
    let view = s
        .deposit(auth.customer_id, auth.channel.as_str(), id, &key, body)
        .await?;
    Ok((StatusCode::CREATED, ApiJson(view)))
}

/// Share the goal with a partner by phone; they see it in their list and can deposit.
/// Only the owner can invite; inviting a partner again changes nothing.
#[utoipa::path(post, path = "/api/v1/goals/{id}/partners", tag = TAG, security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Goal id")),
    request_body = NewPartner,
    responses((status = 201, body = GoalView),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "not-goal-owner", body = Problem),
              (status = 404, description = "unknown-goal, unknown-phone", body = Problem),
              (status = 422, description = "cannot-invite-yourself, validation (not a phone number)", body = Problem)))]
#[tracing::instrument(skip_all, fields(customer = %auth.customer_id, goal = %id))]
async fn invite_partner(
    State(s): State<GoalsService>,
    auth: CustomerAuth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<NewPartner>,
) -> Result<(StatusCode, ApiJson<GoalView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        ApiJson(s.invite(auth.customer_id, id, body).await?),
    ))
}
