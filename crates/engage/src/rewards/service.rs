//! [`RewardsService`]: the catalog for staff, claimable rewards and coupons for customers,
//! the three steps of a claim and the recovery pass; the API types it answers with live
//! here too. The module doc of [`super`] explains why a claim can neither oversell nor
//! charge twice.

use std::{collections::BTreeMap, sync::Arc};

use huoban_accounts::AccountsService;
use huoban_identity::IdentityService;
use huoban_kit::{
    ApiError, Page, PageQuery, SharedClock,
    clock::{from_micros, to_micros},
    idempotency,
    ids::new_id,
};
use huoban_ledger::{
    AccountId, Amount, IdempotencyKey, Ledger, LedgerError, Transfer, TransferMeta, TransferRequest, TransferStatus,
    Unit,
};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    domain::{
        self, ClaimState, CouponCode, Invalid, NewReward, Recovery, Refusal, RewardDraft, Window, claims_left,
        coupon_valid_until, pick_title, recovery_for, stock_left,
    },
    store::{ClaimRow, NewClaim, Reservation, RewardRow, RewardsStore},
};
use crate::EngageState;

/// The ledger scope of a claim's points hold is `reward:{customer}`; its key is the
/// client's Idempotency-Key, so a replayed claim finds the very same hold.
pub const LEDGER_SCOPE: &str = "reward";
/// Scope of the rare refund when a late hold is posted for a claim already released.
pub const REFUND_SCOPE: &str = "reward-refund";
/// The statement category claims are filed under.
pub const REWARDS_CATEGORY: &str = "rewards";
/// A points hold lives this long; a claim that has not posted it by then is released.
pub const HOLD_TTL: SignedDuration = SignedDuration::from_secs(120);
/// A reservation untouched this long belongs to a request that died: recovery settles
/// it. Longer than the request timeout plus [`HOLD_TTL`], so a live request is never
/// second-guessed while its hold can still be posted.
pub const STALE_AFTER: SignedDuration = SignedDuration::from_secs(300);
/// Most stale reservations one recovery pass settles.
const RECOVERY_BATCH: i64 = 500;

/// A new reward, as staff send it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRewardRequest {
    /// Title per locale (`zh-CN`, `zh-TW`, `en`), at least one.
    #[schema(example = json!({"zh-CN": "双十一咖啡券", "en": "Singles' Day coffee voucher"}))]
    pub titles: BTreeMap<String, String>,
    /// Price in points, 1 to 10,000,000.
    pub points_price: i64,
    /// Units that can ever be claimed.
    pub total_stock: i64,
    /// Most claims one customer may hold, 1 to 100.
    pub per_customer_limit: i64,
    /// RFC 3339 instant the reward becomes claimable (inclusive).
    pub claimable_from: String,
    /// RFC 3339 instant it stops being claimable (exclusive).
    pub claimable_until: String,
    /// Days a claimed coupon stays valid, 1 to 3650.
    pub coupon_valid_days: i64,
    /// The campaign the reward belongs to: it must exist and not have ended, and the
    /// reward is then claimable only while the campaign is live and by customers in its
    /// audience.
    #[serde(default)]
    pub campaign_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StockView {
    pub total: i64,
    pub claimed: i64,
    /// Units held by claims still in progress.
    pub reserved: i64,
    pub left: i64,
}

/// A reward as staff see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StaffRewardView {
    pub id: String,
    pub titles: BTreeMap<String, String>,
    pub points_price: i64,
    pub per_customer_limit: i64,
    pub claimable_from: String,
    pub claimable_until: String,
    pub coupon_valid_days: i64,
    pub created_at: String,
    pub campaign_id: Option<String>,
    pub stock: StockView,
    /// Coupons issued.
    pub claims: i64,
}

/// A claimable reward as a customer sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RewardView {
    pub id: String,
    /// In your locale, falling back to Chinese, then English.
    pub title: String,
    pub points_price: i64,
    pub claimable_until: String,
    pub coupon_valid_days: i64,
    pub stock_left: i64,
    pub per_customer_limit: i64,
    /// Claims you hold (issued or in progress).
    pub my_claims: i64,
    pub my_claims_left: i64,
    /// The campaign it belongs to (live and open to you, or it would not be listed).
    pub campaign_id: Option<String>,
}

