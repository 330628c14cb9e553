//! Accounts: the customer-facing side of the ledger. A customer's standard accounts
//! (current, savings, points) opened on first use, balances, transaction history with
//! filters, monthly statements by category in the customer's time zone, transfers between
//! their own accounts or to another customer by phone, balance alerts delivered to the
//! inbox, and read-only staff views whose every use is recorded.
//!
//! - [`domain`]: the rules (account naming, transfer fields, date filters, alert rules and
//!   their messages), pure.
//! - [`store`]: the SQL of alert subscriptions.
//! - [`service`]: [`AccountsService`], the handle the server and other capabilities use
//!   ([`AccountsService::ensure_standard_accounts`], [`AccountsService::clearing`]).
//! - [`listener`]: the alert listener on the ledger's stream of posted transfers.
//! - [`routes`]: the HTTP endpoints.
//!
//! Balances are never stored here: every change of value is a ledger transfer, and
//! history and statements are the ledger's reads.

pub mod domain;
pub mod gate;
pub mod listener;
pub mod routes;
pub mod service;
pub mod store;

pub use domain::{CATEGORIES, StandardKind};
pub use service::{AccountsService, StandardAccounts};

use huoban_kit::MigrationSpec;

pub const MIGRATIONS: &[MigrationSpec] = &[MigrationSpec {
    version: 2026112230,
    name: "accounts_alerts",
    sqlite: include_str!("../migrations/sqlite/2026112230_accounts_alerts.sql"),
    postgres: include_str!("../migrations/postgres/2026112230_accounts_alerts.sql"),
}];
