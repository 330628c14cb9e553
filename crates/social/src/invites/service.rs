//! [`InvitesService`]: programmes for staff; codes, links, progress and acceptance for
//! customers; and the `invites` consumer of the event feed that counts qualifying actions,
//! unlocks and pays. The module doc of [`super`] explains attribution and why an unlock
//! pays once.

use std::collections::{HashMap, HashSet};

use huoban_engage::events::feed::EventFeed;
use huoban_inbox::NewMessage;
use huoban_kit::{ApiError, DbError, Page, PageQuery, clock::from_micros, clock::to_micros, ids::new_id};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{
    domain::{self, Acceptance, Invalid, ProgrammeDraft, Refusal, Window},
    store::{CodeRow, InvitesStore, ProgrammeRow},
};
use crate::{
    SocialState,
    prize::{self, Prize, PrizeSpec},
    qualify,
};

/// The feed consumer's name (its cursor in `event_cursors`).
pub const CONSUMER: &str = "invites";
/// The ledger scope of unlock prizes; the key is `{programme}:{inviter}`.
pub const LEDGER_SCOPE: &str = "invite";
/// Events one consumer pass reads.
const BATCH: u32 = 500;

/// A new invite programme, as staff send it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProgrammeRequest {
    #[schema(example = "邀请三位好友完成理财测试，解锁专属优惠券")]
    pub name: String,
    /// The campaign this programme belongs to, if any: it must exist and not have ended
    /// (`unknown-campaign` 404, `campaign-ended` 409).
    #[serde(default)]
    pub campaign_id: Option<String>,
    /// The invitee's qualifying action, e.g. `questionnaire_completed`.
    #[schema(example = "questionnaire_completed")]
    pub event_type: String,
    /// Properties the event must carry, e.g. `{"questionnaire_id": "risk-appetite"}`.
    #[serde(default)]
    #[schema(value_type = Object, example = json!({"questionnaire_id": "risk-appetite"}))]
    pub event_match: Map<String, Value>,
    /// Friends who must qualify to unlock the prize, 1 to 100.
    pub unlock_count: i64,
    /// Most friends one inviter may bring in (default 10 × the unlock count).
    #[serde(default)]
    pub max_invitees: Option<i64>,
    pub reward: PrizeSpec,
    /// RFC 3339; codes can be issued and accepted from then (inclusive).
    pub starts_at: String,
    /// RFC 3339; until then (exclusive).
    pub ends_at: String,
}

/// A programme.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProgrammeView {
    pub id: String,
    pub name: String,
    pub campaign_id: Option<String>,
    pub event_type: String,
    #[schema(value_type = Object)]
    pub event_match: Map<String, Value>,
    pub unlock_count: i64,
    pub max_invitees: i64,
    pub reward: PrizeSpec,
    pub starts_at: String,
    pub ends_at: String,
    /// `scheduled`, `live` or `ended`.
    pub status: String,
    pub created_at: String,
}

/// Ask for my invite code in a programme.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    pub programme_id: Uuid,
}

/// My invite code and its progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InviteView {
    pub code: String,
    /// The H5 page friends open: `{base}/h5/invite?code=…`.
    pub link: String,
    /// The share poster (PNG).
    pub poster_url: String,
    pub programme_id: String,
    pub programme_name: String,
    /// Friends who accepted the code.
    pub accepted: i64,
    /// Friends who also did the qualifying action.
    pub qualified: i64,
    pub unlock_count: i64,
    /// "2 of 3".
    pub progress: String,
    pub unlocked: bool,
    /// The prize has been paid.
    pub rewarded: bool,
    pub reward: PrizeSpec,
    pub ends_at: String,
}

/// Accept a friend's invite code.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptRequest {
    #[schema(example = "K7M2QX9P")]
    pub code: String,
}

