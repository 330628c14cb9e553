//! [`GoalsService`]: savings goals, their pockets, deposits, partners, milestone messages
//! and the monthly reminder job; the API types it answers with live here too.
//!
//! Where the truth is: the saved amount is the pocket's ledger balance, never a column
//! here. Milestones fire from that balance ([`super::domain::due`]) whenever it may have
//! moved — right after a deposit through the API, and from the listener on the ledger's
//! posted transfers (any transfer crediting a pocket). Each delivery carries the inbox
//! dedupe key `goal:{id}:{pct}` and is recorded in `goal_milestones` *after* it is
//! delivered: two checkers racing both deliver, the inbox keeps one message, and a crash
//! between delivery and record only repeats a delivery the inbox drops.
//!
//! Reminders: each goal has one `goal_reminders` row whose `due_at` is its next reminder
//! (the plan's transfer day, 09:00 in the owner's time zone). [`GoalsService::run_due_reminders`]
//! claims due rows with a lease, delivers the reminder (and a "behind plan" nudge when the
//! pocket holds less than the plan expects) with dedupe keys per goal and month, and moves
//! the row to the next installment; a goal that is complete or past its last installment
//! loses its row. The due time is in the database, so a restart loses nothing.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use axum::http::StatusCode;
use huoban_accounts::AccountsService;
use huoban_identity::{IdentityService, Locale, domain::Phone};
use huoban_inbox::{InboxService, NewMessage};
use huoban_kit::{ApiError, SharedClock, clock::from_micros, ids::new_id};
use huoban_ledger::{
    AccountId, AccountType, Amount, Direction, IdempotencyKey, Ledger, NewAccount, Owner, OwnerKind, PostingQuery,
    Transfer, TransferMeta, TransferRequest, Unit,
};
use jiff::{Timestamp, ToSpan, civil::Date, tz::TimeZone};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    domain::{self, GoalRefusal, GoalSpec, Plan},
    store::{GoalRow, GoalStore},
};
use crate::{
    EngageState,
    checkin::domain::{local_date, time_zone},
};

/// The statement category of deposits into a goal pocket.
pub const DEPOSIT_CATEGORY: &str = "savings_goal";
/// Local hour reminders are sent at.
const REMINDER_HOUR: i8 = 9;
/// How long a claimed reminder is reserved for the node that claimed it.
const CLAIM_LEASE_SECS: i64 = 120;
const CLAIM_BATCH: i64 = 100;
const LISTENER_GROUP: usize = 512;

/// A goal creation request.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGoal {
    pub name: String,
    /// Fen, > 0.
    pub target_amount: i64,
    /// `YYYY-MM-DD` in your time zone, today up to ten years ahead.
    pub target_date: String,
    /// A lowercase slug such as `education`.
    pub category: Option<String>,
}

/// A deposit into a goal's pocket from one of your own accounts.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDeposit {
    pub from_account: Uuid,
    /// Fen, > 0.
    pub amount: i64,
}

/// An invitation to share a goal.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPartner {
    pub phone: String,
}

/// The monthly plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PlanView {
    /// Day of the month of the suggested automatic transfer (1-28).
    pub transfer_day: i8,
    pub monthly_amount: i64,
    pub installments: usize,
    pub first_date: String,
    pub last_date: String,
    pub last_amount: i64,
    /// Whether the day follows the salary credits seen on your current account.
    pub based_on_payday: bool,
}

/// A member's share of the savings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ContributionView {
    /// `None` for money that did not come from a customer's account.
    pub customer_id: Option<Uuid>,
    pub name: Option<String>,
    pub amount: i64,
    pub is_you: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MemberView {
    pub customer_id: Uuid,
    pub name: String,
    /// `owner` or `partner`.
    pub role: String,
}

