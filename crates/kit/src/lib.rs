//! Foundations every Huoban capability stands on, and nothing capability-specific:
//! the database handle for both backends ([`db`]), the HTTP error type ([`problem`]),
//! request extractors that answer bad input with problem+json ([`extract`]),
//! `Idempotency-Key` replay ([`idempotency`]), refusal of cross-site writes ([`csrf`]),
//! security headers ([`headers`]), cursor pagination ([`page`]), the personal-data
//! seam every capability implements for export and erasure ([`personal`]),
//! an injectable clock ([`clock`]) and sortable ids ([`ids`]).

pub mod clock;
pub mod csrf;
pub mod db;
pub mod extract;
pub mod headers;
pub mod idempotency;
pub mod ids;
pub mod page;
pub mod personal;
pub mod problem;
pub mod testing;

pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use db::{Backend, Db, DbError, MigrationSpec};
pub use extract::{ApiJson, ApiPath, ApiQuery};
pub use page::{Page, PageQuery};
pub use problem::ApiError;
