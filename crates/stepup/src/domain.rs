//! The rules of step-up authentication, pure: which factors exist, what a purpose and a
//! PIN may look like, when a factor locks and unlocks, one-time codes (RFC 4226 HOTP and
//! RFC 6238 TOTP over HMAC-SHA1, base32 secrets, `otpauth://` URIs), sent-code digests
//! compared in constant time, and the refusals every flow answers with.

use hmac::{Hmac, KeyInit, Mac};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Consecutive failures a factor tolerates: the fifth locks it (PSD2 RTS Art. 4(3)(b)).
pub const MAX_FAILURES: i64 = 5;
/// Lifetime of a challenge (and of a code sent for it).
pub const CHALLENGE_TTL: SignedDuration = SignedDuration::from_secs(300);
/// Lifetime of a step-up token.
pub const TOKEN_TTL: SignedDuration = SignedDuration::from_secs(300);
/// TOTP time step (RFC 6238 default).
pub const TOTP_STEP_SECS: i64 = 30;
/// Digits of every one-time code.
pub const CODE_DIGITS: u32 = 6;

/// A way to prove it is really the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Factor {
    /// The 6-digit transaction PIN.
    Pin,
    /// A code from an authenticator app (RFC 6238).
    Totp,
    /// A code sent to the customer through the configured sender (SMS in production,
    /// the outbox in the demo).
    Sms,
    /// A passkey (WebAuthn), the "biometric" factor.
    Passkey,
}

impl Factor {
    pub const ALL: [Factor; 4] = [Factor::Pin, Factor::Totp, Factor::Sms, Factor::Passkey];

    pub fn as_str(self) -> &'static str {
        match self {
            Factor::Pin => "pin",
            Factor::Totp => "totp",
            Factor::Sms => "sms",
            Factor::Passkey => "passkey",
        }
    }

    pub fn parse(s: &str) -> Option<Factor> {
        Factor::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// Why a step-up request is refused. Each maps to one stable problem slug.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    ChallengeNotFound,
    ChallengeExpired,
    ChallengeAlreadyVerified,
    /// The factor's proof was wrong; `remaining` attempts before it locks.
    Incorrect {
        factor: Factor,
        remaining: i64,
    },
    CodeExpired,
    CodeAlreadyUsed,
    Locked {
        factor: Factor,
        retry_after_secs: i64,
    },
    NotEnrolled(Factor),
    /// The body lacks the proof the challenge's factor needs (`pin`, `code`, `credential`).
    ProofMissing(&'static str),
    OldPinRequired,
    PinFormat,
    PinTooSimple,
    InvalidPurpose,
    InvalidReference,
    TotpAlreadyEnrolled,
    TotpNotStarted,
    TokenInvalid,
    TokenUsed,
    TokenExpired,
    TokenWrongPurpose,
}

/// A purpose is a short slug (`transfer`, `card-lost`): 1–64 of `a-z 0-9 - _`, starting
/// with a letter.
pub fn check_purpose(purpose: &str) -> Result<(), Refusal> {
    let ok = (1..=64).contains(&purpose.len())
        && purpose.starts_with(|c: char| c.is_ascii_lowercase())
        && purpose
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok { Ok(()) } else { Err(Refusal::InvalidPurpose) }
}

/// A reference (the transfer or operation the step-up is for) is 1–128 printable characters.
pub fn check_reference(reference: &str) -> Result<(), Refusal> {
    if (1..=128).contains(&reference.chars().count()) && !reference.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(Refusal::InvalidReference)
    }
}

/// A transaction PIN is exactly six ASCII digits and not guessable: not one digit
/// repeated (000000), not a run up or down (123456, 987654, wrapping 890123), not a
/// repeated pair or triple (121212, 123123).
pub fn check_new_pin(pin: &str) -> Result<(), Refusal> {
    let digits: Vec<i32> = pin.bytes().map(|b| i32::from(b) - i32::from(b'0')).collect();
    if digits.len() != 6 || digits.iter().any(|d| !(0..=9).contains(d)) {
        return Err(Refusal::PinFormat);
    }
    let steps: Vec<i32> = digits.windows(2).map(|w| (w[1] - w[0]).rem_euclid(10)).collect();
    let run = steps.iter().all(|s| *s == steps[0]) && matches!(steps[0], 0 | 1 | 9);
    let pairs = digits.chunks(2).all(|c| c == &digits[0..2]);
    let triples = digits[0..3] == digits[3..6];
    if run || pairs || triples {
        return Err(Refusal::PinTooSimple);
    }
    Ok(())
}

