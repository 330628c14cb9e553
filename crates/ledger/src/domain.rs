//! The ledger's rules, with no SQL and no IO: what an account, a transfer and a balance
//! are, how a transfer request is checked, and how a balance moves under a posting, a
//! hold (pending transfer), its post and its void — all in checked `i64` arithmetic.
//!
//! ## The model
//! A transfer is a list of **legs**; each leg moves a positive [`Amount`] from the account
//! it *debits* to the account it *credits*, in the transfer's single [`Unit`]. Legs are
//! balanced by construction, so a transfer can never be unbalanced. Each posted leg is
//! stored as two signed *entries* (`-amount` on the debited account, `+amount` on the
//! credited one), which is what sums to zero per unit over the whole ledger.
//!
//! An account's balance is the sum of its entries (`posted`); holds add `pending_out` on
//! debited accounts and `pending_in` on credited ones. What an account can spend is
//! `available = posted - pending_out`. Limits: unless `allow_negative`, `available`
//! never goes below zero; with `max_balance`, `posted + pending_in` never goes above it.
//! Limits are checked in the direction a balance moves only, so an account can always be
//! drained even if it sits above a limit.

use std::{collections::BTreeMap, fmt, str::FromStr};

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::LedgerError;

/// Most legs one transfer may carry: enough for splits and fees, small enough that one
/// transfer cannot monopolise a batch.
pub const MAX_LEGS: usize = 64;
/// Longest text accepted for keys, owner ids, categories and the like.
pub const MAX_TEXT: usize = 255;

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &[$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = LedgerError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(LedgerError::InvalidInput(format!(
                        concat!("unknown ", stringify!($name), " {:?}"),
                        other
                    ))),
                }
            }
        }
    };
}

text_enum!(
    /// What an account counts: `CNY` in fen, or loyalty points.
    Unit { Cny => "CNY", Points => "POINTS" }
);
text_enum!(
    /// Who an account belongs to.
    OwnerKind { Customer => "customer", Campaign => "campaign", Bank => "bank" }
);
text_enum!(
    /// What an account is for. Only `points` and the money types constrain the unit.
    AccountType {
        Current => "current",
        Savings => "savings",
        GoalPocket => "goal_pocket",
        Points => "points",
        Budget => "budget",
        Clearing => "clearing",
    }
);
text_enum!(
    /// Where a transfer is in its life. A direct transfer is born `posted`; a two-phase
    /// one is born `pending` and ends `posted` or `voided`.
    TransferStatus { Pending => "pending", Posted => "posted", Voided => "voided" }
);
text_enum!(
    /// Why a pending transfer was voided.
    VoidReason { Voided => "voided", Expired => "expired" }
);
text_enum!(
    /// Which side of a leg an entry is on: a debit takes value out of the account, a
    /// credit brings value in.
    Direction { Debit => "debit", Credit => "credit" }
);

macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident, $what:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            pub fn new() -> Self {
                Self(huoban_kit::ids::new_id())
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // Hyphenated lowercase: the stored TEXT form, which sorts like the UUIDv7 time.
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = LedgerError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s)
                    .map(Self)
                    .map_err(|_| LedgerError::InvalidInput(format!(concat!($what, " id {:?} is not a UUID"), s)))
            }
        }
    };
}

uuid_id!(
    /// An account's id (UUIDv7).
    AccountId,
    "account"
);
uuid_id!(
    /// A transfer's id (UUIDv7); a pending transfer keeps its id when posted or voided.
    TransferId,
    "transfer"
);

/// A positive quantity of minor units (fen or points). Zero and negative amounts cannot
/// be built, so a leg always moves something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Amount(i64);

