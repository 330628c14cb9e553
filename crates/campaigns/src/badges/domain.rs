//! Badge definitions, tiers and levels. Pure.
//!
//! A badge counts matching events (type + CEL filter); its tiers are thresholds
//! (bronze 1, silver 3, gold 10, …). Levels come from points *earned* — points credited to
//! the customer by Huoban rewards over their lifetime — never from the spendable balance,
//! so spending points on a coupon does not lower a level.

use std::collections::BTreeMap;

use huoban_kit::ApiError;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    campaigns::domain::{check_titles, invalid_expression, is_slug},
    expr,
    rules::domain::Tier,
};

/// A badge as staff send it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BadgeInput {
    /// The campaign it belongs to; absent: a badge of its own, always counting.
    pub campaign_id: Option<Uuid>,
    /// Titles per locale: `zh-CN` required.
    pub titles: BTreeMap<String, String>,
    /// The event type that counts.
    pub event_type: String,
    /// CEL over `event`, `customer` and `counters`; empty: every such event.
    #[serde(default)]
    pub filter: String,
    /// 1 to 5 tiers with increasing thresholds, e.g. bronze 1, silver 3, gold 10.
    pub tiers: Vec<Tier>,
}

pub fn check(input: &BadgeInput) -> Result<(), ApiError> {
    check_titles(&input.titles)?;
    if !is_slug(&input.event_type, 64) {
        return Err(ApiError::invalid_field(
            "event_type",
            "the event type is a slug like share",
        ));
    }
    expr::compile(&input.filter, &["event", "customer", "counters"]).map_err(|e| invalid_expression("filter", e))?;
    if input.tiers.is_empty() || input.tiers.len() > 5 {
        return Err(ApiError::invalid_field("tiers", "a badge has 1 to 5 tiers"));
    }
    let mut last = 0;
    for tier in &input.tiers {
        if !is_slug(&tier.name, 32) {
            return Err(ApiError::invalid_field("tiers", "tier names are slugs like bronze"));
        }
        if tier.threshold <= last || tier.threshold > 100_000 {
            return Err(ApiError::invalid_field(
                "tiers",
                "thresholds increase from tier to tier, from 1 to 100,000",
            ));
        }
        last = tier.threshold;
    }
    Ok(())
}

/// Levels: (level, points earned needed).
pub const LEVELS: [(i64, i64); 6] = [(1, 0), (2, 100), (3, 500), (4, 2_000), (5, 10_000), (6, 50_000)];

/// The level for points earned, and the next level with its threshold (none at the top).
pub fn level(earned: i64) -> (i64, Option<(i64, i64)>) {
    let mut current = LEVELS[0].0;
    let mut next = None;
    for (lvl, threshold) in LEVELS {
        if earned >= threshold {
            current = lvl;
        } else {
            next = Some((lvl, threshold));
            break;
        }
    }
    (current, next)
}

/// A badge's standing for the wall: the tier reached and the next one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Standing {
    pub tier: Option<String>,
    pub next_tier: Option<String>,
    /// Progress toward the next tier ("2 of 3": `progress` 2, `next_threshold` 3).
    pub next_threshold: Option<i64>,
}

pub fn standing(tiers: &[Tier], progress: i64) -> Standing {
    let next = tiers.iter().find(|t| progress < t.threshold);
    Standing {
        tier: crate::rules::domain::tier_of(tiers, progress).map(|t| t.name.clone()),
        next_tier: next.map(|t| t.name.clone()),
        next_threshold: next.map(|t| t.threshold),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_from_earned_points() {
        assert_eq!(level(0), (1, Some((2, 100))));
        assert_eq!(level(99), (1, Some((2, 100))));
        assert_eq!(level(100), (2, Some((3, 500))));
        assert_eq!(level(60_000), (6, None));
    }

    #[test]
    fn standings() {
        let tiers = vec![
            Tier {
                name: "bronze".into(),
                threshold: 1,
            },
            Tier {
                name: "silver".into(),
                threshold: 3,
            },
        ];
        let s = standing(&tiers, 2);
        assert_eq!(s.tier.as_deref(), Some("bronze"));
        assert_eq!(s.next_threshold, Some(3));
        assert_eq!(standing(&tiers, 5).next_tier, None);
    }
}