/// A claimed coupon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClaimView {
    pub claim_id: String,
    pub reward_id: String,
    /// `HB-XXXX-XXXX-XXXX`.
    pub code: String,
    pub points_spent: i64,
    pub claimed_at: String,
    pub valid_until: String,
    /// The points transfer that paid for it; absent for a prize (a grant costs no points).
    pub transfer_id: Option<String>,
}

/// One of my coupons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CouponView {
    pub title: String,
    #[serde(flatten)]
    pub claim: ClaimView,
}

/// What one recovery pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RecoveryReport {
    /// Reservations whose points had been posted: coupon issued.
    pub finished: u64,
    /// Reservations whose hold was voided, expired or never made: stock returned.
    pub released: u64,
    /// Left for the next pass (the ledger could not answer).
    pub skipped: u64,
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        let detail = refusal.to_string();
        match refusal {
            Refusal::NotYetOpen { .. } | Refusal::Closed { .. } => {
                ApiError::conflict("reward-not-claimable", "This reward cannot be claimed now").detail(detail)
            }
            Refusal::OutOfStock => ApiError::conflict("out-of-stock", "This reward is out of stock").detail(detail),
            Refusal::LimitReached { limit } => ApiError::conflict(
                "claim-limit-reached",
                "You have claimed this reward as often as allowed",
            )
            .detail(detail)
            .with("limit", limit),
        }
    }
}

impl From<Invalid> for ApiError {
    fn from(invalid: Invalid) -> Self {
        ApiError::invalid_field(invalid.field, invalid.detail)
    }
}

const INSUFFICIENT_POINTS: &str = "insufficient-points";
const CLAIM_EXPIRED: &str = "claim-expired";

/// The answer for a released claim, from the slug it stored, so a replay answers as the
/// first attempt did.
pub(super) fn failure_problem(slug: Option<&str>) -> ApiError {
    match slug {
        Some(INSUFFICIENT_POINTS) => ApiError::conflict(INSUFFICIENT_POINTS, "Not enough points")
            .detail("Your points balance does not cover this reward; nothing was charged."),
        _ => ApiError::conflict(CLAIM_EXPIRED, "The claim could not be completed")
            .detail("The claim did not complete in time and was released; nothing was charged. Claim again with a new Idempotency-Key."),
    }
}

fn iso(micros: i64) -> String {
    from_micros(micros).to_string()
}

fn parse_instant(field: &'static str, text: &str) -> Result<Timestamp, ApiError> {
    text.parse().map_err(|_| {
        ApiError::invalid_field(
            field,
            format!("{text:?} is not an RFC 3339 instant like 2026-11-11T00:00:00+08:00"),
        )
    })
}

pub(super) fn window_of(row: &RewardRow) -> Window {
    Window {
        from: from_micros(row.claimable_from),
        until: from_micros(row.claimable_until),
    }
}

fn stock_of(row: &RewardRow) -> StockView {
    StockView {
        total: row.total,
        claimed: row.claimed,
        reserved: row.reserved,
        left: stock_left(row.total, row.claimed, row.reserved),
    }
}

pub(super) fn claim_view(claim: &ClaimRow) -> ClaimView {
    ClaimView {
        claim_id: claim.id.clone(),
        reward_id: claim.reward_id.clone(),
        code: claim.code.clone(),
        points_spent: claim.points,
        claimed_at: claim.claimed_at.map(iso).unwrap_or_default(),
        valid_until: claim.valid_until.map(iso).unwrap_or_default(),
        transfer_id: claim.transfer_id.clone(),
    }
}

fn ledger_key(claim: &ClaimRow) -> Result<IdempotencyKey, ApiError> {
    Ok(IdempotencyKey::new(
        format!("{LEDGER_SCOPE}:{}", claim.customer_id),
        claim.idem_key.clone(),
    )?)
}

/// The points hold of a claim, built from the claim row alone so every attempt (the
/// first, a replay, recovery) sends the ledger the identical request and gets one hold.
pub fn hold_request(claim: &ClaimRow, points: AccountId, clearing: AccountId) -> Result<TransferRequest, ApiError> {
    Ok(TransferRequest::single(
        ledger_key(claim)?,
        Unit::Points,
        points,
        clearing,
        Amount::new(claim.points)?,
    )
    .with_meta(TransferMeta {
        description: Some("Reward claim".to_owned()),
        merchant_category: Some(REWARDS_CATEGORY.to_owned()),
        metadata: Some(serde_json::json!({
            "source": "reward",
            "reward_id": claim.reward_id,
            "claim_id": claim.id,
        })),
        ..TransferMeta::default()
    }))
}

