//! [`StepUpService`]: challenges and their verification into single-use step-up tokens,
//! [`StepUpService::consume`] for the operations that demand a step-up, the transaction
//! PIN, TOTP enrolment, sent codes through a pluggable [`CodeSender`], lockout, the
//! record of every attempt, and the API types these answer with.

use std::{future::Future, pin::Pin, sync::Arc};

use axum::http::StatusCode;
use huoban_identity::{IdentityService, secrets};
use huoban_kit::{ApiError, SharedClock, clock::from_micros, ids::new_id};
use jiff::{SignedDuration, Timestamp};
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use webauthn_rs::prelude::{
    Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, Url,
    Webauthn, WebauthnBuilder,
};

use crate::{
    domain::{self, CHALLENGE_TTL, Factor, FailureState, LockState, MAX_FAILURES, Refusal, TOKEN_TTL, TotpCheck},
    store::{ChallengeRow, NewToken, StepUpStore},
};

/// Settings of the `[step_up]` configuration section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StepUpSettings {
    /// How long a factor stays locked after five consecutive failures, in minutes.
    pub lockout_minutes: i64,
    /// Issuer shown by authenticator apps for TOTP.
    pub totp_issuer: String,
    /// WebAuthn relying party id (the registrable domain pages run on).
    pub rp_id: String,
    /// WebAuthn origin the browser reports (scheme, host and port of the pages).
    pub rp_origin: String,
}

impl Default for StepUpSettings {
    fn default() -> Self {
        Self {
            lockout_minutes: 15,
            totp_issuer: "Huoban".into(),
            rp_id: "localhost".into(),
            rp_origin: "http://localhost:8080".into(),
        }
    }
}

pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Delivers a one-time code to a customer (SMS gateway, push, …). The bank plugs its own
/// in with [`StepUpService::with_sender`]; the built-in [`OutboxSender`] writes to the
/// `step_up_outbox` table that staff (and the demo console) read.
pub trait CodeSender: Send + Sync + std::fmt::Debug {
    fn send<'a>(&'a self, customer: Uuid, purpose: &'a str, code: &'a str, now: Timestamp) -> SendFuture<'a>;
}

/// The built-in sender: the message lands in `step_up_outbox`.
#[derive(Debug, Clone)]
pub struct OutboxSender {
    store: StepUpStore,
}