impl Amount {
    pub fn new(minor_units: i64) -> Result<Self, LedgerError> {
        if minor_units > 0 {
            Ok(Self(minor_units))
        } else {
            Err(LedgerError::InvalidAmount(minor_units))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Amount::new(i64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

fn check_text(field: &str, value: &str) -> Result<(), LedgerError> {
    if value.is_empty() || value.len() > MAX_TEXT || value.chars().any(char::is_control) {
        return Err(LedgerError::InvalidInput(format!(
            "{field} must be 1 to {MAX_TEXT} bytes without control characters"
        )));
    }
    Ok(())
}

/// The account holder: a customer, a campaign or the bank itself, with the id the owning
/// capability knows it by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawOwner")]
pub struct Owner {
    pub kind: OwnerKind,
    pub id: String,
}

/// The unchecked wire form: deserializing goes through [`Owner::new`].
#[derive(Deserialize)]
struct RawOwner {
    kind: OwnerKind,
    id: String,
}

impl TryFrom<RawOwner> for Owner {
    type Error = LedgerError;

    fn try_from(raw: RawOwner) -> Result<Self, Self::Error> {
        Owner::new(raw.kind, raw.id)
    }
}

impl Owner {
    pub fn new(kind: OwnerKind, id: impl Into<String>) -> Result<Self, LedgerError> {
        let id = id.into();
        check_text("owner id", &id)?;
        Ok(Self { kind, id })
    }
}

/// Balance limits, fixed when the account is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Limits {
    /// Clearing, budget and bank accounts that issue value may go below zero.
    pub allow_negative: bool,
    /// Highest `posted + pending_in` the account may reach (a wallet cap, a pocket's goal).
    pub max_balance: Option<i64>,
}

/// What to open. `external_ref`, when given, makes opening idempotent: opening the same
/// reference again returns the existing account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAccount {
    pub unit: Unit,
    pub owner: Owner,
    pub account_type: AccountType,
    pub limits: Limits,
    pub label: Option<String>,
    pub external_ref: Option<String>,
}

impl NewAccount {
    pub fn new(unit: Unit, owner: Owner, account_type: AccountType) -> Self {
        Self {
            unit,
            owner,
            account_type,
            limits: Limits::default(),
            label: None,
            external_ref: None,
        }
    }

    pub fn allow_negative(mut self) -> Self {
        self.limits.allow_negative = true;
        self
    }

    pub fn max_balance(mut self, max: i64) -> Self {
        self.limits.max_balance = Some(max);
        self
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub fn external_ref(mut self, reference: impl Into<String>) -> Self {
        self.external_ref = Some(reference.into());
        self
    }

    /// Refuses accounts that could never be used consistently.
    pub fn validate(&self) -> Result<(), LedgerError> {
        let unit_fits = match self.account_type {
            AccountType::Points => self.unit == Unit::Points,
            AccountType::Current | AccountType::Savings | AccountType::GoalPocket => self.unit == Unit::Cny,
            AccountType::Budget | AccountType::Clearing => true,
        };
        if !unit_fits {
            return Err(LedgerError::InvalidAccount(format!(
                "a {} account cannot hold {}",
                self.account_type, self.unit
            )));
        }
        if let Some(max) = self.limits.max_balance
            && max < 0
        {
            return Err(LedgerError::InvalidAccount("max_balance must not be negative".into()));
        }
        if let Some(label) = &self.label {
            check_text("label", label).map_err(|e| LedgerError::InvalidAccount(e.to_string()))?;
        }
        if let Some(reference) = &self.external_ref {
            check_text("external_ref", reference).map_err(|e| LedgerError::InvalidAccount(e.to_string()))?;
        }
        check_text("owner id", &self.owner.id).map_err(|e| LedgerError::InvalidAccount(e.to_string()))
    }
}

/// An account's stored balances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Balance {
    /// Sum of the account's posted entries.
    pub posted: i64,
    /// Held by pending transfers that debit the account.
    pub pending_out: i64,
    /// Promised by pending transfers that credit the account.
    pub pending_in: i64,
}

impl Balance {
    /// What the account can spend now. Wider than `i64` because an overdrawn account with
    /// holds could underflow it.
    pub fn available(&self) -> i128 {
        i128::from(self.posted) - i128::from(self.pending_out)
    }

    fn ceiling_use(&self) -> i128 {
        i128::from(self.posted) + i128::from(self.pending_in)
    }
}

/// An opened account as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    pub id: AccountId,
    pub unit: Unit,
    pub owner: Owner,
    pub account_type: AccountType,
    pub limits: Limits,
    pub label: Option<String>,
    pub external_ref: Option<String>,
    pub balance: Balance,
    pub created_at: Timestamp,
}

impl Account {
    /// Whether `new` describes this account (for idempotent opening by reference).
    pub fn matches(&self, new: &NewAccount) -> bool {
        self.unit == new.unit
            && self.owner == new.owner
            && self.account_type == new.account_type
            && self.limits == new.limits
            && self.label == new.label
            && self.external_ref == new.external_ref
    }
}

/// One movement of value between two different accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leg {
    pub debit: AccountId,
    pub credit: AccountId,
    pub amount: Amount,
    /// The leg's unit when it is not the transfer's: one posted transfer may move several
    /// units at once (points out of a customer's points account and money into their goal
    /// pocket), all or nothing. Both accounts of a leg hold its unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<Unit>,
}

impl Leg {
    pub fn new(debit: AccountId, credit: AccountId, amount: Amount) -> Self {
        Self {
            debit,
            credit,
            amount,
            unit: None,
        }
    }

    /// A leg in `unit`, which may differ from its transfer's.
    pub fn in_unit(unit: Unit, debit: AccountId, credit: AccountId, amount: Amount) -> Self {
        Self {
            unit: Some(unit),
            ..Self::new(debit, credit, amount)
        }
    }

