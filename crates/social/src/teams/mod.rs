//! Team challenges (issue 4, item 10; seed 000: "a 30-day green-travel check-in plan done
//! together").
//!
//! - [`domain`]: what a valid challenge and team name are, who may create or join a team,
//!   the leaderboard order; pure and unit-tested.
//! - [`store`]: the tables `team_challenges`, `teams`, `team_members`.
//! - [`service`]: [`service::TeamsService`]: challenges, teams, joining, progress, the
//!   leaderboard, and the `teams` consumer of the event feed.
//! - [`routes`]: `POST|GET /api/v1/staff/challenges`, `GET /api/v1/challenges`,
//!   `POST /api/v1/challenges/{id}/teams`, `POST /api/v1/teams/join`,
//!   `GET /api/v1/teams/{id}`, `GET /api/v1/challenges/{id}/leaderboard`.
//!
//! ## Progress and the reward
//! A customer is in at most one team per challenge (primary key (challenge, customer):
//! `already-in-team`). Joining is one guarded statement,
//! `members = members + 1 WHERE members < max_members AND completed_at IS NULL`, so a team
//! never passes its size (`team-full`) and nobody joins after it completed
//! (`team-completed`) to collect a prize the others earned. Teams form and join until
//! the challenge ends (`challenge-ended`).
//!
//! The `teams` consumer reads the event feed: an event of the challenge's type whose
//! properties match, received inside the period and after the member joined, adds one
//! to the member's contribution and the team's progress; the first time progress reaches
//! the target the team is completed (`WHERE completed_at IS NULL`). These writes and the
//! cursor move commit together, so an event counts once. Then every member of a completed
//! team not yet rewarded is paid (ledger key `team:{team}:{member}`, or a coupon grant
//! with that key), told in the inbox and marked rewarded; a crash in between leaves the
//! payment owed and the next pass pays it with the same key.

pub mod domain;
pub mod routes;
pub mod service;
pub mod store;
