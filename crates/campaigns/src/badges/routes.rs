//! Badge and level endpoints.

use axum::{extract::State, http::StatusCode};
use huoban_identity::{CustomerAuth, Permission, StaffAuth};
use huoban_kit::{ApiError, ApiJson, problem::Problem};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    domain::BadgeInput,
    service::{BadgeService, BadgeView, LevelView, StaffBadgeView},
};
use crate::{CampaignsState, TAG};

pub fn router(state: CampaignsState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(staff_create, staff_list))
        .routes(routes!(wall))
        .routes(routes!(level))
        .with_state(state)
}

/// Define a badge: criteria (event type + CEL filter, counted) and tiers.
#[utoipa::path(post, path = "/api/v1/staff/badges", tag = TAG, security(("bearer" = [])),
    request_body = BadgeInput,
    responses((status = 201, body = StaffBadgeView),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "permission-denied, staff-only", body = Problem),
              (status = 404, description = "unknown-campaign", body = Problem),
              (status = 409, description = "campaign-ended", body = Problem),
              (status = 422, description = "validation, invalid-rule-expression (filter)", body = Problem)))]
async fn staff_create(
    State(s): State<BadgeService>,
    auth: StaffAuth,
    ApiJson(body): ApiJson<BadgeInput>,
) -> Result<(StatusCode, ApiJson<StaffBadgeView>), ApiError> {
    auth.require(Permission::ManageCampaigns)?;
    Ok((StatusCode::CREATED, ApiJson(s.create(body).await?)))
}

/// Every badge definition.
#[utoipa::path(get, path = "/api/v1/staff/badges", tag = TAG, security(("bearer" = [])),
    responses((status = 200, body = Vec<StaffBadgeView>),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "permission-denied, staff-only", body = Problem)))]
async fn staff_list(State(s): State<BadgeService>, auth: StaffAuth) -> Result<ApiJson<Vec<StaffBadgeView>>, ApiError> {
    auth.require(Permission::ManageCampaigns)?;
    Ok(ApiJson(s.list().await?))
}

/// Your badge wall: every badge, the tier you reached and progress to the next ("2 of 3").
#[utoipa::path(get, path = "/api/v1/badges", tag = TAG, security(("bearer" = [])),
    responses((status = 200, body = Vec<BadgeView>),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "customers-only", body = Problem)))]
async fn wall(State(s): State<BadgeService>, auth: CustomerAuth) -> Result<ApiJson<Vec<BadgeView>>, ApiError> {
    Ok(ApiJson(s.wall(auth.customer_id).await?))
}

/// Your level, from points earned (not your spendable balance), and the next threshold.
#[utoipa::path(get, path = "/api/v1/me/level", tag = TAG, security(("bearer" = [])),
    responses((status = 200, body = LevelView),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "customers-only", body = Problem)))]
async fn level(State(s): State<BadgeService>, auth: CustomerAuth) -> Result<ApiJson<LevelView>, ApiError> {
    Ok(ApiJson(s.level(auth.customer_id).await?))
}
