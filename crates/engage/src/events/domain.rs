//! The pure rules of behaviour events: what a valid client event is (id, type, channel,
//! time, properties), how a batch is judged event by event (a repeat of an id within the
//! batch is a duplicate), and which events a ledger posting becomes for its customer
//! accounts. No I/O here.

use std::collections::{BTreeMap, HashSet};

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value};

/// Most events in one request.
pub const MAX_BATCH: usize = 1_000;
/// Longest client event id, in bytes (visible ASCII only).
pub const MAX_ID_LEN: usize = 128;
/// Longest event type.
pub const MAX_TYPE_LEN: usize = 64;
/// Largest `properties` object, as compact JSON, in bytes.
pub const MAX_PROPERTIES_BYTES: usize = 4 * 1024;
/// How far ahead of the server's clock an event's time may be (client clock skew).
pub const MAX_FUTURE: SignedDuration = SignedDuration::from_secs(5 * 60);
/// Client event ids may not start with this: ledger postings use it.
pub const LEDGER_ID_PREFIX: &str = "ledger:";
/// The channel stored for events derived from ledger postings.
pub const LEDGER_CHANNEL: &str = "ledger";

/// The channels a client event may come from.
pub const CHANNELS: &[&str] = &["app", "h5", "mini_program", "wechat_oa", "web"];

/// The channel of events the server records about what a customer did through its own
/// features (a check-in, a finished questionnaire).
pub const SERVER_CHANNEL: &str = "server";

/// A daily check-in (or make-up), recorded with the check-in. Properties: `date`, `kind`
/// (`checkin`/`makeup`), `streak`.
pub const CHECK_IN: &str = "check_in";
/// A finished questionnaire or quiz, recorded with its last answer. Properties:
/// `questionnaire_id`, `kind` (`survey`/`quiz`/`risk_appetite`), `score`, `passed`,
/// `suitability`.
pub const QUESTIONNAIRE_COMPLETED: &str = "questionnaire_completed";

/// Types only the server records (ledger postings, its own features); clients cannot send
/// them, so rules that pay for them cannot be gamed.
pub const RESERVED_TYPES: &[&str] = &[
    LedgerEventType::DEPOSIT,
    LedgerEventType::TRANSFER_OUT,
    LedgerEventType::TRANSFER_IN,
    CHECK_IN,
    QUESTIONNAIRE_COMPLETED,
];

const FIELDS: &[&str] = &["id", "type", "channel", "at", "properties"];

/// A valid event, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub id: String,
    pub kind: String,
    pub channel: String,
    pub at: Timestamp,
    /// Compact JSON of an object.
    pub properties: String,
}

/// Why one event of a batch was not stored: a problem type slug, the field at fault
/// and a human sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub slug: &'static str,
    pub title: &'static str,
    pub field: Option<&'static str>,
    pub detail: String,
}

impl Rejection {
    fn new(slug: &'static str, title: &'static str, field: Option<&'static str>, detail: impl Into<String>) -> Self {
        Self {
            slug,
            title,
            field,
            detail: detail.into(),
        }
    }

    fn invalid(field: &'static str, detail: impl Into<String>) -> Self {
        Self::new("invalid-event", "The event is not valid", Some(field), detail)
    }
}

/// What became of one event of a batch, before storage decides `accepted` vs `duplicate`.
#[derive(Debug, Clone, PartialEq)]
pub enum Judged {
    /// Valid; store it (accepted unless the customer already has this id).
    Valid(NewEvent),
    /// Valid, but an earlier event of the same batch has the same id.
    RepeatInBatch {
        id: String,
    },
    Rejected {
        id: Option<String>,
        rejection: Rejection,
    },
}

/// Judges each event of a batch, in order, against the server's `now`.
pub fn judge_batch(events: &[Value], now: Timestamp) -> Vec<Judged> {
    let mut seen = HashSet::new();
    events
        .iter()
        .map(|raw| match validate(raw, now) {
            Ok(event) => {
                if seen.insert(event.id.clone()) {
                    Judged::Valid(event)
                } else {
                    Judged::RepeatInBatch { id: event.id }
                }
            }
            Err(rejection) => Judged::Rejected {
                id: raw.get("id").and_then(Value::as_str).map(str::to_owned),
                rejection,
            },
        })
        .collect()
}

