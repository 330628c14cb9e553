//! Task definitions and claims. Pure. Periods (once, daily, weekly in the customer's
//! time zone) are [`crate::rules::domain::Period`], shared with the rules consumer that
//! counts progress.

use std::collections::BTreeMap;

use huoban_kit::ApiError;
use serde::Deserialize;
use uuid::Uuid;

use crate::{
    campaigns::domain::{check_titles, invalid_expression, is_slug},
    expr,
    rules::domain::Period,
};

/// A task as staff send it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskInput {
    /// Titles per locale: `zh-CN` required.
    pub titles: BTreeMap<String, String>,
    pub period: Period,
    /// The event type that counts, e.g. `share`, `check_in`, `green_trip`.
    pub event_type: String,
    /// CEL over `event`, `customer` and `counters`; empty: every such event counts.
    #[serde(default)]
    pub filter: String,
    /// Events needed, 1 to 1,000.
    pub target: i64,
    /// Points paid on claim (from the campaign's points budget).
    #[serde(default)]
    pub reward_points: i64,
    /// A catalog reward issued as a coupon on claim (counted against the coupon budget).
    pub reward_coupon: Option<Uuid>,
}

pub fn check(input: &TaskInput) -> Result<(), ApiError> {
    check_titles(&input.titles)?;
    if !is_slug(&input.event_type, 64) {
        return Err(ApiError::invalid_field(
            "event_type",
            "the event type is a slug like share",
        ));
    }
    expr::compile(&input.filter, &["event", "customer", "counters"]).map_err(|e| invalid_expression("filter", e))?;
    if !(1..=1000).contains(&input.target) {
        return Err(ApiError::invalid_field("target", "target is 1 to 1,000"));
    }
    if !(0..=1_000_000).contains(&input.reward_points) {
        return Err(ApiError::invalid_field(
            "reward_points",
            "reward_points is 0 to 1,000,000",
        ));
    }
    if input.reward_points == 0 && input.reward_coupon.is_none() {
        return Err(ApiError::invalid_field(
            "reward_points",
            "a task rewards points, a coupon or both",
        ));
    }
    Ok(())
}

/// Whether a claim may go ahead: `progress` of `target`, already `claimed`?
pub fn check_claim(progress: i64, target: i64, claimed: bool) -> Result<(), ApiError> {
    if claimed {
        return Err(already_claimed());
    }
    if progress < target {
        return Err(ApiError::conflict("task-not-complete", "The task is not complete")
            .detail(format!("{progress} of {target} done"))
            .with("progress", progress)
            .with("target", target));
    }
    Ok(())
}

pub fn already_claimed() -> ApiError {
    ApiError::conflict("task-already-claimed", "The task's reward was already claimed")
}

pub fn unknown() -> ApiError {
    ApiError::new(axum::http::StatusCode::NOT_FOUND, "unknown-task", "Unknown task").detail("no task has this id")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims() {
        assert!(check_claim(3, 3, false).is_ok());
        assert_eq!(check_claim(2, 3, false).expect_err("no").slug, "task-not-complete");
        assert_eq!(check_claim(3, 3, true).expect_err("no").slug, "task-already-claimed");
    }
}
