//! Huoban's behaviour suite: every test runs against a real server on a loopback port,
//! once on SQLite and once on PostgreSQL, each on a fresh database.

mod helpers;

mod cli;
mod conventions;
mod identity;
mod idp;
mod staff;
