//! [`TeamsService`]: challenges for staff; teams, joining, progress and the leaderboard
//! for customers; and the `teams` consumer of the event feed. The module doc of
//! [`super`] explains why a team never overfills and a member is rewarded once.

use std::collections::HashMap;

use huoban_engage::events::feed::EventFeed;
use huoban_inbox::NewMessage;
use huoban_kit::{ApiError, DbError, Page, PageQuery, clock::from_micros, clock::to_micros, ids::new_id};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{
    domain::{self, ChallengeDraft, Invalid, Joining, Refusal, Standing},
    store::{ChallengeRow, TeamRow, TeamsStore},
};
use crate::{
    SocialState,
    invites::{domain::new_code, domain::normalize_code, service::mask_name, service::parse_instant},
    prize::{self, Prize, PrizeSpec},
    qualify,
};

/// The feed consumer's name.
pub const CONSUMER: &str = "teams";
/// The ledger scope of member prizes; the key is `{team}:{member}`.
pub const LEDGER_SCOPE: &str = "team";
const BATCH: u32 = 500;

/// A new team challenge, as staff send it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewChallengeRequest {
    #[schema(example = "30 天绿色出行打卡计划")]
    pub name: String,
    /// The campaign this challenge belongs to, if any: it must exist and not have ended
    /// (`unknown-campaign` 404, `campaign-ended` 409).
    #[serde(default)]
    pub campaign_id: Option<String>,
    /// Events counted toward the target, e.g. `green_trip`.
    #[schema(example = "green_trip")]
    pub event_type: String,
    /// Properties the events must carry.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub event_match: Map<String, Value>,
    /// The shared target: qualifying events of all members together, 1 to 1,000,000.
    pub target: i64,
    /// Most members of a team, 2 to 10.
    pub max_members: i64,
    /// What every member of a team that reaches the target receives.
    pub reward: PrizeSpec,
    /// RFC 3339; events received from then (inclusive) count.
    pub starts_at: String,
    /// RFC 3339; until then (exclusive); teams form and join until then.
    pub ends_at: String,
}

/// A challenge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChallengeView {
    pub id: String,
    pub name: String,
    pub campaign_id: Option<String>,
    pub event_type: String,
    #[schema(value_type = Object)]
    pub event_match: Map<String, Value>,
    pub target: i64,
    pub max_members: i64,
    pub reward: PrizeSpec,
    pub starts_at: String,
    pub ends_at: String,
    /// `scheduled`, `live` or `ended`.
    pub status: String,
    /// Your team in this challenge (customers only).
    pub my_team_id: Option<String>,
    pub created_at: String,
}

/// Create a team.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTeamRequest {
    #[schema(example = "绿色先锋队")]
    pub name: String,
}

/// Join a team with its code.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    #[schema(example = "Q4T8MZ2K")]
    pub code: String,
}

/// A member and what they contributed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MemberView {
    /// Masked (`张*`) except your own.
    pub name: String,
    pub contribution: i64,
    pub captain: bool,
    pub me: bool,
    pub joined_at: String,
    pub rewarded: bool,
}

/// A team and its progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TeamView {
    pub id: String,
    pub challenge_id: String,
    pub challenge_name: String,
    pub name: String,
    /// Share it so friends can join; shown to members only.
    pub join_code: Option<String>,
    pub member_count: i64,
    pub max_members: i64,
    pub progress: i64,
    pub target: i64,
    /// 0–100.
    pub percent: i64,
    pub completed: bool,
    pub completed_at: Option<String>,
    pub reward: PrizeSpec,
    pub members: Vec<MemberView>,
}

/// A row of the leaderboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StandingView {
    pub rank: i64,
    pub team_id: String,
    pub name: String,
    pub member_count: i64,
    pub progress: i64,
    pub percent: i64,
    pub completed: bool,
    /// This is your team.
    pub mine: bool,
}

