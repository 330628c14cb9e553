//! `huoban bench risk`: what adaptive security costs.
//!
//! 1. **Decisions in process**: the pure engine ([`huoban_risk::domain::decide`]) over a
//!    varied set of inputs (known and new devices, travel, history, failures, step-ups),
//!    on one thread, timing each decision: decisions per second and p99 (target: p99
//!    under 1 ms).
//! 2. **Transfers without and with risk checks**: the `ledger` scenario (transfers through
//!    `POST /api/v1/transfers`) on a fresh server with `risk.transfer_checks = false`,
//!    then on another with checks on (the key's earlier decision and the customer's stamp
//!    read, the facts from memory or read again, the decision stored with its inputs by the
//!    group-commit recorder, the customer's profile updated) — the cost is the drop in
//!    transfers per second (target: under 10%). The pair runs `--rounds` times (default
//!    [`ROUNDS`]), in the order without-with, with-without, … (so whatever slows later runs
//!    of a series — PostgreSQL's checkpoints, the neighbours — falls on both sides alike).
//!    The cost is the median of the pairs' own costs: the two runs of a pair follow each
//!    other, so a machine whose speed drifts over minutes moves both alike. Each run also
//!    reports this process's CPU time per transfer over the measured part (server and load
//!    generator; on PostgreSQL the database's own CPU is not in it) and how many transfers
//!    the ledger committed together. `--calibrate` runs both sides without checks: the
//!    "cost" it reports is the harness's own noise on this machine.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use huoban_risk::domain::{Factor, GeoPoint, Inputs, Operation, Policy, decide};

use crate::{
    bench::{BenchArgs, Target, client, ledger_op, report, run_load},
    config::Config,
};

/// A varied, deterministic set of inputs.
pub fn sample_inputs(n: usize) -> Vec<Inputs> {
    (0..n)
        .map(|i| {
            let mut x = Inputs::blank(
                Operation::Transfer,
                Some(((i as i64 * 7_919) % 8_000_000) + 1),
                1_800_000_000_000_000 + i as i64 * 61_000_000,
            );
            x.device_id = (i % 7 != 0).then(|| format!("device-{}", i % 13));
            x.device_known = i % 5 != 0;
            x.payee_known = Some(i % 3 != 0);
            x.geo = (i % 2 == 0).then_some(GeoPoint {
                lat: 30.0 + (i % 10) as f64,
                lon: 110.0 + (i % 9) as f64,
            });
            x.last_geo = Some(GeoPoint { lat: 39.9, lon: 116.4 });
            x.last_geo_at = Some(x.at - ((i % 300) as i64 + 1) * 60_000_000);
            x.hour_counts = (0..24).map(|h| ((h * 3 + i) % 11) as u32).collect();
            x.amount_count = (i % 40) as u32;
            x.amount_mean = 50_000;
            x.amount_max = 400_000;
            x.recent_failures = (i % 9) as u32;
            x.recent_operations = (i % 45) as u32;
            x.trust_level = (i % 5) as u8;
            x.step_up = match i % 4 {
                0 => Some(Factor::Pin),
                1 => Some(Factor::Otp),
                _ => None,
            };
            x
        })
        .collect()
}

/// Decides `rounds` times over the sample; returns (decisions per second, p50 µs, p99 µs,
/// max µs, outcome counts).
pub fn decision_figures(rounds: usize) -> anyhow::Result<(f64, f64, f64, f64, [u64; 4])> {
    let policy = Policy::default();
    let inputs = sample_inputs(1024);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 10_000_000, 3)?;
    let mut outcomes = [0u64; 4];
    let started = Instant::now();
    for r in 0..rounds {
        let i = &inputs[r % inputs.len()];
        let t = Instant::now();
        let d = std::hint::black_box(decide(std::hint::black_box(i), &policy));
        let nanos = t.elapsed().as_nanos() as u64;
        let _ = hist.record(nanos.max(1));
        outcomes[d.outcome as usize] += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let us = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    Ok((
        rounds as f64 / elapsed,
        us(0.5),
        us(0.99),
        hist.max() as f64 / 1000.0,
        outcomes,
    ))
}