/// A savings goal as its members see it. Amounts in fen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GoalView {
    pub id: Uuid,
    pub name: String,
    pub category: Option<String>,
    /// Your role: `owner` or `partner`.
    pub role: String,
    pub currency: String,
    pub pocket_account_id: Uuid,
    pub target_amount: i64,
    pub target_date: String,
    pub saved: i64,
    pub remaining: i64,
    /// Whole percent saved, 0-100.
    pub percent: i64,
    pub completed: bool,
    pub plan: PlanView,
    /// What the plan expects saved by today.
    pub expected_by_now: i64,
    pub behind_plan: bool,
    /// `YYYY-MM-DD`: from the pace so far, or the plan while there is no history.
    pub projected_completion: Option<String>,
    pub milestones_reached: Vec<i64>,
    pub members: Vec<MemberView>,
    pub contributions: Vec<ContributionView>,
    pub next_reminder_at: Option<String>,
    /// The automatic monthly transfer, while it is on.
    pub auto_transfer: Option<super::automation::AutoTransferView>,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GoalList {
    pub items: Vec<GoalView>,
}

/// The answer to a deposit.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DepositView {
    pub transfer_id: Uuid,
    pub amount: i64,
    /// True when this was a retry of a deposit already made (nothing moved again).
    pub replayed: bool,
    /// Milestones this deposit crossed (their messages are in the inbox by now).
    pub milestones_fired: Vec<i64>,
    pub goal: GoalView,
}

impl From<GoalRefusal> for ApiError {
    fn from(refusal: GoalRefusal) -> Self {
        let field = match refusal {
            GoalRefusal::InvalidName => "name",
            GoalRefusal::InvalidTarget(_) => "target_amount",
            GoalRefusal::InvalidDate(_) | GoalRefusal::DateInPast(_) | GoalRefusal::DateTooFar(_) => "target_date",
            GoalRefusal::InvalidCategory => "category",
            GoalRefusal::InvalidTransferDay(_) => "transfer_day",
        };
        let detail = refusal.to_string();
        match refusal {
            GoalRefusal::InvalidTarget(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-target-amount",
                "The target amount is not valid",
            )
            .detail(detail)
            .with("field", field),
            GoalRefusal::InvalidTransferDay(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-transfer-day",
                "The transfer day is not valid",
            )
            .detail(detail)
            .with("field", field),
            GoalRefusal::DateInPast(_) | GoalRefusal::DateTooFar(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-target-date",
                "The target date is not valid",
            )
            .detail(detail)
            .with("field", field),
            _ => ApiError::invalid_field(field, detail),
        }
    }
}

pub fn not_goal_owner(title: &'static str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "not-goal-owner", title)
}

pub fn unknown_goal(id: Uuid) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "unknown-goal", "No such goal")
        .detail(format!("You have no goal {id}."))
        .with("goal", id.to_string())
}

/// The goals handle; cheap to clone.
#[derive(Debug, Clone)]
pub struct GoalsService(pub(super) Arc<Inner>);

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) engage: EngageState,
    pub(super) store: GoalStore,
    pub(super) clock: SharedClock,
    pub(super) identity: IdentityService,
    pub(super) accounts: AccountsService,
    pub(super) ledger: Ledger,
    pub(super) inbox: InboxService,
}

impl GoalsService {
    pub fn new(state: &EngageState) -> Self {
        Self(Arc::new(Inner {
            engage: state.clone(),
            store: GoalStore::new(state.db.clone()),
            clock: state.clock.clone(),
            identity: state.identity.clone(),
            accounts: state.accounts.clone(),
            ledger: state.ledger.clone(),
            inbox: state.inbox.clone(),
        }))
    }

    pub fn identity(&self) -> &IdentityService {
        &self.0.identity
    }

    pub(super) async fn zone_of(&self, customer: Uuid) -> Result<TimeZone, ApiError> {
        Ok(time_zone(&self.0.identity.profile(customer).await?.time_zone))
    }

    pub(super) async fn member_goal(&self, goal: Uuid, customer: Uuid) -> Result<GoalRow, ApiError> {
        self.0
            .store
            .goal_for_member(goal, customer)
            .await?
            .ok_or_else(|| unknown_goal(goal))
    }

