//! Campaign rules: validation of a definition, the lifecycle and the budgets. Pure.
//!
//! Lifecycle: `draft → scheduled → live → ended`. Staff move a campaign from draft to
//! scheduled and from scheduled or live to ended; the clock does the rest: a scheduled
//! campaign is live from `starts_at` and ended from `ends_at`. Only the staff-set state is
//! stored (`draft`, `scheduled`, `ended`); [`effective`] reads the rest from the clock.

use std::collections::BTreeMap;

use huoban_kit::ApiError;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::expr;

/// A campaign's state as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Draft,
    Scheduled,
    Live,
    Ended,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Draft => "draft",
            State::Scheduled => "scheduled",
            State::Live => "live",
            State::Ended => "ended",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        Some(match s {
            "draft" => State::Draft,
            "scheduled" => State::Scheduled,
            "live" => State::Live,
            "ended" => State::Ended,
            _ => return None,
        })
    }
}

/// The state now, from the stored one and the window.
pub fn effective(stored: State, starts_at: Timestamp, ends_at: Timestamp, now: Timestamp) -> State {
    match stored {
        State::Draft => State::Draft,
        State::Ended => State::Ended,
        State::Scheduled | State::Live if now >= ends_at => State::Ended,
        State::Scheduled | State::Live if now >= starts_at => State::Live,
        State::Scheduled | State::Live => State::Scheduled,
    }
}

/// A transition staff ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Schedule,
    End,
    Update,
}

/// The state stored after `transition` from the effective state `from`, or the problem.
pub fn transition(from: State, transition: Transition, ends_at: Timestamp, now: Timestamp) -> Result<State, ApiError> {
    match (from, transition) {
        (State::Ended, _) => Err(ended()),
        (State::Draft, Transition::Schedule) if ends_at <= now => Err(ApiError::invalid_field(
            "ends_at",
            "the campaign's window is already over; move ends_at before scheduling",
        )),
        (State::Draft, Transition::Schedule) => Ok(State::Scheduled),
        (State::Draft, Transition::Update) => Ok(State::Draft),
        (State::Scheduled | State::Live, Transition::End) => Ok(State::Ended),
        (from, t) => Err(
            ApiError::conflict("invalid-campaign-transition", "Invalid campaign transition")
                .detail(format!(
                    "a {} campaign cannot be {}",
                    from.as_str(),
                    match t {
                        Transition::Schedule => "scheduled",
                        Transition::End => "ended (only scheduled or live ones can)",
                        Transition::Update => "changed (only drafts can)",
                    }
                ))
                .with("state", from.as_str()),
        ),
    }
}

pub fn ended() -> ApiError {
    ApiError::conflict("campaign-ended", "The campaign has ended")
}

pub fn unknown() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "unknown-campaign",
        "Unknown campaign",
    )
    .detail("no campaign has this id")
}

/// A campaign definition as staff send it (create, and update of a draft).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignInput {
    /// Internal name, 1 to 100 characters.
    pub name: String,
    /// Titles per locale: `zh-CN` required, `zh-TW` and `en` optional.
    pub titles: BTreeMap<String, String>,
    /// A lowercase slug for the pages' art, e.g. `spring-festival`.
    pub theme: String,
    /// RFC 3339.
    pub starts_at: String,
    /// RFC 3339, after `starts_at`.
    pub ends_at: String,
    /// CEL over `customer` (`age`, `age_band`, `tags`, `elderly_mode`, `locale`,
    /// `time_zone`, `suitability`, `channel`); empty or absent: everyone.
    #[serde(default)]
    pub audience: String,
    /// Points the campaign may award in total.
    #[serde(default)]
    pub points_budget: i64,
    /// Coupons the campaign may issue in total.
    #[serde(default)]
    pub coupon_budget: i64,
}

/// A checked definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Definition {
    pub name: String,
    pub titles: BTreeMap<String, String>,
    pub theme: String,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub audience: String,
    pub points_cap: i64,
    pub coupon_cap: i64,
}

pub const LOCALES: [&str; 3] = ["zh-CN", "zh-TW", "en"];

pub fn is_slug(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && s.as_bytes()[0].is_ascii_lowercase()
}

pub fn parse_time(field: &str, s: &str) -> Result<Timestamp, ApiError> {
    s.parse::<Timestamp>()
        .map_err(|_| ApiError::invalid_field(field, format!("{s:?} is not an RFC 3339 time")))
}