impl CodeSender for OutboxSender {
    fn send<'a>(&'a self, customer: Uuid, purpose: &'a str, code: &'a str, now: Timestamp) -> SendFuture<'a> {
        Box::pin(async move {
            let body = format!("【伙伴】验证码 {code}，用于 {purpose}，5 分钟内有效。请勿告诉任何人。");
            self.store
                .push_outbox(customer, "sms", &body, now)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// Start a step-up.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewChallenge {
    /// What the step-up is for, a short slug such as `transfer`; the token only redeems
    /// for this purpose.
    #[schema(example = "transfer")]
    pub purpose: String,
    pub factor: Factor,
    /// The operation it is for (a transfer id, …), echoed back with the token.
    pub reference: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChallengeView {
    pub id: Uuid,
    pub purpose: String,
    pub reference: Option<String>,
    pub factor: Factor,
    /// RFC 3339.
    pub expires_at: String,
    /// For `passkey`: the WebAuthn request options to pass to `navigator.credentials.get`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passkey_options: Option<serde_json::Value>,
}

/// The proof for a challenge: `pin` for the PIN, `code` for `totp` and `sms`,
/// `credential` (the WebAuthn assertion as JSON) for `passkey`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChallengeProof {
    pub pin: Option<String>,
    pub code: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub credential: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StepUpTokenView {
    /// Single-use; send it with the operation it was asked for within five minutes.
    pub step_up_token: String,
    pub factor: Factor,
    pub purpose: String,
    pub reference: Option<String>,
    pub expires_at: String,
}

/// A passkey registration in progress.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PasskeyRegistrationView {
    pub id: Uuid,
    /// The WebAuthn creation options to pass to `navigator.credentials.create`.
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
    pub expires_at: String,
}

/// The authenticator's answer to a registration.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyCredential {
    /// The `PublicKeyCredential` as JSON, binary fields in base64url.
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PasskeyView {
    pub id: Uuid,
}

/// Set or change the transaction PIN.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PinChange {
    /// Six digits, not a trivial sequence (123456, 000000, 121212 are refused).
    #[schema(example = "271828")]
    pub pin: String,
    /// The current PIN; required when one is set.
    pub old_pin: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TotpEnrolment {
    /// The shared secret, base32, for typing into an authenticator app.
    pub secret: String,
    /// The same as an `otpauth://` URI, for a QR code.
    pub otpauth_uri: String,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    #[schema(example = "492039")]
    pub code: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FactorView {
    pub factor: Factor,
    pub enrolled: bool,
    pub locked: bool,
    /// RFC 3339, while locked.
    pub locked_until: Option<String>,
    /// Failures left before the factor locks.
    pub remaining_attempts: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OutboxMessage {
    pub id: String,
    pub customer_id: String,
    pub channel: String,
    pub body: String,
    pub created_at: String,
}

/// The problem a refusal answers with.
pub fn refusal(r: Refusal) -> ApiError {
    use Refusal::*;
    match r {
        ChallengeNotFound => ApiError::new(StatusCode::NOT_FOUND, "challenge-not-found", "No such challenge")
            .detail("You have no step-up challenge with this id."),
        ChallengeExpired => ApiError::new(StatusCode::GONE, "challenge-expired", "The challenge has expired")
            .detail("Challenges last five minutes; start a new one."),
        ChallengeAlreadyVerified => ApiError::conflict("challenge-already-verified", "The challenge was already used")
            .detail("Each challenge yields one step-up token; start a new one."),
        Incorrect { factor, remaining } => {
            let (slug, title) = match factor {
                Factor::Pin => ("pin-incorrect", "The PIN is incorrect"),
                Factor::Passkey => ("passkey-invalid", "The passkey response is not valid"),
                Factor::Totp | Factor::Sms => ("code-incorrect", "The code is incorrect"),
            };
            ApiError::new(StatusCode::FORBIDDEN, slug, title)
                .detail(format!(
                    "{remaining} attempt(s) left before this factor locks for a while."
                ))
                .with("factor", factor.as_str())
                .with("remaining_attempts", remaining)
        }
        CodeExpired => ApiError::new(StatusCode::GONE, "code-expired", "The code has expired")
            .detail("Codes last five minutes; start a new challenge for a new code."),
        CodeAlreadyUsed => ApiError::conflict("code-already-used", "The code was already used")
            .detail("A one-time code works once."),
        Locked {
            factor,
            retry_after_secs,
        } => ApiError::new(StatusCode::LOCKED, "factor-locked", "Too many failed attempts")
            .detail(format!(
                "After {MAX_FAILURES} failed attempts this factor is locked; try again in {} minute(s) or use another factor.",
                (retry_after_secs + 59) / 60
            ))
            .with("factor", factor.as_str())
            .with("retry_after", retry_after_secs),
        NotEnrolled(factor) => ApiError::conflict("factor-not-enrolled", "That factor is not set up")
            .detail(format!("Set up the {} factor first.", factor.as_str()))
            .with("factor", factor.as_str()),
        ProofMissing(field) => {
            ApiError::invalid_field(field, format!("This challenge's factor needs `{field}` in the body."))
        }
        OldPinRequired => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "old-pin-required", "The current PIN is required")
            .detail("Changing the PIN needs the current one in `old_pin`."),
        PinFormat => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "pin-invalid", "A PIN is six digits")
            .detail("The PIN must be exactly six digits 0-9.")
            .with("field", "pin"),
        PinTooSimple => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "pin-too-simple", "The PIN is too easy to guess")
            .detail("Avoid repeated digits and runs such as 000000, 123456 or 121212.")
            .with("field", "pin"),
        InvalidPurpose => ApiError::invalid_field(
            "purpose",
            "A purpose is 1-64 characters a-z, 0-9, - or _, starting with a letter.",
        ),
        InvalidReference => ApiError::invalid_field("reference", "A reference is 1-128 printable characters."),
        TotpAlreadyEnrolled => ApiError::conflict("totp-already-enrolled", "An authenticator app is already set up"),
        TotpNotStarted => ApiError::conflict("totp-not-started", "No authenticator enrolment to confirm")
            .detail("Start with POST /api/v1/security/totp."),
        TokenInvalid => ApiError::new(StatusCode::FORBIDDEN, "step-up-token-invalid", "The step-up token is not valid")
            .detail("Verify a step-up challenge to get a token."),
        TokenUsed => ApiError::conflict("step-up-token-used", "The step-up token was already used")
            .detail("A step-up token works once; verify a new challenge."),
        TokenExpired => ApiError::new(StatusCode::FORBIDDEN, "step-up-token-expired", "The step-up token has expired"),
        TokenWrongPurpose => ApiError::new(
            StatusCode::FORBIDDEN,
            "step-up-token-wrong-purpose",
            "The step-up token was issued for another purpose",
        ),
    }
}