    /// The goal when `customer` owns it; a partner gets `refusal()`, anyone else
    /// `unknown-goal`.
    pub(super) async fn owned_goal(
        &self,
        goal: Uuid,
        customer: Uuid,
        refusal: impl FnOnce() -> ApiError,
    ) -> Result<GoalRow, ApiError> {
        let row = self.member_goal(goal, customer).await?;
        if row.owner_id != customer {
            return Err(refusal());
        }
        Ok(row)
    }

    /// Days of the month salary landed on the customer's current account in the last
    /// ~100 days, in their time zone.
    async fn salary_days(&self, customer: Uuid, now: Timestamp, tz: &TimeZone) -> Result<Vec<i8>, ApiError> {
        let current = self.0.accounts.ensure_standard_accounts(customer).await?.current;
        let page = self
            .0
            .ledger
            .postings(
                current,
                &PostingQuery {
                    from: now.checked_sub(jiff::SignedDuration::from_hours(24 * 100)).ok(),
                    direction: Some(Direction::Credit),
                    merchant_category: Some("salary".into()),
                    limit: 50,
                    ..PostingQuery::default()
                },
            )
            .await?;
        Ok(page.items.iter().map(|p| local_date(p.at, tz).day()).collect())
    }

    /// Creates a goal with its plan, its pocket and its first reminder.
    #[tracing::instrument(skip_all, fields(customer = %customer))]
    pub async fn create(&self, customer: Uuid, new: NewGoal) -> Result<GoalView, ApiError> {
        let tz = self.zone_of(customer).await?;
        let now = self.0.clock.now();
        let today = local_date(now, &tz);
        let spec = GoalSpec::parse(
            &new.name,
            new.target_amount,
            &new.target_date,
            new.category.as_deref(),
            today,
        )?;
        let salary = self.salary_days(customer, now, &tz).await?;
        let transfer_day = domain::suggest_transfer_day(&salary);
        let id = new_id();
        let pocket = self
            .0
            .ledger
            .create_account(
                NewAccount::new(
                    Unit::Cny,
                    Owner::new(OwnerKind::Customer, customer.to_string())?,
                    AccountType::GoalPocket,
                )
                .label(spec.name.clone())
                .external_ref(format!("goal:{id}")),
            )
            .await?;
        let row = GoalRow {
            id,
            owner_id: customer,
            name: spec.name,
            category: spec.category,
            target_amount: spec.target,
            target_date: spec.target_date,
            plan_start: today,
            transfer_day,
            pocket_id: pocket.id.as_uuid(),
            created_at: huoban_kit::clock::to_micros(now),
        };
        let plan = plan_of(&row);
        let first = next_reminder(&plan, today, now, &tz);
        self.0.store.insert_goal(&row, first).await?;
        self.view(&row, customer).await
    }

