//! Task endpoints: staff add tasks to a campaign; customers see and claim them.

use axum::{extract::State, http::StatusCode};
use huoban_identity::{CustomerAuth, Permission, StaffAuth};
use huoban_kit::{ApiError, ApiJson, ApiPath, problem::Problem};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{
    domain::TaskInput,
    service::{StaffTaskView, TaskClaimView, TaskService, TaskView},
};
use crate::{CampaignsState, TAG};

pub fn router(state: CampaignsState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(staff_create, staff_list))
        .routes(routes!(list))
        .routes(routes!(claim))
        .with_state(state)
}

/// Add a task to a campaign: an event type (and optional CEL filter) counted up to a
/// target once, daily or weekly, and a reward to claim.
#[utoipa::path(post, path = "/api/v1/staff/campaigns/{id}/tasks", tag = TAG, security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The campaign")),
    request_body = TaskInput,
    responses((status = 201, body = StaffTaskView),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "permission-denied, staff-only", body = Problem),
              (status = 404, description = "unknown-campaign", body = Problem),
              (status = 409, description = "campaign-ended", body = Problem),
              (status = 422, description = "validation, invalid-rule-expression (filter)", body = Problem)))]
async fn staff_create(
    State(s): State<TaskService>,
    auth: StaffAuth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<TaskInput>,
) -> Result<(StatusCode, ApiJson<StaffTaskView>), ApiError> {
    auth.require(Permission::ManageCampaigns)?;
    Ok((StatusCode::CREATED, ApiJson(s.create(id, body).await?)))
}

/// A campaign's tasks.
#[utoipa::path(get, path = "/api/v1/staff/campaigns/{id}/tasks", tag = TAG, security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The campaign")),
    responses((status = 200, body = Vec<StaffTaskView>),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "permission-denied, staff-only", body = Problem),
              (status = 404, description = "unknown-campaign", body = Problem)))]
async fn staff_list(
    State(s): State<TaskService>,
    auth: StaffAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<ApiJson<Vec<StaffTaskView>>, ApiError> {
    auth.require(Permission::ManageCampaigns)?;
    Ok(ApiJson(s.of_campaign(id).await?))
}

/// Your tasks in live campaigns, with progress this period (your time zone).
#[utoipa::path(get, path = "/api/v1/tasks", tag = TAG, security(("bearer" = [])),
    responses((status = 200, body = Vec<TaskView>),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "customers-only", body = Problem)))]
async fn list(State(s): State<TaskService>, auth: CustomerAuth) -> Result<ApiJson<Vec<TaskView>>, ApiError> {
    Ok(ApiJson(s.for_customer(auth.customer_id, auth.channel.as_str()).await?))
}

/// Claim a complete task's reward for this period. A second claim answers
/// `task-already-claimed` and pays nothing more.
#[utoipa::path(post, path = "/api/v1/tasks/{id}/claim", tag = TAG, security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The task")),
    responses((status = 200, body = TaskClaimView),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "customers-only", body = Problem),
              (status = 404, description = "unknown-task", body = Problem),
              (status = 409, description = "task-not-complete, task-already-claimed, campaign-ended, budget-exhausted", body = Problem)))]
async fn claim(
    State(s): State<TaskService>,
    auth: CustomerAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<ApiJson<TaskClaimView>, ApiError> {
    Ok(ApiJson(s.claim(auth.customer_id, id).await?))
}
