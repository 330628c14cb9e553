//! The accounts capability's rules, with no SQL and no IO: which accounts every customer
//! has and how they are named in the ledger, what a customer may ask to transfer, how
//! history filters and statement months are read in the customer's time zone, and when a
//! balance alert fires and what it says in the customer's language.

use std::fmt;

use huoban_identity::Locale;
use huoban_ledger::{AccountType, Direction, NewAccount, Owner, OwnerKind, Unit};
use jiff::{Timestamp, civil::Date, tz::TimeZone};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Merchant categories carried in `TransferMeta.merchant_category`. Statements group
/// spending by them and `salary` credits trigger salary alerts, so transfers may only use
/// these.
pub const CATEGORIES: &[&str] = &[
    "salary",
    "groceries",
    "dining",
    "transport",
    "utilities",
    "shopping",
    "entertainment",
    "health",
    "education",
    "transfer",
];

/// The category of a credit that counts as "salary received".
pub const SALARY: &str = "salary";
/// What a customer's transfer is filed under when they name no category.
pub const DEFAULT_TRANSFER_CATEGORY: &str = "transfer";
/// Longest transfer description a customer may write (in characters).
pub const MAX_DESCRIPTION_CHARS: usize = 140;
/// Most alert subscriptions one customer may hold: enough for every account and kind,
/// few enough that the listener's lookups stay small.
pub const MAX_ALERTS_PER_CUSTOMER: i64 = 30;

/// A request this capability refuses by its own rules; the HTTP layer gives each a slug.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `amount` is zero or negative.
    InvalidAmount(i64),
    /// A field has a value the rules do not accept.
    InvalidField { field: &'static str, detail: String },
    /// A transfer from an account to itself.
    SameAccount,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::InvalidAmount(n) => write!(f, "amount must be a positive number of minor units, got {n}"),
            Refusal::InvalidField { field, detail } => write!(f, "{field}: {detail}"),
            Refusal::SameAccount => f.write_str("the transfer would move money from an account to itself"),
        }
    }
}

fn invalid(field: &'static str, detail: impl Into<String>) -> Refusal {
    Refusal::InvalidField {
        field,
        detail: detail.into(),
    }
}

/// The three accounts every customer has, opened on first use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StandardKind {
    Current,
    Savings,
    Points,
}

impl StandardKind {
    pub const ALL: [StandardKind; 3] = [StandardKind::Current, StandardKind::Savings, StandardKind::Points];

    fn suffix(self) -> &'static str {
        match self {
            StandardKind::Current => "current",
            StandardKind::Savings => "savings",
            StandardKind::Points => "points",
        }
    }

    /// The ledger reference that makes opening idempotent: `cust:{uuid}:{kind}`. Other
    /// capabilities (demo seeder, benchmarks) rely on this exact form.
    pub fn external_ref(self, customer: Uuid) -> String {
        format!("cust:{}:{}", customer.hyphenated(), self.suffix())
    }

    /// Exactly what is opened; the ledger returns the existing account only when a
    /// reopening describes it identically, so this is the one definition.
    pub fn new_account(self, customer: Uuid) -> NewAccount {
        let (unit, account_type, label) = match self {
            StandardKind::Current => (Unit::Cny, AccountType::Current, "活期 Current"),
            StandardKind::Savings => (Unit::Cny, AccountType::Savings, "储蓄 Savings"),
            StandardKind::Points => (Unit::Points, AccountType::Points, "积分 Points"),
        };
        NewAccount::new(unit, customer_owner(customer), account_type)
            .label(label)
            .external_ref(self.external_ref(customer))
    }
}

pub fn customer_owner(customer: Uuid) -> Owner {
    Owner {
        kind: OwnerKind::Customer,
        id: customer.hyphenated().to_string(),
    }
}

/// The bank's clearing account for a unit (`bank:clearing:CNY`): where money enters and
/// leaves the bank's books, so it may go below zero.
pub fn clearing_account(unit: Unit) -> NewAccount {
    NewAccount::new(
        unit,
        Owner {
            kind: OwnerKind::Bank,
            id: "bank".to_owned(),
        },
        AccountType::Clearing,
    )
    .allow_negative()
    .label(format!("Clearing {unit}"))
    .external_ref(format!("bank:clearing:{unit}"))
}

