//! Collaborative savings goals (issue 4, item 6): "¥10,000 for education by next June".
//! A goal has a monthly plan, a ledger goal pocket (`goal:{id}`) whose balance is its
//! progress, milestone messages at 25/50/75/100 %, partners who save into it with their
//! own money, a monthly reminder with a behind-plan nudge, an automatic monthly transfer
//! the owner can turn on, and points converted into the pocket where an offer allows.
//!
//! - [`domain`]: validation, the plan, the suggested transfer day, milestones, projection
//!   and the behind-plan rule; pure and property-tested.
//! - [`store`]: the tables `goals`, `goal_members`, `goal_contributions`,
//!   `goal_milestones`, `goal_reminders`, `goal_auto_transfers`, `goal_conversion_offers`.
//! - [`service`]: [`service::GoalsService`]; its module doc says how milestones fire once
//!   and how reminders run once across nodes.
//! - [`automation`]: the automatic monthly transfer (a durable job per goal) and points
//!   converted into goal money under conversion offers, optionally of a campaign.
//! - [`routes`]: `GET/POST /api/v1/goals`, `GET /api/v1/goals/{id}`,
//!   `POST /api/v1/goals/{id}/deposits`, `POST /api/v1/goals/{id}/partners`,
//!   `PUT|DELETE /api/v1/goals/{id}/auto-transfer`, `POST /api/v1/goals/{id}/conversions`,
//!   `GET /api/v1/goal-conversion-offers`, `POST|GET /api/v1/staff/goal-conversion-offers`.

pub mod automation;
pub mod domain;
pub mod routes;
pub mod service;
pub mod store;

pub use service::GoalsService;

use huoban_kit::MigrationSpec;

pub const MIGRATIONS: &[MigrationSpec] = &[
    MigrationSpec {
        version: 2026112242,
        name: "goals",
        sqlite: include_str!("../../migrations/sqlite/2026112242_goals.sql"),
        postgres: include_str!("../../migrations/postgres/2026112242_goals.sql"),
    },
    MigrationSpec {
        version: 2026120641,
        name: "goal_transfers_conversions",
        sqlite: include_str!("../../migrations/sqlite/2026120641_goal_transfers_conversions.sql"),
        postgres: include_str!("../../migrations/postgres/2026120641_goal_transfers_conversions.sql"),
    },
];