/// The failure counter of one factor of one customer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FailureState {
    pub failures: i64,
    pub locked_until: Option<Timestamp>,
}

/// Where a factor stands now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockState {
    Open { remaining: i64 },
    Locked { until: Timestamp },
}

impl FailureState {
    /// A lock whose cool-down has passed is open again with a fresh count.
    pub fn at(self, now: Timestamp) -> LockState {
        match self.locked_until {
            Some(until) if until > now => LockState::Locked { until },
            Some(_) => LockState::Open {
                remaining: MAX_FAILURES,
            },
            None => LockState::Open {
                remaining: (MAX_FAILURES - self.failures).max(0),
            },
        }
    }
}

/// Refuses when the factor is locked.
pub fn ensure_open(factor: Factor, state: FailureState, now: Timestamp) -> Result<i64, Refusal> {
    match state.at(now) {
        LockState::Open { remaining } => Ok(remaining),
        LockState::Locked { until } => Err(Refusal::Locked {
            factor,
            retry_after_secs: retry_after(until, now),
        }),
    }
}

/// Whole seconds until `until`, at least 1.
pub fn retry_after(until: Timestamp, now: Timestamp) -> i64 {
    let micros = until.as_microsecond() - now.as_microsecond();
    ((micros + 999_999) / 1_000_000).max(1)
}

/// What a failure (already counted: `failures` includes it) means: the refusal to answer
/// and, when this failure locks the factor, until when.
pub fn after_failure(
    factor: Factor,
    failures: i64,
    now: Timestamp,
    cool_down: SignedDuration,
) -> (Refusal, Option<Timestamp>) {
    if failures >= MAX_FAILURES {
        let until = now.saturating_add(cool_down).unwrap_or(now);
        (
            Refusal::Locked {
                factor,
                retry_after_secs: retry_after(until, now),
            },
            Some(until),
        )
    } else {
        (
            Refusal::Incorrect {
                factor,
                remaining: MAX_FAILURES - failures,
            },
            None,
        )
    }
}

/// Where a challenge stands when a proof arrives for it.
pub fn check_challenge(factor: Factor, expires_at: Timestamp, verified: bool, now: Timestamp) -> Result<(), Refusal> {
    if verified {
        return Err(if factor == Factor::Sms {
            Refusal::CodeAlreadyUsed
        } else {
            Refusal::ChallengeAlreadyVerified
        });
    }
    if now >= expires_at {
        return Err(if factor == Factor::Sms {
            Refusal::CodeExpired
        } else {
            Refusal::ChallengeExpired
        });
    }
    Ok(())
}

/// Why a token could not be redeemed, from the stored row (or its absence).
pub fn token_refusal(stored: Option<(&str, Timestamp, bool)>, purpose: &str, now: Timestamp) -> Refusal {
    match stored {
        None => Refusal::TokenInvalid,
        Some((_, _, true)) => Refusal::TokenUsed,
        Some((p, _, _)) if p != purpose => Refusal::TokenWrongPurpose,
        Some((_, expires, _)) if now >= expires => Refusal::TokenExpired,
        // Redeemed concurrently between the attempt and this read.
        Some(_) => Refusal::TokenUsed,
    }
}

