//! Rewards (issue 4, item 11): a catalog of coupons and vouchers bought with points, with
//! a total stock, a per-customer limit, a claim window, a title per locale and a validity
//! after the claim; claimed under festival flash-sale load without overselling and
//! without charging twice, on SQLite and on PostgreSQL.
//!
//! - [`domain`]: the rules (validation, window, limits, coupon codes, validity, what
//!   recovery does), pure and unit-tested.
//! - [`store`]: the tables `rewards`, `reward_stock`, `reward_holders`, `reward_claims`.
//! - [`service`]: [`service::RewardsService`], the claim steps and the recovery pass.
//! - [`routes`]: `POST|GET /api/v1/staff/rewards`, `GET /api/v1/rewards`,
//!   `POST /api/v1/rewards/{id}/claims`, `GET /api/v1/coupons`.
//!
//! ## A claim: reserve both, then post both or release both
//! 1. **Reserve**, in one database transaction: insert the claim row in state `reserved`
//!    (`UNIQUE (customer_id, idem_key)`: a second attempt with the key writes nothing and
//!    becomes a replay), count it against the customer's limit with a guarded upsert
//!    (`held = held + 1 WHERE held < limit`), then reserve a unit of stock with
//!    `UPDATE reward_stock SET reserved = reserved + 1 WHERE reward_id = $1 AND
//!    claimed + reserved < total`. Any guard that affects no row rolls the whole
//!    transaction back: 409 `claim-limit-reached` or `out-of-stock`, nothing written.
//! 2. **Hold the points**: a ledger two-phase transfer from the customer's points account
//!    to the bank's points clearing, scope `reward:{customer}`, key = the Idempotency-Key,
//!    built from the claim row alone and expiring after [`service::HOLD_TTL`]. Too few
//!    points: the reservation is released (claim `released`, stock and count returned)
//!    and the answer is 409 `insufficient-points`.
//! 3. **Post** the hold, then in one transaction mark the claim `claimed` and move its
//!    unit from `reserved` to `claimed`. If the hold expired or was voided first, the
//!    reservation is released instead (409 `claim-expired`).
//!
//! **Why it cannot oversell.** Stock only ever leaves the pool through the guarded
//! update in step 1. It is one statement on one row: PostgreSQL takes the row lock and
//! re-evaluates `claimed + reserved < total` against the latest committed version after
//! waiting for a concurrent writer; SQLite has a single writer connection, so the
//! statements run one after another. Either way `claimed + reserved` can reach `total`
//! and never pass it, and the table's CHECK refuses any write that would. Units move from
//! `reserved` to `claimed` (finish) or back to the pool (release) only by transactions
//! that also move the claim out of `reserved` under `WHERE state = 'reserved'`, so each
//! reservation is settled once, whoever settles it.
//!
//! **Why it cannot charge twice.** A claim has one ledger key, so every attempt for it
//! (the first, a concurrent or later replay, recovery) finds the same hold; the ledger
//! posts or voids a hold exactly once. A replay of a `claimed` claim answers the stored
//! coupon; of a `released` one, the stored problem; of a `reserved` one, it drives steps
//! 2–3 on (all idempotent). Refusals in step 1 store nothing, so their key stays free.
//!
//! **Stock and points always agree.** A crash between steps leaves a `reserved` claim.
//! [`service::RewardsService::recover_stale`] (run every 30 s by the server, on any node)
//! takes reservations older than [`service::STALE_AFTER`] and asks the ledger: hold
//! posted → finish; hold open → void it, then decide by what the void answers; voided,
//! expired or never made → release. The ledger decides posted-or-voided once, so the
//! claim follows it. One narrow case remains: a request stalled past `STALE_AFTER`
//! before even creating its hold, released by recovery, then creating and posting it.
//! Step 3 then finds its claim `released` and refunds the points with a transfer keyed by
//! the claim id (at most once), so the customer is never charged for stock they do not
//! hold.

pub mod domain;
pub mod routes;
pub mod service;
pub mod store;
pub mod writer;

use huoban_kit::MigrationSpec;

pub const MIGRATIONS: &[MigrationSpec] = &[
    MigrationSpec {
        version: 2026112243,
        name: "rewards",
        sqlite: include_str!("../../migrations/sqlite/2026112243_rewards.sql"),
        postgres: include_str!("../../migrations/postgres/2026112243_rewards.sql"),
    },
    MigrationSpec {
        version: 2026112246,
        name: "reward_grants",
        sqlite: include_str!("../../migrations/sqlite/2026112246_reward_grants.sql"),
        postgres: include_str!("../../migrations/postgres/2026112246_reward_grants.sql"),
    },
    MigrationSpec {
        version: 2026120640,
        name: "reward_campaigns",
        sqlite: include_str!("../../migrations/sqlite/2026120640_reward_campaigns.sql"),
        postgres: include_str!("../../migrations/postgres/2026120640_reward_campaigns.sql"),
    },
];
