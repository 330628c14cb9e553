//! [`CheckinService`]: a customer's check-in, make-up and calendar. It finds the customer's
//! local day, plans with the pure rules in [`super::domain`], writes through
//! [`super::store`] and pays rewards through the ledger; the API types it answers with live
//! here too.
//!
//! The order of a write, and why a day and its reward never diverge:
//! 1. Rewards still owed from an earlier attempt are paid first (see 4).
//! 2. In one transaction, with the customer's row locked: read the days and the milestones
//!    already paid, plan, insert the day (unique per customer and local day) **and** the
//!    rewards it earned as owed rows; commit. A refused plan writes nothing.
//! 3. Post each owed reward to the ledger with its deterministic key, scope `checkin`,
//!    key `{customer}:{local_date}:{reason}`, and a request built only from the stored row,
//!    then mark the row paid with the transfer id.
//! 4. If 3 fails part-way (ledger unavailable, crash), the day is kept and its rewards stay
//!    owed. The next check-in or make-up — typically the client's retry, which would
//!    otherwise be a 409 — pays them in step 1 and, when they belong to the retried day,
//!    answers 201 as the first attempt would have. The ledger's key makes this at most
//!    once: a reward that was posted but not yet marked is replayed, not paid again.
//!
//! A duplicate request that races the first one's step 3 may pay its owed rewards on its
//! behalf and so answer 201 with the same outcome instead of 409; either way there is one
//! day and one payment.

use std::sync::Arc;

use axum::http::StatusCode;
use huoban_accounts::AccountsService;
use huoban_identity::IdentityService;
use huoban_kit::{ApiError, DbError, SharedClock};
use huoban_ledger::{Amount, IdempotencyKey, Ledger, TransferMeta, TransferRequest, Unit};
use jiff::{Timestamp, civil::Date};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    domain::{
        self, CheckinConfig, DayKind, Milestone, Plan, Refusal, Reward, YearMonth, local_date, month_calendar,
        parse_date, time_zone,
    },
    store::{CheckinStore, RewardRow},
};
use crate::{
    EngageState,
    events::{
        self,
        store::{EventRow, EventsStore},
    },
};

/// The ledger idempotency scope of check-in rewards.
pub const LEDGER_SCOPE: &str = "checkin";
/// The statement category rewards are filed under.
pub const REWARDS_CATEGORY: &str = "rewards";

/// A streak milestone: reach `days` in a row, earn `points`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MilestoneView {
    pub days: i32,
    pub points: i64,
}

impl From<Milestone> for MilestoneView {
    fn from(m: Milestone) -> Self {
        Self {
            days: m.days,
            points: m.points,
        }
    }
}

/// The next milestone of the current streak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NextMilestoneView {
    pub days: i32,
    pub points: i64,
    /// Check-ins still needed, today's included if it is not done yet.
    pub days_to_go: i32,
}

/// A credit paid for a check-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RewardView {
    /// `base` or `streak-<days>`.
    pub reason: String,
    pub points: i64,
    /// The day the reward is for (`YYYY-MM-DD`): the check-in day, or the day a streak
    /// reached the milestone.
    pub date: String,
}

impl From<&Reward> for RewardView {
    fn from(r: &Reward) -> Self {
        Self {
            reason: r.reason.as_string(),
            points: r.points,
            date: r.date.to_string(),
        }
    }
}

/// The answer to a check-in or make-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CheckinOutcome {
    /// The local day checked in or made up, `YYYY-MM-DD`.
    pub date: String,
    /// `checkin` or `makeup`.
    pub kind: String,
    /// Your current streak in days.
    pub streak: i32,
    /// Points credited to your points account by this request.
    pub points_awarded: i64,
    pub rewards: Vec<RewardView>,
    /// The longest milestone this request reached, if any.
    pub milestone_reached: Option<MilestoneView>,
    pub next_milestone: Option<NextMilestoneView>,
    pub makeup_cards_left: i64,
}