/// Checks titles per locale: zh-CN present, only known locales, 1 to 100 characters.
pub fn check_titles(titles: &BTreeMap<String, String>) -> Result<(), ApiError> {
    if !titles.contains_key("zh-CN") {
        return Err(ApiError::invalid_field("titles", "a zh-CN title is required"));
    }
    for (locale, title) in titles {
        if !LOCALES.contains(&locale.as_str()) {
            return Err(ApiError::invalid_field(
                "titles",
                format!("unknown locale {locale:?}; use zh-CN, zh-TW or en"),
            ));
        }
        let n = title.trim().chars().count();
        if n == 0 || n > 100 {
            return Err(ApiError::invalid_field("titles", "titles are 1 to 100 characters"));
        }
    }
    Ok(())
}

/// Validates a definition, compiling the audience.
pub fn check(input: CampaignInput) -> Result<Definition, ApiError> {
    let name = input.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::invalid_field("name", "the name is 1 to 100 characters"));
    }
    check_titles(&input.titles)?;
    if !is_slug(&input.theme, 40) {
        return Err(ApiError::invalid_field(
            "theme",
            "the theme is a lowercase slug like spring-festival",
        ));
    }
    let starts_at = parse_time("starts_at", &input.starts_at)?;
    let ends_at = parse_time("ends_at", &input.ends_at)?;
    if ends_at <= starts_at {
        return Err(ApiError::invalid_field("ends_at", "ends_at must be after starts_at"));
    }
    expr::compile(&input.audience, &["customer"]).map_err(|e| invalid_expression("audience", e))?;
    if input.points_budget < 0 {
        return Err(ApiError::invalid_field("points_budget", "budgets are not negative"));
    }
    if input.coupon_budget < 0 {
        return Err(ApiError::invalid_field("coupon_budget", "budgets are not negative"));
    }
    Ok(Definition {
        name,
        titles: input.titles,
        theme: input.theme,
        starts_at,
        ends_at,
        audience: input.audience.trim().to_owned(),
        points_cap: input.points_budget,
        coupon_cap: input.coupon_budget,
    })
}

/// A CEL expression that does not compile: 422 with the parse error.
pub fn invalid_expression(field: &str, error: String) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-rule-expression",
        "The expression is not valid CEL",
    )
    .detail(error.clone())
    .with("field", field)
    .with("parse_error", error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().expect("time")
    }

    #[test]
    fn the_clock_moves_scheduled_campaigns() {
        let (s, e) = (t("2026-01-01T00:00:00Z"), t("2026-02-01T00:00:00Z"));
        assert_eq!(
            effective(State::Scheduled, s, e, t("2025-12-31T00:00:00Z")),
            State::Scheduled
        );
        assert_eq!(effective(State::Scheduled, s, e, s), State::Live);
        assert_eq!(effective(State::Scheduled, s, e, e), State::Ended);
        assert_eq!(effective(State::Draft, s, e, e), State::Draft);
        assert_eq!(effective(State::Ended, s, e, s), State::Ended);
    }

    #[test]
    fn transitions() {
        let now = t("2026-01-10T00:00:00Z");
        let end = t("2026-02-01T00:00:00Z");
        assert_eq!(
            transition(State::Draft, Transition::Schedule, end, now).expect("ok"),
            State::Scheduled
        );
        assert_eq!(
            transition(State::Live, Transition::End, end, now).expect("ok"),
            State::Ended
        );
        assert_eq!(
            transition(State::Draft, Transition::End, end, now)
                .expect_err("no")
                .slug,
            "invalid-campaign-transition"
        );
        assert_eq!(
            transition(State::Live, Transition::Schedule, end, now)
                .expect_err("no")
                .slug,
            "invalid-campaign-transition"
        );
        assert_eq!(
            transition(State::Live, Transition::Update, end, now)
                .expect_err("no")
                .slug,
            "invalid-campaign-transition"
        );
        assert_eq!(
            transition(State::Ended, Transition::End, end, now)
                .expect_err("no")
                .slug,
            "campaign-ended"
        );
        assert_eq!(
            transition(State::Draft, Transition::Schedule, now, end)
                .expect_err("no")
                .slug,
            "validation"
        );
    }
}
