//! The risk engine's rules, pure: request context parsing, the policy and its validation,
//! the signals an operation raises, the decision (`allow`, `step_up` with a factor,
//! `hold`, `deny`) with human-readable reasons, operation tiers and trust levels.
//!
//! [`decide`] takes everything it needs in [`Inputs`] (gathered by the service from the
//! database) and a [`Policy`]; it does no I/O and allocates only the reasons, so a stored
//! decision can be replayed exactly and the engine stays far under a millisecond.

use serde::{Deserialize, Serialize};

/// Micros in an hour.
const HOUR_MICROS: i64 = 3_600_000_000;
/// Micros in a day.
pub const DAY_MICROS: i64 = 24 * HOUR_MICROS;

/// A coarse location, degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GeoPoint {
    pub lat: f64,
    pub lon: f64,
}

impl GeoPoint {
    /// Parses the `X-Geo` header: `"lat,lon"` in degrees.
    pub fn parse(raw: &str) -> Result<GeoPoint, String> {
        let (lat, lon) = raw
            .split_once(',')
            .ok_or_else(|| format!("X-Geo must be \"lat,lon\", got {raw:?}"))?;
        let lat: f64 = lat
            .trim()
            .parse()
            .map_err(|_| format!("X-Geo latitude {lat:?} is not a number"))?;
        let lon: f64 = lon
            .trim()
            .parse()
            .map_err(|_| format!("X-Geo longitude {lon:?} is not a number"))?;
        if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
            return Err(format!("X-Geo {raw:?} is outside -90..90, -180..180"));
        }
        Ok(GeoPoint { lat, lon })
    }

    /// Great-circle distance in kilometres (haversine).
    pub fn distance_km(self, other: GeoPoint) -> f64 {
        let (la1, la2) = (self.lat.to_radians(), other.lat.to_radians());
        let dla = la2 - la1;
        let dlo = (other.lon - self.lon).to_radians();
        let a = (dla / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlo / 2.0).sin().powi(2);
        2.0 * 6371.0 * a.sqrt().min(1.0).asin()
    }
}

/// Parses a device id from `X-Device-Id`: 1–128 visible ASCII characters.
pub fn parse_device_id(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > 128 || !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("X-Device-Id must be 1 to 128 visible ASCII characters".to_owned());
    }
    Ok(raw.to_owned())
}

/// The first address of `X-Forwarded-For` (the client as the first proxy saw it).
pub fn forwarded_ip(raw: &str) -> Option<String> {
    raw.split(',')
        .next()
        .map(str::trim)
        .filter(|s| s.parse::<std::net::IpAddr>().is_ok())
        .map(str::to_owned)
}

/// What is being attempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    SignIn,
    Transfer,
    WealthPurchase,
    ReportCardLost,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::SignIn => "sign_in",
            Operation::Transfer => "transfer",
            Operation::WealthPurchase => "wealth_purchase",
            Operation::ReportCardLost => "report_card_lost",
        }
    }
}

/// Operation tiers (seed 004): how much friction an operation deserves by its nature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// One tap.
    Low,
    /// An explicit risk confirmation.
    Medium,
    /// A risk prompt and a delayed, cancellable settlement.
    High,
}

/// The tier of an operation under a policy.
pub fn tier(op: Operation, amount: Option<i64>, policy: &Policy) -> Tier {
    match op {
        Operation::ReportCardLost => Tier::High,
        Operation::Transfer if amount.unwrap_or(0) >= policy.high_value_threshold => Tier::High,
        Operation::WealthPurchase => Tier::Medium,
        _ => Tier::Low,
    }
}

/// A step-up factor, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Factor {
    Pin,
    Otp,
    Passkey,
}

impl Factor {
    pub fn as_str(self) -> &'static str {
        match self {
            Factor::Pin => "pin",
            Factor::Otp => "otp",
            Factor::Passkey => "passkey",
        }
    }
    pub fn parse(s: &str) -> Option<Factor> {
        match s {
            "pin" => Some(Factor::Pin),
            "otp" => Some(Factor::Otp),
            "passkey" => Some(Factor::Passkey),
            _ => None,
        }
    }
}