/// An accepted invitation: what to do next so that it counts for the friend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AcceptedView {
    pub programme_id: String,
    pub programme_name: String,
    /// The inviter's name, masked (`张*`).
    pub inviter: String,
    pub event_type: String,
    #[schema(value_type = Object)]
    pub event_match: Map<String, Value>,
    pub accepted_at: String,
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::SelfInvite => ApiError::conflict("self-invite", "You cannot accept your own invite code")
                .detail("Share the code with a friend instead."),
            Refusal::NotNew => ApiError::conflict("invite-not-eligible", "This invitation is for new customers")
                .detail("You registered before this invite code was issued."),
            Refusal::AlreadyAttributed => {
                ApiError::conflict("invite-not-eligible", "You have already accepted an invitation")
                    .detail("You already accepted an invite code in this programme.")
            }
            Refusal::DeviceReused => {
                ApiError::conflict("invite-device-reused", "This device has already accepted an invitation")
                    .detail("Another account accepted an invite code in this programme on this device.")
            }
            Refusal::CapReached { cap } => ApiError::conflict("invite-cap-reached", "This invite code is used up")
                .detail(format!(
                    "An inviter can bring at most {cap} friends into this programme."
                ))
                .with("cap", cap),
            Refusal::ProgrammeNotStarted => {
                ApiError::conflict("invite-programme-not-started", "This invite programme has not started")
            }
            Refusal::ProgrammeEnded => ApiError::conflict("invite-programme-ended", "This invite programme has ended"),
        }
    }
}

impl From<Invalid> for ApiError {
    fn from(i: Invalid) -> Self {
        ApiError::invalid_field(i.field, i.detail)
    }
}

fn unknown_code() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "unknown-invite-code",
        "No such invite code",
    )
    .detail("Check the code or ask your friend to share the link again.")
}

fn unknown_programme() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "unknown-invite-programme",
        "No such invite programme",
    )
}

fn iso(micros: i64) -> String {
    from_micros(micros).to_string()
}

pub(crate) fn parse_instant(field: &'static str, text: &str) -> Result<Timestamp, ApiError> {
    text.parse().map_err(|_| {
        ApiError::invalid_field(
            field,
            format!("{text:?} is not an RFC 3339 instant like 2026-01-20T00:00:00+08:00"),
        )
    })
}

/// A name as others see it: the first character and `*`.
pub fn mask_name(name: &str) -> String {
    let mut chars = name.trim().chars();
    match chars.next() {
        Some(first) => format!("{first}{}", if chars.next().is_some() { "*" } else { "" }),
        None => "*".into(),
    }
}

fn prize_of(row: &ProgrammeRow) -> Result<Prize, ApiError> {
    Prize::from_columns(row.reward_points, row.reward_id.as_deref())
        .ok_or_else(|| ApiError::internal(format!("programme {} has no prize", row.id)))
}

fn window_of(row: &ProgrammeRow, now: Timestamp) -> Window {
    domain::window(from_micros(row.starts_at), from_micros(row.ends_at), now)
}

fn programme_view(row: &ProgrammeRow, now: Timestamp) -> Result<ProgrammeView, ApiError> {
    Ok(ProgrammeView {
        id: row.id.clone(),
        name: row.name.clone(),
        campaign_id: row.campaign_id.clone(),
        event_type: row.event_type.clone(),
        event_match: qualify::parse_match(&row.event_match),
        unlock_count: row.unlock_count,
        max_invitees: row.max_invitees,
        reward: prize_of(row)?.spec(),
        starts_at: iso(row.starts_at),
        ends_at: iso(row.ends_at),
        status: match window_of(row, now) {
            Window::NotStarted => "scheduled",
            Window::Live => "live",
            Window::Ended => "ended",
        }
        .into(),
        created_at: iso(row.created_at),
    })
}

/// The invites handle; cheap to clone.
#[derive(Debug, Clone)]
pub struct InvitesService {
    state: SocialState,
    store: InvitesStore,
    feed: EventFeed,
}

