//! Customer sessions remembered in memory, so an authenticated request does not read its
//! session row every time.
//!
//! What may be remembered, and for how long:
//! - only **customer** sessions (staff sessions carry a role and an enabled flag that
//!   operators change; they are read every time);
//! - for at most `identity.session_cache_ms` (default 5 s) after the row was read; expiry
//!   is still checked against the session's `expires_at` on every request;
//! - a revocation on this node (sign out, sign out everywhere, erasure) forgets the
//!   session before the call returns;
//! - on PostgreSQL every revocation also sends a notification (`pg_notify` on
//!   [`CHANNEL`], in the revoking transaction) that every node's listener turns into the
//!   same forgetting; the cache is used only while that listener is connected, and is
//!   emptied whenever it reconnects (it may have missed notifications);
//! - on SQLite there is no such channel: several nodes on one file see another node's
//!   revocation within the age bound (one node, the usual SQLite deployment, at once).
//!
//! A read racing a revocation cannot put the revoked row back: every forgetting bumps a
//! generation, and a row read before it is not remembered after it.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use uuid::Uuid;

use crate::domain::Channel;

/// The PostgreSQL notification channel that carries revocations between nodes.
pub const CHANNEL: &str = "huoban_sessions";

/// At most this many sessions are remembered; past it, stale ones are dropped first, and
/// if all are fresh the cache starts over.
const MAX_ENTRIES: usize = 100_000;

/// What a remembered session says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cached {
    pub customer: Uuid,
    pub channel: Channel,
    /// Microseconds since the epoch, like the row.
    pub expires_at: i64,
}

/// The answer of [`SessionCache::get`].
#[derive(Debug)]
pub enum Lookup {
    Hit(Cached),
    /// Not remembered: read the row, then [`SessionCache::put`] it with this generation.
    Miss(u64),
}

/// A notification's payload: which sessions to forget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoked {
    /// One session, by its token hash.
    Token(String),
    /// Every session of a principal.
    Principal(String),
}

impl Revoked {
    pub fn payload(&self) -> String {
        match self {
            Revoked::Token(hash) => format!("t:{hash}"),
            Revoked::Principal(id) => format!("p:{id}"),
        }
    }

    pub fn parse(payload: &str) -> Option<Self> {
        match payload.split_once(':')? {
            ("t", hash) if !hash.is_empty() => Some(Revoked::Token(hash.to_owned())),
            ("p", id) if !id.is_empty() => Some(Revoked::Principal(id.to_owned())),
            _ => None,
        }
    }
}

#[derive(Debug)]
pub struct SessionCache {
    max_age: Duration,
    /// PostgreSQL: remember only while the revocation listener is connected.
    needs_listener: bool,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    generation: u64,
    listening: bool,
    entries: HashMap<String, (Cached, Instant)>,
}

