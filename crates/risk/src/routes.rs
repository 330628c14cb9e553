//! Adaptive security endpoints. Customers: devices, trust level, delayed and held
//! operations (cancel, "was this you?" confirm or deny), assessments of medium- and
//! high-tier operations. Risk officers (`Permission::ReviewRisk`): the policy, decisions
//! and their replay, cases, a customer's trust. Also the sign-in observer middleware.

use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderMap, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use huoban_accounts::gate::RawContext;
use huoban_identity::{CustomerAuth, IdentityService, Permission, StaffAuth};
use huoban_kit::{ApiError, ApiJson, ApiPath, ApiQuery, problem::Problem};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    domain::{Operation, Policy},
    service::{CaseView, DecisionView, DeviceView, HoldView, PolicyView, ReplayView, RiskService, TrustView},
};

pub const TAG: &str = "security";

impl axum::extract::FromRef<RiskService> for IdentityService {
    fn from_ref(s: &RiskService) -> Self {
        s.identity().clone()
    }
}

pub fn router(service: RiskService) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(list_devices))
        .routes(routes!(remove_device))
        .routes(routes!(untrust_device))
        .routes(routes!(my_trust))
        .routes(routes!(list_holds))
        .routes(routes!(confirm_hold))
        .routes(routes!(deny_hold))
        .routes(routes!(cancel_transfer))
        .routes(routes!(create_assessment))
        .routes(routes!(get_policy, put_policy))
        .routes(routes!(list_decisions))
        .routes(routes!(get_decision))
        .routes(routes!(replay_decision))
        .routes(routes!(list_cases))
        .routes(routes!(get_case))
        .routes(routes!(assign_case))
        .routes(routes!(note_case))
        .routes(routes!(resolve_case))
        .routes(routes!(staff_customer_trust))
        .with_state(service)
}

fn raw_context(headers: &HeaderMap) -> RawContext {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    RawContext {
        device_id: header("x-device-id"),
        geo: header("x-geo"),
        forwarded_for: header("x-forwarded-for"),
        step_up_token: header("x-step-up-token"),
    }
}

/// Watches `POST /api/v1/sessions`: reads the phone from the body and the context from
/// the headers, lets identity sign in, then tells the risk service whether it worked
/// (failures count towards a burst; a success registers the device and place).
pub async fn sign_in_observer(State(risk): State<RiskService>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST || request.uri().path() != "/api/v1/sessions" {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body-too-large", "The body is too large").into_response();
    };
    #[derive(Deserialize)]
    struct Peek {
        phone: Option<String>,
        channel: Option<String>,
    }
    let peek: Option<Peek> = serde_json::from_slice(&bytes).ok();
    let context = raw_context(&parts.headers);
    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    let Some(peek) = peek else { return response };
    let ok = response.status() == StatusCode::CREATED;
    if (ok || response.status() == StatusCode::UNAUTHORIZED)
        && let Some(phone) = peek.phone
        && let Some(customer) = risk.customer_by_phone(&phone).await
    {
        let channel = peek.channel.unwrap_or_else(|| "h5".to_owned());
        if let Err(e) = risk.after_sign_in(customer, ok, &channel, &context).await {
            tracing::warn!(error = %e, "risk: recording a sign-in failed");
        }
    }
    response
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeviceList {
    pub items: Vec<DeviceView>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HoldList {
    pub items: Vec<HoldView>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DecisionPage {
    pub items: Vec<DecisionView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CasePage {
    pub items: Vec<CaseView>,
    pub next_cursor: Option<String>,
}

/// Your devices: first and last seen, trusted or not.
#[utoipa::path(get, path = "/api/v1/security/devices", tag = TAG, security(("bearer" = [])),
    responses((status = 200, body = DeviceList), (status = 401, body = Problem)))]
async fn list_devices(State(s): State<RiskService>, auth: CustomerAuth) -> Result<ApiJson<DeviceList>, ApiError> {
    Ok(ApiJson(DeviceList {
        items: s.devices(auth.customer_id).await?,
    }))
}

/// Forget a device: its next use counts as a new device.
#[utoipa::path(delete, path = "/api/v1/security/devices/{device_id}", tag = TAG, security(("bearer" = [])),
    params(("device_id" = String, Path, description = "The device id")),
    responses((status = 204), (status = 404, description = "unknown-device", body = Problem)))]