impl InvitesService {
    pub fn new(state: SocialState) -> Self {
        let db = state.engage.db.clone();
        Self {
            store: InvitesStore::new(db.clone()),
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

    /// Creates a programme.
    pub async fn create_programme(&self, staff: Uuid, r: NewProgrammeRequest) -> Result<ProgrammeView, ApiError> {
        let spec = domain::check_programme(ProgrammeDraft {
            name: r.name,
            campaign_id: r.campaign_id,
            event_type: r.event_type,
            event_match: r.event_match,
            unlock_count: r.unlock_count,
            max_invitees: r.max_invitees,
            reward: r.reward,
            starts_at: parse_instant("starts_at", &r.starts_at)?,
            ends_at: parse_instant("ends_at", &r.ends_at)?,
        })?;
        if let Prize::Coupon(reward) = spec.prize {
            crate::prize::check_reward_exists(&self.state.engage, reward).await?;
        }
        self.state.check_campaign(spec.campaign_id.as_deref()).await?;
        let (reward_points, reward_id) = spec.prize.columns();
        let now = self.now();
        let row = ProgrammeRow {
            id: new_id().to_string(),
            name: spec.name,
            campaign_id: spec.campaign_id,
            event_type: spec.event_type,
            event_match: Value::Object(spec.event_match).to_string(),
            unlock_count: spec.unlock_count,
            max_invitees: spec.max_invitees,
            reward_points,
            reward_id,
            starts_at: to_micros(spec.starts_at),
            ends_at: to_micros(spec.ends_at),
            created_by: staff.to_string(),
            created_at: to_micros(now),
        };
        self.store.insert_programme(&row).await?;
        programme_view(&row, now)
    }

    /// Programmes newest first; `live_only` for customers.
    pub async fn programmes(&self, page: &PageQuery, live_only: bool) -> Result<Page<ProgrammeView>, ApiError> {
        let limit = page.limit()?;
        let after = page.after()?;
        let now = self.now();
        let rows = self
            .store
            .programmes(after.as_deref(), limit, live_only.then(|| to_micros(now)))
            .await?;
        let views = rows
            .iter()
            .map(|r| programme_view(r, now))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_rows(views, limit, |v| v.id.clone()))
    }

    /// My code in a live programme (the same one every time), with its link.
    pub async fn issue(&self, inviter: Uuid, programme_id: Uuid, base: &str) -> Result<(InviteView, bool), ApiError> {
        let programme = self
            .store
            .programme(&programme_id.to_string())
            .await?
            .ok_or_else(unknown_programme)?;
        let now = self.now();
        match window_of(&programme, now) {
            Window::Live => {}
            Window::NotStarted => return Err(Refusal::ProgrammeNotStarted.into()),
            Window::Ended => return Err(Refusal::ProgrammeEnded.into()),
        }
        // A fresh random code; a collision with another code (31^8 of them) is retried.
        for _ in 0..5 {
            let candidate = CodeRow {
                code: domain::new_code(&mut rand::rng()),
                programme_id: programme.id.clone(),
                inviter_id: inviter.to_string(),
                accepted: 0,
                qualified: 0,
                created_at: to_micros(now),
                unlocked_at: None,
                rewarded_at: None,
            };
            match self.store.issue_code(&candidate).await {
                Ok(code) => {
                    let fresh = code.code == candidate.code;
                    return Ok((invite_view(&code, &programme, base)?, fresh));
                }
                Err(DbError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::internal("could not draw a free invite code"))
    }

    /// My codes with their progress, newest first.
    pub async fn mine(&self, inviter: Uuid, base: &str) -> Result<Vec<InviteView>, ApiError> {
        let codes = self.store.codes_of(&inviter.to_string()).await?;
        let mut programmes: HashMap<String, ProgrammeRow> = HashMap::new();
        let mut views = Vec::with_capacity(codes.len());
        for code in &codes {
            if !programmes.contains_key(&code.programme_id)
                && let Some(p) = self.store.programme(&code.programme_id).await?
            {
                programmes.insert(p.id.clone(), p);
            }
            if let Some(p) = programmes.get(&code.programme_id) {
                views.push(invite_view(code, p, base)?);
            }
        }
        Ok(views)
    }

    /// The code's inviter name and link, for the poster.
    pub async fn poster_facts(&self, code: &str, base: &str) -> Result<(String, String, String), ApiError> {
        let code = domain::normalize_code(code).ok_or_else(unknown_code)?;
        let row = self.store.code_by_code(&code).await?.ok_or_else(unknown_code)?;
        let programme = self
            .store
            .programme(&row.programme_id)
            .await?
            .ok_or_else(unknown_code)?;
        let inviter: Uuid = row.inviter_id.parse().map_err(ApiError::internal)?;
        let name = self.state.engage.identity.store().customer(inviter).await?.name;
        Ok((name, domain::link(base, &code), programme.name))
    }

    /// The invitee accepts a code; every guard of [`domain::check_acceptance`] in one
    /// transaction with the write.
    pub async fn accept(&self, invitee: Uuid, code: &str, device: Option<&str>) -> Result<AcceptedView, ApiError> {
        let code = domain::normalize_code(code).ok_or_else(unknown_code)?;
        let device = domain::check_device_id(device).ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "device-id-required",
                "X-Device-Id is required",
            )
            .detail("Send the page's device id (1 to 128 visible ASCII characters) in X-Device-Id.")
        })?;
        let registered_at = self.state.engage.identity.store().customer(invitee).await?.created_at;
        let now = self.now();
        // Read before the transaction, which then uses only its own connection. The
        // acceptance count read here is re-checked by the guarded update below.
        let row = self.store.code_by_code(&code).await?.ok_or_else(unknown_code)?;
        let programme = self
            .store
            .programme(&row.programme_id)
            .await?
            .ok_or_else(unknown_code)?;
        let mut tx = self.store.begin().await?;
        let invitee_id = invitee.to_string();
        let facts = Acceptance {
            inviter_is_invitee: row.inviter_id == invitee_id,
            invitee_registered_at: from_micros(registered_at),
            code_issued_at: from_micros(row.created_at),
            window: window_of(&programme, now),
            already_attributed: self.store.attributed(&mut tx, &programme.id, &invitee_id).await?,
            device_used: self.store.device_used(&mut tx, &programme.id, &device).await?,
            accepted: row.accepted,
            cap: programme.max_invitees,
        };
        domain::check_acceptance(&facts)?;
        if !self
            .store
            .count_acceptance(&mut tx, &code, programme.max_invitees)
            .await?
        {
            return Err(Refusal::CapReached {
                cap: programme.max_invitees,
            }
            .into());
        }
        self.store
            .insert_attribution(&mut tx, &programme.id, &invitee_id, &code, &device, to_micros(now))
            .await
            .map_err(|e| match e {
                // A concurrent acceptance won the race: the same guards, decided by the keys.
                DbError::Conflict { constraint } if constraint.contains("device") => Refusal::DeviceReused.into(),
                DbError::Conflict { .. } => Refusal::AlreadyAttributed.into(),
                other => ApiError::from(other),
            })?;
        tx.commit().await.map_err(DbError::from)?;
        let inviter: Uuid = row.inviter_id.parse().map_err(ApiError::internal)?;
        let inviter_name = self.state.engage.identity.store().customer(inviter).await?.name;
        Ok(AcceptedView {
            programme_id: programme.id.clone(),
            programme_name: programme.name.clone(),
            inviter: mask_name(&inviter_name),
            event_type: programme.event_type.clone(),
            event_match: qualify::parse_match(&programme.event_match),
            accepted_at: now.to_string(),
        })
    }