/// One day of the calendar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CalendarDayView {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// `checked_in`, `made_up`, `missed`, `today` (not checked in yet) or `future`.
    pub state: String,
    /// A missed day that a make-up card can fill now.
    pub makeup_eligible: bool,
}

/// The points a check-in and each streak milestone pay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RewardSchedule {
    pub base_points: i64,
    pub milestones: Vec<MilestoneView>,
}

/// A month of check-ins in your time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CalendarView {
    /// `YYYY-MM`.
    pub month: String,
    pub time_zone: String,
    /// Today in your time zone, `YYYY-MM-DD`.
    pub today: String,
    pub days: Vec<CalendarDayView>,
    pub current_streak: i32,
    pub longest_streak: i32,
    pub checked_in_today: bool,
    pub makeup_cards_left: i64,
    pub makeup_cards_per_month: i64,
    /// Make-up cards fill missed days from yesterday back to this many days ago.
    pub makeup_window_days: i32,
    pub next_milestone: Option<NextMilestoneView>,
    pub reward_schedule: RewardSchedule,
}

/// A make-up request.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MakeupRequest {
    /// The missed day to fill, `YYYY-MM-DD` in your time zone.
    pub date: String,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CalendarQuery {
    /// `YYYY-MM`; default the current month in your time zone.
    pub month: Option<String>,
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        let detail = refusal.to_string();
        match refusal {
            Refusal::AlreadyCheckedIn(_) => already_checked_in(detail),
            Refusal::NotPast { .. } | Refusal::TooOld { .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-makeup-date",
                "This day cannot be made up",
            )
            .detail(detail)
            .with("field", "date"),
            Refusal::NoCards => ApiError::conflict("no-makeup-cards", "No make-up cards left").detail(detail),
        }
    }
}

fn already_checked_in(detail: String) -> ApiError {
    ApiError::conflict("already-checked-in", "Already checked in for this day").detail(detail)
}

/// The check-in handle; cheap to clone.
#[derive(Debug, Clone)]
pub struct CheckinService {
    store: CheckinStore,
    clock: SharedClock,
    identity: IdentityService,
    accounts: AccountsService,
    ledger: Ledger,
    config: Arc<CheckinConfig>,
}

impl CheckinService {
    /// With the server's configured rewards and make-up allowance ([`EngageState::checkin`]).
    pub fn new(state: &EngageState) -> Self {
        Self {
            store: CheckinStore::new(state.db.clone()),
            clock: state.clock.clone(),
            identity: state.identity.clone(),
            accounts: state.accounts.clone(),
            ledger: state.ledger.clone(),
            config: state.checkin.clone(),
        }
    }

    pub fn identity(&self) -> &IdentityService {
        &self.identity
    }

    pub fn config(&self) -> &CheckinConfig {
        &self.config
    }

    /// Now, the customer's time zone name and their local date.
    async fn today(&self, customer: Uuid) -> Result<(Timestamp, String, Date), ApiError> {
        let name = self.identity.profile(customer).await?.time_zone;
        let tz = time_zone(&name);
        let now = self.clock.now();
        let name = tz.iana_name().map(str::to_owned).unwrap_or(name);
        Ok((now, name, local_date(now, &tz)))
    }

    /// Checks the customer in for today in their time zone.
    #[tracing::instrument(skip_all, fields(customer = %customer))]
    pub async fn check_in(&self, customer: Uuid) -> Result<CheckinOutcome, ApiError> {
        let (now, _, today) = self.today(customer).await?;
        self.write(customer, now, today, today).await
    }

    /// Fills a missed day with a make-up card.
    #[tracing::instrument(skip_all, fields(customer = %customer))]
    pub async fn make_up(&self, customer: Uuid, date: &str) -> Result<CheckinOutcome, ApiError> {
        let date = parse_date(date)
            .ok_or_else(|| ApiError::invalid_field("date", format!("{date:?} is not a date like 2026-11-21")))?;
        let (now, _, today) = self.today(customer).await?;
        domain::check_makeup_date(&self.config, date, today)?;
        self.write(customer, now, today, date).await
    }

