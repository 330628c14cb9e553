//! Behaviour events (issue 4, item 1): what customers do on every channel — page and
//! product views, shares, green trips — reported in batches, plus the ledger postings to
//! their accounts, as the raw material for rules, campaigns and tasks.
//!
//! - [`domain`]: what a valid event is, how a batch is judged event by event, and which
//!   events a ledger posting becomes; pure and unit-tested.
//! - [`store`]: the table `behaviour_events`, unique on (customer, event id).
//! - [`service`]: [`service::EventsService`], which stores a batch durably before it
//!   answers and listens to the ledger.
//! - [`feed`]: every stored event in commit order, with durable per-consumer cursors, for
//!   the capabilities that react to events (rules, tasks, invites, team challenges).
//! - [`routes`]: `POST /api/v1/events`, `GET /api/v1/events`.

pub mod domain;
pub mod feed;
pub mod routes;
pub mod service;
pub mod store;

use huoban_kit::MigrationSpec;

pub const MIGRATIONS: &[MigrationSpec] = &[
    MigrationSpec {
        version: 2026112244,
        name: "events",
        sqlite: include_str!("../../migrations/sqlite/2026112244_events.sql"),
        postgres: include_str!("../../migrations/postgres/2026112244_events.sql"),
    },
    MigrationSpec {
        version: 2026112245,
        name: "event_cursors",
        sqlite: include_str!("../../migrations/sqlite/2026112245_event_cursors.sql"),
        postgres: include_str!("../../migrations/postgres/2026112245_event_cursors.sql"),
    },
    MigrationSpec {
        version: 2026120661,
        name: "posting_sweep",
        sqlite: include_str!("../../migrations/sqlite/2026120661_posting_sweep.sql"),
        postgres: include_str!("../../migrations/postgres/2026120661_posting_sweep.sql"),
    },
];
