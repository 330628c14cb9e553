//! The rules of daily check-in, pure (no I/O, no clock): which local day an instant falls
//! on for a customer, streak arithmetic over a set of days, make-up cards, which rewards a
//! check-in or make-up earns, and the month calendar.
//!
//! A customer's history is a set of local dates ([`Days`]), each either checked in or made
//! up. A **streak** is a run of consecutive dates; the streak "at" a day is the length of the
//! run ending there. Streaks are always recomputed from the set, never carried as a counter,
//! so a make-up that fills a gap joins the two runs around it without any bookkeeping.
//!
//! **Milestones** (3, 7, 30 days by default) are paid once per run: a milestone of `n`
//! days is due when the run containing the new day is at least `n` long and no payment of
//! that milestone is dated inside the run. A payment is dated on the day the run reached
//! the length (`run start + n - 1`), which makes its ledger key deterministic. Runs only ever
//! grow (days are never removed), so a payment stays inside the run it was made for; two
//! runs that were each paid and are later joined by a make-up keep both payments (each was
//! due when it was paid), but the joined run earns nothing more for that milestone.
//!
//! **Make-up cards** are an allowance, [`CheckinConfig::makeup_cards_per_month`] (default 2)
//! per calendar month of the customer's time zone, counted by the month the card is used
//! in. An allowance was chosen over "earn a card per 7-day streak" because an earned card
//! would feed back into the streak that earns cards, and a monthly allowance is easy for a
//! customer to understand and for the bank to cost. A card fills one missed day between
//! yesterday and [`CheckinConfig::makeup_window_days`] days ago (default 7). A make-up earns
//! no base point (it is not a visit), but the milestones its joined run reaches.

use std::collections::BTreeMap;

use jiff::{Timestamp, ToSpan, civil::Date, tz::TimeZone};

/// The time zone used when a customer's profile names none the server knows.
pub const DEFAULT_TIME_ZONE: &str = "Asia/Shanghai";

/// The customer's time zone by IANA name, falling back to [`DEFAULT_TIME_ZONE`].
pub fn time_zone(name: &str) -> TimeZone {
    TimeZone::get(name)
        .or_else(|_| TimeZone::get(DEFAULT_TIME_ZONE))
        .unwrap_or(TimeZone::UTC)
}

/// The customer's calendar date at an instant.
pub fn local_date(at: Timestamp, tz: &TimeZone) -> Date {
    at.to_zoned(tz.clone()).date()
}

/// A streak length that earns a bonus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Milestone {
    pub days: i32,
    pub points: i64,
}

/// How check-in pays and how many make-ups it allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckinConfig {
    /// Points for every check-in (not for make-ups).
    pub base_points: i64,
    /// Sorted by `days`, each `days` > 0 and distinct.
    pub milestones: Vec<Milestone>,
    /// How far back a make-up card reaches: yesterday up to this many days ago.
    pub makeup_window_days: i32,
    /// Cards a customer may use per calendar month.
    pub makeup_cards_per_month: i64,
}

impl Default for CheckinConfig {
    fn default() -> Self {
        Self {
            base_points: 1,
            milestones: vec![
                Milestone { days: 3, points: 10 },
                Milestone { days: 7, points: 30 },
                Milestone { days: 30, points: 150 },
            ],
            makeup_window_days: 7,
            makeup_cards_per_month: 2,
        }
    }
}

/// Most points one check-in or one milestone may pay: a mistyped schedule must not become
/// a liability.
pub const MAX_CHECKIN_POINTS: i64 = 1_000_000;