/// Everything the engine looks at, as stored with the decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Inputs {
    pub operation: Operation,
    /// Minor units, for value-moving operations.
    pub amount: Option<i64>,
    /// When, micros since the epoch.
    pub at: i64,
    pub channel: String,
    pub device_id: Option<String>,
    /// The device is in the customer's registry.
    pub device_known: bool,
    /// The customer (or a step-up on it) marked the device trusted.
    pub device_trusted: bool,
    pub ip: Option<String>,
    pub geo: Option<GeoPoint>,
    /// The last location seen for the customer and when (micros).
    pub last_geo: Option<GeoPoint>,
    pub last_geo_at: Option<i64>,
    /// Operations per hour of day (in the policy's habit zone) so far.
    pub hour_counts: Vec<u32>,
    /// Earlier value-moving operations: how many, their mean and largest amount.
    pub amount_count: u32,
    pub amount_mean: i64,
    pub amount_max: i64,
    /// For transfers: the payee was paid before (`None` when there is no payee).
    pub payee_known: Option<bool>,
    /// Failed attempts (sign-ins, step-ups) in the policy's window.
    pub recent_failures: u32,
    /// Operations of this kind in the last hour.
    pub recent_operations: u32,
    /// The customer's trust level (0–4) at the time.
    pub trust_level: u8,
    /// A step-up factor verified for this very operation.
    pub step_up: Option<Factor>,
}

impl Inputs {
    /// Inputs of an operation with no history at all: a base for tests and benchmarks.
    pub fn blank(operation: Operation, amount: Option<i64>, at: i64) -> Inputs {
        Inputs {
            operation,
            amount,
            at,
            channel: "h5".to_owned(),
            device_id: None,
            device_known: false,
            device_trusted: false,
            ip: None,
            geo: None,
            last_geo: None,
            last_geo_at: None,
            hour_counts: vec![0; 24],
            amount_count: 0,
            amount_mean: 0,
            amount_max: 0,
            payee_known: None,
            recent_failures: 0,
            recent_operations: 0,
            trust_level: 0,
            step_up: None,
        }
    }
}

/// Points each signal adds to the score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Weights {
    pub new_device: u32,
    pub device_not_given: u32,
    pub location_change: u32,
    pub impossible_travel: u32,
    pub unusual_hour: u32,
    pub unusual_amount: u32,
    pub new_payee: u32,
    pub failed_attempts: u32,
    pub velocity: u32,
}

/// The tunable policy. Stored in the database by version; risk officers change it through
/// the staff API and every change is validated by [`Policy::validate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub weights: Weights,
    /// Score at which a PIN is asked.
    pub step_up_at: u32,
    /// Score at which a one-time code is asked instead.
    pub otp_at: u32,
    /// Score at which a passkey is asked instead.
    pub passkey_at: u32,
    /// Score at which the operation is held for the customer's confirmation.
    pub hold_at: u32,
    /// Score at which it is refused.
    pub deny_at: u32,
    /// Transfers at or above this (minor units) are high tier: delayed settlement.
    pub high_value_threshold: i64,
    /// How long a high-tier transfer waits before it settles, minutes.
    pub delay_minutes: i64,
    /// Transfers above the frictionless limit need at least a PIN.
    pub frictionless_limit: i64,
    /// Each trust level raises the frictionless limit by this much.
    pub trust_limit_step: i64,
    /// Faster than this between two locations is impossible travel, km/h.
    pub max_travel_kmh: f64,
    /// A move further than this is a location change, km.
    pub location_change_km: f64,
    /// This many failed attempts in the window are a burst.
    pub failure_burst: u32,
    /// The window failed attempts are counted in, minutes.
    pub failure_window_minutes: i64,
    /// More operations than this in an hour is unusual velocity.
    pub velocity_per_hour: u32,
    /// An amount this many times the customer's mean (with 3+ earlier ones) is unusual.
    pub amount_multiple: i64,
    /// Amounts below this (minor units) are never unusual, however small the usual ones.
    pub amount_floor: i64,
    /// The zone habits are counted in, minutes east of UTC (480 = China).
    pub habit_utc_offset_minutes: i32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            weights: Weights {
                new_device: 30,
                device_not_given: 10,
                location_change: 15,
                impossible_travel: 70,
                unusual_hour: 15,
                unusual_amount: 30,
                new_payee: 15,
                failed_attempts: 40,
                velocity: 20,
            },
            step_up_at: 40,
            otp_at: 55,
            passkey_at: 70,
            hold_at: 90,
            deny_at: 150,
            high_value_threshold: 5_000_000,
            delay_minutes: 120,
            frictionless_limit: 500_000,
            trust_limit_step: 250_000,
            max_travel_kmh: 900.0,
            location_change_km: 300.0,
            failure_burst: 5,
            failure_window_minutes: 15,
            velocity_per_hour: 30,
            amount_multiple: 5,
            amount_floor: 50_000,
            habit_utc_offset_minutes: 480,
        }
    }
}

