//! Branching questionnaires and scored quizzes (issue 4, item 8), and the built-in
//! risk-appetite questionnaire that sets a customer's suitability level (C1–C5).
//!
//! - [`domain`]: the graph, its validation, walking and scoring, the risk bands; pure.
//! - [`store`]: the SQL of definitions, sessions and suitability levels.
//! - [`service`]: [`service::QuestionnaireService`], saving, sessions, completion effects
//!   (quiz rewards through the ledger, suitability levels).
//! - [`routes`]: the HTTP endpoints, for staff and for customers.
//!
//! Tables: `questionnaires`, `questionnaire_sessions`, `customer_suitability`.

pub mod domain;
pub mod routes;
pub mod service;
pub mod store;

use huoban_kit::MigrationSpec;

pub const MIGRATIONS: &[MigrationSpec] = &[MigrationSpec {
    version: 2026112241,
    name: "questionnaire",
    sqlite: include_str!("../../migrations/sqlite/2026112241_questionnaire.sql"),
    postgres: include_str!("../../migrations/postgres/2026112241_questionnaire.sql"),
}];