impl CheckinConfig {
    /// A schedule from configuration, refused with a sentence naming what is wrong:
    /// points from 0 to [`MAX_CHECKIN_POINTS`], milestones of distinct positive lengths
    /// (sorted here), a make-up window of 1–31 days and 0–31 cards a month.
    pub fn new(
        base_points: i64,
        mut milestones: Vec<Milestone>,
        makeup_window_days: i32,
        makeup_cards_per_month: i64,
    ) -> Result<Self, String> {
        if !(0..=MAX_CHECKIN_POINTS).contains(&base_points) {
            return Err(format!(
                "base_points must be 0 to {MAX_CHECKIN_POINTS}, not {base_points}"
            ));
        }
        milestones.sort_by_key(|m| m.days);
        for (i, m) in milestones.iter().enumerate() {
            if !(1..=366).contains(&m.days) {
                return Err(format!("a milestone's days must be 1 to 366, not {}", m.days));
            }
            if !(0..=MAX_CHECKIN_POINTS).contains(&m.points) {
                return Err(format!(
                    "the {}-day milestone's points must be 0 to {MAX_CHECKIN_POINTS}, not {}",
                    m.days, m.points
                ));
            }
            if i > 0 && milestones[i - 1].days == m.days {
                return Err(format!("two milestones at {} days", m.days));
            }
        }
        if !(1..=31).contains(&makeup_window_days) {
            return Err(format!("makeup_window_days must be 1 to 31, not {makeup_window_days}"));
        }
        if !(0..=31).contains(&makeup_cards_per_month) {
            return Err(format!(
                "makeup_cards_per_month must be 0 to 31, not {makeup_cards_per_month}"
            ));
        }
        Ok(Self {
            base_points,
            milestones,
            makeup_window_days,
            makeup_cards_per_month,
        })
    }

    /// The first milestone a run of `streak` days has not reached yet.
    pub fn next_milestone(&self, streak: i32) -> Option<Milestone> {
        self.milestones.iter().copied().find(|m| m.days > streak)
    }

    /// Cards left this month, given the month the stored count belongs to.
    pub fn cards_left(&self, used_month: &str, used: i64, this_month: YearMonth) -> i64 {
        let used = if used_month == this_month.to_string() { used } else { 0 };
        (self.makeup_cards_per_month - used).max(0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DayKind {
    Checkin,
    Makeup,
}

impl DayKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DayKind::Checkin => "checkin",
            DayKind::Makeup => "makeup",
        }
    }

    pub fn parse(text: &str) -> Option<DayKind> {
        match text {
            "checkin" => Some(DayKind::Checkin),
            "makeup" => Some(DayKind::Makeup),
            _ => None,
        }
    }
}

/// The days a customer has (checked in or made up).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Days(BTreeMap<Date, DayKind>);

impl Days {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, date: Date, kind: DayKind) {
        self.0.insert(date, kind);
    }

    pub fn get(&self, date: Date) -> Option<DayKind> {
        self.0.get(&date).copied()
    }

    pub fn contains(&self, date: Date) -> bool {
        self.0.contains_key(&date)
    }

    pub fn iter(&self) -> impl Iterator<Item = (Date, DayKind)> + '_ {
        self.0.iter().map(|(d, k)| (*d, *k))
    }

    /// Length of the run of consecutive days ending at `date` (0 when `date` is absent).
    pub fn streak_ending(&self, date: Date) -> i32 {
        let mut length = 0;
        let mut day = date;
        while self.contains(day) {
            length += 1;
            match day.yesterday() {
                Ok(d) => day = d,
                Err(_) => break,
            }
        }
        length
    }

    /// The first and last day of the run containing `date`, if `date` is present.
    pub fn run_containing(&self, date: Date) -> Option<(Date, Date)> {
        if !self.contains(date) {
            return None;
        }
        let (mut start, mut end) = (date, date);
        while let Ok(d) = start.yesterday() {
            if !self.contains(d) {
                break;
            }
            start = d;
        }
        while let Ok(d) = end.tomorrow() {
            if !self.contains(d) {
                break;
            }
            end = d;
        }
        Some((start, end))
    }

    /// The streak the customer holds on `today`: the run ending today, or the run ending
    /// yesterday (still alive until today is over), else 0.
    pub fn current_streak(&self, today: Date) -> i32 {
        match self.streak_ending(today) {
            0 => today.yesterday().map(|y| self.streak_ending(y)).unwrap_or(0),
            n => n,
        }
    }

    /// The longest run ever.
    pub fn longest_streak(&self) -> i32 {
        let (mut longest, mut run, mut previous) = (0, 0, None::<Date>);
        for &date in self.0.keys() {
            run = match previous {
                Some(p) if p.tomorrow().ok() == Some(date) => run + 1,
                _ => 1,
            };
            longest = longest.max(run);
            previous = Some(date);
        }
        longest
    }
}