/// The rewards handle; cheap to clone (one reference count: the router clones it for
/// every request).
#[derive(Debug, Clone)]
pub struct RewardsService(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    state: EngageState,
    store: RewardsStore,
    clock: SharedClock,
    identity: IdentityService,
    accounts: AccountsService,
    ledger: Ledger,
}

impl RewardsService {
    pub fn new(state: &EngageState) -> Self {
        Self(Arc::new(Inner {
            state: state.clone(),
            store: RewardsStore::new(state.db.clone()),
            clock: state.clock.clone(),
            identity: state.identity.clone(),
            accounts: state.accounts.clone(),
            ledger: state.ledger.clone(),
        }))
    }

    pub fn identity(&self) -> &IdentityService {
        &self.0.identity
    }

    pub fn store(&self) -> &RewardsStore {
        &self.0.store
    }

    fn staff_view(row: RewardRow) -> StaffRewardView {
        StaffRewardView {
            titles: row.titles(),
            stock: stock_of(&row),
            claims: row.claimed,
            id: row.id,
            points_price: row.points_price,
            per_customer_limit: row.per_customer_limit,
            claimable_from: iso(row.claimable_from),
            claimable_until: iso(row.claimable_until),
            coupon_valid_days: row.coupon_valid_days,
            created_at: iso(row.created_at),
            campaign_id: row.campaign_id,
        }
    }

    #[tracing::instrument(skip_all, fields(staff = %staff))]
    pub async fn create(&self, staff: Uuid, request: NewRewardRequest) -> Result<StaffRewardView, ApiError> {
        let new = NewReward::parse(RewardDraft {
            claimable_from: parse_instant("claimable_from", &request.claimable_from)?,
            claimable_until: parse_instant("claimable_until", &request.claimable_until)?,
            titles: request.titles,
            points_price: request.points_price,
            total_stock: request.total_stock,
            per_customer_limit: request.per_customer_limit,
            coupon_valid_days: request.coupon_valid_days,
            campaign_id: request.campaign_id,
        })?;
        self.0.state.check_campaign(new.campaign_id()).await?;
        let id = new_id();
        self.0.store.insert_reward(id, &new, staff, self.0.clock.now()).await?;
        let row = self
            .0
            .store
            .reward(id)
            .await?
            .ok_or_else(|| ApiError::not_found("The reward"))?;
        Ok(Self::staff_view(row))
    }

    pub async fn staff_list(&self, page: &PageQuery) -> Result<Page<StaffRewardView>, ApiError> {
        let limit = page.limit()?;
        let rows = self.0.store.rewards(None, page.after()?.as_deref(), limit).await?;
        Ok(Page::from_rows(
            rows.into_iter().map(Self::staff_view).collect(),
            limit,
            |r| r.id.clone(),
        ))
    }

    /// Rewards claimable now, with stock left and the customer's own claims: those in
    /// their window that belong to no campaign or to a campaign live now whose audience
    /// admits the customer. A page may hold fewer than `limit` items and still have a
    /// next cursor (rewards of other campaigns were left out).
    pub async fn claimable(
        &self,
        customer: Uuid,
        channel: &str,
        page: &PageQuery,
    ) -> Result<Page<RewardView>, ApiError> {
        let limit = page.limit()?;
        let locale = self.0.identity.profile(customer).await?.locale;
        let mut rows = self
            .0
            .store
            .rewards(Some(self.0.clock.now()), page.after()?.as_deref(), limit)
            .await?;
        let next_cursor = (rows.len() > limit as usize)
            .then(|| {
                rows.truncate(limit as usize);
                rows.last().map(|r| huoban_kit::page::encode_cursor(&r.id))
            })
            .flatten();
        let live = if rows.iter().any(|r| r.campaign_id.is_some()) {
            self.0.state.live_campaigns(customer, channel).await?
        } else {
            Default::default()
        };
        let held = self.0.store.holdings(customer).await?;
        let items = rows
            .into_iter()
            .filter(|row| row.campaign_id.as_ref().is_none_or(|c| live.contains(c)))
            .map(|row| {
                let mine = held.get(&row.id).copied().unwrap_or(0);
                RewardView {
                    title: pick_title(&row.titles(), locale.as_str()).to_owned(),
                    stock_left: stock_left(row.total, row.claimed, row.reserved),
                    my_claims: mine,
                    my_claims_left: claims_left(row.per_customer_limit, mine),
                    id: row.id,
                    points_price: row.points_price,
                    claimable_until: iso(row.claimable_until),
                    coupon_valid_days: row.coupon_valid_days,
                    per_customer_limit: row.per_customer_limit,
                    campaign_id: row.campaign_id,
                }
            })
            .collect();
        Ok(Page { items, next_cursor })
    }

