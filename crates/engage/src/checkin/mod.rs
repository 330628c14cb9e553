//! Daily check-in (issue 4, item 5): a customer checks in once per local day in their own
//! time zone, builds a streak, fills a missed day with a make-up card, and earns points at
//! streak milestones, paid through the ledger.
//!
//! - [`domain`]: local days, streak arithmetic, make-up rules, rewards due, the month
//!   calendar; pure and property-tested.
//! - [`store`]: the tables `checkins`, `checkin_rewards`, `checkin_customers`.
//! - [`service`]: [`service::CheckinService`], which plans, writes and pays; its module doc
//!   says how a day and its reward never diverge (owed rewards, deterministic ledger keys).
//! - [`routes`]: `POST /api/v1/checkins`, `POST /api/v1/checkins/makeup`,
//!   `GET /api/v1/checkins/calendar`.
//!
//! The rules are configured in code ([`domain::CheckinConfig::default`]): 1 point per
//! check-in, 10 at a 3-day streak, 30 at 7, 150 at 30, each once per streak run; two
//! make-up cards per calendar month, reaching back seven days.

pub mod domain;
pub mod routes;
pub mod service;
pub mod store;

use huoban_kit::MigrationSpec;

pub const MIGRATIONS: &[MigrationSpec] = &[MigrationSpec {
    version: 2026112240,
    name: "checkin",
    sqlite: include_str!("../../migrations/sqlite/2026112240_checkin.sql"),
    postgres: include_str!("../../migrations/postgres/2026112240_checkin.sql"),
}];
