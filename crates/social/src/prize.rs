//! A prize for an invite unlock or a finished team challenge: points paid through the
//! ledger, or a coupon granted from the rewards catalog (no points charged). Either way
//! under a deterministic idempotency key, so paying again after a crash or a resent event
//! pays nothing more.
//!
//! Points come out of the campaign's points budget when the challenge or programme
//! belongs to a campaign (the budget account never goes below zero, so a spent budget pays
//! nothing more: the prize stays owed, and is paid if operators raise the budget), and out
//! of the bank's points clearing account when it belongs to none.

use huoban_engage::{EngageState, rewards::service::RewardsService};
use huoban_kit::ApiError;
use huoban_ledger::{Amount, IdempotencyKey, TransferMeta, TransferRequest, Unit};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Most points one prize may pay.
pub const MAX_POINTS: i64 = 1_000_000;

/// What a prize is, as staff define it: exactly one of `points` and `reward_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrizeSpec {
    /// Points credited to the customer's points account (1 to 1,000,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub points: Option<i64>,
    /// A reward of the catalog (`/api/v1/staff/rewards`) granted as a coupon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reward_id: Option<Uuid>,
}

/// A valid prize.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prize {
    Points(i64),
    Coupon(Uuid),
}

impl Prize {
    /// Exactly one of points and coupon, points in range. The message names the problem.
    pub fn from_spec(spec: &PrizeSpec) -> Result<Prize, String> {
        match (spec.points, spec.reward_id) {
            (Some(p), None) if (1..=MAX_POINTS).contains(&p) => Ok(Prize::Points(p)),
            (Some(p), None) => Err(format!("points must be 1 to {MAX_POINTS}, not {p}")),
            (None, Some(id)) => Ok(Prize::Coupon(id)),
            _ => Err("give exactly one of points and reward_id".into()),
        }
    }

    /// As stored: (points, reward id).
    pub fn columns(self) -> (Option<i64>, Option<String>) {
        match self {
            Prize::Points(p) => (Some(p), None),
            Prize::Coupon(id) => (None, Some(id.to_string())),
        }
    }

    /// From stored columns.
    pub fn from_columns(points: Option<i64>, reward_id: Option<&str>) -> Option<Prize> {
        match (points, reward_id.and_then(|r| r.parse().ok())) {
            (Some(p), None) => Some(Prize::Points(p)),
            (None, Some(id)) => Some(Prize::Coupon(id)),
            _ => None,
        }
    }

    pub fn spec(self) -> PrizeSpec {
        match self {
            Prize::Points(p) => PrizeSpec {
                points: Some(p),
                reward_id: None,
            },
            Prize::Coupon(id) => PrizeSpec {
                points: None,
                reward_id: Some(id),
            },
        }
    }

    /// A short Chinese description for messages.
    pub fn describe(self) -> String {
        match self {
            Prize::Points(p) => format!("{p} 积分"),
            Prize::Coupon(_) => "一张专属优惠券".into(),
        }
    }
}

/// Pays `prize` to `customer` once per (`scope`, `key`): a ledger transfer for points (from
/// `campaign`'s points budget when given), a granted coupon (keyed `{scope}:{key}`) for a
/// coupon.
pub async fn pay(
    state: &EngageState,
    customer: Uuid,
    prize: Prize,
    campaign: Option<&str>,
    scope: &str,
    key: &str,
    description: &str,
) -> Result<(), ApiError> {
    match prize {
        Prize::Points(points) => {
            let account = state.accounts.ensure_standard_accounts(customer).await?.points;
            let source = match campaign {
                Some(campaign) => state.points_budget(campaign).await?,
                None => state.accounts.clearing(Unit::Points).await?,
            };
            let request = TransferRequest::single(
                IdempotencyKey::new(scope, key)?,
                Unit::Points,
                source,
                account,
                Amount::new(points)?,
            )
            .with_meta(TransferMeta {
                description: Some(description.to_owned()),
                merchant_category: Some("rewards".to_owned()),
                metadata: Some(serde_json::json!({ "source": scope, "key": key })),
                ..TransferMeta::default()
            });
            state.ledger.transfer(request).await?;
        }
        Prize::Coupon(reward) => {
            RewardsService::new(state)
                .grant(customer, reward, &format!("{scope}:{key}"))
                .await?;
        }
    }
    Ok(())
}

/// A coupon prize must name a reward of the catalog: 422 `validation` on `reward` if not.
pub async fn check_reward_exists(state: &EngageState, reward: Uuid) -> Result<(), ApiError> {
    let found: Option<(i64,)> = sqlx::query_as("SELECT 1 FROM rewards WHERE id = $1")
        .bind(reward.to_string())
        .fetch_optional(state.db.reader())
        .await
        .map_err(huoban_kit::DbError::from)?;
    match found {
        Some(_) => Ok(()),
        None => Err(ApiError::invalid_field(
            "reward",
            format!("no reward {reward} in the catalog"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prize_is_points_or_a_coupon_never_both() {
        let id = Uuid::now_v7();
        let spec = |points, reward_id| PrizeSpec { points, reward_id };
        assert_eq!(Prize::from_spec(&spec(Some(50), None)), Ok(Prize::Points(50)));
        assert_eq!(Prize::from_spec(&spec(None, Some(id))), Ok(Prize::Coupon(id)));
        assert!(Prize::from_spec(&spec(Some(50), Some(id))).is_err());
        assert!(Prize::from_spec(&spec(None, None)).is_err());
        assert!(Prize::from_spec(&spec(Some(0), None)).is_err());
        let stored = Prize::Coupon(id).columns();
        assert_eq!(
            Prize::from_columns(stored.0, stored.1.as_deref()),
            Some(Prize::Coupon(id))
        );
    }
}