fn refused(r: Refusal) -> ApiError {
    refusal(r)
}

fn rfc3339(ts: Timestamp) -> String {
    ts.to_string()
}

#[derive(Debug, Clone)]
pub struct StepUpService {
    store: StepUpStore,
    identity: IdentityService,
    clock: SharedClock,
    settings: Arc<StepUpSettings>,
    sender: Arc<dyn CodeSender>,
    webauthn: Arc<Webauthn>,
    /// The audit trail every attempt is also written to, when the server plugs one in.
    audit: Option<Arc<dyn huoban_identity::audit::AuditSink>>,
}

impl StepUpService {
    /// Fails when the WebAuthn relying party settings are not valid.
    pub fn new(
        store: StepUpStore,
        identity: IdentityService,
        clock: SharedClock,
        settings: StepUpSettings,
    ) -> Result<Self, String> {
        let origin = Url::parse(&settings.rp_origin).map_err(|e| format!("step_up.rp_origin: {e}"))?;
        let webauthn = WebauthnBuilder::new(&settings.rp_id, &origin)
            .map_err(|e| format!("step_up.rp_id / rp_origin: {e}"))?
            .rp_name(&settings.totp_issuer)
            // On localhost (development, tests) any port is the same site.
            .allow_any_port(settings.rp_id == "localhost")
            .build()
            .map_err(|e| format!("WebAuthn settings: {e}"))?;
        let sender = Arc::new(OutboxSender { store: store.clone() });
        Ok(Self {
            store,
            identity,
            clock,
            settings: Arc::new(settings),
            sender,
            webauthn: Arc::new(webauthn),
            audit: None,
        })
    }

    /// Writes every attempt (set, challenge, verify, consume; success or the refusal's
    /// problem type) to the audit trail too.
    pub fn with_audit(mut self, audit: Arc<dyn huoban_identity::audit::AuditSink>) -> Self {
        self.audit = Some(audit);
        self
    }

    /// Replaces the built-in outbox sender (e.g. with the bank's SMS gateway).
    pub fn with_sender(mut self, sender: Arc<dyn CodeSender>) -> Self {
        self.sender = sender;
        self
    }

    pub fn identity(&self) -> &IdentityService {
        &self.identity
    }

    pub fn store(&self) -> &StepUpStore {
        &self.store
    }

    fn cool_down(&self) -> SignedDuration {
        SignedDuration::from_mins(self.settings.lockout_minutes.max(1))
    }

    async fn attempt(&self, customer: Uuid, factor: &str, action: &str, challenge: Option<Uuid>, outcome: &str) {
        if let Err(e) = self
            .store
            .record_attempt(customer, factor, action, challenge, outcome, self.clock.now())
            .await
        {
            tracing::warn!(error = %e, "recording a step-up attempt failed");
        }
        if let Some(audit) = &self.audit {
            let event = huoban_identity::audit::AuditEvent {
                actor_kind: huoban_identity::audit::ActorKind::Customer,
                actor_id: Some(customer.to_string()),
                action: format!("step_up.{action}"),
                subject: challenge.map(|c| format!("step_up_challenge:{c}")),
                details: serde_json::json!({ "factor": factor, "outcome": outcome }),
            };
            if let Err(e) = audit.append(event).await {
                tracing::warn!(error = %e, "auditing a step-up attempt failed");
            }
        }
    }