    /// The unit this leg moves, given its transfer's.
    pub fn unit_in(&self, transfer_unit: Unit) -> Unit {
        self.unit.unwrap_or(transfer_unit)
    }
}

/// The client's idempotency key, scoped (e.g. by the initiating principal) so that two
/// callers can never collide.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawKey")]
pub struct IdempotencyKey {
    scope: String,
    key: String,
}

/// The unchecked wire form: deserializing goes through [`IdempotencyKey::new`].
#[derive(Deserialize)]
struct RawKey {
    scope: String,
    key: String,
}

impl TryFrom<RawKey> for IdempotencyKey {
    type Error = LedgerError;

    fn try_from(raw: RawKey) -> Result<Self, Self::Error> {
        IdempotencyKey::new(raw.scope, raw.key)
    }
}

impl IdempotencyKey {
    pub fn new(scope: impl Into<String>, key: impl Into<String>) -> Result<Self, LedgerError> {
        let (scope, key) = (scope.into(), key.into());
        check_text("idempotency scope", &scope)?;
        if key.is_empty() || key.len() > MAX_TEXT || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(LedgerError::InvalidInput(format!(
                "idempotency key must be 1 to {MAX_TEXT} visible ASCII characters"
            )));
        }
        Ok(Self { scope, key })
    }

    pub fn scope(&self) -> &str {
        &self.scope
    }

    pub fn key(&self) -> &str {
        &self.key
    }
}

/// Descriptive data carried by a transfer; never interpreted by the ledger except
/// `merchant_category`, which statements group spending by.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TransferMeta {
    pub description: Option<String>,
    pub merchant_category: Option<String>,
    pub channel: Option<String>,
    /// The behaviour event that caused this transfer, if any.
    pub event_id: Option<String>,
    /// Free JSON.
    pub metadata: Option<serde_json::Value>,
}

/// A request to move value. `transfer` posts it at once; `create_pending` holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransferRequest {
    pub key: IdempotencyKey,
    pub unit: Unit,
    pub legs: Vec<Leg>,
    #[serde(default)]
    pub meta: TransferMeta,
}

impl TransferRequest {
    /// The common case: one leg from `debit` to `credit`.
    pub fn single(key: IdempotencyKey, unit: Unit, debit: AccountId, credit: AccountId, amount: Amount) -> Self {
        Self {
            key,
            unit,
            legs: vec![Leg::new(debit, credit, amount)],
            meta: TransferMeta::default(),
        }
    }

    pub fn with_meta(mut self, meta: TransferMeta) -> Self {
        self.meta = meta;
        self
    }
}

/// How a request is to be applied; part of the idempotency hash, so a key used for a
/// direct transfer cannot be replayed as a hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Post,
    Hold { expires_after: Option<SignedDuration> },
}

/// What one transfer does to one account, gross in both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Movement {
    pub out: i64,
    pub r#in: i64,
}

impl Movement {
    /// `in - out`, the change a posting makes to `posted`.
    pub fn net(&self) -> Result<i64, LedgerError> {
        self.r#in.checked_sub(self.out).ok_or(LedgerError::AmountOverflow)
    }
}

/// A request that passed every check needing no database: the per-account movements and
/// the hash that identifies its content for idempotency.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedTransfer {
    pub request: TransferRequest,
    pub mode: Mode,
    pub movements: BTreeMap<AccountId, Movement>,
    /// The unit each touched account must hold.
    pub units: BTreeMap<AccountId, Unit>,
    pub request_hash: String,
}