/// The leaderboard of a challenge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LeaderboardView {
    pub challenge_id: String,
    pub target: i64,
    /// The top teams (at most 100), best first.
    pub teams: Vec<StandingView>,
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::ChallengeEnded => ApiError::conflict("challenge-ended", "This challenge has ended"),
            Refusal::AlreadyInTeam => ApiError::conflict("already-in-team", "You are already in a team")
                .detail("You can be in one team per challenge."),
            Refusal::TeamFull { max } => ApiError::conflict("team-full", "This team is full")
                .detail(format!("A team has at most {max} members."))
                .with("max_members", max),
            Refusal::TeamCompleted => ApiError::conflict("team-completed", "This team has already reached its target")
                .detail("Start a team of your own."),
        }
    }
}

impl From<Invalid> for ApiError {
    fn from(i: Invalid) -> Self {
        ApiError::invalid_field(i.field, i.detail)
    }
}

fn unknown_challenge() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "unknown-challenge",
        "No such challenge",
    )
}

fn unknown_team() -> ApiError {
    ApiError::new(axum::http::StatusCode::NOT_FOUND, "unknown-team", "No such team")
        .detail("Check the team code or ask your friend to share it again.")
}

fn iso(micros: i64) -> String {
    from_micros(micros).to_string()
}

fn prize_of(row: &ChallengeRow) -> Result<Prize, ApiError> {
    Prize::from_columns(row.reward_points, row.reward_id.as_deref())
        .ok_or_else(|| ApiError::internal(format!("challenge {} has no prize", row.id)))
}

fn challenge_view(row: &ChallengeRow, now: Timestamp, my_team_id: Option<String>) -> Result<ChallengeView, ApiError> {
    let now = to_micros(now);
    Ok(ChallengeView {
        id: row.id.clone(),
        name: row.name.clone(),
        campaign_id: row.campaign_id.clone(),
        event_type: row.event_type.clone(),
        event_match: qualify::parse_match(&row.event_match),
        target: row.target,
        max_members: row.max_members,
        reward: prize_of(row)?.spec(),
        starts_at: iso(row.starts_at),
        ends_at: iso(row.ends_at),
        status: if now < row.starts_at {
            "scheduled"
        } else if now < row.ends_at {
            "live"
        } else {
            "ended"
        }
        .into(),
        my_team_id,
        created_at: iso(row.created_at),
    })
}

/// The team challenges handle; cheap to clone.
#[derive(Debug, Clone)]
pub struct TeamsService {
    state: SocialState,
    store: TeamsStore,
    feed: EventFeed,
}

impl TeamsService {
    pub fn new(state: SocialState) -> Self {
        let db = state.engage.db.clone();
        Self {
            store: TeamsStore::new(db.clone()),
            feed: EventFeed::new(db, CONSUMER),
            state,
        }
    }

    pub fn state(&self) -> &SocialState {
        &self.state
    }

    pub fn feed(&self) -> &EventFeed {
        &self.feed
    }

    fn now(&self) -> Timestamp {
        self.state.engage.clock.now()
    }

    pub async fn create_challenge(&self, staff: Uuid, r: NewChallengeRequest) -> Result<ChallengeView, ApiError> {
        let spec = domain::check_challenge(ChallengeDraft {
            name: r.name,
            campaign_id: r.campaign_id,
            event_type: r.event_type,
            event_match: r.event_match,
            target: r.target,
            max_members: r.max_members,
            reward: r.reward,
            starts_at: parse_instant("starts_at", &r.starts_at)?,
            ends_at: parse_instant("ends_at", &r.ends_at)?,
        })?;
        if let Prize::Coupon(reward) = spec.prize {
            prize::check_reward_exists(&self.state.engage, reward).await?;
        }
        self.state.check_campaign(spec.campaign_id.as_deref()).await?;
        let (reward_points, reward_id) = spec.prize.columns();
        let now = self.now();
        let row = ChallengeRow {
            id: new_id().to_string(),
            name: spec.name,
            campaign_id: spec.campaign_id,
            event_type: spec.event_type,
            event_match: Value::Object(spec.event_match).to_string(),
            target: spec.target,
            max_members: spec.max_members,
            reward_points,
            reward_id,
            starts_at: to_micros(spec.starts_at),
            ends_at: to_micros(spec.ends_at),
            created_by: staff.to_string(),
            created_at: to_micros(now),
        };
        self.store.insert_challenge(&row).await?;
        challenge_view(&row, now, None)
    }