    /// The customer's goals, their own and those shared with them.
    pub async fn list(&self, customer: Uuid) -> Result<GoalList, ApiError> {
        let rows = self.0.store.goals_of(customer).await?;
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            items.push(self.view(row, customer).await?);
        }
        Ok(GoalList { items })
    }

    pub async fn get(&self, customer: Uuid, goal: Uuid) -> Result<GoalView, ApiError> {
        let row = self.member_goal(goal, customer).await?;
        self.view(&row, customer).await
    }

    /// Moves money from one of the customer's accounts into the goal's pocket, at most
    /// once per idempotency key (kept in the ledger, scope `goal:{customer}`), then fires
    /// any milestone the new balance reached.
    #[tracing::instrument(skip_all, fields(customer = %customer, goal = %goal))]
    pub async fn deposit(
        &self,
        customer: Uuid,
        channel: &str,
        goal: Uuid,
        idempotency_key: &str,
        deposit: NewDeposit,
    ) -> Result<DepositView, ApiError> {
        let row = self.member_goal(goal, customer).await?;
        let key = IdempotencyKey::new(format!("goal:{}", customer.hyphenated()), idempotency_key)?;
        let amount = Amount::new(deposit.amount).map_err(|e| ApiError::from(e).with("field", "amount"))?;
        let from = self.0.accounts.owned_account(customer, deposit.from_account).await?;
        let pocket = AccountId::from(row.pocket_id);
        let request = TransferRequest::single(key, Unit::Cny, from.id, pocket, amount).with_meta(TransferMeta {
            description: Some(format!("Savings goal: {}", row.name)),
            merchant_category: Some(DEPOSIT_CATEGORY.into()),
            channel: Some(channel.to_owned()),
            metadata: Some(serde_json::json!({ "source": "goal", "goal_id": row.id.to_string() })),
            ..TransferMeta::default()
        });
        let outcome = self.0.ledger.transfer(request).await?;
        self.0
            .store
            .record_contribution(
                row.id,
                outcome.transfer.id.as_uuid(),
                Some(customer),
                amount.get(),
                outcome.transfer.posted_at.unwrap_or(outcome.transfer.created_at),
            )
            .await?;
        self.check_milestones(&row).await?;
        let goal = self.view(&row, customer).await?;
        // Reported from the balance, not from who recorded the milestone: the ledger
        // listener may well fire it first.
        let fired = if outcome.replayed {
            Vec::new()
        } else {
            domain::crossed(goal.saved - amount.get(), goal.saved, row.target_amount)
        };
        Ok(DepositView {
            transfer_id: outcome.transfer.id.as_uuid(),
            amount: amount.get(),
            replayed: outcome.replayed,
            milestones_fired: fired,
            goal,
        })
    }

    /// Shares the goal with the customer who has `phone`. Only the owner may invite.
    #[tracing::instrument(skip_all, fields(customer = %customer, goal = %goal))]
    pub async fn invite(&self, customer: Uuid, goal: Uuid, invite: NewPartner) -> Result<GoalView, ApiError> {
        let row = self
            .owned_goal(goal, customer, || {
                not_goal_owner("Only the goal's owner can invite")
                    .detail("Ask the goal's owner to invite your partner.")
            })
            .await?;
        let phone = Phone::parse(&invite.phone).map_err(|e| ApiError::invalid_field("phone", e))?;
        let partner = self
            .0
            .identity
            .store()
            .customer_by_phone(phone.as_str())
            .await?
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "unknown-phone",
                    "No customer has this phone number",
                )
                .detail("Check your partner's mobile number.")
                .with("field", "phone")
            })?;
        let partner = Uuid::parse_str(&partner.id).map_err(ApiError::internal)?;
        if partner == customer {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "cannot-invite-yourself",
                "You cannot invite yourself",
            )
            .detail("Invite your partner's phone number, not your own.")
            .with("field", "phone"));
        }
        if self.0.store.add_partner(row.id, partner, self.0.clock.now()).await? {
            let locale = self.0.identity.profile(partner).await?.locale;
            let owner = self.0.identity.profile(customer).await?.name;
            let (title, body) = invite_message(locale, &owner, &row.name);
            self.0
                .inbox
                .deliver(NewMessage {
                    customer_id: partner,
                    kind: "goal_invite".into(),
                    title,
                    body,
                    link: Some(format!("/goals/{}", row.id)),
                    data: serde_json::json!({ "goal_id": row.id.to_string() }),
                    dedupe_key: Some(format!("goal:{}:invite", row.id)),
                })
                .await?;
        }
        self.view(&row, customer).await
    }

    /// Fires every milestone the pocket's balance has reached and that has not fired yet;
    /// returns those it fired.
    pub async fn check_milestones(&self, row: &GoalRow) -> Result<Vec<i64>, ApiError> {
        let saved = self.0.ledger.balance(AccountId::from(row.pocket_id)).await?.posted;
        let fired = self.0.store.fired_milestones(row.id).await?;
        let due = domain::due(saved, row.target_amount, &fired);
        if due.is_empty() {
            return Ok(due);
        }
        let members = self.0.store.members(row.id).await?;
        let mut fresh = Vec::new();
        for &pct in &due {
            for member in &members {
                let locale = self.0.identity.profile(member.customer_id).await?.locale;
                let (title, body) = milestone_message(locale, &row.name, pct, saved, row.target_amount);
                self.0
                    .inbox
                    .deliver(NewMessage {
                        customer_id: member.customer_id,
                        kind: "goal_milestone".into(),
                        title,
                        body,
                        link: Some(format!("/goals/{}", row.id)),
                        data: serde_json::json!({
                            "goal_id": row.id.to_string(), "percent": pct,
                            "saved": saved, "target_amount": row.target_amount,
                        }),
                        dedupe_key: Some(format!("goal:{}:{pct}", row.id)),
                    })
                    .await?;
            }
            if self.0.store.record_milestone(row.id, pct, self.0.clock.now()).await? {
                fresh.push(pct);
            }
        }
        Ok(fresh)
    }

    /// Subscribes now and, until the ledger stops, records contributions and fires
    /// milestones for every posted transfer that credits a goal pocket.
    pub fn spawn_listener(&self) -> tokio::task::JoinHandle<()> {
        // If the listener falls behind and misses some, nothing is lost for good: the pocket's
        // balance is the truth, so the next deposit or transfer fires what was missed, and
        // goal views re-read contributions.
        let mut posted = self.0.ledger.listen("goal progress");
        let service = self.clone();
        tokio::spawn(async move {
            while let Some(group) = posted.next_group(LISTENER_GROUP).await {
                if let Err(e) = service.handle_posted(&group).await {
                    tracing::warn!(error = %e, transfers = group.len(), "goal progress not evaluated");
                }
            }
        })
    }

    /// Records contributions and fires milestones for transfers crediting goal pockets.
    #[tracing::instrument(skip_all, fields(transfers = transfers.len()))]
    pub async fn handle_posted(&self, transfers: &[Arc<Transfer>]) -> Result<usize, ApiError> {
        let credited: BTreeSet<String> = transfers
            .iter()
            .flat_map(|t| t.legs.iter().map(|l| l.credit.to_string()))
            .collect();
        let credited: Vec<String> = credited.into_iter().collect();
        let goals = self.0.store.goals_by_pockets(&credited).await?;
        let mut touched = 0;
        for goal in &goals {
            let pocket = AccountId::from(goal.pocket_id);
            for transfer in transfers {
                for leg in transfer.legs.iter().filter(|l| l.credit == pocket) {
                    let contributor = self.contributor(transfer, leg.debit).await?;
                    self.0
                        .store
                        .record_contribution(
                            goal.id,
                            transfer.id.as_uuid(),
                            contributor,
                            leg.amount.get(),
                            transfer.posted_at.unwrap_or(transfer.created_at),
                        )
                        .await?;
                }
            }
            if let Err(e) = self.check_milestones(goal).await {
                tracing::warn!(error = %e, goal = %goal.id, "goal milestones not evaluated");
            }
            touched += 1;
        }
        Ok(touched)
    }

    /// Who put money that `debit` paid into a pocket: the customer owning the account, or
    /// for points converted by a campaign offer (paid from the bank's clearing) the
    /// customer whose points they were.
    async fn contributor(&self, transfer: &Transfer, debit: AccountId) -> Result<Option<Uuid>, ApiError> {
        if let Some(customer) = self.customer_owning(debit).await? {
            return Ok(Some(customer));
        }
        Ok(transfer
            .meta
            .metadata
            .as_ref()
            .filter(|m| m["source"] == super::automation::CONVERSION_SOURCE)
            .and_then(|m| m["customer_id"].as_str())
            .and_then(|c| Uuid::parse_str(c).ok()))
    }

    async fn customer_owning(&self, account: AccountId) -> Result<Option<Uuid>, ApiError> {
        let account = self.0.ledger.account(account).await?;
        Ok(match account.owner.kind {
            OwnerKind::Customer => Uuid::parse_str(&account.owner.id).ok(),
            _ => None,
        })
    }

    /// Records contributions the listener missed (it may lag): credits to the pocket
    /// without a contribution row are looked up in the ledger. Bounded to the newest 200.
    async fn reconcile_contributions(&self, row: &GoalRow, saved: i64) -> Result<(), ApiError> {
        let recorded: i64 = self.0.store.contributions(row.id).await?.iter().map(|(_, a)| a).sum();
        if recorded >= saved {
            return Ok(());
        }
        let known: BTreeSet<String> = self.0.store.contribution_transfers(row.id).await?.into_iter().collect();
        let pocket = AccountId::from(row.pocket_id);
        let page = self
            .0
            .ledger
            .postings(
                pocket,
                &PostingQuery {
                    direction: Some(Direction::Credit),
                    limit: 200,
                    ..PostingQuery::default()
                },
            )
            .await?;
        for posting in page
            .items
            .iter()
            .filter(|p| !known.contains(&p.transfer_id.to_string()))
        {
            let transfer = self.0.ledger.get_transfer(posting.transfer_id).await?;
            for leg in transfer.legs.iter().filter(|l| l.credit == pocket) {
                let contributor = self.contributor(&transfer, leg.debit).await?;
                self.0
                    .store
                    .record_contribution(row.id, transfer.id.as_uuid(), contributor, leg.amount.get(), posting.at)
                    .await?;
            }
        }
        Ok(())
    }

    pub(super) async fn view(&self, row: &GoalRow, customer: Uuid) -> Result<GoalView, ApiError> {
        let tz = self.zone_of(row.owner_id).await?;
        let now = self.0.clock.now();
        let today = local_date(now, &tz);
        let saved = self.0.ledger.balance(AccountId::from(row.pocket_id)).await?.posted;
        self.reconcile_contributions(row, saved).await?;
        let plan = plan_of(row);
        let members = self.0.store.members(row.id).await?;
        let mut member_views = Vec::with_capacity(members.len());
        for m in &members {
            let name = self.0.identity.profile(m.customer_id).await?.name;
            member_views.push(MemberView {
                customer_id: m.customer_id,
                name,
                role: m.role.clone(),
            });
        }
        let contributions = self
            .0
            .store
            .contributions(row.id)
            .await?
            .into_iter()
            .map(|(id, amount)| ContributionView {
                customer_id: id,
                name: id.and_then(|id| {
                    member_views
                        .iter()
                        .find(|m| m.customer_id == id)
                        .map(|m| m.name.clone())
                }),
                amount,
                is_you: id == Some(customer),
            })
            .collect();
        let role = members
            .iter()
            .find(|m| m.customer_id == customer)
            .map_or_else(|| "partner".to_owned(), |m| m.role.clone());
        let completed = saved >= row.target_amount;
        Ok(GoalView {
            id: row.id,
            name: row.name.clone(),
            category: row.category.clone(),
            role,
            currency: Unit::Cny.as_str().into(),
            pocket_account_id: row.pocket_id,
            target_amount: row.target_amount,
            target_date: row.target_date.to_string(),
            saved,
            remaining: (row.target_amount - saved).max(0),
            percent: domain::percent(saved, row.target_amount),
            completed,
            plan: PlanView {
                transfer_day: plan.transfer_day,
                monthly_amount: plan.monthly_amount(),
                installments: plan.installments.len(),
                first_date: plan
                    .installments
                    .first()
                    .map(|i| i.date.to_string())
                    .unwrap_or_default(),
                last_date: plan.last().date.to_string(),
                last_amount: plan.last().amount,
                based_on_payday: plan.transfer_day != 1,
            },
            expected_by_now: plan.expected_by(today).min(row.target_amount),
            behind_plan: !completed && domain::behind_plan(saved, &plan, today),
            projected_completion: domain::projected_completion(saved, row.target_amount, row.plan_start, today, &plan)
                .map(|d| d.to_string()),
            milestones_reached: domain::reached(saved, row.target_amount),
            members: member_views,
            contributions,
            next_reminder_at: self.0.store.reminder_due(row.id).await?.map(|t| t.to_string()),
            auto_transfer: self.auto_transfer_view(row, saved).await?,
            created_at: from_micros(row.created_at).to_string(),
        })
    }

    /// Sends every reminder due at `now` and schedules the next; returns how many goals
    /// were reminded. Any node may run it at any time: claims keep a reminder to one node.
    #[tracing::instrument(skip_all)]
    pub async fn run_due_reminders(&self, now: Timestamp) -> Result<usize, ApiError> {
        let token = new_id().to_string();
        let lease = now.checked_add(CLAIM_LEASE_SECS.seconds()).unwrap_or(now);
        let mut done = 0;
        loop {
            let claimed = self.0.store.claim_due(now, lease, &token, CLAIM_BATCH).await?;
            let batch = claimed.len();
            for reminder in claimed {
                match self.remind(reminder.goal_id, reminder.due_at, now, &token).await {
                    Ok(()) => done += 1,
                    // The claim lapses after its lease and a later tick retries; dedupe
                    // keys keep a message that did go out from going out twice.
                    Err(e) => tracing::warn!(error = %e, goal = %reminder.goal_id, "goal reminder not sent"),
                }
            }
            if batch < CLAIM_BATCH as usize {
                return Ok(done);
            }
        }
    }

    async fn remind(&self, goal: Uuid, due_at: Timestamp, now: Timestamp, token: &str) -> Result<(), ApiError> {
        let Some(row) = self.0.store.goal(goal).await? else {
            return Ok(self.0.store.reschedule(goal, token, None, now).await?);
        };
        let tz = self.zone_of(row.owner_id).await?;
        let due_day = local_date(due_at, &tz);
        let today = local_date(now, &tz);
        let plan = plan_of(&row);
        let saved = self.0.ledger.balance(AccountId::from(row.pocket_id)).await?.posted;
        if saved < row.target_amount {
            let month = domain::transfer_month(due_day);
            let installment = plan.next_installment(due_day).map_or(0, |i| i.amount);
            let expected = plan.expected_by(today).min(row.target_amount);
            let behind = domain::behind_plan(saved, &plan, today);
            for member in self.0.store.members(row.id).await? {
                let locale = self.0.identity.profile(member.customer_id).await?.locale;
                let (title, body) = reminder_message(locale, &row.name, installment, saved, row.target_amount);
                self.deliver(
                    &row,
                    member.customer_id,
                    "goal_reminder",
                    title,
                    body,
                    format!("goal:{}:reminder:{month}", row.id),
                    saved,
                )
                .await?;
                if behind {
                    let (title, body) = behind_message(locale, &row.name, expected, saved);
                    self.deliver(
                        &row,
                        member.customer_id,
                        "goal_behind_plan",
                        title,
                        body,
                        format!("goal:{}:behind:{month}", row.id),
                        saved,
                    )
                    .await?;
                }
            }
        }
        // Next month's transfer day, counted from the day after the one just reminded.
        let next = if saved >= row.target_amount {
            None
        } else {
            next_reminder(&plan, due_day.tomorrow().unwrap_or(due_day), now, &tz)
        };
        Ok(self.0.store.reschedule(row.id, token, next, now).await?)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn deliver(
        &self,
        row: &GoalRow,
        customer: Uuid,
        kind: &str,
        title: String,
        body: String,
        dedupe_key: String,
        saved: i64,
    ) -> Result<(), ApiError> {
        self.0
            .inbox
            .deliver(NewMessage {
                customer_id: customer,
                kind: kind.into(),
                title,
                body,
                link: Some(format!("/goals/{}", row.id)),
                data: serde_json::json!({
                    "goal_id": row.id.to_string(), "saved": saved, "target_amount": row.target_amount,
                }),
                dedupe_key: Some(dedupe_key),
            })
            .await?;
        Ok(())
    }

    /// The reminder tick: runs [`GoalsService::run_due_reminders`] every few seconds.
    pub fn spawn_reminder_tick(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let service = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                match service.run_due_reminders(service.0.clock.now()).await {
                    Ok(n) if n > 0 => tracing::info!(goals = n, "goal reminders sent"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "goal reminders failed"),
                }
            }
        })
    }

    /// The listener, the reminder tick and the automatic-transfer tick, for the server's
    /// background work.
    pub fn spawn_background(&self) -> Vec<tokio::task::JoinHandle<()>> {
        vec![
            self.spawn_listener(),
            self.spawn_reminder_tick(Duration::from_secs(5)),
            self.spawn_transfer_tick(Duration::from_secs(5)),
        ]
    }
}

