//! [`RiskService`]: gathers an operation's facts, asks the pure engine
//! ([`crate::domain::decide`]), stores the decision with its inputs and policy version,
//! and carries out what it decided — step-up challenges, delayed settlement of large
//! transfers through ledger holds and durable timers, anomaly holds with a "was this
//! you?" inbox message, freezes and cases.

use std::{
    collections::HashMap,
    fmt::Debug,
    sync::{Arc, Mutex, RwLock},
    time::Instant,
};

use axum::http::StatusCode;
use huoban_accounts::gate::{BoxFuture, Prepared, RawContext, TransferAttempt, TransferGate, Verdict};
use huoban_identity::{IdentityService, domain::Phone};
use huoban_inbox::{InboxService, NewMessage};
use huoban_kit::{
    ApiError, DbError, SharedClock,
    clock::{from_micros, to_micros},
    ids::new_id,
};
use huoban_ledger::{Ledger, LedgerError, TransferId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{
    domain::{
        self, Anomaly, DAY_MICROS, Decision, Factor, GeoPoint, HoldState, Inputs, Operation, Outcome, Policy,
        TrustFacts,
    },
    facts::{Delta, FactsCache, Lookup, Windows},
    store::{self as rs, CaseRow, DecisionRow, Facts, HoldRow, Learned, NewDecision, NoteRow, RiskStore},
};

/// How long a settlement worker owns a due hold before another may retry it.
const LEASE_MICROS: i64 = 60_000_000;
/// How long a node trusts its cached policy before reading the newest from the database.
const POLICY_TTL: std::time::Duration = std::time::Duration::from_secs(5);
/// Anomalies this recent lower the trust level.
const ANOMALY_MEMORY_DAYS: i64 = 90;

/// Verifies a step-up token issued by the step-up factors (PIN, one-time code, passkey)
/// and consumes it, so it works once. `purpose` is the challenge reference the risk
/// engine handed out with `step-up-required`.
pub trait StepUpVerifier: Send + Sync + Debug {
    fn consume<'a>(
        &'a self,
        customer: Uuid,
        token: &'a str,
        purpose: &'a str,
    ) -> BoxFuture<'a, Result<Factor, ApiError>>;
}

/// The verifier in place until the step-up factors are wired: every token is refused.
#[derive(Debug, Clone, Copy, Default)]
pub struct RejectAllStepUps;

impl StepUpVerifier for RejectAllStepUps {
    fn consume<'a>(&'a self, _: Uuid, _: &'a str, _: &'a str) -> BoxFuture<'a, Result<Factor, ApiError>> {
        Box::pin(async { Err(step_up_invalid("No step-up factor is configured on this server.")) })
    }
}

fn step_up_invalid(detail: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "step-up-invalid", "The step-up was not accepted").detail(detail)
}

/// What is kept with a decision beside the engine's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DecisionRecord {
    #[serde(flatten)]
    pub decision: Decision,
    /// For delayed transfers: when they settle (micros).
    #[serde(default)]
    pub settles_at: Option<i64>,
}

