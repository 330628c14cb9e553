//! [`RulesService`]: staff define rules; the consumer applies them to the event feed;
//! customers read their effects ("why did I get this?") and nudges.
//!
//! ## The consumer ([`RulesService::run_batch`])
//! 1. Read up to [`BATCH`] events after the `rules` cursor of the [`EventFeed`].
//! 2. Load the live definitions (campaigns with what their budgets have left, rules,
//!    tasks, badges; compiled CEL is reused across batches) and, for the customers in the
//!    batch that any definition reacts to, their profiles and state — a few queries for the
//!    whole batch.
//! 3. Decide every effect in memory ([`domain::decide`], pure).
//! 4. Commit everything in **one** transaction, taking locks in the order every campaign
//!    transaction takes them: the cursor advance (a conditional update: if another node
//!    consumed these events, roll back and read again); the points awards, posted on the
//!    ledger inside this transaction from each campaign's budget account
//!    ([`huoban_ledger::Ledger::transfer_in`], keyed `rule:{rule}:{event_seq}`); the
//!    coupons, granted inside it ([`RewardsService::grant_in`]) and taken from the coupon
//!    budgets by a guarded update; the inbox messages ([`InboxService::deliver_in`]); then
//!    the firing rows (primary key (rule, event seq): at most once), rule state, window
//!    hits, counters, effects, nudges, task and badge progress.
//! 5. After the commit, and only then: the ledger announces the postings, the inbox pushes
//!    the messages to open pages.
//!
//! If a budget ran out between the decision and the commit (a task claim took the last
//! points), the ledger refuses the award — it never takes a budget below zero — or the
//! coupon guard fails; the transaction is rolled back and the batch decided again with
//! the budgets as they are now, so the firing becomes `budget_exhausted` and pays nothing.
//! A crash at any point commits all of a batch or none of it.

use std::{collections::HashMap, time::Duration};

use huoban_engage::{
    EngageState,
    events::feed::{EventFeed, FeedEvent},
    rewards::service::RewardsService,
};
use huoban_inbox::{InboxService, NewMessage};
use huoban_kit::{ApiError, Page, PageQuery, SharedClock, clock::to_micros, ids::new_id};
use huoban_ledger::{IdempotencyKey, Ledger, LedgerError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    domain::{self, Action, Aggregate, Event, LiveBadge, LiveCampaign, LiveRule, LiveTask, Loaded, Period, World},
    metrics,
    store::{RuleRow, RuleStore},
};
use crate::{
    badges::{service::tiers_of, store::BadgeStore},
    campaigns::{
        budget::Budgets,
        domain::{State, ended},
        service::{CampaignService, attrs_of, iso, state_of},
    },
    expr,
    tasks::store::TaskStore,
};

/// Events read per batch when the consumer keeps up.
pub const BATCH: u32 = 1000;
/// Most events read per batch when it is behind: the batch size doubles while reads come
/// back full. A batch's fixed costs (its reads, its turn at the database's writer — on
/// SQLite one writer serves ingest and every consumer — its commit) are then shared by
/// more events, so a backlog shrinks faster than it would in steps of [`BATCH`].
pub const MAX_BATCH: u32 = 8000;
/// The ledger category of points paid by campaigns (counted toward levels).
pub use crate::campaigns::budget::REWARDS_CATEGORY;
/// The feed consumer name.
pub const CONSUMER: &str = "rules";

/// A rule as staff see it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RuleView {
    pub id: Uuid,
    pub campaign_id: Uuid,
    pub name: String,
    pub trigger: String,
    pub condition: String,
    pub aggregate: Option<Aggregate>,
    pub max_per_customer: Option<i64>,
    pub actions: Vec<Action>,
    pub created_at: String,
}

