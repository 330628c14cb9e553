//! The seam through which another capability (adaptive security, `crates/risk`) checks
//! transfers before they move value. Accounts knows nothing of the rules: it hands over
//! the attempt with the request's raw context headers and obeys the verdict — post now,
//! or create a ledger hold (pending transfer) that the gate settles later. Without a gate
//! every transfer posts at once.

use std::{any::Any, fmt::Debug, future::Future, pin::Pin};

use huoban_kit::ApiError;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The request's context as sent; the gate parses and validates it.
#[derive(Debug, Clone, Default)]
pub struct RawContext {
    /// `X-Device-Id`.
    pub device_id: Option<String>,
    /// `X-Geo`: `"lat,lon"`.
    pub geo: Option<String>,
    /// `X-Forwarded-For`.
    pub forwarded_for: Option<String>,
    /// `X-Step-Up-Token`.
    pub step_up_token: Option<String>,
}

/// A transfer about to be made.
#[derive(Debug, Clone)]
pub struct TransferAttempt {
    pub customer: Uuid,
    pub channel: String,
    pub idempotency_key: String,
    /// Minor units.
    pub amount: i64,
    pub currency: String,
    pub from_account: Uuid,
    pub to_account: Uuid,
    pub context: RawContext,
}

/// How the transfer may go ahead. Refusals (step-up required, denied, frozen) are errors.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Post it now.
    Allow { decision: Uuid },
    /// Hold it in the ledger; it settles at `settles_at` unless cancelled.
    Delay { decision: Uuid, settles_at: Timestamp },
    /// Hold it in the ledger until the customer confirms it was them.
    Hold { decision: Uuid, reason: String },
}

/// What the transfer's answer says about its risk handling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TransferRisk {
    /// The risk decision's id.
    pub decision: Uuid,
    /// `delayed` (settles at `settles_at`, cancellable until then) or `held` (waits for
    /// your "was this you?" answer).
    pub handling: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settles_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Verdict {
    pub fn view(&self) -> Option<TransferRisk> {
        match self {
            Verdict::Allow { .. } => None,
            Verdict::Delay { decision, settles_at } => Some(TransferRisk {
                decision: *decision,
                handling: "delayed".to_owned(),
                settles_at: Some(settles_at.to_string()),
                reason: None,
            }),
            Verdict::Hold { decision, reason } => Some(TransferRisk {
                decision: *decision,
                handling: "held".to_owned(),
                settles_at: None,
                reason: Some(reason.clone()),
            }),
        }
    }
}

/// What a gate read ahead for one transfer ([`TransferGate::prepare`]), handed back to its
/// [`TransferGate::check`]; accounts never looks inside.
pub type Prepared = Box<dyn Any + Send>;

/// The checks a transfer passes through.
pub trait TransferGate: Send + Sync + Debug {
    /// Reads ahead what the check will need about the customer and this request, while
    /// accounts resolves the transfer's accounts (so the gate's read costs no time of its
    /// own on the request's path). Called once per transfer, before [`Self::check`].
    fn prepare<'a>(&'a self, customer: Uuid, idempotency_key: &'a str) -> BoxFuture<'a, Result<Prepared, ApiError>>;
    /// Decides before anything moves, with what `prepare` read. Errors are answered as
    /// they are.
    fn check<'a>(
        &'a self,
        attempt: &'a TransferAttempt,
        prepared: Prepared,
    ) -> BoxFuture<'a, Result<Verdict, ApiError>>;
    /// Told once the ledger took the transfer (`transfer` is its id; `replayed` when the
    /// ledger answered an earlier identical request).
    fn done<'a>(
        &'a self,
        attempt: &'a TransferAttempt,
        verdict: &'a Verdict,
        transfer: Uuid,
        replayed: bool,
    ) -> BoxFuture<'a, Result<(), ApiError>>;
}
