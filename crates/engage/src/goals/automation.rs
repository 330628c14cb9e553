//! Goals that move by themselves (issue 4, item 6): the automatic monthly transfer, and
//! points converted into goal money where a campaign offers it.
//!
//! **The automatic transfer.** The owner turns it on for a goal, from one of their own
//! money accounts (their current account unless they name another), on the plan's
//! transfer day or a day of their choosing (1–28). On that day, at
//! [`domain::TRANSFER_HOUR`] in the owner's time zone, the job moves the plan's monthly
//! amount into the pocket — never more than is left to save; a complete goal's transfer
//! ends. The job is a `goal_auto_transfers` row with a due time and a lease, claimed like
//! the goal reminders, so any node may run it. The ledger key of a transfer is the goal
//! and the month it pays for (`goal-auto:{goal}` / `YYYY-MM`): however often the job runs
//! for a month — a restart after paying but before moving on, two nodes, turning the
//! transfer off and on — the month is paid once. Too little money: nothing moves, the
//! owner gets one inbox message for the month, and the transfer is tried again the next
//! [`domain::SHORTFALL_RETRIES`] days at the same hour; then that month is skipped and the
//! next month's day is due. Turning it off deletes the row: nothing more is paid (a run
//! that had already claimed the row a moment before may still finish that one month's
//! payment). Progress and milestones move as with any deposit.
//!
//! **Points conversion.** Staff define conversion offers (`100 points = ¥1`), each
//! optionally belonging to a campaign: it is then usable only while that campaign is live
//! for the customer (the same [`crate::CampaignGate`] as rewards). Converting is ONE
//! ledger transfer in two units, all or nothing: the points leave the customer's points
//! account for the bank's points clearing, and the money goes from the bank's CNY clearing
//! into the goal's pocket. Its key is the customer's Idempotency-Key (scope
//! `goal-conversion:{customer}`), so a retry converts nothing more. The owner and partners
//! may convert into a shared goal. An offer has a per-conversion maximum but no budget of
//! its own: the money comes from the bank's clearing, not from the campaign's points budget.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use huoban_identity::Locale;
use huoban_kit::{ApiError, clock::to_micros, ids::new_id};
use huoban_ledger::{
    AccountId, AccountType, Amount, IdempotencyKey, LedgerError, Leg, TransferMeta, TransferRequest, Unit,
};
use jiff::{Timestamp, ToSpan, civil::Date, tz::TimeZone};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    domain::{self, AfterShortfall, ConversionRefusal, Rate},
    service::{DEPOSIT_CATEGORY, GoalView, GoalsService, not_goal_owner, plan_of, yuan},
    store::{AutoTransferRow, GoalRow, OfferRow},
};
use crate::{
    checkin::domain::{YearMonth, local_date},
    rewards::domain::{parse_campaign_id, parse_titles, pick_title},
};

/// `metadata.source` of a conversion transfer; its `customer_id` is who converted.
pub const CONVERSION_SOURCE: &str = "goal_conversion";
/// The statement category of converted points.
pub const CONVERSION_CATEGORY: &str = "points_conversion";
const TRANSFER_LEASE_SECS: i64 = 120;
const TRANSFER_BATCH: i64 = 100;

/// Turning the automatic transfer on (or changing it).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AutoTransferRequest {
    /// One of your money accounts; your current account when absent.
    pub from_account: Option<Uuid>,
    /// Day of the month, 1 to 28; the plan's transfer day when absent.
    pub transfer_day: Option<i64>,
}

/// A goal's automatic monthly transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AutoTransferView {
    pub from_account: Uuid,
    pub transfer_day: i8,
    /// What the next transfer moves if the pocket does not change before it (fen).
    pub amount: i64,
    /// RFC 3339 instant of the next attempt.
    pub next_transfer_at: String,
    /// `YYYY-MM`: the month the next transfer pays for.
    pub month: String,
    /// Attempts for that month refused for want of money so far.
    pub attempts: i64,
}