    /// A check-in when `date == today`, else a make-up; steps as in the module doc.
    async fn write(&self, customer: Uuid, now: Timestamp, today: Date, date: Date) -> Result<CheckinOutcome, ApiError> {
        // Opened before the transaction: on SQLite it holds the only writer connection,
        // which opening accounts would wait for.
        let points = self.accounts.ensure_standard_accounts(customer).await?.points;
        let clearing = self.accounts.clearing(Unit::Points).await?;
        let settled = self.settle(customer, clearing, points).await?;

        let this_month = YearMonth::of(today);
        let mut tx = self.store.begin().await?;
        let cards = self.store.lock_customer(&mut tx, customer, now).await?;
        let cards_left = self.config.cards_left(&cards.month, cards.used, this_month);
        let days = self.store.days(&mut *tx, customer).await?;
        let paid = self.store.paid_milestones(&mut *tx, customer).await?;
        let planned = if date == today {
            domain::plan_checkin(&self.config, &days, &paid, today)
        } else {
            domain::plan_makeup(&self.config, &days, &paid, today, date, cards_left)
        };
        let plan = match planned {
            Ok(plan) => plan,
            Err(refusal) => {
                tx.rollback().await.map_err(DbError::from)?;
                if matches!(refusal, Refusal::AlreadyCheckedIn(_)) && settled.iter().any(|r| r.source_date == date) {
                    // A retry that completed the rewards its first attempt left owed.
                    return self.outcome_of(customer, date, today, cards_left).await;
                }
                return Err(refusal.into());
            }
        };
        self.store
            .insert_plan(&mut tx, customer, &plan, now)
            .await
            .map_err(|e| match e {
                DbError::Conflict { .. } => already_checked_in(format!("{date} is already checked in")),
                other => other.into(),
            })?;
        let cards_left = if plan.kind == DayKind::Makeup {
            let used_after = self.config.makeup_cards_per_month - cards_left + 1;
            self.store
                .use_card(&mut tx, customer, &this_month.to_string(), used_after, now)
                .await?;
            cards_left - 1
        } else {
            cards_left
        };
        // The check-in as a behaviour event, in the same transaction, for rules and tasks.
        let event = EventRow::server(
            customer,
            format!("check_in:{date}"),
            events::domain::CHECK_IN,
            now,
            serde_json::json!({ "date": date.to_string(), "kind": plan.kind.as_str(), "streak": plan.current_streak }),
        );
        EventsStore::new(self.store.db().clone())
            .insert(&mut tx, &[event], now)
            .await?;
        tx.commit().await.map_err(DbError::from)?;
        events::feed::announce();

        self.settle(customer, clearing, points).await?;
        Ok(self.outcome(&plan, cards_left))
    }

    /// Pays every reward the customer is owed; returns those it paid.
    async fn settle(
        &self,
        customer: Uuid,
        clearing: huoban_ledger::AccountId,
        points: huoban_ledger::AccountId,
    ) -> Result<Vec<RewardRow>, ApiError> {
        let owed = self.store.owed_rewards(customer).await?;
        for row in &owed {
            let request = reward_transfer(customer, row, clearing, points)?;
            let outcome = self.ledger.transfer(request).await?;
            if outcome.replayed {
                tracing::info!(date = %row.reward.date, reason = %row.reward.reason.as_string(),
                    "check-in reward was already posted; recording it");
            }
            self.store
                .mark_posted(customer, &row.reward, outcome.transfer.id.as_uuid())
                .await?;
        }
        Ok(owed)
    }

    fn outcome(&self, plan: &Plan, cards_left: i64) -> CheckinOutcome {
        CheckinOutcome {
            date: plan.date.to_string(),
            kind: plan.kind.as_str().to_owned(),
            streak: plan.current_streak,
            points_awarded: plan.points(),
            rewards: plan.rewards.iter().map(RewardView::from).collect(),
            milestone_reached: plan.milestone_reached().map(MilestoneView::from),
            next_milestone: self.next_milestone(plan.current_streak),
            makeup_cards_left: cards_left,
        }
    }