/// Something a campaign did for you, and why.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EffectView {
    pub id: Uuid,
    /// `points`, `coupon`, `badge`, `badge_tier`, `task_progress`, `task_reward`, `message`, `nudge`.
    pub kind: String,
    pub campaign_id: Uuid,
    /// The rule that caused it (absent for badge tiers and task rewards).
    pub rule_id: Option<Uuid>,
    pub rule_name: Option<String>,
    /// The event that caused it: its feed position and your id for it.
    pub event_seq: Option<i64>,
    pub event_id: Option<String>,
    /// Points, reward, badge, task… and the names of the rule and campaign.
    pub detail: Value,
    /// In words.
    pub why: String,
    pub created_at: String,
}

/// A next-step prompt.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NudgeView {
    pub id: Uuid,
    pub campaign_id: Uuid,
    pub rule_id: Uuid,
    pub title: String,
    pub body: String,
    pub action_url: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Clone)]
pub struct RulesService {
    store: RuleStore,
    tasks: TaskStore,
    badges: BadgeStore,
    campaigns: CampaignService,
    rewards: RewardsService,
    ledger: Ledger,
    inbox: InboxService,
    /// Compiled CEL by source, kept across batches.
    compiled: expr::Compiled,
    clock: SharedClock,
}

fn rule_view(row: RuleRow) -> RuleView {
    RuleView {
        id: row.id.parse().unwrap_or_default(),
        campaign_id: row.campaign_id.parse().unwrap_or_default(),
        name: row.name,
        trigger: row.trigger_type,
        condition: row.condition,
        aggregate: match (row.aggregate_count, row.aggregate_days) {
            (Some(count), Some(within_days)) => Some(Aggregate { count, within_days }),
            _ => None,
        },
        max_per_customer: row.max_per_customer,
        actions: serde_json::from_str(&row.actions).unwrap_or_default(),
        created_at: iso(row.created_at),
    }
}

impl RulesService {
    pub fn new(engage: &EngageState, campaigns: CampaignService, rewards: RewardsService) -> Self {
        Self {
            store: RuleStore::new(engage.db.clone()),
            tasks: TaskStore::new(engage.db.clone()),
            badges: BadgeStore::new(engage.db.clone()),
            campaigns,
            rewards,
            ledger: engage.ledger.clone(),
            inbox: engage.inbox.clone(),
            compiled: expr::Compiled::default(),
            clock: engage.clock.clone(),
        }
    }

    pub fn store(&self) -> &RuleStore {
        &self.store
    }

    /// Adds a rule to a campaign that has not ended. An invalid condition is refused with
    /// its parse error (`invalid-rule-expression`) and nothing is saved.
    pub async fn create(&self, campaign: Uuid, input: domain::RuleInput) -> Result<RuleView, ApiError> {
        let row = self.campaigns.row(campaign).await?;
        if state_of(&row, self.clock.now()) == State::Ended {
            return Err(ended());
        }
        domain::check(&input)?;
        for action in &input.actions {
            let missing = match action {
                Action::GrantBadge { badge } => self.badges.get(*badge).await?.is_none().then_some("badge"),
                Action::AdvanceTask { task, .. } => self.tasks.get(*task).await?.is_none().then_some("task"),
                _ => None,
            };
            if let Some(what) = missing {
                return Err(ApiError::invalid_field(
                    "actions",
                    format!("the {what} of an action does not exist"),
                ));
            }
        }
        let id = new_id();
        self.store.insert(id, campaign, &input, self.clock.now()).await?;
        let rows = self.store.of_campaign(campaign).await?;
        rows.into_iter()
            .find(|r| r.id == id.to_string())
            .map(rule_view)
            .ok_or_else(|| ApiError::internal("rule vanished"))
    }

    pub async fn of_campaign(&self, campaign: Uuid) -> Result<Vec<RuleView>, ApiError> {
        self.campaigns.row(campaign).await?;
        Ok(self
            .store
            .of_campaign(campaign)
            .await?
            .into_iter()
            .map(rule_view)
            .collect())
    }

