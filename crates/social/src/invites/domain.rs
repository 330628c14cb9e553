//! The pure rules of invites: a valid programme, invite codes and links, who may accept a
//! code, and progress toward the unlock. No I/O here.

use jiff::Timestamp;
use rand::Rng;
use serde_json::{Map, Value};

use crate::{
    prize::{Prize, PrizeSpec},
    qualify,
};

/// Most friends a programme may ask for.
pub const MAX_UNLOCK_COUNT: i64 = 100;
/// Most invitees one inviter may bring into a programme.
pub const MAX_INVITEES: i64 = 1_000;
/// Invite codes: 8 characters from an alphabet without look-alikes (0/O, 1/I/L).
pub const CODE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
pub const CODE_LEN: usize = 8;
/// The H5 page an invite link opens.
pub const INVITE_PAGE: &str = "/h5/invite";
/// Longest device id accepted in `X-Device-Id`.
pub const MAX_DEVICE_ID_LEN: usize = 128;

/// A programme as staff define it, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgrammeSpec {
    pub name: String,
    pub campaign_id: Option<String>,
    pub event_type: String,
    pub event_match: Map<String, Value>,
    pub unlock_count: i64,
    pub max_invitees: i64,
    pub prize: Prize,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
}

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

/// Raw fields of a new programme, as parsed from the request.
#[derive(Debug, Clone)]
pub struct ProgrammeDraft {
    pub name: String,
    pub campaign_id: Option<String>,
    pub event_type: String,
    pub event_match: Map<String, Value>,
    pub unlock_count: i64,
    pub max_invitees: Option<i64>,
    pub reward: PrizeSpec,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
}

/// Checks a draft: name 1–100 characters, event type and match, unlock count
/// 1–[`MAX_UNLOCK_COUNT`], cap at least the unlock count (default 10× it, at most
/// [`MAX_INVITEES`]), exactly one prize, a window that ends after it starts.
pub fn check_programme(d: ProgrammeDraft) -> Result<ProgrammeSpec, Invalid> {
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
    if !(1..=MAX_UNLOCK_COUNT).contains(&d.unlock_count) {
        return Err(invalid(
            "unlock_count",
            format!("the unlock count must be 1 to {MAX_UNLOCK_COUNT}"),
        ));
    }
    let max_invitees = d.max_invitees.unwrap_or((d.unlock_count * 10).min(MAX_INVITEES));
    if !(d.unlock_count..=MAX_INVITEES).contains(&max_invitees) {
        return Err(invalid(
            "max_invitees",
            format!("the cap per inviter must be from the unlock count to {MAX_INVITEES}"),
        ));
    }
    let prize = Prize::from_spec(&d.reward).map_err(|e| invalid("reward", e))?;
    if d.ends_at <= d.starts_at {
        return Err(invalid("ends_at", "the programme must end after it starts"));
    }
    Ok(ProgrammeSpec {
        name,
        campaign_id: d.campaign_id,
        event_type: d.event_type,
        event_match: d.event_match,
        unlock_count: d.unlock_count,
        max_invitees,
        prize,
        starts_at: d.starts_at,
        ends_at: d.ends_at,
    })
}

/// Where a programme stands at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    NotStarted,
    Live,
    Ended,
}

pub fn window(starts_at: Timestamp, ends_at: Timestamp, now: Timestamp) -> Window {
    if now < starts_at {
        Window::NotStarted
    } else if now < ends_at {
        Window::Live
    } else {
        Window::Ended
    }
}

/// A fresh random invite code.
pub fn new_code(rng: &mut impl Rng) -> String {
    (0..CODE_LEN)
        .map(|_| char::from(CODE_ALPHABET[rng.random_range(0..CODE_ALPHABET.len())]))
        .collect()
}

/// A code as a customer may type it: trimmed, upper-cased; `None` if it cannot be one.
pub fn normalize_code(code: &str) -> Option<String> {
    let code = code.trim().to_ascii_uppercase();
    (code.len() == CODE_LEN && code.bytes().all(|b| CODE_ALPHABET.contains(&b))).then_some(code)
}

/// The invite link for `code` under `base` (`https://bank.example`, no trailing slash).
pub fn link(base: &str, code: &str) -> String {
    format!("{}{INVITE_PAGE}?code={code}", base.trim_end_matches('/'))
}

/// A device id from `X-Device-Id`: 1 to 128 visible ASCII characters.
pub fn check_device_id(device: Option<&str>) -> Option<String> {
    let d = device?.trim();
    (!d.is_empty() && d.len() <= MAX_DEVICE_ID_LEN && d.bytes().all(|b| b.is_ascii_graphic())).then(|| d.to_owned())
}

/// Why a customer may not accept a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    SelfInvite,
    /// Registered before the code was issued: not a new customer.
    NotNew,
    /// Already attributed to an inviter in this programme.
    AlreadyAttributed,
    DeviceReused,
    CapReached {
        cap: i64,
    },
    ProgrammeNotStarted,
    ProgrammeEnded,
}

/// What the acceptance rules look at.
#[derive(Debug, Clone, Copy)]
pub struct Acceptance {
    pub inviter_is_invitee: bool,
    pub invitee_registered_at: Timestamp,
    pub code_issued_at: Timestamp,
    pub window: Window,
    pub already_attributed: bool,
    pub device_used: bool,
    pub accepted: i64,
    pub cap: i64,
}