/// A new conversion offer, as staff send it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOfferRequest {
    /// Title per locale (`zh-CN`, `zh-TW`, `en`), at least one.
    #[schema(example = json!({"zh-CN": "积分换存款", "en": "Points into savings"}))]
    pub titles: BTreeMap<String, String>,
    /// Points per step (e.g. 100).
    pub points: i64,
    /// Fen per step (e.g. 100: 100 points = ¥1).
    pub fen: i64,
    /// Most points one conversion may take, a multiple of `points`.
    #[serde(default)]
    pub max_points: Option<i64>,
    /// The campaign offering it: it must exist and not have ended; the offer is then
    /// usable only while the campaign is live for the customer.
    #[serde(default)]
    pub campaign_id: Option<String>,
}

/// A conversion offer as staff see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StaffOfferView {
    pub id: String,
    pub titles: BTreeMap<String, String>,
    pub campaign_id: Option<String>,
    pub points: i64,
    pub fen: i64,
    pub max_points: i64,
    pub created_at: String,
}

/// A conversion offer open to you.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OfferView {
    pub id: String,
    /// In your locale, falling back to Chinese, then English.
    pub title: String,
    pub campaign_id: Option<String>,
    pub points: i64,
    pub fen: i64,
    pub max_points: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OfferList {
    pub items: Vec<OfferView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StaffOfferList {
    pub items: Vec<StaffOfferView>,
}

/// A conversion: how many points, under which offer.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConversionRequest {
    pub offer_id: Uuid,
    /// A positive multiple of the offer's `points`, at most its `max_points`.
    pub points: i64,
}

/// The answer to a conversion.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConversionView {
    pub transfer_id: Uuid,
    pub points: i64,
    /// Fen added to the pocket.
    pub amount: i64,
    /// True when this was a retry of a conversion already made (nothing moved again).
    pub replayed: bool,
    /// Milestones this conversion crossed.
    pub milestones_fired: Vec<i64>,
    pub goal: GoalView,
}

impl From<ConversionRefusal> for ApiError {
    fn from(refusal: ConversionRefusal) -> Self {
        let detail = refusal.to_string();
        match refusal {
            ConversionRefusal::InvalidRate { field, .. } => ApiError::invalid_field(field, detail),
            ConversionRefusal::InvalidMax { .. } => ApiError::invalid_field("max_points", detail),
            ConversionRefusal::InvalidPoints { step, .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-points-amount",
                "The points amount is not valid",
            )
            .detail(detail)
            .with("field", "points")
            .with("step", step),
        }
    }
}

fn unknown_offer(id: Uuid) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown-conversion-offer",
        "No such conversion offer",
    )
    .detail(format!("There is no conversion offer {id}."))
    .with("field", "offer_id")
}

/// The instant a transfer dated `date` runs: [`domain::TRANSFER_HOUR`] local time.
fn run_at(date: Date, tz: &TimeZone) -> Result<Timestamp, ApiError> {
    Ok(date
        .at(domain::TRANSFER_HOUR, 0, 0, 0)
        .to_zoned(tz.clone())
        .map_err(ApiError::internal)?
        .timestamp())
}

/// The transfer date of a stored month (`YYYY-MM`) on `day`.
fn month_date(month: &str, day: i8) -> Result<Date, ApiError> {
    YearMonth::parse(month)
        .and_then(|m| m.day(day))
        .ok_or_else(|| ApiError::internal(format!("stored month {month:?}, day {day}")))
}

fn staff_offer_view(row: OfferRow) -> StaffOfferView {
    StaffOfferView {
        titles: row.titles(),
        id: row.id,
        campaign_id: row.campaign_id,
        points: row.points,
        fen: row.fen,
        max_points: row.max_points,
        created_at: huoban_kit::clock::from_micros(row.created_at).to_string(),
    }
}

fn rate_of(row: &OfferRow) -> Rate {
    Rate {
        points: row.points,
        fen: row.fen,
        max_points: row.max_points,
    }
}

impl GoalsService {
    /// The automatic transfer as the goal view shows it, with the amount it would move now.
    pub(super) async fn auto_transfer_view(
        &self,
        row: &GoalRow,
        saved: i64,
    ) -> Result<Option<AutoTransferView>, ApiError> {
        let Some(auto) = self.0.store.auto_transfer(row.id).await? else {
            return Ok(None);
        };
        Ok(Some(AutoTransferView {
            from_account: Uuid::parse_str(&auto.from_account).map_err(ApiError::internal)?,
            transfer_day: i8::try_from(auto.transfer_day).map_err(ApiError::internal)?,
            amount: domain::auto_transfer_amount(plan_of(row).monthly_amount(), row.target_amount, saved),
            next_transfer_at: huoban_kit::clock::from_micros(auto.due_at).to_string(),
            month: auto.month,
            attempts: auto.attempts,
        }))
    }

