//! The audit trail (issue 6, item 7): an append-only log of staff actions, staff access to
//! customer data, sign-ins and security decisions. Each entry carries the SHA-256 of the
//! previous one over a canonical encoding ([`domain`]), database triggers refuse UPDATE and
//! DELETE, and every `checkpoint_every` entries (and periodically) the head is signed with
//! Ed25519, so a rewritten tail is detectable as well. `huoban audit verify` and
//! `GET /api/v1/staff/audit/verify` check it all.
//!
//! Other capabilities record through [`AuditLog::record`]; identity reaches it through the
//! [`huoban_identity::audit::AuditSink`] hook.

pub mod domain;
pub mod routes;
pub mod service;
pub mod store;

pub use service::{Actor, AuditEntry, AuditLog, AuditSettings, VerifyReport, generate_key};

use huoban_kit::MigrationSpec;

pub const MIGRATIONS: &[MigrationSpec] = &[MigrationSpec {
    version: 2026112350,
    name: "audit",
    sqlite: include_str!("../migrations/sqlite/2026112350_audit.sql"),
    postgres: include_str!("../migrations/postgres/2026112350_audit.sql"),
}];
