//! [`TaskService`]: staff add tasks to campaigns; customers see their progress this
//! period and claim the reward of a complete task.
//!
//! A claim is one transaction: the points move out of the campaign's budget account on
//! the ledger (keyed `task:{task}:{customer}:{period}`; the ledger refuses to take the
//! budget below zero: `budget-exhausted`), the coupon is granted and counted against the
//! coupon budget (guarded), the task is marked claimed (guarded: `task-already-claimed`)
//! and the effect recorded — all committed together or not at all, so a claim racing
//! the rules consumer for the last of a budget can never make the campaign overpay, and
//! a crash leaves either the whole claim or nothing.

use std::collections::BTreeMap;

use huoban_engage::{EngageState, rewards::service::RewardsService};
use huoban_kit::{ApiError, SharedClock, ids::new_id};
use huoban_ledger::{IdempotencyKey, LedgerError};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::{
    domain::{self, TaskInput},
    store::{TaskRow, TaskStore},
};
use crate::{
    campaigns::{
        budget::{Budgets, all_posted},
        domain::{State, ended},
        service::{CampaignService, audience_matches, iso, state_of},
    },
    rules::{
        domain::{Effect, Period},
        store::RuleStore,
    },
};

/// A task as staff see it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StaffTaskView {
    pub id: Uuid,
    pub campaign_id: Uuid,
    pub titles: BTreeMap<String, String>,
    pub period: Period,
    pub event_type: String,
    pub filter: String,
    pub target: i64,
    pub reward_points: i64,
    pub reward_coupon: Option<Uuid>,
    pub created_at: String,
}

/// A task with your progress this period.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TaskView {
    pub id: Uuid,
    pub campaign_id: Uuid,
    pub title: String,
    pub period: Period,
    /// This period in your time zone: `""` (once), `2026-11-22` (daily), `2026-W47` (weekly).
    pub period_key: String,
    pub event_type: String,
    pub progress: i64,
    pub target: i64,
    pub complete: bool,
    pub claimed: bool,
    pub reward_points: i64,
    pub reward_coupon: Option<Uuid>,
}

/// The answer to a claim.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TaskClaimView {
    pub task_id: Uuid,
    pub period_key: String,
    pub points: i64,
    /// The coupon code, when the task rewards one.
    pub coupon_code: Option<String>,
}

#[derive(Debug, Clone)]
pub struct TaskService {
    store: TaskStore,
    effects: RuleStore,
    campaigns: CampaignService,
    rewards: RewardsService,
    clock: SharedClock,
}

fn staff_view(row: TaskRow) -> StaffTaskView {
    StaffTaskView {
        id: row.id.parse().unwrap_or_default(),
        campaign_id: row.campaign_id.parse().unwrap_or_default(),
        titles: serde_json::from_str(&row.titles).unwrap_or_default(),
        period: Period::parse(&row.period).unwrap_or(Period::Once),
        event_type: row.event_type,
        filter: row.filter,
        target: row.target,
        reward_points: row.reward_points,
        reward_coupon: row.reward_coupon.and_then(|r| r.parse().ok()),
        created_at: iso(row.created_at),
    }
}

impl TaskService {
    pub fn new(engage: &EngageState, campaigns: CampaignService, rewards: RewardsService) -> Self {
        Self {
            store: TaskStore::new(engage.db.clone()),
            effects: RuleStore::new(engage.db.clone()),
            campaigns,
            rewards,
            clock: engage.clock.clone(),
        }
    }

    pub fn store(&self) -> &TaskStore {
        &self.store
    }

    pub async fn create(&self, campaign: Uuid, input: TaskInput) -> Result<StaffTaskView, ApiError> {
        let row = self.campaigns.row(campaign).await?;
        if state_of(&row, self.clock.now()) == State::Ended {
            return Err(ended());
        }
        domain::check(&input)?;
        let id = new_id();
        self.store.insert(id, campaign, &input, self.clock.now()).await?;
        self.get(id).await
    }

    pub async fn get(&self, id: Uuid) -> Result<StaffTaskView, ApiError> {
        Ok(staff_view(self.store.get(id).await?.ok_or_else(domain::unknown)?))
    }

    pub async fn of_campaign(&self, campaign: Uuid) -> Result<Vec<StaffTaskView>, ApiError> {
        self.campaigns.row(campaign).await?;
        Ok(self
            .store
            .of_campaigns(&[campaign])
            .await?
            .into_iter()
            .map(staff_view)
            .collect())
    }