/// Standard accounts first (current, savings, points), then any others (goal pockets…)
/// in the order they were opened: the order a customer expects on the accounts page.
pub fn display_rank(external_ref: Option<&str>, customer: Uuid) -> usize {
    StandardKind::ALL
        .iter()
        .position(|k| external_ref == Some(k.external_ref(customer).as_str()))
        .unwrap_or(StandardKind::ALL.len())
}

/// A positive amount of minor units.
pub fn parse_amount(amount: i64) -> Result<i64, Refusal> {
    if amount > 0 {
        Ok(amount)
    } else {
        Err(Refusal::InvalidAmount(amount))
    }
}

pub fn parse_currency(text: &str) -> Result<Unit, Refusal> {
    text.parse::<Unit>()
        .map_err(|_| invalid("currency", format!("{text:?} is not a currency; use CNY")))
}

/// A transfer's category: one of [`CATEGORIES`], `transfer` when absent.
pub fn parse_category(text: Option<&str>) -> Result<String, Refusal> {
    match text {
        None => Ok(DEFAULT_TRANSFER_CATEGORY.to_owned()),
        Some(c) if CATEGORIES.contains(&c) => Ok(c.to_owned()),
        Some(c) => Err(invalid(
            "category",
            format!("{c:?} is not a category; use one of {}", CATEGORIES.join(", ")),
        )),
    }
}

/// A description the payer and payee both see: trimmed, short, no control characters.
pub fn parse_description(text: Option<&str>) -> Result<Option<String>, Refusal> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if text.chars().count() > MAX_DESCRIPTION_CHARS || text.chars().any(char::is_control) {
        return Err(invalid(
            "description",
            format!("at most {MAX_DESCRIPTION_CHARS} characters without control characters"),
        ));
    }
    Ok(Some(text.to_owned()))
}

/// Where a customer's transfer goes: another of their own accounts, or another
/// customer (whose current account is found by phone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payee<A> {
    OwnAccount(A),
    Phone(String),
}

pub fn parse_payee<A>(to_account: Option<A>, to_phone: Option<String>) -> Result<Payee<A>, Refusal> {
    match (to_account, to_phone) {
        (Some(a), None) => Ok(Payee::OwnAccount(a)),
        (None, Some(p)) => Ok(Payee::Phone(p)),
        _ => Err(invalid("to_account", "give exactly one of to_account and to_phone")),
    }
}

pub fn parse_direction(text: &str) -> Result<Direction, Refusal> {
    match text {
        "debit" => Ok(Direction::Debit),
        "credit" => Ok(Direction::Credit),
        other => Err(invalid("direction", format!("{other:?} is neither debit nor credit"))),
    }
}

/// A category filter: any short lowercase word, since postings made by other
/// capabilities may carry categories a customer cannot choose for a transfer.
pub fn parse_category_filter(text: &str) -> Result<String, Refusal> {
    let ok = !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(text.to_owned())
    } else {
        Err(invalid("category", format!("{text:?} is not a category")))
    }
}

/// Which end of a date range a bound is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// Inclusive start.
    From,
    /// Exclusive end; a calendar date means "through the end of that day".
    To,
}

/// A range bound as an instant: an RFC 3339 timestamp as given, or a calendar date
/// (`YYYY-MM-DD`) in the customer's time zone, because "transactions on 5 October" means
/// the customer's 5 October, not UTC's.
pub fn parse_bound(text: &str, tz: &TimeZone, bound: Bound) -> Result<Timestamp, Refusal> {
    let field = match bound {
        Bound::From => "from",
        Bound::To => "to",
    };
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Ok(ts);
    }
    let date: Date = text.parse().map_err(|_| {
        invalid(
            field,
            format!("{text:?} is neither an RFC 3339 instant nor a YYYY-MM-DD date"),
        )
    })?;
    let day = match bound {
        Bound::From => Some(date),
        Bound::To => date.tomorrow().ok(),
    };
    day.and_then(|d| d.to_zoned(tz.clone()).ok())
        .map(|z| z.timestamp())
        .ok_or_else(|| invalid(field, format!("{text:?} is out of range")))
}

/// Checks a range once both ends are known.
pub fn check_range(from: Option<Timestamp>, to: Option<Timestamp>) -> Result<(), Refusal> {
    match (from, to) {
        (Some(f), Some(t)) if f >= t => Err(invalid("from", "from must be before to")),
        _ => Ok(()),
    }
}

/// A statement month, `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Month {
    pub year: i16,
    pub month: i8,
}

