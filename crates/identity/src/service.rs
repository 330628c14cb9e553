//! Identity's use cases: register, sign in (password, identity provider, hand-off),
//! authenticate a bearer token, edit a profile, manage staff. Parses input into domain
//! types, applies the rules, and speaks to the store; handlers only translate HTTP.

use std::sync::{Arc, RwLock};

use axum::http::StatusCode;
use huoban_kit::{
    ApiError, Page, SharedClock,
    clock::{from_micros, to_micros},
    ids::new_id,
    personal::PersonalData,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    audit::{ActorKind, AuditEvent, AuditSink},
    domain::{
        Channel, DEFAULT_TIME_ZONE, ELDERLY_AGE, Locale, Password, Permission, Phone, Preferences, Role, age_on,
        mask_id_number, parse_birthday, parse_id_number, parse_name, parse_time_zone, parse_username,
    },
    idp::{IdpError, IdpSettings, IdpVerifier},
    secrets,
    sessions::{Cached, Lookup, Revoked, SessionCache},
    store::{AccessRow, CustomerRow, IdentityStore, RotationBatch, SessionRow, StaffRow},
};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentitySettings {
    /// How long a session lasts, in minutes.
    pub session_ttl_minutes: i64,
    /// How long a cross-channel hand-off token stays redeemable, in seconds.
    pub handoff_ttl_seconds: i64,
    /// Allow customers to register with phone and password (demo and pilots).
    pub self_registration: bool,
    /// Sign-in with the bank's identity provider, when configured.
    pub idp: Option<IdpSettings>,
    /// How long a node may answer a customer's requests from a session it read earlier
    /// without reading it again, in milliseconds (0: read every time). Revocations reach
    /// the node's memory at once on the node and, on PostgreSQL, on every node; see
    /// [`crate::sessions`].
    pub session_cache_ms: u64,
}

impl Default for IdentitySettings {
    fn default() -> Self {
        Self {
            session_ttl_minutes: 8 * 60,
            handoff_ttl_seconds: 300,
            self_registration: true,
            idp: None,
            session_cache_ms: 5_000,
        }
    }
}

/// A customer's profile as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CustomerProfile {
    pub id: Uuid,
    /// E.164, e.g. `+8613800138000`.
    pub phone: String,
    pub name: String,
    /// `YYYY-MM-DD`.
    pub birthday: Option<String>,
    /// Resident ID number, masked (first three and last four characters); the full number
    /// is only in the customer's own data export.
    pub id_number: Option<String>,
    pub locale: Locale,
    /// IANA time zone; calendar questions (check-in days, monthly plans) use it.
    pub time_zone: String,
    pub preferences: Preferences,
    /// True when the customer is old enough that pages should offer elderly mode.
    pub elderly_mode_suggested: bool,
    pub created_at: String,
    /// True once the customer's personal data was erased at their request.
    pub erased: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StaffUser {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub permissions: Vec<Permission>,
    pub created_at: String,
}

/// A newly opened session. The token is shown once; send it as `Authorization: Bearer …`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionIssued {
    pub token: String,
    pub expires_at: String,
    pub channel: Channel,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer: Option<CustomerProfile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staff: Option<StaffUser>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HandoffIssued {
    /// Single-use token; redeem it on the target channel.
    pub token: String,
    pub target_channel: Channel,
    pub expires_at: String,
    /// Deep link for the app or mini-program.
    pub deep_link: String,
    /// Path of the H5 page that redeems the token.
    pub h5_path: String,
    /// The deep link as a QR code (SVG), for scanning from another device.
    pub qr_svg: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StaffAccessRecord {
    pub id: Uuid,
    pub staff_id: Uuid,
    pub action: String,
    pub customer_id: Option<Uuid>,
    pub at: String,
}

#[derive(Debug, Clone)]
pub enum Principal {
    Customer {
        id: Uuid,
        channel: Channel,
        token_hash: String,
    },
    Staff {
        id: Uuid,
        role: Role,
        username: String,
        token_hash: String,
    },
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    pub phone: String,
    pub password: String,
    pub name: String,
    #[serde(default)]
    pub birthday: Option<String>,
    #[serde(default)]
    pub locale: Option<Locale>,
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Mainland resident ID number (optional).
    #[serde(default)]
    pub id_number: Option<String>,
}

/// Fields to change; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    pub name: Option<String>,
    pub birthday: Option<String>,
    pub locale: Option<Locale>,
    pub time_zone: Option<String>,
    pub preferences: Option<Preferences>,
    pub id_number: Option<String>,
}