impl SessionCache {
    pub fn new(max_age: Duration, needs_listener: bool) -> Self {
        Self {
            max_age,
            needs_listener,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn usable(&self, inner: &Inner) -> bool {
        !self.max_age.is_zero() && (!self.needs_listener || inner.listening)
    }

    pub fn get(&self, token_hash: &str) -> Lookup {
        let inner = self.lock();
        if self.usable(&inner)
            && let Some((cached, at)) = inner.entries.get(token_hash)
            && at.elapsed() < self.max_age
        {
            return Lookup::Hit(cached.clone());
        }
        Lookup::Miss(inner.generation)
    }

    /// Remembers a session read from the database, unless something was forgotten since
    /// the read began (`generation` from the [`Lookup::Miss`]).
    pub fn put(&self, token_hash: &str, cached: Cached, generation: u64) {
        let mut inner = self.lock();
        if !self.usable(&inner) || inner.generation != generation {
            return;
        }
        if inner.entries.len() >= MAX_ENTRIES {
            let max_age = self.max_age;
            inner.entries.retain(|_, (_, at)| at.elapsed() < max_age);
            if inner.entries.len() >= MAX_ENTRIES {
                inner.entries.clear();
            }
        }
        inner.entries.insert(token_hash.to_owned(), (cached, Instant::now()));
    }

    pub fn forget(&self, revoked: &Revoked) {
        let mut inner = self.lock();
        inner.generation += 1;
        match revoked {
            Revoked::Token(hash) => {
                inner.entries.remove(hash);
            }
            Revoked::Principal(id) => {
                let Ok(id) = Uuid::parse_str(id) else { return };
                inner.entries.retain(|_, (cached, _)| cached.customer != id);
            }
        }
    }

    /// The revocation listener connected (true) or lost its connection (false). Either
    /// way what was remembered is dropped: notifications may have been missed.
    pub fn listening(&self, on: bool) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.listening = on;
        inner.entries.clear();
    }

    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(customer: Uuid) -> Cached {
        Cached {
            customer,
            channel: Channel::H5,
            expires_at: i64::MAX,
        }
    }

    fn hit(cache: &SessionCache, hash: &str) -> Option<Cached> {
        match cache.get(hash) {
            Lookup::Hit(c) => Some(c),
            Lookup::Miss(_) => None,
        }
    }

    fn miss(cache: &SessionCache, hash: &str) -> u64 {
        match cache.get(hash) {
            Lookup::Miss(g) => g,
            Lookup::Hit(_) => panic!("{hash} should not be remembered"),
        }
    }

    #[test]
    fn a_session_is_remembered_until_it_is_forgotten() {
        let cache = SessionCache::new(Duration::from_secs(60), false);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let g = miss(&cache, "ta");
        cache.put("ta", session(a), g);
        cache.put("ta2", session(a), g);
        cache.put("tb", session(b), g);
        assert_eq!(hit(&cache, "ta"), Some(session(a)));
        cache.forget(&Revoked::Token("ta".into()));
        assert!(hit(&cache, "ta").is_none());
        assert!(hit(&cache, "ta2").is_some());
        cache.forget(&Revoked::Principal(a.to_string()));
        assert!(hit(&cache, "ta2").is_none());
        assert!(hit(&cache, "tb").is_some(), "another customer's session stays");
    }

    #[test]
    fn a_read_that_raced_a_revocation_is_not_remembered() {
        let cache = SessionCache::new(Duration::from_secs(60), false);
        let a = Uuid::new_v4();
        let before = miss(&cache, "ta");
        cache.forget(&Revoked::Principal(a.to_string()));
        cache.put("ta", session(a), before);
        assert!(hit(&cache, "ta").is_none());
    }

    #[test]
    fn nothing_is_remembered_past_the_age_bound_or_with_a_zero_bound() {
        let cache = SessionCache::new(Duration::from_millis(30), false);
        let g = miss(&cache, "ta");
        cache.put("ta", session(Uuid::new_v4()), g);
        assert!(hit(&cache, "ta").is_some());
        std::thread::sleep(Duration::from_millis(40));
        assert!(hit(&cache, "ta").is_none());

        let off = SessionCache::new(Duration::ZERO, false);
        let g = miss(&off, "ta");
        off.put("ta", session(Uuid::new_v4()), g);
        assert!(off.is_empty());
    }

    #[test]
    fn with_a_listener_to_wait_for_nothing_is_remembered_until_it_connects() {
        let cache = SessionCache::new(Duration::from_secs(60), true);
        let g = miss(&cache, "ta");
        cache.put("ta", session(Uuid::new_v4()), g);
        assert!(cache.is_empty());
        cache.listening(true);
        let g = miss(&cache, "ta");
        cache.put("ta", session(Uuid::new_v4()), g);
        assert!(hit(&cache, "ta").is_some());
        cache.listening(false);
        assert!(hit(&cache, "ta").is_none(), "a lost listener empties the cache");
    }

    #[test]
    fn payloads_round_trip_and_junk_is_ignored() {
        for r in [
            Revoked::Token("ab12".into()),
            Revoked::Principal(Uuid::new_v4().to_string()),
        ] {
            assert_eq!(Revoked::parse(&r.payload()), Some(r));
        }
        for junk in ["", "x:1", "t:", "p:", "nothing"] {
            assert_eq!(Revoked::parse(junk), None, "{junk}");
        }
    }
}