/// A decision as staff and customers see it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DecisionView {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub operation: String,
    pub outcome: String,
    pub factor: Option<String>,
    pub score: i64,
    pub anomaly: Option<String>,
    pub policy_version: i64,
    pub decision: Decision,
    pub inputs: Inputs,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PolicyView {
    /// 0 is the built-in default.
    pub version: i64,
    pub policy: Policy,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReplayView {
    pub decision_id: Uuid,
    /// The policy version replayed against.
    pub policy_version: i64,
    pub original: Decision,
    pub replayed: Decision,
    /// The replay decided the same outcome and factor.
    pub same_outcome: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeviceView {
    pub device_id: String,
    pub fingerprint: String,
    pub trusted: bool,
    pub first_seen: String,
    pub last_seen: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HoldView {
    /// For transfers, the ledger transfer's id.
    pub id: Uuid,
    /// `delay`, `anomaly` or `sign_in`.
    pub kind: String,
    pub state: HoldState,
    pub amount: Option<i64>,
    pub anomaly: Option<String>,
    pub decision_id: Uuid,
    pub settles_at: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TrustView {
    /// 0 (new or recently anomalous) to 4.
    pub level: u8,
    /// Transfers up to this (minor units) need no step-up.
    pub frictionless_limit: i64,
    pub facts: TrustFacts,
    pub explanation: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NoteView {
    pub id: Uuid,
    pub staff_id: Uuid,
    pub body: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CaseView {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub hold_id: Option<Uuid>,
    pub kind: String,
    /// `open` or `resolved`.
    pub state: String,
    pub assignee: Option<Uuid>,
    pub summary: String,
    pub resolution: Option<String>,
    pub notes: Vec<NoteView>,
    pub created_at: String,
    pub updated_at: String,
}

fn iso(micros: i64) -> String {
    from_micros(micros).to_string()
}

fn uuid(s: &str) -> Uuid {
    Uuid::parse_str(s).unwrap_or_default()
}

fn fingerprint(customer: Uuid, device: &str) -> String {
    let mut h = Sha256::new();
    h.update(customer.as_bytes());
    h.update(device.as_bytes());
    hex::encode(h.finalize())
}

fn yuan(fen: i64) -> String {
    format!("¥{}.{:02}", fen / 100, (fen % 100).abs())
}

/// A request's context, parsed.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub device_id: Option<String>,
    pub geo: Option<GeoPoint>,
    pub ip: Option<String>,
    pub step_up_token: Option<String>,
}

/// A decision computed but not yet stored: kept from the gate's check until the ledger
/// took the transfer.
#[derive(Debug)]
struct Pending {
    inputs: Inputs,
    record: DecisionRecord,
    policy_version: i64,
    created: Instant,
    /// A step-up decision stored earlier for the same key, which this one replaces.
    replaces_step_up: bool,
}

struct Inner {
    store: RiskStore,
    ledger: Ledger,
    identity: IdentityService,
    inbox: InboxService,
    clock: SharedClock,
    verifier: RwLock<Arc<dyn StepUpVerifier>>,
    /// The audit trail that decisions other than a plain allow are written to.
    audit: RwLock<Option<Arc<dyn huoban_identity::audit::AuditSink>>>,
    policy: RwLock<(i64, Arc<Policy>, Instant)>,
    pending: Mutex<HashMap<Uuid, Pending>>,
    recorder: Recorder,
    /// Customers' facts between transfers (see [`crate::facts`]).
    facts: Arc<FactsCache>,
    /// Transfers allowed here whose record the recorder has not written yet, by (customer,
    /// idempotency key) → decision: a quick retry must get the same answer. The recorder
    /// removes each once written (or failed), so it holds only what is in flight.
    recent: Arc<Recent>,
    trust_forwarded_for: bool,
    /// How long a kept snapshot of a customer's facts is used without reading their stamp
    /// (micros; 0: read it for every transfer).
    facts_max_age: i64,
}

impl Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RiskService").finish_non_exhaustive()
    }
}

/// The risk capability's handle; cheap to clone.
#[derive(Debug, Clone)]
pub struct RiskService(Arc<Inner>);

impl RiskService {
    /// `trust_forwarded_for`: take the client address from `X-Forwarded-For` (only behind
    /// a proxy that sets it). `facts_max_age`: how long a customer's facts kept in memory
    /// are used without reading their stamp (see [`crate::facts`]; zero reads it for every
    /// transfer). Needs a Tokio runtime (it starts the decision recorder).
    pub fn new(
        store: RiskStore,
        ledger: Ledger,
        identity: IdentityService,
        inbox: InboxService,
        clock: SharedClock,
        trust_forwarded_for: bool,
        facts_max_age: std::time::Duration,
    ) -> Self {
        let facts = Arc::new(FactsCache::default());
        let recent = Arc::new(Recent::default());
        Self(Arc::new(Inner {
            recorder: spawn_recorder(store.clone(), facts.clone(), recent.clone()),
            facts,
            recent,
            store,
            ledger,
            identity,
            inbox,
            clock,
            verifier: RwLock::new(Arc::new(RejectAllStepUps)),
            audit: RwLock::new(None),
            policy: RwLock::new((-1, Arc::new(Policy::default()), Instant::now())),
            pending: Mutex::new(HashMap::new()),
            trust_forwarded_for,
            facts_max_age: i64::try_from(facts_max_age.as_micros()).unwrap_or(i64::MAX),
        }))
    }

    /// How transfers found their customers' facts since start (see [`crate::facts`]).
    pub fn facts_stats(&self) -> crate::facts::FactsStats {
        self.0.facts.stats()
    }

    pub fn identity(&self) -> &IdentityService {
        &self.0.identity
    }

    /// Replaces the step-up verifier (the step-up factors, or a test double).
    pub fn set_step_up_verifier(&self, verifier: Arc<dyn StepUpVerifier>) {
        *self.0.verifier.write().unwrap_or_else(|e| e.into_inner()) = verifier;
    }

    /// Plugs in the audit trail: every decision that is not a plain allow (step-up, delay,
    /// hold, deny, anomaly) is appended to it with its id, score, factor and reasons'
    /// codes; the full inputs stay in the decision table, where they can be replayed.
    pub fn set_audit(&self, audit: Arc<dyn huoban_identity::audit::AuditSink>) {
        *self.0.audit.write().unwrap_or_else(|e| e.into_inner()) = Some(audit);
    }

    async fn audit_decision(&self, d: &NewDecision, record: &DecisionRecord) {
        if d.outcome == Outcome::Allow.as_str() && !record.decision.delayed && d.anomaly.is_none() {
            return;
        }
        let audit = self.0.audit.read().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(audit) = audit else { return };
        let event = huoban_identity::audit::AuditEvent {
            actor_kind: huoban_identity::audit::ActorKind::System,
            actor_id: Some("risk".to_owned()),
            action: "risk.decision".to_owned(),
            subject: Some(format!("customer:{}", d.customer)),
            details: serde_json::json!({
                "decision_id": d.id.to_string(),
                "operation": d.operation,
                "outcome": d.outcome,
                "delayed": record.decision.delayed,
                "factor": d.factor,
                "score": d.score,
                "anomaly": d.anomaly,
                "policy_version": d.policy_version,
                "reasons": record.decision.reasons.iter().map(|r| r.code.as_str()).collect::<Vec<_>>(),
            }),
        };
        if let Err(e) = audit.append(event).await {
            tracing::warn!(error = %e, "auditing a risk decision failed");
        }
    }

    fn verifier(&self) -> Arc<dyn StepUpVerifier> {
        self.0.verifier.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Writes an outcome through the group-commit recorder. With `wait`, returns once it
    /// is durable — always for outcomes that create a hold (a delayed transfer's timer, an
    /// anomaly waiting for its answer). Without, returns at once: a plain allowed
    /// operation's record (and what it teaches the profile) is written with the next
    /// group, so the request does not pay a second commit after the ledger's; a crash in
    /// between loses that record, never money or a timer.
    async fn record(&self, outcome: rs::Outcome, wait: bool) -> Result<(), ApiError> {
        let stopped = || ApiError::unavailable("The risk recorder has stopped.");
        if !wait {
            return self.0.recorder.quiet.send(outcome).map_err(|_| stopped());
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.0.recorder.urgent.send((outcome, tx)).map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?.map_err(ApiError::internal)
    }

    fn now(&self) -> i64 {
        to_micros(self.0.clock.now())
    }

    /// This node just changed the customer's facts (their stamp moved with the write): the
    /// snapshot it kept is no longer theirs.
    fn changed(&self, customer: Uuid) {
        self.0.facts.invalidate(customer);
    }

    // ---- policy ----

    /// The policy in force and its version (0 = built-in default).
    pub async fn policy(&self) -> Result<(i64, Arc<Policy>), ApiError> {
        {
            let cached = self.0.policy.read().unwrap_or_else(|e| e.into_inner());
            if cached.0 >= 0 && cached.2.elapsed() < POLICY_TTL {
                return Ok((cached.0, cached.1.clone()));
            }
        }
        let (version, policy) = match self.0.store.current_policy().await? {
            Some((v, body)) => (v, Arc::new(serde_json::from_str(&body).map_err(ApiError::internal)?)),
            None => (0, Arc::new(Policy::default())),
        };
        *self.0.policy.write().unwrap_or_else(|e| e.into_inner()) = (version, policy.clone(), Instant::now());
        Ok((version, policy))
    }

    async fn policy_version(&self, version: i64) -> Result<Policy, ApiError> {
        if version == 0 {
            return Ok(Policy::default());
        }
        let body = self
            .0
            .store
            .policy(version)
            .await?
            .ok_or_else(|| ApiError::internal(format!("policy version {version} missing")))?;
        serde_json::from_str(&body).map_err(ApiError::internal)
    }

    /// Validates and stores a new policy version.
    pub async fn update_policy(&self, staff: Uuid, policy: Policy) -> Result<PolicyView, ApiError> {
        let problems = policy.validate();
        if !problems.is_empty() {
            let detail = problems
                .iter()
                .map(|p| format!("{}: {}", p.field, p.message))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-policy",
                "The policy is not valid",
            )
            .detail(detail)
            .with("errors", serde_json::to_value(&problems).map_err(ApiError::internal)?));
        }
        let current = self.0.store.current_policy().await?.map(|(v, _)| v).unwrap_or(0);
        let version = current + 1;
        let body = serde_json::to_string(&policy).map_err(ApiError::internal)?;
        self.0
            .store
            .insert_policy(version, &body, staff, self.now())
            .await
            .map_err(|e| match e {
                DbError::Conflict { .. } => ApiError::conflict("policy-changed", "The policy changed meanwhile")
                    .detail("Another officer saved a policy at the same moment; read it and try again."),
                other => other.into(),
            })?;
        let policy = Arc::new(policy);
        *self.0.policy.write().unwrap_or_else(|e| e.into_inner()) = (version, policy.clone(), Instant::now());
        Ok(PolicyView {
            version,
            policy: (*policy).clone(),
        })
    }

    // ---- context and facts ----

    /// Parses the raw context headers; a malformed one is refused (422 `invalid-context`).
    pub fn context(&self, raw: &RawContext) -> Result<Context, ApiError> {
        let invalid = |field: &str, detail: String| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-context",
                "The request context is not valid",
            )
            .detail(detail)
            .with("field", field)
        };
        Ok(Context {
            device_id: raw
                .device_id
                .as_deref()
                .map(domain::parse_device_id)
                .transpose()
                .map_err(|e| invalid("X-Device-Id", e))?,
            geo: raw
                .geo
                .as_deref()
                .map(GeoPoint::parse)
                .transpose()
                .map_err(|e| invalid("X-Geo", e))?,
            ip: if self.0.trust_forwarded_for {
                raw.forwarded_for.as_deref().and_then(domain::forwarded_ip)
            } else {
                None
            },
            step_up_token: raw.step_up_token.clone().filter(|t| !t.is_empty()),
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn gather(
        &self,
        customer: Uuid,
        op: Operation,
        amount: Option<i64>,
        channel: &str,
        ctx: &Context,
        payee: Option<&str>,
        step_up: Option<Factor>,
        policy: &Policy,
    ) -> Result<(Inputs, Facts), ApiError> {
        let now = self.now();
        let w = windows(policy, now);
        let facts = self
            .0
            .store
            .facts(
                customer,
                ctx.device_id.as_deref(),
                payee,
                op.as_str(),
                w.failures_since,
                w.operations_since,
                w.anomalies_since,
                w.operations_cap,
            )
            .await?;
        let inputs = inputs_from(&facts, op, amount, now, channel, ctx, step_up);
        Ok((inputs, facts))
    }

    /// A transfer's facts: from memory when the customer's kept snapshot is at `stamp`
    /// under this policy, else read again (one statement) and kept.
    #[allow(clippy::too_many_arguments)]
    async fn transfer_facts(
        &self,
        customer: Uuid,
        stamp: i64,
        confirmed: bool,
        amount: i64,
        channel: &str,
        ctx: &Context,
        payee: &str,
        policy_version: i64,
        policy: &Policy,
    ) -> Result<(Inputs, Facts), ApiError> {
        let now = self.now();
        let w = windows(policy, now);
        let device = ctx.device_id.as_deref();
        let cache = &self.0.facts;
        let mut lookup = cache.lookup(customer, stamp, policy_version, &w, device, Some(payee));
        if confirmed && !matches!(lookup, Lookup::Miss) {
            cache.confirm(customer, stamp, now);
        }
        if matches!(lookup, Lookup::Miss) {
            let snapshot = self
                .0
                .store
                .snapshot(
                    customer,
                    w.failures_since,
                    w.operations_since,
                    w.operations_cap,
                    w.anomalies_since,
                )
                .await?;
            let version = snapshot.version;
            cache.put(customer, snapshot, policy_version, w.operations_cap, now);
            lookup = cache.find(customer, version, policy_version, &w, device, Some(payee));
        }
        let facts = match lookup {
            Lookup::Hit(f) => f,
            Lookup::PayeeUnknown(mut f) => {
                f.payee_known = Some(self.0.store.payee_known(customer, payee).await?);
                f
            }
            // Kept snapshots are only ever replaced by newer ones: one just put is there
            // unless a newer one replaced it, which a read again settles.
            Lookup::Miss => {
                return self
                    .gather(
                        customer,
                        Operation::Transfer,
                        Some(amount),
                        channel,
                        ctx,
                        Some(payee),
                        None,
                        policy,
                    )
                    .await;
            }
        };
        let inputs = inputs_from(&facts, Operation::Transfer, Some(amount), now, channel, ctx, None);
        Ok((inputs, facts))
    }

    // ---- transfers ----

    /// Decides a transfer with what was read ahead ([`TransferGate::prepare`]): the key's
    /// earlier decision and the customer's stamp, or a snapshot still fresh enough to use.
    async fn check_transfer(&self, a: &TransferAttempt, ahead: Ahead) -> Result<Verdict, ApiError> {
        let ctx = self.context(&a.context)?;
        let recent = self
            .0
            .recent
            .lock()
            .get(&(a.customer, a.idempotency_key.clone()))
            .copied();
        if let Some(decision) = recent {
            return Ok(Verdict::Allow { decision });
        }
        let known = match ahead {
            // A step-up token is only ever redeemed against facts confirmed in the database.
            Ahead::Cached(version) if ctx.step_up_token.is_none() => self
                .0
                .facts
                .earlier(a.customer, &a.idempotency_key)
                .map(|existing| (existing, version)),
            Ahead::Cached(_) => None,
            Ahead::Read(existing, stamp) => {
                return self
                    .decide_transfer(a, &ctx, existing.map(|b| *b), stamp, false)
                    .await?
                    .confirmed();
            }
        };
        if let Some((existing, version)) = known
            && let Some(verdict) = self.decide_transfer(a, &ctx, existing, version, true).await?.done()
        {
            return Ok(verdict);
        }
        // Confirmed against the database: anything but a plain allow, or no snapshot.
        let (existing, stamp) = self.0.store.decision_and_stamp(a.customer, &a.idempotency_key).await?;
        self.decide_transfer(a, &ctx, existing, stamp, false).await?.confirmed()
    }

    /// Decides on the customer's facts as of `stamp`. With `cached` (a snapshot not
    /// confirmed against the database for this transfer) it answers only a plain allow
    /// and otherwise asks to be run again on confirmed facts ([`Checked::Confirm`]):
    /// nothing is stored or refused on facts that may be stale.
    async fn decide_transfer(
        &self,
        a: &TransferAttempt,
        ctx: &Context,
        existing: Option<DecisionRow>,
        stamp: i64,
        cached: bool,
    ) -> Result<Checked, ApiError> {
        let mut challenge = None;
        if let Some(row) = existing {
            let record: DecisionRecord = serde_json::from_str(&row.decision).map_err(ApiError::internal)?;
            let id = uuid(&row.id);
            match record.decision.outcome {
                // A retry of an operation already decided gets the same answer.
                Outcome::Allow if record.decision.delayed => {
                    return Ok(Checked::Verdict(Verdict::Delay {
                        decision: id,
                        settles_at: from_micros(record.settles_at.unwrap_or(row.created_at)),
                    }));
                }
                Outcome::Allow => return Ok(Checked::Verdict(Verdict::Allow { decision: id })),
                Outcome::Hold => {
                    return Ok(Checked::Verdict(Verdict::Hold {
                        decision: id,
                        reason: hold_reason(&record.decision),
                    }));
                }
                Outcome::Deny if cached => return Ok(Checked::Confirm),
                Outcome::Deny => return Err(denied(id, &record.decision)),
                Outcome::StepUp => challenge = Some(id),
            }
        }
        let (version, policy) = self.policy().await?;
        let payee = a.to_account.to_string();
        let (mut inputs, facts) = self
            .transfer_facts(
                a.customer, stamp, !cached, a.amount, &a.channel, ctx, &payee, version, &policy,
            )
            .await?;
        if facts.profile.as_ref().is_some_and(|p| p.is_frozen()) {
            if cached {
                return Ok(Checked::Confirm);
            }
            return Err(account_frozen());
        }
        if let (Some(token), Some(challenge)) = (&ctx.step_up_token, challenge) {
            let verifier = self.verifier();
            match verifier.consume(a.customer, token, &challenge.to_string()).await {
                Ok(f) => inputs.step_up = Some(f),
                Err(e) => {
                    self.0.store.record_failure(a.customer, "step_up", self.now()).await?;
                    self.changed(a.customer);
                    return Err(e);
                }
            }
        }
        let decision = domain::decide(&inputs, &policy);
        if cached && (decision.outcome != Outcome::Allow || decision.delayed) {
            return Ok(Checked::Confirm);
        }
        let id = new_id();
        let settles_at = decision.delayed.then(|| inputs.at + policy.delay_minutes * 60_000_000);
        let record = DecisionRecord { decision, settles_at };
        match record.decision.outcome {
            Outcome::Deny | Outcome::StepUp => {
                self.store_decision(a.customer, Some(&a.idempotency_key), id, &inputs, &record, version)
                    .await?;
                if record.decision.outcome == Outcome::Deny {
                    Err(denied(id, &record.decision))
                } else {
                    Err(step_up_required(id, &record.decision))
                }
            }
            outcome => {
                let verdict = match outcome {
                    Outcome::Hold => Verdict::Hold {
                        decision: id,
                        reason: hold_reason(&record.decision),
                    },
                    _ if record.decision.delayed => Verdict::Delay {
                        decision: id,
                        settles_at: from_micros(settles_at.unwrap_or(inputs.at)),
                    },
                    _ => Verdict::Allow { decision: id },
                };
                let mut pending = self.0.pending.lock().unwrap_or_else(|e| e.into_inner());
                if pending.len() > 10_000 {
                    pending.retain(|_, p| p.created.elapsed() < std::time::Duration::from_secs(300));
                }
                pending.insert(
                    id,
                    Pending {
                        inputs,
                        record,
                        policy_version: version,
                        created: Instant::now(),
                        replaces_step_up: challenge.is_some(),
                    },
                );
                Ok(Checked::Verdict(verdict))
            }
        }
    }

    async fn store_decision(
        &self,
        customer: Uuid,
        key: Option<&str>,
        id: Uuid,
        inputs: &Inputs,
        record: &DecisionRecord,
        version: i64,
    ) -> Result<(), ApiError> {
        let d = new_decision(customer, key, id, inputs, record, version)?;
        self.0.store.insert_decision(&d).await?;
        self.changed(customer);
        self.audit_decision(&d, record).await;
        Ok(())
    }

    async fn transfer_done(
        &self,
        a: &TransferAttempt,
        verdict: &Verdict,
        transfer: Uuid,
        replayed: bool,
    ) -> Result<(), ApiError> {
        let decision_id = match verdict {
            Verdict::Allow { decision } | Verdict::Delay { decision, .. } | Verdict::Hold { decision, .. } => *decision,
        };
        let Some(p) = self
            .0
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&decision_id)
        else {
            return Ok(());
        };
        if replayed {
            return Ok(());
        }
        let policy = self.policy().await?.1;
        let d = new_decision(
            a.customer,
            Some(&a.idempotency_key),
            decision_id,
            &p.inputs,
            &p.record,
            p.policy_version,
        )?;
        self.audit_decision(&d, &p.record).await;
        let now = p.inputs.at;
        let payee = a.to_account.to_string();
        let fp = p.inputs.device_id.as_deref().map(|dev| fingerprint(a.customer, dev));
        let held = p.record.decision.outcome == Outcome::Hold;
        let wait = !matches!(verdict, Verdict::Allow { .. });
        if !wait {
            self.0
                .recent
                .lock()
                .insert((a.customer, a.idempotency_key.clone()), decision_id);
        }
        let learned = if held {
            Learned::default()
        } else {
            Learned {
                amount: Some(a.amount),
                hour: Some(policy.habit_hour(now) as i64),
                geo: p.inputs.geo,
                payee: Some(payee),
                device: p.inputs.device_id.clone().zip(fp),
                step_up: p.inputs.step_up.is_some(),
            }
        };
        let hold = match verdict {
            Verdict::Allow { .. } => None,
            Verdict::Delay { settles_at, .. } => Some(HoldRow {
                id: transfer.to_string(),
                customer_id: a.customer.to_string(),
                decision_id: decision_id.to_string(),
                kind: "delay".into(),
                state: HoldState::Waiting.as_str().into(),
                amount: Some(a.amount),
                anomaly: None,
                due_at: Some(to_micros(*settles_at)),
                lease_until: None,
                created_at: now,
                updated_at: now,
            }),
            Verdict::Hold { .. } => Some(HoldRow {
                id: transfer.to_string(),
                customer_id: a.customer.to_string(),
                decision_id: decision_id.to_string(),
                kind: "anomaly".into(),
                state: HoldState::Held.as_str().into(),
                amount: Some(a.amount),
                anomaly: p.record.decision.anomaly.map(|x| x.as_str().to_owned()),
                due_at: None,
                lease_until: None,
                created_at: now,
                updated_at: now,
            }),
        };
        let clean = !held && p.inputs.step_up.is_none();
        // Counted in this node's facts at once, before the record is written; a held or
        // delayed transfer's decision is kept by key for a retry.
        let keyed = wait.then(|| d.as_row());
        self.0.facts.unwritten(
            a.customer,
            Delta {
                decision: decision_id,
                at: now,
                anomaly: d.anomaly.is_some(),
                clean,
                learned: learned.clone(),
                keyed,
            },
        );
        self.record(
            rs::Outcome {
                decision: d,
                learned,
                clean,
                hold,
                replaces_step_up: p.replaces_step_up,
            },
            wait,
        )
        .await?;
        match verdict {
            Verdict::Hold { .. } => {
                self.ask_was_this_you(a.customer, transfer, Some(a.amount), &p.record.decision)
                    .await?;
            }
            Verdict::Delay { settles_at, .. } => {
                self.deliver(NewMessage {
                    customer_id: a.customer,
                    kind: "security".into(),
                    title: "Large transfer scheduled".into(),
                    body: format!(
                        "Your transfer of {} settles at {settles_at}. You can cancel it until then.",
                        yuan(a.amount)
                    ),
                    link: Some(format!("/security/holds/{transfer}")),
                    data: serde_json::json!({ "hold_id": transfer, "cancel": format!("/api/v1/transfers/{transfer}/cancel") }),
                    dedupe_key: Some(format!("risk-delay:{transfer}")),
                })
                .await;
            }
            Verdict::Allow { .. } => {}
        }
        Ok(())
    }

    async fn deliver(&self, message: NewMessage) {
        if let Err(e) = self.0.inbox.deliver(message).await {
            tracing::warn!(error = %e, "risk inbox message not delivered");
        }
    }

    async fn ask_was_this_you(
        &self,
        customer: Uuid,
        hold: Uuid,
        amount: Option<i64>,
        d: &Decision,
    ) -> Result<(), ApiError> {
        let what = match amount {
            Some(a) => format!("a transfer of {}", yuan(a)),
            None => "a sign-in".to_owned(),
        };
        let reasons: Vec<&str> = d
            .reasons
            .iter()
            .filter(|r| r.points > 0)
            .map(|r| r.text.as_str())
            .collect();
        self.deliver(NewMessage {
            customer_id: customer,
            kind: "security".into(),
            title: "Was this you?".into(),
            body: format!(
                "We paused {what} because it looked unusual: {} Confirm it if it was you; if not, tell us and we will freeze transfers and call you.",
                reasons.join(" ")
            ),
            link: Some(format!("/security/holds/{hold}")),
            data: serde_json::json!({
                "hold_id": hold,
                "anomaly": d.anomaly.map(Anomaly::as_str),
                "confirm": format!("/api/v1/security/holds/{hold}/confirm"),
                "deny": format!("/api/v1/security/holds/{hold}/deny"),
            }),
            dedupe_key: Some(format!("risk-hold:{hold}")),
        })
        .await;
        Ok(())
    }

    // ---- settlement, cancel, confirm, deny ----

    /// Settles every delayed transfer that is due: each is claimed with a lease by a
    /// conditional update (so several nodes may tick), posted in the ledger (which posts
    /// a hold at most once), then marked settled. Returns how many settled.
    pub async fn settle_due(&self) -> Result<u32, ApiError> {
        let now = self.now();
        let mut settled = 0;
        for id in self.0.store.due_holds(now, 200).await? {
            if !self.0.store.claim_hold(&id, now, now + LEASE_MICROS).await? {
                continue;
            }
            let tid = TransferId::from(uuid(&id));
            match self.0.ledger.post_pending(tid).await {
                Ok(_) | Err(LedgerError::PendingAlreadyPosted(_)) => {
                    if self.0.store.move_hold(&id, &["waiting"], "settled", now).await? {
                        settled += 1;
                    }
                }
                Err(LedgerError::PendingAlreadyVoided(_) | LedgerError::PendingExpired(_)) => {
                    self.0.store.move_hold(&id, &["waiting"], "cancelled", now).await?;
                }
                Err(e) => tracing::warn!(hold = %id, error = %e, "settling a delayed transfer failed; retried later"),
            }
        }
        Ok(settled)
    }

    async fn own_hold(&self, customer: Uuid, id: Uuid) -> Result<HoldRow, ApiError> {
        match self.0.store.hold(&id.to_string()).await? {
            Some(h) if h.customer_id == customer.to_string() => Ok(h),
            _ => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown-hold",
                "No such delayed or held operation",
            )
            .detail(format!("You have no delayed or held operation {id}."))),
        }
    }

    /// Cancels a delayed transfer before it settles; its hold is voided.
    pub async fn cancel(&self, customer: Uuid, id: Uuid) -> Result<HoldView, ApiError> {
        let hold = self.own_hold(customer, id).await?;
        let state_error = |state: &str| match state {
            "cancelled" => ApiError::conflict("transfer-already-cancelled", "The transfer was already cancelled"),
            "settled" => ApiError::conflict("transfer-already-settled", "The transfer has already settled")
                .detail("It can no longer be cancelled."),
            _ => ApiError::conflict("transfer-not-delayed", "The transfer is not a delayed transfer")
                .detail("Answer a held transfer with confirm or deny."),
        };
        if hold.kind != "delay" {
            return Err(state_error(""));
        }
        if hold.state != "waiting" {
            return Err(state_error(&hold.state));
        }
        let now = self.now();
        if !self.0.store.cancel_hold(&hold.id, now).await? {
            let again = self.own_hold(customer, id).await?;
            if again.state == "waiting" {
                return Err(
                    ApiError::conflict("transfer-settling", "The transfer is settling right now")
                        .detail("Look at it again in a minute."),
                );
            }
            return Err(state_error(&again.state));
        }
        match self.0.ledger.void_pending(TransferId::from(id)).await {
            Ok(_) | Err(LedgerError::PendingAlreadyVoided(_) | LedgerError::PendingExpired(_)) => {}
            Err(LedgerError::PendingAlreadyPosted(_)) => {
                self.0.store.move_hold(&hold.id, &["cancelled"], "settled", now).await?;
                return Err(state_error("settled"));
            }
            Err(e) => {
                // The void did not happen: let the timer own it again.
                self.0.store.move_hold(&hold.id, &["cancelled"], "waiting", now).await?;
                return Err(e.into());
            }
        }
        Ok(hold_view(&self.own_hold(customer, id).await?))
    }

    /// "Yes, it was me": a held transfer is posted, a held sign-in cleared, and the
    /// device trusted.
    pub async fn confirm(&self, customer: Uuid, id: Uuid) -> Result<HoldView, ApiError> {
        let hold = self.held(customer, id).await?;
        let now = self.now();
        if !self.0.store.move_hold(&hold.id, &["held"], "released", now).await? {
            return Err(already_answered());
        }
        if hold.kind == "anomaly" {
            match self.0.ledger.post_pending(TransferId::from(id)).await {
                Ok(_) | Err(LedgerError::PendingAlreadyPosted(_)) => {}
                Err(e) => {
                    self.0.store.move_hold(&hold.id, &["released"], "held", now).await?;
                    return Err(e.into());
                }
            }
        } else {
            self.0.store.clear_failures(customer).await?;
            self.changed(customer);
        }
        if let Some(row) = self.0.store.decision(uuid(&hold.decision_id)).await?
            && let Ok(inputs) = serde_json::from_str::<Inputs>(&row.inputs)
            && let Some(device) = inputs.device_id
        {
            self.0
                .store
                .touch_device(customer, &device, &fingerprint(customer, &device), now, true)
                .await?;
            self.changed(customer);
        }
        Ok(hold_view(&self.own_hold(customer, id).await?))
    }

    /// "No, it was not me": a held transfer is voided, the customer's transfers are
    /// frozen and a case is opened for risk officers.
    pub async fn deny(&self, customer: Uuid, id: Uuid) -> Result<HoldView, ApiError> {
        let hold = self.held(customer, id).await?;
        let now = self.now();
        if !self.0.store.move_hold(&hold.id, &["held"], "voided", now).await? {
            return Err(already_answered());
        }
        if hold.kind == "anomaly" {
            match self.0.ledger.void_pending(TransferId::from(id)).await {
                Ok(_) | Err(LedgerError::PendingAlreadyVoided(_) | LedgerError::PendingExpired(_)) => {}
                Err(e) => {
                    self.0.store.move_hold(&hold.id, &["voided"], "held", now).await?;
                    return Err(e.into());
                }
            }
        }
        let what = match hold.amount {
            Some(a) => format!("transfer of {}", yuan(a)),
            None => "sign-in activity".to_owned(),
        };
        let case = self
            .open_case(
                customer,
                Some(&hold.id),
                &hold.anomaly.clone().unwrap_or_else(|| hold.kind.clone()),
                &format!("Customer denied a held {what}; transfers frozen."),
            )
            .await?;
        self.deliver(NewMessage {
            customer_id: customer,
            kind: "security".into(),
            title: "We froze transfers to protect you".into(),
            body: format!(
                "Thank you for telling us. We stopped the {what} and froze transfers; a risk officer will contact you."
            ),
            link: None,
            data: serde_json::json!({ "case_id": case.id }),
            dedupe_key: Some(format!("risk-freeze:{}", hold.id)),
        })
        .await;
        Ok(hold_view(&self.own_hold(customer, id).await?))
    }

    async fn held(&self, customer: Uuid, id: Uuid) -> Result<HoldRow, ApiError> {
        let hold = self.own_hold(customer, id).await?;
        if hold.kind == "delay" {
            return Err(
                ApiError::conflict("hold-not-answerable", "This operation is delayed, not held")
                    .detail("Cancel a delayed transfer with POST /api/v1/transfers/{id}/cancel."),
            );
        }
        if hold.state != "held" {
            return Err(already_answered());
        }
        Ok(hold)
    }

    pub async fn holds(&self, customer: Uuid) -> Result<Vec<HoldView>, ApiError> {
        Ok(self.0.store.holds_of(customer).await?.iter().map(hold_view).collect())
    }

    // ---- sign-in ----

    /// Looks up a customer by the phone they sign in with.
    pub async fn customer_by_phone(&self, phone: &str) -> Option<Uuid> {
        let phone = Phone::parse(phone).ok()?;
        let row = self.0.identity.store().customer_by_phone(phone.as_str()).await.ok()??;
        Uuid::parse_str(&row.id).ok()
    }

    /// After a sign-in attempt: a failure is counted and a burst raises a "was this
    /// you?" hold; a success registers the device and place. Both are decided and stored.
    pub async fn after_sign_in(
        &self,
        customer: Uuid,
        ok: bool,
        channel: &str,
        raw: &RawContext,
    ) -> Result<(), ApiError> {
        let ctx = self.context(raw).unwrap_or_default();
        let now = self.now();
        if !ok {
            self.0.store.record_failure(customer, "sign_in", now).await?;
            self.changed(customer);
        }
        let (version, policy) = self.policy().await?;
        let (inputs, _) = self
            .gather(customer, Operation::SignIn, None, channel, &ctx, None, None, &policy)
            .await?;
        let decision = domain::decide(&inputs, &policy);
        // One burst, one hold: failures after it do not raise more.
        let burst = decision.anomaly == Some(Anomaly::FailedSignInBurst);
        let already = burst
            && self
                .0
                .store
                .holds_of(customer)
                .await?
                .iter()
                .any(|h| h.kind == "sign_in" && h.state == "held");
        let hold = (decision.anomaly.is_some() && !already && (ok || burst)).then(new_id);
        if !ok && hold.is_none() {
            return Ok(());
        }
        let id = new_id();
        let record = DecisionRecord {
            decision,
            settles_at: None,
        };
        let d = new_decision(customer, None, id, &inputs, &record, version)?;
        self.audit_decision(&d, &record).await;
        let fp = ctx.device_id.as_deref().map(|dev| fingerprint(customer, dev));
        let learned = if ok && hold.is_none() {
            Learned {
                hour: Some(policy.habit_hour(now) as i64),
                geo: ctx.geo,
                device: ctx.device_id.clone().zip(fp.clone()),
                ..Learned::default()
            }
        } else {
            Learned::default()
        };
        let hold_row = hold.map(|h| HoldRow {
            id: h.to_string(),
            customer_id: customer.to_string(),
            decision_id: id.to_string(),
            kind: "sign_in".into(),
            state: "held".into(),
            amount: None,
            anomaly: record.decision.anomaly.map(|a| a.as_str().to_owned()),
            due_at: None,
            lease_until: None,
            created_at: now,
            updated_at: now,
        });
        self.record(
            rs::Outcome {
                decision: d,
                learned,
                clean: false,
                hold: hold_row,
                replaces_step_up: false,
            },
            // The device and place must be known to the very next request.
            true,
        )
        .await?;
        if ok && hold.is_some() {
            // A sign-in from an impossible place still registers the device, untrusted.
            if let (Some(dev), Some(fp)) = (ctx.device_id.as_deref(), fp.as_deref()) {
                self.0.store.touch_device(customer, dev, fp, now, false).await?;
                self.changed(customer);
            }
        }
        if let Some(h) = hold {
            self.ask_was_this_you(customer, h, None, &record.decision).await?;
        }
        Ok(())
    }

    // ---- other operations ----

    /// Assesses a non-transfer operation (a wealth purchase, reporting a card lost) and
    /// stores the decision; the caller acts on it.
    pub async fn assess(
        &self,
        customer: Uuid,
        operation: Operation,
        amount: Option<i64>,
        channel: &str,
        raw: &RawContext,
    ) -> Result<DecisionView, ApiError> {
        if operation == Operation::SignIn || operation == Operation::Transfer {
            return Err(ApiError::invalid_field(
                "operation",
                "sign-ins and transfers are assessed on their own endpoints",
            ));
        }
        if amount.is_some_and(|a| a <= 0) {
            return Err(ApiError::invalid_field(
                "amount",
                "must be a positive number of minor units",
            ));
        }
        let ctx = self.context(raw)?;
        let (version, policy) = self.policy().await?;
        let (inputs, _) = self
            .gather(customer, operation, amount, channel, &ctx, None, None, &policy)
            .await?;
        let decision = domain::decide(&inputs, &policy);
        let id = new_id();
        let record = DecisionRecord {
            decision,
            settles_at: None,
        };
        self.store_decision(customer, None, id, &inputs, &record, version)
            .await?;
        let row = self
            .0
            .store
            .decision(id)
            .await?
            .ok_or_else(|| ApiError::internal("decision lost"))?;
        decision_view(&row)
    }

    // ---- devices and trust ----

    pub async fn devices(&self, customer: Uuid) -> Result<Vec<DeviceView>, ApiError> {
        Ok(self
            .0
            .store
            .devices(customer)
            .await?
            .into_iter()
            .map(|d| DeviceView {
                device_id: d.device_id,
                fingerprint: d.fingerprint,
                trusted: d.trusted != 0,
                first_seen: iso(d.first_seen),
                last_seen: iso(d.last_seen),
            })
            .collect())
    }

    /// Registers a device for a customer, as a sign-in on it does (in-process tools: the
    /// benchmark and the demo).
    pub async fn register_device(&self, customer: Uuid, device: &str, trusted: bool) -> Result<(), ApiError> {
        let device = domain::parse_device_id(device).map_err(|e| ApiError::invalid_field("device_id", e))?;
        self.0
            .store
            .touch_device(customer, &device, &fingerprint(customer, &device), self.now(), trusted)
            .await?;
        self.changed(customer);
        Ok(())
    }

    pub async fn untrust_device(&self, customer: Uuid, device: &str) -> Result<(), ApiError> {
        if self.0.store.untrust_device(customer, device).await? {
            self.changed(customer);
            Ok(())
        } else {
            Err(unknown_device(device))
        }
    }

    pub async fn remove_device(&self, customer: Uuid, device: &str) -> Result<(), ApiError> {
        if self.0.store.remove_device(customer, device).await? {
            self.changed(customer);
            Ok(())
        } else {
            Err(unknown_device(device))
        }
    }

    pub async fn trust(&self, customer: Uuid) -> Result<TrustView, ApiError> {
        let now = self.now();
        let profile = self.0.store.profile(customer).await?;
        let anomalies = self
            .0
            .store
            .recent_anomalies(customer, now - ANOMALY_MEMORY_DAYS * DAY_MICROS)
            .await?;
        let facts = trust_facts(
            &Facts {
                profile,
                recent_anomalies: anomalies,
                ..Facts::default()
            },
            now,
        );
        let level = domain::trust_level(&facts);
        let policy = self.policy().await?.1;
        let explanation = if facts.frozen {
            "Transfers are frozen while a risk officer looks into a case.".to_owned()
        } else {
            format!(
                "Level {level} of 4: {} days with us, {} smooth operations, {} confirmations passed, {} unusual events in 90 days.",
                facts.tenure_days, facts.clean_operations, facts.step_ups, facts.recent_anomalies
            )
        };
        Ok(TrustView {
            level,
            frictionless_limit: policy.frictionless_at(level),
            facts,
            explanation,
        })
    }

    // ---- decisions ----

    pub async fn decision(&self, id: Uuid) -> Result<DecisionView, ApiError> {
        decision_view(&self.decision_row(id).await?)
    }

    async fn decision_row(&self, id: Uuid) -> Result<DecisionRow, ApiError> {
        self.0.store.decision(id).await?.ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, "unknown-decision", "No such decision")
                .detail(format!("There is no risk decision {id}."))
        })
    }

    pub async fn decisions(
        &self,
        customer: Option<Uuid>,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<(Vec<DecisionView>, Option<String>), ApiError> {
        let limit = page_limit(limit)?;
        if let Some(c) = cursor
            && Uuid::parse_str(c).is_err()
        {
            return Err(ApiError::invalid_field("cursor", "not a cursor from this list"));
        }
        let rows = self.0.store.decisions(customer, cursor, limit).await?;
        let next = (rows.len() == limit as usize)
            .then(|| rows.last().map(|r| r.id.clone()))
            .flatten();
        Ok((rows.iter().map(decision_view).collect::<Result<_, _>>()?, next))
    }

    /// Runs a stored decision's inputs through the current policy or the one it was made
    /// under.
    pub async fn replay(&self, id: Uuid, against: &str) -> Result<ReplayView, ApiError> {
        let row = self.decision_row(id).await?;
        let (version, policy) = match against {
            "stored" => (row.policy_version, self.policy_version(row.policy_version).await?),
            "current" => {
                let (v, p) = self.policy().await?;
                (v, (*p).clone())
            }
            other => {
                return Err(ApiError::invalid_field(
                    "policy",
                    format!("must be \"stored\" or \"current\", got {other:?}"),
                ));
            }
        };
        let inputs: Inputs = serde_json::from_str(&row.inputs).map_err(ApiError::internal)?;
        let original: DecisionRecord = serde_json::from_str(&row.decision).map_err(ApiError::internal)?;
        let replayed = domain::decide(&inputs, &policy);
        Ok(ReplayView {
            decision_id: id,
            policy_version: version,
            same_outcome: replayed.outcome == original.decision.outcome && replayed.factor == original.decision.factor,
            original: original.decision,
            replayed,
        })
    }

    // ---- cases ----

    /// Freezes the customer's transfers and opens a case for risk officers.
    pub async fn open_case(
        &self,
        customer: Uuid,
        hold: Option<&str>,
        kind: &str,
        summary: &str,
    ) -> Result<CaseView, ApiError> {
        let now = self.now();
        let case = CaseRow {
            id: new_id().to_string(),
            customer_id: customer.to_string(),
            hold_id: hold.map(str::to_owned),
            kind: kind.to_owned(),
            state: "open".into(),
            assignee: None,
            summary: summary.to_owned(),
            resolution: None,
            created_at: now,
            updated_at: now,
        };
        self.0.store.freeze_and_open_case(&case).await?;
        self.changed(customer);
        Ok(case_view(&case, Vec::new()))
    }

    pub async fn cases(
        &self,
        state: Option<&str>,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<(Vec<CaseView>, Option<String>), ApiError> {
        let limit = page_limit(limit)?;
        if let Some(s) = state
            && !domain::CASE_STATES.contains(&s)
        {
            return Err(ApiError::invalid_field("state", "must be open or resolved"));
        }
        let rows = self.0.store.cases(state, cursor, limit).await?;
        let next = (rows.len() == limit as usize)
            .then(|| rows.last().map(|r| r.id.clone()))
            .flatten();
        Ok((rows.iter().map(|r| case_view(r, Vec::new())).collect(), next))
    }

    pub async fn case(&self, id: Uuid) -> Result<CaseView, ApiError> {
        let row = self.0.store.case(id).await?.ok_or_else(|| unknown_case(id))?;
        let notes = self.0.store.notes(id).await?;
        Ok(case_view(&row, notes))
    }

    pub async fn assign_case(&self, id: Uuid, assignee: Uuid) -> Result<CaseView, ApiError> {
        let row = self.0.store.case(id).await?.ok_or_else(|| unknown_case(id))?;
        if row.state != "open" {
            return Err(case_resolved());
        }
        self.0.identity.staff_user(assignee).await.map_err(|_| {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unknown-staff", "No such staff user")
                .detail(format!("There is no staff user {assignee}."))
                .with("field", "assignee")
        })?;
        if !self.0.store.assign_case(id, assignee, self.now()).await? {
            return Err(case_resolved());
        }
        self.case(id).await
    }

    pub async fn note_case(&self, id: Uuid, staff: Uuid, body: &str) -> Result<CaseView, ApiError> {
        let body = domain::parse_note("body", body).map_err(|(f, m)| ApiError::invalid_field(&f, m))?;
        self.0.store.case(id).await?.ok_or_else(|| unknown_case(id))?;
        self.0.store.add_note(id, staff, &body, self.now()).await?;
        self.case(id).await
    }

    /// Resolves a case with a resolution text; `unfreeze` lifts the customer's freeze.
    pub async fn resolve_case(
        &self,
        id: Uuid,
        staff: Uuid,
        resolution: &str,
        unfreeze: bool,
    ) -> Result<CaseView, ApiError> {
        let resolution =
            domain::parse_note("resolution", resolution).map_err(|(f, m)| ApiError::invalid_field(&f, m))?;
        let row = self.0.store.case(id).await?.ok_or_else(|| unknown_case(id))?;
        let now = self.now();
        if !self.0.store.resolve_case(id, &resolution, now).await? {
            return Err(case_resolved());
        }
        self.0
            .store
            .add_note(id, staff, &format!("Resolved: {resolution}"), now)
            .await?;
        if unfreeze {
            self.0.store.unfreeze(&row.customer_id).await?;
            self.changed(uuid(&row.customer_id));
        }
        self.case(id).await
    }

    /// Decision counts per outcome, for the benchmark and the demo.
    pub fn decide_in_memory(inputs: &Inputs, policy: &Policy) -> Decision {
        domain::decide(inputs, policy)
    }
}

/// What the gate has ahead of a transfer: the key's earlier decision and the customer's
/// stamp read from the database, or the version of a snapshot still fresh enough to use.
enum Ahead {
    Read(Option<Box<DecisionRow>>, i64),
    Cached(i64),
}

/// A decision, or the need to decide again on facts confirmed in the database.
enum Checked {
    Verdict(Verdict),
    Confirm,
}

impl Checked {
    fn done(self) -> Option<Verdict> {
        match self {
            Checked::Verdict(v) => Some(v),
            Checked::Confirm => None,
        }
    }

    /// The verdict of a decision on confirmed facts (which never asks to confirm).
    fn confirmed(self) -> Result<Verdict, ApiError> {
        self.done()
            .ok_or_else(|| ApiError::internal("a decision on confirmed facts asked to be confirmed"))
    }
}

impl TransferGate for RiskService {
    fn prepare<'a>(&'a self, customer: Uuid, idempotency_key: &'a str) -> BoxFuture<'a, Result<Prepared, ApiError>> {
        Box::pin(async move {
            if let Some(version) = self.0.facts.fresh(customer, self.now(), self.0.facts_max_age) {
                return Ok(Box::new(Ahead::Cached(version)) as Prepared);
            }
            let (decision, stamp) = self.0.store.decision_and_stamp(customer, idempotency_key).await?;
            Ok(Box::new(Ahead::Read(decision.map(Box::new), stamp)) as Prepared)
        })
    }

    fn check<'a>(
        &'a self,
        attempt: &'a TransferAttempt,
        prepared: Prepared,
    ) -> BoxFuture<'a, Result<Verdict, ApiError>> {
        Box::pin(async move {
            let ahead = *prepared
                .downcast::<Ahead>()
                .map_err(|_| ApiError::internal("the risk gate was handed another gate's read"))?;
            self.check_transfer(attempt, ahead).await
        })
    }

    fn done<'a>(
        &'a self,
        attempt: &'a TransferAttempt,
        verdict: &'a Verdict,
        transfer: Uuid,
        replayed: bool,
    ) -> BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(self.transfer_done(attempt, verdict, transfer, replayed))
    }
}

