//! Customers' risk facts kept in memory, so that most checked transfers read nothing from
//! the database about the customer.
//!
//! What is kept per customer: a [`Snapshot`] of the facts as of their stamp version (see
//! [`crate::store`]: every write that changes them raises it, on any node, in the same
//! transaction), plus the outcomes this node decided whose records the group-commit
//! recorder has not written yet ([`Delta`]s). The facts a decision sees are the snapshot
//! with those deltas applied, so this node's own transfers count at once (velocity, new
//! payees, amounts), before their records are durable. The snapshot also holds the keys
//! of the customer's decisions that were not a plain allow (step-ups, refusals, holds,
//! delays), so a retry gets the same answer without asking the database.
//!
//! How long a snapshot is trusted (the database stays the truth):
//! - a snapshot whose stamp was confirmed within `max_age` (`risk.facts_max_age_ms`) is
//!   used as it is ([`FactsCache::fresh`]); older, the transfer reads the stamp (with its
//!   key's earlier decision, one indexed read) and re-reads the facts only if it moved.
//!   With `max_age` 0 every transfer reads the stamp;
//! - this node's own writes drop the snapshot at once ([`FactsCache::invalidate`]);
//! - when the recorder commits a group, the new version is compared with the snapshot's:
//!   one step up means only this group changed the customer, so its deltas are folded in;
//!   anything else (another node wrote too) drops the snapshot;
//! - the service re-checks against the database anything a cached snapshot would refuse,
//!   hold, delay or ask a step-up for, so only a plain allow is ever decided on facts up to
//!   `max_age` old — another node's freeze or device removal reaches this node within it.

