//! Rewards endpoints. Handlers only translate between HTTP and [`RewardsService`]: staff
//! routes need `ManageCampaigns`, customer routes a customer session.

use axum::{
    extract::{FromRef, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use huoban_identity::{CustomerAuth, IdentityService, Permission, StaffAuth};
use huoban_kit::{
    ApiError, ApiJson, ApiPath, ApiQuery, Page, PageQuery,
    idempotency::{self, RequiredKey},
    problem::Problem,
};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::service::{ClaimView, CouponView, NewRewardRequest, RewardView, RewardsService, StaffRewardView};
use crate::EngageState;

pub const TAG: &str = "engage";

impl FromRef<RewardsService> for IdentityService {
    fn from_ref(s: &RewardsService) -> Self {
        s.identity().clone()
    }
}

pub fn router(state: EngageState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(staff_create, staff_list))
        .routes(routes!(claimable))
        .routes(routes!(claim))
        .routes(routes!(coupons))
        .with_state(RewardsService::new(&state))
}

/// Add a reward to the catalog: titles per locale, points price, stock, per-customer
/// limit, claim window, how long a coupon stays valid, and optionally the campaign it
/// belongs to.
#[utoipa::path(post, path = "/api/v1/staff/rewards", tag = TAG, security(("bearer" = [])),
    request_body = NewRewardRequest,
    responses((status = 201, body = StaffRewardView),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "permission-denied, staff-only", body = Problem),
              (status = 404, description = "unknown-campaign: `campaign_id` names no campaign", body = Problem),
              (status = 409, description = "campaign-ended: the campaign has ended", body = Problem),
              (status = 422, description = "validation (with `field`), invalid-body", body = Problem)))]
#[tracing::instrument(skip_all, fields(staff = %auth.staff_id))]
async fn staff_create(
    State(s): State<RewardsService>,
    auth: StaffAuth,
    ApiJson(body): ApiJson<NewRewardRequest>,
) -> Result<(StatusCode, ApiJson<StaffRewardView>), ApiError> {
    auth.require(Permission::ManageCampaigns)?;
    Ok((StatusCode::CREATED, ApiJson(s.create(auth.staff_id, body).await?)))
}

/// The catalog, newest first, with stock left and coupons issued.
#[utoipa::path(get, path = "/api/v1/staff/rewards", tag = TAG, security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, body = Page<StaffRewardView>),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "permission-denied, staff-only", body = Problem)))]
#[tracing::instrument(skip_all, fields(staff = %auth.staff_id))]
async fn staff_list(
    State(s): State<RewardsService>,
    auth: StaffAuth,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<ApiJson<Page<StaffRewardView>>, ApiError> {
    auth.require(Permission::ManageCampaigns)?;
    Ok(ApiJson(s.staff_list(&page).await?))
}

/// Rewards claimable now, newest first, with stock left and your own claims. Rewards of a
/// campaign are listed only while it is live and you are in its audience.
#[utoipa::path(get, path = "/api/v1/rewards", tag = TAG, security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, body = Page<RewardView>),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "customers-only", body = Problem)))]
#[tracing::instrument(skip_all, fields(customer = %auth.customer_id))]
async fn claimable(
    State(s): State<RewardsService>,
    auth: CustomerAuth,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<ApiJson<Page<RewardView>>, ApiError> {
    Ok(ApiJson(
        s.claimable(auth.customer_id, auth.channel.as_str(), &page).await?,
    ))
}

/// Claim a reward for points. `Idempotency-Key` is required: a retry with the same key
/// returns the first result (`Idempotent-Replayed: true`) and charges nothing more.
#[utoipa::path(post, path = "/api/v1/rewards/{id}/claims", tag = TAG, security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The reward"),
           ("Idempotency-Key" = String, Header, description = "Required; 1 to 255 visible ASCII characters")),
    responses((status = 201, description = "The coupon, paid and held", body = ClaimView),
              (status = 400, description = "idempotency-key-required, invalid-idempotency-key", body = Problem),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "customers-only", body = Problem),
              (status = 404, description = "not-found: no such reward", body = Problem),
              (status = 409, description = "out-of-stock, claim-limit-reached, reward-not-claimable (outside its window, or its campaign is not live or not open to you), insufficient-points, claim-expired; nothing was charged", body = Problem),
              (status = 422, description = "idempotency-key-mismatch: the key was used to claim another reward", body = Problem)))]
#[tracing::instrument(skip_all, fields(customer = %auth.customer_id, reward = %id))]
async fn claim(
    State(s): State<RewardsService>,
    auth: CustomerAuth,
    ApiPath(id): ApiPath<Uuid>,
    RequiredKey(key): RequiredKey,
) -> Result<Response, ApiError> {
    let (view, replayed) = s.claim(auth.customer_id, auth.channel.as_str(), id, &key).await?;
    let mut response = (StatusCode::CREATED, ApiJson(view)).into_response();
    if replayed {
        idempotency::mark_replayed(&mut response);
    }
    Ok(response)
}

/// Your coupons, newest first.
#[utoipa::path(get, path = "/api/v1/coupons", tag = TAG, security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, body = Page<CouponView>),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "customers-only", body = Problem)))]
#[tracing::instrument(skip_all, fields(customer = %auth.customer_id))]
async fn coupons(
    State(s): State<RewardsService>,
    auth: CustomerAuth,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<ApiJson<Page<CouponView>>, ApiError> {
    Ok(ApiJson(s.coupons(auth.customer_id, &page).await?))
}