    /// Records a refused attempt and returns its problem.
    async fn refuse(
        &self,
        customer: Uuid,
        factor: Factor,
        action: &str,
        challenge: Option<Uuid>,
        r: Refusal,
    ) -> ApiError {
        let error = refused(r);
        self.attempt(customer, factor.as_str(), action, challenge, error.slug)
            .await;
        error
    }

    /// Refuses when the factor is locked (recording the attempt).
    async fn ensure_open(
        &self,
        customer: Uuid,
        factor: Factor,
        action: &str,
        challenge: Option<Uuid>,
    ) -> Result<(), ApiError> {
        let state = self.store.failures(customer, factor).await?;
        match domain::ensure_open(factor, state, self.clock.now()) {
            Ok(_) => Ok(()),
            Err(r) => Err(self.refuse(customer, factor, action, challenge, r).await),
        }
    }

    /// Counts a failed proof, locks the factor on the fifth, records the attempt and
    /// returns the problem to answer.
    async fn fail(&self, customer: Uuid, factor: Factor, action: &str, challenge: Option<Uuid>) -> ApiError {
        let now = self.clock.now();
        let failures = match self.store.count_failure(customer, factor, now).await {
            Ok(n) => n,
            Err(e) => return e.into(),
        };
        let (r, lock) = domain::after_failure(factor, failures, now, self.cool_down());
        if let Some(until) = lock
            && let Err(e) = self.store.lock(customer, factor, until).await
        {
            return e.into();
        }
        self.refuse(customer, factor, action, challenge, r).await
    }

    async fn succeed(
        &self,
        customer: Uuid,
        factor: Factor,
        action: &str,
        challenge: Option<Uuid>,
    ) -> Result<(), ApiError> {
        self.store.reset_failures(customer, factor).await?;
        self.attempt(customer, factor.as_str(), action, challenge, "ok").await;
        Ok(())
    }

    async fn enrolled(&self, customer: Uuid, factor: Factor) -> Result<bool, ApiError> {
        Ok(match factor {
            Factor::Pin => self.store.pin_hash(customer).await?.is_some(),
            Factor::Totp => self.store.totp(customer).await?.is_some_and(|t| t.confirmed),
            // Every customer has a phone number to send codes to.
            Factor::Sms => true,
            Factor::Passkey => self.store.has_passkey(customer).await?,
        })
    }

    // ---- challenges ----

    /// Starts a step-up: checks the factor is set up and open, sends a code for `sms`.
    #[tracing::instrument(skip_all, fields(customer = %customer))]
    pub async fn create_challenge(&self, customer: Uuid, req: NewChallenge) -> Result<ChallengeView, ApiError> {
        domain::check_purpose(&req.purpose).map_err(refused)?;
        if let Some(reference) = &req.reference {
            domain::check_reference(reference).map_err(refused)?;
        }
        if !self.enrolled(customer, req.factor).await? {
            return Err(self
                .refuse(
                    customer,
                    req.factor,
                    "challenge",
                    None,
                    Refusal::NotEnrolled(req.factor),
                )
                .await);
        }
        self.ensure_open(customer, req.factor, "challenge", None).await?;
        let now = self.clock.now();
        let id = new_id();
        let code = (req.factor == Factor::Sms).then(|| format!("{:06}", rand::rng().random_range(0..1_000_000u32)));
        let (passkey_options, passkey_state) = if req.factor == Factor::Passkey {
            let passkeys: Vec<Passkey> = self
                .store
                .passkeys(customer)
                .await?
                .into_iter()
                .filter_map(|(_, p)| serde_json::from_str(&p).ok())
                .collect();
            let (options, state) = self
                .webauthn
                .start_passkey_authentication(&passkeys)
                .map_err(|e| ApiError::internal(format!("starting passkey authentication: {e}")))?;
            (
                Some(serde_json::to_value(options).map_err(ApiError::internal)?),
                Some(serde_json::to_string(&state).map_err(ApiError::internal)?),
            )
        } else {
            (None, None)
        };
        let row = ChallengeRow {
            id,
            customer_id: customer,
            purpose: req.purpose,
            reference: req.reference,
            factor: req.factor,
            code_digest: code.as_deref().map(|c| domain::code_digest(&id.to_string(), c)),
            passkey_state,
            created_at: now,
            expires_at: now.saturating_add(CHALLENGE_TTL).unwrap_or(now),
            verified_at: None,
        };
        self.store.insert_challenge(&row).await?;
        if let Some(code) = &code {
            self.sender
                .send(customer, &row.purpose, code, now)
                .await
                .map_err(|e| ApiError::internal(format!("sending a step-up code: {e}")))?;
        }
        self.attempt(customer, row.factor.as_str(), "challenge", Some(id), "ok")
            .await;
        Ok(ChallengeView {
            id,
            purpose: row.purpose,
            reference: row.reference,
            factor: row.factor,
            expires_at: rfc3339(row.expires_at),
            passkey_options,
        })
    }

