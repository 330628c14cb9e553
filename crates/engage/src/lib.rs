//! Engagement (seed 000: "I take part, I see it, I grow"): the features that give a
//! customer a reason to come back. Each lives in its own module with its pure rules
//! (`domain.rs`), its tables (`store.rs`) and its routes (`routes.rs`):
//!
//! - [`checkin`]: daily check-in streaks in the customer's own time zone, streak rewards
//!   paid in points through the ledger, make-up cards, the month calendar.
//! - [`questionnaire`]: branching questionnaires and scored quizzes, validated as graphs,
//!   and the built-in risk-appetite questionnaire that sets a suitability level.
//! - [`goals`]: collaborative savings goals filling a ledger goal pocket, with a monthly
//!   plan, milestone messages, partners, durable monthly reminders, an automatic monthly
//!   transfer and points converted into the pocket under (campaign) conversion offers.
//! - [`events`]: behaviour events reported by every channel in batches, idempotent per
//!   client event id, and the ledger postings to customers' accounts as events.
//! - [`rewards`]: a points-priced catalog of coupons, optionally of a campaign, claimed
//!   under flash-sale load without overselling or charging twice.
//!
//! Campaigns (a crate that depends on this one) answer through [`CampaignGate`].
//!
//! - [`personal`]: the customer's engagement data for their export and erasure.
//!
//! Value never changes here directly: rewards are ledger transfers with idempotency keys.

pub mod checkin;
pub mod events;
pub mod goals;
pub mod personal;
pub mod questionnaire;
pub mod rewards;

use axum::extract::FromRef;
use huoban_accounts::AccountsService;
use huoban_identity::IdentityService;
use huoban_inbox::InboxService;
use huoban_kit::{Db, MigrationSpec, SharedClock};
use huoban_ledger::Ledger;
use utoipa_axum::router::OpenApiRouter;

/// A boxed future, as [`CampaignGate`] answers.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// What engage asks of campaigns: rewards and goal conversion offers may belong to a
/// campaign (issue 4, item 3). The campaigns crate depends on engage, so engage defines
/// the question here and the server wires in the campaigns capability as the answer
/// (`crates/huoban/src/app.rs`); engage never reads the campaign tables.
pub trait CampaignGate: Send + Sync + std::fmt::Debug {
    /// May something new belong to this campaign? `Ok` when it exists and has not ended;
    /// otherwise the problem to answer: 404 `unknown-campaign` or 409 `campaign-ended`.
    fn check_open<'a>(&'a self, campaign_id: &'a str) -> BoxFuture<'a, Result<(), huoban_kit::ApiError>>;

    /// The campaigns live now whose audience admits the customer (signed in on
    /// `channel`), by id.
    fn live_for<'a>(
        &'a self,
        customer: uuid::Uuid,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<std::collections::BTreeSet<String>, huoban_kit::ApiError>>;

    /// The campaign's points budget account on the ledger (never below zero), which pays
    /// the points of what belongs to the campaign — a rule, a task, a team challenge's or an
    /// invite programme's prize — so the campaign stops paying when it runs out. 404
    /// `unknown-campaign` when there is no such campaign.
    fn points_budget<'a>(
        &'a self,
        campaign_id: &'a str,
    ) -> BoxFuture<'a, Result<huoban_ledger::AccountId, huoban_kit::ApiError>>;
}

/// Everything the engagement routes need.
#[derive(Debug, Clone, FromRef)]
pub struct EngageState {
    pub db: Db,
    pub clock: SharedClock,
    pub identity: IdentityService,
    pub accounts: AccountsService,
    pub ledger: Ledger,
    /// Goal milestones and reminders are inbox messages (the server's one inbox, so they
    /// are pushed live to open pages).
    pub inbox: InboxService,
    /// The campaigns capability, for rewards and conversion offers that belong to a
    /// campaign; `None` (tools and tests without campaigns) refuses any campaign id.
    pub campaigns: Option<std::sync::Arc<dyn CampaignGate>>,
    /// What a check-in pays and how many make-ups it allows (the `[checkin]` configuration).
    pub checkin: std::sync::Arc<checkin::domain::CheckinConfig>,
}

impl EngageState {
    /// Refuses a campaign id that names no campaign or an ended one (nothing to check
    /// without an id).
    pub async fn check_campaign(&self, campaign_id: Option<&str>) -> Result<(), huoban_kit::ApiError> {
        match (campaign_id, &self.campaigns) {
            (None, _) => Ok(()),
            (Some(id), Some(campaigns)) => campaigns.check_open(id).await,
            (Some(_), None) => Err(huoban_kit::ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "unknown-campaign",
                "Unknown campaign",
            )
            .detail("campaigns are not available on this server")
            .with("field", "campaign_id")),
        }
    }

    /// The campaign's points budget account ([`CampaignGate::points_budget`]); the same
    /// 404 `unknown-campaign` as [`Self::check_campaign`] without a campaigns capability.
    pub async fn points_budget(&self, campaign_id: &str) -> Result<huoban_ledger::AccountId, huoban_kit::ApiError> {
        match &self.campaigns {
            Some(campaigns) => campaigns.points_budget(campaign_id).await,
            None => {
                self.check_campaign(Some(campaign_id)).await?;
                Err(huoban_kit::ApiError::internal("no campaigns capability"))
            }
        }
    }

    /// The live campaigns open to the customer; empty without a campaigns capability.
    pub async fn live_campaigns(
        &self,
        customer: uuid::Uuid,
        channel: &str,
    ) -> Result<std::collections::BTreeSet<String>, huoban_kit::ApiError> {
        match &self.campaigns {
            Some(campaigns) => campaigns.live_for(customer, channel).await,
            None => Ok(Default::default()),
        }
    }
}

pub fn migrations() -> Vec<MigrationSpec> {
    let mut all = Vec::new();
    all.extend_from_slice(checkin::MIGRATIONS);
    all.extend_from_slice(questionnaire::MIGRATIONS);
    all.extend_from_slice(goals::MIGRATIONS);
    all.extend_from_slice(rewards::MIGRATIONS);
    all.extend_from_slice(events::MIGRATIONS);
    all
}

pub fn router(state: EngageState) -> OpenApiRouter {
    OpenApiRouter::new()
        .merge(checkin::routes::router(state.clone()))
        .merge(rewards::routes::router(state.clone()))
        .merge(goals::routes::router(state.clone()))
        .merge(events::routes::router(state.clone()))
        .merge(questionnaire::routes::router(state))
}