/// Everything identity holds about a customer, in clear, for the customer (PIPL art. 45).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CustomerExport {
    pub exported_at: String,
    pub profile: CustomerProfile,
    /// The full ID number (the profile shows it masked).
    pub id_number: Option<String>,
    pub signs_in_with_password: bool,
    pub linked_to_bank_identity: bool,
    pub sessions: Vec<SessionExport>,
    /// Staff who looked at this customer's data.
    pub staff_access: Vec<StaffAccessRecord>,
    /// What every other capability holds about the customer, by section (`accounts`,
    /// `inbox`, `goals`, `security`…).
    #[schema(value_type = Object)]
    pub sections: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionExport {
    pub channel: String,
    pub created_at: String,
    pub expires_at: String,
    pub revoked_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErasureDone {
    pub erased_at: String,
    /// Sessions signed out by the erasure.
    pub sessions_revoked: u64,
}

fn already_erased() -> ApiError {
    ApiError::conflict("already-erased", "This customer's data was already erased")
}

fn iso(micros: i64) -> String {
    from_micros(micros).to_string()
}

fn parse_uuid(s: &str) -> Uuid {
    Uuid::parse_str(s).unwrap_or_default()
}

fn invalid(field: &str) -> impl FnOnce(String) -> ApiError + '_ {
    move |msg| ApiError::invalid_field(field, msg)
}

fn bad_credentials() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "invalid-credentials", "Sign-in failed")
        .detail("The phone number or password is not correct.")
}

#[derive(Debug, Clone)]
pub struct IdentityService {
    store: IdentityStore,
    clock: SharedClock,
    settings: Arc<IdentitySettings>,
    idp: Option<Arc<IdpVerifier>>,
    audit: Option<Arc<dyn AuditSink>>,
    /// Every other capability's personal data, for export and erasure (shared by clones,
    /// so registering after the services were built reaches them all).
    personal: Arc<RwLock<Vec<Arc<dyn PersonalData>>>>,
    /// Customer sessions this node read recently.
    sessions: Arc<SessionCache>,
}

fn session_expired() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "session-expired", "The session has expired").detail("Sign in again.")
}

/// How long an erasure may be under way before the server takes it to be interrupted and
/// finishes it ([`IdentityService::resume_erasures`]).
const ERASURE_GRACE_MICROS: i64 = 60_000_000;

impl IdentityService {
    pub fn new(store: IdentityStore, clock: SharedClock, settings: IdentitySettings) -> Result<Self, String> {
        let idp = settings.idp.clone().map(IdpVerifier::new).transpose()?.map(Arc::new);
        let sessions = Arc::new(SessionCache::new(
            std::time::Duration::from_millis(settings.session_cache_ms),
            store.db().backend() == huoban_kit::Backend::Postgres,
        ));
        Ok(Self {
            store,
            clock,
            settings: Arc::new(settings),
            idp,
            audit: None,
            personal: Arc::default(),
            sessions,
        })
    }