    /// One pass of the `invites` consumer: applies the events after its cursor (at most
    /// [`BATCH`]) and moves the cursor in the same transaction, then pays owed prizes.
    /// Returns how many events it read.
    pub async fn consume(&self) -> Result<usize, ApiError> {
        let from = self.feed.position().await?;
        let events = self.feed.read(from, BATCH).await?;
        let Some(last) = events.last() else {
            self.settle().await?;
            return Ok(0);
        };
        let to = last.seq;
        let now = self.now();
        let mut tx = self.store.begin().await?;
        // Claim the batch first: the conditional cursor move takes the cursor row's lock, so
        // a consumer running at the same time (another node, or a catch-up loop beside the
        // background task) waits here and then finds the cursor moved, instead of racing on
        // the same counters and failing on their keys.
        if !self.feed.advance(&mut tx, from, to, now).await? {
            // Another node applied these events first.
            tx.rollback().await.map_err(DbError::from)?;
            return Ok(events.len());
        }
        let programmes: HashMap<String, ProgrammeRow> = self
            .store
            .with_pending(&mut tx)
            .await?
            .into_iter()
            .map(|p| (p.id.clone(), p))
            .collect();
        let types: HashSet<&str> = programmes.values().map(|p| p.event_type.as_str()).collect();
        for event in events.iter().filter(|e| types.contains(e.kind.as_str())) {
            let invitee = event.customer.to_string();
            for pending in self.store.pending_of(&mut tx, &invitee).await? {
                let Some(p) = programmes.get(&pending.programme_id) else {
                    continue;
                };
                // The server's receipt time: a client cannot backdate an event into the
                // window or before the acceptance.
                let at = to_micros(event.received_at);
                let counts = qualify::matches(
                    &p.event_type,
                    &qualify::parse_match(&p.event_match),
                    &event.kind,
                    &event.properties,
                ) && at >= pending.accepted_at
                    && at >= p.starts_at
                    && at < p.ends_at;
                if !counts {
                    continue;
                }
                if let Some(qualified) = self
                    .store
                    .qualify(&mut tx, &p.id, &invitee, &pending.code, event.seq, to_micros(now))
                    .await?
                    && domain::unlocks(qualified, p.unlock_count)
                {
                    self.store.unlock(&mut tx, &pending.code, to_micros(now)).await?;
                }
            }
        }
        tx.commit().await.map_err(DbError::from)?;
        self.settle().await?;
        Ok(events.len())
    }