    pub async fn coupons(&self, customer: Uuid, page: &PageQuery) -> Result<Page<CouponView>, ApiError> {
        let limit = page.limit()?;
        let locale = self.0.identity.profile(customer).await?.locale;
        let rows = self.0.store.coupons(customer, page.after()?.as_deref(), limit).await?;
        let items = rows
            .into_iter()
            .map(|(claim, titles)| {
                let titles: BTreeMap<String, String> = serde_json::from_str(&titles).unwrap_or_default();
                CouponView {
                    title: pick_title(&titles, locale.as_str()).to_owned(),
                    claim: claim_view(&claim),
                }
            })
            .collect();
        Ok(Page::from_rows(items, limit, |c| c.claim.claim_id.clone()))
    }

    /// Claims a unit of a reward for the customer under their idempotency key. Returns
    /// the coupon and whether this was a replay of an earlier claim with the same key.
    #[tracing::instrument(skip_all, fields(customer = %customer, reward = %reward_id))]
    pub async fn claim(
        &self,
        customer: Uuid,
        channel: &str,
        reward_id: Uuid,
        key: &str,
    ) -> Result<(ClaimView, bool), ApiError> {
        IdempotencyKey::new(format!("{LEDGER_SCOPE}:{customer}"), key)?;
        // The read path: one read answers replays and the sure refusals (sold out, the
        // customer at their limit) without a write transaction, which is what most
        // attempts of a flash sale are.
        let outlook = self
            .0
            .store
            .outlook(reward_id, customer, key)
            .await?
            .ok_or_else(|| ApiError::not_found("The reward"))?;
        // A replay answers the first result even once the window has closed. Loaded from
        // the writer pool: the first attempt may have committed a moment ago.
        if outlook.key_claim.is_some()
            && let Some(existing) = self.0.store.claim_by_key(customer, key).await?
        {
            return self.replay(existing, reward_id).await.map(|v| (v, true));
        }
        let reward = outlook.reward;
        window_of(&reward).check(self.0.clock.now())?;
        if let Some(refusal) = domain::sure_refusal(
            reward.per_customer_limit,
            outlook.held,
            reward.total,
            reward.claimed,
            reward.reserved,
        ) {
            return Err(refusal.into());
        }
        if let Some(campaign) = &reward.campaign_id
            && !self.0.state.live_campaigns(customer, channel).await?.contains(campaign)
        {
            return Err(
                ApiError::conflict("reward-not-claimable", "This reward cannot be claimed now")
                    .detail("The reward belongs to a campaign that is not open to you now.")
                    .with("campaign_id", campaign.clone()),
            );
        }
        let (claim, fresh) = self.reserve(customer, &reward, key).await?;
        if !fresh {
            // A concurrent attempt with the same key won the reservation.
            return self.replay(claim, reward_id).await.map(|v| (v, true));
        }
        self.settle(claim, Some(reward.coupon_valid_days))
            .await
            .map(|v| (v, false))
    }