// ---- one-time codes -------------------------------------------------------------

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding (the form authenticator apps take).
pub fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            out.push(BASE32[((buffer >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(BASE32[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.bytes().filter(|c| *c != b'=') {
        let value = BASE32.iter().position(|x| *x == c.to_ascii_uppercase())? as u32;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            out.push(((buffer >> (bits - 8)) & 0xff) as u8);
            bits -= 8;
        }
    }
    Some(out)
}

/// RFC 4226 HOTP: the six-digit code for `counter`.
pub fn hotp(secret: &[u8], counter: u64) -> u32 {
    let Ok(mut mac) = <Hmac<Sha1> as KeyInit>::new_from_slice(secret) else {
        return u32::MAX; // HMAC takes keys of any length; never happens.
    };
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[digest.len() - 1] & 0x0f);
    let binary = (u32::from(digest[offset]) & 0x7f) << 24
        | u32::from(digest[offset + 1]) << 16
        | u32::from(digest[offset + 2]) << 8
        | u32::from(digest[offset + 3]);
    binary % 10u32.pow(CODE_DIGITS)
}

/// The TOTP time step of an instant.
pub fn totp_step(now: Timestamp) -> i64 {
    now.as_second().div_euclid(TOTP_STEP_SECS)
}

/// The TOTP code of an instant, zero-padded (what an authenticator app shows).
pub fn totp_code(secret: &[u8], now: Timestamp) -> String {
    format!("{:06}", hotp(secret, totp_step(now).max(0) as u64))
}

/// Outcome of checking a TOTP code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpCheck {
    /// Matches this step, never used before.
    Fresh(i64),
    /// Matches a step at or before the last one accepted: a replay.
    Replayed,
    Wrong,
}

/// Checks a code against the current step and one step either side (clock drift), in
/// constant time per candidate; `last_used` is the last step accepted, so a code is good
/// once.
pub fn check_totp(secret: &[u8], code: &str, now: Timestamp, last_used: Option<i64>) -> TotpCheck {
    let current = totp_step(now);
    let mut matched = None;
    for step in [current - 1, current, current + 1] {
        if step < 0 {
            continue;
        }
        let expected = format!("{:06}", hotp(secret, step as u64));
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
            matched = Some(step);
        }
    }
    match matched {
        None => TotpCheck::Wrong,
        Some(step) if last_used.is_some_and(|last| step <= last) => TotpCheck::Replayed,
        Some(step) => TotpCheck::Fresh(step),
    }
}

/// The enrolment URI authenticator apps read from a QR code
/// (`otpauth://totp/Issuer:label?secret=…&issuer=…`).
pub fn otpauth_uri(issuer: &str, label: &str, secret_b32: &str) -> String {
    fn escape(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
                other => format!("%{other:02X}"),
            })
            .collect()
    }
    format!(
        "otpauth://totp/{}:{}?secret={secret_b32}&issuer={}&algorithm=SHA1&digits={CODE_DIGITS}&period={TOTP_STEP_SECS}",
        escape(issuer),
        escape(label),
        escape(issuer)
    )
}

/// A sent code is stored only as SHA-256 over the challenge id and the code, so the
/// database never holds it and a digest is useless for another challenge.
pub fn code_digest(challenge_id: &str, code: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(challenge_id.as_bytes());
    hasher.update(b":");
    hasher.update(code.as_bytes());
    hex::encode(hasher.finalize())
}

