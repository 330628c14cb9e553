//! Behaviour tests of the ledger against a real database, each on both backends
//! (SQLite file and PostgreSQL schema), each on a fresh database. One test binary keeps
//! linking time down.

mod concurrency;
mod errors;
mod idempotency;
mod in_transaction;
mod invariants;
mod model;
mod pending;
mod support;
mod transfers;