    /// Issues a unit of a reward as a prize — a rule's action, an invite unlock, a team
    /// challenge's reward — without charging points: the same stock, window and
    /// per-customer limit as a claim. Idempotent on `key` (callers derive it from what
    /// earned the prize, e.g. `rule:{rule}:{event}`); returns the coupon and whether it was
    /// issued before.
    #[tracing::instrument(skip_all, fields(customer = %customer, reward = %reward_id))]
    pub async fn grant(&self, customer: Uuid, reward_id: Uuid, key: &str) -> Result<(ClaimView, bool), ApiError> {
        let reward = self
            .0
            .store
            .reward(reward_id)
            .await?
            .ok_or_else(|| ApiError::not_found("The reward"))?;
        let (claim, fresh) = match self.0.store.claim_by_key(customer, key).await? {
            Some(existing) => (existing, false),
            None => self.reserve_at(customer, &reward, key, 0).await?,
        };
        if claim.reward_id != reward_id.to_string() || claim.points != 0 {
            return Err(idempotency::mismatch());
        }
        match claim.state() {
            Some(ClaimState::Claimed) => Ok((claim_view(&claim), !fresh)),
            Some(ClaimState::Released) => Err(failure_problem(claim.failure.as_deref())),
            Some(ClaimState::Reserved) => self.finish_free(&claim).await.map(|v| (v, !fresh)),
            None => Err(ApiError::internal(format!("claim {} has an unknown state", claim.id))),
        }
    }

    /// A granted (free) claim needs no ledger step: it is finished at once.
    async fn finish_free(&self, claim: &ClaimRow) -> Result<ClaimView, ApiError> {
        let now = self.0.clock.now();
        let days = self.valid_days(claim).await?;
        self.0
            .store
            .finish(claim, None, now, coupon_valid_until(now, days))
            .await?;
        let current = self.reload(claim).await?;
        match current.state() {
            Some(ClaimState::Claimed) => Ok(claim_view(&current)),
            _ => Err(failure_problem(current.failure.as_deref())),
        }
    }

    async fn replay(&self, claim: ClaimRow, reward_id: Uuid) -> Result<ClaimView, ApiError> {
        if claim.reward_id != reward_id.to_string() {
            return Err(idempotency::mismatch());
        }
        match claim.state() {
            Some(ClaimState::Claimed) => Ok(claim_view(&claim)),
            Some(ClaimState::Released) => Err(failure_problem(claim.failure.as_deref())),
            // The first attempt is still running or died: drive it on. Every step is
            // idempotent, so two drivers still make one hold, one posting, one coupon.
            Some(ClaimState::Reserved) => self.settle(claim, None).await,
            None => Err(ApiError::internal(format!("claim {} has an unknown state", claim.id))),
        }
    }

    /// Step 1 alone: checks the window, reserves a unit of stock and counts the claim
    /// against the customer's limit, all in one commit. Answers the claim row and whether
    /// this call wrote it (false: an earlier attempt with the same key did). Public so
    /// tests can stop a claim here, as a crash would.
    pub async fn reserve(&self, customer: Uuid, reward: &RewardRow, key: &str) -> Result<(ClaimRow, bool), ApiError> {
        self.reserve_at(customer, reward, key, reward.points_price).await
    }

    async fn reserve_at(
        &self,
        customer: Uuid,
        reward: &RewardRow,
        key: &str,
        points: i64,
    ) -> Result<(ClaimRow, bool), ApiError> {
        // Validated before anything is written: the key must also be a ledger key.
        IdempotencyKey::new(format!("{LEDGER_SCOPE}:{customer}"), key)?;
        let now = self.0.clock.now();
        window_of(reward).check(now)?;
        let reward_id: Uuid = reward.id.parse().map_err(ApiError::internal)?;
        let new = NewClaim {
            id: new_id(),
            reward_id,
            customer_id: customer,
            idem_key: key.to_owned(),
            points,
            code: CouponCode::from_random(random_bits()).to_string(),
            per_customer_limit: reward.per_customer_limit,
        };
        let fresh = match self.0.store.reserve(&new, now).await? {
            // Written just now as `new` says: no need to read it back.
            Reservation::Reserved => return Ok((new.row(now), true)),
            Reservation::Replay => false,
            Reservation::LimitReached => {
                return Err(Refusal::LimitReached {
                    limit: reward.per_customer_limit,
                }
                .into());
            }
            Reservation::OutOfStock => return Err(Refusal::OutOfStock.into()),
        };
        let claim = self
            .0
            .store
            .claim_by_key(customer, key)
            .await?
            .ok_or_else(|| ApiError::internal("a reserved claim vanished"))?;
        Ok((claim, fresh))
    }

    async fn points_and_clearing(&self, customer: &str) -> Result<(AccountId, AccountId), ApiError> {
        let customer: Uuid = customer.parse().map_err(ApiError::internal)?;
        let points = self.0.accounts.ensure_standard_accounts(customer).await?.points;
        Ok((points, self.0.accounts.clearing(Unit::Points).await?))
    }

