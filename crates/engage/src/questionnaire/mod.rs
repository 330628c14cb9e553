//! (being built)

pub mod routes;

use huoban_kit::MigrationSpec;

pub const MIGRATIONS: &[MigrationSpec] = &[];