/// Why a customer is credited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RewardReason {
    /// The base points of a check-in.
    Base,
    /// A streak milestone of this many days.
    Streak(i32),
}

impl RewardReason {
    /// The stable name used in the ledger key (`{customer}:{date}:{reason}`) and the store.
    pub fn as_string(self) -> String {
        match self {
            RewardReason::Base => "base".to_owned(),
            RewardReason::Streak(days) => format!("streak-{days}"),
        }
    }

    pub fn parse(text: &str) -> Option<RewardReason> {
        if text == "base" {
            return Some(RewardReason::Base);
        }
        let days: i32 = text.strip_prefix("streak-")?.parse().ok()?;
        (days > 0).then_some(RewardReason::Streak(days))
    }

    /// What the customer reads in their points history.
    pub fn description(self, date: Date) -> String {
        match self {
            RewardReason::Base => format!("Daily check-in {date}"),
            RewardReason::Streak(days) => format!("{days}-day check-in streak reached {date}"),
        }
    }
}

/// A credit a check-in or make-up earned, dated on the day it is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reward {
    pub date: Date,
    pub reason: RewardReason,
    pub points: i64,
}

/// A milestone already paid (or planned), dated on the day the run reached it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaidMilestone {
    pub date: Date,
    pub days: i32,
}

/// What a check-in or make-up writes: its day, the streak at that day, and its rewards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub date: Date,
    pub kind: DayKind,
    /// Length of the run ending at `date` once the day is added.
    pub streak_after: i32,
    /// The customer's current streak once the day is added.
    pub current_streak: i32,
    pub rewards: Vec<Reward>,
}

impl Plan {
    pub fn points(&self) -> i64 {
        self.rewards.iter().map(|r| r.points).sum()
    }

    /// The longest milestone this plan pays, if any.
    pub fn milestone_reached(&self) -> Option<Milestone> {
        self.rewards
            .iter()
            .filter_map(|r| match r.reason {
                RewardReason::Streak(days) => Some(Milestone { days, points: r.points }),
                RewardReason::Base => None,
            })
            .max_by_key(|m| m.days)
    }
}

/// Why a check-in or make-up is refused; nothing is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0} is already checked in")]
    AlreadyCheckedIn(Date),
    #[error("{date} is not a past day; make-up cards fill days before today ({today})")]
    NotPast { date: Date, today: Date },
    #[error("{date} is more than {window} days ago; make-up cards reach back {window} days")]
    TooOld { date: Date, window: i32 },
    #[error("no make-up cards left this month")]
    NoCards,
}

/// Today's check-in.
pub fn plan_checkin(config: &CheckinConfig, days: &Days, paid: &[PaidMilestone], today: Date) -> Result<Plan, Refusal> {
    if days.contains(today) {
        return Err(Refusal::AlreadyCheckedIn(today));
    }
    let mut rewards = Vec::new();
    if config.base_points > 0 {
        rewards.push(Reward {
            date: today,
            reason: RewardReason::Base,
            points: config.base_points,
        });
    }
    Ok(plan(config, days, paid, today, today, DayKind::Checkin, rewards))
}

/// Whether `date` may be made up on `today` (ignoring cards and presence).
pub fn check_makeup_date(config: &CheckinConfig, date: Date, today: Date) -> Result<(), Refusal> {
    if date >= today {
        return Err(Refusal::NotPast { date, today });
    }
    let oldest = today.checked_sub(config.makeup_window_days.days()).unwrap_or(Date::MIN);
    if date < oldest {
        return Err(Refusal::TooOld {
            date,
            window: config.makeup_window_days,
        });
    }
    Ok(())
}

