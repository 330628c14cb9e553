//! The rules of rewards, with no SQL and no clock of their own: what a valid reward is,
//! when it can be claimed, how many a customer may hold, what a coupon code looks like,
//! how long a coupon stays valid, and what recovery does with a stale reservation given
//! the state of its ledger hold.

use std::{collections::BTreeMap, fmt};

use huoban_identity::Locale;
use huoban_ledger::TransferStatus;
use jiff::{SignedDuration, Timestamp};

/// Upper bounds that keep a mistyped campaign from becoming a liability.
pub const MAX_POINTS_PRICE: i64 = 10_000_000;
pub const MAX_TOTAL_STOCK: i64 = 10_000_000;
pub const MAX_PER_CUSTOMER: i64 = 100;
pub const MAX_VALID_DAYS: i64 = 3_650;
pub const MAX_TITLE_CHARS: usize = 100;

/// A reward as staff submit it, before it is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewardDraft {
    pub titles: BTreeMap<String, String>,
    pub points_price: i64,
    pub total_stock: i64,
    pub per_customer_limit: i64,
    pub claimable_from: Timestamp,
    pub claimable_until: Timestamp,
    pub coupon_valid_days: i64,
    pub campaign_id: Option<String>,
}

/// A reward that passed every rule; only [`NewReward::parse`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReward {
    titles: BTreeMap<String, String>,
    points_price: i64,
    total_stock: i64,
    per_customer_limit: i64,
    window: Window,
    coupon_valid_days: i64,
    campaign_id: Option<String>,
}

/// Why a draft is not a reward: the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {detail}")]
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

fn in_range(field: &'static str, value: i64, min: i64, max: i64) -> Result<i64, Invalid> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(invalid(field, format!("must be between {min} and {max}, got {value}")))
    }
}

/// Titles per locale (`zh-CN`, `zh-TW`, `en`), at least one, each 1 to
/// [`MAX_TITLE_CHARS`] characters once trimmed; the field is `titles`. Goal conversion
/// offers are titled the same way.
pub fn parse_titles(given: BTreeMap<String, String>) -> Result<BTreeMap<String, String>, Invalid> {
    if given.is_empty() {
        return Err(invalid("titles", "give a title in at least one locale"));
    }
    let mut titles = BTreeMap::new();
    for (locale, title) in given {
        let locale = Locale::parse(&locale).map_err(|e| invalid("titles", e))?;
        let title = title.trim();
        let chars = title.chars().count();
        if chars == 0 || chars > MAX_TITLE_CHARS {
            return Err(invalid(
                "titles",
                format!(
                    "the {} title must be 1 to {MAX_TITLE_CHARS} characters",
                    locale.as_str()
                ),
            ));
        }
        titles.insert(locale.as_str().to_owned(), title.to_owned());
    }
    Ok(titles)
}

/// A campaign id as staff typed it (trimmed): 1 to 64 visible ASCII characters, or none.
pub fn parse_campaign_id(id: Option<&str>) -> Result<Option<String>, Invalid> {
    match id.map(str::trim) {
        None => Ok(None),
        Some(id) if (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic()) => Ok(Some(id.to_owned())),
        Some(_) => Err(invalid("campaign_id", "a campaign id is 1 to 64 visible characters")),
    }
}

impl NewReward {
    pub fn parse(draft: RewardDraft) -> Result<Self, Invalid> {
        let titles = parse_titles(draft.titles)?;
        let points_price = in_range("points_price", draft.points_price, 1, MAX_POINTS_PRICE)?;
        let total_stock = in_range("total_stock", draft.total_stock, 1, MAX_TOTAL_STOCK)?;
        let per_customer_limit = in_range("per_customer_limit", draft.per_customer_limit, 1, MAX_PER_CUSTOMER)?;
        let coupon_valid_days = in_range("coupon_valid_days", draft.coupon_valid_days, 1, MAX_VALID_DAYS)?;
        if draft.claimable_until <= draft.claimable_from {
            return Err(invalid("claimable_until", "must be after claimable_from"));
        }
        let campaign_id = parse_campaign_id(draft.campaign_id.as_deref())?;
        Ok(Self {
            titles,
            points_price,
            total_stock,
            per_customer_limit,
            window: Window {
                from: draft.claimable_from,
                until: draft.claimable_until,
            },
            coupon_valid_days,
            campaign_id,
        })
    }

