//! Which behaviour events count for an invite programme or a team challenge: an event type
//! and a JSON object of properties the event must carry with equal values. Pure.

use serde_json::{Map, Value};

/// Longest event type, as behaviour events allow.
pub const MAX_TYPE_LEN: usize = 64;
/// Most properties a match may name.
pub const MAX_MATCH_KEYS: usize = 10;

/// Checks a staff-given event type: lower-case ASCII letters, digits and `_`, 1 to 64.
pub fn check_event_type(kind: &str) -> Result<(), String> {
    let ok = !kind.is_empty()
        && kind.len() <= MAX_TYPE_LEN
        && kind.starts_with(|c: char| c.is_ascii_lowercase())
        && kind
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{kind:?} is not an event type like green_trip (lower-case letters, digits, _)"
        ))
    }
}

/// Checks a properties match: at most [`MAX_MATCH_KEYS`] keys with scalar values.
pub fn check_match(matcher: &Map<String, Value>) -> Result<(), String> {
    if matcher.len() > MAX_MATCH_KEYS {
        return Err(format!("at most {MAX_MATCH_KEYS} properties may be matched"));
    }
    match matcher
        .iter()
        .find(|(_, v)| v.is_object() || v.is_array() || v.is_null())
    {
        Some((k, _)) => Err(format!("property {k:?} must be matched by a string, number or boolean")),
        None => Ok(()),
    }
}

/// True when the event is of `kind` and carries every property of `matcher` with an equal
/// value.
pub fn matches(kind: &str, matcher: &Map<String, Value>, event_kind: &str, properties: &Value) -> bool {
    kind == event_kind && matcher.iter().all(|(k, v)| properties.get(k) == Some(v))
}

/// A stored match (JSON text) as an object; anything else matches nothing extra.
pub fn parse_match(text: &str) -> Map<String, Value> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_event_counts_when_its_type_and_every_matched_property_agree() {
        let matcher = parse_match(r#"{"questionnaire_id": "risk-appetite"}"#);
        let props = json!({ "questionnaire_id": "risk-appetite", "score": 12 });
        assert!(matches(
            "questionnaire_completed",
            &matcher,
            "questionnaire_completed",
            &props
        ));
        assert!(!matches("questionnaire_completed", &matcher, "check_in", &props));
        let other = json!({ "questionnaire_id": "money-quiz" });
        assert!(!matches(
            "questionnaire_completed",
            &matcher,
            "questionnaire_completed",
            &other
        ));
        assert!(!matches(
            "questionnaire_completed",
            &matcher,
            "questionnaire_completed",
            &json!({})
        ));
        assert!(matches("green_trip", &Map::new(), "green_trip", &json!({})));
    }

    #[test]
    fn event_types_and_matches_are_checked() {
        assert!(check_event_type("green_trip").is_ok());
        assert!(check_event_type("Green Trip").is_err());
        assert!(check_event_type("").is_err());
        assert!(check_match(&parse_match(r#"{"a": 1, "b": "x", "c": true}"#)).is_ok());
        assert!(check_match(&parse_match(r#"{"a": {"b": 1}}"#)).is_err());
    }
}