    /// Tasks of the live campaigns the customer is in, with progress this period.
    pub async fn for_customer(&self, customer: Uuid, channel: &str) -> Result<Vec<TaskView>, ApiError> {
        let attrs = self.campaigns.attrs(customer, channel).await?;
        let now = self.clock.now();
        let live: Vec<_> = self
            .campaigns
            .store()
            .live(now)
            .await?
            .into_iter()
            .filter(|c| audience_matches(&c.audience, &attrs))
            .collect();
        let ids: Vec<Uuid> = live.iter().filter_map(|c| c.id.parse().ok()).collect();
        let mut out = Vec::new();
        for row in self.store.of_campaigns(&ids).await? {
            let id: Uuid = row.id.parse().unwrap_or_default();
            let period = Period::parse(&row.period).unwrap_or(Period::Once);
            let key = period.key(now, &attrs.time_zone);
            let (progress, claimed) = self.store.progress(id, customer, &key).await?;
            let titles: BTreeMap<String, String> = serde_json::from_str(&row.titles).unwrap_or_default();
            out.push(TaskView {
                id,
                campaign_id: row.campaign_id.parse().unwrap_or_default(),
                title: titles
                    .get(&attrs.locale)
                    .or_else(|| titles.get("zh-CN"))
                    .cloned()
                    .unwrap_or_default(),
                period,
                period_key: key,
                event_type: row.event_type,
                progress: progress.min(row.target),
                target: row.target,
                complete: progress >= row.target,
                claimed,
                reward_points: row.reward_points,
                reward_coupon: row.reward_coupon.and_then(|r| r.parse().ok()),
            });
        }
        Ok(out)
    }

    /// Claims a complete task's reward for this period.
    pub async fn claim(&self, customer: Uuid, task: Uuid) -> Result<TaskClaimView, ApiError> {
        let row = self.store.get(task).await?.ok_or_else(domain::unknown)?;
        let campaign_id: Uuid = row.campaign_id.parse().map_err(ApiError::internal)?;
        let campaign = self.campaigns.row(campaign_id).await?;
        let now = self.clock.now();
        match state_of(&campaign, now) {
            State::Ended => return Err(ended()),
            State::Draft | State::Scheduled => return Err(domain::unknown()),
            State::Live => {}
        }
        let attrs = self.campaigns.attrs(customer, "").await?;
        if !audience_matches(&campaign.audience, &attrs) {
            return Err(domain::unknown());
        }
        let period = Period::parse(&row.period).unwrap_or(Period::Once);
        let key = period.key(now, &attrs.time_zone);
        let (progress, claimed) = self.store.progress(task, customer, &key).await?;
        domain::check_claim(progress, row.target, claimed)?;
        let budgets = self.campaigns.budgets();
        let mut awards = Vec::new();
        if row.reward_points > 0 {
            let budget = self.campaigns.points_account(&campaign).await?;
            let points = budgets
                .points_accounts(&[customer])
                .await?
                .remove(&customer)
                .ok_or_else(|| ApiError::internal("no points account"))?;
            awards.push(Budgets::award(
                IdempotencyKey::new("task", format!("{task}:{customer}:{key}"))?,
                budget,
                points,
                row.reward_points,
                "Task reward",
                json!({ "source": "task", "task": task, "period": key, "campaign": campaign_id }),
            )?);
        }
        let reward = match row.reward_coupon.as_deref().and_then(|r| r.parse::<Uuid>().ok()) {
            Some(reward) => Some(
                self.rewards
                    .store()
                    .reward(reward)
                    .await?
                    .ok_or_else(|| ApiError::internal("the task's reward left the catalog"))?,
            ),
            None => None,
        };
        let exhausted = || {
            ApiError::conflict("budget-exhausted", "The campaign's budget is used up")
                .detail("the campaign cannot pay this reward any more")
        };
        // One transaction, locks in the order every campaign transaction takes them:
        // ledger accounts, reward stock, the campaign row, then the task's own rows. A
        // refusal returns before the commit: dropping the transaction rolls it back.
        let mut tx = self.effects.db().begin().await?;
        let paid = budgets.ledger().transfer_in(&mut tx, awards).await?;
        match paid.results.first() {
            Some(Err(LedgerError::InsufficientFunds { .. })) => return Err(exhausted()),
            Some(Err(_)) => return Err(all_posted(paid).err().unwrap_or_else(exhausted)),
            _ => {}
        }
        let mut coupon_code = None;
        if let Some(reward) = &reward {
            let granted = self
                .rewards
                .grant_in(&mut tx, customer, reward, &format!("task:{task}:{key}"), now)
                .await??;
            coupon_code = Some(granted.code);
            if !self.campaigns.store().take_coupons(&mut tx, campaign_id, 1).await? {
                return Err(exhausted());
            }
        }
        if !self.store.mark_claimed(&mut tx, &row, customer, &key, now).await? {
            return Err(domain::already_claimed());
        }
        self.effects
            .record_effect(
                &mut tx,
                &Effect {
                    customer,
                    campaign: campaign_id,
                    rule: None,
                    seq: None,
                    event_id: None,
                    kind: "task_reward",
                    detail: json!({ "task": task, "period": key, "points": row.reward_points,
                                    "coupon_code": coupon_code, "campaign_name": campaign.name }),
                },
                now,
            )
            .await?;
        tx.commit().await.map_err(huoban_kit::DbError::from)?;
        budgets.ledger().announce(&paid);
        Ok(TaskClaimView {
            task_id: task,
            period_key: key,
            points: row.reward_points,
            coupon_code,
        })
    }
}