    pub fn titles(&self) -> &BTreeMap<String, String> {
        &self.titles
    }
    pub fn points_price(&self) -> i64 {
        self.points_price
    }
    pub fn total_stock(&self) -> i64 {
        self.total_stock
    }
    pub fn per_customer_limit(&self) -> i64 {
        self.per_customer_limit
    }
    pub fn window(&self) -> Window {
        self.window
    }
    pub fn coupon_valid_days(&self) -> i64 {
        self.coupon_valid_days
    }
    /// The campaign the reward belongs to, if any.
    pub fn campaign_id(&self) -> Option<&str> {
        self.campaign_id.as_deref()
    }
}

/// When a reward can be claimed: from `from` (inclusive) until `until` (exclusive), so
/// back-to-back flash sales never overlap by an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: Timestamp,
    pub until: Timestamp,
}

impl Window {
    pub fn is_open(&self, now: Timestamp) -> bool {
        self.from <= now && now < self.until
    }

    pub fn check(&self, now: Timestamp) -> Result<(), Refusal> {
        if now < self.from {
            Err(Refusal::NotYetOpen { from: self.from })
        } else if now >= self.until {
            Err(Refusal::Closed { until: self.until })
        } else {
            Ok(())
        }
    }
}

/// Why a claim is refused before anything is charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the reward can be claimed from {from}")]
    NotYetOpen { from: Timestamp },
    #[error("the reward could be claimed until {until}")]
    Closed { until: Timestamp },
    #[error("no stock is left")]
    OutOfStock,
    #[error("you already hold the most this reward allows per customer ({limit})")]
    LimitReached { limit: i64 },
}

/// A refusal that is sure from one consistent read of the stock and the customer's
/// holding, before anything is written: the same two guards, in the same order, as the
/// reservation's guarded writes (the customer's limit, then the stock, with reservations
/// counting as taken). So the read refuses exactly what the write would have refused at
/// the instant of the read; it can never let more through, because every claim it does
/// not refuse still passes the guarded writes. A reservation released after the read is
/// seen by the next read: nothing is cached.
pub fn sure_refusal(limit: i64, held: i64, total: i64, claimed: i64, reserved: i64) -> Option<Refusal> {
    if claims_left(limit, held) == 0 {
        Some(Refusal::LimitReached { limit })
    } else if stock_left(total, claimed, reserved) == 0 {
        Some(Refusal::OutOfStock)
    } else {
        None
    }
}

/// Claims a customer may still make: the limit less what they hold (reserved or claimed).
pub fn claims_left(limit: i64, held: i64) -> i64 {
    (limit - held).max(0)
}

/// Stock still claimable: reservations count as taken until they are released.
pub fn stock_left(total: i64, claimed: i64, reserved: i64) -> i64 {
    (total - claimed - reserved).max(0)
}

/// The instant a coupon claimed at `claimed_at` stops being valid.
pub fn coupon_valid_until(claimed_at: Timestamp, valid_days: i64) -> Timestamp {
    claimed_at
        .checked_add(SignedDuration::from_hours(valid_days.saturating_mul(24)))
        .unwrap_or(Timestamp::MAX)
}

/// The title to show in `locale`: that locale's, else Simplified Chinese, else English,
/// else any.
pub fn pick_title<'a>(titles: &'a BTreeMap<String, String>, locale: &str) -> &'a str {
    [locale, "zh-CN", "en"]
        .iter()
        .find_map(|l| titles.get(*l))
        .or_else(|| titles.values().next())
        .map_or("", String::as_str)
}

/// Crockford's base32: no I, L, O or U, so a code read aloud or typed from a screen is not
/// misread.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const CODE_PREFIX: &str = "HB";
const CODE_CHARS: usize = 12;

/// A coupon code, `HB-XXXX-XXXX-XXXX`: 60 random bits in Crockford base32. Unguessable
/// (codes are bearer values at the till) and short enough to read out.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CouponCode(String);

impl CouponCode {
    /// Formats the low 60 bits of `random`; the caller supplies the randomness.
    pub fn from_random(random: u64) -> Self {
        let mut chars = String::with_capacity(CODE_PREFIX.len() + CODE_CHARS + 3);
        chars.push_str(CODE_PREFIX);
        for i in 0..CODE_CHARS {
            if i % 4 == 0 {
                chars.push('-');
            }
            let shift = 5 * (CODE_CHARS - 1 - i);
            chars.push(char::from(CROCKFORD[((random >> shift) & 0x1f) as usize]));
        }
        Self(chars)
    }