/// Checks the shape of a request and sums its legs per account.
pub fn check_transfer(request: TransferRequest, mode: Mode) -> Result<CheckedTransfer, LedgerError> {
    if request.legs.is_empty() {
        return Err(LedgerError::InvalidTransfer("a transfer needs at least one leg".into()));
    }
    if request.legs.len() > MAX_LEGS {
        return Err(LedgerError::InvalidTransfer(format!(
            "a transfer has at most {MAX_LEGS} legs"
        )));
    }
    if let Mode::Hold {
        expires_after: Some(after),
    } = mode
        && (after <= SignedDuration::ZERO || after > SignedDuration::from_hours(24 * 366))
    {
        return Err(LedgerError::InvalidTransfer(
            "a hold's expiry must be positive and at most a year ahead".into(),
        ));
    }
    let meta = &request.meta;
    for (field, value) in [
        ("description", &meta.description),
        ("merchant_category", &meta.merchant_category),
        ("channel", &meta.channel),
        ("event_id", &meta.event_id),
    ] {
        if let Some(v) = value {
            if field == "description" {
                if v.len() > 1024 {
                    return Err(LedgerError::InvalidTransfer(
                        "description is longer than 1024 bytes".into(),
                    ));
                }
            } else {
                check_text(field, v).map_err(|e| LedgerError::InvalidTransfer(e.to_string()))?;
            }
        }
    }
    if let Some(m) = &meta.metadata
        && m.to_string().len() > 16 * 1024
    {
        return Err(LedgerError::InvalidTransfer("metadata is larger than 16 KiB".into()));
    }

    let mut movements: BTreeMap<AccountId, Movement> = BTreeMap::new();
    let mut units: BTreeMap<AccountId, Unit> = BTreeMap::new();
    for leg in &request.legs {
        if leg.debit == leg.credit {
            return Err(LedgerError::SameAccount(leg.debit.to_string()));
        }
        let unit = leg.unit_in(request.unit);
        if unit != request.unit && matches!(mode, Mode::Hold { .. }) {
            return Err(LedgerError::InvalidTransfer("a hold moves one unit only".into()));
        }
        for account in [leg.debit, leg.credit] {
            if *units.entry(account).or_insert(unit) != unit {
                return Err(LedgerError::InvalidTransfer(format!(
                    "account {account} appears in legs of two units"
                )));
            }
        }
        let out = movements.entry(leg.debit).or_default();
        out.out = out
            .out
            .checked_add(leg.amount.get())
            .ok_or(LedgerError::AmountOverflow)?;
        let into = movements.entry(leg.credit).or_default();
        into.r#in = into
            .r#in
            .checked_add(leg.amount.get())
            .ok_or(LedgerError::AmountOverflow)?;
    }
    for m in movements.values() {
        m.net()?;
    }
    let request_hash = request_hash(&request, mode);
    Ok(CheckedTransfer {
        request,
        mode,
        movements,
        units,
        request_hash,
    })
}

/// SHA-256 over a canonical JSON form of everything that defines the request except its
/// key (as Formance Ledger does): a retry must hash the same, any change must not.
/// `serde_json` objects are ordered maps here (no `preserve_order`), so metadata key
/// order does not matter.
pub fn request_hash(request: &TransferRequest, mode: Mode) -> String {
    // A leg in the transfer's own unit hashes as it always has, so stored hashes stay valid.
    let legs: Vec<serde_json::Value> = request
        .legs
        .iter()
        .map(|l| match l.unit.filter(|u| *u != request.unit) {
            None => serde_json::json!([l.debit.to_string(), l.credit.to_string(), l.amount.get()]),
            Some(u) => serde_json::json!([l.debit.to_string(), l.credit.to_string(), l.amount.get(), u.as_str()]),
        })
        .collect();
    let (hold, expires_after) = match mode {
        Mode::Post => (false, None),
        Mode::Hold { expires_after } => (true, expires_after.map(|d| d.as_micros())),
    };
    let canonical = serde_json::json!({
        "v": 1,
        "unit": request.unit.as_str(),
        "legs": legs,
        "hold": hold,
        "expires_after_us": expires_after.map(|d| d.to_string()),
        "description": request.meta.description,
        "merchant_category": request.meta.merchant_category,
        "channel": request.meta.channel,
        "event_id": request.meta.event_id,
        "metadata": request.meta.metadata,
    });
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

/// An account as the rules see it while a batch is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountState {
    pub id: AccountId,
    pub unit: Unit,
    pub limits: Limits,
    pub balance: Balance,
}

fn fit(value: i128) -> Result<i64, LedgerError> {
    i64::try_from(value).map_err(|_| LedgerError::AmountOverflow)
}

impl AccountState {
    pub fn check_unit(&self, unit: Unit) -> Result<(), LedgerError> {
        if self.unit == unit {
            Ok(())
        } else {
            Err(LedgerError::UnitMismatch {
                account: self.id.to_string(),
                expected: unit,
                actual: self.unit,
            })
        }
    }

    fn insufficient(&self, requested: i64) -> LedgerError {
        LedgerError::InsufficientFunds {
            account: self.id.to_string(),
            available: fit(self.balance.available()).unwrap_or(i64::MIN),
            requested,
        }
    }

    fn over_limit(&self, max: i64, requested: i64) -> LedgerError {
        LedgerError::LimitExceeded {
            account: self.id.to_string(),
            max_balance: max,
            requested,
        }
    }

    /// Posts a movement: `posted += in - out`, refused if that breaks a limit in the
    /// direction the balance moves.
    pub fn post(&self, m: Movement) -> Result<Balance, LedgerError> {
        let net = m.net()?;
        let next = Balance {
            posted: self
                .balance
                .posted
                .checked_add(net)
                .ok_or(LedgerError::AmountOverflow)?,
            ..self.balance
        };
        if net < 0 && !self.limits.allow_negative && next.available() < 0 {
            return Err(self.insufficient(-net));
        }
        if net > 0
            && let Some(max) = self.limits.max_balance
            && next.ceiling_use() > i128::from(max)
        {
            return Err(self.over_limit(max, net));
        }
        Ok(next)
    }

