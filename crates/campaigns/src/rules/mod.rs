//! Rules (issue 4, item 2): CEL conditions over behaviour events, windowed aggregates,
//! budgets, per-customer limits and actions, applied by a background consumer of the
//! event feed (see [`service`] for the batch steps and why each (rule, event) applies at
//! most once and a crash replays without doubling).
//!
//! - [`domain`]: definitions and the in-memory decision for a batch; [`store`]: SQL,
//!   multi-row; [`service`]: [`service::RulesService`] and the consumer; [`metrics`]: the
//!   processing lag; [`routes`]: `POST|GET /api/v1/staff/campaigns/{id}/rules`,
//!   `PUT /api/v1/staff/customers/{id}/tags`, `GET /api/v1/me/effects`,
//!   `GET /api/v1/nudges`, `POST /api/v1/nudges/{id}/dismiss`.

pub mod domain;
pub mod metrics;
pub mod routes;
pub mod service;
pub mod store;
