//! Campaign endpoints: staff (`ManageCampaigns`) and customers.

use axum::{extract::State, http::StatusCode};
use huoban_identity::{CustomerAuth, Permission, StaffAuth};
use huoban_kit::{ApiError, ApiJson, ApiPath, ApiQuery, Page, PageQuery, problem::Problem};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{
    domain::{CampaignInput, Transition},
    service::{CampaignService, CampaignView, StaffCampaignView},
};
use crate::{CampaignsState, TAG};

pub fn router(state: CampaignsState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(staff_create, staff_list))
        .routes(routes!(staff_get, staff_update))
        .routes(routes!(staff_schedule))
        .routes(routes!(staff_end))
        .routes(routes!(list))
        .routes(routes!(get))
        .with_state(state)
}

/// Create a campaign (a draft): titles, theme, window, audience (CEL over `customer`),
/// points and coupon budgets.
#[utoipa::path(post, path = "/api/v1/staff/campaigns", tag = TAG, security(("bearer" = [])),
    request_body = CampaignInput,
    responses((status = 201, body = StaffCampaignView),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "permission-denied, staff-only", body = Problem),
              (status = 422, description = "validation (with `field`), invalid-rule-expression (audience), invalid-body", body = Problem)))]
async fn staff_create(
    State(s): State<CampaignService>,
    auth: StaffAuth,
    ApiJson(body): ApiJson<CampaignInput>,
) -> Result<(StatusCode, ApiJson<StaffCampaignView>), ApiError> {
    auth.require(Permission::ManageCampaigns)?;
    Ok((StatusCode::CREATED, ApiJson(s.create(auth.staff_id, body).await?)))
}

/// Campaigns, newest first, with their state now, budget use and stats.
#[utoipa::path(get, path = "/api/v1/staff/campaigns", tag = TAG, security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, body = Page<StaffCampaignView>),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "permission-denied, staff-only", body = Problem)))]
async fn staff_list(
    State(s): State<CampaignService>,
    auth: StaffAuth,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<ApiJson<Page<StaffCampaignView>>, ApiError> {
    auth.require(Permission::ManageCampaigns)?;
    Ok(ApiJson(s.list(&page).await?))
}

/// One campaign with budget use and stats.
#[utoipa::path(get, path = "/api/v1/staff/campaigns/{id}", tag = TAG, security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The campaign")),
    responses((status = 200, body = StaffCampaignView),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "permission-denied, staff-only", body = Problem),
              (status = 404, description = "unknown-campaign", body = Problem)))]
async fn staff_get(
    State(s): State<CampaignService>,
    auth: StaffAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<ApiJson<StaffCampaignView>, ApiError> {
    auth.require(Permission::ManageCampaigns)?;
    Ok(ApiJson(s.get(id).await?))
}

/// Replace a draft's definition.
#[utoipa::path(put, path = "/api/v1/staff/campaigns/{id}", tag = TAG, security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The campaign")),
    request_body = CampaignInput,
    responses((status = 200, body = StaffCampaignView),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "permission-denied, staff-only", body = Problem),
              (status = 404, description = "unknown-campaign", body = Problem),
              (status = 409, description = "invalid-campaign-transition (not a draft), campaign-ended", body = Problem),
              (status = 422, description = "validation, invalid-rule-expression", body = Problem)))]
async fn staff_update(
    State(s): State<CampaignService>,
    auth: StaffAuth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<CampaignInput>,
) -> Result<ApiJson<StaffCampaignView>, ApiError> {
    auth.require(Permission::ManageCampaigns)?;
    Ok(ApiJson(s.update(id, body).await?))
}

/// Schedule a draft: it goes live at `starts_at` and ends at `ends_at` by itself.
#[utoipa::path(post, path = "/api/v1/staff/campaigns/{id}/schedule", tag = TAG, security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The campaign")),
    responses((status = 200, body = StaffCampaignView),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "permission-denied, staff-only", body = Problem),
              (status = 404, description = "unknown-campaign", body = Problem),
              (status = 409, description = "invalid-campaign-transition, campaign-ended", body = Problem),
              (status = 422, description = "validation: the window is already over", body = Problem)))]
async fn staff_schedule(
    State(s): State<CampaignService>,
    auth: StaffAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<ApiJson<StaffCampaignView>, ApiError> {
    auth.require(Permission::ManageCampaigns)?;
    Ok(ApiJson(s.transition(id, Transition::Schedule).await?))
}

/// End a scheduled or live campaign now: its rules stop, its tasks can no longer be claimed.
#[utoipa::path(post, path = "/api/v1/staff/campaigns/{id}/end", tag = TAG, security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The campaign")),
    responses((status = 200, body = StaffCampaignView),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "permission-denied, staff-only", body = Problem),
              (status = 404, description = "unknown-campaign", body = Problem),
              (status = 409, description = "invalid-campaign-transition, campaign-ended", body = Problem)))]
async fn staff_end(
    State(s): State<CampaignService>,
    auth: StaffAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<ApiJson<StaffCampaignView>, ApiError> {
    auth.require(Permission::ManageCampaigns)?;
    Ok(ApiJson(s.transition(id, Transition::End).await?))
}

/// Live campaigns whose audience matches you.
#[utoipa::path(get, path = "/api/v1/campaigns", tag = TAG, security(("bearer" = [])),
    responses((status = 200, body = Vec<CampaignView>),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "customers-only", body = Problem)))]
async fn list(State(s): State<CampaignService>, auth: CustomerAuth) -> Result<ApiJson<Vec<CampaignView>>, ApiError> {
    Ok(ApiJson(s.for_customer(auth.customer_id, auth.channel.as_str()).await?))
}

/// One live campaign for you.
#[utoipa::path(get, path = "/api/v1/campaigns/{id}", tag = TAG, security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The campaign")),
    responses((status = 200, body = CampaignView),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "customers-only", body = Problem),
              (status = 404, description = "unknown-campaign (also: not live yet, or not for you)", body = Problem),
              (status = 409, description = "campaign-ended", body = Problem)))]
async fn get(
    State(s): State<CampaignService>,
    auth: CustomerAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<ApiJson<CampaignView>, ApiError> {
    Ok(ApiJson(
        s.one_for_customer(auth.customer_id, id, auth.channel.as_str()).await?,
    ))
}
