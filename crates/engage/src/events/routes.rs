//! Behaviour event endpoints for customers. Handlers only translate between HTTP and
//! [`EventsService`]; both need a customer session (staff get 403 `customers-only`).

use axum::extract::{FromRef, State};
use huoban_identity::{CustomerAuth, IdentityService};
use huoban_kit::{ApiError, ApiJson, ApiQuery, Page, PageQuery, problem::Problem};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::service::{EventView, EventsService, IngestOutcome, IngestRequest};
use crate::EngageState;

pub const TAG: &str = "engage";

impl FromRef<EventsService> for IdentityService {
    fn from_ref(s: &EventsService) -> Self {
        s.identity().clone()
    }
}

pub fn router(state: EngageState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(ingest, recent))
        .with_state(EventsService::new(&state))
}

/// Report a batch of 1 to 1,000 behaviour events. Each event is judged on its own and
/// answered in order: `accepted` (stored), `duplicate` (this id was already stored;
/// nothing written) or `rejected` with a problem. The batch is stored before the answer.
#[utoipa::path(post, path = "/api/v1/events", tag = TAG, security(("bearer" = [])),
    request_body = IngestRequest,
    responses((status = 200, body = IngestOutcome),
              (status = 400, description = "malformed-json", body = Problem),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "customers-only", body = Problem),
              (status = 413, description = "body-too-large", body = Problem),
              (status = 422, description = "invalid-batch (no events or more than 1,000), invalid-body (unknown top-level field); nothing stored", body = Problem)))]
#[tracing::instrument(skip_all, fields(customer = %auth.customer_id))]
async fn ingest(
    State(s): State<EventsService>,
    auth: CustomerAuth,
    ApiJson(body): ApiJson<IngestRequest>,
) -> Result<ApiJson<IngestOutcome>, ApiError> {
    Ok(ApiJson(s.ingest(auth.customer_id, body).await?))
}

/// Your recent behaviour events, newest first, including `deposit`, `transfer_out` and
/// `transfer_in` recorded from ledger postings to your accounts.
#[utoipa::path(get, path = "/api/v1/events", tag = TAG, security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, body = Page<EventView>),
              (status = 400, description = "invalid-query", body = Problem),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "customers-only", body = Problem),
              (status = 422, description = "validation (limit, cursor)", body = Problem)))]
#[tracing::instrument(skip_all, fields(customer = %auth.customer_id))]
async fn recent(
    State(s): State<EventsService>,
    auth: CustomerAuth,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<ApiJson<Page<EventView>>, ApiError> {
    Ok(ApiJson(s.recent(auth.customer_id, &query).await?))
}
