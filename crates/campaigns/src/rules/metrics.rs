//! The rules consumer's processing lag (event received → its effects committed), as a
//! Prometheus histogram the server's `/metrics` renders ([`render`]).

use std::{
    fmt::Write,
    sync::atomic::{AtomicI64, AtomicU64, Ordering},
};

/// Upper bounds in seconds.
const BOUNDS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

static BUCKETS: [AtomicU64; 12] = [const { AtomicU64::new(0) }; 12];
static COUNT: AtomicU64 = AtomicU64::new(0);
static SUM_MICROS: AtomicU64 = AtomicU64::new(0);
static LAST_MICROS: AtomicI64 = AtomicI64::new(0);
static EVENTS: AtomicU64 = AtomicU64::new(0);

/// Records the lag of one event, in microseconds.
pub fn observe(lag_micros: i64) {
    let lag = lag_micros.max(0);
    let seconds = lag as f64 / 1e6;
    for (i, bound) in BOUNDS.iter().enumerate() {
        if seconds <= *bound {
            BUCKETS[i].fetch_add(1, Ordering::Relaxed);
        }
    }
    COUNT.fetch_add(1, Ordering::Relaxed);
    SUM_MICROS.fetch_add(lag as u64, Ordering::Relaxed);
    LAST_MICROS.store(lag, Ordering::Relaxed);
}

/// Counts events the consumer read (whether or not a rule reacted).
pub fn consumed(n: usize) {
    EVENTS.fetch_add(n as u64, Ordering::Relaxed);
}

/// Appends the metrics in the Prometheus text format.
pub fn render(out: &mut String) {
    let _ = writeln!(
        out,
        "# HELP huoban_rules_lag_seconds Time from an event's arrival to its rule effects being committed.\n\
         # TYPE huoban_rules_lag_seconds histogram"
    );
    for (i, bound) in BOUNDS.iter().enumerate() {
        let _ = writeln!(
            out,
            "huoban_rules_lag_seconds_bucket{{le=\"{bound}\"}} {}",
            BUCKETS[i].load(Ordering::Relaxed)
        );
    }
    let count = COUNT.load(Ordering::Relaxed);
    let _ = writeln!(out, "huoban_rules_lag_seconds_bucket{{le=\"+Inf\"}} {count}");
    let _ = writeln!(
        out,
        "huoban_rules_lag_seconds_sum {}",
        SUM_MICROS.load(Ordering::Relaxed) as f64 / 1e6
    );
    let _ = writeln!(out, "huoban_rules_lag_seconds_count {count}");
    let _ = writeln!(
        out,
        "# HELP huoban_rules_last_lag_seconds Lag of the last event the rules consumer applied.\n\
         # TYPE huoban_rules_last_lag_seconds gauge\nhuoban_rules_last_lag_seconds {}",
        LAST_MICROS.load(Ordering::Relaxed) as f64 / 1e6
    );
    let _ = writeln!(
        out,
        "# HELP huoban_rules_events_total Events read by the rules consumer.\n\
         # TYPE huoban_rules_events_total counter\nhuoban_rules_events_total {}",
        EVENTS.load(Ordering::Relaxed)
    );
}