    /// Step 2 alone: holds the claim's points in the ledger (or finds the hold an earlier
    /// attempt made). Public so tests can stop a claim here.
    pub async fn hold(&self, claim: &ClaimRow) -> Result<Transfer, LedgerError> {
        let (points, clearing) = self
            .points_and_clearing(&claim.customer_id)
            .await
            .map_err(|e| LedgerError::InvalidInput(e.to_string()))?;
        let request = hold_request(claim, points, clearing).map_err(|e| LedgerError::InvalidInput(e.to_string()))?;
        Ok(self.0.ledger.create_pending(request, Some(HOLD_TTL)).await?.transfer)
    }

    /// Steps 2 and 3 for a reserved claim: hold, post, finish — or release.
    /// `valid_days`: the reward's coupon validity when the caller has it at hand.
    async fn settle(&self, claim: ClaimRow, valid_days: Option<i64>) -> Result<ClaimView, ApiError> {
        let hold = match self.hold(&claim).await {
            Ok(t) => t,
            Err(LedgerError::InsufficientFunds {
                available, requested, ..
            }) => {
                return match self.release(&claim, INSUFFICIENT_POINTS).await {
                    // A concurrent replay of this key got the points through first.
                    Ok(view) => Ok(view),
                    Err(e) if e.slug == INSUFFICIENT_POINTS => {
                        Err(e.with("available", available).with("requested", requested))
                    }
                    Err(e) => Err(e),
                };
            }
            // Ledger unavailable or the like: the claim stays reserved; a retry with the
            // same key, or recovery, settles it.
            Err(e) => return Err(e.into()),
        };
        let posted = match hold.status {
            TransferStatus::Posted => hold,
            TransferStatus::Voided => return self.release(&claim, CLAIM_EXPIRED).await,
            TransferStatus::Pending => match self.0.ledger.post_pending(hold.id).await {
                Ok(t) => t,
                Err(LedgerError::PendingAlreadyPosted(_)) => hold,
                Err(LedgerError::PendingExpired(_) | LedgerError::PendingAlreadyVoided(_)) => {
                    return self.release(&claim, CLAIM_EXPIRED).await;
                }
                Err(e) => return Err(e.into()),
            },
        };
        self.finish(&claim, &posted, valid_days).await
    }

    /// Marks the claim claimed once its points are posted. If recovery released it
    /// meanwhile (only possible when this request stalled past [`STALE_AFTER`]), the
    /// points are refunded, so stock and points still agree.
    async fn finish(&self, claim: &ClaimRow, posted: &Transfer, days: Option<i64>) -> Result<ClaimView, ApiError> {
        let now = self.0.clock.now();
        let days = match days {
            Some(days) => days,
            None => self.valid_days(claim).await?,
        };
        let valid_until = coupon_valid_until(now, days);
        let transfer_id = posted.id.to_string();
        if self.0.store.finish(claim, Some(&transfer_id), now, valid_until).await? {
            // Moved by this call, so the claim is exactly as written.
            return Ok(claim_view(&ClaimRow {
                state: ClaimState::Claimed.as_str().to_owned(),
                transfer_id: Some(transfer_id),
                updated_at: to_micros(now),
                claimed_at: Some(to_micros(now)),
                valid_until: Some(to_micros(valid_until)),
                ..claim.clone()
            }));
        }
        let current = self.reload(claim).await?;
        match current.state() {
            Some(ClaimState::Claimed) => Ok(claim_view(&current)),
            Some(ClaimState::Released) => {
                self.refund(&current).await?;
                Err(failure_problem(current.failure.as_deref()))
            }
            _ => Err(ApiError::internal(format!("claim {} did not settle", claim.id))),
        }
    }

    /// Days a coupon of the claim's reward stays valid.
    async fn valid_days(&self, claim: &ClaimRow) -> Result<i64, ApiError> {
        Ok(self
            .0
            .store
            .reward(claim.reward_id.parse().map_err(ApiError::internal)?)
            .await?
            .map_or(1, |r| r.coupon_valid_days))
    }

    /// Returns the unit of stock; answers with the claim's final state (someone else may
    /// have finished it first).
    async fn release(&self, claim: &ClaimRow, failure: &str) -> Result<ClaimView, ApiError> {
        if self.0.store.release(claim, failure, self.0.clock.now()).await? {
            return Err(failure_problem(Some(failure)));
        }
        let current = self.reload(claim).await?;
        match current.state() {
            Some(ClaimState::Claimed) => Ok(claim_view(&current)),
            _ => Err(failure_problem(current.failure.as_deref())),
        }
    }

