//! Identity's HTTP endpoints: customer registration, sign-in and sign-out, profile,
//! cross-channel hand-off, and the staff side (sign-in, staff users, customer lookup,
//! access records). Handlers only translate between HTTP and [`IdentityService`].

use axum::{extract::State, http::StatusCode, response::IntoResponse};
use huoban_kit::{ApiError, ApiJson, ApiPath, ApiQuery, Page, PageQuery};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    auth::{AnyAuth, CustomerAuth, StaffAuth},
    domain::{Channel, Permission, Role},
    service::{
        CustomerExport, CustomerProfile, ErasureDone, HandoffIssued, IdentityService, Principal, ProfilePatch,
        Registration, SessionIssued, StaffAccessRecord, StaffUser,
    },
};

pub const TAG_CUSTOMER: &str = "identity";
pub const TAG_STAFF: &str = "staff";

pub fn router(service: IdentityService) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(sign_in, sign_out_everywhere))
        .routes(routes!(sign_in_idp))
        .routes(routes!(sign_out))
        .routes(routes!(me, update_me))
        .routes(routes!(export_me))
        .routes(routes!(erase_me))
        .routes(routes!(create_handoff))
        .routes(routes!(redeem_handoff))
        .routes(routes!(staff_sign_in))
        .routes(routes!(staff_me))
        .routes(routes!(list_staff, create_staff))
        .routes(routes!(list_customers))
        .routes(routes!(get_customer))
        .routes(routes!(access_log))
        .with_state(service)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordSignIn {
    pub phone: String,
    pub password: String,
    /// Where the session is used; default `h5`.
    #[serde(default)]
    pub channel: Option<Channel>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdpSignIn {
    /// A JWT signed by the bank's identity provider (RS256 or ES256).
    pub assertion: String,
    #[serde(default)]
    pub channel: Option<Channel>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HandoffRequest {
    /// The channel the customer continues on.
    pub target_channel: Channel,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HandoffRedeem {
    pub token: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffSignIn {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStaffUser {
    pub username: String,
    pub display_name: String,
    pub role: Role,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StaffUserCreated {
    pub user: StaffUser,
    /// Generated password, shown only in this response.
    pub password: String,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CustomerSearch {
    /// Find the customer with this phone number.
    pub phone: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AccessLogQuery {
    /// Only records about this customer.
    pub customer_id: Option<Uuid>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Register a customer with phone and password (demo and pilot banks).
#[utoipa::path(post, path = "/api/v1/customers", tag = TAG_CUSTOMER, request_body = Registration,
    responses((status = 201, body = CustomerProfile), (status = 409, description = "phone-taken", body = huoban_kit::problem::Problem),
              (status = 422, body = huoban_kit::problem::Problem)))]
async fn register(
    State(s): State<IdentityService>,
    ApiJson(body): ApiJson<Registration>,
) -> Result<impl IntoResponse, ApiError> {
    Ok((StatusCode::CREATED, ApiJson(s.register(body).await?)))
}

/// Sign in with phone and password; opens a session on the given channel.
#[utoipa::path(post, path = "/api/v1/sessions", tag = TAG_CUSTOMER, request_body = PasswordSignIn,
    responses((status = 201, body = SessionIssued), (status = 401, description = "invalid-credentials", body = huoban_kit::problem::Problem)))]
async fn sign_in(
    State(s): State<IdentityService>,
    ApiJson(body): ApiJson<PasswordSignIn>,
) -> Result<impl IntoResponse, ApiError> {
    let session = s
        .sign_in_password(&body.phone, &body.password, body.channel.unwrap_or(Channel::H5))
        .await?;
    Ok((StatusCode::CREATED, ApiJson(session)))
}

/// Exchange the bank identity provider's signed assertion for a Huoban session.
#[utoipa::path(post, path = "/api/v1/sessions/idp", tag = TAG_CUSTOMER, request_body = IdpSignIn,
    responses((status = 201, body = SessionIssued), (status = 401, description = "invalid-assertion", body = huoban_kit::problem::Problem)))]
async fn sign_in_idp(
    State(s): State<IdentityService>,
    ApiJson(body): ApiJson<IdpSignIn>,
) -> Result<impl IntoResponse, ApiError> {
    let session = s
        .sign_in_idp(&body.assertion, body.channel.unwrap_or(Channel::App))
        .await?;
    Ok((StatusCode::CREATED, ApiJson(session)))
}

/// Sign out: the session's token stops working at once.
#[utoipa::path(delete, path = "/api/v1/sessions/current", tag = TAG_CUSTOMER, security(("bearer" = [])),
    responses((status = 204), (status = 401, body = huoban_kit::problem::Problem)))]
async fn sign_out(State(s): State<IdentityService>, AnyAuth(p): AnyAuth) -> Result<StatusCode, ApiError> {
    let hash = match p {
        Principal::Customer { token_hash, .. } | Principal::Staff { token_hash, .. } => token_hash,
    };
    s.sign_out(&hash).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SignedOutEverywhere {
    /// Sessions that stopped working, this one included.
    pub revoked: u64,
}

/// Sign out everywhere: every session of the caller (on every channel and device) stops
/// working at once; using one afterwards answers 401 `session-revoked`.
#[utoipa::path(delete, path = "/api/v1/sessions", tag = TAG_CUSTOMER, security(("bearer" = [])),
    responses((status = 200, body = SignedOutEverywhere), (status = 401, body = huoban_kit::problem::Problem)))]
