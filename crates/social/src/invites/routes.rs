//! Invite endpoints. Handlers only translate between HTTP and [`InvitesService`]: staff
//! routes need `ManageCampaigns`, customer routes a customer session; the poster is public
//! (an `<img>` cannot send a token, and the code is meant to be shared).

use axum::{
    extract::{FromRef, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use huoban_identity::{CustomerAuth, IdentityService, Permission, StaffAuth};
use huoban_kit::{ApiError, ApiJson, ApiPath, ApiQuery, Page, PageQuery, problem::Problem};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::service::{
    AcceptRequest, AcceptedView, InviteView, InvitesService, IssueRequest, NewProgrammeRequest, ProgrammeView,
};
use crate::SocialState;

pub const TAG: &str = "social";
/// The header carrying the page's device id at acceptance.
pub const DEVICE_HEADER: &str = "x-device-id";

impl FromRef<InvitesService> for IdentityService {
    fn from_ref(s: &InvitesService) -> Self {
        s.state().engage.identity.clone()
    }
}

pub fn router(state: SocialState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(staff_create, staff_list))
        .routes(routes!(live_programmes))
        .routes(routes!(issue))
        .routes(routes!(mine))
        .routes(routes!(accept))
        .routes(routes!(poster))
        .with_state(InvitesService::new(state))
}

/// The base of links: config `public_url`, else the request's `Host` (with
/// `X-Forwarded-Proto` when a proxy sets it).
pub fn base_url(public_url: Option<&str>, headers: &HeaderMap) -> String {
    if let Some(url) = public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .filter(|p| *p == "https")
        .unwrap_or("http");
    format!("{scheme}://{host}")
}

/// Create an invite programme: the invitee's qualifying action (event type and
/// properties), friends needed to unlock, the prize (points or a catalog coupon), the cap
/// per inviter and the window.
#[utoipa::path(post, path = "/api/v1/staff/invite-programmes", tag = TAG, security(("bearer" = [])),
    request_body = NewProgrammeRequest,
    responses((status = 201, body = ProgrammeView),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "permission-denied, staff-only", body = Problem),
              (status = 422, description = "validation (with `field`), invalid-body", body = Problem)))]
#[tracing::instrument(skip_all, fields(staff = %auth.staff_id))]
async fn staff_create(
    State(s): State<InvitesService>,
    auth: StaffAuth,
    ApiJson(body): ApiJson<NewProgrammeRequest>,
) -> Result<(StatusCode, ApiJson<ProgrammeView>), ApiError> {
    auth.require(Permission::ManageCampaigns)?;
    Ok((
        StatusCode::CREATED,
        ApiJson(s.create_programme(auth.staff_id, body).await?),
    ))
}

/// Every invite programme, newest first.
#[utoipa::path(get, path = "/api/v1/staff/invite-programmes", tag = TAG, security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, body = Page<ProgrammeView>),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "permission-denied, staff-only", body = Problem)))]
#[tracing::instrument(skip_all, fields(staff = %auth.staff_id))]
async fn staff_list(
    State(s): State<InvitesService>,
    auth: StaffAuth,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<ApiJson<Page<ProgrammeView>>, ApiError> {
    auth.require(Permission::ManageCampaigns)?;
    Ok(ApiJson(s.programmes(&page, false).await?))
}

/// Invite programmes live now, newest first.
#[utoipa::path(get, path = "/api/v1/invite-programmes", tag = TAG, security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, body = Page<ProgrammeView>),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "customers-only", body = Problem)))]
#[tracing::instrument(skip_all, fields(customer = %auth.customer_id))]
async fn live_programmes(
    State(s): State<InvitesService>,
    auth: CustomerAuth,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<ApiJson<Page<ProgrammeView>>, ApiError> {
    Ok(ApiJson(s.programmes(&page, true).await?))
}

/// My invite code in a live programme, with its link and poster: 201 the first time, 200
/// with the same code after.
#[utoipa::path(post, path = "/api/v1/invites", tag = TAG, security(("bearer" = [])),
    request_body = IssueRequest,
    responses((status = 201, body = InviteView), (status = 200, description = "Your existing code", body = InviteView),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "customers-only", body = Problem),
              (status = 404, description = "unknown-invite-programme", body = Problem),
              (status = 409, description = "invite-programme-ended, invite-programme-not-started", body = Problem)))]
