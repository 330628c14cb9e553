//! Rewards (issue 4, item 11): a catalog of coupons and vouchers bought with points, with
//! a total stock, a per-customer limit, a claim window, a title per locale and a validity
//! after the claim; claimed under festival flash-sale load without overselling and
//! without charging twice, on SQLite and on PostgreSQL.
//!
//! - [`domain`]: the rules (validation, window, limits, coupon codes, validity, what
//!   recovery does), pure and unit-tested.
//! - [`store`]: the tables `rewards`, `reward_stock`, `reward_holders`, `reward_claims`.
//! - [`writer`]: the claim writer, group commit for the claim writes.
//! - [`service`]: [`service::RewardsService`], the claim steps and the recovery pass.
//! - [`routes`]: `POST|GET /api/v1/staff/rewards`, `GET /api/v1/rewards`,
//!   `POST /api/v1/rewards/{id}/claims`, `GET /api/v1/coupons`.
//!
//! A reward may belong to a campaign (`campaign_id`, checked at creation through
//! [`crate::CampaignGate`]: 404 `unknown-campaign`, 409 `campaign-ended`); it is then listed
//! and claimable only while that campaign is live and its audience admits the customer
//! (409 `reward-not-claimable` otherwise). Grants (prizes a rule, invite or team already
//! earned) are not held back by the campaign's state.
//!
//! ## A claim: read, reserve both, then post both or release both
//! 0. **Read**, one statement on the reader pool: the reward with its stock, the customer's
//!    holding, and whether this customer used the key already. A used key is a replay.
//!    Otherwise the window, then [`domain::sure_refusal`]: the customer at their limit, or
//!    no unit left (reservations count as taken) — the very guards of step 1, so the read
//!    refuses exactly what step 1 would have refused at that instant and lets through
//!    everything else. Most attempts of a flash sale end here, with no write.
//! 1. **Reserve**, through the [`writer`] (one transaction for whatever claim writes are
//!    waiting, under the reward's stock-row lock): the claim row in state `reserved` (a key
//!    used already writes nothing and becomes a replay), the customer's count unless they
//!    hold their limit, a unit of stock unless `claimed + reserved = total`. A refused
//!    reservation writes nothing: 409 `claim-limit-reached` or `out-of-stock`.
//! 2. **Hold the points**: a ledger two-phase transfer from the customer's points account
//!    to the bank's points clearing, scope `reward:{customer}`, key = the Idempotency-Key,
//!    built from the claim row alone and expiring after [`service::HOLD_TTL`]. Too few
//!    points: the reservation is released (claim `released`, stock and count returned)
//!    and the answer is 409 `insufficient-points`.
//! 3. **Post** the hold, then in one transaction mark the claim `claimed` and move its
//!    unit from `reserved` to `claimed`. If the hold expired or was voided first, the
//!    reservation is released instead (409 `claim-expired`).
//!
//! **Why it cannot oversell.** Stock only ever leaves the pool in step 1, decided by the
//! writer while it holds the reward's stock row locked (`FOR UPDATE` on PostgreSQL, the
//! file's write lock on SQLite) and counting every earlier write of its batch, so no two
//! decisions see the same free unit, on one node or several; `claimed + reserved` can
//! reach `total` and never pass it, and the table's CHECK refuses any write that would.
//! The read of step 0 only ever refuses. Units move from `reserved` to `claimed` (finish)
//! or back to the pool (release) only together with the claim leaving `reserved`, checked
//! under the same lock (and again by `WHERE state = 'reserved'`), so each reservation is
//! settled once, whoever settles it.
//!
//! **Why it cannot charge twice.** A claim has one ledger key, so every attempt for it
//! (the first, a concurrent or later replay, recovery) finds the same hold; the ledger
//! posts or voids a hold exactly once. A replay of a `claimed` claim answers the stored
//! coupon; of a `released` one, the stored problem; of a `reserved` one, it drives steps
//! 2–3 on (all idempotent). Refusals in steps 0 and 1 store nothing, so their key stays
//! free, and the HTTP idempotency layer stores no response for claims (their key is kept
//! natively).
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
pub mod grant;
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