/// The guards in the order a customer should hear them.
pub fn check_acceptance(a: &Acceptance) -> Result<(), Refusal> {
    match a.window {
        Window::NotStarted => return Err(Refusal::ProgrammeNotStarted),
        Window::Ended => return Err(Refusal::ProgrammeEnded),
        Window::Live => {}
    }
    if a.inviter_is_invitee {
        return Err(Refusal::SelfInvite);
    }
    if a.already_attributed {
        return Err(Refusal::AlreadyAttributed);
    }
    if a.invitee_registered_at < a.code_issued_at {
        return Err(Refusal::NotNew);
    }
    if a.device_used {
        return Err(Refusal::DeviceReused);
    }
    if a.accepted >= a.cap {
        return Err(Refusal::CapReached { cap: a.cap });
    }
    Ok(())
}

/// "2 of 3": qualified friends toward the unlock, capped at the unlock count.
pub fn progress_text(qualified: i64, unlock_count: i64) -> String {
    format!("{} of {unlock_count}", qualified.min(unlock_count))
}

/// True when this qualification is the one that reaches the unlock count.
pub fn unlocks(qualified_after: i64, unlock_count: i64) -> bool {
    qualified_after == unlock_count
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;
    use rand::SeedableRng;

    use super::*;

    fn draft() -> ProgrammeDraft {
        let now = Timestamp::now();
        ProgrammeDraft {
            name: "邀请三位好友完成理财测试".into(),
            campaign_id: None,
            event_type: "questionnaire_completed".into(),
            event_match: qualify::parse_match(r#"{"questionnaire_id":"risk-appetite"}"#),
            unlock_count: 3,
            max_invitees: None,
            reward: PrizeSpec {
                points: Some(500),
                reward_id: None,
            },
            starts_at: now,
            ends_at: now + SignedDuration::from_hours(24),
        }
    }

    #[test]
    fn a_programme_is_checked_field_by_field() {
        let ok = check_programme(draft()).expect("valid");
        assert_eq!(ok.max_invitees, 30, "default cap is ten times the unlock count");
        let field = |d: ProgrammeDraft| check_programme(d).expect_err("invalid").field;
        assert_eq!(
            field(ProgrammeDraft {
                name: " ".into(),
                ..draft()
            }),
            "name"
        );
        assert_eq!(
            field(ProgrammeDraft {
                unlock_count: 0,
                ..draft()
            }),
            "unlock_count"
        );
        assert_eq!(
            field(ProgrammeDraft {
                max_invitees: Some(2),
                ..draft()
            }),
            "max_invitees"
        );
        assert_eq!(
            field(ProgrammeDraft {
                event_type: "Bad Type".into(),
                ..draft()
            }),
            "event_type"
        );
        let d = draft();
        assert_eq!(
            field(ProgrammeDraft {
                ends_at: d.starts_at,
                ..d
            }),
            "ends_at"
        );
        let both = PrizeSpec {
            points: Some(1),
            reward_id: Some(uuid::Uuid::now_v7()),
        };
        assert_eq!(
            field(ProgrammeDraft {
                reward: both,
                ..draft()
            }),
            "reward"
        );
    }

    #[test]
    fn codes_are_unambiguous_and_typed_codes_normalised() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let code = new_code(&mut rng);
        assert_eq!(code.len(), CODE_LEN);
        assert_eq!(
            normalize_code(&format!(" {} ", code.to_lowercase())),
            Some(code.clone())
        );
        assert_eq!(normalize_code("ABC"), None);
        assert_eq!(normalize_code("OOOOOOOO"), None, "O is not in the alphabet");
        assert_eq!(
            link("https://bank.example/", &code),
            format!("https://bank.example/h5/invite?code={code}")
        );
    }

    #[test]
    fn the_guards_refuse_in_order() {
        let t = Timestamp::now();
        let ok = Acceptance {
            inviter_is_invitee: false,
            invitee_registered_at: t,
            code_issued_at: t,
            window: Window::Live,
            already_attributed: false,
            device_used: false,
            accepted: 0,
            cap: 3,
        };
        assert_eq!(check_acceptance(&ok), Ok(()));
        let check = |a: Acceptance| check_acceptance(&a).expect_err("refused");
        assert_eq!(
            check(Acceptance {
                inviter_is_invitee: true,
                ..ok
            }),
            Refusal::SelfInvite
        );
        assert_eq!(
            check(Acceptance {
                invitee_registered_at: t - SignedDuration::from_secs(1),
                ..ok
            }),
            Refusal::NotNew
        );
        assert_eq!(
            check(Acceptance {
                already_attributed: true,
                ..ok
            }),
            Refusal::AlreadyAttributed
        );
        assert_eq!(
            check(Acceptance {
                device_used: true,
                ..ok
            }),
            Refusal::DeviceReused
        );
        assert_eq!(check(Acceptance { accepted: 3, ..ok }), Refusal::CapReached { cap: 3 });
        assert_eq!(
            check(Acceptance {
                window: Window::Ended,
                inviter_is_invitee: true,
                ..ok
            }),
            Refusal::ProgrammeEnded
        );
        assert_eq!(check_device_id(Some(" dev-1 ")), Some("dev-1".into()));
        assert_eq!(check_device_id(Some("")), None);
        assert_eq!(check_device_id(None), None);
    }

    #[test]
    fn progress_reads_two_of_three_and_unlocks_once() {
        assert_eq!(progress_text(2, 3), "2 of 3");
        assert_eq!(progress_text(5, 3), "3 of 3");
        assert!(!unlocks(2, 3));
        assert!(unlocks(3, 3));
        assert!(!unlocks(4, 3));
    }
}