/// Constant-time comparison of two digests.
pub fn digests_match(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Looks like a code at all: six ASCII digits.
pub fn is_code_shaped(code: &str) -> bool {
    code.len() == CODE_DIGITS as usize && code.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn rfc_6238_test_vectors_for_sha1() {
        // RFC 6238 appendix B, SHA1 seed "12345678901234567890", last 6 of the 8 digits.
        let secret = b"12345678901234567890";
        for (time, code) in [
            (59, "287082"),
            (1111111109, "081804"),
            (1111111111, "050471"),
            (1234567890, "005924"),
            (2000000000, "279037"),
        ] {
            assert_eq!(totp_code(secret, ts(time)), code, "time {time}");
        }
    }

    #[test]
    fn rfc_4226_hotp_vectors() {
        let secret = b"12345678901234567890";
        let expected = [755224, 287082, 359152, 969429, 338314];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(hotp(secret, counter as u64), *code);
        }
    }

    #[test]
    fn a_totp_code_is_good_once_and_within_one_step() {
        let secret = b"12345678901234567890";
        let now = ts(1111111111);
        let code = totp_code(secret, now);
        let step = totp_step(now);
        assert_eq!(check_totp(secret, &code, now, None), TotpCheck::Fresh(step));
        assert_eq!(check_totp(secret, &code, now, Some(step)), TotpCheck::Replayed);
        assert_eq!(
            check_totp(secret, &code, ts(1111111111 + 30), None),
            TotpCheck::Fresh(step)
        );
        assert_eq!(check_totp(secret, &code, ts(1111111111 + 95), None), TotpCheck::Wrong);
        assert_eq!(check_totp(secret, "000000", now, None), TotpCheck::Wrong);
    }

    #[test]
    fn base32_round_trips() {
        assert_eq!(base32_encode(b"foobar"), "MZXW6YTBOI");
        for len in 0..25 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(base32_decode(&base32_encode(&bytes)), Some(bytes));
        }
        assert_eq!(base32_decode("not base32!"), None);
    }

    #[test]
    fn trivial_pins_are_refused() {
        for pin in [
            "123456", "000000", "999999", "654321", "890123", "121212", "123123", "987654",
        ] {
            assert_eq!(check_new_pin(pin), Err(Refusal::PinTooSimple), "{pin}");
        }
        for pin in ["12345", "1234567", "12a456", "", "１２３４５６"] {
            assert_eq!(check_new_pin(pin), Err(Refusal::PinFormat), "{pin}");
        }
        for pin in ["271828", "314159", "102938", "558213"] {
            assert_eq!(check_new_pin(pin), Ok(()), "{pin}");
        }
    }

    #[test]
    fn the_fifth_failure_locks_for_the_cool_down_then_the_count_restarts() {
        let now = ts(1_000_000);
        let cool = SignedDuration::from_mins(15);
        for failures in 1..MAX_FAILURES {
            let (refusal, lock) = after_failure(Factor::Pin, failures, now, cool);
            assert_eq!(
                refusal,
                Refusal::Incorrect {
                    factor: Factor::Pin,
                    remaining: MAX_FAILURES - failures
                }
            );
            assert_eq!(lock, None);
        }
        let (refusal, lock) = after_failure(Factor::Pin, MAX_FAILURES, now, cool);
        assert_eq!(
            refusal,
            Refusal::Locked {
                factor: Factor::Pin,
                retry_after_secs: 900
            }
        );
        let state = FailureState {
            failures: 5,
            locked_until: lock,
        };
        assert!(ensure_open(Factor::Pin, state, ts(1_000_899)).is_err());
        assert_eq!(ensure_open(Factor::Pin, state, ts(1_000_900)), Ok(MAX_FAILURES));
    }

    #[test]
    fn purposes_and_references() {
        assert!(check_purpose("transfer").is_ok());
        assert!(check_purpose("card-lost_2").is_ok());
        for bad in ["", "Transfer", "1x", "a b", &"x".repeat(65)] {
            assert!(check_purpose(bad).is_err(), "{bad}");
        }
        assert!(check_reference("tr-1").is_ok());
        assert!(check_reference("").is_err());
        assert!(check_reference("a\nb").is_err());
    }

    #[test]
    fn challenges_and_tokens_refuse_for_the_right_reason() {
        let now = ts(100);
        assert_eq!(check_challenge(Factor::Pin, ts(200), false, now), Ok(()));
        assert_eq!(
            check_challenge(Factor::Pin, ts(100), false, now),
            Err(Refusal::ChallengeExpired)
        );
        assert_eq!(
            check_challenge(Factor::Sms, ts(50), false, now),
            Err(Refusal::CodeExpired)
        );
        assert_eq!(
            check_challenge(Factor::Sms, ts(200), true, now),
            Err(Refusal::CodeAlreadyUsed)
        );
        assert_eq!(
            check_challenge(Factor::Pin, ts(200), true, now),
            Err(Refusal::ChallengeAlreadyVerified)
        );
        assert_eq!(token_refusal(None, "transfer", now), Refusal::TokenInvalid);
        assert_eq!(
            token_refusal(Some(("transfer", ts(200), true)), "transfer", now),
            Refusal::TokenUsed
        );
        assert_eq!(
            token_refusal(Some(("transfer", ts(200), false)), "card-lost", now),
            Refusal::TokenWrongPurpose
        );
        assert_eq!(
            token_refusal(Some(("transfer", ts(50), false)), "transfer", now),
            Refusal::TokenExpired
        );
    }

    #[test]
    fn code_digests_are_bound_to_their_challenge() {
        let a = code_digest("c1", "123456");
        assert!(digests_match(&a, &code_digest("c1", "123456")));
        assert!(!digests_match(&a, &code_digest("c2", "123456")));
        assert!(!digests_match(&a, &code_digest("c1", "123457")));
        assert!(otpauth_uri("Huoban", "138 0000", "ABC").starts_with("otpauth://totp/Huoban:138%200000?secret=ABC"));
    }
}