async fn remove_device(
    State(s): State<RiskService>,
    auth: CustomerAuth,
    ApiPath(device_id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    s.remove_device(auth.customer_id, &device_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Stop trusting a device (it stays known).
#[utoipa::path(post, path = "/api/v1/security/devices/{device_id}/untrust", tag = TAG, security(("bearer" = [])),
    params(("device_id" = String, Path, description = "The device id")),
    responses((status = 204), (status = 404, description = "unknown-device", body = Problem)))]
async fn untrust_device(
    State(s): State<RiskService>,
    auth: CustomerAuth,
    ApiPath(device_id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    s.untrust_device(auth.customer_id, &device_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Your trust level and the one-tap transfer limit it gives you.
#[utoipa::path(get, path = "/api/v1/security/trust", tag = TAG, security(("bearer" = [])),
    responses((status = 200, body = TrustView), (status = 401, body = Problem)))]
async fn my_trust(State(s): State<RiskService>, auth: CustomerAuth) -> Result<ApiJson<TrustView>, ApiError> {
    Ok(ApiJson(s.trust(auth.customer_id).await?))
}

/// Your delayed and held operations, newest first.
#[utoipa::path(get, path = "/api/v1/security/holds", tag = TAG, security(("bearer" = [])),
    responses((status = 200, body = HoldList), (status = 401, body = Problem)))]
async fn list_holds(State(s): State<RiskService>, auth: CustomerAuth) -> Result<ApiJson<HoldList>, ApiError> {
    Ok(ApiJson(HoldList {
        items: s.holds(auth.customer_id).await?,
    }))
}

/// "It was me": a held transfer is released (posted), the device trusted.
#[utoipa::path(post, path = "/api/v1/security/holds/{id}/confirm", tag = TAG, security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Hold id (the transfer id for transfers)")),
    responses((status = 200, body = HoldView), (status = 404, description = "unknown-hold", body = Problem),
              (status = 409, description = "hold-already-answered, hold-not-answerable, insufficient-funds", body = Problem)))]
async fn confirm_hold(
    State(s): State<RiskService>,
    auth: CustomerAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<ApiJson<HoldView>, ApiError> {
    Ok(ApiJson(s.confirm(auth.customer_id, id).await?))
}

/// "It was not me": the held transfer is voided, transfers are frozen and a case opened.
#[utoipa::path(post, path = "/api/v1/security/holds/{id}/deny", tag = TAG, security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Hold id")),
    responses((status = 200, body = HoldView), (status = 404, description = "unknown-hold", body = Problem),
              (status = 409, description = "hold-already-answered, hold-not-answerable", body = Problem)))]
async fn deny_hold(
    State(s): State<RiskService>,
    auth: CustomerAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<ApiJson<HoldView>, ApiError> {
    Ok(ApiJson(s.deny(auth.customer_id, id).await?))
}

/// Cancel a delayed (large) transfer before it settles.
#[utoipa::path(post, path = "/api/v1/transfers/{id}/cancel", tag = TAG, security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Transfer id")),
    responses((status = 200, body = HoldView), (status = 404, description = "unknown-hold", body = Problem),
              (status = 409, description = "transfer-already-cancelled, transfer-already-settled, transfer-not-delayed, transfer-settling", body = Problem)))]
async fn cancel_transfer(
    State(s): State<RiskService>,
    auth: CustomerAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<ApiJson<HoldView>, ApiError> {
    Ok(ApiJson(s.cancel(auth.customer_id, id).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAssessment {
    /// `wealth_purchase` (medium tier) or `report_card_lost` (high tier).
    pub operation: Operation,
    /// Minor units, when the operation moves value.
    #[serde(default)]
    pub amount: Option<i64>,
}

/// Assess a medium- or high-tier operation before doing it: the answer says whether it
/// needs an explicit confirmation (`confirm`), a step-up, a delay or is held.
#[utoipa::path(post, path = "/api/v1/security/assessments", tag = TAG, security(("bearer" = [])), request_body = NewAssessment,
    responses((status = 201, body = DecisionView), (status = 422, description = "validation, invalid-context", body = Problem)))]
async fn create_assessment(
    State(s): State<RiskService>,
    auth: CustomerAuth,
    headers: HeaderMap,
    ApiJson(body): ApiJson<NewAssessment>,
) -> Result<impl IntoResponse, ApiError> {
    let view = s
        .assess(
            auth.customer_id,
            body.operation,
            body.amount,
            auth.channel.as_str(),
            &raw_context(&headers),
        )
        .await?;
    Ok((StatusCode::CREATED, ApiJson(view)))
}

/// The risk policy in force.
#[utoipa::path(get, path = "/api/v1/staff/risk/policy", tag = "staff", security(("bearer" = [])),
    responses((status = 200, body = PolicyView), (status = 403, body = Problem)))]
