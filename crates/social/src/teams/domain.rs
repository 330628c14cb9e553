//! The pure rules of team challenges. No I/O here.

use jiff::Timestamp;
use serde_json::{Map, Value};

use crate::{
    prize::{Prize, PrizeSpec},
    qualify,
};

pub const MIN_TEAM: i64 = 2;
pub const MAX_TEAM: i64 = 10;
/// Largest shared target.
pub const MAX_TARGET: i64 = 1_000_000;
/// Longest team name, in characters.
pub const MAX_TEAM_NAME: usize = 20;

/// A field at fault and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: &'static str,
    pub detail: String,
}

fn invalid(field: &'static str, detail: impl Into<String>) -> Invalid {
    Invalid {
        field,
        detail: detail.into(),
    }
}

/// Raw fields of a new challenge.
#[derive(Debug, Clone)]
pub struct ChallengeDraft {
    pub name: String,
    pub campaign_id: Option<String>,
    pub event_type: String,
    pub event_match: Map<String, Value>,
    pub target: i64,
    pub max_members: i64,
    pub reward: PrizeSpec,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
}

/// A checked challenge.
#[derive(Debug, Clone, PartialEq)]
pub struct ChallengeSpec {
    pub name: String,
    pub campaign_id: Option<String>,
    pub event_type: String,
    pub event_match: Map<String, Value>,
    pub target: i64,
    pub max_members: i64,
    pub prize: Prize,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
}

/// Name 1–100 characters, event type and match, target 1–[`MAX_TARGET`], team size
/// [`MIN_TEAM`]–[`MAX_TEAM`], exactly one prize, a period that ends after it starts.
pub fn check_challenge(d: ChallengeDraft) -> Result<ChallengeSpec, Invalid> {
    let name = d.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(invalid("name", "the name must be 1 to 100 characters"));
    }
    if let Some(c) = &d.campaign_id
        && (c.is_empty() || c.len() > 64)
    {
        return Err(invalid("campaign_id", "a campaign id is 1 to 64 characters"));
    }
    qualify::check_event_type(&d.event_type).map_err(|e| invalid("event_type", e))?;
    qualify::check_match(&d.event_match).map_err(|e| invalid("event_match", e))?;
    if !(1..=MAX_TARGET).contains(&d.target) {
        return Err(invalid("target", format!("the target must be 1 to {MAX_TARGET}")));
    }
    if !(MIN_TEAM..=MAX_TEAM).contains(&d.max_members) {
        return Err(invalid(
            "max_members",
            format!("a team has {MIN_TEAM} to {MAX_TEAM} members"),
        ));
    }
    let prize = Prize::from_spec(&d.reward).map_err(|e| invalid("reward", e))?;
    if d.ends_at <= d.starts_at {
        return Err(invalid("ends_at", "the challenge must end after it starts"));
    }
    Ok(ChallengeSpec {
        name,
        campaign_id: d.campaign_id,
        event_type: d.event_type,
        event_match: d.event_match,
        target: d.target,
        max_members: d.max_members,
        prize,
        starts_at: d.starts_at,
        ends_at: d.ends_at,
    })
}

/// A team name: trimmed, 1 to [`MAX_TEAM_NAME`] characters, no control characters.
pub fn check_team_name(name: &str) -> Result<String, Invalid> {
    let name = name.trim();
    let n = name.chars().count();
    if n == 0 || n > MAX_TEAM_NAME || name.chars().any(char::is_control) {
        return Err(invalid(
            "name",
            format!("a team name is 1 to {MAX_TEAM_NAME} characters"),
        ));
    }
    Ok(name.to_owned())
}

/// Why a customer may not create or join a team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    ChallengeEnded,
    AlreadyInTeam,
    TeamFull { max: i64 },
    TeamCompleted,
}

/// Teams form and join until the challenge ends (also before it starts).
pub fn check_open(ends_at: Timestamp, now: Timestamp) -> Result<(), Refusal> {
    if now >= ends_at {
        Err(Refusal::ChallengeEnded)
    } else {
        Ok(())
    }
}

/// What the join rules look at.
#[derive(Debug, Clone, Copy)]
pub struct Joining {
    pub already_in_team: bool,
    pub members: i64,
    pub max_members: i64,
    pub completed: bool,
}

pub fn check_join(j: &Joining) -> Result<(), Refusal> {
    if j.already_in_team {
        return Err(Refusal::AlreadyInTeam);
    }
    if j.completed {
        return Err(Refusal::TeamCompleted);
    }
    if j.members >= j.max_members {
        return Err(Refusal::TeamFull { max: j.max_members });
    }
    Ok(())
}

/// An event counts for a member when received inside the period and not before joining.
pub fn counts_at(at: i64, starts_at: i64, ends_at: i64, joined_at: i64) -> bool {
    at >= starts_at && at < ends_at && at >= joined_at
}