impl Month {
    pub fn parse(text: &str) -> Result<Month, Refusal> {
        let bad = || invalid("month", format!("{text:?} is not a month like 2026-10"));
        let (y, m) = text.split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 || !y.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let year: i16 = y.parse().map_err(|_| bad())?;
        let month: i8 = m.parse().map_err(|_| bad())?;
        if !(1..=12).contains(&month) || !(1900..=2999).contains(&year) {
            return Err(bad());
        }
        Ok(Month { year, month })
    }

    /// The month an instant falls in, in a time zone.
    pub fn containing(at: Timestamp, tz: &TimeZone) -> Month {
        let date = at.to_zoned(tz.clone()).date();
        Month {
            year: date.year(),
            month: date.month(),
        }
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// What a balance alert watches for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AlertRule {
    /// A debit takes the balance from at least `threshold` to below it.
    BalanceBelow { threshold: i64 },
    /// A single transfer debits more than `amount`.
    DebitAbove { amount: i64 },
    /// A credit filed under `salary` arrives.
    SalaryReceived,
}

impl AlertRule {
    /// Builds a rule from the request's fields; each kind takes exactly its own number.
    pub fn parse(kind: &str, threshold: Option<i64>, amount: Option<i64>) -> Result<AlertRule, Refusal> {
        let positive = |field: &'static str, v: Option<i64>| match v {
            Some(n) if n > 0 => Ok(n),
            Some(n) => Err(invalid(field, format!("{field} must be positive, got {n}"))),
            None => Err(invalid(field, format!("a {kind} alert needs {field}"))),
        };
        let unexpected = |field: &'static str| invalid(field, format!("a {kind} alert takes no {field}"));
        match kind {
            "balance_below" if amount.is_some() => Err(unexpected("amount")),
            "balance_below" => Ok(AlertRule::BalanceBelow {
                threshold: positive("threshold", threshold)?,
            }),
            "debit_above" if threshold.is_some() => Err(unexpected("threshold")),
            "debit_above" => Ok(AlertRule::DebitAbove {
                amount: positive("amount", amount)?,
            }),
            "salary_received" if threshold.is_some() => Err(unexpected("threshold")),
            "salary_received" if amount.is_some() => Err(unexpected("amount")),
            "salary_received" => Ok(AlertRule::SalaryReceived),
            other => Err(invalid(
                "kind",
                format!("{other:?} is not an alert kind; use balance_below, debit_above or salary_received"),
            )),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            AlertRule::BalanceBelow { .. } => "balance_below",
            AlertRule::DebitAbove { .. } => "debit_above",
            AlertRule::SalaryReceived => "salary_received",
        }
    }

    /// The one number stored with the rule (0 for salary).
    pub fn amount(&self) -> i64 {
        match self {
            AlertRule::BalanceBelow { threshold } => *threshold,
            AlertRule::DebitAbove { amount } => *amount,
            AlertRule::SalaryReceived => 0,
        }
    }

    /// Rebuilds a stored rule; `None` for a kind this version does not know.
    pub fn from_stored(kind: &str, amount: i64) -> Option<AlertRule> {
        match kind {
            "balance_below" => Some(AlertRule::BalanceBelow { threshold: amount }),
            "debit_above" => Some(AlertRule::DebitAbove { amount }),
            "salary_received" => Some(AlertRule::SalaryReceived),
            _ => None,
        }
    }

    /// Whether evaluating this rule on `event` needs the balance after the transfer,
    /// which costs reads; only a net debit can cross a threshold downwards.
    pub fn needs_balance(&self, event: &AccountEvent<'_>) -> bool {
        matches!(self, AlertRule::BalanceBelow { .. }) && event.debited > event.credited
    }
}

/// What one posted transfer did to one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountEvent<'a> {
    /// Gross amount taken out of the account by the transfer.
    pub debited: i64,
    /// Gross amount brought in.
    pub credited: i64,
    pub category: Option<&'a str>,
    /// The posted balance right after the transfer, when known.
    pub balance_after: Option<i64>,
}

/// Why an alert fired, with the figures its message shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firing {
    BalanceBelow { threshold: i64, balance: i64, debited: i64 },
    DebitAbove { limit: i64, debited: i64 },
    SalaryReceived { credited: i64 },
}