/// Devices, habits, payees, failed attempts, decisions with their inputs, holds and cases,
/// for the customer's export; erasure is [`RiskStore::erase`], after which this node also
/// forgets the facts it kept.
impl huoban_kit::personal::PersonalData for RiskService {
    fn section(&self) -> &'static str {
        "security"
    }

    fn export<'a>(
        &'a self,
        customer: Uuid,
    ) -> huoban_kit::personal::BoxFuture<'a, Result<serde_json::Value, ApiError>> {
        Box::pin(async move { Ok(self.0.store.export(customer).await?) })
    }

    fn erase<'a>(&'a self, customer: Uuid) -> huoban_kit::personal::BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(async move {
            self.0.store.erase(customer).await?;
            self.0.facts.forget(customer);
            Ok(())
        })
    }
}

/// The windows a decision at `now` counts recent failures, operations and anomalies in,
/// under `policy`.
fn windows(policy: &Policy, now: i64) -> Windows {
    Windows {
        failures_since: now - policy.failure_window_minutes * 60_000_000,
        operations_since: now - 3_600_000_000,
        anomalies_since: now - ANOMALY_MEMORY_DAYS * DAY_MICROS,
        operations_cap: policy.velocity_per_hour,
    }
}

fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(50),
        Some(l) if (1..=200).contains(&l) => Ok(l),
        Some(_) => Err(ApiError::invalid_field("limit", "must be 1 to 200")),
    }
}