    /// Keeps this node's session cache told of revocations made on other nodes: on
    /// PostgreSQL, listens on [`crate::sessions::CHANNEL`] for as long as the server runs,
    /// reconnecting after a second when the connection drops (the cache is not used while
    /// it is down). On SQLite there is nothing to listen to and this returns at once.
    pub async fn listen_for_revocations(&self) {
        let db = self.store.db();
        if db.backend() != huoban_kit::Backend::Postgres || self.settings.session_cache_ms == 0 {
            return;
        }
        loop {
            let connected = async {
                let mut listener = db.listener().await?;
                listener.listen(crate::sessions::CHANNEL).await?;
                Ok::<_, huoban_kit::DbError>(listener)
            }
            .await
            .inspect_err(|e| tracing::warn!(error = %e, "listening for session revocations failed; retrying"))
            .ok();
            if let Some(mut listener) = connected {
                self.sessions.listening(true);
                loop {
                    match listener.try_recv().await {
                        Ok(Some(note)) => {
                            if let Some(revoked) = Revoked::parse(note.payload()) {
                                self.sessions.forget(&revoked);
                            }
                        }
                        // The connection dropped (it reconnects; what was sent meanwhile
                        // is lost): start over with an empty cache.
                        Ok(None) => self.sessions.listening(true),
                        Err(e) => {
                            tracing::warn!(error = %e, "the session revocation listener stopped; reconnecting");
                            break;
                        }
                    }
                }
            }
            self.sessions.listening(false);
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }

    /// How many customer sessions this node remembers now (for tests and metrics).
    pub fn sessions_remembered(&self) -> usize {
        self.sessions.len()
    }

    /// Adds a capability's personal data to the export and the erasure, in order: erasure
    /// runs them in the order registered, identity's own part last.
    pub fn register_personal_data(&self, part: Arc<dyn PersonalData>) {
        self.personal.write().unwrap_or_else(|e| e.into_inner()).push(part);
    }

    fn personal_parts(&self) -> Vec<Arc<dyn PersonalData>> {
        self.personal.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Sends staff access and sign-in events to the audit trail.
    pub fn with_audit(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.audit = Some(sink);
        self
    }

    /// Appends to the audit trail; an access that cannot be recorded is refused (503).
    async fn audit(&self, event: AuditEvent) -> Result<(), ApiError> {
        match &self.audit {
            Some(sink) => sink.append(event).await.map_err(|e| {
                tracing::error!(error = %e, "audit trail unavailable");
                ApiError::unavailable("The audit trail could not record this access; retry shortly.")
            }),
            None => Ok(()),
        }
    }

    /// Appends to the audit trail, only logging a failure (sign-in outcomes).
    async fn audit_quietly(&self, event: AuditEvent) {
        if let Err(e) = self.audit(event).await {
            tracing::warn!(error = %e.title, "sign-in outcome not audited");
        }
    }

    async fn audit_sign_in(&self, kind: ActorKind, id: Option<&str>, ok: bool, method: &str) {
        self.audit_quietly(AuditEvent {
            actor_kind: if ok || id.is_some() { kind } else { ActorKind::Anonymous },
            actor_id: id.map(str::to_owned),
            action: if ok {
                "session.sign_in"
            } else {
                "session.sign_in_failed"
            }
            .to_owned(),
            subject: id.map(|i| format!("{}:{i}", kind.as_str())),
            details: serde_json::json!({ "principal": kind.as_str(), "method": method }),
        })
        .await;
    }

    pub fn store(&self) -> &IdentityStore {
        &self.store
    }

    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    fn now(&self) -> i64 {
        to_micros(self.clock.now())
    }

    fn today_in(&self, tz: &str) -> jiff::civil::Date {
        let tz = jiff::tz::TimeZone::get(tz).unwrap_or(jiff::tz::TimeZone::UTC);
        self.clock.now().to_zoned(tz).date()
    }

    pub fn profile_of(&self, row: &CustomerRow) -> CustomerProfile {
        let birthday = row
            .birthday
            .as_deref()
            .and_then(|b| b.parse::<jiff::civil::Date>().ok());
        let today = self.today_in(&row.time_zone);
        CustomerProfile {
            id: parse_uuid(&row.id),
            phone: row.phone.clone(),
            name: row.name.clone(),
            birthday: row.birthday.clone(),
            id_number: row.id_number.as_deref().map(mask_id_number),
            erased: row.erased_at.is_some(),
            locale: Locale::parse(&row.locale).unwrap_or(Locale::ZhCn),
            time_zone: row.time_zone.clone(),
            preferences: serde_json::from_str(&row.preferences).unwrap_or_default(),
            elderly_mode_suggested: birthday.is_some_and(|b| age_on(b, today) >= ELDERLY_AGE),
            created_at: iso(row.created_at),
        }
    }

    fn staff_of(row: &StaffRow) -> StaffUser {
        let role = Role::parse(&row.role).unwrap_or(Role::Auditor);
        StaffUser {
            id: parse_uuid(&row.id),
            username: row.username.clone(),
            display_name: row.display_name.clone(),
            role,
            permissions: Permission::ALL.into_iter().filter(|p| role.grants(*p)).collect(),
            created_at: iso(row.created_at),
        }
    }

    /// Builds a customer row from registration data without saving it (also used by the
    /// demo seeder, which saves many at once).
    pub fn new_customer_row(&self, reg: &Registration, password_hash: Option<String>) -> Result<CustomerRow, ApiError> {
        let phone = Phone::parse(&reg.phone).map_err(invalid("phone"))?;
        let name = parse_name(&reg.name).map_err(invalid("name"))?;
        let time_zone =
            parse_time_zone(reg.time_zone.as_deref().unwrap_or(DEFAULT_TIME_ZONE)).map_err(invalid("time_zone"))?;
        let birthday = reg
            .birthday
            .as_deref()
            .map(|b| parse_birthday(b, self.today_in(&time_zone)))
            .transpose()
            .map_err(invalid("birthday"))?;
        let id_number = reg
            .id_number
            .as_deref()
            .map(parse_id_number)
            .transpose()
            .map_err(invalid("id_number"))?;
        let now = self.now();
        let preferences = Preferences {
            marketing_messages: true,
            ..Preferences::default()
        };
        Ok(CustomerRow {
            id: new_id().to_string(),
            phone: phone.as_str().to_owned(),
            name,
            birthday: birthday.map(|b| b.to_string()),
            id_number,
            locale: reg.locale.unwrap_or(Locale::ZhCn).as_str().to_owned(),
            time_zone,
            preferences: serde_json::to_string(&preferences).unwrap_or_else(|_| "{}".into()),
            password_hash,
            idp_subject: None,
            created_at: now,
            updated_at: now,
            erased_at: None,
        })
    }

    pub async fn register(&self, reg: Registration) -> Result<CustomerProfile, ApiError> {
        if !self.settings.self_registration {
            return Err(ApiError::forbidden(
                "Self-registration is turned off; sign in through the bank.",
            ));
        }
        let password = Password::new_password(&reg.password).map_err(invalid("password"))?;
        // Validate everything before the slow hash.
        self.new_customer_row(&reg, None)?;
        let hash = secrets::hash_password(password.expose()).map_err(ApiError::internal)?;
        let row = self.new_customer_row(&reg, Some(hash))?;
        match self.store.insert_customer(&row).await {
            Ok(()) => Ok(self.profile_of(&row)),
            Err(huoban_kit::DbError::Conflict { .. }) => Err(ApiError::conflict(
                "phone-taken",
                "This phone number is already registered",
            )),
            Err(e) => Err(e.into()),
        }
    }

    async fn open_session(&self, kind: &str, principal_id: &str, channel: Channel) -> Result<(String, i64), ApiError> {
        let token = secrets::new_token(if kind == "staff" { "hbt" } else { "hbs" });
        let now = self.now();
        let expires_at = now + self.settings.session_ttl_minutes * 60_000_000;
        self.store
            .insert_session(&SessionRow {
                token_hash: secrets::token_hash(&token),
                principal_kind: kind.to_owned(),
                principal_id: principal_id.to_owned(),
                channel: channel.as_str().to_owned(),
                created_at: now,
                expires_at,
                revoked_at: None,
            })
            .await?;
        Ok((token, expires_at))
    }

    /// Opens a session for a customer whom a trusted caller has already authenticated
    /// (the hand-off and IdP flows here; in-process tools such as the benchmark harness).
    pub async fn open_customer_session(&self, customer: Uuid, channel: Channel) -> Result<SessionIssued, ApiError> {
        let row = self.store.customer(customer).await?;
        self.customer_session(&row, channel).await
    }

    async fn customer_session(&self, row: &CustomerRow, channel: Channel) -> Result<SessionIssued, ApiError> {
        let (token, expires_at) = self.open_session("customer", &row.id, channel).await?;
        Ok(SessionIssued {
            token,
            expires_at: iso(expires_at),
            channel,
            customer: Some(self.profile_of(row)),
            staff: None,
        })
    }

    pub async fn sign_in_password(
        &self,
        phone: &str,
        password: &str,
        channel: Channel,
    ) -> Result<SessionIssued, ApiError> {
        let Ok(phone) = Phone::parse(phone) else {
            secrets::burn_password_check(password);
            return Err(bad_credentials());
        };
        let row = self.store.customer_by_phone(phone.as_str()).await?;
        match row {
            Some(row)
                if row
                    .password_hash
                    .as_deref()
                    .is_some_and(|h| secrets::verify_password(h, password)) =>
            {
                let session = self.customer_session(&row, channel).await?;
                self.audit_sign_in(ActorKind::Customer, Some(&row.id), true, "password")
                    .await;
                Ok(session)
            }
            Some(row) => {
                self.audit_sign_in(ActorKind::Customer, Some(&row.id), false, "password")
                    .await;
                Err(bad_credentials())
            }
            None => {
                secrets::burn_password_check(password);
                self.audit_sign_in(ActorKind::Customer, None, false, "password").await;
                Err(bad_credentials())
            }
        }
    }

    pub async fn sign_in_idp(&self, assertion: &str, channel: Channel) -> Result<SessionIssued, ApiError> {
        let result = self.sign_in_idp_unaudited(assertion, channel).await;
        let id = result
            .as_ref()
            .ok()
            .and_then(|s| s.customer.as_ref())
            .map(|c| c.id.to_string());
        self.audit_sign_in(ActorKind::Customer, id.as_deref(), result.is_ok(), "idp")
            .await;
        result
    }

    async fn sign_in_idp_unaudited(&self, assertion: &str, channel: Channel) -> Result<SessionIssued, ApiError> {
        let idp = self.idp.as_ref().ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "idp-not-configured",
                "Identity-provider sign-in is not configured",
            )
        })?;
        let claims = idp.verify(assertion).await.map_err(|e| match e {
            IdpError::KeysUnavailable(msg) => {
                tracing::warn!(error = %msg, "identity provider keys unavailable");
                ApiError::unavailable("The bank's identity provider could not be reached; retry shortly.")
            }
            other => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid-assertion",
                "The sign-in assertion was refused",
            )
            .detail(other.to_string()),
        })?;
        if let Some(row) = self.store.customer_by_subject(&claims.sub).await? {
            return self.customer_session(&row, channel).await;
        }
        // A customer who registered by phone first is linked to the bank's subject.
        if let Some(phone) = claims.phone_number.as_deref().and_then(|p| Phone::parse(p).ok())
            && let Some(row) = self.store.customer_by_phone(phone.as_str()).await?
            && row.idp_subject.is_none()
        {
            self.store.link_subject(&row.id, &claims.sub, self.now()).await?;
            return self.customer_session(&row, channel).await;
        }
        if !idp.settings().provision {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "unknown-customer",
                "This customer is not enrolled in Huoban",
            ));
        }
        let phone = claims.phone_number.clone().ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-assertion",
                "The sign-in assertion was refused",
            )
            .detail("A new customer's assertion must carry phone_number.")
        })?;
        let reg = Registration {
            phone,
            password: String::new(),
            name: claims.name.clone().unwrap_or_else(|| "客户".to_owned()),
            birthday: claims.birthdate.clone(),
            locale: claims.locale.as_deref().and_then(|l| Locale::parse(l).ok()),
            time_zone: None,
            id_number: None,
        };
        let mut row = self.new_customer_row(&reg, None)?;
        row.idp_subject = Some(claims.sub.clone());
        self.store.insert_customer(&row).await?;
        self.customer_session(&row, channel).await
    }

    /// Resolves a bearer token to whoever holds it. A customer's session may come from
    /// this node's memory ([`crate::sessions`]); its expiry is checked either way.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, ApiError> {
        let hash = secrets::token_hash(token);
        let generation = match self.sessions.get(&hash) {
            Lookup::Hit(cached) => {
                if cached.expires_at <= self.now() {
                    return Err(session_expired());
                }
                return Ok(Principal::Customer {
                    id: cached.customer,
                    channel: cached.channel,
                    token_hash: hash,
                });
            }
            Lookup::Miss(generation) => generation,
        };
        let session = self
            .store
            .session(&hash)
            .await?
            .filter(|s| secrets::constant_time_eq(s.token_hash.as_bytes(), hash.as_bytes()))
            .ok_or_else(|| ApiError::unauthenticated("The session token is not known; sign in again."))?;
        if session.revoked_at.is_some() {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "session-revoked",
                "The session was signed out",
            )
            .detail("Sign in again."));
        }
        if session.expires_at <= self.now() {
            return Err(session_expired());
        }
        let id = parse_uuid(&session.principal_id);
        if session.principal_kind == "staff" {
            let staff = self.store.staff(&session.principal_id).await?;
            if staff.disabled != 0 {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "staff-disabled",
                    "This staff account is disabled",
                ));
            }
            let role = Role::parse(&staff.role).map_err(ApiError::internal)?;
            Ok(Principal::Staff {
                id,
                role,
                username: staff.username,
                token_hash: hash,
            })
        } else {
            let channel = Channel::parse(&session.channel).map_err(ApiError::internal)?;
            self.sessions.put(
                &hash,
                Cached {
                    customer: id,
                    channel,
                    expires_at: session.expires_at,
                },
                generation,
            );
            Ok(Principal::Customer {
                id,
                channel,
                token_hash: hash,
            })
        }
    }

    pub async fn sign_out(&self, token_hash: &str) -> Result<(), ApiError> {
        self.store.revoke_session(token_hash, self.now()).await?;
        self.sessions.forget(&Revoked::Token(token_hash.to_owned()));
        Ok(())
    }

    /// Signs a principal out everywhere: every open session of theirs stops working at
    /// once. Returns how many sessions were revoked.
    pub async fn sign_out_everywhere(&self, principal: &Principal) -> Result<u64, ApiError> {
        let (kind, id) = match principal {
            Principal::Customer { id, .. } => (ActorKind::Customer, id),
            Principal::Staff { id, .. } => (ActorKind::Staff, id),
        };
        let revoked = self.store.revoke_all_sessions(&id.to_string(), self.now()).await?;
        self.sessions.forget(&Revoked::Principal(id.to_string()));
        self.audit_quietly(AuditEvent {
            actor_kind: kind,
            actor_id: Some(id.to_string()),
            action: "session.sign_out_everywhere".to_owned(),
            subject: Some(format!("{}:{id}", kind.as_str())),
            details: serde_json::json!({ "revoked": revoked }),
        })
        .await;
        Ok(revoked)
    }

    pub async fn profile(&self, id: Uuid) -> Result<CustomerProfile, ApiError> {
        let row = self.store.customer(id).await.map_err(|e| match e {
            huoban_kit::DbError::NotFound => ApiError::not_found("The customer"),
            other => other.into(),
        })?;
        Ok(self.profile_of(&row))
    }

    pub async fn update_profile(&self, id: Uuid, patch: ProfilePatch) -> Result<CustomerProfile, ApiError> {
        let mut row = self.store.customer(id).await?;
        if let Some(name) = &patch.name {
            row.name = parse_name(name).map_err(invalid("name"))?;
        }
        if let Some(tz) = &patch.time_zone {
            row.time_zone = parse_time_zone(tz).map_err(invalid("time_zone"))?;
        }
        if let Some(b) = &patch.birthday {
            row.birthday = Some(
                parse_birthday(b, self.today_in(&row.time_zone))
                    .map_err(invalid("birthday"))?
                    .to_string(),
            );
        }
        if let Some(locale) = patch.locale {
            row.locale = locale.as_str().to_owned();
        }
        if let Some(n) = &patch.id_number {
            row.id_number = Some(parse_id_number(n).map_err(invalid("id_number"))?);
        }
        if let Some(prefs) = &patch.preferences {
            row.preferences = serde_json::to_string(prefs).map_err(ApiError::internal)?;
        }
        row.updated_at = self.now();
        self.store.update_profile(&row).await?;
        Ok(self.profile_of(&row))
    }

    /// Everything identity holds about the customer, in clear, for themselves.
    pub async fn export(&self, id: Uuid) -> Result<CustomerExport, ApiError> {
        let row = self.store.customer(id).await?;
        let sessions = self
            .store
            .sessions_of(&row.id)
            .await?
            .into_iter()
            .map(|s| SessionExport {
                channel: s.channel,
                created_at: iso(s.created_at),
                expires_at: iso(s.expires_at),
                revoked_at: s.revoked_at.map(iso),
            })
            .collect();
        let mut staff_access = Vec::new();
        let mut after = None;
        loop {
            let page = self.access_log(Some(id), after, 200).await?;
            staff_access.extend(page.items);
            match page.next_cursor {
                Some(c) => after = Some(huoban_kit::page::decode_cursor(&c)?),
                None => break,
            }
        }
        let mut sections = serde_json::Map::new();
        for part in self.personal_parts() {
            sections.insert(part.section().to_owned(), part.export(id).await?);
        }
        self.audit(AuditEvent {
            actor_kind: ActorKind::Customer,
            actor_id: Some(row.id.clone()),
            action: "customer.export".to_owned(),
            subject: Some(format!("customer:{}", row.id)),
            details: serde_json::json!({ "sections": sections.keys().collect::<Vec<_>>() }),
        })
        .await?;
        Ok(CustomerExport {
            sections,
            exported_at: iso(self.now()),
            id_number: row.id_number.clone(),
            signs_in_with_password: row.password_hash.is_some(),
            linked_to_bank_identity: row.idp_subject.is_some(),
            profile: self.profile_of(&row),
            sessions,
            staff_access,
        })
    }

    /// Erases the customer's personal data at their request (PIPL art. 47). The request
    /// is recorded first; then every other capability erases its part (each idempotent),
    /// then identity's own in one transaction: the sealed fields and their data key are
    /// destroyed and every session signed out. If anything stops it half-way, the
    /// customer's retry (their session still works until the last step) or the server's
    /// [`Self::resume_erasures`] finishes it. Their accounts and ledger history stay,
    /// under the now pseudonymous customer id, so the books still balance; the audit trail
    /// never held the clear data, so it stays whole.
    pub async fn erase(&self, id: Uuid) -> Result<ErasureDone, ApiError> {
        let now = self.now();
        match self.store.request_erasure(&id.to_string(), now).await? {
            None => return Err(ApiError::not_found("customer")),
            Some(true) => return Err(already_erased()),
            Some(false) => {}
        }
        self.finish_erasure(id).await
    }

    async fn finish_erasure(&self, id: Uuid) -> Result<ErasureDone, ApiError> {
        let mut parts = Vec::new();
        for part in self.personal_parts() {
            part.erase(id).await.inspect_err(|e| {
                tracing::warn!(customer = %id, section = part.section(), problem = e.slug, "erasure stopped; it is resumed later");
            })?;
            parts.push(part.section());
        }
        let now = self.now();
        let erased = self.store.erase_customer(&id.to_string(), now).await;
        self.sessions.forget(&Revoked::Principal(id.to_string()));
        let Some(sessions_revoked) = erased? else {
            return Err(already_erased());
        };
        self.audit_quietly(AuditEvent {
            actor_kind: ActorKind::Customer,
            actor_id: Some(id.to_string()),
            action: "customer.erased".to_owned(),
            subject: Some(format!("customer:{id}")),
            details: serde_json::json!({ "sessions_revoked": sessions_revoked, "sections": parts }),
        })
        .await;
        Ok(ErasureDone {
            erased_at: iso(now),
            sessions_revoked,
        })
    }

    /// Finishes erasures that were asked for over a minute ago and stopped half-way (the
    /// server runs this every minute); returns how many finished.
    pub async fn resume_erasures(&self) -> Result<u32, ApiError> {
        let before = self.now() - ERASURE_GRACE_MICROS;
        let mut finished = 0;
        for id in self.store.pending_erasures(before, 50).await? {
            let Ok(id) = Uuid::parse_str(&id) else { continue };
            match self.finish_erasure(id).await {
                Ok(_) => finished += 1,
                Err(e) if e.slug == "already-erased" => {}
                Err(e) => tracing::warn!(customer = %id, problem = e.slug, "resuming an erasure failed"),
            }
        }
        Ok(finished)
    }

    /// Seals rows written before personal data was encrypted (run at start; quick when
    /// there are none). Returns how many were sealed.
    pub async fn seal_unencrypted_rows(&self) -> Result<u64, ApiError> {
        let mut total = 0;
        loop {
            let batch = self.store.rotate_batch(500, true).await?;
            total += batch.moved;
            if batch.rows == 0 || batch.moved == 0 {
                return Ok(total);
            }
        }
    }

    /// Moves every customer row under the current master key in batches of `batch`,
    /// calling `progress(done, total)` after each; the server keeps serving meanwhile.
    pub async fn rotate_keys(&self, batch: i64, mut progress: impl FnMut(u64, u64)) -> Result<u64, ApiError> {
        let total = self.store.count_to_rotate().await?.max(0) as u64;
        let mut done = 0;
        loop {
            let RotationBatch { rows, moved } = self.store.rotate_batch(batch.max(1), false).await?;
            done += moved;
            progress(done, total);
            if rows == 0 || moved == 0 {
                return Ok(done);
            }
        }
    }

    pub async fn create_handoff(
        &self,
        customer: Uuid,
        from: Channel,
        target: Channel,
    ) -> Result<HandoffIssued, ApiError> {
        let token = secrets::new_token("hbh");
        let now = self.now();
        let expires_at = now + self.settings.handoff_ttl_seconds * 1_000_000;
        self.store
            .insert_handoff(
                &secrets::token_hash(&token),
                &customer.to_string(),
                from.as_str(),
                target.as_str(),
                now,
                expires_at,
            )
            .await?;
        let deep_link = format!("huoban://handoff?token={token}&channel={}", target.as_str());
        let qr_svg = qrcode::QrCode::new(deep_link.as_bytes())
            .map(|code| {
                code.render::<qrcode::render::svg::Color<'_>>()
                    .min_dimensions(200, 200)
                    .build()
            })
            .map_err(ApiError::internal)?;
        Ok(HandoffIssued {
            h5_path: format!("/h5/handoff?token={token}"),
            token,
            target_channel: target,
            expires_at: iso(expires_at),
            deep_link,
            qr_svg,
        })
    }

    pub async fn redeem_handoff(&self, token: &str) -> Result<SessionIssued, ApiError> {
        let (row, consumed) = self
            .store
            .consume_handoff(&secrets::token_hash(token), self.now())
            .await?;
        let refused = |slug, title| ApiError::new(StatusCode::UNAUTHORIZED, slug, title);
        let Some(row) = row else {
            return Err(refused("handoff-invalid", "The hand-off token is not valid"));
        };
        if !consumed {
            return Err(if row.used_at.is_some() {
                refused("handoff-used", "The hand-off token was already used")
                    .detail("A hand-off token opens one session only; create a new one.")
            } else {
                refused("handoff-expired", "The hand-off token has expired").detail("Create a new one.")
            });
        }
        let customer = self.store.customer(parse_uuid(&row.customer_id)).await?;
        let channel = Channel::parse(&row.target_channel).map_err(ApiError::internal)?;
        let session = self.customer_session(&customer, channel).await?;
        self.audit_sign_in(ActorKind::Customer, Some(&customer.id), true, "handoff")
            .await;
        Ok(session)
    }

    pub async fn staff_sign_in(&self, username: &str, password: &str) -> Result<SessionIssued, ApiError> {
        let refused = || {
            ApiError::new(StatusCode::UNAUTHORIZED, "invalid-credentials", "Sign-in failed")
                .detail("The username or password is not correct.")
        };
        let Some(row) = self.store.staff_by_username(username).await? else {
            secrets::burn_password_check(password);
            self.audit_sign_in(ActorKind::Staff, None, false, "password").await;
            return Err(refused());
        };
        if row.disabled != 0 || !secrets::verify_password(&row.password_hash, password) {
            self.audit_sign_in(ActorKind::Staff, Some(&row.id), false, "password")
                .await;
            return Err(refused());
        }
        let (token, expires_at) = self.open_session("staff", &row.id, Channel::Web).await?;
        self.audit_sign_in(ActorKind::Staff, Some(&row.id), true, "password")
            .await;
        Ok(SessionIssued {
            token,
            expires_at: iso(expires_at),
            channel: Channel::Web,
            customer: None,
            staff: Some(Self::staff_of(&row)),
        })
    }

    /// Creates a staff user with a generated password, returned once.
    pub async fn create_staff(
        &self,
        username: &str,
        display_name: &str,
        role: Role,
    ) -> Result<(StaffUser, String), ApiError> {
        let password = secrets::new_staff_password();
        let user = self
            .create_staff_with_password(username, display_name, role, &password)
            .await?;
        Ok((user, password))
    }

    pub async fn create_staff_with_password(
        &self,
        username: &str,
        display_name: &str,
        role: Role,
        password: &str,
    ) -> Result<StaffUser, ApiError> {
        let username = parse_username(username).map_err(invalid("username"))?;
        let display_name = parse_name(display_name).map_err(invalid("display_name"))?;
        let password = Password::new_password(password).map_err(invalid("password"))?;
        let row = StaffRow {
            id: new_id().to_string(),
            username,
            display_name,
            role: role.as_str().to_owned(),
            password_hash: secrets::hash_password(password.expose()).map_err(ApiError::internal)?,
            disabled: 0,
            created_at: self.now(),
        };
        match self.store.insert_staff(&row).await {
            Ok(()) => Ok(Self::staff_of(&row)),
            Err(huoban_kit::DbError::Conflict { .. }) => {
                Err(ApiError::conflict("username-taken", "This username is already taken"))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// On an empty staff table, creates `admin` with a random password and returns it, so
    /// the operator can print it once.
    pub async fn ensure_first_admin(&self) -> Result<Option<(String, String)>, ApiError> {
        if self.store.count_staff().await? > 0 {
            return Ok(None);
        }
        match self.create_staff("admin", "Administrator", Role::Admin).await {
            Ok((user, password)) => Ok(Some((user.username, password))),
            // Another node created it first.
            Err(e) if e.slug == "username-taken" => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn staff_user(&self, id: Uuid) -> Result<StaffUser, ApiError> {
        Ok(Self::staff_of(&self.store.staff(&id.to_string()).await?))
    }

    pub async fn list_staff(&self, after: Option<String>, limit: u32) -> Result<Page<StaffUser>, ApiError> {
        let rows = self.store.list_staff(after.as_deref(), limit).await?;
        let users = rows.iter().map(Self::staff_of).collect();
        Ok(Page::from_rows(users, limit, |u: &StaffUser| u.id.to_string()))
    }

    /// Records that a staff member looked at customer data.
    pub async fn record_access(&self, staff: Uuid, action: &str, customer: Option<Uuid>) -> Result<(), ApiError> {
        self.audit(AuditEvent {
            actor_kind: ActorKind::Staff,
            actor_id: Some(staff.to_string()),
            action: action.to_owned(),
            subject: customer.map(|c| format!("customer:{c}")),
            details: serde_json::json!({ "access": true }),
        })
        .await?;
        self.store
            .record_access(&AccessRow {
                id: new_id().to_string(),
                staff_id: staff.to_string(),
                action: action.to_owned(),
                customer_id: customer.map(|c| c.to_string()),
                at: self.now(),
            })
            .await?;
        Ok(())
    }

    pub async fn list_customers(
        &self,
        staff: Uuid,
        phone: Option<&str>,
        after: Option<String>,
        limit: u32,
    ) -> Result<Page<CustomerProfile>, ApiError> {
        let phone = phone.map(Phone::parse).transpose().map_err(invalid("phone"))?;
        let rows = self
            .store
            .list_customers(phone.as_ref().map(Phone::as_str), after.as_deref(), limit)
            .await?;
        self.record_access(
            staff,
            if phone.is_some() {
                "customers.search"
            } else {
                "customers.list"
            },
            None,
        )
        .await?;
        let profiles = rows.iter().map(|r| self.profile_of(r)).collect();
        Ok(Page::from_rows(profiles, limit, |p: &CustomerProfile| p.id.to_string()))
    }

    pub async fn customer_for_staff(&self, staff: Uuid, customer: Uuid) -> Result<CustomerProfile, ApiError> {
        let profile = self.profile(customer).await?;
        self.record_access(staff, "customers.view", Some(customer)).await?;
        Ok(profile)
    }

    pub async fn access_log(
        &self,
        customer: Option<Uuid>,
        after: Option<String>,
        limit: u32,
    ) -> Result<Page<StaffAccessRecord>, ApiError> {
        let rows = self
            .store
            .access_log(customer.map(|c| c.to_string()).as_deref(), after.as_deref(), limit)
            .await?;
        let items = rows
            .iter()
            .map(|r| StaffAccessRecord {
                id: parse_uuid(&r.id),
                staff_id: parse_uuid(&r.staff_id),
                action: r.action.clone(),
                customer_id: r.customer_id.as_deref().map(parse_uuid),
                at: iso(r.at),
            })
            .collect();
        Ok(Page::from_rows(items, limit, |r: &StaffAccessRecord| r.id.to_string()))
    }
}
