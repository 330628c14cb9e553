//! Social engagement (seed 000: "invite three friends to finish the finance test and
//! unlock a coupon", "a 30-day green-travel plan done together"). Each capability lives in
//! its own module with its pure rules (`domain.rs`), its tables (`store.rs`), its service
//! and its routes:
//!
//! - [`invites`]: invite programmes, invite codes and links, attribution of new customers,
//!   abuse guards, and the unlock reward when enough invitees finish the qualifying action.
//! - [`poster`]: the share poster, a PNG drawn by the server with the invite link's QR code.
//! - [`teams`]: team challenges: teams of 2–10 customers, a shared target counted from
//!   behaviour events, a leaderboard and a reward for every member on completion.
//! - [`personal`]: the customer's invites and teams for their export and erasure.
//!
//! Both invites and teams react to behaviour events through the engage event feed
//! ([`huoban_engage::events::feed`]), each with its own durable cursor (`invites`,
//! `teams`), moved in the same transaction as the counters it changes. Prizes are paid
//! after that commit through [`prize`]: points through the ledger, coupons through
//! [`huoban_engage::rewards::service::RewardsService::grant`], both under idempotency keys,
//! so a retry never pays twice.

pub mod invites;
pub mod personal;
pub mod poster;
pub mod prize;
pub mod qualify;
pub mod teams;

use std::time::Duration;

use axum::extract::FromRef;
use huoban_engage::EngageState;
use huoban_identity::IdentityService;
use huoban_kit::MigrationSpec;
use utoipa_axum::router::OpenApiRouter;

/// Everything the social routes and consumers need.
#[derive(Debug, Clone)]
pub struct SocialState {
    pub engage: EngageState,
    /// The address customers reach Huoban at (config `public_url`), for invite links; when
    /// absent, links are built from the request's `Host`.
    pub public_url: Option<String>,
    /// Checks the campaign a programme or challenge is created under (the campaigns
    /// capability answers; social does not read its tables).
    pub campaigns: Option<std::sync::Arc<dyn CampaignCheck>>,
}

/// What social asks of campaigns: may a programme or challenge be attached to this
/// campaign? `Ok` when it exists and has not ended; otherwise the problem to answer
/// (`unknown-campaign`, `campaign-ended`).
pub trait CampaignCheck: Send + Sync + std::fmt::Debug {
    fn check<'a>(
        &'a self,
        campaign_id: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), huoban_kit::ApiError>> + Send + 'a>>;
}

impl SocialState {
    /// Refuses a campaign id that names no campaign or an ended one.
    pub async fn check_campaign(&self, campaign_id: Option<&str>) -> Result<(), huoban_kit::ApiError> {
        match (campaign_id, &self.campaigns) {
            (Some(id), Some(campaigns)) => campaigns.check(id).await,
            _ => Ok(()),
        }
    }
}

impl FromRef<SocialState> for IdentityService {
    fn from_ref(s: &SocialState) -> Self {
        s.engage.identity.clone()
    }
}

pub const MIGRATIONS: &[MigrationSpec] = &[
    MigrationSpec {
        version: 2026112320,
        name: "invites",
        sqlite: include_str!("../migrations/sqlite/2026112320_invites.sql"),
        postgres: include_str!("../migrations/postgres/2026112320_invites.sql"),
    },
    MigrationSpec {
        version: 2026112321,
        name: "team_challenges",
        sqlite: include_str!("../migrations/sqlite/2026112321_team_challenges.sql"),
        postgres: include_str!("../migrations/postgres/2026112321_team_challenges.sql"),
    },
];

pub fn router(state: SocialState) -> OpenApiRouter {
    OpenApiRouter::new()
        .merge(invites::routes::router(state.clone()))
        .merge(teams::routes::router(state))
}

/// The event-feed consumers (`invites` and `teams`), each a loop that applies new events,
/// then pays what is owed, then waits for the next announcement or a one-second poll.
pub fn spawn_consumers(state: &SocialState) -> Vec<tokio::task::JoinHandle<()>> {
    let invites = invites::service::InvitesService::new(state.clone());
    let teams = teams::service::TeamsService::new(state.clone());
    vec![
        tokio::spawn(async move {
            loop {
                match invites.consume().await {
                    Ok(0) => invites.feed().wait(Duration::from_secs(1)).await,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "invite consumer failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        }),
        tokio::spawn(async move {
            loop {
                match teams.consume().await {
                    Ok(0) => teams.feed().wait(Duration::from_secs(1)).await,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "team challenge consumer failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        }),
    ]
}