    pub async fn effects(&self, customer: Uuid, page: &PageQuery) -> Result<Page<EffectView>, ApiError> {
        let limit = page.limit()?;
        let after = page.after()?;
        let rows = self.store.effects(customer, after.as_deref(), limit).await?;
        let views = rows
            .into_iter()
            .map(|r| {
                let detail: Value = serde_json::from_str(&r.detail).unwrap_or_else(|_| json!({}));
                let text = |k: &str| detail.get(k).and_then(Value::as_str).map(str::to_owned);
                let rule_name = text("rule_name");
                let why = match (&rule_name, &r.event_id) {
                    (Some(rule), Some(event)) => format!(
                        "Rule “{rule}” of campaign “{}” matched your {} event {event}",
                        text("campaign_name").unwrap_or_default(),
                        text("event_type").unwrap_or_default()
                    ),
                    (None, Some(event)) => format!(
                        "Your {} event {event} counted toward a badge",
                        text("event_type").unwrap_or_default()
                    ),
                    _ => format!(
                        "You claimed a completed task of campaign “{}”",
                        text("campaign_name").unwrap_or_default()
                    ),
                };
                EffectView {
                    id: r.id.parse().unwrap_or_default(),
                    kind: r.kind,
                    campaign_id: r.campaign_id.parse().unwrap_or_default(),
                    rule_id: r.rule_id.and_then(|x| x.parse().ok()),
                    rule_name,
                    event_seq: r.event_seq,
                    event_id: r.event_id,
                    detail,
                    why,
                    created_at: iso(r.created_at),
                }
            })
            .collect();
        Ok(Page::from_rows(views, limit, |v| v.id.to_string()))
    }

    pub async fn nudges(&self, customer: Uuid) -> Result<Vec<NudgeView>, ApiError> {
        Ok(self
            .store
            .nudges(customer)
            .await?
            .into_iter()
            .map(|n| NudgeView {
                id: n.id.parse().unwrap_or_default(),
                campaign_id: n.campaign_id.parse().unwrap_or_default(),
                rule_id: n.rule_id.parse().unwrap_or_default(),
                title: n.title,
                body: n.body,
                action_url: n.action_url,
                created_at: iso(n.created_at),
            })
            .collect())
    }

    pub async fn dismiss(&self, customer: Uuid, id: Uuid) -> Result<(), ApiError> {
        if self.store.dismiss(customer, id, self.clock.now()).await? {
            Ok(())
        } else {
            Err(ApiError::not_found("The nudge"))
        }
    }

