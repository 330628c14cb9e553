//! Adaptive security (issue 6, the risk side): security that adapts instead of annoying
//! everyone.
//!
//! - [`domain`]: the pure risk engine — request context parsing, the tunable [`Policy`]
//!   and its validation, [`domain::decide`] (`allow`, `step_up` with a factor, `hold`,
//!   `deny`, always with reasons), operation tiers and trust levels.
//! - [`store`]: the SQL (`risk_*` tables).
//! - [`facts`]: each customer's facts kept in memory between transfers, checked against
//!   the customer's stamp (raised by every write, on any node) — see "Facts in memory".
//! - [`service`]: [`RiskService`] — gathers facts, decides, stores every decision with
//!   its inputs and policy version (replayable), and acts: step-up challenges answered
//!   through a [`StepUpVerifier`], delayed settlement of high-value transfers, anomaly
//!   holds with a "was this you?" inbox message, freezes and cases.
//! - [`routes`]: customer and staff endpoints and the sign-in observer middleware.
//!
//! ## Transfers
//! Accounts calls the service through `huoban_accounts::gate::TransferGate` before a
//! transfer moves anything: allowed transfers post at once; delayed ones (at or above
//! the high-value threshold, default ¥50,000) and held ones (anomalies) become ledger
//! holds (`Ledger::create_pending`). A delayed transfer's row in `risk_holds` carries its
//! due time; [`RiskService::settle_due`], run every few seconds by the server on any
//! node, claims due rows with a lease (a conditional update) and posts the hold — the
//! ledger posts a hold at most once, so it settles exactly once and survives restarts.
//! Cancelling moves the row from `waiting` to `cancelled` (unless a live lease is
//! settling it) and voids the hold.
//!
//! ## Recording
//! Refusals and step-up challenges are stored before the answer. The outcome of a transfer
//! the ledger took is written by a group-commit recorder together with what it teaches the
//! customer's profile (amount history, hour habits, payee, device) and, for delayed and
//! held transfers, the hold row — a whole group in one transaction and a fixed handful of
//! multi-row statements. Held and delayed ones (and sign-ins) wait until durable; a plain
//! allowed one is gathered for up to 100 ms and written after the answer, so a checked
//! transfer does not pay a second commit (a crash in that window loses the record, never
//! money or a timer). Queuing a plain allow wakes nobody: the recorder, once woken by the
//! first of a group, listens only for outcomes someone waits for until the group is due. A
//! group of plain allows alone is committed without waiting for the disk
//! (`Db::write_lazily`: on SQLite the one writer is not held for a sync; it reaches the
//! disk with the next ordinary commit), which loses nothing the window above did not.
//!
//! ## Facts in memory, several nodes
//! Every write that changes a customer's facts raises their version in `risk_stamps` in
//! the same transaction. Each node keeps customers' facts in memory ([`facts`]) with the
//! version they were read at and this node's unwritten outcomes on top. A transfer is
//! decided on them without reading anything for `risk.facts_max_age_ms` after the version
//! was last confirmed; after that it reads the version with the key's earlier decision
//! (one indexed read, started while accounts resolves the transfer's accounts) and re-reads
//! the facts only if the version moved. Anything but a plain allow decided on unconfirmed
//! facts is decided again on confirmed ones, so a kept snapshot never refuses, holds,
//! delays or asks a step-up by itself; another node's change (a freeze, a removed device)
//! reaches this node within the max age (0 makes every transfer read the version).

//! ## Step-up
//! A `step_up` decision answers 403 `step-up-required` with the factor and a `challenge`
//! (the decision id). The client proves the factor with the step-up service, which gives a
//! token for that challenge, and repeats the same request (same `Idempotency-Key`) with
//! `X-Step-Up-Token`; [`StepUpVerifier::consume`] is called with the challenge as
//! `purpose`. Until the real factors are wired, [`RejectAllStepUps`] refuses every token.

pub mod domain;
pub mod facts;
pub mod routes;
pub mod service;
pub mod store;

pub use domain::{Decision, Factor, Inputs, Operation, Outcome, Policy};
pub use service::{RejectAllStepUps, RiskService, StepUpVerifier};

use huoban_kit::MigrationSpec;

pub const MIGRATIONS: &[MigrationSpec] = &[
    MigrationSpec {
        version: 2026112330,
        name: "risk",
        sqlite: include_str!("../migrations/sqlite/2026112330_risk.sql"),
        postgres: include_str!("../migrations/postgres/2026112330_risk.sql"),
    },
    MigrationSpec {
        version: 2026120630,
        name: "risk_stamps",
        sqlite: include_str!("../migrations/sqlite/2026120630_risk_stamps.sql"),
        postgres: include_str!("../migrations/postgres/2026120630_risk_stamps.sql"),
    },
];
