//! Step-up authentication (issue 6, item 4): the factors a customer proves themselves
//! with when an operation's risk calls for more than a session — a transaction PIN
//! (argon2id), one-time codes from an authenticator app (TOTP, RFC 6238) or sent through
//! a pluggable [`service::CodeSender`], and passkeys (WebAuthn) — with lockout after five
//! consecutive failures (PSD2 RTS Art. 4(3)(b)) and a configurable cool-down.
//!
//! A step-up is a **challenge** (`POST /api/v1/step-up/challenges`, for a purpose such as
//! `transfer` and an optional reference, five minutes) **verified** with the factor's
//! proof into a **step-up token** (256 random bits, stored only as SHA-256, five minutes,
//! bound to the customer and the purpose). The operation that asked for the step-up
//! redeems it once with [`StepUpService::consume`].
//!
//! - [`domain`]: the rules (purposes, PINs, lockout, HOTP/TOTP, code digests), pure.
//! - [`store`]: the `step_up_*` tables.
//! - [`service`]: the [`StepUpService`] every flow goes through.
//! - [`routes`]: the HTTP endpoints.
//! - [`personal`]: the customer's factors and attempts for their export and erasure.
//!
//! Every attempt — success or the problem slug it was refused with — is a row in
//! `step_up_attempts`. Refusals change nothing but the factor's failure counter.

pub mod domain;
pub mod personal;
pub mod routes;
pub mod service;
pub mod store;

pub use domain::Factor;
pub use service::{CodeSender, OutboxSender, StepUpService, StepUpSettings};

use huoban_kit::MigrationSpec;

pub const MIGRATIONS: &[MigrationSpec] = &[
    MigrationSpec {
        version: 2026112340,
        name: "stepup",
        sqlite: include_str!("../migrations/sqlite/2026112340_stepup.sql"),
        postgres: include_str!("../migrations/postgres/2026112340_stepup.sql"),
    },
    MigrationSpec {
        version: 2026112341,
        name: "stepup_passkeys",
        sqlite: include_str!("../migrations/sqlite/2026112341_stepup_passkeys.sql"),
        postgres: include_str!("../migrations/postgres/2026112341_stepup_passkeys.sql"),
    },
];