async fn get_policy(State(s): State<RiskService>, auth: StaffAuth) -> Result<ApiJson<PolicyView>, ApiError> {
    auth.require(Permission::ReviewRisk)?;
    let (version, policy) = s.policy().await?;
    Ok(ApiJson(PolicyView {
        version,
        policy: (*policy).clone(),
    }))
}

/// Replace the risk policy (a new version). Every field is validated.
#[utoipa::path(put, path = "/api/v1/staff/risk/policy", tag = "staff", security(("bearer" = [])), request_body = Policy,
    responses((status = 200, body = PolicyView), (status = 403, body = Problem),
              (status = 409, description = "policy-changed", body = Problem),
              (status = 422, description = "invalid-policy, invalid-body", body = Problem)))]
async fn put_policy(
    State(s): State<RiskService>,
    auth: StaffAuth,
    ApiJson(body): ApiJson<Policy>,
) -> Result<ApiJson<PolicyView>, ApiError> {
    auth.require(Permission::ReviewRisk)?;
    Ok(ApiJson(s.update_policy(auth.staff_id, body).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DecisionQuery {
    pub customer_id: Option<Uuid>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Risk decisions, newest first, optionally of one customer.
#[utoipa::path(get, path = "/api/v1/staff/risk/decisions", tag = "staff", security(("bearer" = [])), params(DecisionQuery),
    responses((status = 200, body = DecisionPage), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn list_decisions(
    State(s): State<RiskService>,
    auth: StaffAuth,
    ApiQuery(q): ApiQuery<DecisionQuery>,
) -> Result<ApiJson<DecisionPage>, ApiError> {
    auth.require(Permission::ReviewRisk)?;
    let (items, next_cursor) = s.decisions(q.customer_id, q.cursor.as_deref(), q.limit).await?;
    Ok(ApiJson(DecisionPage { items, next_cursor }))
}

/// One decision with its inputs and reasons.
#[utoipa::path(get, path = "/api/v1/staff/risk/decisions/{decision_id}", tag = "staff", security(("bearer" = [])),
    params(("decision_id" = Uuid, Path, description = "Decision id")),
    responses((status = 200, body = DecisionView), (status = 403, body = Problem), (status = 404, description = "unknown-decision", body = Problem)))]
async fn get_decision(
    State(s): State<RiskService>,
    auth: StaffAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<ApiJson<DecisionView>, ApiError> {
    auth.require(Permission::ReviewRisk)?;
    Ok(ApiJson(s.decision(id).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// `stored` (the version it was made under, the default) or `current`.
    #[serde(default)]
    pub policy: Option<String>,
}

/// Replay a stored decision's inputs against the stored or the current policy.
#[utoipa::path(post, path = "/api/v1/staff/risk/decisions/{decision_id}/replay", tag = "staff", security(("bearer" = [])),
    params(("decision_id" = Uuid, Path, description = "Decision id")), request_body = ReplayRequest,
    responses((status = 200, body = ReplayView), (status = 403, body = Problem),
              (status = 404, description = "unknown-decision", body = Problem), (status = 422, description = "validation", body = Problem)))]
async fn replay_decision(
    State(s): State<RiskService>,
    auth: StaffAuth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<ReplayRequest>,
) -> Result<ApiJson<ReplayView>, ApiError> {
    auth.require(Permission::ReviewRisk)?;
    Ok(ApiJson(s.replay(id, body.policy.as_deref().unwrap_or("stored")).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CaseQuery {
    /// `open` or `resolved`.
    pub state: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Risk cases, newest first.
#[utoipa::path(get, path = "/api/v1/staff/risk/cases", tag = "staff", security(("bearer" = [])), params(CaseQuery),
    responses((status = 200, body = CasePage), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn list_cases(
    State(s): State<RiskService>,
    auth: StaffAuth,
    ApiQuery(q): ApiQuery<CaseQuery>,
) -> Result<ApiJson<CasePage>, ApiError> {
    auth.require(Permission::ReviewRisk)?;
    let (items, next_cursor) = s.cases(q.state.as_deref(), q.cursor.as_deref(), q.limit).await?;
    Ok(ApiJson(CasePage { items, next_cursor }))
}

/// A case with its notes.
#[utoipa::path(get, path = "/api/v1/staff/risk/cases/{case_id}", tag = "staff", security(("bearer" = [])),
    params(("case_id" = Uuid, Path, description = "Case id")),
    responses((status = 200, body = CaseView), (status = 403, body = Problem), (status = 404, description = "unknown-case", body = Problem)))]
async fn get_case(
    State(s): State<RiskService>,
    auth: StaffAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<ApiJson<CaseView>, ApiError> {
    auth.require(Permission::ReviewRisk)?;
    Ok(ApiJson(s.case(id).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignCase {
    /// A staff user's id; omitted = yourself.
    #[serde(default)]
    pub assignee: Option<Uuid>,
}

/// Assign an open case.
#[utoipa::path(post, path = "/api/v1/staff/risk/cases/{case_id}/assign", tag = "staff", security(("bearer" = [])),
    params(("case_id" = Uuid, Path, description = "Case id")), request_body = AssignCase,
    responses((status = 200, body = CaseView), (status = 403, body = Problem), (status = 404, description = "unknown-case", body = Problem),
              (status = 409, description = "case-resolved", body = Problem), (status = 422, description = "unknown-staff", body = Problem)))]
async fn assign_case(
    State(s): State<RiskService>,
    auth: StaffAuth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<AssignCase>,
) -> Result<ApiJson<CaseView>, ApiError> {
    auth.require(Permission::ReviewRisk)?;
    Ok(ApiJson(
        s.assign_case(id, body.assignee.unwrap_or(auth.staff_id)).await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseNote {
    pub body: String,
}

/// Add a note to a case.
#[utoipa::path(post, path = "/api/v1/staff/risk/cases/{case_id}/notes", tag = "staff", security(("bearer" = [])),
    params(("case_id" = Uuid, Path, description = "Case id")), request_body = CaseNote,
    responses((status = 200, body = CaseView), (status = 403, body = Problem), (status = 404, description = "unknown-case", body = Problem),
              (status = 422, description = "validation", body = Problem)))]
async fn note_case(
    State(s): State<RiskService>,
    auth: StaffAuth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<CaseNote>,
) -> Result<ApiJson<CaseView>, ApiError> {
    auth.require(Permission::ReviewRisk)?;
    Ok(ApiJson(s.note_case(id, auth.staff_id, &body.body).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveCase {
    pub resolution: String,
    /// Lift the customer's transfer freeze.
    #[serde(default)]
    pub unfreeze: bool,
}

/// Resolve a case, optionally lifting the customer's freeze.
#[utoipa::path(post, path = "/api/v1/staff/risk/cases/{case_id}/resolve", tag = "staff", security(("bearer" = [])),
    params(("case_id" = Uuid, Path, description = "Case id")), request_body = ResolveCase,
    responses((status = 200, body = CaseView), (status = 403, body = Problem), (status = 404, description = "unknown-case", body = Problem),
              (status = 409, description = "case-resolved", body = Problem), (status = 422, description = "validation", body = Problem)))]
async fn resolve_case(
    State(s): State<RiskService>,
    auth: StaffAuth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<ResolveCase>,
) -> Result<ApiJson<CaseView>, ApiError> {
    auth.require(Permission::ReviewRisk)?;
    Ok(ApiJson(
        s.resolve_case(id, auth.staff_id, &body.resolution, body.unfreeze)
            .await?,
    ))
}

/// A customer's trust level (risk officers). The access is recorded.
#[utoipa::path(get, path = "/api/v1/staff/risk/customers/{id}/trust", tag = "staff", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Customer id")),
    responses((status = 200, body = TrustView), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn staff_customer_trust(
    State(s): State<RiskService>,
    auth: StaffAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<ApiJson<TrustView>, ApiError> {
    auth.require(Permission::ReviewRisk)?;
    s.identity().profile(id).await?;
    s.identity()
        .record_access(auth.staff_id, "risk.trust", Some(id))
        .await?;
    Ok(ApiJson(s.trust(id).await?))
}