    /// Holds a movement: the outgoing part is no longer available, the incoming part
    /// counts against the ceiling. Gross amounts are held both ways (an account debited
    /// and credited by one hold must cover the debit), which is the conservative choice.
    pub fn hold(&self, m: Movement) -> Result<Balance, LedgerError> {
        let next = Balance {
            pending_out: self
                .balance
                .pending_out
                .checked_add(m.out)
                .ok_or(LedgerError::AmountOverflow)?,
            pending_in: self
                .balance
                .pending_in
                .checked_add(m.r#in)
                .ok_or(LedgerError::AmountOverflow)?,
            ..self.balance
        };
        if m.out > 0 && !self.limits.allow_negative && next.available() < 0 {
            return Err(self.insufficient(m.out));
        }
        if m.r#in > 0
            && let Some(max) = self.limits.max_balance
            && next.ceiling_use() > i128::from(max)
        {
            return Err(self.over_limit(max, m.r#in));
        }
        Ok(next)
    }

    /// Releases a hold (void or expiry). Going below zero would mean the stored balances
    /// no longer match the holds: a bug, reported as such.
    pub fn release(&self, m: Movement) -> Result<Balance, LedgerError> {
        let pending_out = self.balance.pending_out - m.out;
        let pending_in = self.balance.pending_in - m.r#in;
        if pending_out < 0 || pending_in < 0 {
            return Err(LedgerError::Inconsistent(format!(
                "account {} holds less than the hold being released",
                self.id
            )));
        }
        Ok(Balance {
            pending_out,
            pending_in,
            ..self.balance
        })
    }

    /// Posts a held movement: release, then post. The hold guaranteed room, so this only
    /// fails if the stored state was already wrong.
    pub fn post_held(&self, m: Movement) -> Result<Balance, LedgerError> {
        let released = AccountState {
            balance: self.release(m)?,
            ..*self
        };
        released.post(m)
    }

    /// Whether the stored balance respects the account's limits (the invariant check).
    pub fn within_limits(&self) -> bool {
        let b = &self.balance;
        b.pending_out >= 0
            && b.pending_in >= 0
            && (self.limits.allow_negative || b.available() >= 0)
            && self
                .limits
                .max_balance
                .is_none_or(|max| b.ceiling_use() <= i128::from(max))
    }
}

/// The effect of a transfer on every account it touches, all or nothing.
pub fn apply_movements(
    accounts: &BTreeMap<AccountId, AccountState>,
    movements: &BTreeMap<AccountId, Movement>,
    unit: Unit,
    step: impl Fn(&AccountState, Movement) -> Result<Balance, LedgerError>,
) -> Result<Vec<(AccountId, Balance)>, LedgerError> {
    apply_movements_in(accounts, movements, &BTreeMap::new(), unit, step)
}

/// [`apply_movements`] where accounts listed in `units` must hold that unit instead of
/// `unit` (the legs of a transfer that moves several units).
pub fn apply_movements_in(
    accounts: &BTreeMap<AccountId, AccountState>,
    movements: &BTreeMap<AccountId, Movement>,
    units: &BTreeMap<AccountId, Unit>,
    unit: Unit,
    step: impl Fn(&AccountState, Movement) -> Result<Balance, LedgerError>,
) -> Result<Vec<(AccountId, Balance)>, LedgerError> {
    // Existence and unit first, so that the error names the first real problem rather
    // than a balance on an account that should never have been touched.
    for id in movements.keys() {
        accounts
            .get(id)
            .ok_or_else(|| LedgerError::UnknownAccount(id.to_string()))?
            .check_unit(units.get(id).copied().unwrap_or(unit))?;
    }
    movements
        .iter()
        .map(|(id, m)| {
            let state = &accounts[id];
            step(state, *m).map(|b| (*id, b))
        })
        .collect()
}

/// A stored transfer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transfer {
    pub id: TransferId,
    pub key: IdempotencyKey,
    pub unit: Unit,
    pub legs: Vec<Leg>,
    pub status: TransferStatus,
    /// Whether it was created as a hold (two-phase).
    pub two_phase: bool,
    pub void_reason: Option<VoidReason>,
    pub meta: TransferMeta,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub posted_at: Option<Timestamp>,
    pub voided_at: Option<Timestamp>,
}

impl Transfer {
    /// Per-account movements of this transfer's legs.
    pub fn movements(&self) -> Result<BTreeMap<AccountId, Movement>, LedgerError> {
        let mut movements: BTreeMap<AccountId, Movement> = BTreeMap::new();
        for leg in &self.legs {
            let out = movements.entry(leg.debit).or_default();
            out.out = out
                .out
                .checked_add(leg.amount.get())
                .ok_or(LedgerError::AmountOverflow)?;
            let into = movements.entry(leg.credit).or_default();
            into.r#in = into
                .r#in
                .checked_add(leg.amount.get())
                .ok_or(LedgerError::AmountOverflow)?;
        }
        Ok(movements)
    }

    /// Whether a pending transfer may still be posted or voided at `now`, and if not,
    /// the error that says why.
    pub fn check_open(&self, now: Timestamp, posting: bool) -> Result<(), LedgerError> {
        let id = self.id.to_string();
        if !self.two_phase {
            return Err(LedgerError::PendingNotFound(id));
        }
        match (self.status, self.void_reason) {
            (TransferStatus::Posted, _) => Err(LedgerError::PendingAlreadyPosted(id)),
            (TransferStatus::Voided, Some(VoidReason::Expired)) => Err(LedgerError::PendingExpired(id)),
            (TransferStatus::Voided, _) => Err(LedgerError::PendingAlreadyVoided(id)),
            (TransferStatus::Pending, _) => {
                // A hold past its expiry can no longer be posted even before the sweeper
                // has voided it; voiding it early is harmless and allowed.
                if posting && self.expires_at.is_some_and(|at| at <= now) {
                    Err(LedgerError::PendingExpired(id))
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// The answer to a transfer or hold request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransferOutcome {
    pub transfer: Transfer,
    /// True when the key had been used for the same request before and nothing moved now.
    pub replayed: bool,
}

/// One side of a posted leg as the account sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Posting {
    /// Sortable id; the pagination cursor.
    pub id: String,
    pub account_id: AccountId,
    pub transfer_id: TransferId,
    pub leg: i64,
    pub direction: Direction,
    /// Positive size of the movement; `direction` says which way.
    pub amount: i64,
    pub unit: Unit,
    pub at: Timestamp,
    pub merchant_category: Option<String>,
    pub description: Option<String>,
    pub channel: Option<String>,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn key() -> IdempotencyKey {
        IdempotencyKey::new("test", "k1").expect("key")
    }

    fn state(posted: i64, limits: Limits) -> AccountState {
        AccountState {
            id: AccountId::new(),
            unit: Unit::Cny,
            limits,
            balance: Balance {
                posted,
                ..Balance::default()
            },
        }
    }

    fn out(n: i64) -> Movement {
        Movement { out: n, r#in: 0 }
    }

    fn into(n: i64) -> Movement {
        Movement { out: 0, r#in: n }
    }

    #[test]
    fn zero_and_negative_amounts_cannot_be_built() {
        assert!(matches!(Amount::new(0), Err(LedgerError::InvalidAmount(0))));
        assert!(matches!(Amount::new(-5), Err(LedgerError::InvalidAmount(-5))));
        assert_eq!(Amount::new(1).map(Amount::get).ok(), Some(1));
        assert!(serde_json::from_str::<Amount>("0").is_err());
    }

    #[test]
    fn keys_and_owners_are_checked_when_deserialized() {
        assert!(serde_json::from_str::<IdempotencyKey>(r#"{"scope":"s","key":"k 1"}"#).is_err());
        assert!(serde_json::from_str::<IdempotencyKey>(r#"{"scope":"s","key":"k1"}"#).is_ok());
        assert!(serde_json::from_str::<Owner>(r#"{"kind":"customer","id":""}"#).is_err());
    }

    #[test]
    fn a_leg_to_the_same_account_is_refused() {
        let a = AccountId::new();
        let amount = Amount::new(10).expect("amount");
        let r = check_transfer(TransferRequest::single(key(), Unit::Cny, a, a, amount), Mode::Post);
        assert!(matches!(r, Err(LedgerError::SameAccount(_))));
    }

    #[test]
    fn an_empty_or_oversized_transfer_is_refused() {
        let empty = TransferRequest {
            key: key(),
            unit: Unit::Cny,
            legs: vec![],
            meta: TransferMeta::default(),
        };
        assert!(matches!(
            check_transfer(empty, Mode::Post),
            Err(LedgerError::InvalidTransfer(_))
        ));
        let (a, b) = (AccountId::new(), AccountId::new());
        let leg = Leg::new(a, b, Amount::new(1).expect("amount"));
        let big = TransferRequest {
            key: key(),
            unit: Unit::Cny,
            legs: vec![leg; MAX_LEGS + 1],
            meta: TransferMeta::default(),
        };
        assert!(matches!(
            check_transfer(big, Mode::Post),
            Err(LedgerError::InvalidTransfer(_))
        ));
    }

    #[test]
    fn legs_that_sum_past_i64_overflow() {
        let (a, b) = (AccountId::new(), AccountId::new());
        let leg = Leg::new(a, b, Amount::new(i64::MAX).expect("amount"));
        let r = TransferRequest {
            key: key(),
            unit: Unit::Cny,
            legs: vec![leg, leg],
            meta: TransferMeta::default(),
        };
        assert!(matches!(
            check_transfer(r, Mode::Post),
            Err(LedgerError::AmountOverflow)
        ));
    }

    #[test]
    fn movements_are_summed_per_account() {
        let (a, b, c) = (AccountId::new(), AccountId::new(), AccountId::new());
        let amt = |n| Amount::new(n).expect("amount");
        let r = TransferRequest {
            key: key(),
            unit: Unit::Cny,
            legs: vec![
                Leg::new(a, b, amt(100)),
                Leg::new(b, c, amt(30)),
                Leg::new(a, c, amt(5)),
            ],
            meta: TransferMeta::default(),
        };
        let checked = check_transfer(r, Mode::Post).expect("valid");
        assert_eq!(checked.movements[&a], Movement { out: 105, r#in: 0 });
        assert_eq!(checked.movements[&b], Movement { out: 30, r#in: 100 });
        assert_eq!(checked.movements[&c], Movement { out: 0, r#in: 35 });
    }

    #[test]
    fn the_hash_ignores_metadata_key_order_but_not_content_or_mode() {
        let (a, b) = (AccountId::new(), AccountId::new());
        let base = TransferRequest::single(key(), Unit::Cny, a, b, Amount::new(5).expect("amount"));
        let with = |json: &str| {
            base.clone().with_meta(TransferMeta {
                metadata: Some(serde_json::from_str(json).expect("json")),
                ..TransferMeta::default()
            })
        };
        assert_eq!(
            request_hash(&with(r#"{"a":1,"b":2}"#), Mode::Post),
            request_hash(&with(r#"{"b":2,"a":1}"#), Mode::Post)
        );
        assert_ne!(
            request_hash(&with(r#"{"a":1}"#), Mode::Post),
            request_hash(&with(r#"{"a":2}"#), Mode::Post)
        );
        assert_ne!(
            request_hash(&base, Mode::Post),
            request_hash(&base, Mode::Hold { expires_after: None })
        );
        // The key itself is not content: the same request under another key hashes alike.
        let mut other = base.clone();
        other.key = IdempotencyKey::new("test", "k2").expect("key");
        assert_eq!(request_hash(&base, Mode::Post), request_hash(&other, Mode::Post));
        // A leg naming the transfer's own unit is the leg it always was; another unit is
        // other content.
        let mut named = base.clone();
        named.legs[0].unit = Some(Unit::Cny);
        assert_eq!(request_hash(&base, Mode::Post), request_hash(&named, Mode::Post));
        named.legs[0].unit = Some(Unit::Points);
        assert_ne!(request_hash(&base, Mode::Post), request_hash(&named, Mode::Post));
    }

    #[test]
    fn spending_more_than_available_is_refused_unless_negative_is_allowed() {
        let s = state(100, Limits::default());
        assert_eq!(s.post(out(100)).map(|b| b.posted).ok(), Some(0));
        assert!(matches!(
            s.post(out(101)),
            Err(LedgerError::InsufficientFunds {
                available: 100,
                requested: 101,
                ..
            })
        ));
        let overdraft = state(
            100,
            Limits {
                allow_negative: true,
                max_balance: None,
            },
        );
        assert_eq!(overdraft.post(out(150)).map(|b| b.posted).ok(), Some(-50));
    }

    #[test]
    fn a_hold_reduces_what_is_available() {
        let s = state(100, Limits::default());
        let held = AccountState {
            balance: s.hold(out(60)).expect("hold"),
            ..s
        };
        assert_eq!(held.balance.available(), 40);
        assert!(matches!(held.post(out(41)), Err(LedgerError::InsufficientFunds { .. })));
        assert!(matches!(held.hold(out(41)), Err(LedgerError::InsufficientFunds { .. })));
        let posted = held.post_held(out(60)).expect("post held");
        assert_eq!((posted.posted, posted.pending_out), (40, 0));
        let voided = held.release(out(60)).expect("void");
        assert_eq!((voided.posted, voided.pending_out), (100, 0));
        assert!(matches!(held.release(out(61)), Err(LedgerError::Inconsistent(_))));
    }

    #[test]
    fn the_ceiling_counts_incoming_holds_and_only_blocks_increases() {
        let s = state(
            90,
            Limits {
                allow_negative: false,
                max_balance: Some(100),
            },
        );
        assert!(s.post(into(10)).is_ok());
        assert!(matches!(
            s.post(into(11)),
            Err(LedgerError::LimitExceeded { max_balance: 100, .. })
        ));
        let held = AccountState {
            balance: s.hold(into(10)).expect("hold"),
            ..s
        };
        assert!(matches!(held.post(into(1)), Err(LedgerError::LimitExceeded { .. })));
        // Above the ceiling (not reachable through the ledger, but limits are checked per
        // direction): spending is still allowed.
        let above = state(
            500,
            Limits {
                allow_negative: false,
                max_balance: Some(100),
            },
        );
        assert!(above.post(out(10)).is_ok());
    }

    #[test]
    fn balances_that_leave_i64_overflow() {
        let s = state(i64::MAX - 1, Limits::default());
        assert!(matches!(s.post(into(2)), Err(LedgerError::AmountOverflow)));
        let low = state(
            i64::MIN + 1,
            Limits {
                allow_negative: true,
                max_balance: None,
            },
        );
        assert!(matches!(low.post(out(2)), Err(LedgerError::AmountOverflow)));
    }

    #[test]
    fn an_expired_or_finished_hold_cannot_be_posted() {
        let now = Timestamp::from_second(1_000).expect("ts");
        let mut t = Transfer {
            id: TransferId::new(),
            key: key(),
            unit: Unit::Cny,
            legs: vec![],
            status: TransferStatus::Pending,
            two_phase: true,
            void_reason: None,
            meta: TransferMeta::default(),
            created_at: now,
            expires_at: Some(now),
            posted_at: None,
            voided_at: None,
        };
        assert!(matches!(t.check_open(now, true), Err(LedgerError::PendingExpired(_))));
        assert!(t.check_open(now, false).is_ok());
        t.status = TransferStatus::Voided;
        t.void_reason = Some(VoidReason::Expired);
        assert!(matches!(t.check_open(now, false), Err(LedgerError::PendingExpired(_))));
        t.void_reason = Some(VoidReason::Voided);
        assert!(matches!(
            t.check_open(now, true),
            Err(LedgerError::PendingAlreadyVoided(_))
        ));
        t.status = TransferStatus::Posted;
        assert!(matches!(
            t.check_open(now, false),
            Err(LedgerError::PendingAlreadyPosted(_))
        ));
        t.two_phase = false;
        assert!(matches!(t.check_open(now, true), Err(LedgerError::PendingNotFound(_))));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Post(i64),
        Hold(i64),
        PostHeld(usize),
        Release(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (-200i64..200).prop_filter("non-zero", |n| *n != 0).prop_map(Op::Post),
            (-200i64..200).prop_filter("non-zero", |n| *n != 0).prop_map(Op::Hold),
            (0usize..8).prop_map(Op::PostHeld),
            (0usize..8).prop_map(Op::Release),
        ]
    }

    fn movement(signed: i64) -> Movement {
        if signed < 0 { out(-signed) } else { into(signed) }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever sequence of postings, holds, posts and voids is attempted, an account
        /// that starts within its limits stays within them, a refused step changes
        /// nothing, and the balance equals the sum of what was accepted.
        #[test]
        fn an_account_never_leaves_its_limits(
            start in 0i64..300,
            allow_negative in any::<bool>(),
            max in proptest::option::of(300i64..600),
            ops in proptest::collection::vec(op(), 1..60),
        ) {
            let mut s = state(start, Limits { allow_negative, max_balance: max });
            let mut holds: Vec<Movement> = Vec::new();
            let mut expected_posted = start;
            for op in ops {
                let before = s;
                let result = match &op {
                    Op::Post(n) => s.post(movement(*n)).map(|b| (b, None)),
                    Op::Hold(n) => s.hold(movement(*n)).map(|b| (b, Some(movement(*n)))),
                    Op::PostHeld(i) if *i < holds.len() => s.post_held(holds[*i]).map(|b| (b, None)),
                    Op::Release(i) if *i < holds.len() => s.release(holds[*i]).map(|b| (b, None)),
                    _ => continue,
                };
                match result {
                    Ok((balance, new_hold)) => {
                        match &op {
                            Op::Post(n) => expected_posted += n,
                            Op::PostHeld(i) => expected_posted += holds.remove(*i).net().expect("net"),
                            Op::Release(i) => { holds.remove(*i); }
                            Op::Hold(_) => holds.extend(new_hold),
                        }
                        s.balance = balance;
                        prop_assert!(s.within_limits(), "{op:?} left {s:?}");
                    }
                    Err(e) => {
                        // Posting a held movement may never fail: the hold reserved room.
                        prop_assert!(!matches!(op, Op::PostHeld(_) | Op::Release(_)), "{op:?}: {e}");
                        prop_assert_eq!(s, before);
                    }
                }
                prop_assert_eq!(s.balance.posted, expected_posted);
                prop_assert_eq!(s.balance.pending_out, holds.iter().map(|h| h.out).sum::<i64>());
                prop_assert_eq!(s.balance.pending_in, holds.iter().map(|h| h.r#in).sum::<i64>());
            }
        }
    }
}