    /// Turns the goal's automatic monthly transfer on, or changes its account or day.
    /// Only the owner may; the account must be one of their money accounts.
    #[tracing::instrument(skip_all, fields(customer = %customer, goal = %goal))]
    pub async fn set_auto_transfer(
        &self,
        customer: Uuid,
        goal: Uuid,
        request: AutoTransferRequest,
    ) -> Result<GoalView, ApiError> {
        let row = self
            .owned_goal(goal, customer, || {
                not_goal_owner("Only the goal's owner can set its automatic transfer")
                    .detail("The automatic transfer pays from the owner's account; deposit yourself instead.")
            })
            .await?;
        let day = match request.transfer_day {
            Some(day) => domain::check_transfer_day(day)?,
            None => row.transfer_day,
        };
        let from = match request.from_account {
            Some(id) => self
                .0
                .accounts
                .owned_account(customer, id)
                .await
                .map_err(|e| e.with("field", "from_account"))?,
            None => {
                let current = self.0.accounts.ensure_standard_accounts(customer).await?.current;
                self.0.ledger.account(current).await?
            }
        };
        // The ledger keeps current and savings accounts in CNY.
        if !matches!(from.account_type, AccountType::Current | AccountType::Savings) {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-source-account",
                "The automatic transfer must come from a money account",
            )
            .detail("Choose your current or savings account.")
            .with("field", "from_account"));
        }
        let saved = self.0.ledger.balance(AccountId::from(row.pocket_id)).await?.posted;
        if saved >= row.target_amount {
            return Err(ApiError::conflict("goal-completed", "The goal is already reached")
                .detail("A complete goal needs no automatic transfer."));
        }
        let tz = self.zone_of(customer).await?;
        let now = self.0.clock.now();
        let today = local_date(now, &tz);
        let ran_today = now >= run_at(today, &tz)?;
        let next = domain::next_transfer_date(day, today, ran_today)
            .ok_or_else(|| ApiError::internal("no transfer date ahead"))?;
        self.0
            .store
            .upsert_auto_transfer(
                &AutoTransferRow {
                    goal_id: row.id.to_string(),
                    customer_id: customer.to_string(),
                    from_account: from.id.to_string(),
                    transfer_day: i64::from(day),
                    due_at: to_micros(run_at(next, &tz)?),
                    month: domain::transfer_month(next),
                    attempts: 0,
                },
                now,
            )
            .await?;
        self.view(&row, customer).await
    }

    /// Turns the automatic transfer off (nothing happens when it was off). Only the owner.
    pub async fn stop_auto_transfer(&self, customer: Uuid, goal: Uuid) -> Result<GoalView, ApiError> {
        let row = self
            .owned_goal(goal, customer, || {
                not_goal_owner("Only the goal's owner can stop its automatic transfer")
            })
            .await?;
        self.0.store.delete_auto_transfer(row.id).await?;
        self.view(&row, customer).await
    }

    /// Makes every automatic transfer due at `now`; returns how many moved money. Any
    /// node may run it at any time: claims keep a transfer to one node, and the ledger key
    /// keeps a month to one payment.
    #[tracing::instrument(skip_all)]
    pub async fn run_due_transfers(&self, now: Timestamp) -> Result<usize, ApiError> {
        let token = new_id().to_string();
        let lease = now.checked_add(TRANSFER_LEASE_SECS.seconds()).unwrap_or(now);
        let mut moved = 0;
        loop {
            let claimed = self
                .0
                .store
                .claim_due_transfers(now, lease, &token, TRANSFER_BATCH)
                .await?;
            let batch = claimed.len();
            for row in claimed {
                match self.auto_transfer(&row, now, &token).await {
                    Ok(true) => moved += 1,
                    Ok(false) => {}
                    // The claim lapses after its lease and a later tick tries again; the
                    // month's key keeps a payment that did go through from going twice.
                    Err(e) => tracing::warn!(error = %e, goal = %row.goal_id, "automatic goal transfer failed"),
                }
            }
            if batch < TRANSFER_BATCH as usize {
                return Ok(moved);
            }
        }
    }

    /// One claimed transfer; true when it moved money now.
    async fn auto_transfer(&self, auto: &AutoTransferRow, now: Timestamp, token: &str) -> Result<bool, ApiError> {
        let goal_id = Uuid::parse_str(&auto.goal_id).map_err(ApiError::internal)?;
        let Some(goal) = self.0.store.goal(goal_id).await? else {
            self.0.store.finish_transfers(&auto.goal_id, token).await?;
            return Ok(false);
        };
        let customer = Uuid::parse_str(&auto.customer_id).map_err(ApiError::internal)?;
        let tz = self.zone_of(customer).await?;
        let day = i8::try_from(auto.transfer_day).map_err(ApiError::internal)?;
        let this_month = month_date(&auto.month, day)?;
        // The next month's day, or (after an outage) the next day ahead: missed months
        // are not paid in a burst.
        let following = {
            let after = this_month.checked_add(1.month()).map_err(ApiError::internal)?;
            let today = local_date(now, &tz);
            if after >= today {
                after
            } else {
                domain::next_transfer_date(day, today, false).unwrap_or(after)
            }
        };
        let tz_ref = &tz;
        let move_on = |date: Date| async move {
            self.0
                .store
                .reschedule_transfer(
                    &auto.goal_id,
                    token,
                    run_at(date, tz_ref)?,
                    &domain::transfer_month(date),
                    0,
                    now,
                )
                .await
                .map_err(ApiError::from)
        };
        let key = IdempotencyKey::new(format!("goal-auto:{}", goal.id), auto.month.clone())?;
        match self.0.ledger.transfer_by_key(&key).await {
            // Paid by a run that stopped before moving on.
            Ok(_) => {
                move_on(following).await?;
                return Ok(false);
            }
            Err(LedgerError::TransferNotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        let pocket = AccountId::from(goal.pocket_id);
        let saved = self.0.ledger.balance(pocket).await?.posted;
        let amount = domain::auto_transfer_amount(plan_of(&goal).monthly_amount(), goal.target_amount, saved);
        if amount == 0 {
            // Complete: nothing more to save.
            self.0.store.finish_transfers(&auto.goal_id, token).await?;
            return Ok(false);
        }
        let from = AccountId::from(Uuid::parse_str(&auto.from_account).map_err(ApiError::internal)?);
        let request =
            TransferRequest::single(key, Unit::Cny, from, pocket, Amount::new(amount)?).with_meta(TransferMeta {
                description: Some(format!("Automatic transfer: {}", goal.name)),
                merchant_category: Some(DEPOSIT_CATEGORY.into()),
                channel: Some("auto".into()),
                metadata: Some(serde_json::json!({
                    "source": "goal_auto_transfer", "goal_id": goal.id.to_string(), "month": auto.month,
                })),
                ..TransferMeta::default()
            });
        let locale = self.0.identity.profile(customer).await?.locale;
        match self.0.ledger.transfer(request).await {
            Ok(outcome) => {
                self.0
                    .store
                    .record_contribution(
                        goal.id,
                        outcome.transfer.id.as_uuid(),
                        Some(customer),
                        amount,
                        outcome.transfer.posted_at.unwrap_or(outcome.transfer.created_at),
                    )
                    .await?;
                if let Err(e) = self.check_milestones(&goal).await {
                    tracing::warn!(error = %e, goal = %goal.id, "goal milestones not evaluated");
                }
                let (title, body) = transfer_message(locale, &goal.name, amount, saved + amount, goal.target_amount);
                self.deliver(
                    &goal,
                    customer,
                    "goal_auto_transfer",
                    title,
                    body,
                    format!("goal:{}:auto:{}", goal.id, auto.month),
                    saved + amount,
                )
                .await?;
                move_on(following).await?;
                Ok(!outcome.replayed)
            }
            // The month was paid with another amount (by a run before the pocket moved).
            Err(LedgerError::IdempotencyKeyReused { .. }) => {
                move_on(following).await?;
                Ok(false)
            }
            Err(LedgerError::InsufficientFunds { .. }) => {
                let attempts = auto.attempts + 1;
                let (title, body) = shortfall_message(locale, &goal.name, amount);
                self.deliver(
                    &goal,
                    customer,
                    "goal_auto_transfer_failed",
                    title,
                    body,
                    format!("goal:{}:auto:{}:short", goal.id, auto.month),
                    saved,
                )
                .await?;
                match domain::after_shortfall(attempts) {
                    AfterShortfall::TryTomorrow => {
                        let mut tomorrow = huoban_kit::clock::from_micros(auto.due_at)
                            .to_zoned(tz.clone())
                            .checked_add(1.day())
                            .map_err(ApiError::internal)?
                            .timestamp();
                        // Found late (after an outage): a day after the due time may be
                        // past already, and the retries must not run on consecutive ticks.
                        if tomorrow <= now {
                            let next_day = local_date(now, &tz).tomorrow().map_err(ApiError::internal)?;
                            tomorrow = run_at(next_day, &tz)?;
                        }
                        self.0
                            .store
                            .reschedule_transfer(&auto.goal_id, token, tomorrow, &auto.month, attempts, now)
                            .await?;
                    }
                    AfterShortfall::SkipMonth => move_on(following).await?,
                }
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The automatic-transfer tick: runs [`GoalsService::run_due_transfers`] every few seconds.
    pub fn spawn_transfer_tick(&self, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
        let service = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                match service.run_due_transfers(service.0.clock.now()).await {
                    Ok(n) if n > 0 => tracing::info!(goals = n, "automatic goal transfers made"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "automatic goal transfers failed"),
                }
            }
        })
    }

    /// A new points conversion offer (staff).
    #[tracing::instrument(skip_all, fields(staff = %staff))]
    pub async fn create_offer(&self, staff: Uuid, request: NewOfferRequest) -> Result<StaffOfferView, ApiError> {
        let titles = parse_titles(request.titles).map_err(|e| ApiError::invalid_field(e.field, e.detail))?;
        let rate = Rate::check(request.points, request.fen, request.max_points)?;
        let campaign_id = parse_campaign_id(request.campaign_id.as_deref())
            .map_err(|e| ApiError::invalid_field(e.field, e.detail))?;
        self.0.engage.check_campaign(campaign_id.as_deref()).await?;
        let row = OfferRow {
            id: new_id().to_string(),
            titles: serde_json::to_string(&titles).map_err(ApiError::internal)?,
            campaign_id,
            points: rate.points,
            fen: rate.fen,
            max_points: rate.max_points,
            created_at: to_micros(self.0.clock.now()),
        };
        self.0.store.insert_offer(&row, staff).await?;
        Ok(staff_offer_view(row))
    }

    pub async fn staff_offers(&self) -> Result<StaffOfferList, ApiError> {
        Ok(StaffOfferList {
            items: self.0.store.offers().await?.into_iter().map(staff_offer_view).collect(),
        })
    }

    /// The offers open to the customer now: those of no campaign, and those of a campaign
    /// live for them.
    pub async fn offers_for(&self, customer: Uuid, channel: &str) -> Result<OfferList, ApiError> {
        let rows = self.0.store.offers().await?;
        let live = if rows.iter().any(|r| r.campaign_id.is_some()) {
            self.0.engage.live_campaigns(customer, channel).await?
        } else {
            Default::default()
        };
        let locale = self.0.identity.profile(customer).await?.locale;
        Ok(OfferList {
            items: rows
                .into_iter()
                .filter(|r| r.campaign_id.as_ref().is_none_or(|c| live.contains(c)))
                .map(|r| OfferView {
                    title: pick_title(&r.titles(), locale.as_str()).to_owned(),
                    id: r.id,
                    campaign_id: r.campaign_id,
                    points: r.points,
                    fen: r.fen,
                    max_points: r.max_points,
                })
                .collect(),
        })
    }

    /// Converts the customer's points into money in the goal's pocket under an offer: one
    /// two-unit ledger transfer, at most once per Idempotency-Key.
    #[tracing::instrument(skip_all, fields(customer = %customer, goal = %goal))]
    pub async fn convert(
        &self,
        customer: Uuid,
        channel: &str,
        goal: Uuid,
        idempotency_key: &str,
        request: ConversionRequest,
    ) -> Result<ConversionView, ApiError> {
        let row = self.member_goal(goal, customer).await?;
        let key = IdempotencyKey::new(format!("goal-conversion:{}", customer.hyphenated()), idempotency_key)?;
        let offer = self
            .0
            .store
            .offer(request.offer_id)
            .await?
            .ok_or_else(|| unknown_offer(request.offer_id))?;
        if let Some(campaign) = &offer.campaign_id
            && !self
                .0
                .engage
                .live_campaigns(customer, channel)
                .await?
                .contains(campaign)
        {
            return Err(ApiError::conflict(
                "conversion-offer-unavailable",
                "This conversion offer is not open to you now",
            )
            .detail("The offer belongs to a campaign that is not live for you.")
            .with("campaign_id", campaign.clone()));
        }
        let fen = rate_of(&offer).convert(request.points)?;
        let points_account = self.0.accounts.ensure_standard_accounts(customer).await?.points;
        let points_clearing = self.0.accounts.clearing(Unit::Points).await?;
        let money_clearing = self.0.accounts.clearing(Unit::Cny).await?;
        let pocket = AccountId::from(row.pocket_id);
        let transfer = TransferRequest {
            key,
            unit: Unit::Cny,
            legs: vec![
                Leg::in_unit(
                    Unit::Points,
                    points_account,
                    points_clearing,
                    Amount::new(request.points)?,
                ),
                Leg::new(money_clearing, pocket, Amount::new(fen)?),
            ],
            meta: TransferMeta {
                description: Some(format!("Points into savings goal: {}", row.name)),
                merchant_category: Some(CONVERSION_CATEGORY.into()),
                channel: Some(channel.to_owned()),
                metadata: Some(serde_json::json!({
                    "source": CONVERSION_SOURCE, "goal_id": row.id.to_string(), "offer_id": offer.id,
                    "customer_id": customer.to_string(), "points": request.points,
                })),
                ..TransferMeta::default()
            },
        };
        let outcome = match self.0.ledger.transfer(transfer).await {
            Ok(outcome) => outcome,
            Err(LedgerError::InsufficientFunds {
                available, requested, ..
            }) => {
                return Err(ApiError::conflict("insufficient-points", "Not enough points")
                    .detail("Your points balance does not cover this conversion; nothing was converted.")
                    .with("available", available)
                    .with("requested", requested));
            }
            Err(e) => return Err(e.into()),
        };
        self.0
            .store
            .record_contribution(
                row.id,
                outcome.transfer.id.as_uuid(),
                Some(customer),
                fen,
                outcome.transfer.posted_at.unwrap_or(outcome.transfer.created_at),
            )
            .await?;
        self.check_milestones(&row).await?;
        let view = self.view(&row, customer).await?;
        let fired = if outcome.replayed {
            Vec::new()
        } else {
            domain::crossed(view.saved - fen, view.saved, row.target_amount)
        };
        Ok(ConversionView {
            transfer_id: outcome.transfer.id.as_uuid(),
            points: request.points,
            amount: fen,
            replayed: outcome.replayed,
            milestones_fired: fired,
            goal: view,
        })
    }
}

fn transfer_message(locale: Locale, name: &str, amount: i64, saved: i64, target: i64) -> (String, String) {
    let (a, s, t) = (yuan(amount), yuan(saved), yuan(target));
    match locale {
        Locale::ZhCn => (
            format!("「{name}」本月自动转入 {a}"),
            format!("已从您的账户自动转入 {a}，目前已存 {s} / {t}。"),
        ),
        Locale::ZhTw => (
            format!("「{name}」本月自動轉入 {a}"),
            format!("已從您的帳戶自動轉入 {a}，目前已存 {s} / {t}。"),
        ),
        Locale::En => (
            format!("\"{name}\": {a} saved automatically"),
            format!("{a} moved from your account this month; {s} of {t} saved."),
        ),
    }
}

fn shortfall_message(locale: Locale, name: &str, amount: i64) -> (String, String) {
    let a = yuan(amount);
    let retries = domain::SHORTFALL_RETRIES;
    match locale {
        Locale::ZhCn => (
            format!("「{name}」本月自动转入未成功"),
            format!("账户余额不足 {a}，本次未转入。接下来 {retries} 天我们会每天再试一次。"),
        ),
        Locale::ZhTw => (
            format!("「{name}」本月自動轉入未成功"),
            format!("帳戶餘額不足 {a}，本次未轉入。接下來 {retries} 天我們會每天再試一次。"),
        ),
        Locale::En => (
            format!("\"{name}\": this month's automatic transfer did not go through"),
            format!(
                "Your account did not hold {a}, so nothing moved. We will try again each day for the next {retries} days."
            ),
        ),
    }
}