    /// Checks the proof for a challenge and issues its single-use step-up token.
    #[tracing::instrument(skip_all, fields(customer = %customer, challenge = %id))]
    pub async fn verify_challenge(
        &self,
        customer: Uuid,
        id: Uuid,
        proof: ChallengeProof,
    ) -> Result<StepUpTokenView, ApiError> {
        let Some(challenge) = self.store.challenge(id).await?.filter(|c| c.customer_id == customer) else {
            // Someone else's challenge is as absent as one that never existed.
            return Err(refused(Refusal::ChallengeNotFound));
        };
        let factor = challenge.factor;
        let now = self.clock.now();
        if let Err(r) = domain::check_challenge(factor, challenge.expires_at, challenge.verified_at.is_some(), now) {
            return Err(self.refuse(customer, factor, "verify", Some(id), r).await);
        }
        self.ensure_open(customer, factor, "verify", Some(id)).await?;
        match factor {
            Factor::Pin => {
                let pin = proof.pin.ok_or_else(|| refused(Refusal::ProofMissing("pin")))?;
                let Some(hash) = self.store.pin_hash(customer).await? else {
                    return Err(refused(Refusal::NotEnrolled(Factor::Pin)));
                };
                if !check_pin(hash, pin).await? {
                    return Err(self.fail(customer, factor, "verify", Some(id)).await);
                }
            }
            Factor::Totp => {
                let code = proof.code.ok_or_else(|| refused(Refusal::ProofMissing("code")))?;
                self.check_totp_code(customer, &code, false, Some(id)).await?;
            }
            Factor::Sms => {
                let code = proof.code.ok_or_else(|| refused(Refusal::ProofMissing("code")))?;
                let expected = challenge.code_digest.clone().unwrap_or_default();
                let given = domain::code_digest(&id.to_string(), &code);
                if !(domain::is_code_shaped(&code) && domain::digests_match(&expected, &given)) {
                    return Err(self.fail(customer, factor, "verify", Some(id)).await);
                }
            }
            Factor::Passkey => {
                let credential = proof
                    .credential
                    .ok_or_else(|| refused(Refusal::ProofMissing("credential")))?;
                if !self.check_passkey(customer, &challenge, credential).await? {
                    return Err(self.fail(customer, factor, "verify", Some(id)).await);
                }
            }
        }
        let token = secrets::new_token("hbu");
        let hash = secrets::token_hash(&token);
        let expires_at = now.saturating_add(TOKEN_TTL).unwrap_or(now);
        let completed = self
            .store
            .complete_challenge(
                &challenge,
                NewToken {
                    token_hash: &hash,
                    expires_at,
                },
                now,
            )
            .await?;
        if !completed {
            let r = if factor == Factor::Sms {
                Refusal::CodeAlreadyUsed
            } else {
                Refusal::ChallengeAlreadyVerified
            };
            return Err(self.refuse(customer, factor, "verify", Some(id), r).await);
        }
        self.succeed(customer, factor, "verify", Some(id)).await?;
        Ok(StepUpTokenView {
            step_up_token: token,
            factor,
            purpose: challenge.purpose,
            reference: challenge.reference,
            expires_at: rfc3339(expires_at),
        })
    }