    /// The outcome of a day already written, rebuilt from the store.
    async fn outcome_of(
        &self,
        customer: Uuid,
        date: Date,
        today: Date,
        cards_left: i64,
    ) -> Result<CheckinOutcome, ApiError> {
        let row = self.store.day(customer, date).await?.ok_or(DbError::NotFound)?;
        let days = self.store.days(self.store.db().reader(), customer).await?;
        let rewards = self
            .store
            .rewards_earned_on(customer, date)
            .await?
            .into_iter()
            .map(|r| r.reward)
            .collect();
        let plan = Plan {
            date,
            kind: row.kind,
            streak_after: i32::try_from(row.streak_after).unwrap_or(i32::MAX),
            current_streak: days.current_streak(today),
            rewards,
        };
        Ok(self.outcome(&plan, cards_left))
    }

    fn next_milestone(&self, streak: i32) -> Option<NextMilestoneView> {
        self.config.next_milestone(streak).map(|m| NextMilestoneView {
            days: m.days,
            points: m.points,
            days_to_go: m.days - streak,
        })
    }

    /// The month's calendar (default: this month in the customer's time zone).
    #[tracing::instrument(skip_all, fields(customer = %customer))]
    pub async fn calendar(&self, customer: Uuid, month: Option<&str>) -> Result<CalendarView, ApiError> {
        let month = month
            .map(|m| {
                YearMonth::parse(m)
                    .ok_or_else(|| ApiError::invalid_field("month", format!("{m:?} is not a month like 2026-11")))
            })
            .transpose()?;
        let (_, zone, today) = self.today(customer).await?;
        let month = month.unwrap_or_else(|| YearMonth::of(today));
        let days = self.store.days(self.store.db().reader(), customer).await?;
        let cards = self.store.cards_used(customer).await?;
        let cards_left = self.config.cards_left(&cards.month, cards.used, YearMonth::of(today));
        let calendar = month_calendar(&self.config, &days, month, today, cards_left);
        Ok(CalendarView {
            month: month.to_string(),
            time_zone: zone,
            today: today.to_string(),
            days: calendar
                .days
                .iter()
                .map(|d| CalendarDayView {
                    date: d.date.to_string(),
                    state: d.state.as_str().to_owned(),
                    makeup_eligible: d.makeup_eligible,
                })
                .collect(),
            current_streak: calendar.current_streak,
            longest_streak: calendar.longest_streak,
            checked_in_today: days.contains(today),
            makeup_cards_left: cards_left,
            makeup_cards_per_month: self.config.makeup_cards_per_month,
            makeup_window_days: self.config.makeup_window_days,
            next_milestone: self.next_milestone(calendar.current_streak),
            reward_schedule: RewardSchedule {
                base_points: self.config.base_points,
                milestones: self
                    .config
                    .milestones
                    .iter()
                    .copied()
                    .map(MilestoneView::from)
                    .collect(),
            },
        })
    }
}

/// The ledger request paying a reward row. Built only from the row, so a retry produces
/// the same request and the ledger replays it instead of refusing the key.
pub fn reward_transfer(
    customer: Uuid,
    row: &RewardRow,
    clearing: huoban_ledger::AccountId,
    points: huoban_ledger::AccountId,
) -> Result<TransferRequest, ApiError> {
    let reward = &row.reward;
    let key = IdempotencyKey::new(
        LEDGER_SCOPE,
        format!(
            "{}:{}:{}",
            customer.hyphenated(),
            reward.date,
            reward.reason.as_string()
        ),
    )?;
    Ok(
        TransferRequest::single(key, Unit::Points, clearing, points, Amount::new(reward.points)?).with_meta(
            TransferMeta {
                description: Some(reward.reason.description(reward.date)),
                merchant_category: Some(REWARDS_CATEGORY.to_owned()),
                metadata: Some(serde_json::json!({
                    "source": "checkin",
                    "reason": reward.reason.as_string(),
                    "earned_by": row.source_date.to_string(),
                })),
                ..TransferMeta::default()
            },
        ),
    )
}