    /// Runs the consumer until the task is aborted: a batch whenever events arrive (or
    /// every 500 ms, to hear other nodes), a pause after an error.
    pub fn spawn_consumer(&self) -> tokio::task::JoinHandle<()> {
        let service = self.clone();
        let feed = EventFeed::new(self.store.db().clone(), CONSUMER);
        tokio::spawn(async move {
            let mut limit = BATCH;
            loop {
                match service.run_batch_of(&feed, limit).await {
                    Ok(0) => feed.wait(Duration::from_millis(500)).await,
                    Ok(n) => {
                        limit = if n as u32 >= limit {
                            (limit * 2).min(MAX_BATCH)
                        } else {
                            BATCH
                        };
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "rules batch failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        })
    }

    /// Loads the live definitions, with what the campaigns' budgets have left now.
    async fn world(&self) -> Result<World, ApiError> {
        let now = self.clock.now();
        let live = self.campaigns.store().live(now).await?;
        let mut world = World::default();
        let mut index = HashMap::new();
        let mut accounts = Vec::with_capacity(live.len());
        for row in &live {
            let Ok(id) = row.id.parse::<Uuid>() else { continue };
            let Ok(audience) = self.compiled.get(&row.audience, &["customer"]) else {
                continue;
            };
            let points_account = self.campaigns.points_account(row).await?;
            accounts.push(points_account);
            index.insert(row.id.clone(), world.campaigns.len());
            world.campaigns.push(LiveCampaign {
                id,
                name: row.name.clone(),
                audience,
                starts_at: row.starts_at,
                points_account,
                points_left: 0,
                coupons_left: row.coupon_cap - row.coupons_used,
            });
        }
        let left = self.campaigns.budgets().left(&accounts).await?;
        for c in &mut world.campaigns {
            c.points_left = left.get(&c.points_account).copied().unwrap_or(0);
        }
        let ids: Vec<Uuid> = world.campaigns.iter().map(|c| c.id).collect();
        let vars = ["event", "customer", "counters"];
        for row in self.store.of_campaigns(&ids).await? {
            let (Some(&campaign), Ok(condition)) =
                (index.get(&row.campaign_id), self.compiled.get(&row.condition, &vars))
            else {
                continue;
            };
            let view = rule_view(row);
            world.rules.push(LiveRule {
                id: view.id,
                campaign,
                name: view.name,
                trigger: view.trigger,
                condition,
                aggregate: view.aggregate,
                max_per_customer: view.max_per_customer,
                actions: view.actions,
            });
        }
        for row in self.tasks.of_campaigns(&ids).await? {
            let (Some(&campaign), Ok(filter)) = (index.get(&row.campaign_id), self.compiled.get(&row.filter, &vars))
            else {
                continue;
            };
            world.tasks.push(LiveTask {
                id: row.id.parse().unwrap_or_default(),
                campaign,
                period: Period::parse(&row.period).unwrap_or(Period::Once),
                event_type: row.event_type,
                filter,
                target: row.target,
            });
        }
        for row in self.badges.all().await? {
            let campaign = match &row.campaign_id {
                None => None,
                Some(c) => match index.get(c) {
                    Some(&i) => Some(i),
                    None => continue,
                },
            };
            let Ok(filter) = self.compiled.get(&row.filter, &vars) else {
                continue;
            };
            world.badges.push(LiveBadge {
                id: row.id.parse().unwrap_or_default(),
                campaign,
                tiers: tiers_of(&row),
                event_type: row.event_type,
                filter,
            });
        }
        Ok(world)
    }

    /// Processes one batch of up to [`BATCH`] events; returns the number of events
    /// consumed (0: none waiting).
    pub async fn run_batch(&self, feed: &EventFeed) -> Result<usize, ApiError> {
        self.run_batch_of(feed, BATCH).await
    }

    /// Processes one batch of up to `limit` events.
    pub async fn run_batch_of(&self, feed: &EventFeed, limit: u32) -> Result<usize, ApiError> {
        let started = std::time::Instant::now();
        let from = feed.position().await?;
        let read: Vec<FeedEvent> = feed.read(from, limit).await?;
        let Some(to) = read.last().map(|e| e.seq) else {
            return Ok(0);
        };
        let received: Vec<i64> = read.iter().map(|e| to_micros(e.received_at)).collect();
        let events: Vec<Event> = read
            .into_iter()
            .map(|e| Event {
                seq: e.seq,
                customer: e.customer,
                event_id: e.event_id,
                kind: e.kind,
                channel: e.channel,
                at: e.at,
                properties: e.properties,
            })
            .collect();
        let read = started.elapsed();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut world = self.world().await?;
            let loaded = self.load(&world, &events).await?;
            let plan = domain::decide(&mut world, &events, loaded);
            let decided = started.elapsed();
            match self.commit(feed, from, to, &world, plan).await? {
                Committed::Done => {
                    tracing::debug!(events = events.len(), ?read, ?decided, total = ?started.elapsed(), "rules batch committed");
                    break;
                }
                // Another node consumed these events: read the feed again.
                Committed::CursorMoved => return Ok(events.len()),
                Committed::BudgetMoved if attempt < 8 => {
                    tracing::debug!(attempt, "a budget changed under the batch; deciding again");
                }
                Committed::BudgetMoved => {
                    return Err(ApiError::conflict(
                        "budget-contended",
                        "The campaign budgets kept changing under the rules batch",
                    ));
                }
            }
        }
        let done = to_micros(self.clock.now());
        for at in &received {
            metrics::observe(done - at);
        }
        metrics::consumed(events.len());
        Ok(events.len())
    }

    /// The stored state of the customers of the events some definition reacts to.
    async fn load(&self, world: &World, events: &[Event]) -> Result<Loaded, ApiError> {
        let now = self.clock.now();
        let mut kinds: HashMap<&str, bool> = HashMap::new();
        let relevant: Vec<&Event> = events
            .iter()
            .filter(|e| *kinds.entry(e.kind.as_str()).or_insert_with(|| world.reacts_to(&e.kind)))
            .collect();
        if relevant.is_empty() {
            return Ok(Loaded::default());
        }
        let mut customers: Vec<Uuid> = relevant.iter().map(|e| e.customer).collect();
        customers.sort_unstable();
        customers.dedup();
        let mut loaded = Loaded::default();
        for (id, (row, tags)) in self.campaigns.store().profiles(&customers).await? {
            loaded.profiles.insert(id, attrs_of(&row, tags, "", now));
        }
        let rules: Vec<Uuid> = world.rules.iter().map(|r| r.id).collect();
        let windowed: Vec<Uuid> = world
            .rules
            .iter()
            .filter(|r| r.aggregate.is_some())
            .map(|r| r.id)
            .collect();
        let max_days = world
            .rules
            .iter()
            .filter_map(|r| r.aggregate.map(|a| a.within_days))
            .max()
            .unwrap_or(0);
        let earliest = relevant.iter().map(|e| to_micros(e.at)).min().unwrap_or(0);
        let tasks: Vec<Uuid> = world.tasks.iter().map(|t| t.id).collect();
        let badges: Vec<Uuid> = world.badges.iter().map(|b| b.id).collect();
        self.store
            .load(
                &rules,
                &windowed,
                &tasks,
                &badges,
                &customers,
                earliest - max_days * 86_400_000_000,
                &mut loaded,
            )
            .await?;
        Ok(loaded)
    }

    /// Step 4: commits a decided batch in one transaction, or rolls it back and says why.
    async fn commit(
        &self,
        feed: &EventFeed,
        from: i64,
        to: i64,
        world: &World,
        mut plan: domain::Plan,
    ) -> Result<Committed, ApiError> {
        // What the handoffs need, read before the transaction so that it holds its locks
        // only for writing.
        let mut payees: Vec<Uuid> = plan
            .handoffs
            .iter()
            .filter(|h| matches!(h.action, Action::AwardPoints { .. }))
            .map(|h| h.customer)
            .collect();
        payees.sort_unstable();
        payees.dedup();
        let points = self.campaigns.budgets().points_accounts(&payees).await?;
        let mut rewards = HashMap::new();
        for h in &plan.handoffs {
            if let Action::IssueCoupon { reward } = &h.action
                && !rewards.contains_key(reward)
            {
                rewards.insert(*reward, self.rewards.store().reward(*reward).await?);
            }
        }
        let budget_of: HashMap<Uuid, huoban_ledger::AccountId> =
            world.campaigns.iter().map(|c| (c.id, c.points_account)).collect();
        let mut awards = Vec::new();
        let mut messages = Vec::new();
        for h in &plan.handoffs {
            match &h.action {
                Action::AwardPoints { points: n } => {
                    let (Some(budget), Some(account)) = (budget_of.get(&h.campaign), points.get(&h.customer)) else {
                        return Err(ApiError::internal("an award lost its accounts"));
                    };
                    awards.push(Budgets::award(
                        IdempotencyKey::new("rule", format!("{}:{}", h.rule, h.seq))?,
                        *budget,
                        *account,
                        *n,
                        "Campaign reward",
                        json!({ "source": "rule", "rule": h.rule, "event_seq": h.seq, "campaign": h.campaign }),
                    )?);
                }
                Action::SendMessage { title, body, link } => messages.push(NewMessage {
                    customer_id: h.customer,
                    kind: "campaign".to_owned(),
                    title: title.clone(),
                    body: body.clone(),
                    link: link.clone(),
                    data: json!({ "rule": h.rule, "campaign": h.campaign, "event_seq": h.seq }),
                    dedupe_key: Some(h.key()),
                }),
                _ => {}
            }
        }

        // Effects are stamped just before their commit (the lag metric measures to here).
        let now = self.clock.now();
        let mut tx = self.store.db().begin().await?;
        let rollback = |tx: sqlx::Transaction<'static, sqlx::Any>| async move {
            tx.rollback().await.map_err(huoban_kit::DbError::from)
        };
        if !feed.advance(&mut tx, from, to, now).await? {
            rollback(tx).await?;
            return Ok(Committed::CursorMoved);
        }
        let paid = self.ledger.transfer_in(&mut tx, awards).await?;
        for result in &paid.results {
            match result {
                Ok(_) => {}
                Err(LedgerError::InsufficientFunds { .. }) => {
                    rollback(tx).await?;
                    return Ok(Committed::BudgetMoved);
                }
                Err(e) => {
                    let problem = ApiError::internal(format!("a rule's award was refused: {e}"));
                    rollback(tx).await?;
                    return Err(problem);
                }
            }
        }
        // Coupons: granted here, so a coupon exists exactly when its effect does; a refusal
        // (out of stock, the customer's limit) is recorded on the effect and not counted.
        // In reward order (events' order within a reward): each grant locks its reward's
        // stock row, and the claim writer locks those rows in the same order, so the two
        // never wait on each other in a cycle.
        let mut grants: Vec<(&Uuid, &_)> = plan
            .handoffs
            .iter()
            .filter_map(|h| match &h.action {
                Action::IssueCoupon { reward } => Some((reward, h)),
                _ => None,
            })
            .collect();
        grants.sort_by_key(|(reward, _)| **reward);
        let mut coupons: HashMap<Uuid, i64> = HashMap::new();
        for (reward, h) in grants {
            let granted = match rewards.get(reward) {
                Some(Some(row)) => self.rewards.grant_in(&mut tx, h.customer, row, &h.key(), now).await?,
                _ => Err(ApiError::not_found("The reward")),
            };
            let effect = plan
                .effects
                .iter_mut()
                .find(|x| x.kind == "coupon" && x.rule == Some(h.rule) && x.seq == Some(h.seq));
            match granted {
                Ok(claim) => {
                    *coupons.entry(h.campaign).or_default() += 1;
                    if let Some(effect) = effect {
                        effect.detail["issued"] = json!(true);
                        effect.detail["coupon_code"] = json!(claim.code);
                    }
                }
                Err(e) => {
                    tracing::info!(error = %e, rule = %h.rule, "coupon not issued");
                    if let Some(effect) = effect {
                        effect.detail["issued"] = json!(false);
                        effect.detail["problem"] = json!(e.slug);
                    }
                }
            }
        }
        let mut by_campaign: Vec<(Uuid, i64)> = coupons.into_iter().collect();
        by_campaign.sort_unstable();
        for (campaign, n) in by_campaign {
            if !self.campaigns.store().take_coupons(&mut tx, campaign, n).await? {
                rollback(tx).await?;
                return Ok(Committed::BudgetMoved);
            }
        }
        let delivered = self.inbox.deliver_in(&mut tx, messages).await?;
        self.store.write_plan(&mut tx, &plan, now).await?;
        tx.commit().await.map_err(huoban_kit::DbError::from)?;
        self.ledger.announce(&paid);
        self.inbox.push(delivered);
        Ok(Committed::Done)
    }
}

/// How a batch's commit ended.
enum Committed {
    Done,
    CursorMoved,
    BudgetMoved,
}
