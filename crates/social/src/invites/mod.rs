//! Invite programmes (issue 4, item 9; seed 000: "invite three friends to finish the
//! finance test and unlock a coupon").
//!
//! - [`domain`]: what a valid programme is, invite codes, who may accept a code (the abuse
//!   guards) and progress toward the unlock; pure and unit-tested.
//! - [`store`]: the tables `invite_programmes`, `invite_codes`, `invite_attributions`.
//! - [`service`]: [`service::InvitesService`]: programmes, codes, acceptance, and the
//!   `invites` consumer of the event feed that counts qualifying actions and unlocks.
//! - [`routes`]: `POST|GET /api/v1/staff/invite-programmes`, `GET /api/v1/invite-programmes`,
//!   `POST /api/v1/invites`, `GET /api/v1/invites/mine`, `POST /api/v1/invites/accept`,
//!   `GET /api/v1/invites/{code}/poster.png`.
//!
//! ## Attribution and the unlock
//! An inviter asks for a code in a live programme (one code per inviter and programme)
//! and shares its link `/h5/invite?code=…` or poster. A friend who registered after the
//! code was issued accepts it (`POST /api/v1/invites/accept`, with the page's
//! `X-Device-Id`). One transaction checks the guards and writes the attribution:
//! `self-invite`, `invite-not-eligible` (registered before the code, or already
//! attributed in this programme: primary key (programme, invitee)),
//! `invite-device-reused` (unique (programme, device)), `invite-cap-reached` (the guarded
//! update `accepted = accepted + 1 WHERE accepted < max_invitees`),
//! `unknown-invite-code`, `invite-programme-ended`.
//!
//! The `invites` consumer reads the event feed. An event of the programme's type whose
//! properties match, from an attributed invitee not yet qualified, at or after the
//! acceptance and inside the window, marks the invitee qualified (once:
//! `WHERE qualified_at IS NULL`) and counts for the inviter; when the count reaches the
//! programme's unlock count the code is unlocked (once: `WHERE unlocked_at IS NULL`).
//! Those writes and the cursor move commit together, so a resent or replayed event counts
//! at most once. The prize is then paid (ledger key / grant key
//! `invite:{programme}:{inviter}`), the inviter gets an inbox message, and the code is
//! marked rewarded; a crash in between leaves it owed, and the next pass pays it with the
//! same key.

pub mod domain;
pub mod routes;
pub mod service;
pub mod store;
