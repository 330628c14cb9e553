//! `huoban bench events`: behaviour events through `POST /api/v1/events` with a live
//! campaign's rules, tasks and badges active (crates/campaigns), in two phases:
//!
//! 1. **Throughput**: `--concurrency` clients each send batches of [`BATCH`] mixed events
//!    (wealth and other product views, page views, shares, green trips) for `--accounts`
//!    customers as fast as they are answered, for `--duration` seconds after `--warmup`.
//!    Then the harness reports the rules consumer's backlog when the load stopped (events
//!    stored but not yet applied) and how long it took to apply them: rules keep up when
//!    that is about one batch's worth (well under a second). `rules_applied` is what the
//!    consumer applied per second from the start of the load until it had caught up.
//! 2. **Lag at a fixed rate**: `--rate` events per second (default 5,000) of `page_view`
//!    events that a rule turns into a nudge each, for `--duration` seconds; then, from the
//!    database, the lag of every one of them from its arrival (`received_at`) to its effect
//!    being committed (the effect's `created_at`, stamped just before the commit): p50,
//!    p99, max.
//!
//! Finally the ledger's invariants (rules pay points through it).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use serde_json::json;

use crate::{
    app::App,
    bench::{self, BenchArgs, Operation, Target},
};

/// Events per request in the throughput phase.
pub const BATCH: usize = 500;
/// Events per request in the lag phase.
const LAG_BATCH: usize = 100;

fn parse<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> anyhow::Result<T> {
    serde_json::from_value(v).context("bench campaign definition")
}

async fn campaign(app: &App) -> anyhow::Result<()> {
    let state = app.campaigns_state();
    let now = app.clock.now();
    let api = |e: huoban_kit::ApiError| anyhow::anyhow!("bench campaign: {e}");
    let campaign = state
        .campaigns
        .create(
            uuid::Uuid::nil(),
            parse(json!({
                "name": "Bench", "titles": { "zh-CN": "压测活动" }, "theme": "bench",
                "starts_at": (now - jiff::SignedDuration::from_hours(1)).to_string(),
                "ends_at": (now + jiff::SignedDuration::from_hours(24)).to_string(),
                "audience": "customer.locale != 'xx'", "points_budget": 1_000_000_000, "coupon_budget": 0,
            }))?,
        )
        .await
        .map_err(api)?
        .id;
    let task = state
        .tasks
        .create(
            campaign,
            parse(
                json!({ "titles": { "zh-CN": "绿色出行" }, "period": "daily", "event_type": "green_trip",
                          "target": 3, "reward_points": 20 }),
            )?,
        )
        .await
        .map_err(api)?;
    let _ = task;
    state
        .badges
        .create(parse(
            json!({ "campaign_id": campaign, "titles": { "zh-CN": "绿色达人" }, "event_type": "green_trip",
                              "tiers": [{ "name": "bronze", "threshold": 1 }, { "name": "silver", "threshold": 10 }] }),
        )?)
        .await
        .map_err(api)?;
    for rule in [
        json!({ "name": "wealth explorer", "trigger": "product_view", "condition": "event.properties.category == 'wealth'",
                "aggregate": { "count": 3, "within_days": 7 },
                "actions": [{ "type": "show_nudge", "title": "定制我的配置方案", "body": "…" }, { "type": "award_points", "points": 5 }] }),
        json!({ "name": "first share", "trigger": "share", "max_per_customer": 1,
                "actions": [{ "type": "award_points", "points": 10 }] }),
        json!({ "name": "home nudge", "trigger": "page_view", "condition": "event.properties.page == 'home'",
                "actions": [{ "type": "show_nudge", "title": "看看新春活动", "body": "…" }] }),
    ] {
        state.rules.create(campaign, parse(rule)?).await.map_err(api)?;
    }
    state
        .campaigns
        .transition(campaign, huoban_campaigns::campaigns::domain::Transition::Schedule)
        .await
        .map_err(api)?;
    Ok(())
}

async fn max_seq(app: &App) -> anyhow::Result<i64> {
    let end: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM behaviour_events")
        .fetch_one(app.db.reader())
        .await?;
    Ok(end.unwrap_or(0))
}

/// Waits until the rules consumer has applied every event up to `seq`; returns how long.
async fn catch_up(app: &App, seq: i64) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let feed = huoban_engage::events::feed::EventFeed::new(app.db.clone(), "rules");
    // A consumer that stops moving is stuck (a failing batch is retried for ever), not slow.
    let (mut last, mut moved) = (-1, Instant::now());
    loop {
        let at = feed.position().await?;
        if at >= seq {
            return Ok(started.elapsed());
        }
        if at != last {
            (last, moved) = (at, Instant::now());
        }
        anyhow::ensure!(
            moved.elapsed() < Duration::from_secs(30),
            "the rules consumer is stuck at event {at} of {seq} (no progress for 30 s; see the server log)"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn event(run: u32, n: u64, i: usize, kind_pick: u64, at: &str) -> serde_json::Value {
    let (kind, props) = match kind_pick % 6 {
        0 => ("product_view", json!({ "category": "wealth", "product": "fund-007" })),
        1 => ("product_view", json!({ "category": "loans" })),
        2 => ("page_view", json!({ "page": "goals" })),
        3 => ("share", json!({ "target": "wechat" })),
        4 => ("green_trip", json!({ "km": 3 })),
        _ => ("page_view", json!({ "page": "accounts" })),
    };
    json!({ "id": format!("b{run}-{n}-{i}"), "type": kind, "channel": "app", "at": at, "properties": props })
}

async fn post(client: &reqwest::Client, url: &str, token: &str, events: Vec<serde_json::Value>) -> Result<(), String> {
    let response = client
        .post(url)
        .bearer_auth(token)
        .json(&json!({ "events": events }))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| e.to_string())?;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("status {status}: {}", String::from_utf8_lossy(&body)))
    }
}