    /// Challenges newest first; for a customer only those not ended, with their team.
    pub async fn challenges(&self, page: &PageQuery, customer: Option<Uuid>) -> Result<Page<ChallengeView>, ApiError> {
        let limit = page.limit()?;
        let after = page.after()?;
        let now = self.now();
        let rows = self
            .store
            .challenges(after.as_deref(), limit, customer.map(|_| to_micros(now)))
            .await?;
        let mine: HashMap<String, String> = match customer {
            Some(c) => self
                .store
                .my_teams(&c.to_string())
                .await?
                .into_iter()
                .map(|m| (m.challenge_id, m.team_id))
                .collect(),
            None => HashMap::new(),
        };
        let views = rows
            .iter()
            .map(|r| challenge_view(r, now, mine.get(&r.id).cloned()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_rows(views, limit, |v| v.id.clone()))
    }

    async fn challenge(&self, id: Uuid) -> Result<ChallengeRow, ApiError> {
        self.store
            .challenge(&id.to_string())
            .await?
            .ok_or_else(unknown_challenge)
    }

    /// Creates a team in the challenge with the customer as captain and first member.
    pub async fn create_team(&self, customer: Uuid, challenge: Uuid, name: &str) -> Result<TeamView, ApiError> {
        let name = domain::check_team_name(name)?;
        let challenge = self.challenge(challenge).await?;
        let now = self.now();
        domain::check_open(from_micros(challenge.ends_at), now)?;
        let me = customer.to_string();
        let team = TeamRow {
            id: new_id().to_string(),
            challenge_id: challenge.id.clone(),
            name,
            join_code: new_code(&mut rand::rng()),
            captain_id: me.clone(),
            members: 1,
            progress: 0,
            completed_at: None,
            created_at: to_micros(now),
        };
        let mut tx = self.store.begin().await?;
        if self.store.membership(&mut tx, &challenge.id, &me).await?.is_some() {
            return Err(Refusal::AlreadyInTeam.into());
        }
        self.store.insert_team(&mut tx, &team).await?;
        self.store
            .insert_member(&mut tx, &challenge.id, &me, &team.id, to_micros(now))
            .await
            .map_err(in_team)?;
        tx.commit().await.map_err(DbError::from)?;
        self.team_view(&team.id, customer).await
    }

    /// Joins the team with this code.
    pub async fn join(&self, customer: Uuid, code: &str) -> Result<TeamView, ApiError> {
        let code = normalize_code(code).ok_or_else(unknown_team)?;
        let now = self.now();
        let me = customer.to_string();
        // Read before the transaction, which then uses only its own connection (a
        // request never holds one connection while waiting for another). The team's
        // challenge never changes; its seats and completion are re-checked by the guarded
        // update below.
        let team = {
            let mut conn = self.state.engage.db.reader().acquire().await.map_err(DbError::from)?;
            self.store
                .team_by_code(&mut conn, &code)
                .await?
                .ok_or_else(unknown_team)?
        };
        let challenge = self
            .store
            .challenge(&team.challenge_id)
            .await?
            .ok_or_else(unknown_challenge)?;
        domain::check_open(from_micros(challenge.ends_at), now)?;
        let mut tx = self.store.begin().await?;
        let joining = Joining {
            already_in_team: self.store.membership(&mut tx, &challenge.id, &me).await?.is_some(),
            members: team.members,
            max_members: challenge.max_members,
            completed: team.completed_at.is_some(),
        };
        domain::check_join(&joining)?;
        if !self.store.take_seat(&mut tx, &team.id, challenge.max_members).await? {
            // Someone filled the last seat or the team completed since we read it.
            return Err(Refusal::TeamFull {
                max: challenge.max_members,
            }
            .into());
        }
        self.store
            .insert_member(&mut tx, &challenge.id, &me, &team.id, to_micros(now))
            .await
            .map_err(in_team)?;
        tx.commit().await.map_err(DbError::from)?;
        self.team_view(&team.id, customer).await
    }

    /// A team with its members' contributions; the join code only for members.
    pub async fn team_view(&self, team_id: &str, viewer: Uuid) -> Result<TeamView, ApiError> {
        let team = self.store.team(team_id).await?.ok_or_else(unknown_team)?;
        let challenge = self
            .store
            .challenge(&team.challenge_id)
            .await?
            .ok_or_else(unknown_challenge)?;
        let me = viewer.to_string();
        let mut members = Vec::new();
        let mut is_member = false;
        for m in self.store.members(&team.id).await? {
            let id: Uuid = m.customer_id.parse().map_err(ApiError::internal)?;
            let name = self.state.engage.identity.store().customer(id).await?.name;
            let mine = m.customer_id == me;
            is_member |= mine;
            members.push(MemberView {
                name: if mine { name } else { mask_name(&name) },
                contribution: m.contribution,
                captain: m.customer_id == team.captain_id,
                me: mine,
                joined_at: iso(m.joined_at),
                rewarded: m.rewarded_at.is_some(),
            });
        }
        Ok(TeamView {
            id: team.id.clone(),
            challenge_id: challenge.id.clone(),
            challenge_name: challenge.name.clone(),
            name: team.name.clone(),
            join_code: is_member.then(|| team.join_code.clone()),
            member_count: team.members,
            max_members: challenge.max_members,
            progress: team.progress,
            target: challenge.target,
            percent: domain::percent(team.progress, challenge.target),
            completed: team.completed_at.is_some(),
            completed_at: team.completed_at.map(iso),
            reward: prize_of(&challenge)?.spec(),
            members,
        })
    }

    /// Teams ranked by progress (then earlier completion, then age), top 100.
    pub async fn leaderboard(&self, challenge: Uuid, viewer: Uuid) -> Result<LeaderboardView, ApiError> {
        let challenge = self.challenge(challenge).await?;
        let teams: HashMap<String, TeamRow> = self
            .store
            .teams_of(&challenge.id)
            .await?
            .into_iter()
            .map(|t| (t.id.clone(), t))
            .collect();
        let mine = {
            let mut conn = self.state.engage.db.reader().acquire().await.map_err(DbError::from)?;
            self.store
                .membership(&mut conn, &challenge.id, &viewer.to_string())
                .await?
                .map(|m| m.team_id)
        };
        let ranked = domain::rank(
            teams
                .values()
                .map(|t| Standing {
                    team_id: t.id.clone(),
                    progress: t.progress,
                    completed_at: t.completed_at,
                    created_at: t.created_at,
                })
                .collect(),
        );
        let standings = ranked
            .into_iter()
            .take(100)
            .filter_map(|(rank, s)| {
                let t = teams.get(&s.team_id)?;
                Some(StandingView {
                    rank,
                    team_id: t.id.clone(),
                    name: t.name.clone(),
                    member_count: t.members,
                    progress: t.progress,
                    percent: domain::percent(t.progress, challenge.target),
                    completed: t.completed_at.is_some(),
                    mine: mine.as_deref() == Some(t.id.as_str()),
                })
            })
            .collect();
        Ok(LeaderboardView {
            challenge_id: challenge.id,
            target: challenge.target,
            teams: standings,
        })
    }

    /// One pass of the `teams` consumer; returns how many events it read.
    pub async fn consume(&self) -> Result<usize, ApiError> {
        let from = self.feed.position().await?;
        let events = self.feed.read(from, BATCH).await?;
        let Some(first) = events.first() else {
            self.settle().await?;
            return Ok(0);
        };
        let to = events.last().map_or(from, |e| e.seq);
        let now = self.now();
        let mut tx = self.store.begin().await?;
        // Claim the batch first: the conditional cursor move takes the cursor row's lock, so
        // a consumer running at the same time (another node, or a catch-up loop beside the
        // background task) waits here and then finds the cursor moved, instead of racing on
        // the same counters and failing on their keys.
        if !self.feed.advance(&mut tx, from, to, now).await? {
            tx.rollback().await.map_err(DbError::from)?;
            return Ok(events.len());
        }
        let challenges: HashMap<String, ChallengeRow> = self
            .store
            .running(&mut tx, to_micros(first.received_at))
            .await?
            .into_iter()
            .map(|c| (c.id.clone(), c))
            .collect();
        let types: std::collections::HashSet<&str> = challenges.values().map(|c| c.event_type.as_str()).collect();
        for event in events.iter().filter(|e| types.contains(e.kind.as_str())) {
            let customer = event.customer.to_string();
            let at = to_micros(event.received_at);
            for m in self.store.memberships_of(&mut tx, &customer).await? {
                let Some(c) = challenges.get(&m.challenge_id) else {
                    continue;
                };
                let counts = qualify::matches(
                    &c.event_type,
                    &qualify::parse_match(&c.event_match),
                    &event.kind,
                    &event.properties,
                ) && domain::counts_at(at, c.starts_at, c.ends_at, m.joined_at);
                if !counts {
                    continue;
                }
                let progress = self.store.count(&mut tx, &c.id, &customer, &m.team_id).await?;
                if progress >= c.target {
                    self.store.complete(&mut tx, &m.team_id, to_micros(now)).await?;
                }
            }
        }
        tx.commit().await.map_err(DbError::from)?;
        self.settle().await?;
        Ok(events.len())
    }

    /// Pays every member of a completed team not yet rewarded, tells them, and marks them.
    pub async fn settle(&self) -> Result<usize, ApiError> {
        let owed = self.store.owed(200).await?;
        let mut challenges: HashMap<String, ChallengeRow> = HashMap::new();
        let mut paid = 0;
        for m in &owed {
            if !challenges.contains_key(&m.challenge_id)
                && let Some(c) = self.store.challenge(&m.challenge_id).await?
            {
                challenges.insert(c.id.clone(), c);
            }
            let Some(c) = challenges.get(&m.challenge_id) else {
                continue;
            };
            let prize = prize_of(c)?;
            let member: Uuid = m.customer_id.parse().map_err(ApiError::internal)?;
            let key = format!("{}:{}", m.team_id, m.customer_id);
            if let Err(e) = prize::pay(
                &self.state.engage,
                member,
                prize,
                c.campaign_id.as_deref(),
                LEDGER_SCOPE,
                &key,
                &format!("团队挑战奖励：{}", c.name),
            )
            .await
            {
                tracing::warn!(team = %m.team_id, error = ?e, "team prize not paid yet");
                continue;
            }
            self.state
                .engage
                .inbox
                .deliver(NewMessage {
                    customer_id: member,
                    kind: "team_challenge_completed".into(),
                    title: "团队挑战完成！".into(),
                    body: format!("你的团队完成了「{}」，你获得了{}。", c.name, prize.describe()),
                    link: Some(format!("/h5/teams/{}", m.team_id)),
                    data: serde_json::json!({
                        "challenge_id": c.id, "team_id": m.team_id, "reward": prize.spec(),
                        "contribution": m.contribution,
                    }),
                    dedupe_key: Some(format!("team:{key}")),
                })
                .await?;
            self.store
                .mark_rewarded(&m.challenge_id, &m.customer_id, to_micros(self.now()))
                .await?;
            paid += 1;
        }
        Ok(paid)
    }
}

/// The primary key (challenge, customer) refused a second membership.
fn in_team(e: DbError) -> ApiError {
    match e {
        DbError::Conflict { .. } => Refusal::AlreadyInTeam.into(),
        other => other.into(),
    }
}
