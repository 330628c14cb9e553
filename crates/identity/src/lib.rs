//! Identity: who is calling. Customers with their profile (locale, time zone, elderly
//! mode), staff users with roles, sessions that remember the channel they were opened on
//! (app, H5, mini-program, WeChat official account, web), single-use hand-off tokens that
//! carry a sign-in from one channel to another, and sign-in by a signed assertion from the
//! bank's identity provider.
//!
//! Other capabilities authenticate callers with the [`auth::CustomerAuth`] and
//! [`auth::StaffAuth`] extractors and check staff permissions with
//! [`auth::StaffAuth::require`]; the role → permission table lives in [`domain::Role`].

pub mod audit;
pub mod auth;
pub mod domain;
pub mod idp;
pub mod limits;
pub mod routes;
pub mod secrets;
pub mod service;
pub mod sessions;
pub mod store;
pub mod vault;

pub use auth::{CustomerAuth, StaffAuth};
pub use domain::{Channel, Locale, Permission, Role};
pub use service::{IdentityService, IdentitySettings};

use huoban_kit::MigrationSpec;

pub const MIGRATIONS: &[MigrationSpec] = &[
    MigrationSpec {
        version: 2026112202,
        name: "identity",
        sqlite: include_str!("../migrations/sqlite/2026112202_identity.sql"),
        postgres: include_str!("../migrations/postgres/2026112202_identity.sql"),
    },
    MigrationSpec {
        version: 2026112351,
        name: "personal_data",
        sqlite: include_str!("../migrations/sqlite/2026112351_personal_data.sql"),
        postgres: include_str!("../migrations/postgres/2026112351_personal_data.sql"),
    },
    MigrationSpec {
        version: 2026120652,
        name: "erasure_requests",
        sqlite: include_str!("../migrations/sqlite/2026120652_erasure_requests.sql"),
        postgres: include_str!("../migrations/postgres/2026120652_erasure_requests.sql"),
    },
];