    /// Redeems a step-up token for `purpose`, exactly once: of concurrent redemptions one
    /// wins and the others get `step-up-token-used`. Returns the factor the customer
    /// proved. A token of another customer is `step-up-token-invalid`; one for another
    /// purpose (`step-up-token-wrong-purpose`) or expired is refused and stays as it was.
    #[tracing::instrument(skip_all, fields(customer = %customer, purpose = %purpose))]
    pub async fn consume(&self, customer: Uuid, token: &str, purpose: &str) -> Result<Factor, ApiError> {
        let hash = secrets::token_hash(token);
        let now = self.clock.now();
        if let Some(factor) = self.store.redeem_token(&hash, customer, purpose, now).await? {
            self.attempt(customer, factor.as_str(), "consume", None, "ok").await;
            return Ok(factor);
        }
        let stored = self.store.token(&hash, customer).await?;
        let r = domain::token_refusal(
            stored.as_ref().map(|(p, e, used, _)| (p.as_str(), *e, *used)),
            purpose,
            now,
        );
        let factor = stored.as_ref().map(|s| s.3.as_str()).unwrap_or("unknown");
        let error = refused(r);
        self.attempt(customer, factor, "consume", None, error.slug).await;
        Err(error)
    }

    // ---- PIN ----

    /// Sets the PIN, or changes it when `old_pin` matches the current one (a wrong
    /// `old_pin` counts as a failed PIN attempt).
    #[tracing::instrument(skip_all, fields(customer = %customer))]
    pub async fn set_pin(&self, customer: Uuid, change: PinChange) -> Result<(), ApiError> {
        domain::check_new_pin(&change.pin).map_err(refused)?;
        let current = self.store.pin_hash(customer).await?;
        if let Some(current) = &current {
            let old = change.old_pin.clone().ok_or_else(|| refused(Refusal::OldPinRequired))?;
            self.ensure_open(customer, Factor::Pin, "pin_change", None).await?;
            if !check_pin(current.clone(), old).await? {
                return Err(self.fail(customer, Factor::Pin, "pin_change", None).await);
            }
        }
        let pin = change.pin;
        let hash = tokio::task::spawn_blocking(move || secrets::hash_password(&pin))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?;
        if !self
            .store
            .put_pin(customer, &hash, current.as_deref(), self.clock.now())
            .await?
        {
            return Err(
                ApiError::conflict("pin-changed-concurrently", "The PIN was changed meanwhile")
                    .detail("Another request set the PIN first; try again with the current PIN."),
            );
        }
        let action = if current.is_some() { "pin_change" } else { "pin_set" };
        self.succeed(customer, Factor::Pin, action, None).await
    }

    // ---- TOTP ----

    /// Starts enrolling an authenticator app: a fresh 160-bit secret, shown once.
    pub async fn start_totp(&self, customer: Uuid) -> Result<TotpEnrolment, ApiError> {
        let mut secret = [0u8; 20];
        rand::rng().fill_bytes(&mut secret);
        let secret = domain::base32_encode(&secret);
        if !self.store.start_totp(customer, &secret, self.clock.now()).await? {
            return Err(refused(Refusal::TotpAlreadyEnrolled));
        }
        let profile = self.identity.profile(customer).await?;
        let label = mask_phone(&profile.phone);
        self.attempt(customer, "totp", "totp_start", None, "ok").await;
        Ok(TotpEnrolment {
            otpauth_uri: domain::otpauth_uri(&self.settings.totp_issuer, &label, &secret),
            secret,
        })
    }

    /// Confirms the enrolment with a first code from the app.
    pub async fn confirm_totp(&self, customer: Uuid, code: &str) -> Result<(), ApiError> {
        self.check_totp_code(customer, code, true, None).await?;
        self.succeed(customer, Factor::Totp, "totp_confirm", None).await
    }