async fn sign_out_everywhere(
    State(s): State<IdentityService>,
    AnyAuth(p): AnyAuth,
) -> Result<ApiJson<SignedOutEverywhere>, ApiError> {
    Ok(ApiJson(SignedOutEverywhere {
        revoked: s.sign_out_everywhere(&p).await?,
    }))
}

/// The signed-in customer's profile.
#[utoipa::path(get, path = "/api/v1/me", tag = TAG_CUSTOMER, security(("bearer" = [])),
    responses((status = 200, body = CustomerProfile), (status = 401, body = huoban_kit::problem::Problem)))]
async fn me(State(s): State<IdentityService>, auth: CustomerAuth) -> Result<ApiJson<CustomerProfile>, ApiError> {
    Ok(ApiJson(s.profile(auth.customer_id).await?))
}

/// Change the profile: name, birthday, locale, time zone, preferences (e.g. elderly mode).
#[utoipa::path(patch, path = "/api/v1/me", tag = TAG_CUSTOMER, security(("bearer" = [])), request_body = ProfilePatch,
    responses((status = 200, body = CustomerProfile), (status = 422, body = huoban_kit::problem::Problem)))]
async fn update_me(
    State(s): State<IdentityService>,
    auth: CustomerAuth,
    ApiJson(patch): ApiJson<ProfilePatch>,
) -> Result<ApiJson<CustomerProfile>, ApiError> {
    Ok(ApiJson(s.update_profile(auth.customer_id, patch).await?))
}

/// Download everything identity holds about you, in clear: profile (with the full ID
/// number), sessions, and which staff looked at your data.
#[utoipa::path(get, path = "/api/v1/me/export", tag = TAG_CUSTOMER, security(("bearer" = [])),
    responses((status = 200, body = CustomerExport), (status = 401, body = huoban_kit::problem::Problem)))]
async fn export_me(State(s): State<IdentityService>, auth: CustomerAuth) -> Result<ApiJson<CustomerExport>, ApiError> {
    Ok(ApiJson(s.export(auth.customer_id).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErasureRequest {
    /// Must be `true`: erasure cannot be undone.
    pub confirm: bool,
}

/// Erase your personal data (name, phone, ID number, birthday) and sign out everywhere.
/// Accounts and their history stay under an id that no longer names you. Cannot be undone.
#[utoipa::path(post, path = "/api/v1/me/erasure", tag = TAG_CUSTOMER, security(("bearer" = [])),
    request_body = ErasureRequest,
    responses((status = 200, body = ErasureDone), (status = 401, body = huoban_kit::problem::Problem),
              (status = 422, description = "erasure-not-confirmed", body = huoban_kit::problem::Problem)))]
async fn erase_me(
    State(s): State<IdentityService>,
    auth: CustomerAuth,
    ApiJson(body): ApiJson<ErasureRequest>,
) -> Result<ApiJson<ErasureDone>, ApiError> {
    if !body.confirm {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "erasure-not-confirmed",
            "Erasure must be confirmed",
        )
        .detail("Send {\"confirm\": true}; erasure cannot be undone."));
    }
    Ok(ApiJson(s.erase(auth.customer_id).await?))
}

/// Mint a single-use hand-off token (QR code or deep link) that opens a session on another
/// channel without signing in again. It expires after a few minutes (default 5).
#[utoipa::path(post, path = "/api/v1/handoffs", tag = TAG_CUSTOMER, security(("bearer" = [])), request_body = HandoffRequest,
    responses((status = 201, body = HandoffIssued), (status = 401, body = huoban_kit::problem::Problem)))]
async fn create_handoff(
    State(s): State<IdentityService>,
    auth: CustomerAuth,
    ApiJson(body): ApiJson<HandoffRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let handoff = s
        .create_handoff(auth.customer_id, auth.channel, body.target_channel)
        .await?;
    Ok((StatusCode::CREATED, ApiJson(handoff)))
}

/// Redeem a hand-off token on the target channel; works once.
#[utoipa::path(post, path = "/api/v1/handoffs/redeem", tag = TAG_CUSTOMER, request_body = HandoffRedeem,
    responses((status = 201, body = SessionIssued),
              (status = 401, description = "handoff-used, handoff-expired or handoff-invalid", body = huoban_kit::problem::Problem)))]