/// The engine's inputs from an operation and the customer's facts.
fn inputs_from(
    facts: &Facts,
    op: Operation,
    amount: Option<i64>,
    now: i64,
    channel: &str,
    ctx: &Context,
    step_up: Option<Factor>,
) -> Inputs {
    let trust = domain::trust_level(&trust_facts(facts, now));
    let p = facts.profile.clone().unwrap_or_default();
    Inputs {
        operation: op,
        amount,
        at: now,
        channel: channel.to_owned(),
        device_id: ctx.device_id.clone(),
        device_known: facts.device.is_some(),
        device_trusted: facts.device.as_ref().is_some_and(|d| d.trusted != 0),
        ip: ctx.ip.clone(),
        geo: ctx.geo,
        last_geo: p.last_geo(),
        last_geo_at: p.last_geo_at,
        hour_counts: facts.hour_counts.clone(),
        amount_count: u32::try_from(p.amount_count).unwrap_or(u32::MAX),
        amount_mean: if p.amount_count > 0 {
            p.amount_sum / p.amount_count
        } else {
            0
        },
        amount_max: p.amount_max,
        payee_known: facts.payee_known,
        recent_failures: facts.recent_failures,
        recent_operations: facts.recent_operations,
        trust_level: trust,
        step_up,
    }
}

