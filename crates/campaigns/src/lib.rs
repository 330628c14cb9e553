//! Campaigns (issue 4, items 2, 3, 4, 7): themed campaigns with audiences and budgets, and
//! what runs inside them, driven by behaviour events:
//!
//! - [`campaigns`]: the campaign lifecycle, audience and budgets ([`campaigns::budget`]:
//!   each points budget is a ledger account of its own that the ledger never lets go
//!   below zero).
//! - [`rules`]: CEL rules over events with windowed aggregates, applied by a background
//!   consumer of the event feed, each (rule, event) at most once; effects and nudges.
//! - [`tasks`]: one-off, daily and weekly tasks with progress and a reward to claim.
//! - [`badges`]: badges with tiers and progress, and levels from points earned.
//! - [`personal`]: the customer's campaign data for their export and erasure.
//!
//! Value moves only through the ledger, out of the campaign's budget account, posted
//! inside the transaction that records the award ([`huoban_ledger::Ledger::transfer_in`])
//! together with its effect, its coupon and its message: a rules batch, like a task
//! claim, commits all of that or none of it.

pub mod badges;
pub mod campaigns;
pub mod expr;
pub mod personal;
pub mod rules;
pub mod tasks;

use axum::extract::FromRef;
use huoban_engage::{EngageState, rewards::service::RewardsService};
use huoban_identity::IdentityService;
use huoban_kit::MigrationSpec;
use utoipa_axum::router::OpenApiRouter;

pub const TAG: &str = "campaigns";

pub const MIGRATIONS: &[MigrationSpec] = &[
    MigrationSpec {
        version: 2026112301,
        name: "campaigns",
        sqlite: include_str!("../migrations/sqlite/2026112301_campaigns.sql"),
        postgres: include_str!("../migrations/postgres/2026112301_campaigns.sql"),
    },
    MigrationSpec {
        version: 2026112302,
        name: "tasks_badges",
        sqlite: include_str!("../migrations/sqlite/2026112302_tasks_badges.sql"),
        postgres: include_str!("../migrations/postgres/2026112302_tasks_badges.sql"),
    },
    MigrationSpec {
        version: 2026120631,
        name: "campaign_budgets",
        sqlite: include_str!("../migrations/sqlite/2026120631_campaign_budgets.sql"),
        postgres: include_str!("../migrations/postgres/2026120631_campaign_budgets.sql"),
    },
];

/// Everything the campaign routes and the rules consumer need; cheap to clone.
#[derive(Debug, Clone, FromRef)]
pub struct CampaignsState {
    pub engage: EngageState,
    pub identity: IdentityService,
    pub campaigns: campaigns::service::CampaignService,
    pub rules: rules::service::RulesService,
    pub tasks: tasks::service::TaskService,
    pub badges: badges::service::BadgeService,
}

impl CampaignsState {
    pub fn new(engage: EngageState) -> Self {
        let campaigns = campaigns::service::CampaignService::new(
            engage.db.clone(),
            engage.identity.store().clone(),
            campaigns::budget::Budgets::new(engage.ledger.clone(), engage.accounts.clone()),
            engage.clock.clone(),
        );
        let rewards = RewardsService::new(&engage);
        let rules = rules::service::RulesService::new(&engage, campaigns.clone(), rewards.clone());
        let tasks = tasks::service::TaskService::new(&engage, campaigns.clone(), rewards);
        let badges = badges::service::BadgeService::new(&engage, campaigns.clone());
        Self {
            identity: engage.identity.clone(),
            engage,
            campaigns,
            rules,
            tasks,
            badges,
        }
    }
}

pub fn router(state: CampaignsState) -> OpenApiRouter {
    OpenApiRouter::new()
        .merge(campaigns::routes::router(state.clone()))
        .merge(rules::routes::router(state.clone()))
        .merge(tasks::routes::router(state.clone()))
        .merge(badges::routes::router(state))
}