pub(super) fn plan_of(row: &GoalRow) -> Plan {
    Plan::compute(row.target_amount, row.plan_start, row.target_date, row.transfer_day)
}

/// The first installment day on or after `from` whose 09:00 local is still ahead of
/// `now`, as an instant; `None` when the plan has no such day left.
fn next_reminder(plan: &Plan, from: Date, now: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
    plan.installments
        .iter()
        .filter(|i| i.date >= from)
        .filter_map(|i| i.date.at(REMINDER_HOUR, 0, 0, 0).to_zoned(tz.clone()).ok())
        .map(|z| z.timestamp())
        .find(|t| *t > now)
}

pub(super) fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let fen = fen.unsigned_abs();
    format!("{sign}¥{}.{:02}", fen / 100, fen % 100)
}

fn milestone_message(locale: Locale, name: &str, pct: i64, saved: i64, target: i64) -> (String, String) {
    let (s, t) = (yuan(saved), yuan(target));
    match (locale, pct) {
        (Locale::ZhCn, 100) => (
            format!("「{name}」目标达成！"),
            format!("已存 {s}，目标 {t} 全部完成，恭喜！"),
        ),
        (Locale::ZhCn, p) => (format!("「{name}」已完成 {p}%"), format!("已存 {s} / {t}，继续加油！")),
        (Locale::ZhTw, 100) => (
            format!("「{name}」目標達成！"),
            format!("已存 {s}，目標 {t} 全部完成，恭喜！"),
        ),
        (Locale::ZhTw, p) => (format!("「{name}」已完成 {p}%"), format!("已存 {s} / {t}，繼續加油！")),
        (Locale::En, 100) => (
            format!("\"{name}\" reached!"),
            format!("You saved {s} of {t}. Congratulations!"),
        ),
        (Locale::En, p) => (
            format!("\"{name}\" is {p}% there"),
            format!("{s} of {t} saved. Keep going!"),
        ),
    }
}