fn trust_facts(f: &Facts, now: i64) -> TrustFacts {
    let p = f.profile.clone().unwrap_or_default();
    TrustFacts {
        tenure_days: if f.profile.is_some() {
            (now - p.first_seen).max(0) / DAY_MICROS
        } else {
            0
        },
        clean_operations: u32::try_from(p.clean_ops).unwrap_or(u32::MAX),
        step_ups: u32::try_from(p.step_ups).unwrap_or(u32::MAX),
        recent_anomalies: f.recent_anomalies,
        frozen: p.is_frozen(),
    }
}

fn new_decision(
    customer: Uuid,
    key: Option<&str>,
    id: Uuid,
    inputs: &Inputs,
    record: &DecisionRecord,
    version: i64,
) -> Result<NewDecision, ApiError> {
    Ok(NewDecision {
        id,
        customer,
        operation: inputs.operation.as_str(),
        op_key: key.map(str::to_owned),
        outcome: record.decision.outcome.as_str(),
        factor: record.decision.factor.map(Factor::as_str),
        score: i64::from(record.decision.score),
        anomaly: record.decision.anomaly.map(Anomaly::as_str),
        policy_version: version,
        inputs: serde_json::to_string(inputs).map_err(ApiError::internal)?,
        decision: serde_json::to_string(record).map_err(ApiError::internal)?,
        at: inputs.at,
    })
}