#[tracing::instrument(skip_all, fields(customer = %auth.customer_id))]
async fn issue(
    State(s): State<InvitesService>,
    auth: CustomerAuth,
    headers: HeaderMap,
    ApiJson(body): ApiJson<IssueRequest>,
) -> Result<Response, ApiError> {
    let base = base_url(s.state().public_url.as_deref(), &headers);
    let (view, fresh) = s.issue(auth.customer_id, body.programme_id, &base).await?;
    let status = if fresh { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, ApiJson(view)).into_response())
}

/// My invite codes with progress toward the unlock ("2 of 3").
#[utoipa::path(get, path = "/api/v1/invites/mine", tag = TAG, security(("bearer" = [])),
    responses((status = 200, body = Vec<InviteView>),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "customers-only", body = Problem)))]
#[tracing::instrument(skip_all, fields(customer = %auth.customer_id))]
async fn mine(
    State(s): State<InvitesService>,
    auth: CustomerAuth,
    headers: HeaderMap,
) -> Result<ApiJson<Vec<InviteView>>, ApiError> {
    let base = base_url(s.state().public_url.as_deref(), &headers);
    Ok(ApiJson(s.mine(auth.customer_id, &base).await?))
}

/// Accept a friend's invite code (new customers only). The page's device id goes in
/// `X-Device-Id`: one device accepts once per programme. Doing the programme's action
/// afterwards counts for the friend.
#[utoipa::path(post, path = "/api/v1/invites/accept", tag = TAG, security(("bearer" = [])),
    request_body = AcceptRequest,
    params(("X-Device-Id" = String, Header, description = "The page's device id, 1 to 128 visible ASCII characters")),
    responses((status = 201, body = AcceptedView),
              (status = 400, description = "device-id-required", body = Problem),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "customers-only", body = Problem),
              (status = 404, description = "unknown-invite-code", body = Problem),
              (status = 409, description = "self-invite, invite-not-eligible, invite-device-reused, invite-cap-reached, invite-programme-ended, invite-programme-not-started", body = Problem)))]
#[tracing::instrument(skip_all, fields(customer = %auth.customer_id))]
async fn accept(
    State(s): State<InvitesService>,
    auth: CustomerAuth,
    headers: HeaderMap,
    ApiJson(body): ApiJson<AcceptRequest>,
) -> Result<(StatusCode, ApiJson<AcceptedView>), ApiError> {
    let device = headers.get(DEVICE_HEADER).and_then(|v| v.to_str().ok());
    Ok((
        StatusCode::CREATED,
        ApiJson(s.accept(auth.customer_id, &body.code, device).await?),
    ))
}

/// The share poster: a PNG (750 × 1334) with the programme's festive art, the inviter's
/// name and a QR code of the invite link.
#[utoipa::path(get, path = "/api/v1/invites/{code}/poster.png", tag = TAG,
    params(("code" = String, Path, description = "The invite code")),
    responses((status = 200, description = "The poster", content_type = "image/png", body = Vec<u8>),
              (status = 404, description = "unknown-invite-code", body = Problem)))]
#[tracing::instrument(skip_all)]
async fn poster(
    State(s): State<InvitesService>,
    headers: HeaderMap,
    ApiPath(code): ApiPath<String>,
) -> Result<Response, ApiError> {
    let base = base_url(s.state().public_url.as_deref(), &headers);
    let (name, link, title) = s.poster_facts(&code, &base).await?;
    let png = tokio::task::spawn_blocking(move || crate::poster::render(&name, &title, &link))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "private, max-age=300"),
        ],
        png,
    )
        .into_response())
}