    /// Accepts a code as a customer might type it: any case, with or without dashes.
    pub fn parse(text: &str) -> Option<Self> {
        let compact: String = text
            .chars()
            .filter(|c| *c != '-' && !c.is_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let body = compact.strip_prefix(CODE_PREFIX)?;
        if body.len() != CODE_CHARS || !body.bytes().all(|b| CROCKFORD.contains(&b)) {
            return None;
        }
        let mut value = 0u64;
        for b in body.bytes() {
            let digit = CROCKFORD.iter().position(|c| *c == b)? as u64;
            value = (value << 5) | digit;
        }
        Some(Self::from_random(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CouponCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a claim is in its life. `reserved` holds a unit of stock while the points are
/// held; it ends `claimed` (points posted, coupon issued) or `released` (stock returned,
/// nothing charged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimState {
    Reserved,
    Claimed,
    Released,
}

impl ClaimState {
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimState::Reserved => "reserved",
            ClaimState::Claimed => "claimed",
            ClaimState::Released => "released",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "reserved" => Some(ClaimState::Reserved),
            "claimed" => Some(ClaimState::Claimed),
            "released" => Some(ClaimState::Released),
            _ => None,
        }
    }
}

/// What to do with a stale reservation, decided by its ledger hold alone: the ledger
/// posts or voids a hold exactly once, so it is the one arbiter both a live request and
/// recovery can agree on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// The points were taken: issue the coupon.
    Finish,
    /// Nothing was or will be taken: return the stock.
    Release,
    /// The hold is still open: void it, then decide again from what the void answers.
    VoidFirst,
}

/// `None` is a hold the ledger has never seen (the request died before creating it).
pub fn recovery_for(hold: Option<TransferStatus>) -> Recovery {
    match hold {
        Some(TransferStatus::Posted) => Recovery::Finish,
        Some(TransferStatus::Voided) | None => Recovery::Release,
        Some(TransferStatus::Pending) => Recovery::VoidFirst,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn draft() -> RewardDraft {
        RewardDraft {
            titles: BTreeMap::from([("zh-CN".into(), "双十一咖啡券".into()), ("en".into(), "Coffee".into())]),
            points_price: 100,
            total_stock: 50,
            per_customer_limit: 1,
            claimable_from: ts("2026-11-11T00:00:00Z"),
            claimable_until: ts("2026-11-12T00:00:00Z"),
            coupon_valid_days: 30,
            campaign_id: None,
        }
    }

    #[test]
    fn a_sound_draft_becomes_a_reward() {
        let reward = NewReward::parse(draft()).expect("valid");
        assert_eq!(reward.points_price(), 100);
        assert_eq!(reward.titles().len(), 2);
    }

    /// A field name and a way to break it.
    type Breakage = (&'static str, Box<dyn Fn(&mut RewardDraft)>);

    #[test]
    fn every_broken_field_is_named() {
        let cases: Vec<Breakage> = vec![
            ("titles", Box::new(|d| d.titles.clear())),
            (
                "titles",
                Box::new(|d| {
                    d.titles.insert("fr".into(), "Café".into());
                }),
            ),
            (
                "titles",
                Box::new(|d| {
                    d.titles.insert("en".into(), "  ".into());
                }),
            ),
            (
                "titles",
                Box::new(|d| {
                    d.titles.insert("en".into(), "x".repeat(MAX_TITLE_CHARS + 1));
                }),
            ),
            ("points_price", Box::new(|d| d.points_price = 0)),
            ("total_stock", Box::new(|d| d.total_stock = -1)),
            (
                "per_customer_limit",
                Box::new(|d| d.per_customer_limit = MAX_PER_CUSTOMER + 1),
            ),
            ("coupon_valid_days", Box::new(|d| d.coupon_valid_days = 0)),
            ("claimable_until", Box::new(|d| d.claimable_until = d.claimable_from)),
            ("campaign_id", Box::new(|d| d.campaign_id = Some(" ".into()))),
            ("campaign_id", Box::new(|d| d.campaign_id = Some("x".repeat(65)))),
        ];
        for (field, breakit) in cases {
            let mut d = draft();
            breakit(&mut d);
            assert_eq!(NewReward::parse(d).err().map(|e| e.field), Some(field));
        }
    }

    #[test]
    fn the_window_includes_its_start_and_excludes_its_end() {
        let w = NewReward::parse(draft()).expect("valid").window();
        assert_eq!(
            w.check(ts("2026-11-10T23:59:59Z")),
            Err(Refusal::NotYetOpen { from: w.from })
        );
        assert!(w.check(w.from).is_ok());
        assert!(w.is_open(ts("2026-11-11T23:59:59Z")));
        assert_eq!(w.check(w.until), Err(Refusal::Closed { until: w.until }));
    }

    #[test]
    fn limits_and_stock_never_go_negative() {
        assert_eq!(claims_left(2, 0), 2);
        assert_eq!(claims_left(2, 2), 0);
        assert_eq!(claims_left(1, 3), 0);
        assert_eq!(stock_left(50, 30, 5), 15);
        assert_eq!(stock_left(50, 50, 0), 0);
    }

    #[test]
    fn sure_refusals_follow_the_write_guards_in_order() {
        assert_eq!(sure_refusal(1, 0, 50, 49, 0), None);
        assert_eq!(sure_refusal(1, 0, 50, 49, 1), Some(Refusal::OutOfStock));
        assert_eq!(sure_refusal(1, 0, 50, 50, 0), Some(Refusal::OutOfStock));
        // The limit is checked first, as the reservation checks it first.
        assert_eq!(sure_refusal(1, 1, 50, 50, 0), Some(Refusal::LimitReached { limit: 1 }));
        assert_eq!(sure_refusal(2, 1, 50, 10, 0), None);
        // A released reservation makes the unit claimable again.
        assert_eq!(sure_refusal(1, 0, 50, 49, 0), None);
    }

    #[test]
    fn a_coupon_is_valid_for_whole_days_after_the_claim() {
        assert_eq!(
            coupon_valid_until(ts("2026-11-11T08:00:00Z"), 30),
            ts("2026-12-11T08:00:00Z")
        );
    }

    #[test]
    fn titles_fall_back_to_chinese_then_english_then_any() {
        let mut titles = BTreeMap::from([("en".to_owned(), "Coffee".to_owned())]);
        assert_eq!(pick_title(&titles, "zh-TW"), "Coffee");
        titles.insert("zh-CN".into(), "咖啡".into());
        assert_eq!(pick_title(&titles, "zh-TW"), "咖啡");
        assert_eq!(pick_title(&titles, "en"), "Coffee");
        assert_eq!(pick_title(&BTreeMap::new(), "en"), "");
    }

    #[test]
    fn coupon_codes_are_readable_and_round_trip() {
        let code = CouponCode::from_random(0x0123_4567_89ab_cdef);
        let text = code.as_str();
        assert_eq!(text.len(), "HB-XXXX-XXXX-XXXX".len());
        assert!(text.starts_with("HB-"));
        assert!(!text.contains(['I', 'L', 'O', 'U']));
        assert_eq!(CouponCode::parse(text), Some(code.clone()));
        assert_eq!(CouponCode::parse(&text.to_lowercase().replace('-', "")), Some(code));
        assert_eq!(CouponCode::parse("HB-0000-0000-000"), None);
        assert_eq!(CouponCode::parse("HB-0000-0000-000U"), None);
        assert_eq!(CouponCode::parse("XX-0000-0000-0000"), None);
        // Different randomness, different code.
        assert_ne!(CouponCode::from_random(1), CouponCode::from_random(2));
    }

    #[test]
    fn claim_states_round_trip() {
        for s in [ClaimState::Reserved, ClaimState::Claimed, ClaimState::Released] {
            assert_eq!(ClaimState::parse(s.as_str()), Some(s));
        }
        assert_eq!(ClaimState::parse("lost"), None);
    }

    #[test]
    fn recovery_follows_the_ledger_hold() {
        assert_eq!(recovery_for(Some(TransferStatus::Posted)), Recovery::Finish);
        assert_eq!(recovery_for(Some(TransferStatus::Voided)), Recovery::Release);
        assert_eq!(recovery_for(None), Recovery::Release);
        assert_eq!(recovery_for(Some(TransferStatus::Pending)), Recovery::VoidFirst);
    }
}
