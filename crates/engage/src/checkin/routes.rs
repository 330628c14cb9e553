//! Check-in endpoints for customers. Handlers only translate between HTTP and
//! [`CheckinService`]; every one needs a customer session (staff get 403 `customers-only`).

use axum::{
    extract::{FromRef, State},
    http::StatusCode,
};
use huoban_identity::{CustomerAuth, IdentityService};
use huoban_kit::{ApiError, ApiJson, ApiQuery, problem::Problem};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::service::{CalendarQuery, CalendarView, CheckinOutcome, CheckinService, MakeupRequest};
use crate::EngageState;

pub const TAG: &str = "engage";

impl FromRef<CheckinService> for IdentityService {
    fn from_ref(s: &CheckinService) -> Self {
        s.identity().clone()
    }
}

pub fn router(state: EngageState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(check_in))
        .routes(routes!(make_up))
        .routes(routes!(calendar))
        .with_state(CheckinService::new(&state))
}

/// Check in for today in your time zone. Pays the base points and any streak milestone
/// reached, into your points account.
#[utoipa::path(post, path = "/api/v1/checkins", tag = TAG, security(("bearer" = [])),
    responses((status = 201, body = CheckinOutcome),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "customers-only", body = Problem),
              (status = 409, description = "already-checked-in: today is done; nothing was written", body = Problem)))]
#[tracing::instrument(skip_all, fields(customer = %auth.customer_id))]
async fn check_in(
    State(s): State<CheckinService>,
    auth: CustomerAuth,
) -> Result<(StatusCode, ApiJson<CheckinOutcome>), ApiError> {
    Ok((StatusCode::CREATED, ApiJson(s.check_in(auth.customer_id).await?)))
}

/// Fill a missed day (yesterday back to seven days ago) with a make-up card; the streak
/// is recomputed across it and any milestone it now reaches is paid.
#[utoipa::path(post, path = "/api/v1/checkins/makeup", tag = TAG, security(("bearer" = [])),
    request_body = MakeupRequest,
    responses((status = 201, body = CheckinOutcome),
              (status = 400, description = "malformed-json", body = Problem),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "customers-only", body = Problem),
              (status = 409, description = "already-checked-in, no-makeup-cards", body = Problem),
              (status = 422, description = "invalid-makeup-date (today, future or too old), validation (not a date), invalid-body", body = Problem)))]
#[tracing::instrument(skip_all, fields(customer = %auth.customer_id))]
async fn make_up(
    State(s): State<CheckinService>,
    auth: CustomerAuth,
    ApiJson(body): ApiJson<MakeupRequest>,
) -> Result<(StatusCode, ApiJson<CheckinOutcome>), ApiError> {
    Ok((
        StatusCode::CREATED,
        ApiJson(s.make_up(auth.customer_id, &body.date).await?),
    ))
}

/// A month of check-ins: each day's state, current and longest streak, make-up cards left
/// and the reward schedule.
#[utoipa::path(get, path = "/api/v1/checkins/calendar", tag = TAG, security(("bearer" = [])),
    params(CalendarQuery),
    responses((status = 200, body = CalendarView),
              (status = 400, description = "invalid-query", body = Problem),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "customers-only", body = Problem),
              (status = 422, description = "validation: a bad month", body = Problem)))]
#[tracing::instrument(skip_all, fields(customer = %auth.customer_id))]
async fn calendar(
    State(s): State<CheckinService>,
    auth: CustomerAuth,
    ApiQuery(q): ApiQuery<CalendarQuery>,
) -> Result<ApiJson<CalendarView>, ApiError> {
    Ok(ApiJson(s.calendar(auth.customer_id, q.month.as_deref()).await?))
}