/// One thing wrong with a policy: the field and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PolicyProblem {
    pub field: String,
    pub message: String,
}

impl Policy {
    /// Every problem with the policy (empty when it can be used).
    pub fn validate(&self) -> Vec<PolicyProblem> {
        let mut out = Vec::new();
        let mut bad = |field: &str, message: String| {
            out.push(PolicyProblem {
                field: field.to_owned(),
                message,
            })
        };
        let w = &self.weights;
        for (name, v) in [
            ("weights.new_device", w.new_device),
            ("weights.device_not_given", w.device_not_given),
            ("weights.location_change", w.location_change),
            ("weights.impossible_travel", w.impossible_travel),
            ("weights.unusual_hour", w.unusual_hour),
            ("weights.unusual_amount", w.unusual_amount),
            ("weights.new_payee", w.new_payee),
            ("weights.failed_attempts", w.failed_attempts),
            ("weights.velocity", w.velocity),
        ] {
            if v > 1000 {
                bad(name, format!("must be at most 1000, got {v}"));
            }
        }
        if self.step_up_at == 0 {
            bad("step_up_at", "must be at least 1".to_owned());
        }
        let ladder = [
            ("otp_at", self.step_up_at, self.otp_at),
            ("passkey_at", self.otp_at, self.passkey_at),
            ("hold_at", self.passkey_at, self.hold_at),
            ("deny_at", self.hold_at, self.deny_at),
        ];
        for (name, below, v) in ladder {
            if v < below {
                bad(
                    name,
                    format!("must be at least the threshold below it ({below}), got {v}"),
                );
            }
        }
        if self.deny_at > 10_000 {
            bad("deny_at", format!("must be at most 10000, got {}", self.deny_at));
        }
        if self.high_value_threshold <= 0 {
            bad(
                "high_value_threshold",
                "must be a positive amount in minor units".to_owned(),
            );
        }
        if !(1..=7 * 24 * 60).contains(&self.delay_minutes) {
            bad(
                "delay_minutes",
                format!("must be 1 to 10080 (a week), got {}", self.delay_minutes),
            );
        }
        if self.frictionless_limit < 0 {
            bad("frictionless_limit", "must not be negative".to_owned());
        }
        if self.frictionless_limit > self.high_value_threshold {
            bad("frictionless_limit", "must not exceed high_value_threshold".to_owned());
        }
        if self.trust_limit_step < 0 {
            bad("trust_limit_step", "must not be negative".to_owned());
        }
        if !(self.max_travel_kmh.is_finite() && self.max_travel_kmh >= 100.0) {
            bad("max_travel_kmh", "must be a number of at least 100".to_owned());
        }
        if !(self.location_change_km.is_finite() && self.location_change_km > 0.0) {
            bad("location_change_km", "must be a positive number".to_owned());
        }
        if self.failure_burst == 0 {
            bad("failure_burst", "must be at least 1".to_owned());
        }
        if !(1..=24 * 60).contains(&self.failure_window_minutes) {
            bad("failure_window_minutes", "must be 1 to 1440".to_owned());
        }
        if self.velocity_per_hour == 0 {
            bad("velocity_per_hour", "must be at least 1".to_owned());
        }
        if self.amount_multiple < 2 {
            bad("amount_multiple", "must be at least 2".to_owned());
        }
        if self.amount_floor < 0 {
            bad("amount_floor", "must not be negative".to_owned());
        }
        if !(-14 * 60..=14 * 60).contains(&self.habit_utc_offset_minutes) {
            bad("habit_utc_offset_minutes", "must be -840 to 840".to_owned());
        }
        out
    }

    /// The frictionless limit at a trust level, never above the high-value threshold.
    pub fn frictionless_at(&self, trust_level: u8) -> i64 {
        self.frictionless_limit
            .saturating_add(self.trust_limit_step.saturating_mul(i64::from(trust_level)))
            .min(self.high_value_threshold)
    }

    /// The hour of day (0–23) of an instant in the habit zone.
    pub fn habit_hour(&self, at_micros: i64) -> usize {
        let local = at_micros + i64::from(self.habit_utc_offset_minutes) * 60_000_000;
        (local.rem_euclid(DAY_MICROS) / HOUR_MICROS) as usize
    }
}

/// Why the engine decided as it did: a stable code and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Reason {
    pub code: String,
    pub text: String,
    /// Points it added to the score.
    pub points: u32,
}