pub async fn run(args: BenchArgs, target: Target) -> anyhow::Result<()> {
    let app = target
        .app
        .clone()
        .context("the events scenario seeds its own campaign and customers; run it without --url")?;
    let customers = Arc::new(bench::seed_transfer_customers(&app, args.accounts.unwrap_or(1000).max(1)).await?);
    campaign(&app).await?;
    let client = bench::client()?;
    let url = format!("{}/api/v1/events", target.base_url);
    let run = rand::random::<u32>();
    let clock = app.clock.clone();
    // Phase 1: throughput.
    let op: Operation = {
        let (client, url, customers, clock) = (client.clone(), url.clone(), customers.clone(), clock.clone());
        Arc::new(move |n| {
            let customer = &customers[(n.wrapping_mul(2_654_435_761) % customers.len() as u64) as usize];
            let at = clock.now().to_string();
            let events = (0..BATCH).map(|i| event(run, n, i, n + i as u64, &at)).collect();
            let (client, url, token) = (client.clone(), url.clone(), customer.token.clone());
            Box::pin(async move { post(&client, &url, &token, events).await })
        })
    };
    let before_load = max_seq(&app).await?;
    let load_started = Instant::now();
    let load = bench::run_load(
        op,
        args.concurrency,
        Duration::from_secs(args.warmup),
        Duration::from_secs(args.duration),
    )
    .await?;
    let sent_until = max_seq(&app).await?;
    let feed = huoban_engage::events::feed::EventFeed::new(app.db.clone(), "rules");
    let backlog = sent_until - feed.position().await?;
    let caught = catch_up(&app, sent_until).await?;
    let applied_in = load_started.elapsed().as_secs_f64();
    let mut report = bench::report("events", &target.backend, args.concurrency, &load);
    let events_per_sec = load.operations as f64 * BATCH as f64 / load.elapsed.as_secs_f64().max(0.001);
    report.extra.insert("batch".into(), BATCH.into());
    report
        .extra
        .insert("events_per_sec".into(), format!("{events_per_sec:.0}").into());
    report.extra.insert(
        "rules_applied".into(),
        format!(
            "{:.0} events/s ({} events, warm-up included, applied {:.1} s after the load began)",
            (sent_until - before_load) as f64 / applied_in,
            sent_until - before_load,
            applied_in
        )
        .into(),
    );
    report.extra.insert(
        "backlog".into(),
        format!(
            "{backlog} events not yet applied when the load stopped; applied {:.2} s later",
            caught.as_secs_f64()
        )
        .into(),
    );
    // Phase 2: lag at a fixed rate.
    let start_seq = max_seq(&app).await?;
    let per_tick = (args.rate as usize / 20).max(1);
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let mut sent = 0usize;
    let mut handles = Vec::new();
    let mut n: u64 = 0;
    while started.elapsed() < Duration::from_secs(args.duration) {
        tick.tick().await;
        let at = clock.now().to_string();
        let mut left = per_tick;
        while left > 0 {
            let size = left.min(LAG_BATCH);
            left -= size;
            n += 1;
            let customer = &customers[(n % customers.len() as u64) as usize];
            let events: Vec<_> = (0..size)
                .map(|i| {
                    json!({ "id": format!("l{run}-{n}-{i}"), "type": "page_view", "channel": "app", "at": at,
                                 "properties": { "page": "home" } })
                })
                .collect();
            sent += size;
            let (client, url, token) = (client.clone(), url.clone(), customer.token.clone());
            handles.push(tokio::spawn(async move { post(&client, &url, &token, events).await }));
        }
    }
    let elapsed = started.elapsed();
    let mut failed = 0;
    for h in handles {
        if !matches!(h.await, Ok(Ok(()))) {
            failed += 1;
        }
    }
    catch_up(&app, max_seq(&app).await?).await?;
    let lags: Vec<i64> = sqlx::query_scalar(
        "SELECT e.created_at - b.received_at FROM campaign_effects e JOIN behaviour_events b ON b.seq = e.event_seq \
         WHERE e.event_seq > $1 AND e.kind = 'nudge' ORDER BY 1",
    )
    .bind(start_seq)
    .fetch_all(app.db.reader())
    .await?;
    let pick = |q: f64| {
        lags.get(
            ((lags.len() as f64 * q).ceil() as usize)
                .saturating_sub(1)
                .min(lags.len().saturating_sub(1)),
        )
        .map_or(0.0, |m| *m as f64 / 1000.0)
    };
    report.extra.insert(
        "lag_rate".into(),
        format!(
            "{:.0} events/s offered for {:.1} s ({failed} failed requests)",
            sent as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64()
        )
        .into(),
    );
    report.extra.insert(
        "lag_ms".into(),
        format!(
            "p50 {:.1}   p99 {:.1}   max {:.1}   ({} effects)",
            pick(0.5),
            pick(0.99),
            pick(1.0),
            lags.len()
        )
        .into(),
    );
    let invariants = app.ledger.invariants().await?;
    report.extra.insert(
        "invariants".into(),
        if invariants.is_ok() {
            "ok".into()
        } else {
            format!("{} violations", invariants.violations.len()).into()
        },
    );
    target.stop().await;
    report.print();
    if let Some(err) = &load.first_error {
        eprintln!("first error: {err}");
    }
    if let Some(path) = args.json {
        std::fs::write(&path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