pub async fn run(args: BenchArgs, config: Config, database_given: bool) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.url.is_none(),
        "the risk scenario runs in-process; run it without --url"
    );
    let rounds = 1_000_000;
    eprintln!("risk: {rounds} decisions in process…");
    let (per_sec, p50, p99, max, outcomes) = decision_figures(rounds)?;
    println!("decisions    {rounds} in process, {per_sec:.0} /s");
    println!("decision     p50 {p50:.2} µs   p99 {p99:.2} µs   max {max:.2} µs");
    println!(
        "outcomes     allow {} step_up {} hold {} deny {}",
        outcomes[0], outcomes[1], outcomes[2], outcomes[3]
    );

    let accounts = args.accounts.unwrap_or(10);
    let mut runs: Vec<(bool, crate::bench::BenchReport)> = Vec::new();
    let mut facts = (0, 0, 0);
    anyhow::ensure!(args.rounds > 0, "--rounds must be at least 1");
    if args.calibrate {
        eprintln!("risk: calibrating — both runs of every pair without checks");
    }
    for round in 1..=args.rounds {
        let order = if round % 2 == 1 { [false, true] } else { [true, false] };
        for checks in order {
            let mut config = config.clone();
            config.risk.transfer_checks = checks && !args.calibrate;
            let target = Target::start(None, config, database_given).await?;
            let app = target
                .app
                .clone()
                .ok_or_else(|| anyhow::anyhow!("no in-process server"))?;
            let op = ledger_op(&app, &client()?, &target.base_url, accounts).await?;
            // The process's CPU time over the measured part (sampled once the warm-up is
            // over): on a machine shared with other work, CPU per transfer shows the checks'
            // own cost where transfers per second mostly show the neighbours.
            let warmup = Duration::from_secs(args.warmup);
            let cpu_at_start = tokio::spawn(async move {
                tokio::time::sleep(warmup).await;
                process_cpu_micros()
            });
            let load = run_load(op, args.concurrency, warmup, Duration::from_secs(args.duration)).await?;
            let cpu = cpu_at_start
                .await
                .ok()
                .flatten()
                .zip(process_cpu_micros())
                .map(|(start, end)| (end - start) as f64 / load.operations.max(1) as f64);
            eprintln!(
                "risk: round {round}/{} {} checks",
                args.rounds,
                if checks && !args.calibrate { "with" } else { "without" }
            );
            let mut r = report(
                if checks && !args.calibrate {
                    "ledger+risk"
                } else {
                    "ledger"
                },
                &target.backend,
                args.concurrency,
                &load,
            );
            r.extra.insert("risk_checks".into(), (checks && !args.calibrate).into());
            r.extra.insert("accounts".into(), accounts.into());
            r.extra.insert("round".into(), round.into());
            let stats = app.ledger.writer_stats();
            r.extra.insert(
                "avg_batch".into(),
                format!(
                    "{:.1} transfers per commit",
                    stats.commands as f64 / stats.batches.max(1) as f64
                )
                .into(),
            );
            if let Some(cpu) = cpu {
                r.extra.insert("cpu_us_per_transfer".into(), cpu.round().into());
            }
            if checks {
                // How often a checked transfer found the customer's facts in memory.
                let s = app.risk.facts_stats();
                facts = (facts.0 + s.fresh, facts.1 + s.from_memory, facts.2 + s.read_again);
                r.extra.insert("facts_fresh".into(), s.fresh.into());
                r.extra.insert("facts_from_memory".into(), s.from_memory.into());
                r.extra.insert("facts_read_again".into(), s.read_again.into());
            }
            target.stop().await;
            r.print();
            if let Some(err) = &load.first_error {
                eprintln!("first error: {err}");
            }
            runs.push((checks, r));
        }
    }
    let median = |checks: bool| {
        median_of(
            runs.iter()
                .filter(|(c, _)| *c == checks)
                .map(|(_, r)| r.throughput_per_sec)
                .collect(),
        )
        .unwrap_or(0.0)
    };
    let (without, with) = (median(false), median(true));
    let pair_costs: Vec<f64> = pairs_of(&runs)
        .map(|(a, b)| 100.0 * (1.0 - b.throughput_per_sec / a.throughput_per_sec.max(0.001)))
        .collect();
    let cost = median_of(pair_costs.clone()).unwrap_or(0.0);
    let cpu_median = |checks: bool| {
        median_of(
            runs.iter()
                .filter(|(c, _)| *c == checks)
                .filter_map(|(_, r)| r.extra.get("cpu_us_per_transfer").and_then(|v| v.as_f64()))
                .collect(),
        )
    };
    let cpu = cpu_median(false).zip(cpu_median(true));
    let pairs: Vec<String> = pairs_of(&runs)
        .zip(&pair_costs)
        .map(|((a, b), c)| format!("{:.0} → {:.0} ({c:.1}%)", a.throughput_per_sec, b.throughput_per_sec))
        .collect();
    println!("rounds       {}", pairs.join(", "));
    println!(
        "facts        {} from memory ({} without reading the stamp), {} read again",
        facts.1, facts.0, facts.2
    );
    let sides = if args.calibrate {
        "without → without (calibration)"
    } else {
        "without → with"
    };
    println!(
        "risk cost    {cost:.1}% fewer transfers/s (median of {} pairs, {sides}); medians {without:.0} → {with:.0} /s",
        pair_costs.len()
    );
    if let Some((a, b)) = cpu {
        println!(
            "cpu          {a:.0} → {b:.0} µs of this process per transfer, medians ({:.1}% more)",
            100.0 * (b / a.max(1.0) - 1.0)
        );
    }
    if let Some(path) = args.json {
        let json = serde_json::json!({
            "scenario": "risk",
            "decisions": { "count": rounds, "per_sec": per_sec, "p50_us": p50, "p99_us": p99, "max_us": max },
            "runs": runs.iter().map(|(_, r)| r).collect::<Vec<_>>(),
            "median_without_checks": without,
            "median_with_checks": with,
            "cost_percent": cost,
            "pair_cost_percent": pair_costs,
            "calibration": args.calibrate,
            "cpu_us_per_transfer": cpu.map(|(a, b)| serde_json::json!({ "without": a, "with": b })),
        });
        std::fs::write(&path, serde_json::to_vec_pretty(&json)?)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// Pairs of runs (without and with checks) measured by default.
pub const ROUNDS: usize = 6;

/// Each pair's (without, with) reports, whichever ran first.
fn pairs_of(
    runs: &[(bool, crate::bench::BenchReport)],
) -> impl Iterator<Item = (&crate::bench::BenchReport, &crate::bench::BenchReport)> {
    runs.chunks(2)
        .filter(|p| p.len() == 2)
        .map(|p| if p[0].0 { (&p[1].1, &p[0].1) } else { (&p[0].1, &p[1].1) })
}

/// The median (the mean of the middle two for an even count).
fn median_of(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

/// CPU time (user and system) this process used so far, in micros; `None` where
/// `/proc/self/stat` is not available. Ticks are the kernel's USER_HZ, 100 on Linux.
fn process_cpu_micros() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces; the fields after its closing parenthesis are fixed.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks * 10_000)
}

