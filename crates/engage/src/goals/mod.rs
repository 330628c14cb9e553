//! Collaborative savings goals (issue 4, item 6): "¥10,000 for education by next June".
//! A goal has a monthly plan, a ledger goal pocket (`goal:{id}`) whose balance is its
//! progress, milestone messages at 25/50/75/100 %, partners who save into it with their
//! own money, and a monthly reminder with a behind-plan nudge.
//!
//! - [`domain`]: validation, the plan, the suggested transfer day, milestones, projection
//!   and the behind-plan rule; pure and property-tested.
//! - [`store`]: the tables `goals`, `goal_members`, `goal_contributions`,
//!   `goal_milestones`, `goal_reminders`.
//! - [`service`]: [`service::GoalsService`]; its module doc says how milestones fire once
//!   and how reminders run once across nodes.
//! - [`routes`]: `GET/POST /api/v1/goals`, `GET /api/v1/goals/{id}`,
//!   `POST /api/v1/goals/{id}/deposits`, `POST /api/v1/goals/{id}/partners`.

pub mod domain;
pub mod routes;
pub mod service;
pub mod store;

pub use service::GoalsService;

use huoban_kit::MigrationSpec;

pub const MIGRATIONS: &[MigrationSpec] = &[MigrationSpec {
    version: 2026112242,
    name: "goals",
    sqlite: include_str!("../../migrations/sqlite/2026112242_goals.sql"),
    postgres: include_str!("../../migrations/postgres/2026112242_goals.sql"),
}];