    async fn check_totp_code(
        &self,
        customer: Uuid,
        code: &str,
        confirming: bool,
        challenge: Option<Uuid>,
    ) -> Result<(), ApiError> {
        let action = if confirming { "totp_confirm" } else { "verify" };
        let row = self.store.totp(customer).await?;
        let row = match row {
            Some(r) if r.confirmed != confirming => r,
            Some(_) if confirming => return Err(refused(Refusal::TotpAlreadyEnrolled)),
            _ if confirming => return Err(refused(Refusal::TotpNotStarted)),
            _ => return Err(refused(Refusal::NotEnrolled(Factor::Totp))),
        };
        self.ensure_open(customer, Factor::Totp, action, challenge).await?;
        let secret = domain::base32_decode(&row.secret).unwrap_or_default();
        let now = self.clock.now();
        match domain::check_totp(&secret, code, now, row.last_step) {
            TotpCheck::Wrong => Err(self.fail(customer, Factor::Totp, action, challenge).await),
            TotpCheck::Replayed => Err(self
                .refuse(customer, Factor::Totp, action, challenge, Refusal::CodeAlreadyUsed)
                .await),
            TotpCheck::Fresh(step) => {
                if self
                    .store
                    .accept_totp_step(customer, &row.secret, step, confirming, now)
                    .await?
                {
                    Ok(())
                } else {
                    Err(self
                        .refuse(customer, Factor::Totp, action, challenge, Refusal::CodeAlreadyUsed)
                        .await)
                }
            }
        }
    }

    // ---- passkeys ----

