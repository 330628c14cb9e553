//! Engagement (seed 000: "I take part, I see it, I grow"): the features that give a
//! customer a reason to come back. Each lives in its own module with its pure rules
//! (`domain.rs`), its tables (`store.rs`) and its routes (`routes.rs`):
//!
//! - [`checkin`]: daily check-in streaks in the customer's own time zone, streak rewards
//!   paid in points through the ledger, make-up cards, the month calendar.
//! - [`questionnaire`]: branching questionnaires and scored quizzes, validated as graphs,
//!   and the built-in risk-appetite questionnaire that sets a suitability level.
//! - [`goals`]: collaborative savings goals filling a ledger goal pocket, with a monthly
//!   plan, milestone messages, partners and durable monthly reminders.
//! - [`events`]: behaviour events reported by every channel in batches, idempotent per
//!   client event id, and the ledger postings to customers' accounts as events.
//! - [`rewards`]: a points-priced catalog of coupons, claimed under flash-sale load
//!   without overselling or charging twice.
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