/// Validates one client event.
pub fn validate(raw: &Value, now: Timestamp) -> Result<NewEvent, Rejection> {
    let Some(object) = raw.as_object() else {
        return Err(Rejection::new(
            "invalid-event",
            "The event is not valid",
            None,
            "an event must be a JSON object",
        ));
    };
    if let Some(unknown) = object.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(Rejection::new(
            "invalid-event",
            "The event is not valid",
            None,
            format!("unknown field {unknown:?}; expected one of {}", FIELDS.join(", ")),
        ));
    }
    let id = check_id(string_field(object, "id")?)?;
    let kind = check_type(string_field(object, "type")?)?;
    let channel = check_channel(string_field(object, "channel")?)?;
    let at = check_at(string_field(object, "at")?, now)?;
    let properties = check_properties(object.get("properties"))?;
    Ok(NewEvent {
        id: id.to_owned(),
        kind: kind.to_owned(),
        channel: channel.to_owned(),
        at,
        properties,
    })
}

fn string_field<'a>(object: &'a Map<String, Value>, field: &'static str) -> Result<&'a str, Rejection> {
    match object.get(field) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(Rejection::invalid(field, format!("{field} must be a string"))),
        None => Err(Rejection::invalid(field, format!("{field} is missing"))),
    }
}

/// 1 to 128 visible ASCII characters, not starting with `ledger:`.
pub fn check_id(id: &str) -> Result<&str, Rejection> {
    if id.is_empty() || id.len() > MAX_ID_LEN || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Rejection::new(
            "invalid-event-id",
            "The event id is not valid",
            Some("id"),
            format!("an event id is 1 to {MAX_ID_LEN} visible ASCII characters"),
        ));
    }
    if id.starts_with(LEDGER_ID_PREFIX) {
        return Err(Rejection::new(
            "invalid-event-id",
            "The event id is not valid",
            Some("id"),
            format!("event ids starting with {LEDGER_ID_PREFIX:?} are reserved for ledger postings"),
        ));
    }
    Ok(id)
}

/// Whether `kind` is a lowercase slug: `[a-z][a-z0-9_]*`, at most 64 characters.
pub fn is_type_slug(kind: &str) -> bool {
    let mut bytes = kind.bytes();
    kind.len() <= MAX_TYPE_LEN
        && bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A lowercase slug that is not one of the server's own types.
pub fn check_type(kind: &str) -> Result<&str, Rejection> {
    if !is_type_slug(kind) {
        return Err(Rejection::new(
            "invalid-event-type",
            "The event type is not valid",
            Some("type"),
            format!("an event type is a lowercase slug like page_view, at most {MAX_TYPE_LEN} characters"),
        ));
    }
    if RESERVED_TYPES.contains(&kind) {
        return Err(Rejection::new(
            "invalid-event-type",
            "The event type is not valid",
            Some("type"),
            format!("{kind:?} is recorded by the server itself and cannot be sent"),
        ));
    }
    Ok(kind)
}

pub fn check_channel(channel: &str) -> Result<&str, Rejection> {
    if CHANNELS.contains(&channel) {
        Ok(channel)
    } else {
        Err(Rejection::new(
            "invalid-channel",
            "The channel is not valid",
            Some("channel"),
            format!("channel must be one of {}", CHANNELS.join(", ")),
        ))
    }
}

/// An RFC 3339 instant no more than [`MAX_FUTURE`] ahead of `now`.
pub fn check_at(at: &str, now: Timestamp) -> Result<Timestamp, Rejection> {
    let parsed: Timestamp = at.parse().map_err(|_| {
        Rejection::new(
            "invalid-event-time",
            "The event time is not valid",
            Some("at"),
            format!("{at:?} is not an RFC 3339 time like 2026-11-22T08:30:00+08:00"),
        )
    })?;
    if parsed.duration_since(now) > MAX_FUTURE {
        return Err(Rejection::new(
            "invalid-event-time",
            "The event time is not valid",
            Some("at"),
            format!("{at} is more than 5 minutes in the future"),
        ));
    }
    Ok(parsed)
}

/// A JSON object (absent means `{}`) of at most 4 KB as compact JSON; returns that JSON.
pub fn check_properties(properties: Option<&Value>) -> Result<String, Rejection> {
    let object = match properties {
        None | Some(Value::Null) => return Ok("{}".to_owned()),
        Some(value @ Value::Object(_)) => value,
        Some(_) => {
            return Err(Rejection::new(
                "invalid-properties",
                "The event properties are not valid",
                Some("properties"),
                "properties must be a JSON object",
            ));
        }
    };
    let json = object.to_string();
    if json.len() > MAX_PROPERTIES_BYTES {
        return Err(Rejection::new(
            "properties-too-large",
            "The event properties are too large",
            Some("properties"),
            format!(
                "properties are {} bytes as JSON; at most {MAX_PROPERTIES_BYTES} are allowed",
                json.len()
            ),
        ));
    }
    Ok(json)
}

/// The event types a ledger posting becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerEventType {
    /// Money in from outside the customers (salary, funding, rewards).
    Deposit,
    /// Money out of the customer's account.
    TransferOut,
    /// Money in from a customer's account (another customer's, or their own).
    TransferIn,
}