/// A make-up of a missed `date`, with `cards_left` cards this month.
pub fn plan_makeup(
    config: &CheckinConfig,
    days: &Days,
    paid: &[PaidMilestone],
    today: Date,
    date: Date,
    cards_left: i64,
) -> Result<Plan, Refusal> {
    check_makeup_date(config, date, today)?;
    if days.contains(date) {
        return Err(Refusal::AlreadyCheckedIn(date));
    }
    if cards_left <= 0 {
        return Err(Refusal::NoCards);
    }
    Ok(plan(config, days, paid, today, date, DayKind::Makeup, Vec::new()))
}

fn plan(
    config: &CheckinConfig,
    days: &Days,
    paid: &[PaidMilestone],
    today: Date,
    date: Date,
    kind: DayKind,
    mut rewards: Vec<Reward>,
) -> Plan {
    let mut after = days.clone();
    after.insert(date, kind);
    if let Some((start, end)) = after.run_containing(date) {
        rewards.extend(milestones_due(config, start, end, paid));
    }
    Plan {
        date,
        kind,
        streak_after: after.streak_ending(date),
        current_streak: after.current_streak(today),
        rewards,
    }
}

/// Milestones the run `start..=end` has reached and not yet been paid, each dated on the
/// day the run reached it.
pub fn milestones_due(config: &CheckinConfig, start: Date, end: Date, paid: &[PaidMilestone]) -> Vec<Reward> {
    let length = days_between(start, end) + 1;
    config
        .milestones
        .iter()
        .filter(|m| m.days > 0 && m.days <= length && m.points > 0)
        .filter(|m| {
            !paid
                .iter()
                .any(|p| p.days == m.days && start <= p.date && p.date <= end)
        })
        .filter_map(|m| {
            let date = start.checked_add((m.days - 1).days()).ok()?;
            Some(Reward {
                date,
                reason: RewardReason::Streak(m.days),
                points: m.points,
            })
        })
        .collect()
}

/// Whole days from `a` to `b` (negative when `b` is earlier).
pub fn days_between(a: Date, b: Date) -> i32 {
    b.since(a).map(|span| span.get_days()).unwrap_or(0)
}

/// Parses a strict `YYYY-MM-DD` calendar date.
pub fn parse_date(text: &str) -> Option<Date> {
    let b = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' || !digits(0..4) || !digits(5..7) || !digits(8..10) {
        return None;
    }
    let year: i16 = text[0..4].parse().ok()?;
    let month: i8 = text[5..7].parse().ok()?;
    let day: i8 = text[8..10].parse().ok()?;
    Date::new(year, month, day).ok()
}

/// A calendar month, `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct YearMonth {
    year: i16,
    month: i8,
}

impl YearMonth {
    pub fn of(date: Date) -> Self {
        Self {
            year: date.year(),
            month: date.month(),
        }
    }

    /// Parses a strict `YYYY-MM` between 1900 and 2999.
    pub fn parse(text: &str) -> Option<Self> {
        let b = text.as_bytes();
        if b.len() != 7 || b[4] != b'-' || !b[..4].iter().chain(&b[5..]).all(u8::is_ascii_digit) {
            return None;
        }
        let year: i16 = text[..4].parse().ok()?;
        let month: i8 = text[5..].parse().ok()?;
        ((1..=12).contains(&month) && (1900..=2999).contains(&year)).then_some(Self { year, month })
    }

    pub fn first_day(self) -> Date {
        Date::new(self.year, self.month, 1).unwrap_or(Date::MIN)
    }

    /// The date of `day` in this month; `None` when the month has no such day.
    pub fn day(self, day: i8) -> Option<Date> {
        Date::new(self.year, self.month, day).ok()
    }