/// Where to tell a waiting request that its outcome is durable (or why not).
type Reply = tokio::sync::oneshot::Sender<Result<(), String>>;

/// An outcome someone waits to see durable, and where to tell them.
type Urgent = (rs::Outcome, Reply);

/// The recorder's two queues: outcomes nobody waits for (plain allows) and outcomes a
/// request waits on (holds, delays).
#[derive(Debug)]
struct Recorder {
    quiet: tokio::sync::mpsc::UnboundedSender<rs::Outcome>,
    urgent: tokio::sync::mpsc::UnboundedSender<Urgent>,
}

/// How long outcomes nobody waits for may gather before they are written (a quick retry
/// of the same transfer is answered from `recent` meanwhile). Other nodes see a transfer
/// in the customer's facts once it is written.
const GATHER: std::time::Duration = std::time::Duration::from_millis(100);

/// Most outcomes written in one transaction.
const GROUP: usize = 512;

/// The group-commit recorder: outcomes queued while a transaction commits are written
/// together in the next one, in a fixed handful of statements, so risk checks cost one
/// commit per group of transfers, not one per transfer. Each caller that waits still
/// waits for its own outcome to be durable. Committed groups advance the in-memory facts
/// ([`FactsCache::written`]).
///
/// While a group gathers, the recorder listens only to the urgent queue: a plain allow
/// queued meanwhile wakes nobody (one wake per group, not one per transfer), and an
/// outcome someone waits for ends the gathering at once.
fn spawn_recorder(store: RiskStore, facts: Arc<FactsCache>, recent: Arc<Recent>) -> Recorder {
    let (quiet_tx, mut quiet) = tokio::sync::mpsc::unbounded_channel::<rs::Outcome>();
    let (urgent_tx, mut urgent) = tokio::sync::mpsc::unbounded_channel::<Urgent>();
    tokio::spawn(async move {
        loop {
            let mut group: Vec<(rs::Outcome, Option<Reply>)> = Vec::new();
            tokio::select! {
                biased;
                Some((o, r)) = urgent.recv() => group.push((o, Some(r))),
                Some(o) = quiet.recv() => {
                    group.push((o, None));
                    // Let the records of many transfers share one commit — unless a whole
                    // group is already queued (a backlog is written at once).
                    if quiet.len() + 1 < GROUP
                        && let Ok(Some((o, r))) = tokio::time::timeout(GATHER, urgent.recv()).await
                    {
                        group.push((o, Some(r)));
                    }
                }
                else => break,
            }
            while group.len() < GROUP {
                if let Ok((o, r)) = urgent.try_recv() {
                    group.push((o, Some(r)));
                } else if let Ok(o) = quiet.try_recv() {
                    group.push((o, None));
                } else {
                    break;
                }
            }
            write_group(&store, &facts, &recent, group).await;
        }
    });
    Recorder {
        quiet: quiet_tx,
        urgent: urgent_tx,
    }
}