impl LedgerEventType {
    pub const DEPOSIT: &'static str = "deposit";
    pub const TRANSFER_OUT: &'static str = "transfer_out";
    pub const TRANSFER_IN: &'static str = "transfer_in";

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deposit => Self::DEPOSIT,
            Self::TransferOut => Self::TRANSFER_OUT,
            Self::TransferIn => Self::TRANSFER_IN,
        }
    }
}

/// The event id of a posting to an account: one per transfer and account.
pub fn ledger_event_id(transfer_id: &str, account: &str) -> String {
    format!("{LEDGER_ID_PREFIX}{transfer_id}:{account}")
}

/// One account's net movement in a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetMovement {
    pub out: i64,
    pub into: i64,
    /// Whether the account belongs to a customer.
    pub customer_owned: bool,
}

/// For each customer-owned account a transfer moved value in or out of, the event type
/// and the net amount: net out is `transfer_out`; net in is `transfer_in` when a
/// customer-owned account paid into the transfer, else `deposit`. Accounts that net to
/// zero get nothing.
pub fn classify_ledger<K: Ord + Clone>(movements: &BTreeMap<K, NetMovement>) -> Vec<(K, LedgerEventType, i64)> {
    let from_customer = movements.values().any(|m| m.customer_owned && m.out > m.into);
    movements
        .iter()
        .filter(|(_, m)| m.customer_owned)
        .filter_map(|(k, m)| {
            let net = m.into.saturating_sub(m.out);
            match net {
                0 => None,
                n if n < 0 => Some((k.clone(), LedgerEventType::TransferOut, -n)),
                n if from_customer => Some((k.clone(), LedgerEventType::TransferIn, n)),
                n => Some((k.clone(), LedgerEventType::Deposit, n)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn now() -> Timestamp {
        "2026-11-22T06:00:00Z".parse().expect("instant")
    }

    fn event(id: &str) -> Value {
        json!({"id": id, "type": "page_view", "channel": "h5", "at": "2026-11-22T13:59:00+08:00",
               "properties": {"page": "/home"}})
    }

    fn slug_of(raw: Value) -> &'static str {
        validate(&raw, now()).expect_err("rejected").slug
    }

    #[test]
    fn a_valid_event_is_normalized() {
        let e = validate(&event("e-1"), now()).expect("valid");
        assert_eq!(e.id, "e-1");
        assert_eq!(e.kind, "page_view");
        assert_eq!(e.channel, "h5");
        assert_eq!(e.at, "2026-11-22T05:59:00Z".parse::<Timestamp>().expect("instant"));
        assert_eq!(e.properties, r#"{"page":"/home"}"#);
        let mut bare = event("e-2");
        bare.as_object_mut().expect("object").remove("properties");
        assert_eq!(validate(&bare, now()).expect("valid").properties, "{}");
    }

    #[test]
    fn ids_are_one_to_128_visible_ascii_and_not_ledger_ones() {
        assert!(check_id("a").is_ok());
        assert!(check_id(&"x".repeat(128)).is_ok());
        assert!(check_id("").is_err());
        assert!(check_id(&"x".repeat(129)).is_err());
        assert!(check_id("has space").is_err());
        assert!(check_id("事件").is_err());
        assert!(check_id("tab\there").is_err());
        assert!(check_id("ledger:abc").is_err());
    }

    #[test]
    fn types_are_lowercase_slugs_and_ledger_types_are_reserved() {
        for ok in ["page_view", "product_view", "share", "green_trip", "a", "v2_click"] {
            assert!(check_type(ok).is_ok(), "{ok}");
        }
        for bad in ["", "PageView", "page-view", "2fa", "_x", "page view", &"a".repeat(65)] {
            assert!(check_type(bad).is_err(), "{bad}");
        }
        assert!(check_type(&"a".repeat(64)).is_ok());
        for reserved in RESERVED_TYPES {
            assert!(check_type(reserved).is_err());
        }
    }

    #[test]
    fn channels_are_the_five_known_ones() {
        for c in CHANNELS {
            assert!(check_channel(c).is_ok());
        }
        assert!(check_channel("sms").is_err());
        assert!(check_channel("H5").is_err());
    }

    #[test]
    fn times_are_rfc3339_and_at_most_five_minutes_ahead() {
        assert!(check_at("2026-11-22T06:05:00Z", now()).is_ok());
        assert!(check_at("2026-11-22T06:05:01Z", now()).is_err());
        assert!(check_at("2020-01-01T00:00:00Z", now()).is_ok());
        assert!(check_at("2026-11-22 06:00", now()).is_err());
        assert!(check_at("yesterday", now()).is_err());
    }

    #[test]
    fn properties_are_an_object_of_at_most_4_kb() {
        assert_eq!(check_properties(Some(&json!({}))).expect("valid"), "{}");
        assert!(check_properties(Some(&json!([1]))).is_err());
        assert!(check_properties(Some(&json!("x"))).is_err());
        // {"k":"…"} is 8 bytes plus the value.
        let fits = json!({ "k": "x".repeat(MAX_PROPERTIES_BYTES - 8) });
        assert!(check_properties(Some(&fits)).is_ok());
        let over = json!({ "k": "x".repeat(MAX_PROPERTIES_BYTES - 7) });
        assert_eq!(
            check_properties(Some(&over)).expect_err("too large").slug,
            "properties-too-large"
        );
    }

    #[test]
    fn each_kind_of_bad_event_names_its_problem() {
        assert_eq!(slug_of(json!("nope")), "invalid-event");
        let mut extra = event("e");
        extra["surprise"] = json!(1);
        assert_eq!(slug_of(extra), "invalid-event");
        let mut no_type = event("e");
        no_type.as_object_mut().expect("object").remove("type");
        assert_eq!(slug_of(no_type), "invalid-event");
        let mut numeric_id = event("e");
        numeric_id["id"] = json!(7);
        assert_eq!(slug_of(numeric_id), "invalid-event");
        let mut bad_type = event("e");
        bad_type["type"] = json!("Bad Type");
        assert_eq!(slug_of(bad_type), "invalid-event-type");
        let mut future = event("e");
        future["at"] = json!("2026-11-22T07:00:00Z");
        assert_eq!(slug_of(future), "invalid-event-time");
    }

    #[test]
    fn a_batch_is_judged_in_order_and_a_repeated_id_is_a_duplicate() {
        let mut bad = event("b");
        bad["channel"] = json!("fax");
        let judged = judge_batch(&[event("a"), bad, event("a"), event("c")], now());
        assert!(matches!(&judged[0], Judged::Valid(e) if e.id == "a"));
        assert!(
            matches!(&judged[1], Judged::Rejected { id: Some(id), rejection } if id == "b" && rejection.slug == "invalid-channel")
        );
        assert_eq!(judged[2], Judged::RepeatInBatch { id: "a".into() });
        assert!(matches!(&judged[3], Judged::Valid(e) if e.id == "c"));
    }

    fn moved(out: i64, into: i64, customer_owned: bool) -> NetMovement {
        NetMovement {
            out,
            into,
            customer_owned,
        }
    }

    #[test]
    fn postings_become_deposits_and_transfers_for_customer_accounts_only() {
        let funding = BTreeMap::from([("clearing", moved(500, 0, false)), ("alice", moved(0, 500, true))]);
        assert_eq!(
            classify_ledger(&funding),
            vec![("alice", LedgerEventType::Deposit, 500)]
        );
        let p2p = BTreeMap::from([("alice", moved(300, 0, true)), ("bob", moved(0, 300, true))]);
        assert_eq!(
            classify_ledger(&p2p),
            vec![
                ("alice", LedgerEventType::TransferOut, 300),
                ("bob", LedgerEventType::TransferIn, 300)
            ]
        );
        let with_fee = BTreeMap::from([
            ("alice", moved(310, 0, true)),
            ("bob", moved(0, 300, true)),
            ("fees", moved(0, 10, false)),
        ]);
        assert_eq!(classify_ledger(&with_fee).len(), 2);
        let passing_through = BTreeMap::from([("alice", moved(100, 100, true))]);
        assert!(classify_ledger(&passing_through).is_empty());
        assert_eq!(ledger_event_id("t1", "a1"), "ledger:t1:a1");
    }
}