    pub fn dates(self) -> impl Iterator<Item = Date> {
        let first = self.first_day();
        (1..=first.days_in_month()).filter_map(move |d| Date::new(self.year, self.month, d).ok())
    }
}

impl std::fmt::Display for YearMonth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// How a calendar day looks to the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayState {
    CheckedIn,
    MadeUp,
    Missed,
    /// Today, not checked in yet: not missed while the day lasts.
    Today,
    Future,
}

impl DayState {
    pub fn as_str(self) -> &'static str {
        match self {
            DayState::CheckedIn => "checked_in",
            DayState::MadeUp => "made_up",
            DayState::Missed => "missed",
            DayState::Today => "today",
            DayState::Future => "future",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CalendarDay {
    pub date: Date,
    pub state: DayState,
    /// A missed day a make-up card could fill now (in the window, cards left).
    pub makeup_eligible: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    pub month: YearMonth,
    pub days: Vec<CalendarDay>,
    pub current_streak: i32,
    pub longest_streak: i32,
}

/// The month as the customer sees it on `today`.
pub fn month_calendar(config: &CheckinConfig, days: &Days, month: YearMonth, today: Date, cards_left: i64) -> Calendar {
    let calendar_days = month
        .dates()
        .map(|date| {
            let state = match days.get(date) {
                Some(DayKind::Checkin) => DayState::CheckedIn,
                Some(DayKind::Makeup) => DayState::MadeUp,
                None if date > today => DayState::Future,
                None if date == today => DayState::Today,
                None => DayState::Missed,
            };
            let makeup_eligible =
                state == DayState::Missed && cards_left > 0 && check_makeup_date(config, date, today).is_ok();
            CalendarDay {
                date,
                state,
                makeup_eligible,
            }
        })
        .collect();
    Calendar {
        month,
        days: calendar_days,
        current_streak: days.current_streak(today),
        longest_streak: days.longest_streak(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use jiff::civil::date;
    use proptest::prelude::*;

    use super::*;

    fn day(n: i32) -> Date {
        date(2026, 1, 1).checked_add(n.days()).unwrap()
    }

    fn days_of(offsets: &[i32]) -> Days {
        let mut days = Days::new();
        for &n in offsets {
            days.insert(day(n), DayKind::Checkin);
        }
        days
    }

    #[test]
    fn the_local_date_follows_the_customers_time_zone() {
        // 2026-11-22 15:50 UTC is 23:50 in Shanghai; twenty minutes later it is the 23rd.
        let before: Timestamp = "2026-11-22T15:50:00Z".parse().unwrap();
        let after: Timestamp = "2026-11-22T16:10:00Z".parse().unwrap();
        let shanghai = time_zone("Asia/Shanghai");
        assert_eq!(local_date(before, &shanghai), date(2026, 11, 22));
        assert_eq!(local_date(after, &shanghai), date(2026, 11, 23));
        assert_eq!(local_date(after, &TimeZone::UTC), date(2026, 11, 22));
        assert_eq!(time_zone("Not/AZone"), time_zone(DEFAULT_TIME_ZONE));
    }

    #[test]
    fn streaks_cross_month_ends_and_leap_days() {
        let days = {
            let mut d = Days::new();
            for x in [date(2028, 2, 28), date(2028, 2, 29), date(2028, 3, 1)] {
                d.insert(x, DayKind::Checkin);
            }
            d
        };
        assert_eq!(days.streak_ending(date(2028, 3, 1)), 3);
        let mut jan = Days::new();
        jan.insert(date(2027, 1, 31), DayKind::Checkin);
        jan.insert(date(2027, 2, 1), DayKind::Checkin);
        assert_eq!(jan.current_streak(date(2027, 2, 1)), 2);
    }

    #[test]
    fn a_checkin_pays_the_base_and_the_milestone_it_reaches() {
        let config = CheckinConfig::default();
        let plan = plan_checkin(&config, &days_of(&[0, 1]), &[], day(2)).unwrap();
        assert_eq!(plan.streak_after, 3);
        assert_eq!(plan.points(), 11);
        assert_eq!(plan.milestone_reached(), Some(Milestone { days: 3, points: 10 }));
        assert_eq!(
            plan_checkin(&config, &days_of(&[2]), &[], day(2)),
            Err(Refusal::AlreadyCheckedIn(day(2)))
        );
    }

    #[test]
    fn a_broken_streak_restarts_at_one() {
        let plan = plan_checkin(&CheckinConfig::default(), &days_of(&[0, 1, 2]), &[], day(4)).unwrap();
        assert_eq!((plan.streak_after, plan.points()), (1, 1));
    }

    #[test]
    fn a_makeup_joins_two_runs_and_pays_only_unpaid_milestones() {
        let config = CheckinConfig::default();
        // Days 0-1 and 3-5; milestone 3 was paid on day 5 for the run 3..=5.
        let days = days_of(&[0, 1, 3, 4, 5]);
        let paid = [PaidMilestone { date: day(5), days: 3 }];
        let plan = plan_makeup(&config, &days, &paid, day(5), day(2), 2).unwrap();
        assert_eq!(plan.current_streak, 6);
        assert_eq!(plan.streak_after, 3);
        assert!(plan.rewards.is_empty(), "{plan:?}");
        // Joining to seven days pays the 7-day milestone, dated on the seventh day.
        let days = days_of(&[0, 1, 3, 4, 5, 6]);
        let plan = plan_makeup(&config, &days, &paid, day(6), day(2), 1).unwrap();
        assert_eq!(
            plan.rewards,
            vec![Reward {
                date: day(6),
                reason: RewardReason::Streak(7),
                points: 30
            }]
        );
    }

    #[test]
    fn makeups_are_refused_for_today_the_future_old_days_present_days_and_without_cards() {
        let config = CheckinConfig::default();
        let days = days_of(&[8]);
        let today = day(10);
        let refuse = |date, cards| plan_makeup(&config, &days, &[], today, date, cards).unwrap_err();
        assert!(matches!(refuse(day(10), 2), Refusal::NotPast { .. }));
        assert!(matches!(refuse(day(11), 2), Refusal::NotPast { .. }));
        assert!(matches!(refuse(day(2), 2), Refusal::TooOld { .. }));
        assert_eq!(refuse(day(8), 2), Refusal::AlreadyCheckedIn(day(8)));
        assert_eq!(refuse(day(9), 0), Refusal::NoCards);
        assert!(
            plan_makeup(&config, &days, &[], today, day(3), 1).is_ok(),
            "seven days ago is in the window"
        );
    }

    #[test]
    fn cards_reset_with_the_month() {
        let config = CheckinConfig::default();
        let nov = YearMonth::parse("2026-11").unwrap();
        assert_eq!(config.cards_left("2026-11", 1, nov), 1);
        assert_eq!(config.cards_left("2026-10", 2, nov), 2);
        assert_eq!(config.cards_left("", 0, nov), 2);
    }

    #[test]
    fn the_calendar_marks_each_day() {
        let config = CheckinConfig::default();
        let mut days = Days::new();
        days.insert(date(2026, 2, 1), DayKind::Checkin);
        days.insert(date(2026, 2, 2), DayKind::Makeup);
        days.insert(date(2026, 2, 3), DayKind::Checkin);
        let feb = YearMonth::parse("2026-02").unwrap();
        let cal = month_calendar(&config, &days, feb, date(2026, 2, 6), 1);
        let states: Vec<_> = cal.days.iter().take(7).map(|d| d.state).collect();
        use DayState::*;
        assert_eq!(states, [CheckedIn, MadeUp, CheckedIn, Missed, Missed, Today, Future]);
        assert_eq!(cal.days.len(), 28);
        assert!(cal.days[3].makeup_eligible);
        assert_eq!((cal.current_streak, cal.longest_streak), (0, 3));
    }

    #[test]
    fn dates_and_months_parse_strictly() {
        assert_eq!(parse_date("2028-02-29"), Some(date(2028, 2, 29)));
        for bad in [
            "2027-02-29",
            "2026-1-01",
            "2026-13-01",
            "26-01-01",
            "2026-01-01T00:00",
            "２０２６-01-01",
            "",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
        assert_eq!(YearMonth::parse("2028-02").unwrap().dates().count(), 29);
        for bad in ["2026-13", "2026-1", "1800-01", "2026/01", "2026-01-01"] {
            assert_eq!(YearMonth::parse(bad), None, "{bad}");
        }
        assert_eq!(RewardReason::parse("streak-7"), Some(RewardReason::Streak(7)));
        assert_eq!(
            RewardReason::parse(&RewardReason::Base.as_string()),
            Some(RewardReason::Base)
        );
    }

    #[test]
    fn a_month_names_its_days() {
        let feb = YearMonth::parse("2027-02").unwrap();
        assert_eq!(feb.day(28), Some(date(2027, 2, 28)));
        assert_eq!(feb.day(1), Some(feb.first_day()));
        assert_eq!(feb.day(29), None);
        assert_eq!(feb.day(0), None);
        assert_eq!(YearMonth::of(date(2027, 2, 10)).to_string(), "2027-02");
    }

    /// The naive definition: count back from `last` while days are present.
    fn naive_run_ending(set: &std::collections::BTreeSet<i32>, last: i32) -> i32 {
        (0..).take_while(|k| set.contains(&(last - k))).count() as i32
    }

    /// An action in a simulated history: check in on the next day after skipping some,
    /// or make up a day some way back.
    #[derive(Debug, Clone)]
    enum Action {
        Checkin { skip: i32 },
        Makeup { back: i32 },
    }

    fn action() -> impl Strategy<Value = Action> {
        prop_oneof![
            3 => (0..3i32).prop_map(|skip| Action::Checkin { skip }),
            1 => (1..9i32).prop_map(|back| Action::Makeup { back }),
        ]
    }

    proptest! {
        #[test]
        fn the_streak_is_the_run_ending_at_the_last_day(offsets in proptest::collection::btree_set(0..80i32, 1..40)) {
            let days = days_of(&offsets.iter().copied().collect::<Vec<_>>());
            let last = *offsets.iter().next_back().unwrap();
            prop_assert_eq!(days.streak_ending(day(last)), naive_run_ending(&offsets, last));
            prop_assert_eq!(days.current_streak(day(last)), naive_run_ending(&offsets, last));
            prop_assert_eq!(days.current_streak(day(last + 1)), naive_run_ending(&offsets, last));
            prop_assert_eq!(days.current_streak(day(last + 2)), 0);
            let longest = offsets.iter().map(|&d| naive_run_ending(&offsets, d)).max().unwrap();
            prop_assert_eq!(days.longest_streak(), longest);
        }

        #[test]
        fn checking_in_continues_only_from_yesterday(offsets in proptest::collection::btree_set(0..40i32, 0..20), gap in 1..4i32) {
            let days = days_of(&offsets.iter().copied().collect::<Vec<_>>());
            let last = offsets.iter().next_back().copied().unwrap_or(-10);
            let today = last + gap;
            let plan = plan_checkin(&CheckinConfig::default(), &days, &[], day(today)).unwrap();
            let expected = if gap == 1 { naive_run_ending(&offsets, last) + 1 } else { 1 };
            prop_assert_eq!(plan.streak_after, expected);
        }

        #[test]
        fn histories_keep_streaks_cards_and_milestones_honest(actions in proptest::collection::vec(action(), 1..60)) {
            let config = CheckinConfig { makeup_cards_per_month: i64::MAX, ..CheckinConfig::default() };
            let (mut days, mut paid, mut today) = (Days::new(), Vec::<PaidMilestone>::new(), day(0));
            let (mut checkins, mut cards_used) = (0, 0);
            for a in &actions {
                let result = match *a {
                    Action::Checkin { skip } => {
                        today = today.checked_add((skip + 1).days()).unwrap();
                        plan_checkin(&config, &days, &paid, today)
                    }
                    Action::Makeup { back } => {
                        let date = today.checked_sub(back.days()).unwrap();
                        plan_makeup(&config, &days, &paid, today, date, 1)
                    }
                };
                let Ok(plan) = result else { continue };
                match plan.kind {
                    DayKind::Checkin => checkins += 1,
                    DayKind::Makeup => cards_used += 1,
                }
                for r in &plan.rewards {
                    if let RewardReason::Streak(n) = r.reason {
                        // Never pays a milestone already paid inside the run it joins.
                        let (start, end) = {
                            let mut after = days.clone();
                            after.insert(plan.date, plan.kind);
                            after.run_containing(plan.date).unwrap()
                        };
                        prop_assert!(!paid.iter().any(|p| p.days == n && start <= p.date && p.date <= end));
                        prop_assert!(start <= r.date && r.date <= end);
                        paid.push(PaidMilestone { date: r.date, days: n });
                    }
                }
                days.insert(plan.date, plan.kind);
                prop_assert_eq!(plan.current_streak, days.current_streak(today));
                // A make-up never makes a streak longer than the days present plus the cards used.
                prop_assert!(i64::from(days.longest_streak()) <= checkins + cards_used);
            }
            // Every run that reached a milestone has been paid it, and at most once per
            // make-up that joined runs inside it (plus its own).
            let mut seen = std::collections::BTreeSet::new();
            for (date, _) in days.iter() {
                let (start, end) = days.run_containing(date).unwrap();
                if !seen.insert(start) { continue; }
                let length = days_between(start, end) + 1;
                let makeups = days.iter().filter(|(d, k)| *k == DayKind::Makeup && start <= *d && *d <= end).count();
                for m in &config.milestones {
                    let payments = paid.iter().filter(|p| p.days == m.days && start <= p.date && p.date <= end).count();
                    if m.days <= length {
                        prop_assert!(payments >= 1, "run {start}..{end} reached {} unpaid", m.days);
                    }
                    prop_assert!(payments <= makeups + 1);
                    if makeups == 0 { prop_assert!(payments <= 1); }
                }
            }
        }
    }

    #[test]
    fn a_configured_schedule_is_sorted_and_bad_ones_are_named() {
        let ok = CheckinConfig::new(
            2,
            vec![Milestone { days: 7, points: 30 }, Milestone { days: 2, points: 5 }],
            3,
            1,
        )
        .expect("valid");
        assert_eq!(ok.milestones.iter().map(|m| m.days).collect::<Vec<_>>(), [2, 7]);
        assert_eq!(ok.next_milestone(2), Some(Milestone { days: 7, points: 30 }));
        let bad = |base, ms: Vec<(i32, i64)>, window, cards| {
            CheckinConfig::new(
                base,
                ms.into_iter()
                    .map(|(days, points)| Milestone { days, points })
                    .collect(),
                window,
                cards,
            )
            .expect_err("refused")
        };
        assert!(bad(-1, vec![], 7, 2).contains("base_points"));
        assert!(bad(1, vec![(0, 5)], 7, 2).contains("days must be 1 to 366"));
        assert!(bad(1, vec![(3, -5)], 7, 2).contains("3-day milestone"));
        assert!(bad(1, vec![(3, 5), (3, 6)], 7, 2).contains("two milestones at 3 days"));
        assert!(bad(1, vec![], 0, 2).contains("makeup_window_days"));
        assert!(bad(1, vec![], 7, 99).contains("makeup_cards_per_month"));
        assert_eq!(
            CheckinConfig::new(1, CheckinConfig::default().milestones, 7, 2),
            Ok(CheckinConfig::default())
        );
    }
}