/// The outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Allow,
    StepUp,
    Hold,
    Deny,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::StepUp => "step_up",
            Outcome::Hold => "hold",
            Outcome::Deny => "deny",
        }
    }
    pub fn parse(s: &str) -> Option<Outcome> {
        match s {
            "allow" => Some(Outcome::Allow),
            "step_up" => Some(Outcome::StepUp),
            "hold" => Some(Outcome::Hold),
            "deny" => Some(Outcome::Deny),
            _ => None,
        }
    }
}

/// An anomaly: a pattern that holds the operation for the customer's "was this you?".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Anomaly {
    FailedSignInBurst,
    NewDeviceLargeTransfer,
    ImpossibleTravel,
}

impl Anomaly {
    pub fn as_str(self) -> &'static str {
        match self {
            Anomaly::FailedSignInBurst => "failed_sign_in_burst",
            Anomaly::NewDeviceLargeTransfer => "new_device_large_transfer",
            Anomaly::ImpossibleTravel => "impossible_travel",
        }
    }
}

/// What the engine decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Decision {
    pub outcome: Outcome,
    /// The factor asked for, with `step_up`.
    pub factor: Option<Factor>,
    pub score: u32,
    pub tier: Tier,
    /// High tier and allowed: settle after the policy's delay instead of at once.
    pub delayed: bool,
    /// Medium tier and allowed: the customer confirms the risk explicitly.
    pub confirm: bool,
    pub anomaly: Option<Anomaly>,
    pub reasons: Vec<Reason>,
}

fn reason(code: &str, points: u32, text: String) -> Reason {
    Reason {
        code: code.to_owned(),
        text,
        points,
    }
}

fn yuan(fen: i64) -> String {
    format!("¥{}.{:02}", fen / 100, (fen % 100).abs())
}