/// Writes one group of outcomes, telling those who wait.
async fn write_group(store: &RiskStore, facts: &FactsCache, recent: &Recent, group: Vec<(rs::Outcome, Option<Reply>)>) {
    let (outcomes, replies): (Vec<rs::Outcome>, Vec<Option<Reply>>) = group.into_iter().unzip();
    // A group someone waits for is committed to the disk before they hear of it.
    let durable = replies.iter().any(Option::is_some);
    let result = store.record_outcomes(&outcomes, durable).await;
    // Written or not, these are no longer in flight: a retry reads the database.
    recent.forget(&outcomes);
    if let Ok(stamps) = result {
        written(facts, &outcomes, &stamps);
        for r in replies.into_iter().flatten() {
            let _ = r.send(Ok(()));
        }
        return;
    }
    // One bad outcome must not fail the others: write them one by one (replacing a
    // step-up decision a concurrent request stored for the same key meanwhile).
    for (mut o, reply) in outcomes.into_iter().zip(replies) {
        o.replaces_step_up = true;
        let result = store.record_outcomes(std::slice::from_ref(&o), reply.is_some()).await;
        match &result {
            Ok(stamps) => written(facts, std::slice::from_ref(&o), stamps),
            Err(e) => {
                tracing::warn!(decision = %o.decision.id, error = %e, "risk decision not recorded");
                facts.dropped(o.decision.customer, &[o.decision.id]);
            }
        }
        if let Some(r) = reply {
            let _ = r.send(result.map(|_| ()).map_err(|e| e.to_string()));
        }
    }
}