async fn redeem_handoff(
    State(s): State<IdentityService>,
    ApiJson(body): ApiJson<HandoffRedeem>,
) -> Result<impl IntoResponse, ApiError> {
    Ok((StatusCode::CREATED, ApiJson(s.redeem_handoff(&body.token).await?)))
}

/// Staff sign-in for the console.
#[utoipa::path(post, path = "/api/v1/staff/sessions", tag = TAG_STAFF, request_body = StaffSignIn,
    responses((status = 201, body = SessionIssued), (status = 401, body = huoban_kit::problem::Problem)))]
async fn staff_sign_in(
    State(s): State<IdentityService>,
    ApiJson(body): ApiJson<StaffSignIn>,
) -> Result<impl IntoResponse, ApiError> {
    Ok((
        StatusCode::CREATED,
        ApiJson(s.staff_sign_in(&body.username, &body.password).await?),
    ))
}

/// The signed-in staff user, with the permissions of their role.
#[utoipa::path(get, path = "/api/v1/staff/me", tag = TAG_STAFF, security(("bearer" = [])),
    responses((status = 200, body = StaffUser), (status = 403, body = huoban_kit::problem::Problem)))]
async fn staff_me(State(s): State<IdentityService>, auth: StaffAuth) -> Result<ApiJson<StaffUser>, ApiError> {
    Ok(ApiJson(s.staff_user(auth.staff_id).await?))
}

/// List staff users (admin).
#[utoipa::path(get, path = "/api/v1/staff/users", tag = TAG_STAFF, security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = Page<StaffUser>), (status = 403, body = huoban_kit::problem::Problem)))]
async fn list_staff(
    State(s): State<IdentityService>,
    auth: StaffAuth,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<ApiJson<Page<StaffUser>>, ApiError> {
    auth.require(Permission::ManageStaff)?;
    Ok(ApiJson(s.list_staff(q.after()?, q.limit()?).await?))
}

/// Create a staff user with a role (admin); the generated password is shown once.
#[utoipa::path(post, path = "/api/v1/staff/users", tag = TAG_STAFF, security(("bearer" = [])), request_body = NewStaffUser,
    responses((status = 201, body = StaffUserCreated), (status = 403, body = huoban_kit::problem::Problem),
              (status = 409, description = "username-taken", body = huoban_kit::problem::Problem)))]
async fn create_staff(
    State(s): State<IdentityService>,
    auth: StaffAuth,
    ApiJson(body): ApiJson<NewStaffUser>,
) -> Result<impl IntoResponse, ApiError> {
    auth.require(Permission::ManageStaff)?;
    let (user, password) = s.create_staff(&body.username, &body.display_name, body.role).await?;
    s.record_access(auth.staff_id, "staff.create", None).await?;
    Ok((StatusCode::CREATED, ApiJson(StaffUserCreated { user, password })))
}

/// Look up customers, optionally by phone. Every lookup is recorded.
#[utoipa::path(get, path = "/api/v1/staff/customers", tag = TAG_STAFF, security(("bearer" = [])), params(CustomerSearch),
    responses((status = 200, body = Page<CustomerProfile>), (status = 403, body = huoban_kit::problem::Problem)))]
async fn list_customers(
    State(s): State<IdentityService>,
    auth: StaffAuth,
    ApiQuery(q): ApiQuery<CustomerSearch>,
) -> Result<ApiJson<Page<CustomerProfile>>, ApiError> {
    auth.require(Permission::ViewCustomers)?;
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    Ok(ApiJson(
        s.list_customers(auth.staff_id, q.phone.as_deref(), page.after()?, page.limit()?)
            .await?,
    ))
}

/// One customer's profile. The access is recorded.
#[utoipa::path(get, path = "/api/v1/staff/customers/{id}", tag = TAG_STAFF, security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Customer id")),
    responses((status = 200, body = CustomerProfile), (status = 403, body = huoban_kit::problem::Problem),
              (status = 404, body = huoban_kit::problem::Problem)))]
async fn get_customer(
    State(s): State<IdentityService>,
    auth: StaffAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<ApiJson<CustomerProfile>, ApiError> {
    auth.require(Permission::ViewCustomers)?;
    Ok(ApiJson(s.customer_for_staff(auth.staff_id, id).await?))
}

/// Records of staff looking at customer data (auditors).
#[utoipa::path(get, path = "/api/v1/staff/access-log", tag = TAG_STAFF, security(("bearer" = [])), params(AccessLogQuery),
    responses((status = 200, body = Page<StaffAccessRecord>), (status = 403, body = huoban_kit::problem::Problem)))]
async fn access_log(
    State(s): State<IdentityService>,
    auth: StaffAuth,
    ApiQuery(q): ApiQuery<AccessLogQuery>,
) -> Result<ApiJson<Page<StaffAccessRecord>>, ApiError> {
    auth.require(Permission::ReadAudit)?;
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    Ok(ApiJson(
        s.access_log(q.customer_id, page.after()?, page.limit()?).await?,
    ))
}