/// Scores an operation and decides. Pure: the same inputs and policy always give the same
/// decision.
pub fn decide(i: &Inputs, p: &Policy) -> Decision {
    let w = &p.weights;
    let mut reasons = Vec::new();
    let mut anomaly = None;
    let amount = i.amount.unwrap_or(0);

    // Device.
    match (&i.device_id, i.device_known) {
        (None, _) => reasons.push(reason(
            "device_not_given",
            w.device_not_given,
            "The request did not say which device it came from.".to_owned(),
        )),
        (Some(_), false) => reasons.push(reason(
            "new_device",
            w.new_device,
            "This device has not been used with the account before.".to_owned(),
        )),
        (Some(_), true) => {}
    }

    // Location and travel speed.
    if let (Some(now), Some(before), Some(before_at)) = (i.geo, i.last_geo, i.last_geo_at) {
        let km = now.distance_km(before);
        let hours = ((i.at - before_at).max(0) as f64 / HOUR_MICROS as f64).max(1.0 / 60.0);
        let speed = km / hours;
        if km >= p.location_change_km && speed > p.max_travel_kmh {
            anomaly = Some(Anomaly::ImpossibleTravel);
            reasons.push(reason(
                "impossible_travel",
                w.impossible_travel,
                format!(
                    "{km:.0} km from the last place seen, {:.0} minutes earlier: faster than {:.0} km/h.",
                    hours * 60.0,
                    p.max_travel_kmh
                ),
            ));
        } else if km >= p.location_change_km {
            reasons.push(reason(
                "location_change",
                w.location_change,
                format!("{km:.0} km from the last place seen."),
            ));
        }
    }

    // Time of day against the customer's habit: with enough history, an hour in which
    // fewer than 2% of their operations happened is unusual.
    let total: u32 = i.hour_counts.iter().sum();
    if total >= 10 {
        let hour = p.habit_hour(i.at);
        let here = i.hour_counts.get(hour).copied().unwrap_or(0);
        if u64::from(here) * 50 < u64::from(total) {
            reasons.push(reason(
                "unusual_hour",
                w.unusual_hour,
                format!("You rarely bank around {hour:02}:00."),
            ));
        }
    }

    // Amount against history.
    if i.operation != Operation::SignIn && amount > 0 {
        if i.amount_count >= 3
            && amount >= p.amount_floor
            && amount > i.amount_mean.saturating_mul(p.amount_multiple)
            && amount > i.amount_max
        {
            reasons.push(reason(
                "unusual_amount",
                w.unusual_amount,
                format!(
                    "{} is more than {} times your usual {}.",
                    yuan(amount),
                    p.amount_multiple,
                    yuan(i.amount_mean)
                ),
            ));
        }
        if i.payee_known == Some(false) {
            reasons.push(reason(
                "new_payee",
                w.new_payee,
                "You have not paid this payee before.".to_owned(),
            ));
        }
    }

    if i.recent_failures > 0 {
        let burst = i.recent_failures >= p.failure_burst;
        if burst && i.operation == Operation::SignIn {
            anomaly.get_or_insert(Anomaly::FailedSignInBurst);
        }
        let points = if burst {
            w.failed_attempts
        } else {
            w.failed_attempts / 2
        };
        reasons.push(reason(
            if burst {
                "failed_attempts_burst"
            } else {
                "failed_attempts"
            },
            points,
            format!(
                "{} failed attempts in the last {} minutes.",
                i.recent_failures, p.failure_window_minutes
            ),
        ));
    }

    if i.recent_operations >= p.velocity_per_hour {
        reasons.push(reason(
            "velocity",
            w.velocity,
            format!("{} operations in the last hour.", i.recent_operations),
        ));
    }

    let frictionless = p.frictionless_at(i.trust_level);
    let large = i.operation == Operation::Transfer && amount > frictionless;
    if large && i.device_id.is_some() && !i.device_known {
        anomaly.get_or_insert(Anomaly::NewDeviceLargeTransfer);
    }

    let score: u32 = reasons.iter().map(|r| r.points).sum();
    let tier = tier(i.operation, i.amount, p);

    // The factor the score (or the amount) calls for.
    let wanted = if score >= p.passkey_at {
        Some(Factor::Passkey)
    } else if score >= p.otp_at {
        Some(Factor::Otp)
    } else if score >= p.step_up_at || large || tier == Tier::High {
        Some(Factor::Pin)
    } else {
        None
    };
    if large && score < p.step_up_at {
        reasons.push(reason(
            "above_frictionless_limit",
            0,
            format!(
                "{} is above your one-tap limit of {} (trust level {}).",
                yuan(amount),
                yuan(frictionless),
                i.trust_level
            ),
        ));
    }

    let (outcome, factor) = if score >= p.deny_at {
        (Outcome::Deny, None)
    } else if let Some(a) = anomaly {
        let _ = a;
        (Outcome::Hold, None)
    } else if score >= p.hold_at {
        (Outcome::Hold, None)
    } else {
        match wanted {
            Some(f) if i.step_up.is_none_or(|done| done < f) => (Outcome::StepUp, Some(f)),
            _ => (Outcome::Allow, None),
        }
    };
    if outcome == Outcome::Allow && i.step_up.is_some() && wanted.is_some() {
        reasons.push(reason(
            "step_up_passed",
            0,
            format!(
                "Confirmed with your {}.",
                i.step_up.map(Factor::as_str).unwrap_or("factor")
            ),
        ));
    }
    let delayed = outcome == Outcome::Allow && tier == Tier::High;
    if delayed {
        reasons.push(reason(
            "high_value_delay",
            0,
            format!(
                "Large operations settle after {} minutes; you can cancel until then.",
                p.delay_minutes
            ),
        ));
    }
    if outcome == Outcome::Allow && reasons.iter().all(|r| r.points == 0) && !delayed {
        reasons.push(reason("no_signals", 0, "Nothing unusual.".to_owned()));
    }
    Decision {
        outcome,
        factor,
        score,
        tier,
        delayed,
        confirm: outcome == Outcome::Allow && tier == Tier::Medium,
        anomaly,
        reasons,
    }
}

/// What trust is computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TrustFacts {
    /// Days since the customer was first seen.
    pub tenure_days: i64,
    /// Operations that went through without a hold or refusal.
    pub clean_operations: u32,
    /// Step-ups the customer passed.
    pub step_ups: u32,
    /// Anomalies in the last 90 days.
    pub recent_anomalies: u32,
    pub frozen: bool,
}

/// Trust level 0–4: a point each for 30 and 180 days of tenure, for 10 clean operations,
/// for 3 passed step-ups; each recent anomaly takes two away; a frozen account has none.
pub fn trust_level(f: &TrustFacts) -> u8 {
    if f.frozen {
        return 0;
    }
    let mut level: i64 = 0;
    if f.tenure_days >= 30 {
        level += 1;
    }
    if f.tenure_days >= 180 {
        level += 1;
    }
    if f.clean_operations >= 10 {
        level += 1;
    }
    if f.step_ups >= 3 {
        level += 1;
    }
    level -= 2 * i64::from(f.recent_anomalies);
    level.clamp(0, 4) as u8
}

