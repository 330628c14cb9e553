//! Rule endpoints (staff), effects and nudges (customers), customer tags (staff).

use axum::{extract::State, http::StatusCode};
use huoban_identity::{CustomerAuth, Permission, StaffAuth};
use huoban_kit::{ApiError, ApiJson, ApiPath, ApiQuery, Page, PageQuery, problem::Problem};
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{
    domain::RuleInput,
    service::{EffectView, NudgeView, RuleView, RulesService},
};
use crate::{CampaignsState, TAG, campaigns::service::CampaignService};

pub fn router(state: CampaignsState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(staff_create, staff_list))
        .routes(routes!(staff_tags))
        .routes(routes!(effects))
        .routes(routes!(nudges))
        .routes(routes!(dismiss))
        .with_state(state)
}

/// Add a rule to a campaign: trigger event type, CEL condition, optional windowed
/// aggregate, per-customer limit and actions. An expression that does not compile is
/// refused with its parse error and nothing is saved.
#[utoipa::path(post, path = "/api/v1/staff/campaigns/{id}/rules", tag = TAG, security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The campaign")),
    request_body = RuleInput,
    responses((status = 201, body = RuleView),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "permission-denied, staff-only", body = Problem),
              (status = 404, description = "unknown-campaign", body = Problem),
              (status = 409, description = "campaign-ended", body = Problem),
              (status = 422, description = "invalid-rule-expression (with `parse_error`), validation", body = Problem)))]
async fn staff_create(
    State(s): State<RulesService>,
    auth: StaffAuth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<RuleInput>,
) -> Result<(StatusCode, ApiJson<RuleView>), ApiError> {
    auth.require(Permission::ManageCampaigns)?;
    Ok((StatusCode::CREATED, ApiJson(s.create(id, body).await?)))
}

/// A campaign's rules.
#[utoipa::path(get, path = "/api/v1/staff/campaigns/{id}/rules", tag = TAG, security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The campaign")),
    responses((status = 200, body = Vec<RuleView>),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "permission-denied, staff-only", body = Problem),
              (status = 404, description = "unknown-campaign", body = Problem)))]
async fn staff_list(
    State(s): State<RulesService>,
    auth: StaffAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<ApiJson<Vec<RuleView>>, ApiError> {
    auth.require(Permission::ManageCampaigns)?;
    Ok(ApiJson(s.of_campaign(id).await?))
}

/// A customer's tags, which campaign audiences read (`'payroll' in customer.tags`).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagsInput {
    /// At most 20 lowercase slugs.
    pub tags: Vec<String>,
}

/// Replace a customer's audience tags.
#[utoipa::path(put, path = "/api/v1/staff/customers/{id}/tags", tag = TAG, security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The customer")),
    request_body = TagsInput,
    responses((status = 204, description = "Saved"),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "permission-denied, staff-only", body = Problem),
              (status = 404, description = "not-found: no such customer", body = Problem),
              (status = 422, description = "validation", body = Problem)))]
async fn staff_tags(
    State(s): State<CampaignService>,
    auth: StaffAuth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<TagsInput>,
) -> Result<StatusCode, ApiError> {
    auth.require(Permission::ManageCampaigns)?;
    if body.tags.len() > 20 || body.tags.iter().any(|t| !crate::campaigns::domain::is_slug(t, 40)) {
        return Err(ApiError::invalid_field(
            "tags",
            "at most 20 lowercase slugs like payroll",
        ));
    }
    s.attrs(id, "").await?;
    s.store().set_tags(id, &body.tags).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What campaigns did for you, newest first, each with the rule and event that caused it.
#[utoipa::path(get, path = "/api/v1/me/effects", tag = TAG, security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, body = Page<EffectView>),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "customers-only", body = Problem)))]
async fn effects(
    State(s): State<RulesService>,
    auth: CustomerAuth,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<ApiJson<Page<EffectView>>, ApiError> {
    Ok(ApiJson(s.effects(auth.customer_id, &page).await?))
}

/// Your next-step prompts, newest first (at most 20), until dismissed.
#[utoipa::path(get, path = "/api/v1/nudges", tag = TAG, security(("bearer" = [])),
    responses((status = 200, body = Vec<NudgeView>),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "customers-only", body = Problem)))]
async fn nudges(State(s): State<RulesService>, auth: CustomerAuth) -> Result<ApiJson<Vec<NudgeView>>, ApiError> {
    Ok(ApiJson(s.nudges(auth.customer_id).await?))
}

/// Dismiss a nudge (again: no change).
#[utoipa::path(post, path = "/api/v1/nudges/{id}/dismiss", tag = TAG, security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The nudge")),
    responses((status = 204, description = "Dismissed"),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "customers-only", body = Problem),
              (status = 404, description = "not-found", body = Problem)))]
async fn dismiss(
    State(s): State<RulesService>,
    auth: CustomerAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    s.dismiss(auth.customer_id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
