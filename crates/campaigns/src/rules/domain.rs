//! Rule definitions and the decision for a batch of events. Pure: the consumer loads the
//! state of every customer in a batch, [`decide`] works out every effect in memory, and
//! the store writes them with a few multi-row statements.
//!
//! For each event, in feed (= per-customer) order, each rule of a live campaign whose
//! trigger is the event's type, whose campaign audience admits the customer and which had
//! started when the event happened (earlier events never count for a campaign):
//! 1. the condition (CEL over `event`, `customer`, `counters`) must hold;
//! 2. with an aggregate, the event is a *hit*; the rule fires when the hits since it last
//!    fired within the last `days` (by event time) reach `count` — so the 3rd matching
//!    event within 7 days fires, three spread over 8 days do not;
//! 3. a rule fires at most `max_per_customer` times per customer (if set);
//! 4. the campaign's remaining budgets must cover all the points and coupons the firing
//!    awards, or it awards nothing (outcome `budget_exhausted`): never a partial award;
//! 5. a firing is recorded once per (rule, event) and its effects are listed with the
//!    rule and event that caused them.

use std::collections::{BTreeMap, HashMap};

use huoban_kit::ApiError;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::{
    campaigns::domain::{invalid_expression, is_slug},
    expr::{self, CustomerAttrs, EventAttrs, Expr},
};

/// What a rule does when it fires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Points from the campaign's points budget to the customer's points account.
    AwardPoints { points: i64 },
    /// Raise the customer's progress on a badge to at least its first tier.
    GrantBadge { badge: Uuid },
    /// Add `by` (default 1) to the customer's progress on a task this period.
    AdvanceTask {
        task: Uuid,
        #[serde(default = "one")]
        by: i64,
    },
    /// A coupon of a catalog reward, free, counted against the coupon budget.
    IssueCoupon { reward: Uuid },
    /// An inbox message.
    SendMessage {
        title: String,
        body: String,
        #[serde(default)]
        link: Option<String>,
    },
    /// A next-step prompt shown by the page until dismissed.
    ShowNudge {
        title: String,
        body: String,
        #[serde(default)]
        action_url: Option<String>,
    },
}

fn one() -> i64 {
    1
}

/// A windowed aggregate: `count` matching events within `days`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Aggregate {
    /// 2 to 1,000.
    pub count: i64,
    /// 1 to 90.
    pub within_days: i64,
}

/// A rule as staff send it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleInput {
    /// 1 to 100 characters; customers see it under "why did I get this?".
    pub name: String,
    /// The event type that triggers it: `product_view`, `check_in`, `deposit`, …
    pub trigger: String,
    /// CEL over `event` (`type`, `channel`, `properties`), `customer` and `counters`
    /// (per event type, the customer's events the rules consumer has counted, this one
    /// included; only types some live rule, task or badge reacts to are counted); empty:
    /// always.
    #[serde(default)]
    pub condition: String,
    pub aggregate: Option<Aggregate>,
    /// At most this many firings per customer (1 = once only).
    pub max_per_customer: Option<i64>,
    /// 1 to 10 actions.
    pub actions: Vec<Action>,
}