/// Whether `rule` fires for `event`. Balance alerts fire on the crossing only, so a
/// customer already below the threshold is not told again on every payment.
pub fn evaluate(rule: &AlertRule, event: &AccountEvent<'_>) -> Option<Firing> {
    match *rule {
        AlertRule::BalanceBelow { threshold } => {
            let after = event.balance_after?;
            let net = i128::from(event.credited) - i128::from(event.debited);
            let before = i128::from(after) - net;
            (net < 0 && before >= i128::from(threshold) && after < threshold).then_some(Firing::BalanceBelow {
                threshold,
                balance: after,
                debited: event.debited,
            })
        }
        AlertRule::DebitAbove { amount } => (event.debited > amount).then_some(Firing::DebitAbove {
            limit: amount,
            debited: event.debited,
        }),
        AlertRule::SalaryReceived => {
            (event.credited > 0 && event.category == Some(SALARY)).then_some(Firing::SalaryReceived {
                credited: event.credited,
            })
        }
    }
}

/// `¥1,234.56` for fen, `1,234 积分` for points.
pub fn format_amount(minor: i64, unit: Unit, locale: Locale) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    match unit {
        Unit::Cny => format!("{sign}¥{}.{:02}", group(abs / 100), abs % 100),
        Unit::Points => {
            let word = match locale {
                Locale::ZhCn => " 积分",
                Locale::ZhTw => " 積分",
                Locale::En => " points",
            };
            format!("{sign}{}{word}", group(abs))
        }
    }
}

fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The inbox title and body of a fired alert, in the customer's language.
pub fn alert_message(firing: &Firing, account_label: &str, unit: Unit, locale: Locale) -> (String, String) {
    let fmt = |n: i64| format_amount(n, unit, locale);
    match (*firing, locale) {
        (Firing::BalanceBelow { threshold, balance, .. }, Locale::ZhCn) => (
            "余额提醒".into(),
            format!(
                "您的账户「{account_label}」余额已低于 {}，当前余额 {}。",
                fmt(threshold),
                fmt(balance)
            ),
        ),
        (Firing::BalanceBelow { threshold, balance, .. }, Locale::ZhTw) => (
            "餘額提醒".into(),
            format!(
                "您的帳戶「{account_label}」餘額已低於 {}，目前餘額 {}。",
                fmt(threshold),
                fmt(balance)
            ),
        ),
        (Firing::BalanceBelow { threshold, balance, .. }, Locale::En) => (
            "Low balance".into(),
            format!(
                "Your {account_label} balance fell below {}; it is now {}.",
                fmt(threshold),
                fmt(balance)
            ),
        ),
        (Firing::DebitAbove { limit, debited }, Locale::ZhCn) => (
            "大额支出提醒".into(),
            format!(
                "您的账户「{account_label}」支出 {}，超过您设置的 {}。",
                fmt(debited),
                fmt(limit)
            ),
        ),
        (Firing::DebitAbove { limit, debited }, Locale::ZhTw) => (
            "大額支出提醒".into(),
            format!(
                "您的帳戶「{account_label}」支出 {}，超過您設定的 {}。",
                fmt(debited),
                fmt(limit)
            ),
        ),
        (Firing::DebitAbove { limit, debited }, Locale::En) => (
            "Large payment".into(),
            format!(
                "{} left your {account_label} account, more than your {} alert.",
                fmt(debited),
                fmt(limit)
            ),
        ),
        (Firing::SalaryReceived { credited }, Locale::ZhCn) => (
            "工资到账".into(),
            format!("您的账户「{account_label}」收到工资 {}。", fmt(credited)),
        ),
        (Firing::SalaryReceived { credited }, Locale::ZhTw) => (
            "薪資入帳".into(),
            format!("您的帳戶「{account_label}」收到薪資 {}。", fmt(credited)),
        ),
        (Firing::SalaryReceived { credited }, Locale::En) => (
            "Salary received".into(),
            format!(
                "Your salary of {} arrived in your {account_label} account.",
                fmt(credited)
            ),
        ),
    }
}

/// The figures of a fired alert for the page (`data` of the inbox message).
pub fn alert_data(firing: &Firing) -> serde_json::Value {
    match *firing {
        Firing::BalanceBelow {
            threshold,
            balance,
            debited,
        } => serde_json::json!({ "threshold": threshold, "balance": balance, "amount": debited }),
        Firing::DebitAbove { limit, debited } => serde_json::json!({ "limit": limit, "amount": debited }),
        Firing::SalaryReceived { credited } => serde_json::json!({ "amount": credited }),
    }
}