#[cfg(test)]
mod tests {
    #[test]
    fn process_cpu_time_grows_with_work() {
        let before = super::process_cpu_micros().expect("linux /proc");
        let mut x = 0u64;
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_millis(60) {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        assert!(super::process_cpu_micros().expect("linux /proc") > before, "{x}");
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(super::median_of(vec![]), None);
        assert_eq!(super::median_of(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(super::median_of(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn pairs_are_read_as_without_then_with_whichever_ran_first() {
        let run = |checks: bool, throughput: f64| {
            (
                checks,
                crate::bench::BenchReport {
                    scenario: "ledger".into(),
                    backend: "sqlite".into(),
                    concurrency: 1,
                    duration_secs: 1.0,
                    operations: 1,
                    errors: 0,
                    throughput_per_sec: throughput,
                    p50_ms: 0.0,
                    p99_ms: 0.0,
                    max_ms: 0.0,
                    machine: String::new(),
                    date: String::new(),
                    extra: serde_json::Map::new(),
                },
            )
        };
        // Round 1 ran without first, round 2 with first; a lone last run is no pair.
        let runs = vec![
            run(false, 100.0),
            run(true, 90.0),
            run(true, 80.0),
            run(false, 100.0),
            run(false, 5.0),
        ];
        let pairs: Vec<(f64, f64)> = super::pairs_of(&runs)
            .map(|(a, b)| (a.throughput_per_sec, b.throughput_per_sec))
            .collect();
        assert_eq!(pairs, vec![(100.0, 90.0), (100.0, 80.0)]);
    }

    #[test]
    fn decisions_are_fast_enough_to_measure() {
        let (per_sec, _, p99, _, outcomes) = super::decision_figures(10_000).expect("figures");
        assert!(per_sec > 0.0 && p99 > 0.0);
        // The sample exercises every outcome but deny.
        assert!(outcomes[0] > 0 && outcomes[1] > 0 && outcomes[2] > 0, "{outcomes:?}");
    }
}