    /// Checks a WebAuthn assertion against the challenge's state and the customer's
    /// passkeys; on success stores the passkey's new signature counter.
    async fn check_passkey(
        &self,
        customer: Uuid,
        challenge: &ChallengeRow,
        credential: serde_json::Value,
    ) -> Result<bool, ApiError> {
        let Ok(credential) = serde_json::from_value::<PublicKeyCredential>(credential) else {
            return Ok(false);
        };
        let Some(state) = challenge
            .passkey_state
            .as_deref()
            .and_then(|s| serde_json::from_str::<PasskeyAuthentication>(s).ok())
        else {
            return Ok(false);
        };
        let result = match self.webauthn.finish_passkey_authentication(&credential, &state) {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(error = %e, "passkey assertion refused");
                return Ok(false);
            }
        };
        for (id, stored) in self.store.passkeys(customer).await? {
            let Ok(mut passkey) = serde_json::from_str::<Passkey>(&stored) else {
                continue;
            };
            if passkey.cred_id() == result.cred_id() {
                if passkey.update_credential(&result).is_some() {
                    let json = serde_json::to_string(&passkey).map_err(ApiError::internal)?;
                    self.store.touch_passkey(&id, &json, self.clock.now()).await?;
                }
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Starts registering a passkey: creation options for the browser, valid five minutes.
    pub async fn start_passkey_registration(&self, customer: Uuid) -> Result<PasskeyRegistrationView, ApiError> {
        let profile = self.identity.profile(customer).await?;
        let existing: Vec<_> = self
            .store
            .passkeys(customer)
            .await?
            .into_iter()
            .filter_map(|(_, p)| serde_json::from_str::<Passkey>(&p).ok())
            .map(|p| p.cred_id().clone())
            .collect();
        let (options, state) = self
            .webauthn
            .start_passkey_registration(customer, &mask_phone(&profile.phone), &profile.name, Some(existing))
            .map_err(|e| ApiError::internal(format!("starting passkey registration: {e}")))?;
        let now = self.clock.now();
        let expires_at = now.saturating_add(CHALLENGE_TTL).unwrap_or(now);
        let id = new_id();
        let state = serde_json::to_string(&state).map_err(ApiError::internal)?;
        self.store
            .start_passkey_registration(id, customer, &state, now, expires_at)
            .await?;
        Ok(PasskeyRegistrationView {
            id,
            options: serde_json::to_value(options).map_err(ApiError::internal)?,
            expires_at: rfc3339(expires_at),
        })
    }

    /// Finishes a registration with the authenticator's attestation.
    pub async fn finish_passkey_registration(
        &self,
        customer: Uuid,
        id: Uuid,
        credential: serde_json::Value,
    ) -> Result<PasskeyView, ApiError> {
        let Some((state, expires_at, finished)) = self.store.passkey_registration(id, customer).await? else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "registration-not-found",
                "No such passkey registration",
            ));
        };
        let now = self.clock.now();
        if finished {
            return Err(ApiError::conflict(
                "registration-finished",
                "The registration was already finished",
            ));
        }
        if now >= expires_at {
            return Err(refused(Refusal::ChallengeExpired));
        }
        let state: PasskeyRegistration = serde_json::from_str(&state).map_err(ApiError::internal)?;
        let invalid = |detail: String| {
            ApiError::new(
                StatusCode::FORBIDDEN,
                "passkey-invalid",
                "The passkey response is not valid",
            )
            .detail(detail)
        };
        let credential: RegisterPublicKeyCredential =
            serde_json::from_value(credential).map_err(|e| invalid(format!("Unreadable credential: {e}")))?;
        let passkey = match self.webauthn.finish_passkey_registration(&credential, &state) {
            Ok(p) => p,
            Err(e) => {
                self.attempt(customer, "passkey", "passkey_register", None, "passkey-invalid")
                    .await;
                return Err(invalid(format!("The attestation was refused: {e}")));
            }
        };
        let passkey_id = new_id();
        let credential_id = domain::base32_encode(passkey.cred_id().as_ref());
        let json = serde_json::to_string(&passkey).map_err(ApiError::internal)?;
        let stored = self
            .store
            .finish_passkey_registration(id, customer, passkey_id, &credential_id, &json, now)
            .await
            .map_err(|e| match e {
                huoban_kit::DbError::Conflict { .. } => {
                    ApiError::conflict("passkey-exists", "This passkey is already registered")
                }
                other => other.into(),
            })?;
        if !stored {
            return Err(ApiError::conflict(
                "registration-finished",
                "The registration was already finished",
            ));
        }
        self.attempt(customer, "passkey", "passkey_register", None, "ok").await;
        Ok(PasskeyView { id: passkey_id })
    }

    // ---- overview ----

    /// Every factor with whether it is set up and its lock state.
    pub async fn factors(&self, customer: Uuid) -> Result<Vec<FactorView>, ApiError> {
        let now = self.clock.now();
        let states = self.store.all_failures(customer).await?;
        let mut out = Vec::new();
        for factor in Factor::ALL {
            let state = states
                .iter()
                .find(|(f, _)| f == factor.as_str())
                .map(|(_, s)| *s)
                .unwrap_or(FailureState::default());
            let (locked, locked_until, remaining) = match state.at(now) {
                LockState::Open { remaining } => (false, None, remaining),
                LockState::Locked { until } => (true, Some(rfc3339(until)), 0),
            };
            out.push(FactorView {
                factor,
                enrolled: self.enrolled(customer, factor).await?,
                locked,
                locked_until,
                remaining_attempts: remaining,
            });
        }
        Ok(out)
    }

    /// The newest messages of the built-in code sender (staff and the demo console).
    pub async fn outbox(&self, customer: Option<Uuid>, limit: i64) -> Result<Vec<OutboxMessage>, ApiError> {
        Ok(self
            .store
            .outbox(customer, limit.clamp(1, 200))
            .await?
            .into_iter()
            .map(|r| OutboxMessage {
                id: r.id,
                customer_id: r.customer_id,
                channel: r.channel,
                body: r.body,
                created_at: rfc3339(from_micros(r.created_at)),
            })
            .collect())
    }
}

/// argon2id verification off the async threads.
async fn check_pin(hash: String, pin: String) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || secrets::verify_password(&hash, &pin))
        .await
        .map_err(ApiError::internal)
}

/// `+8613800138000` → `138****8000`: enough for the customer to recognise in their app.
fn mask_phone(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    let local = if digits.len() > 11 {
        &digits[digits.len() - 11..]
    } else {
        &digits[..]
    };
    if local.len() < 7 {
        return "customer".into();
    }
    let head: String = local[..3].iter().collect();
    let tail: String = local[local.len() - 4..].iter().collect();
    format!("{head}****{tail}")
}