/// The inbox dedupe key: one message per subscription and transfer, however often the
/// transfer is heard of.
pub fn alert_dedupe_key(subscription: Uuid, transfer: impl fmt::Display) -> String {
    format!("alert:{}:{transfer}", subscription.hyphenated())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn debit(n: i64, after: i64) -> AccountEvent<'static> {
        AccountEvent {
            debited: n,
            credited: 0,
            category: Some("dining"),
            balance_after: Some(after),
        }
    }

    #[test]
    fn standard_accounts_follow_the_shared_naming() {
        let c = Uuid::nil();
        assert_eq!(
            StandardKind::Current.external_ref(c),
            "cust:00000000-0000-0000-0000-000000000000:current"
        );
        let points = StandardKind::Points.new_account(c);
        assert_eq!((points.unit, points.account_type), (Unit::Points, AccountType::Points));
        assert!(points.validate().is_ok());
        let clearing = clearing_account(Unit::Cny);
        assert_eq!(clearing.external_ref.as_deref(), Some("bank:clearing:CNY"));
        assert!(clearing.limits.allow_negative);
        assert_eq!(display_rank(Some(&StandardKind::Savings.external_ref(c)), c), 1);
        assert_eq!(display_rank(None, c), 3);
    }

    #[test]
    fn transfer_fields_are_parsed() {
        assert_eq!(parse_amount(0), Err(Refusal::InvalidAmount(0)));
        assert_eq!(parse_amount(-1), Err(Refusal::InvalidAmount(-1)));
        assert_eq!(parse_amount(1), Ok(1));
        assert_eq!(parse_currency("CNY"), Ok(Unit::Cny));
        assert!(parse_currency("USD").is_err());
        assert_eq!(parse_category(None).as_deref(), Ok("transfer"));
        assert_eq!(parse_category(Some("dining")).as_deref(), Ok("dining"));
        assert!(parse_category(Some("casino")).is_err());
        assert_eq!(parse_description(Some("  ")), Ok(None));
        assert!(parse_description(Some("a\u{7}b")).is_err());
        assert!(parse_description(Some(&"字".repeat(141))).is_err());
        assert!(parse_payee::<u8>(None, None).is_err());
        assert!(parse_payee(Some(1), Some("138".into())).is_err());
        assert_eq!(parse_payee::<u8>(None, Some("1".into())), Ok(Payee::Phone("1".into())));
    }

    #[test]
    fn dates_are_read_in_the_customers_time_zone() {
        let tz = TimeZone::get("Asia/Shanghai").expect("tz");
        let from = parse_bound("2026-10-05", &tz, Bound::From).expect("from");
        assert_eq!(from.to_string(), "2026-10-04T16:00:00Z");
        let to = parse_bound("2026-10-05", &tz, Bound::To).expect("to");
        assert_eq!(to.to_string(), "2026-10-05T16:00:00Z");
        let instant = parse_bound("2026-10-05T08:00:00+08:00", &tz, Bound::To).expect("instant");
        assert_eq!(instant.to_string(), "2026-10-05T00:00:00Z");
        assert!(parse_bound("yesterday", &tz, Bound::From).is_err());
        assert!(parse_bound("2026-13-01", &tz, Bound::From).is_err());
        assert!(check_range(Some(to), Some(from)).is_err());
        assert!(check_range(Some(from), Some(to)).is_ok());
    }

    #[test]
    fn months_parse_strictly() {
        assert_eq!(Month::parse("2026-10"), Ok(Month { year: 2026, month: 10 }));
        for bad in ["2026-13", "2026-1", "26-10", "2026/10", "", "2026-00", "abcd-ef"] {
            assert!(Month::parse(bad).is_err(), "{bad}");
        }
        let tz = TimeZone::get("Asia/Shanghai").expect("tz");
        let at: Timestamp = "2026-10-31T17:00:00Z".parse().expect("ts");
        assert_eq!(Month::containing(at, &tz).to_string(), "2026-11");
    }

    #[test]
    fn alert_requests_take_exactly_their_own_number() {
        assert_eq!(
            AlertRule::parse("balance_below", Some(500), None),
            Ok(AlertRule::BalanceBelow { threshold: 500 })
        );
        assert!(AlertRule::parse("balance_below", None, None).is_err());
        assert!(AlertRule::parse("balance_below", Some(0), None).is_err());
        assert!(AlertRule::parse("balance_below", Some(5), Some(5)).is_err());
        assert_eq!(
            AlertRule::parse("debit_above", None, Some(9)),
            Ok(AlertRule::DebitAbove { amount: 9 })
        );
        assert!(AlertRule::parse("debit_above", Some(9), None).is_err());
        assert_eq!(
            AlertRule::parse("salary_received", None, None),
            Ok(AlertRule::SalaryReceived)
        );
        assert!(AlertRule::parse("salary_received", None, Some(1)).is_err());
        assert!(AlertRule::parse("lottery_won", None, None).is_err());
        for rule in [
            AlertRule::BalanceBelow { threshold: 7 },
            AlertRule::DebitAbove { amount: 8 },
            AlertRule::SalaryReceived,
        ] {
            assert_eq!(AlertRule::from_stored(rule.kind(), rule.amount()), Some(rule));
        }
    }

    #[test]
    fn a_balance_alert_fires_on_the_crossing_only() {
        let rule = AlertRule::BalanceBelow { threshold: 500 };
        // 800 -> 400: crosses.
        assert!(matches!(
            evaluate(&rule, &debit(400, 400)),
            Some(Firing::BalanceBelow { balance: 400, .. })
        ));
        // 500 -> 499: from exactly the threshold counts.
        assert!(evaluate(&rule, &debit(1, 499)).is_some());
        // 450 -> 400: already below.
        assert!(evaluate(&rule, &debit(50, 400)).is_none());
        // 900 -> 500: not below.
        assert!(evaluate(&rule, &debit(400, 500)).is_none());
        // A credit never fires it, nor an unknown balance.
        let credit = AccountEvent {
            debited: 0,
            credited: 100,
            category: None,
            balance_after: Some(100),
        };
        assert!(evaluate(&rule, &credit).is_none());
        assert!(!rule.needs_balance(&credit));
        let unknown = AccountEvent {
            balance_after: None,
            ..debit(400, 0)
        };
        assert!(rule.needs_balance(&unknown));
        assert!(evaluate(&rule, &unknown).is_none());
    }

    #[test]
    fn debit_and_salary_alerts() {
        let big = AlertRule::DebitAbove { amount: 1000 };
        assert!(evaluate(&big, &debit(1000, 0)).is_none());
        assert_eq!(
            evaluate(&big, &debit(1001, 0)),
            Some(Firing::DebitAbove {
                limit: 1000,
                debited: 1001
            })
        );
        let salary = AlertRule::SalaryReceived;
        let pay = AccountEvent {
            debited: 0,
            credited: 800_000,
            category: Some("salary"),
            balance_after: None,
        };
        assert_eq!(
            evaluate(&salary, &pay),
            Some(Firing::SalaryReceived { credited: 800_000 })
        );
        let refund = AccountEvent {
            category: Some("shopping"),
            ..pay
        };
        assert!(evaluate(&salary, &refund).is_none());
        // The employer's side of a salary transfer is a debit, not salary received.
        assert!(evaluate(&salary, &debit(800_000, 0)).is_none());
    }

    #[test]
    fn messages_speak_the_customers_language() {
        assert_eq!(format_amount(123_456_789, Unit::Cny, Locale::En), "¥1,234,567.89");
        assert_eq!(format_amount(-5, Unit::Cny, Locale::En), "-¥0.05");
        assert_eq!(format_amount(1200, Unit::Points, Locale::ZhCn), "1,200 积分");
        let f = Firing::BalanceBelow {
            threshold: 50_000,
            balance: 40_000,
            debited: 60_000,
        };
        let (title, body) = alert_message(&f, "活期 Current", Unit::Cny, Locale::ZhCn);
        assert_eq!(title, "余额提醒");
        assert!(body.contains("¥500.00") && body.contains("¥400.00"), "{body}");
        assert_eq!(alert_message(&f, "x", Unit::Cny, Locale::ZhTw).0, "餘額提醒");
        assert_eq!(alert_message(&f, "x", Unit::Cny, Locale::En).0, "Low balance");
        assert_eq!(alert_data(&f)["balance"], 40_000);
        assert_eq!(
            alert_dedupe_key(Uuid::nil(), "t1"),
            "alert:00000000-0000-0000-0000-000000000000:t1"
        );
    }
}
