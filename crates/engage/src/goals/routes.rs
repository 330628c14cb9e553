//! Savings-goal endpoints for customers. Handlers only translate between HTTP and
//! [`GoalsService`]; every one needs a customer session. A goal that is not yours (neither
//! owner nor partner) answers 404 `unknown-goal`, exactly like one that does not exist.

use axum::response::{IntoResponse, Response};
use axum::{
    extract::{FromRef, State},
    http::StatusCode,
};
use huoban_identity::{CustomerAuth, IdentityService, Permission, StaffAuth};
use huoban_kit::idempotency::{self, RequiredKey};
use huoban_kit::{ApiError, ApiJson, ApiPath, problem::Problem};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{
    automation::{
        AutoTransferRequest, ConversionRequest, ConversionView, NewOfferRequest, OfferList, StaffOfferList,
        StaffOfferView,
    },
    service::{DepositView, GoalList, GoalView, GoalsService, NewDeposit, NewGoal, NewPartner},
};
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
        .routes(routes!(set_auto_transfer, stop_auto_transfer))
        .routes(routes!(convert_points))
        .routes(routes!(conversion_offers))
        .routes(routes!(staff_create_offer, staff_offers))
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

/// Turn on (or change) the goal's automatic monthly transfer: on its day, in your time
/// zone, the plan's monthly amount (never more than is left to save) moves from your
/// account into the goal's pocket, once per month. Only the goal's owner.
#[utoipa::path(put, path = "/api/v1/goals/{id}/auto-transfer", tag = TAG, security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Goal id")),
    request_body = AutoTransferRequest,
    responses((status = 200, description = "The goal with its automatic transfer", body = GoalView),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "not-goal-owner, not-your-account", body = Problem),
              (status = 404, description = "unknown-goal, unknown-account", body = Problem),
              (status = 409, description = "goal-completed", body = Problem),
              (status = 422, description = "invalid-transfer-day, invalid-source-account, invalid-body", body = Problem)))]
#[tracing::instrument(skip_all, fields(customer = %auth.customer_id, goal = %id))]
async fn set_auto_transfer(
    State(s): State<GoalsService>,
    auth: CustomerAuth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<AutoTransferRequest>,
) -> Result<ApiJson<GoalView>, ApiError> {
    Ok(ApiJson(s.set_auto_transfer(auth.customer_id, id, body).await?))
}

/// Turn the goal's automatic transfer off: nothing more is paid. Turning off a transfer
/// that is off changes nothing. Only the goal's owner.
#[utoipa::path(delete, path = "/api/v1/goals/{id}/auto-transfer", tag = TAG, security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Goal id")),
    responses((status = 200, description = "The goal, without automatic transfer", body = GoalView),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "not-goal-owner", body = Problem),
              (status = 404, description = "unknown-goal", body = Problem)))]
#[tracing::instrument(skip_all, fields(customer = %auth.customer_id, goal = %id))]
async fn stop_auto_transfer(
    State(s): State<GoalsService>,
    auth: CustomerAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<ApiJson<GoalView>, ApiError> {
    Ok(ApiJson(s.stop_auto_transfer(auth.customer_id, id).await?))
}

/// Convert points into money in the goal's pocket under a conversion offer (owner or
/// partner): one ledger transfer moves both, or neither. `Idempotency-Key` is required
/// and kept in the ledger: a retry converts nothing more and answers the first result
/// (`Idempotent-Replayed: true`); a refused conversion keeps its key free.
#[utoipa::path(post, path = "/api/v1/goals/{id}/conversions", tag = TAG, security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Goal id"),
           ("Idempotency-Key" = String, Header, description = "Required; unique per conversion")),
    request_body = ConversionRequest,
    responses((status = 201, body = ConversionView),
              (status = 400, description = "idempotency-key-required, invalid-idempotency-key, malformed-json", body = Problem),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 404, description = "unknown-goal, unknown-conversion-offer", body = Problem),
              (status = 409, description = "conversion-offer-unavailable (its campaign is not live for you), insufficient-points; nothing moved", body = Problem),
              (status = 422, description = "invalid-points-amount (not a positive multiple of the offer's points, or above its maximum), idempotency-key-mismatch, invalid-body", body = Problem)))]
#[tracing::instrument(skip_all, fields(customer = %auth.customer_id, goal = %id))]
async fn convert_points(
    State(s): State<GoalsService>,
    auth: CustomerAuth,
    ApiPath(id): ApiPath<Uuid>,
    RequiredKey(key): RequiredKey,
    ApiJson(body): ApiJson<ConversionRequest>,
) -> Result<Response, ApiError> {
    let view = s
        .convert(auth.customer_id, auth.channel.as_str(), id, &key, body)
        .await?;
    let replayed = view.replayed;
    let mut response = (StatusCode::CREATED, ApiJson(view)).into_response();
    if replayed {
        idempotency::mark_replayed(&mut response);
    }
    Ok(response)
}

/// Points conversion offers open to you now (those of a campaign only while it is live
/// for you).
#[utoipa::path(get, path = "/api/v1/goal-conversion-offers", tag = TAG, security(("bearer" = [])),
    responses((status = 200, body = OfferList),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "customers-only", body = Problem)))]
#[tracing::instrument(skip_all, fields(customer = %auth.customer_id))]
async fn conversion_offers(State(s): State<GoalsService>, auth: CustomerAuth) -> Result<ApiJson<OfferList>, ApiError> {
    Ok(ApiJson(s.offers_for(auth.customer_id, auth.channel.as_str()).await?))
}

/// Offer points conversion into savings goals at a rate (e.g. 100 points = ¥1),
/// optionally as part of a campaign.
#[utoipa::path(post, path = "/api/v1/staff/goal-conversion-offers", tag = TAG, security(("bearer" = [])),
    request_body = NewOfferRequest,
    responses((status = 201, body = StaffOfferView),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "permission-denied, staff-only", body = Problem),
              (status = 404, description = "unknown-campaign", body = Problem),
              (status = 409, description = "campaign-ended", body = Problem),
              (status = 422, description = "validation (with `field`), invalid-body", body = Problem)))]
#[tracing::instrument(skip_all, fields(staff = %auth.staff_id))]
async fn staff_create_offer(
    State(s): State<GoalsService>,
    auth: StaffAuth,
    ApiJson(body): ApiJson<NewOfferRequest>,
) -> Result<(StatusCode, ApiJson<StaffOfferView>), ApiError> {
    auth.require(Permission::ManageCampaigns)?;
    Ok((StatusCode::CREATED, ApiJson(s.create_offer(auth.staff_id, body).await?)))
}

/// Every points conversion offer, newest first.
#[utoipa::path(get, path = "/api/v1/staff/goal-conversion-offers", tag = TAG, security(("bearer" = [])),
    responses((status = 200, body = StaffOfferList),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "permission-denied, staff-only", body = Problem)))]
#[tracing::instrument(skip_all, fields(staff = %auth.staff_id))]
async fn staff_offers(State(s): State<GoalsService>, auth: StaffAuth) -> Result<ApiJson<StaffOfferList>, ApiError> {
    auth.require(Permission::ManageCampaigns)?;
    Ok(ApiJson(s.staff_offers().await?))
}