fn reminder_message(locale: Locale, name: &str, installment: i64, saved: i64, target: i64) -> (String, String) {
    let (i, s, t) = (yuan(installment), yuan(saved), yuan(target));
    match locale {
        Locale::ZhCn => (
            format!("「{name}」本月存款提醒"),
            format!("本月计划存入 {i}，目前已存 {s} / {t}。"),
        ),
        Locale::ZhTw => (
            format!("「{name}」本月存款提醒"),
            format!("本月計畫存入 {i}，目前已存 {s} / {t}。"),
        ),
        Locale::En => (
            format!("Monthly reminder: \"{name}\""),
            format!("This month's plan is {i}; saved so far {s} of {t}."),
        ),
    }
}

fn behind_message(locale: Locale, name: &str, expected: i64, saved: i64) -> (String, String) {
    let (e, s) = (yuan(expected), yuan(saved));
    match locale {
        Locale::ZhCn => (
            format!("「{name}」进度落后了"),
            format!("按计划此时应存 {e}，目前已存 {s}，补一笔就能赶上。"),
        ),
        Locale::ZhTw => (
            format!("「{name}」進度落後了"),
            format!("按計畫此時應存 {e}，目前已存 {s}，補一筆就能趕上。"),
        ),
        Locale::En => (
            format!("\"{name}\" is behind plan"),
            format!("The plan expects {e} by now and {s} is saved; one deposit catches up."),
        ),
    }
}

fn invite_message(locale: Locale, owner: &str, name: &str) -> (String, String) {
    match locale {
        Locale::ZhCn => (
            format!("{owner} 邀请你一起存「{name}」"),
            "你可以查看进度并一起存钱。".into(),
        ),
        Locale::ZhTw => (
            format!("{owner} 邀請你一起存「{name}」"),
            "你可以查看進度並一起存錢。".into(),
        ),
        Locale::En => (
            format!("{owner} invited you to save for \"{name}\""),
            "See the progress and save together.".into(),
        ),
    }
}