use std::{
    collections::HashMap,
    sync::{
        Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
};

use uuid::Uuid;

use crate::{
    domain::GeoPoint,
    store::{DecisionRow, DeviceRow, Facts, Learned, ProfileRow, Snapshot},
};

/// Customers whose snapshots are kept; beyond this, snapshots without unwritten outcomes
/// are dropped (and read again when needed).
const MAX_CUSTOMERS: usize = 100_000;

/// One outcome this node decided for a transfer, as it changes the facts.
#[derive(Debug, Clone)]
pub struct Delta {
    pub decision: Uuid,
    pub at: i64,
    pub anomaly: bool,
    pub clean: bool,
    pub learned: Learned,
    /// A held or delayed transfer's decision, by its key: a retry must get it back.
    pub keyed: Option<DecisionRow>,
}

/// The windows a decision counts recent things in (from the policy in force).
#[derive(Debug, Clone, Copy)]
pub struct Windows {
    pub failures_since: i64,
    pub operations_since: i64,
    pub anomalies_since: i64,
    /// Recent operations are counted up to this (the velocity threshold).
    pub operations_cap: u32,
}

/// What the cache can say about a customer's facts.
#[derive(Debug)]
pub enum Lookup {
    Hit(Facts),
    /// The facts are known, but the payee is not in the (partial) payee set: look it up.
    PayeeUnknown(Facts),
    /// Read the facts again.
    Miss,
}

#[derive(Debug)]
struct Entry {
    snapshot: Snapshot,
    policy_version: i64,
    operations_cap: u32,
    /// When the snapshot's version was last confirmed against the database (micros).
    checked_at: i64,
}

#[derive(Debug, Default)]
struct State {
    entry: Option<Entry>,
    unwritten: Vec<Delta>,
}

#[derive(Debug, Default)]
pub struct FactsCache {
    customers: Mutex<HashMap<Uuid, State>>,
    fresh: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// How transfers found their customers' facts since start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct FactsStats {
    /// Decided on a snapshot still within its max age, reading nothing.
    pub fresh: u64,
    /// Found in memory (fresh, or confirmed by reading the stamp).
    pub from_memory: u64,
    /// Read again from the database.
    pub read_again: u64,
}

impl FactsCache {
    fn lock(&self) -> MutexGuard<'_, HashMap<Uuid, State>> {
        self.customers.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn stats(&self) -> FactsStats {
        FactsStats {
            fresh: self.fresh.load(Ordering::Relaxed),
            from_memory: self.hits.load(Ordering::Relaxed),
            read_again: self.misses.load(Ordering::Relaxed),
        }
    }

    /// The customer's facts if the kept snapshot is at `stamp` (or newer) under
    /// `policy_version`.
    pub fn lookup(
        &self,
        customer: Uuid,
        stamp: i64,
        policy_version: i64,
        w: &Windows,
        device: Option<&str>,
        payee: Option<&str>,
    ) -> Lookup {
        let found = self.find(customer, stamp, policy_version, w, device, payee);
        let counter = if matches!(found, Lookup::Miss) {
            &self.misses
        } else {
            &self.hits
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// [`Self::lookup`] without counting it (right after a snapshot was read and put).
    pub fn find(
        &self,
        customer: Uuid,
        stamp: i64,
        policy_version: i64,
        w: &Windows,
        device: Option<&str>,
        payee: Option<&str>,
    ) -> Lookup {
        let map = self.lock();
        let Some(state) = map.get(&customer) else {
            return Lookup::Miss;
        };
        let Some(entry) = &state.entry else {
            return Lookup::Miss;
        };
        // A snapshot newer than the stamp is as good: it moved only by this node's own
        // commits folded in, or by a later read.
        if entry.snapshot.version < stamp
            || entry.policy_version != policy_version
            || entry.operations_cap < w.operations_cap
        {
            return Lookup::Miss;
        }
        let (facts, payee_found) = effective(customer, &entry.snapshot, &state.unwritten, w, device, payee);
        match payee {
            Some(_) if !payee_found && !entry.snapshot.payees_complete => Lookup::PayeeUnknown(facts),
            _ => Lookup::Hit(facts),
        }
    }

    /// The kept snapshot's version when it was confirmed less than `max_age` micros before
    /// `now`: a transfer may then be decided without reading the stamp.
    pub fn fresh(&self, customer: Uuid, now: i64, max_age: i64) -> Option<i64> {
        if max_age <= 0 {
            return None;
        }
        let map = self.lock();
        let entry = map.get(&customer)?.entry.as_ref()?;
        let fresh = (now - entry.checked_at < max_age).then_some(entry.snapshot.version);
        if fresh.is_some() {
            self.fresh.fetch_add(1, Ordering::Relaxed);
        }
        fresh
    }

    /// The database showed `stamp` at `now`: a snapshot at that version is confirmed.
    pub fn confirm(&self, customer: Uuid, stamp: i64, now: i64) {
        if let Some(entry) = self.lock().get_mut(&customer).and_then(|s| s.entry.as_mut())
            && entry.snapshot.version == stamp
        {
            entry.checked_at = entry.checked_at.max(now);
        }
    }

    /// The decision already made for the key, as far as the kept snapshot knows: `None`
    /// when it cannot tell (no snapshot, or too many keyed decisions to keep), `Some(None)`
    /// when there was none that was not a plain allow (a plain allow is the ledger's to
    /// replay).
    pub fn earlier(&self, customer: Uuid, key: &str) -> Option<Option<DecisionRow>> {
        let map = self.lock();
        let state = map.get(&customer)?;
        let entry = state.entry.as_ref()?;
        if let Some(row) = state
            .unwritten
            .iter()
            .filter_map(|d| d.keyed.as_ref())
            .find(|r| r.op_key.as_deref() == Some(key))
        {
            return Some(Some(row.clone()));
        }
        match entry.snapshot.keyed.get(key) {
            Some(row) => Some(Some(row.clone())),
            None if entry.snapshot.keyed_complete => Some(None),
            None => None,
        }
    }

    /// Drops the customer's snapshot (this node just changed their facts); outcomes not
    /// yet written stay counted.
    pub fn invalidate(&self, customer: Uuid) {
        if let Some(state) = self.lock().get_mut(&customer) {
            state.entry = None;
        }
    }

    /// Keeps a snapshot read at `now` under `policy_version` (unless a newer one is kept).
    pub fn put(&self, customer: Uuid, snapshot: Snapshot, policy_version: i64, operations_cap: u32, now: i64) {
        let mut map = self.lock();
        if map.len() >= MAX_CUSTOMERS && !map.contains_key(&customer) {
            map.retain(|_, s| {
                s.entry = None;
                !s.unwritten.is_empty()
            });
        }
        let state = map.entry(customer).or_default();
        if state
            .entry
            .as_ref()
            .is_some_and(|e| e.snapshot.version > snapshot.version)
        {
            return;
        }
        state.entry = Some(Entry {
            snapshot,
            policy_version,
            operations_cap,
            checked_at: now,
        });
    }

    /// An outcome this node decided, before its record is handed to the recorder.
    pub fn unwritten(&self, customer: Uuid, delta: Delta) {
        self.lock().entry(customer).or_default().unwritten.push(delta);
    }

    /// The recorder committed `decisions` of the customer, raising their stamp to
    /// `version`.
    pub fn written(&self, customer: Uuid, decisions: &[Uuid], version: i64) {
        let mut map = self.lock();
        let Some(state) = map.get_mut(&customer) else {
            return;
        };
        let mut done = Vec::new();
        state.unwritten.retain(|d| {
            if decisions.contains(&d.decision) {
                done.push(d.clone());
                false
            } else {
                true
            }
        });
        let Some(entry) = &mut state.entry else {
            return;
        };
        // Only this group changed the customer since the snapshot, and every outcome in
        // it is one we know the effect of (a sign-in's is not kept here): fold them in.
        if entry.snapshot.version + 1 == version && done.len() == decisions.len() {
            let customer_id = customer.to_string();
            for d in &done {
                fold(&mut entry.snapshot, &customer_id, d, entry.operations_cap);
            }
            entry.snapshot.version = version;
        } else if entry.snapshot.version < version {
            state.entry = None;
        }
    }

    /// The recorder could not write these decisions: forget their effects.
    pub fn dropped(&self, customer: Uuid, decisions: &[Uuid]) {
        let mut map = self.lock();
        if let Some(state) = map.get_mut(&customer) {
            state.unwritten.retain(|d| !decisions.contains(&d.decision));
        }
    }

    /// Forgets everything kept about the customer (their data was erased).
    pub fn forget(&self, customer: Uuid) {
        self.lock().remove(&customer);
    }
}

fn geo_micro(g: GeoPoint) -> (i64, i64) {
    ((g.lat * 1e6) as i64, (g.lon * 1e6) as i64)
}

/// What a recorded outcome does to the profile row (as the recorder's upsert does).
fn apply_profile(profile: &mut Option<ProfileRow>, customer: &str, d: &Delta) {
    let p = profile.get_or_insert_with(|| ProfileRow {
        customer_id: customer.to_owned(),
        first_seen: d.at,
        ..ProfileRow::default()
    });
    if let Some(g) = d.learned.geo {
        let (lat, lon) = geo_micro(g);
        p.last_lat = Some(lat);
        p.last_lon = Some(lon);
        p.last_geo_at = Some(d.at);
    }
    if let Some(a) = d.learned.amount {
        p.amount_count += 1;
        p.amount_sum += a;
        p.amount_max = p.amount_max.max(a);
    }
    p.clean_ops += i64::from(d.clean);
    p.step_ups += i64::from(d.learned.step_up);
}

/// Counts the outcome in its hour of the day, if it learned one.
fn bump_hour(hour_counts: &mut [u32], d: &Delta) {
    if let Some(slot) = d
        .learned
        .hour
        .and_then(|h| usize::try_from(h).ok())
        .and_then(|h| hour_counts.get_mut(h))
    {
        *slot = slot.saturating_add(1);
    }
}

/// Folds a written outcome into the snapshot.
fn fold(s: &mut Snapshot, customer: &str, d: &Delta, cap: u32) {
    apply_profile(&mut s.profile, customer, d);
    bump_hour(&mut s.hour_counts, d);
    if let Some(p) = &d.learned.payee {
        s.payees.insert(p.clone());
    }
    if let Some((dev, _)) = &d.learned.device {
        let trusted = s.devices.entry(dev.clone()).or_insert(false);
        *trusted |= d.learned.step_up;
    }
    // Every outcome the recorder writes is a transfer decision: it counts for velocity.
    s.operations.push(d.at);
    s.operations.sort_unstable_by(|a, b| b.cmp(a));
    s.operations.truncate(cap as usize);
    if d.anomaly {
        s.anomalies.push(d.at);
    }
    if let Some(row) = &d.keyed
        && let Some(key) = &row.op_key
    {
        s.keyed.insert(key.clone(), row.clone());
    }
}

/// The facts a decision sees: the snapshot with the unwritten outcomes applied. Returns
/// whether the payee was found.
fn effective(
    customer: Uuid,
    s: &Snapshot,
    unwritten: &[Delta],
    w: &Windows,
    device: Option<&str>,
    payee: Option<&str>,
) -> (Facts, bool) {
    let customer_id = customer.to_string();
    let mut profile = s.profile.clone();
    let mut hour_counts = s.hour_counts.clone();
    let mut device_trusted = device.and_then(|d| s.devices.get(d).copied());
    let mut payee_found = payee.is_some_and(|p| s.payees.contains(p));
    let count = |times: &[i64], since: i64| times.iter().filter(|t| **t >= since).count();
    let mut operations = count(&s.operations, w.operations_since);
    let mut anomalies = count(&s.anomalies, w.anomalies_since);
    for d in unwritten {
        apply_profile(&mut profile, &customer_id, d);
        bump_hour(&mut hour_counts, d);
        if let (Some(want), Some((dev, _))) = (device, &d.learned.device)
            && dev == want
        {
            device_trusted = Some(device_trusted.unwrap_or(false) || d.learned.step_up);
        }
        payee_found |= payee.is_some() && d.learned.payee.as_deref() == payee;
        operations += usize::from(d.at >= w.operations_since);
        anomalies += usize::from(d.anomaly && d.at >= w.anomalies_since);
    }
    let n = |x: usize| u32::try_from(x).unwrap_or(u32::MAX);
    let facts = Facts {
        profile,
        device: device.zip(device_trusted).map(|(d, trusted)| DeviceRow {
            customer_id: customer_id.clone(),
            device_id: d.to_owned(),
            fingerprint: String::new(),
            first_seen: 0,
            last_seen: 0,
            trusted: i64::from(trusted),
        }),
        hour_counts,
        payee_known: payee.map(|_| payee_found),
        recent_failures: n(count(&s.failures, w.failures_since)),
        recent_operations: n(operations).min(w.operations_cap),
        recent_anomalies: n(anomalies).min(100),
    };
    (facts, payee_found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows() -> Windows {
        Windows {
            failures_since: 100,
            operations_since: 100,
            anomalies_since: 0,
            operations_cap: 3,
        }
    }

    fn delta(at: i64, payee: &str) -> Delta {
        Delta {
            decision: Uuid::now_v7(),
            at,
            anomaly: false,
            clean: true,
            learned: Learned {
                amount: Some(500),
                hour: Some(9),
                geo: None,
                payee: Some(payee.to_owned()),
                device: Some(("phone".to_owned(), "fp".to_owned())),
                step_up: false,
            },
            keyed: None,
        }
    }

    fn snapshot(version: i64) -> Snapshot {
        Snapshot {
            version,
            hour_counts: vec![0; 24],
            payees_complete: true,
            keyed_complete: true,
            failures: vec![50, 150],
            operations: vec![120, 90],
            ..Snapshot::default()
        }
    }

    #[test]
    fn a_snapshot_serves_only_its_own_version_and_policy() {
        let cache = FactsCache::default();
        let c = Uuid::now_v7();
        assert!(matches!(cache.lookup(c, 0, 0, &windows(), None, None), Lookup::Miss));
        cache.put(c, snapshot(4), 1, 3, 0);
        let Lookup::Hit(f) = cache.lookup(c, 4, 1, &windows(), Some("phone"), Some("payee")) else {
            panic!("hit expected");
        };
        assert_eq!(f.recent_failures, 1, "only failures inside the window");
        assert_eq!(f.recent_operations, 1);
        assert!(f.device.is_none());
        assert_eq!(f.payee_known, Some(false));
        assert!(
            matches!(cache.lookup(c, 5, 1, &windows(), None, None), Lookup::Miss),
            "moved stamp"
        );
        assert!(
            matches!(cache.lookup(c, 4, 2, &windows(), None, None), Lookup::Miss),
            "new policy"
        );
    }

    #[test]
    fn unwritten_outcomes_count_at_once_and_fold_in_when_written() {
        let cache = FactsCache::default();
        let c = Uuid::now_v7();
        cache.put(c, snapshot(4), 1, 3, 0);
        let (d1, d2) = (delta(200, "p1"), delta(210, "p2"));
        cache.unwritten(c, d1.clone());
        cache.unwritten(c, d2.clone());
        let Lookup::Hit(f) = cache.lookup(c, 4, 1, &windows(), Some("phone"), Some("p2")) else {
            panic!("hit expected");
        };
        assert_eq!(f.recent_operations, 3, "capped at the threshold");
        assert_eq!(f.payee_known, Some(true));
        assert_eq!(f.device.map(|d| d.trusted), Some(0));
        assert_eq!(
            f.profile.as_ref().map(|p| (p.amount_count, p.amount_sum)),
            Some((2, 1000))
        );
        assert_eq!(f.hour_counts[9], 2);
        // Written in one group, raising the stamp by one: folded in, same facts at 5.
        cache.written(c, &[d1.decision, d2.decision], 5);
        let Lookup::Hit(g) = cache.lookup(c, 5, 1, &windows(), Some("phone"), Some("p2")) else {
            panic!("hit expected after the fold");
        };
        assert_eq!(g.recent_operations, 3);
        assert_eq!(g.profile, f.profile);
        assert_eq!(g.hour_counts, f.hour_counts);
        assert_eq!(g.payee_known, Some(true));
    }

    #[test]
    fn another_writer_in_between_drops_the_snapshot_but_not_the_unwritten() {
        let cache = FactsCache::default();
        let c = Uuid::now_v7();
        cache.put(c, snapshot(4), 1, 3, 0);
        let (d1, d2) = (delta(200, "p1"), delta(210, "p2"));
        cache.unwritten(c, d1.clone());
        cache.unwritten(c, d2.clone());
        // Another node wrote version 5; our group became 6.
        cache.written(c, &[d1.decision], 6);
        assert!(matches!(cache.lookup(c, 6, 1, &windows(), None, None), Lookup::Miss));
        // Read again: the unwritten d2 still counts on top of the fresh snapshot.
        let mut fresh = snapshot(6);
        fresh.operations = vec![200];
        cache.put(c, fresh, 1, 3, 0);
        let Lookup::Hit(f) = cache.lookup(c, 6, 1, &windows(), None, Some("p2")) else {
            panic!("hit expected");
        };
        assert_eq!(f.recent_operations, 2);
        assert_eq!(f.payee_known, Some(true));
        // A write failed: its effect is forgotten.
        cache.dropped(c, &[d2.decision]);
        let Lookup::Hit(g) = cache.lookup(c, 6, 1, &windows(), None, Some("p2")) else {
            panic!("hit expected");
        };
        assert_eq!(g.recent_operations, 1);
        assert_eq!(g.payee_known, Some(false));
    }

    #[test]
    fn a_snapshot_is_trusted_for_max_age_after_it_was_confirmed() {
        let cache = FactsCache::default();
        let c = Uuid::now_v7();
        assert_eq!(cache.fresh(c, 0, 250), None, "nothing kept");
        cache.put(c, snapshot(4), 1, 3, 1_000);
        assert_eq!(cache.fresh(c, 1_100, 250), Some(4));
        assert_eq!(cache.fresh(c, 1_250, 250), None, "too old");
        assert_eq!(cache.fresh(c, 1_100, 0), None, "max age 0: always read");
        cache.confirm(c, 5, 2_000);
        assert_eq!(cache.fresh(c, 2_100, 250), None, "another version does not confirm it");
        cache.confirm(c, 4, 2_000);
        assert_eq!(cache.fresh(c, 2_100, 250), Some(4));
        cache.invalidate(c);
        assert_eq!(cache.fresh(c, 2_100, 250), None);
    }

    #[test]
    fn keyed_decisions_answer_retries_from_memory() {
        let cache = FactsCache::default();
        let c = Uuid::now_v7();
        assert!(cache.earlier(c, "k").is_none(), "unknown without a snapshot");
        cache.put(c, snapshot(4), 1, 3, 0);
        assert_eq!(
            cache.earlier(c, "k").map(|r| r.is_none()),
            Some(true),
            "known to be new"
        );
        let mut held = delta(300, "p");
        held.keyed = Some(DecisionRow {
            id: held.decision.to_string(),
            customer_id: c.to_string(),
            operation: "transfer".into(),
            op_key: Some("k".into()),
            outcome: "hold".into(),
            factor: None,
            score: 95,
            anomaly: Some("new_device_large_transfer".into()),
            policy_version: 0,
            inputs: "{}".into(),
            decision: "{}".into(),
            created_at: 300,
        });
        cache.unwritten(c, held.clone());
        assert_eq!(cache.earlier(c, "k").flatten().map(|r| r.outcome), Some("hold".into()));
        cache.written(c, &[held.decision], 5);
        assert_eq!(
            cache.earlier(c, "k").flatten().map(|r| r.outcome),
            Some("hold".into()),
            "folded in"
        );
        let mut partial = snapshot(6);
        partial.keyed_complete = false;
        cache.put(c, partial, 1, 3, 0);
        assert!(
            cache.earlier(c, "other").is_none(),
            "too many keyed decisions kept to tell"
        );
    }

    #[test]
    fn a_partial_payee_set_asks_for_a_look_up() {
        let cache = FactsCache::default();
        let c = Uuid::now_v7();
        let mut s = snapshot(1);
        s.payees_complete = false;
        s.payees.insert("known".into());
        cache.put(c, s, 1, 3, 0);
        assert!(matches!(
            cache.lookup(c, 1, 1, &windows(), None, Some("known")),
            Lookup::Hit(_)
        ));
        assert!(matches!(
            cache.lookup(c, 1, 1, &windows(), None, Some("other")),
            Lookup::PayeeUnknown(_)
        ));
    }
}
