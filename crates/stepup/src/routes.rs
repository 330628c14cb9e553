//! Step-up endpoints: challenges and their verification, the transaction PIN, TOTP
//! enrolment, the factor overview, and the staff view of the code outbox. Handlers only
//! translate between HTTP and [`StepUpService`].

use axum::{
    extract::{FromRef, State},
    http::StatusCode,
    response::IntoResponse,
};
use huoban_identity::{CustomerAuth, IdentityService, Permission, StaffAuth};
use huoban_kit::{ApiError, ApiJson, ApiPath, ApiQuery, problem::Problem};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::service::{
    ChallengeProof, ChallengeView, CodeBody, FactorView, NewChallenge, OutboxMessage, PasskeyCredential,
    PasskeyRegistrationView, PasskeyView, PinChange, StepUpService, StepUpTokenView, TotpEnrolment,
};

pub const TAG: &str = "security";

impl FromRef<StepUpService> for IdentityService {
    fn from_ref(s: &StepUpService) -> Self {
        s.identity().clone()
    }
}

pub fn router(service: StepUpService) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(create_challenge))
        .routes(routes!(verify_challenge))
        .routes(routes!(set_pin))
        .routes(routes!(start_totp))
        .routes(routes!(confirm_totp))
        .routes(routes!(list_factors))
        .routes(routes!(start_passkey_registration))
        .routes(routes!(finish_passkey_registration))
        .routes(routes!(staff_outbox))
        .with_state(service)
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FactorList {
    pub items: Vec<FactorView>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OutboxList {
    pub items: Vec<OutboxMessage>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct OutboxQuery {
    /// Only this customer's messages.
    pub customer_id: Option<Uuid>,
    /// At most this many, newest first (1-200, default 50).
    pub limit: Option<i64>,
}

/// Start a step-up for an operation: `factor` is `pin`, `totp`, `sms` (a code is sent
/// through the code sender) or `passkey`. The challenge lasts five minutes.
#[utoipa::path(post, path = "/api/v1/step-up/challenges", tag = TAG, security(("bearer" = [])), request_body = NewChallenge,
    responses((status = 201, body = ChallengeView),
              (status = 401, body = Problem),
              (status = 409, description = "factor-not-enrolled", body = Problem),
              (status = 423, description = "factor-locked (with `retry_after` seconds)", body = Problem),
              (status = 422, description = "validation (purpose, reference), invalid-body", body = Problem)))]
#[tracing::instrument(skip_all, fields(customer = %auth.customer_id))]
async fn create_challenge(
    State(s): State<StepUpService>,
    auth: CustomerAuth,
    ApiJson(body): ApiJson<NewChallenge>,
) -> Result<impl IntoResponse, ApiError> {
    Ok((
        StatusCode::CREATED,
        ApiJson(s.create_challenge(auth.customer_id, body).await?),
    ))
}

/// Prove the challenge's factor (`pin`, `code` or `credential`) and receive a single-use
/// step-up token for its purpose, valid five minutes.
#[utoipa::path(post, path = "/api/v1/step-up/challenges/{id}/verify", tag = TAG, security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Challenge id")), request_body = ChallengeProof,
    responses((status = 200, body = StepUpTokenView),
              (status = 403, description = "pin-incorrect, code-incorrect, passkey-invalid (with `remaining_attempts`)", body = Problem),
              (status = 404, description = "challenge-not-found (also another customer's)", body = Problem),
              (status = 409, description = "challenge-already-verified, code-already-used, factor-not-enrolled", body = Problem),
              (status = 410, description = "challenge-expired, code-expired", body = Problem),
              (status = 423, description = "factor-locked (with `retry_after` seconds)", body = Problem),
              (status = 422, description = "validation (missing proof), invalid-body", body = Problem)))]
#[tracing::instrument(skip_all, fields(customer = %auth.customer_id, challenge = %id))]
async fn verify_challenge(
    State(s): State<StepUpService>,
    auth: CustomerAuth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<ChallengeProof>,
) -> Result<ApiJson<StepUpTokenView>, ApiError> {
    Ok(ApiJson(s.verify_challenge(auth.customer_id, id, body).await?))
}

/// Set the transaction PIN, or change it (`old_pin` required then; a wrong one counts
/// as a failed PIN attempt).
#[utoipa::path(put, path = "/api/v1/security/pin", tag = TAG, security(("bearer" = [])), request_body = PinChange,
    responses((status = 204, description = "PIN set"),
              (status = 403, description = "pin-incorrect (old PIN)", body = Problem),
              (status = 409, description = "pin-changed-concurrently", body = Problem),
              (status = 422, description = "pin-invalid, pin-too-simple, old-pin-required, invalid-body", body = Problem),
              (status = 423, description = "factor-locked", body = Problem)))]
