//! [`TaskService`]: staff add tasks to campaigns; customers see their progress this
//! period and claim the reward of a complete task.
//!
//! A claim marks the task claimed and takes the reward from the campaign's budgets in one
//! transaction, then pays: points by a ledger transfer keyed `task:{task}:{customer}:{period}`,
//! a coupon by a grant keyed the same way. A second claim answers `task-already-claimed`
//! after repeating the (idempotent) payment, so a claim interrupted after its commit is
//! finished by the retry and never paid twice.

use std::collections::BTreeMap;

use huoban_accounts::AccountsService;
use huoban_engage::{EngageState, rewards::service::RewardsService};
use huoban_kit::{ApiError, SharedClock, ids::new_id};
use huoban_ledger::{Amount, IdempotencyKey, Ledger, TransferMeta, TransferRequest, Unit};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::{
    domain::{self, TaskInput},
    store::{TaskRow, TaskStore},
};
use crate::{
    campaigns::{
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
    accounts: AccountsService,
    ledger: Ledger,
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
            accounts: engage.accounts.clone(),
            ledger: engage.ledger.clone(),
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
        if claimed {
            // Finish a payment a crash may have interrupted, then refuse.
            self.pay(customer, &row, &key).await?;
            return Err(domain::already_claimed());
        }
        domain::check_claim(progress, row.target, false)?;
        let coupons = i64::from(row.reward_coupon.is_some());
        match self.store.claim(&row, customer, &key, coupons, now).await? {
            None => return Err(domain::already_claimed()),
            Some(false) => {
                return Err(
                    ApiError::conflict("budget-exhausted", "The campaign's budget is used up")
                        .detail("the campaign cannot pay this reward any more"),
                );
            }
            Some(true) => {}
        }
        let view = self.pay(customer, &row, &key).await?;
        self.effects
            .record_effect(
                &Effect {
                    customer,
                    campaign: campaign_id,
                    rule: None,
                    seq: None,
                    event_id: None,
                    kind: "task_reward",
                    detail: json!({ "task": task, "period": key, "points": row.reward_points,
                                    "coupon_code": view.coupon_code, "campaign_name": campaign.name }),
                },
                now,
            )
            .await?;
        Ok(view)
    }

    async fn pay(&self, customer: Uuid, row: &TaskRow, period: &str) -> Result<TaskClaimView, ApiError> {
        let task: Uuid = row.id.parse().map_err(ApiError::internal)?;
        if row.reward_points > 0 {
            let points = self.accounts.ensure_standard_accounts(customer).await?.points;
            let clearing = self.accounts.clearing(Unit::Points).await?;
            let key = IdempotencyKey::new("task", format!("{task}:{customer}:{period}"))?;
            let request = TransferRequest::single(key, Unit::Points, clearing, points, Amount::new(row.reward_points)?)
                .with_meta(TransferMeta {
                    description: Some("Task reward".to_owned()),
                    merchant_category: Some(crate::rules::service::REWARDS_CATEGORY.to_owned()),
                    metadata: Some(json!({ "source": "task", "task": task, "period": period })),
                    ..TransferMeta::default()
                });
            self.ledger.transfer(request).await?;
        }
        let mut coupon_code = None;
        if let Some(reward) = row.reward_coupon.as_deref().and_then(|r| r.parse::<Uuid>().ok()) {
            let (claim, _) = self
                .rewards
                .grant(customer, reward, &format!("task:{task}:{period}"))
                .await?;
            coupon_code = Some(claim.code);
        }
        Ok(TaskClaimView {
            task_id: task,
            period_key: period.to_owned(),
            points: row.reward_points,
            coupon_code,
        })
    }
}
