//! Tasks (issue 4, item 4): one-off, daily and weekly tasks whose progress events drive
//! (counted by the rules consumer, in the customer's time zone), with a reward to claim.
//!
//! - [`domain`]: validation and claim checks; [`store`]: `campaign_tasks`, `task_progress`;
//!   [`service`]: [`service::TaskService`]; [`routes`]: `POST|GET
//!   /api/v1/staff/campaigns/{id}/tasks`, `GET /api/v1/tasks`, `POST /api/v1/tasks/{id}/claim`.

pub mod domain;
pub mod routes;
pub mod service;
pub mod store;