/// The state of a delayed or held transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HoldState {
    /// Delayed, settles at its due time unless cancelled.
    Waiting,
    /// Held by an anomaly, waits for the customer's answer.
    Held,
    Settled,
    Cancelled,
    /// Held, then confirmed by the customer and posted.
    Released,
    /// Held, then denied by the customer and voided.
    Voided,
}

impl HoldState {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldState::Waiting => "waiting",
            HoldState::Held => "held",
            HoldState::Settled => "settled",
            HoldState::Cancelled => "cancelled",
            HoldState::Released => "released",
            HoldState::Voided => "voided",
        }
    }
    pub fn parse(s: &str) -> Option<HoldState> {
        [
            HoldState::Waiting,
            HoldState::Held,
            HoldState::Settled,
            HoldState::Cancelled,
            HoldState::Released,
            HoldState::Voided,
        ]
        .into_iter()
        .find(|h| h.as_str() == s)
    }
}

/// Case states.
pub const CASE_STATES: [&str; 2] = ["open", "resolved"];

/// Validates a case note or resolution text: 1–2000 characters.
pub fn parse_note(field: &str, text: &str) -> Result<String, (String, String)> {
    let t = text.trim();
    if t.is_empty() || t.chars().count() > 2000 {
        return Err((field.to_owned(), "must be 1 to 2000 characters".to_owned()));
    }
    Ok(t.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOON_CST: i64 = 4 * HOUR_MICROS; // 04:00 UTC = 12:00 in China

    fn known(op: Operation, amount: i64) -> Inputs {
        let mut i = Inputs::blank(op, Some(amount), NOON_CST);
        i.device_id = Some("phone-a".into());
        i.device_known = true;
        i.payee_known = Some(true);
        i
    }

    #[test]
    fn default_policy_is_valid() {
        assert!(Policy::default().validate().is_empty());
    }

    #[test]
    fn small_transfer_from_known_device_is_allowed_in_one_tap() {
        let d = decide(&known(Operation::Transfer, 10_000), &Policy::default());
        assert_eq!(d.outcome, Outcome::Allow);
        assert_eq!(d.score, 0);
        assert_eq!(d.reasons[0].code, "no_signals");
        assert!(!d.delayed);
    }

    #[test]
    fn above_frictionless_limit_asks_a_pin_then_allows() {
        let mut i = known(Operation::Transfer, 600_000);
        let d = decide(&i, &Policy::default());
        assert_eq!((d.outcome, d.factor), (Outcome::StepUp, Some(Factor::Pin)));
        assert!(d.reasons.iter().any(|r| r.code == "above_frictionless_limit"));
        i.step_up = Some(Factor::Pin);
        assert_eq!(decide(&i, &Policy::default()).outcome, Outcome::Allow);
    }

    #[test]
    fn trust_raises_the_frictionless_limit() {
        let mut i = known(Operation::Transfer, 600_000);
        i.trust_level = 1;
        assert_eq!(decide(&i, &Policy::default()).outcome, Outcome::Allow);
    }

    #[test]
    fn high_value_is_delayed_after_step_up() {
        let mut i = known(Operation::Transfer, 5_000_000);
        i.step_up = Some(Factor::Pin);
        let d = decide(&i, &Policy::default());
        assert_eq!(d.outcome, Outcome::Allow);
        assert_eq!(d.tier, Tier::High);
        assert!(d.delayed);
        assert!(d.reasons.iter().any(|r| r.code == "high_value_delay"));
    }

    #[test]
    fn weaker_factor_does_not_satisfy_a_stronger_one() {
        let mut i = known(Operation::Transfer, 10_000);
        i.device_known = false;
        i.payee_known = Some(false);
        i.recent_failures = 1; // 30 + 15 + 20 = 65 → otp
        let d = decide(&i, &Policy::default());
        assert_eq!((d.outcome, d.factor), (Outcome::StepUp, Some(Factor::Otp)));
        i.step_up = Some(Factor::Pin);
        assert_eq!(decide(&i, &Policy::default()).factor, Some(Factor::Otp));
        i.step_up = Some(Factor::Passkey);
        assert_eq!(decide(&i, &Policy::default()).outcome, Outcome::Allow);
    }

    #[test]
    fn new_device_and_large_transfer_is_held() {
        let mut i = known(Operation::Transfer, 800_000);
        i.device_id = Some("phone-b".into());
        i.device_known = false;
        let d = decide(&i, &Policy::default());
        assert_eq!(d.outcome, Outcome::Hold);
        assert_eq!(d.anomaly, Some(Anomaly::NewDeviceLargeTransfer));
        assert!(d.reasons.iter().any(|r| r.code == "new_device"));
    }

    #[test]
    fn impossible_travel_is_held_and_explained() {
        let mut i = known(Operation::Transfer, 10_000);
        i.geo = Some(GeoPoint {
            lat: 31.23,
            lon: 121.47,
        }); // Shanghai
        i.last_geo = Some(GeoPoint {
            lat: 39.90,
            lon: 116.40,
        }); // Beijing, ~1070 km
        i.last_geo_at = Some(i.at - 30 * 60_000_000);
        let d = decide(&i, &Policy::default());
        assert_eq!(d.outcome, Outcome::Hold);
        assert_eq!(d.anomaly, Some(Anomaly::ImpossibleTravel));
        let r = d
            .reasons
            .iter()
            .find(|r| r.code == "impossible_travel")
            .expect("reason");
        assert!(r.text.contains("km"), "{}", r.text);
        // The same trip over five hours is only a location change.
        i.last_geo_at = Some(i.at - 5 * HOUR_MICROS);
        let d = decide(&i, &Policy::default());
        assert_eq!(d.outcome, Outcome::Allow);
        assert!(d.reasons.iter().any(|r| r.code == "location_change"));
    }

    #[test]
    fn failed_sign_in_burst_is_an_anomaly() {
        let mut i = known(Operation::SignIn, 0);
        i.amount = None;
        i.recent_failures = 5;
        let d = decide(&i, &Policy::default());
        assert_eq!(d.anomaly, Some(Anomaly::FailedSignInBurst));
        assert_eq!(d.outcome, Outcome::Hold);
        i.recent_failures = 2;
        assert_eq!(decide(&i, &Policy::default()).outcome, Outcome::Allow);
    }

    #[test]
    fn unusual_hour_and_amount_count_only_with_history() {
        let p = Policy::default();
        let mut i = known(Operation::Transfer, 400_000);
        i.amount_count = 2;
        i.amount_mean = 10_000;
        assert!(!decide(&i, &p).reasons.iter().any(|r| r.code == "unusual_amount"));
        i.amount_count = 10;
        i.amount_max = 20_000;
        assert!(decide(&i, &p).reasons.iter().any(|r| r.code == "unusual_amount"));
        // Small amounts are never unusual, however small the usual ones.
        let mut tiny = i.clone();
        (tiny.amount, tiny.amount_mean, tiny.amount_max) = (Some(6), 1, 2);
        assert!(!decide(&tiny, &p).reasons.iter().any(|r| r.code == "unusual_amount"));
        // All history at 20:00 China time; noon is unusual.
        i.hour_counts[20] = 20;
        assert!(decide(&i, &p).reasons.iter().any(|r| r.code == "unusual_hour"));
        i.hour_counts[12] = 5;
        assert!(!decide(&i, &p).reasons.iter().any(|r| r.code == "unusual_hour"));
    }

    #[test]
    fn deny_above_deny_threshold() {
        let mut i = known(Operation::Transfer, 10_000);
        i.device_known = false;
        i.recent_failures = 9;
        i.recent_operations = 99;
        let p = Policy {
            deny_at: 90,
            ..Policy::default()
        };
        assert_eq!(decide(&i, &p).outcome, Outcome::Deny);
    }

    #[test]
    fn tiers() {
        let p = Policy::default();
        assert_eq!(tier(Operation::Transfer, Some(4_999_999), &p), Tier::Low);
        assert_eq!(tier(Operation::Transfer, Some(5_000_000), &p), Tier::High);
        assert_eq!(tier(Operation::ReportCardLost, None, &p), Tier::High);
        assert_eq!(tier(Operation::WealthPurchase, Some(1), &p), Tier::Medium);
        let mut i = known(Operation::WealthPurchase, 10_000);
        i.payee_known = None;
        assert!(decide(&i, &p).confirm);
    }

    #[test]
    fn policy_validation_names_fields() {
        let p = Policy {
            otp_at: 10,
            delay_minutes: 0,
            frictionless_limit: 9_000_000,
            max_travel_kmh: f64::NAN,
            ..Policy::default()
        };
        let fields: Vec<String> = p.validate().into_iter().map(|e| e.field).collect();
        for f in ["otp_at", "delay_minutes", "frictionless_limit", "max_travel_kmh"] {
            assert!(fields.iter().any(|x| x == f), "{f} in {fields:?}");
        }
    }

    #[test]
    fn trust_levels() {
        let mut f = TrustFacts {
            tenure_days: 200,
            clean_operations: 12,
            step_ups: 3,
            recent_anomalies: 0,
            frozen: false,
        };
        assert_eq!(trust_level(&f), 4);
        f.recent_anomalies = 1;
        assert_eq!(trust_level(&f), 2);
        f.frozen = true;
        assert_eq!(trust_level(&f), 0);
        assert_eq!(
            trust_level(&TrustFacts {
                tenure_days: 0,
                clean_operations: 0,
                step_ups: 0,
                recent_anomalies: 0,
                frozen: false
            }),
            0
        );
    }

    #[test]
    fn context_parsing() {
        assert_eq!(GeoPoint::parse("31.2, 121.5"), Ok(GeoPoint { lat: 31.2, lon: 121.5 }));
        assert!(GeoPoint::parse("91,0").is_err());
        assert!(GeoPoint::parse("abc").is_err());
        assert!(parse_device_id("").is_err());
        assert!(parse_device_id("a b").is_err());
        assert_eq!(forwarded_ip("203.0.113.7, 10.0.0.1").as_deref(), Some("203.0.113.7"));
        assert_eq!(forwarded_ip("nonsense"), None);
        let beijing = GeoPoint {
            lat: 39.90,
            lon: 116.40,
        };
        let shanghai = GeoPoint {
            lat: 31.23,
            lon: 121.47,
        };
        let km = beijing.distance_km(shanghai);
        assert!((1000.0..1150.0).contains(&km), "{km}");
    }

    #[test]
    fn habit_hour_uses_the_offset() {
        let p = Policy::default();
        assert_eq!(p.habit_hour(NOON_CST), 12);
        assert_eq!(p.habit_hour(-HOUR_MICROS), 7);
    }

    fn any_inputs() -> impl Strategy<Value = Inputs> {
        (
            prop::option::of(0i64..20_000_000),
            any::<bool>(),
            any::<bool>(),
            0u32..12,
            0u32..60,
            0u8..5,
            prop::option::of(prop::sample::select(vec![Factor::Pin, Factor::Otp, Factor::Passkey])),
            prop::option::of((-80.0f64..80.0, -170.0f64..170.0)),
            0i64..100,
        )
            .prop_map(
                |(amount, has_device, known_dev, failures, ops, trust, step, geo, mins)| {
                    let mut i = Inputs::blank(Operation::Transfer, amount, 1_800_000_000_000_000);
                    i.device_id = has_device.then(|| "d".to_owned());
                    i.device_known = known_dev;
                    i.recent_failures = failures;
                    i.recent_operations = ops;
                    i.trust_level = trust;
                    i.step_up = step;
                    i.payee_known = Some(known_dev);
                    i.geo = geo.map(|(lat, lon)| GeoPoint { lat, lon });
                    i.last_geo = Some(GeoPoint { lat: 39.9, lon: 116.4 });
                    i.last_geo_at = Some(i.at - mins * 60_000_000);
                    i
                },
            )
    }

    proptest! {
        #[test]
        fn decisions_are_deterministic_and_explained(i in any_inputs()) {
            let p = Policy::default();
            let a = decide(&i, &p);
            prop_assert_eq!(&a, &decide(&i, &p));
            prop_assert!(!a.reasons.is_empty());
            prop_assert_eq!(a.score, a.reasons.iter().map(|r| r.points).sum::<u32>());
            prop_assert_eq!(a.factor.is_some(), a.outcome == Outcome::StepUp);
            prop_assert!(!a.delayed || a.outcome == Outcome::Allow);
        }

        #[test]
        fn a_stronger_step_up_never_makes_it_worse(i in any_inputs()) {
            let p = Policy::default();
            let mut strong = i.clone();
            strong.step_up = Some(Factor::Passkey);
            let rank = |o: Outcome| match o { Outcome::Allow => 0, Outcome::StepUp => 1, Outcome::Hold => 2, Outcome::Deny => 3 };
            prop_assert!(rank(decide(&strong, &p).outcome) <= rank(decide(&i, &p).outcome));
        }

        #[test]
        fn more_trust_never_makes_it_worse(i in any_inputs()) {
            let p = Policy::default();
            let mut more = i.clone();
            more.trust_level = (i.trust_level + 1).min(4);
            let rank = |o: Outcome| match o { Outcome::Allow => 0, Outcome::StepUp => 1, Outcome::Hold => 2, Outcome::Deny => 3 };
            prop_assert!(rank(decide(&more, &p).outcome) <= rank(decide(&i, &p).outcome));
        }
    }
}