/// Checks a rule; the condition must compile (the parse error is in the problem).
pub fn check(input: &RuleInput) -> Result<(), ApiError> {
    let n = input.name.trim().chars().count();
    if n == 0 || n > 100 {
        return Err(ApiError::invalid_field("name", "the name is 1 to 100 characters"));
    }
    if !is_slug(&input.trigger, 64) {
        return Err(ApiError::invalid_field(
            "trigger",
            "the trigger is an event type slug like product_view",
        ));
    }
    expr::compile(&input.condition, &["event", "customer", "counters"])
        .map_err(|e| invalid_expression("condition", e))?;
    if let Some(a) = input.aggregate {
        if !(2..=1000).contains(&a.count) {
            return Err(ApiError::invalid_field("aggregate.count", "count is 2 to 1,000"));
        }
        if !(1..=90).contains(&a.within_days) {
            return Err(ApiError::invalid_field(
                "aggregate.within_days",
                "within_days is 1 to 90",
            ));
        }
    }
    if input.max_per_customer.is_some_and(|m| m < 1) {
        return Err(ApiError::invalid_field(
            "max_per_customer",
            "max_per_customer is at least 1",
        ));
    }
    if input.actions.is_empty() || input.actions.len() > 10 {
        return Err(ApiError::invalid_field("actions", "a rule has 1 to 10 actions"));
    }
    for action in &input.actions {
        match action {
            Action::AwardPoints { points } if !(1..=1_000_000).contains(points) => {
                return Err(ApiError::invalid_field(
                    "actions",
                    "award_points is 1 to 1,000,000 points",
                ));
            }
            Action::AdvanceTask { by, .. } if !(1..=1000).contains(by) => {
                return Err(ApiError::invalid_field("actions", "advance_task by is 1 to 1,000"));
            }
            Action::SendMessage { title, body, .. } | Action::ShowNudge { title, body, .. }
                if title.trim().is_empty() || title.chars().count() > 100 || body.chars().count() > 1000 =>
            {
                return Err(ApiError::invalid_field(
                    "actions",
                    "message and nudge titles are 1 to 100 characters, bodies at most 1,000",
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Points and coupons one firing of these actions awards.
pub fn cost(actions: &[Action]) -> (i64, i64) {
    actions.iter().fold((0, 0), |(p, c), a| match a {
        Action::AwardPoints { points } => (p + points, c),
        Action::IssueCoupon { .. } => (p, c + 1),
        _ => (p, c),
    })
}

/// A live campaign as the decision sees it.
#[derive(Debug)]
pub struct LiveCampaign {
    pub id: Uuid,
    pub name: String,
    pub audience: Expr,
    /// Events that happened before this (micros) do not count for the campaign.
    pub starts_at: i64,
    /// The campaign's points budget account, which awards are paid from.
    pub points_account: huoban_ledger::AccountId,
    pub points_left: i64,
    pub coupons_left: i64,
}

/// A rule ready to evaluate.
#[derive(Debug)]
pub struct LiveRule {
    pub id: Uuid,
    /// Index into the campaigns.
    pub campaign: usize,
    pub name: String,
    pub trigger: String,
    pub condition: Expr,
    pub aggregate: Option<Aggregate>,
    pub max_per_customer: Option<i64>,
    pub actions: Vec<Action>,
}

/// How a task counts and resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Once,
    Daily,
    Weekly,
}

impl Period {
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Once => "once",
            Period::Daily => "daily",
            Period::Weekly => "weekly",
        }
    }

    pub fn parse(s: &str) -> Option<Period> {
        Some(match s {
            "once" => Period::Once,
            "daily" => Period::Daily,
            "weekly" => Period::Weekly,
            _ => return None,
        })
    }

    /// The period an instant falls in, in the customer's time zone: `""` for once,
    /// `2026-11-22` daily, `2026-W47` weekly (ISO weeks, Monday first).
    pub fn key(self, at: Timestamp, time_zone: &str) -> String {
        let tz = jiff::tz::TimeZone::get(time_zone)
            .or_else(|_| jiff::tz::TimeZone::get(DEFAULT_TIME_ZONE))
            .unwrap_or(jiff::tz::TimeZone::UTC);
        let date = at.to_zoned(tz).date();
        match self {
            Period::Once => String::new(),
            Period::Daily => date.to_string(),
            Period::Weekly => {
                let week = date.iso_week_date();
                format!("{}-W{:02}", week.year(), week.week())
            }
        }
    }
}

pub const DEFAULT_TIME_ZONE: &str = "Asia/Shanghai";

/// A task that events drive.
#[derive(Debug)]
pub struct LiveTask {
    pub id: Uuid,
    pub campaign: usize,
    pub period: Period,
    pub event_type: String,
    pub filter: Expr,
    pub target: i64,
}

/// A badge tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// `bronze`, `silver`, `gold`, …
    pub name: String,
    /// Matching events needed.
    pub threshold: i64,
}

/// A badge that events drive.
#[derive(Debug)]
pub struct LiveBadge {
    pub id: Uuid,
    /// `None`: not tied to a campaign.
    pub campaign: Option<usize>,
    pub event_type: String,
    pub filter: Expr,
    pub tiers: Vec<Tier>,
}

/// The highest tier reached with `progress`.
pub fn tier_of(tiers: &[Tier], progress: i64) -> Option<&Tier> {
    tiers.iter().rfind(|t| progress >= t.threshold)
}

/// An event of the batch.
#[derive(Debug, Clone)]
pub struct Event {
    pub seq: i64,
    pub customer: Uuid,
    pub event_id: String,
    pub kind: String,
    pub channel: String,
    pub at: Timestamp,
    pub properties: serde_json::Value,
}

/// The stored state of the batch's customers.
#[derive(Debug, Default)]
pub struct Loaded {
    pub profiles: HashMap<Uuid, CustomerAttrs>,
    /// (rule, customer) → (fired, last fired seq).
    pub rule_state: HashMap<(Uuid, Uuid), (i64, i64)>,
    /// (rule, customer) → hits (seq, event time micros), oldest first.
    pub hits: HashMap<(Uuid, Uuid), Vec<(i64, i64)>>,
    /// customer → counters.
    pub counters: HashMap<Uuid, BTreeMap<String, i64>>,
    /// (task, customer, period) → (progress, claimed).
    pub tasks: HashMap<(Uuid, Uuid, String), (i64, bool)>,
    /// (badge, customer) → progress.
    pub badges: HashMap<(Uuid, Uuid), i64>,
}

/// The live definitions.
#[derive(Debug, Default)]
pub struct World {
    pub campaigns: Vec<LiveCampaign>,
    pub rules: Vec<LiveRule>,
    pub tasks: Vec<LiveTask>,
    pub badges: Vec<LiveBadge>,
}

impl World {
    /// For an event type: `None` when no definition reacts to it, else whether the
    /// expressions evaluated on such an event (conditions and filters of the definitions it
    /// triggers, audiences of their campaigns) read `event`, `customer`, `counters`.
    pub fn needs(&self, kind: &str) -> Option<(bool, bool, bool)> {
        let rules: Vec<&LiveRule> = self.rules.iter().filter(|r| r.trigger == kind).collect();
        let tasks: Vec<&LiveTask> = self.tasks.iter().filter(|t| t.event_type == kind).collect();
        let badges: Vec<&LiveBadge> = self.badges.iter().filter(|b| b.event_type == kind).collect();
        if rules.is_empty() && tasks.is_empty() && badges.is_empty() {
            return None;
        }
        let uses = |name: &str| {
            rules
                .iter()
                .any(|r| r.condition.uses(name) || self.campaigns[r.campaign].audience.uses(name))
                || tasks
                    .iter()
                    .any(|t| t.filter.uses(name) || self.campaigns[t.campaign].audience.uses(name))
                || badges
                    .iter()
                    .any(|b| b.filter.uses(name) || b.campaign.is_some_and(|c| self.campaigns[c].audience.uses(name)))
        };
        Some((uses("event"), uses("customer"), uses("counters")))
    }

    /// Whether any definition reacts to this event type.
    pub fn reacts_to(&self, kind: &str) -> bool {
        self.rules.iter().any(|r| r.trigger == kind)
            || self.tasks.iter().any(|t| t.event_type == kind)
            || self.badges.iter().any(|b| b.event_type == kind)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Firing {
    pub rule: Uuid,
    pub seq: i64,
    pub customer: Uuid,
    pub outcome: &'static str,
}

/// One effect, with what caused it.
#[derive(Debug, Clone, PartialEq)]
pub struct Effect {
    pub customer: Uuid,
    pub campaign: Uuid,
    pub rule: Option<Uuid>,
    pub seq: Option<i64>,
    pub event_id: Option<String>,
    /// `points`, `coupon`, `badge`, `badge_tier`, `task_progress`, `message`, `nudge`.
    pub kind: &'static str,
    pub detail: serde_json::Value,
}

/// An action another capability carries out — a ledger transfer of points, a coupon
/// grant, an inbox message — inside the batch's transaction, keyed by (rule, event).
#[derive(Debug, Clone, PartialEq)]
pub struct Handoff {
    pub customer: Uuid,
    pub campaign: Uuid,
    pub rule: Uuid,
    pub seq: i64,
    pub action: Action,
}

impl Handoff {
    /// The idempotency key of this action's ledger transfer, coupon or message.
    pub fn key(&self) -> String {
        format!("rule:{}:{}", self.rule, self.seq)
    }
}

/// Everything a batch changes.
#[derive(Debug, Default)]
pub struct Plan {
    pub firings: Vec<Firing>,
    pub rule_state: HashMap<(Uuid, Uuid), (i64, i64)>,
    pub hits: Vec<(Uuid, Uuid, i64, i64)>,
    pub counters: HashMap<(Uuid, String), i64>,
    pub effects: Vec<Effect>,
    pub handoffs: Vec<Handoff>,
    pub tasks: HashMap<(Uuid, Uuid, String), i64>,
    pub badges: HashMap<(Uuid, Uuid), i64>,
    /// Event seqs whose effects this batch applies (for the lag metric).
    pub applied: usize,
}

const DAY_MICROS: i64 = 86_400_000_000;

/// Decides a batch. `events` in feed order; `loaded` holds the state before it.
pub fn decide(world: &mut World, events: &[Event], mut loaded: Loaded) -> Plan {
    let mut plan = Plan::default();
    let mut needs_of: HashMap<String, Option<(bool, bool, bool)>> = HashMap::new();
    let mut customer_values: HashMap<(Uuid, String), Option<cel::Value>> = HashMap::new();
    // An audience reads only `customer` (its attributes and the channel), so it is
    // evaluated once per customer, channel and campaign in a batch.
    let mut audiences: HashMap<(Uuid, String, usize), bool> = HashMap::new();
    let root = expr::root();
    for event in events {
        let needs = match needs_of.get(&event.kind) {
            Some(n) => *n,
            None => *needs_of
                .entry(event.kind.clone())
                .or_insert_with(|| world.needs(&event.kind)),
        };
        let Some(needs) = needs else {
            continue;
        };
        let Some(profile) = loaded.profiles.get(&event.customer) else {
            continue;
        };
        let counters = loaded.counters.entry(event.customer).or_default();
        *counters.entry(event.kind.clone()).or_insert(0) += 1;
        plan.counters
            .insert((event.customer, event.kind.clone()), counters[&event.kind]);
        let at = huoban_kit::clock::to_micros(event.at);
        // Only the variables some live expression reads are converted; a customer's
        // attributes once per channel per batch.
        let event_value = if needs.0 {
            expr::value(&EventAttrs {
                kind: &event.kind,
                channel: &event.channel,
                properties: &event.properties,
            })
        } else {
            None
        };
        let customer_value = if needs.1 {
            customer_values
                .entry((event.customer, event.channel.clone()))
                .or_insert_with(|| {
                    let mut customer = profile.clone();
                    customer.channel.clone_from(&event.channel);
                    expr::value(&customer)
                })
                .clone()
        } else {
            None
        };
        let counters_value = if needs.2 { expr::value(&*counters) } else { None };
        let context = expr::context_of(&root, event_value, customer_value, counters_value);
        let mut admits = |campaigns: &[LiveCampaign], c: usize| {
            at >= campaigns[c].starts_at
                && *audiences
                    .entry((event.customer, event.channel.clone(), c))
                    .or_insert_with(|| campaigns[c].audience.matches_in(&context))
        };
        let mut any = false;
        for rule in world.rules.iter().filter(|r| r.trigger == event.kind) {
            if !admits(&world.campaigns, rule.campaign) || !rule.condition.matches_in(&context) {
                continue;
            }
            any = true;
            let key = (rule.id, event.customer);
            let (fired, last) = plan
                .rule_state
                .get(&key)
                .or_else(|| loaded.rule_state.get(&key))
                .copied()
                .unwrap_or((0, 0));
            if rule.max_per_customer.is_some_and(|m| fired >= m) {
                continue;
            }
            if let Some(agg) = rule.aggregate {
                plan.hits.push((rule.id, event.customer, event.seq, at));
                let hits = loaded.hits.entry(key).or_default();
                hits.push((event.seq, at));
                let since = at - agg.within_days * DAY_MICROS;
                let n = hits.iter().filter(|(s, t)| *s > last && *t > since && *t <= at).count();
                if (n as i64) < agg.count {
                    continue;
                }
            }
            let campaign = &mut world.campaigns[rule.campaign];
            let (points, coupons) = cost(&rule.actions);
            if points > campaign.points_left || coupons > campaign.coupons_left {
                plan.firings.push(Firing {
                    rule: rule.id,
                    seq: event.seq,
                    customer: event.customer,
                    outcome: "budget_exhausted",
                });
                continue;
            }
            campaign.points_left -= points;
            campaign.coupons_left -= coupons;
            plan.rule_state.insert(key, (fired + 1, event.seq));
            plan.firings.push(Firing {
                rule: rule.id,
                seq: event.seq,
                customer: event.customer,
                outcome: "applied",
            });
            let why = json!({ "rule_name": rule.name, "campaign_name": campaign.name, "event_type": event.kind });
            for action in &rule.actions {
                let mut detail = why.clone();
                let kind = match action {
                    Action::AwardPoints { points } => {
                        detail["points"] = json!(points);
                        "points"
                    }
                    Action::IssueCoupon { reward } => {
                        detail["reward"] = json!(reward);
                        "coupon"
                    }
                    Action::SendMessage { title, .. } => {
                        detail["title"] = json!(title);
                        "message"
                    }
                    Action::ShowNudge {
                        title,
                        body,
                        action_url,
                    } => {
                        detail["title"] = json!(title);
                        detail["body"] = json!(body);
                        detail["action_url"] = json!(action_url);
                        "nudge"
                    }
                    Action::GrantBadge { badge } => {
                        let Some(b) = world.badges.iter().find(|b| b.id == *badge) else {
                            continue;
                        };
                        let first = b.tiers.first().map_or(1, |t| t.threshold);
                        let k = (b.id, event.customer);
                        let before = plan
                            .badges
                            .get(&k)
                            .or_else(|| loaded.badges.get(&k))
                            .copied()
                            .unwrap_or(0);
                        plan.badges.insert(k, before.max(first));
                        detail["badge"] = json!(badge);
                        "badge"
                    }
                    Action::AdvanceTask { task, by } => {
                        let Some(t) = world.tasks.iter().find(|t| t.id == *task) else {
                            continue;
                        };
                        let period = t.period.key(event.at, &profile.time_zone);
                        let k = (t.id, event.customer, period.clone());
                        let (before, claimed) = plan
                            .tasks
                            .get(&k)
                            .map(|p| (*p, false))
                            .or_else(|| loaded.tasks.get(&k).copied())
                            .unwrap_or((0, false));
                        if claimed {
                            continue;
                        }
                        plan.tasks.insert(k, (before + by).min(t.target));
                        detail["task"] = json!(task);
                        detail["period"] = json!(period);
                        detail["by"] = json!(by);
                        "task_progress"
                    }
                };
                if matches!(
                    action,
                    Action::AwardPoints { .. } | Action::IssueCoupon { .. } | Action::SendMessage { .. }
                ) {
                    plan.handoffs.push(Handoff {
                        customer: event.customer,
                        campaign: campaign.id,
                        rule: rule.id,
                        seq: event.seq,
                        action: action.clone(),
                    });
                }
                plan.effects.push(Effect {
                    customer: event.customer,
                    campaign: campaign.id,
                    rule: Some(rule.id),
                    seq: Some(event.seq),
                    event_id: Some(event.event_id.clone()),
                    kind,
                    detail,
                });
            }
        }
        for task in world.tasks.iter().filter(|t| t.event_type == event.kind) {
            if !admits(&world.campaigns, task.campaign) || !task.filter.matches_in(&context) {
                continue;
            }
            any = true;
            let period = task.period.key(event.at, &profile.time_zone);
            let k = (task.id, event.customer, period);
            let (before, claimed) = plan
                .tasks
                .get(&k)
                .map(|p| (*p, false))
                .or_else(|| loaded.tasks.get(&k).copied())
                .unwrap_or((0, false));
            if claimed || before >= task.target {
                continue;
            }
            plan.tasks.insert(k, before + 1);
        }
        for badge in world.badges.iter().filter(|b| b.event_type == event.kind) {
            if badge.campaign.is_some_and(|c| !admits(&world.campaigns, c)) || !badge.filter.matches_in(&context) {
                continue;
            }
            any = true;
            let k = (badge.id, event.customer);
            let before = plan
                .badges
                .get(&k)
                .or_else(|| loaded.badges.get(&k))
                .copied()
                .unwrap_or(0);
            let after = before + 1;
            plan.badges.insert(k, after);
            let reached = tier_of(&badge.tiers, after);
            if reached.is_some() && reached != tier_of(&badge.tiers, before) {
                let campaign = badge.campaign.map_or(Uuid::nil(), |c| world.campaigns[c].id);
                plan.effects.push(Effect {
                    customer: event.customer,
                    campaign,
                    rule: None,
                    seq: Some(event.seq),
                    event_id: Some(event.event_id.clone()),
                    kind: "badge_tier",
                    detail: json!({ "badge": badge.id, "tier": reached.map(|t| t.name.clone()), "event_type": event.kind }),
                });
            }
        }
        if any {
            plan.applied += 1;
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().expect("time")
    }

    fn world(aggregate: Option<Aggregate>, points: i64, budget: i64) -> World {
        World {
            campaigns: vec![LiveCampaign {
                id: Uuid::from_u128(1),
                name: "c".into(),
                audience: Expr::always(),
                starts_at: 0,
                points_account: huoban_ledger::AccountId::from(Uuid::from_u128(3)),
                points_left: budget,
                coupons_left: 0,
            }],
            rules: vec![LiveRule {
                id: Uuid::from_u128(2),
                campaign: 0,
                name: "r".into(),
                trigger: "product_view".into(),
                condition: expr::compile("event.properties.category == 'wealth'", &["event"]).expect("cel"),
                aggregate,
                max_per_customer: None,
                actions: vec![Action::AwardPoints { points }],
            }],
            tasks: vec![],
            badges: vec![],
        }
    }

    fn ev(seq: i64, at: &str, category: &str) -> Event {
        Event {
            seq,
            customer: Uuid::from_u128(9),
            event_id: format!("e{seq}"),
            kind: "product_view".into(),
            channel: "app".into(),
            at: t(at),
            properties: json!({ "category": category }),
        }
    }

    fn loaded() -> Loaded {
        Loaded {
            profiles: HashMap::from([(Uuid::from_u128(9), CustomerAttrs::default())]),
            ..Loaded::default()
        }
    }

    #[test]
    fn aggregate_fires_on_the_third_within_the_window() {
        let agg = Some(Aggregate {
            count: 3,
            within_days: 7,
        });
        let events = [
            ev(1, "2026-01-01T00:00:00Z", "wealth"),
            ev(2, "2026-01-02T00:00:00Z", "loans"),
            ev(3, "2026-01-03T00:00:00Z", "wealth"),
            ev(4, "2026-01-06T00:00:00Z", "wealth"),
        ];
        let plan = decide(&mut world(agg, 10, 100), &events, loaded());
        let applied: Vec<i64> = plan
            .firings
            .iter()
            .filter(|f| f.outcome == "applied")
            .map(|f| f.seq)
            .collect();
        assert_eq!(applied, vec![4]);
        let spread = [
            ev(1, "2026-01-01T00:00:00Z", "wealth"),
            ev(2, "2026-01-05T00:00:00Z", "wealth"),
            ev(3, "2026-01-09T00:00:00Z", "wealth"),
        ];
        let plan = decide(&mut world(agg, 10, 100), &spread, loaded());
        assert!(plan.firings.is_empty());
        assert_eq!(plan.hits.len(), 3);
    }

    #[test]
    fn budget_never_pays_part_of_an_award() {
        let events = [
            ev(1, "2026-01-01T00:00:00Z", "wealth"),
            ev(2, "2026-01-01T00:00:01Z", "wealth"),
            ev(3, "2026-01-01T00:00:02Z", "wealth"),
        ];
        let mut world = world(None, 40, 100);
        let plan = decide(&mut world, &events, loaded());
        let outcomes: Vec<&str> = plan.firings.iter().map(|f| f.outcome).collect();
        assert_eq!(outcomes, vec!["applied", "applied", "budget_exhausted"]);
        // 80 of the 100 points used, no coupon.
        assert_eq!(
            (world.campaigns[0].points_left, world.campaigns[0].coupons_left),
            (20, 0)
        );
        assert_eq!(plan.handoffs.len(), 2);
    }

    #[test]
    fn periods_follow_the_customer_time_zone() {
        // 16:30 UTC is 00:30 the next day in Shanghai.
        let at = t("2026-01-04T16:30:00Z");
        assert_eq!(Period::Daily.key(at, "Asia/Shanghai"), "2026-01-05");
        assert_eq!(Period::Daily.key(at, "UTC"), "2026-01-04");
        assert_eq!(Period::Weekly.key(at, "Asia/Shanghai"), "2026-W02");
        assert_eq!(Period::Weekly.key(at, "UTC"), "2026-W01");
        assert_eq!(Period::Once.key(at, "UTC"), "");
    }

    #[test]
    fn tiers() {
        let tiers = vec![
            Tier {
                name: "bronze".into(),
                threshold: 1,
            },
            Tier {
                name: "silver".into(),
                threshold: 3,
            },
        ];
        assert_eq!(tier_of(&tiers, 0), None);
        assert_eq!(tier_of(&tiers, 2).map(|t| t.name.as_str()), Some("bronze"));
        assert_eq!(tier_of(&tiers, 3).map(|t| t.name.as_str()), Some("silver"));
    }
}