/// Progress as a percentage of the target, 0–100.
pub fn percent(progress: i64, target: i64) -> i64 {
    if target <= 0 {
        return 0;
    }
    (progress.min(target) * 100) / target
}

/// A team as the leaderboard orders it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub team_id: String,
    pub progress: i64,
    /// When it reached the target, if it did.
    pub completed_at: Option<i64>,
    pub created_at: i64,
}

/// Most progress first; among equals, the team that completed first, then the older
/// team. Returns ranks 1, 2, 3… (equal progress and completion share a rank).
pub fn rank(mut teams: Vec<Standing>) -> Vec<(i64, Standing)> {
    teams.sort_by(|a, b| {
        b.progress
            .cmp(&a.progress)
            .then_with(|| {
                a.completed_at
                    .unwrap_or(i64::MAX)
                    .cmp(&b.completed_at.unwrap_or(i64::MAX))
            })
            .then_with(|| a.created_at.cmp(&b.created_at))
            .then_with(|| a.team_id.cmp(&b.team_id))
    });
    let mut out: Vec<(i64, Standing)> = Vec::with_capacity(teams.len());
    for (i, t) in teams.into_iter().enumerate() {
        let rank = match out.last() {
            Some((r, prev)) if prev.progress == t.progress && prev.completed_at == t.completed_at => *r,
            _ => i as i64 + 1,
        };
        out.push((rank, t));
    }
    out
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;

    use super::*;

    fn draft() -> ChallengeDraft {
        let now = Timestamp::now();
        ChallengeDraft {
            name: "30 天绿色出行打卡".into(),
            campaign_id: Some("spring-festival".into()),
            event_type: "green_trip".into(),
            event_match: Map::new(),
            target: 60,
            max_members: 5,
            reward: PrizeSpec {
                points: Some(200),
                reward_id: None,
            },
            starts_at: now,
            ends_at: now + SignedDuration::from_hours(24 * 30),
        }
    }

    #[test]
    fn a_challenge_is_checked_field_by_field() {
        assert!(check_challenge(draft()).is_ok());
        let field = |d: ChallengeDraft| check_challenge(d).expect_err("invalid").field;
        assert_eq!(
            field(ChallengeDraft {
                max_members: 1,
                ..draft()
            }),
            "max_members"
        );
        assert_eq!(
            field(ChallengeDraft {
                max_members: 11,
                ..draft()
            }),
            "max_members"
        );
        assert_eq!(field(ChallengeDraft { target: 0, ..draft() }), "target");
        assert_eq!(
            field(ChallengeDraft {
                name: "".into(),
                ..draft()
            }),
            "name"
        );
        let d = draft();
        assert_eq!(
            field(ChallengeDraft {
                ends_at: d.starts_at,
                ..d
            }),
            "ends_at"
        );
        assert_eq!(check_team_name("  绿色先锋队 "), Ok("绿色先锋队".into()));
        assert!(check_team_name("").is_err());
        assert!(check_team_name(&"长".repeat(21)).is_err());
    }

    #[test]
    fn joining_is_refused_when_in_a_team_completed_or_full() {
        let ok = Joining {
            already_in_team: false,
            members: 1,
            max_members: 2,
            completed: false,
        };
        assert_eq!(check_join(&ok), Ok(()));
        assert_eq!(
            check_join(&Joining {
                already_in_team: true,
                ..ok
            }),
            Err(Refusal::AlreadyInTeam)
        );
        assert_eq!(
            check_join(&Joining { members: 2, ..ok }),
            Err(Refusal::TeamFull { max: 2 })
        );
        assert_eq!(
            check_join(&Joining { completed: true, ..ok }),
            Err(Refusal::TeamCompleted)
        );
        let now = Timestamp::now();
        assert_eq!(check_open(now, now), Err(Refusal::ChallengeEnded));
        assert!(counts_at(10, 5, 20, 10));
        assert!(!counts_at(9, 5, 20, 10), "before joining");
        assert!(!counts_at(20, 5, 20, 10), "after the period");
        assert_eq!(percent(30, 60), 50);
        assert_eq!(percent(90, 60), 100);
    }

    #[test]
    fn the_leaderboard_puts_progress_then_earlier_completion_first() {
        let s = |id: &str, progress, completed_at, created_at| Standing {
            team_id: id.into(),
            progress,
            completed_at,
            created_at,
        };
        let ranked = rank(vec![
            s("slow", 3, None, 1),
            s("late-finisher", 10, Some(50), 2),
            s("early-finisher", 10, Some(40), 3),
            s("tie-a", 5, None, 4),
            s("tie-b", 5, None, 5),
        ]);
        let order: Vec<(i64, &str)> = ranked.iter().map(|(r, t)| (*r, t.team_id.as_str())).collect();
        assert_eq!(
            order,
            vec![
                (1, "early-finisher"),
                (2, "late-finisher"),
                (3, "tie-a"),
                (3, "tie-b"),
                (5, "slow")
            ]
        );
    }
}