#[tracing::instrument(skip_all, fields(customer = %auth.customer_id))]
async fn set_pin(
    State(s): State<StepUpService>,
    auth: CustomerAuth,
    ApiJson(body): ApiJson<PinChange>,
) -> Result<StatusCode, ApiError> {
    s.set_pin(auth.customer_id, body).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Start enrolling an authenticator app: the secret and its `otpauth://` URI (shown
/// once). Confirm with a first code.
#[utoipa::path(post, path = "/api/v1/security/totp", tag = TAG, security(("bearer" = [])),
    responses((status = 201, body = TotpEnrolment),
              (status = 409, description = "totp-already-enrolled", body = Problem)))]
async fn start_totp(State(s): State<StepUpService>, auth: CustomerAuth) -> Result<impl IntoResponse, ApiError> {
    Ok((StatusCode::CREATED, ApiJson(s.start_totp(auth.customer_id).await?)))
}

/// Confirm the authenticator app with the code it shows; from then on `totp` is a
/// step-up factor.
#[utoipa::path(post, path = "/api/v1/security/totp/confirm", tag = TAG, security(("bearer" = [])), request_body = CodeBody,
    responses((status = 204, description = "Enrolled"),
              (status = 403, description = "code-incorrect", body = Problem),
              (status = 409, description = "totp-not-started, totp-already-enrolled, code-already-used", body = Problem),
              (status = 423, description = "factor-locked", body = Problem)))]
async fn confirm_totp(
    State(s): State<StepUpService>,
    auth: CustomerAuth,
    ApiJson(body): ApiJson<CodeBody>,
) -> Result<StatusCode, ApiError> {
    s.confirm_totp(auth.customer_id, &body.code).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Start registering a passkey (WebAuthn): pass `options` to
/// `navigator.credentials.create`, then send the result to `.../finish` within five minutes.
#[utoipa::path(post, path = "/api/v1/security/passkeys/registrations", tag = TAG, security(("bearer" = [])),
    responses((status = 201, body = PasskeyRegistrationView), (status = 401, body = Problem)))]
async fn start_passkey_registration(
    State(s): State<StepUpService>,
    auth: CustomerAuth,
) -> Result<impl IntoResponse, ApiError> {
    Ok((
        StatusCode::CREATED,
        ApiJson(s.start_passkey_registration(auth.customer_id).await?),
    ))
}

/// Finish a passkey registration with the authenticator's response; from then on
/// `passkey` is a step-up factor.
#[utoipa::path(post, path = "/api/v1/security/passkeys/registrations/{id}/finish", tag = TAG, security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Registration id")), request_body = PasskeyCredential,
    responses((status = 201, body = PasskeyView),
              (status = 403, description = "passkey-invalid", body = Problem),
              (status = 404, description = "registration-not-found", body = Problem),
              (status = 409, description = "registration-finished, passkey-exists", body = Problem),
              (status = 410, description = "challenge-expired", body = Problem)))]
async fn finish_passkey_registration(
    State(s): State<StepUpService>,
    auth: CustomerAuth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<PasskeyCredential>,
) -> Result<impl IntoResponse, ApiError> {
    Ok((
        StatusCode::CREATED,
        ApiJson(
            s.finish_passkey_registration(auth.customer_id, id, body.credential)
                .await?,
        ),
    ))
}

/// Your step-up factors: set up or not, locked or not, attempts left.
#[utoipa::path(get, path = "/api/v1/security/factors", tag = TAG, security(("bearer" = [])),
    responses((status = 200, body = FactorList), (status = 401, body = Problem)))]
async fn list_factors(State(s): State<StepUpService>, auth: CustomerAuth) -> Result<ApiJson<FactorList>, ApiError> {
    Ok(ApiJson(FactorList {
        items: s.factors(auth.customer_id).await?,
    }))
}

/// The built-in code sender's outbox, newest first (what an SMS gateway would have
/// sent; the demo console shows it). Needs `HandleSupport`.
#[utoipa::path(get, path = "/api/v1/staff/step-up/outbox", tag = "staff", security(("bearer" = [])),
    params(OutboxQuery),
    responses((status = 200, body = OutboxList), (status = 403, body = Problem)))]
async fn staff_outbox(
    State(s): State<StepUpService>,
    auth: StaffAuth,
    ApiQuery(q): ApiQuery<OutboxQuery>,
) -> Result<ApiJson<OutboxList>, ApiError> {
    auth.require(Permission::HandleSupport)?;
    if let Some(customer) = q.customer_id {
        s.identity()
            .record_access(auth.staff_id, "step_up_outbox", Some(customer))
            .await?;
    }
    Ok(ApiJson(OutboxList {
        items: s.outbox(q.customer_id, q.limit.unwrap_or(50)).await?,
    }))
}