/// Allowed transfers whose record is still in the recorder's queue, by (customer, key).
#[derive(Debug, Default)]
struct Recent(Mutex<HashMap<(Uuid, String), Uuid>>);

impl Recent {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(Uuid, String), Uuid>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn forget(&self, outcomes: &[rs::Outcome]) {
        let mut map = self.lock();
        for o in outcomes {
            if let Some(key) = &o.decision.op_key {
                map.remove(&(o.decision.customer, key.clone()));
            }
        }
    }
}

/// Tells the facts cache which decisions of each customer a commit wrote, and the stamp it
/// left.
fn written(facts: &FactsCache, outcomes: &[rs::Outcome], stamps: &[(String, i64)]) {
    for (customer, version) in stamps {
        let Ok(id) = Uuid::parse_str(customer) else { continue };
        let decisions: Vec<Uuid> = outcomes
            .iter()
            .filter(|o| o.decision.customer == id)
            .map(|o| o.decision.id)
            .collect();
        facts.written(id, &decisions, *version);
    }
}

fn hold_reason(d: &Decision) -> String {
    d.reasons
        .iter()
        .filter(|r| r.points > 0)
        .map(|r| r.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

fn reasons_json(d: &Decision) -> serde_json::Value {
    serde_json::to_value(&d.reasons).unwrap_or(serde_json::Value::Null)
}

/// The step-up purpose a customer proves for a challenge (`POST /api/v1/step-up/challenges`
/// with this `purpose`); the token is then good for this one decision only.
pub fn step_up_purpose(challenge: &str) -> String {
    format!("risk-{challenge}")
}

fn step_up_required(challenge: Uuid, d: &Decision) -> ApiError {
    let factor = d.factor.map(Factor::as_str).unwrap_or("pin");
    ApiError::new(StatusCode::FORBIDDEN, "step-up-required", "Confirm it is you")
        .detail(format!(
            "Confirm with your {factor} and send the same request again with the X-Step-Up-Token header."
        ))
        .with("factor", factor)
        .with("challenge", challenge.to_string())
        .with("purpose", step_up_purpose(&challenge.to_string()))
        .with("reasons", reasons_json(d))
}

fn denied(id: Uuid, d: &Decision) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "risk-denied",
        "The operation was refused for your safety",
    )
    .detail(hold_reason(d))
    .with("decision", id.to_string())
    .with("reasons", reasons_json(d))
}

fn account_frozen() -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "account-frozen", "Transfers are frozen")
        .detail("Transfers are frozen while a risk officer looks into a case; they will contact you.")
}

fn already_answered() -> ApiError {
    ApiError::conflict("hold-already-answered", "This hold was already answered")
}

fn unknown_device(device: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "unknown-device", "No such device")
        .detail(format!("You have no device {device:?}."))
}

fn unknown_case(id: Uuid) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "unknown-case", "No such case").detail(format!("There is no case {id}."))
}

fn case_resolved() -> ApiError {
    ApiError::conflict("case-resolved", "The case is already resolved")
}

fn hold_view(h: &HoldRow) -> HoldView {
    HoldView {
        id: uuid(&h.id),
        kind: h.kind.clone(),
        state: HoldState::parse(&h.state).unwrap_or(HoldState::Held),
        amount: h.amount,
        anomaly: h.anomaly.clone(),
        decision_id: uuid(&h.decision_id),
        settles_at: h.due_at.map(iso),
        created_at: iso(h.created_at),
    }
}

fn decision_view(r: &DecisionRow) -> Result<DecisionView, ApiError> {
    let record: DecisionRecord = serde_json::from_str(&r.decision).map_err(ApiError::internal)?;
    Ok(DecisionView {
        id: uuid(&r.id),
        customer_id: uuid(&r.customer_id),
        operation: r.operation.clone(),
        outcome: r.outcome.clone(),
        factor: r.factor.clone(),
        score: r.score,
        anomaly: r.anomaly.clone(),
        policy_version: r.policy_version,
        decision: record.decision,
        inputs: serde_json::from_str(&r.inputs).map_err(ApiError::internal)?,
        created_at: iso(r.created_at),
    })
}

fn case_view(r: &CaseRow, notes: Vec<NoteRow>) -> CaseView {
    CaseView {
        id: uuid(&r.id),
        customer_id: uuid(&r.customer_id),
        hold_id: r.hold_id.as_deref().map(uuid),
        kind: r.kind.clone(),
        state: r.state.clone(),
        assignee: r.assignee.as_deref().map(uuid),
        summary: r.summary.clone(),
        resolution: r.resolution.clone(),
        notes: notes
            .into_iter()
            .map(|n| NoteView {
                id: uuid(&n.id),
                staff_id: uuid(&n.staff_id),
                body: n.body,
                created_at: iso(n.created_at),
            })
            .collect(),
        created_at: iso(r.created_at),
        updated_at: iso(r.updated_at),
    }
}