    async fn reload(&self, claim: &ClaimRow) -> Result<ClaimRow, ApiError> {
        self.0
            .store
            .claim(&claim.id)
            .await?
            .ok_or_else(|| ApiError::internal("a claim vanished"))
    }

    async fn refund(&self, claim: &ClaimRow) -> Result<(), ApiError> {
        tracing::warn!(claim = %claim.id, "points posted for a released claim; refunding");
        let (points, clearing) = self.points_and_clearing(&claim.customer_id).await?;
        let key = IdempotencyKey::new(REFUND_SCOPE, claim.id.clone())?;
        let request = TransferRequest::single(key, Unit::Points, clearing, points, Amount::new(claim.points)?)
            .with_meta(TransferMeta {
                description: Some("Reward claim refund".to_owned()),
                merchant_category: Some(REWARDS_CATEGORY.to_owned()),
                metadata: Some(serde_json::json!({ "source": "reward", "claim_id": claim.id })),
                ..TransferMeta::default()
            });
        self.0.ledger.transfer(request).await?;
        Ok(())
    }

    /// Settles reservations older than [`STALE_AFTER`] by their ledger hold: posted →
    /// coupon issued; open → voided, then decided again; voided, expired or absent →
    /// stock returned. Safe to run on several nodes at once and beside live claims.
    #[tracing::instrument(skip_all)]
    pub async fn recover_stale(&self) -> Result<RecoveryReport, ApiError> {
        let now = self.0.clock.now();
        let before = now.checked_sub(STALE_AFTER).unwrap_or(now);
        let mut report = RecoveryReport::default();
        for claim in self.0.store.stale_reservations(before, RECOVERY_BATCH).await? {
            if claim.points == 0 {
                // A grant that stopped before finishing: it owes no points, so it is issued.
                if self.finish_free(&claim).await.is_ok() {
                    report.finished += 1;
                }
                continue;
            }
            let hold = match self.0.ledger.transfer_by_key(&ledger_key(&claim)?).await {
                Ok(t) => Some(t),
                Err(LedgerError::TransferNotFound(_)) => None,
                Err(e) => {
                    tracing::warn!(claim = %claim.id, error = %e, "recovery could not read the hold");
                    report.skipped += 1;
                    continue;
                }
            };
            let mut action = recovery_for(hold.as_ref().map(|t| t.status));
            let mut posted = hold.clone().filter(|t| t.status == TransferStatus::Posted);
            if action == Recovery::VoidFirst
                && let Some(open) = &hold
            {
                action = match self.0.ledger.void_pending(open.id).await {
                    Ok(_) | Err(LedgerError::PendingExpired(_) | LedgerError::PendingAlreadyVoided(_)) => {
                        Recovery::Release
                    }
                    Err(LedgerError::PendingAlreadyPosted(_)) => {
                        posted = Some(open.clone());
                        Recovery::Finish
                    }
                    Err(e) => {
                        tracing::warn!(claim = %claim.id, error = %e, "recovery could not void the hold");
                        report.skipped += 1;
                        continue;
                    }
                };
            }
            match (action, posted) {
                (Recovery::Finish, Some(t)) => {
                    let days = self.valid_days(&claim).await?;
                    if self
                        .0
                        .store
                        .finish(
                            &claim,
                            Some(&t.id.to_string()),
                            now,
                            domain::coupon_valid_until(now, days),
                        )
                        .await?
                    {
                        report.finished += 1;
                    }
                }
                _ => {
                    if self.0.store.release(&claim, CLAIM_EXPIRED, now).await? {
                        report.released += 1;
                    }
                }
            }
        }
        if report != RecoveryReport::default() {
            tracing::info!(?report, "stale reward reservations settled");
        }
        Ok(report)
    }
}

/// 64 bits for a coupon code from a UUIDv7's random tail (its low 62 bits come from the
/// operating system's generator), so no extra random-number dependency is needed.
pub(super) fn random_bits() -> u64 {
    let bytes = Uuid::now_v7().into_bytes();
    u64::from_be_bytes(bytes[8..16].try_into().unwrap_or([0; 8]))
}