    /// Pays every unlocked code's prize not yet paid, with its deterministic key, tells the
    /// inviter, and marks the code rewarded. A prize that cannot be paid now (say a coupon
    /// out of stock) stays owed and is retried.
    pub async fn settle(&self) -> Result<usize, ApiError> {
        let owed = self.store.owed(100).await?;
        let mut paid = 0;
        for code in &owed {
            let Some(programme) = self.store.programme(&code.programme_id).await? else {
                continue;
            };
            let prize = prize_of(&programme)?;
            let inviter: Uuid = code.inviter_id.parse().map_err(ApiError::internal)?;
            let key = format!("{}:{}", programme.id, code.inviter_id);
            if let Err(e) = prize::pay(
                &self.state.engage,
                inviter,
                prize,
                programme.campaign_id.as_deref(),
                LEDGER_SCOPE,
                &key,
                &format!("邀请好友奖励：{}", programme.name),
            )
            .await
            {
                tracing::warn!(code = %code.code, error = ?e, "invite prize not paid yet");
                continue;
            }
            self.state
                .engage
                .inbox
                .deliver(NewMessage {
                    customer_id: inviter,
                    kind: "invite_unlocked".into(),
                    title: "邀请奖励已解锁".into(),
                    body: format!(
                        "{} 位好友已完成任务，你获得了{}。感谢你把{}分享给朋友！",
                        programme.unlock_count,
                        prize.describe(),
                        programme.name
                    ),
                    link: Some(domain::INVITE_PAGE.into()),
                    data: serde_json::json!({
                        "programme_id": programme.id, "code": code.code, "reward": prize.spec(),
                    }),
                    dedupe_key: Some(format!("invite:{key}")),
                })
                .await?;
            self.store.mark_rewarded(&code.code, to_micros(self.now())).await?;
            paid += 1;
        }
        Ok(paid)
    }
}

fn invite_view(code: &CodeRow, programme: &ProgrammeRow, base: &str) -> Result<InviteView, ApiError> {
    Ok(InviteView {
        code: code.code.clone(),
        link: domain::link(base, &code.code),
        poster_url: format!("{}/api/v1/invites/{}/poster.png", base.trim_end_matches('/'), code.code),
        programme_id: programme.id.clone(),
        programme_name: programme.name.clone(),
        accepted: code.accepted,
        qualified: code.qualified,
        unlock_count: programme.unlock_count,
        progress: domain::progress_text(code.qualified, programme.unlock_count),
        unlocked: code.unlocked_at.is_some(),
        rewarded: code.rewarded_at.is_some(),
        reward: prize_of(programme)?.spec(),
        ends_at: iso(programme.ends_at),
    })
}

#[cfg(test)]
mod tests {
    use super::mask_name;

    #[test]
    fn names_are_masked_after_the_first_character() {
        assert_eq!(mask_name("张三"), "张*");
        assert_eq!(mask_name("李"), "李");
        assert_eq!(mask_name(""), "*");
    }
}
