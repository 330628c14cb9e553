//! Campaigns (issue 4, item 3): a themed time window with an audience and budgets, in
//! which rules, tasks and badges run.
//!
//! - [`budget`]: budgets on the ledger: each campaign's points budget is a ledger account
//!   awards are paid out of, inside the transaction that records them.
//! - [`domain`]: validation, lifecycle (draft → scheduled → live → ended), problems.
//! - [`store`]: `campaigns`, and profile attributes for audiences.
//! - [`service`]: the service, `CampaignService`.
//! - [`routes`]: `POST|GET /api/v1/staff/campaigns`, `GET|PUT /api/v1/staff/campaigns/{id}`,
//!   `POST /api/v1/staff/campaigns/{id}/schedule|end`, `GET /api/v1/campaigns[/{id}]`.

pub mod budget;
pub mod domain;
pub mod routes;
pub mod service;
pub mod store;
