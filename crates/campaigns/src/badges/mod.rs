//! Badges and levels (issue 4, item 7): badge definitions with criteria and tiers,
//! progress toward each (counted by the rules consumer), the badge wall, and levels from
//! points earned.
//!
//! - [`domain`]: validation, tiers, levels; [`store`]: `badges`, `badge_progress`, points
//!   earned; [`service`]: [`service::BadgeService`]; [`routes`]: `POST|GET
//!   /api/v1/staff/badges`, `GET /api/v1/badges`, `GET /api/v1/me/level`.

pub mod domain;
pub mod routes;
pub mod service;
pub mod store;
