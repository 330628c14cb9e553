//! The benchmark harness behind `huoban bench <scenario>`: a load generator that starts a
//! Huoban server in-process on a loopback port (or targets `--url`), warms up, runs for a
//! fixed time with a fixed number of concurrent clients, shows a progress line, and prints
//! throughput and latency percentiles; `--json FILE` writes the same figures.
//!
//! Scenarios:
//! - `http-read`: an authenticated read (`GET /api/v1/me`) by one signed-in customer.
//! - `ledger`: transfers through `POST /api/v1/transfers`, each with its own
//!   `Idempotency-Key`, between the current accounts of `--accounts` customers (10: hot
//!   accounts; 10000: spread out), then the ledger's invariant check.
//! - `ledger-core`: the same transfers submitted to the ledger in-process, to separate
//!   what the ledger sustains from what the HTTP path costs.
//! - `flash-claim`: a festival flash sale. One reward with `--stock` units (100 points,
//!   one per customer), `--accounts` customers with points and sessions, and every
//!   operation one claim attempt (`POST /api/v1/rewards/{id}/claims`, its own
//!   `Idempotency-Key`) by the next customer in turn. A 201 and a 409 `out-of-stock` or
//!   `claim-limit-reached` are correct answers; the load keeps running after the stock is
//!   gone, as in a real flash sale where most attempts are refused. Then, from the
//!   database: units claimed and reserved, the oversell (claimed beyond the stock, must
//!   be 0), the distinct winners and the ledger's invariants.
//! - `h5`: the campaign hub's first load in headless Chromium on a slow phone (see
//!   [`crate::bench_h5`]).

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use futures::future::BoxFuture;
use hdrhistogram::Histogram;
use huoban_kit::SystemClock;
use serde::Serialize;

use crate::{app::App, config::Config};

#[derive(Debug, Clone, Copy, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// Authenticated read of the customer's profile.
    HttpRead,
    /// Transfers between customers' accounts through the HTTP API.
    Ledger,
    /// The same transfers straight into the ledger's group-commit writer, in-process: what
    /// the ledger itself sustains, without HTTP, sessions or lookups.
    LedgerCore,
    /// A flash sale: many customers claiming one reward with little stock over HTTP; the
    /// stock must never be oversold.
    FlashClaim,
    /// The H5 campaign hub's first load in headless Chromium with a 4× slower CPU and a
    /// slow-3G-like network: bytes transferred and time until interactive.
    H5,
    /// Risk decisions per second and p99 in process, then the `ledger` scenario without
    /// and with risk checks on transfers.
    Risk,
    /// Behaviour events in batches with campaign rules active: events/s, and the lag from
    /// ingest to applied effect at a fixed rate (crates/huoban/src/bench_events.rs).
    Events,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    pub scenario: Scenario,
    /// Benchmark a running server instead of starting one.
    #[arg(long)]
    pub url: Option<String>,
    /// Seconds of measured load.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 2)]
    pub warmup: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Also write the figures as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// `ledger`, `ledger-core`: how many customers' accounts the transfers move between
    /// (default 10); `flash-claim`: how many customers take turns claiming (default 2000).
    #[arg(long)]
    pub accounts: Option<usize>,
    /// `flash-claim`: units of the reward in stock.
    #[arg(long, default_value_t = 1000)]
    pub stock: i64,
    /// `events`: events per second offered in the lag phase.
    #[arg(long, default_value_t = 5000)]
    pub rate: u64,
    /// `risk`: pairs of runs (without and with checks) to take the cost over.
    #[arg(long, default_value_t = crate::bench_risk::ROUNDS)]
    pub rounds: usize,
    /// `risk`: run both sides of every pair without checks (an A/A run), which shows
    /// how far pairs differ on this machine when nothing differs between them.
    #[arg(long)]
    pub calibrate: bool,
}

/// Price of the `flash-claim` reward, in points.
pub const FLASH_PRICE: i64 = 100;

/// What the `flash-claim` operations saw, counted over the whole run (warm-up included).
#[derive(Debug, Default)]
pub struct ClaimCounts {
    pub won: AtomicU64,
    pub out_of_stock: AtomicU64,
    pub limit_reached: AtomicU64,
    /// Microseconds from the start of the load to the last 201.
    pub last_win_micros: AtomicU64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub scenario: String,
    pub backend: String,
    pub concurrency: usize,
    pub duration_secs: f64,
    pub operations: u64,
    pub errors: u64,
    pub throughput_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub machine: String,
    pub date: String,
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl BenchReport {
    pub fn print(&self) {
        println!("scenario     {}", self.scenario);
        println!("backend      {}", self.backend);
        println!("machine      {}", self.machine);
        println!("concurrency  {}", self.concurrency);
        println!("duration     {:.1} s", self.duration_secs);
        println!("operations   {} ({} errors)", self.operations, self.errors);
        println!("throughput   {:.0} /s", self.throughput_per_sec);
        println!(
            "latency      p50 {:.2} ms   p99 {:.2} ms   max {:.2} ms",
            self.p50_ms, self.p99_ms, self.max_ms
        );
        for (k, v) in &self.extra {
            println!("{k:<12} {v}");
        }
    }
}

/// One operation of a scenario; returns an error message when the server refused it.
pub type Operation = Arc<dyn Fn(u64) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

#[derive(Debug)]
pub struct LoadResult {
    pub operations: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub histogram: Histogram<u64>,
    pub first_error: Option<String>,
}

/// Runs `op` from `concurrency` tasks: `warmup` unmeasured, then `duration` measured, with
/// a progress line on stderr every second.
pub async fn run_load(
    op: Operation,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<LoadResult> {
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let counter = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (op, measuring, stop, done, failed, counter) = (
            op.clone(),
            measuring.clone(),
            stop.clone(),
            done.clone(),
            failed.clone(),
            counter.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).map_err(|e| e.to_string())?;
            let mut first_error = None;
            while !stop.load(Ordering::Relaxed) {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let started = Instant::now();
                let result = op(n).await;
                if measuring.load(Ordering::Relaxed) {
                    let micros = started.elapsed().as_micros().clamp(1, 60_000_000) as u64;
                    let _ = hist.record(micros);
                    done.fetch_add(1, Ordering::Relaxed);
                    if let Err(e) = result {
                        failed.fetch_add(1, Ordering::Relaxed);
                        first_error.get_or_insert(e);
                    }
                }
            }
            Ok::<_, String>((hist, first_error))
        }));
    }
    let progress = |phase: &str, t: Duration, total: Duration, ops: u64, start_ops: u64, since: Duration| {
        let rate = (ops - start_ops) as f64 / since.as_secs_f64().max(0.001);
        eprint!(
            "\r[{phase} {:>3}s/{}s] {ops} ops, {rate:.0}/s   ",
            t.as_secs(),
            total.as_secs()
        );
    };
    let warm_start = Instant::now();
    while warm_start.elapsed() < warmup {
        tokio::time::sleep(Duration::from_secs(1).min(warmup.saturating_sub(warm_start.elapsed()))).await;
        progress(
            "warm-up",
            warm_start.elapsed(),
            warmup,
            counter.load(Ordering::Relaxed),
            0,
            warm_start.elapsed(),
        );
    }
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    while started.elapsed() < duration {
        tokio::time::sleep(Duration::from_secs(1).min(duration.saturating_sub(started.elapsed()))).await;
        progress(
            "measure",
            started.elapsed(),
            duration,
            done.load(Ordering::Relaxed),
            0,
            started.elapsed(),
        );
    }
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    eprintln!();
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).context("histogram")?;
    let mut first_error = None;
    for task in tasks {
        let (hist, err) = task.await.context("load task")?.map_err(anyhow::Error::msg)?;
        histogram.add(&hist).context("merging histograms")?;
        if first_error.is_none() {
            first_error = err;
        }
    }
    Ok(LoadResult {
        operations: done.load(Ordering::Relaxed),
        errors: failed.load(Ordering::Relaxed),
        elapsed,
        histogram,
        first_error,
    })
}

pub fn machine_description() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    format!("{cores} cores, {cpu}")
}

pub fn report(scenario: &str, backend: &str, concurrency: usize, load: &LoadResult) -> BenchReport {
    let ms = |q: f64| load.histogram.value_at_quantile(q) as f64 / 1000.0;
    BenchReport {
        scenario: scenario.to_owned(),
        backend: backend.to_owned(),
        concurrency,
        duration_secs: load.elapsed.as_secs_f64(),
        operations: load.operations,
        errors: load.errors,
        throughput_per_sec: load.operations as f64 / load.elapsed.as_secs_f64().max(0.001),
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
        max_ms: load.histogram.max() as f64 / 1000.0,
        machine: machine_description(),
        date: jiff::Zoned::now().date().to_string(),
        extra: serde_json::Map::new(),
    }
}

/// A server to benchmark: one started here (with its temporary database) or a given URL.
#[derive(Debug)]
pub struct Target {
    pub base_url: String,
    pub backend: String,
    /// The in-process server, when the harness started one (scenarios seed through it).
    pub app: Option<App>,
    _tmp: Option<tempfile::TempDir>,
    /// On PostgreSQL the run works in a schema of its own, dropped at the end.
    pg_schema: Option<(String, String)>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Target {
    pub async fn start(args_url: Option<&str>, mut config: Config, database_given: bool) -> anyhow::Result<Target> {
        if let Some(url) = args_url {
            return Ok(Target {
                base_url: url.trim_end_matches('/').to_owned(),
                backend: "remote".into(),
                app: None,
                _tmp: None,
                pg_schema: None,
                shutdown: None,
                server: None,
            });
        }
        let tmp = if database_given {
            None
        } else {
            let dir = tempfile::tempdir().context("temporary folder")?;
            config.database_url = format!("sqlite://{}", dir.path().join("bench.db").display()).into();
            Some(dir)
        };
        let mut pg_schema = None;
        if database_given && config.database_url().starts_with("postgres") {
            let base = config.database_url().to_owned();
            let schema = format!("huoban_bench_{}", uuid::Uuid::now_v7().simple());
            let admin = huoban_kit::Db::connect(&base, &Default::default()).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                .execute(admin.writer())
                .await?;
            admin.close().await;
            let sep = if base.contains('?') { '&' } else { '?' };
            config.database_url = format!("{base}{sep}options[search_path]={schema}").into();
            pg_schema = Some((base, schema));
        }
        config.listen = "127.0.0.1:0".parse()?;
        // Load tests hit the server far harder than the default request timeout expects.
        config.http.request_timeout_secs = 120;
        // One client address makes every request: per-address limits would measure the
        // limiter, not the server.
        config.rate_limits.enabled = false;
        let app = App::start(config, Arc::new(SystemClock)).await?;
        let backend = app.db.backend().name().to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.clone().serve(listener, async move {
            let _ = rx.await;
        }));
        eprintln!("started a Huoban server at {base_url} on {backend}");
        Ok(Target {
            base_url,
            backend,
            app: Some(app),
            _tmp: tmp,
            pg_schema,
            shutdown: Some(tx),
            server: Some(server),
        })
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        if let Some((base, schema)) = self.pg_schema.take()
            && let Ok(admin) = huoban_kit::Db::connect(&base, &Default::default()).await
        {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {schema} CASCADE")))
                .execute(admin.writer())
                .await;
            admin.close().await;
        }
    }
}

pub fn client() -> anyhow::Result<reqwest::Client> {
    crate::install_tls_provider();
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .timeout(Duration::from_secs(60))
        .build()?)
}

/// Registers a fresh customer and returns a session token.
pub async fn signed_in_customer(client: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let phone = format!("139{:08}", rand::random::<u32>() % 100_000_000);
    let password = "bench-password";
    let registered = client
        .post(format!("{base}/api/v1/customers"))
        .json(&serde_json::json!({ "phone": phone, "password": password, "name": "Bench" }))
        .send()
        .await?;
    if !registered.status().is_success() {
        bail!(
            "registering the benchmark customer failed: {}",
            registered.text().await?
        );
    }
    let session: serde_json::Value = client
        .post(format!("{base}/api/v1/sessions"))
        .json(&serde_json::json!({ "phone": phone, "password": password, "channel": "app" }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    session["token"]
        .as_str()
        .map(str::to_owned)
        .context("the sign-in response has no token")
}

pub async fn run(args: BenchArgs, config: Config, database_given: bool) -> anyhow::Result<()> {
    if let Scenario::Risk = args.scenario {
        return crate::bench_risk::run(args, config, database_given).await;
    }
    let target = Target::start(args.url.as_deref(), config, database_given).await?;
    if let Scenario::Events = args.scenario {
        return crate::bench_events::run(args, target).await;
    }
    let client = client()?;
    let base = target.base_url.clone();
    if let Scenario::H5 = args.scenario {
        let token = signed_in_customer(&client, &base).await?;
        let outcome = crate::bench_h5::run(&base, &token, 5, &target.backend).await;
        target.stop().await;
        let report = outcome?;
        report.print();
        if let Some(path) = args.json {
            std::fs::write(&path, serde_json::to_vec_pretty(&report)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        return Ok(());
    }
    let accounts = args.accounts.unwrap_or(match args.scenario {
        Scenario::FlashClaim => 2000,
        _ => 10,
    });
    let mut flash: Option<(String, Arc<ClaimCounts>)> = None;
    let (name, op): (&str, Operation) = match args.scenario {
        Scenario::HttpRead => {
            let token = signed_in_customer(&client, &base).await?;
            let url = format!("{base}/api/v1/me");
            let client = client.clone();
            (
                "http-read",
                Arc::new(move |_| {
                    let request = client.get(&url).bearer_auth(&token);
                    Box::pin(async move {
                        let response = request.send().await.map_err(|e| e.to_string())?;
                        let status = response.status();
                        let _ = response.bytes().await.map_err(|e| e.to_string())?;
                        if status.is_success() {
                            Ok(())
                        } else {
                            Err(format!("status {status}"))
                        }
                    })
                }),
            )
        }
        Scenario::LedgerCore => {
            let app = target
                .app
                .clone()
                .context("the ledger-core scenario runs in-process; run it without --url")?;
            let customers = Arc::new(seed_transfer_customers(&app, accounts.max(2)).await?);
            let run = rand::random::<u32>();
            (
                "ledger-core",
                Arc::new(move |n| {
                    let count = customers.len() as u64;
                    let from = customers[(n.wrapping_mul(2_654_435_761) % count) as usize].current;
                    let to =
                        customers[((n.wrapping_mul(2_654_435_761) + 1 + n % (count - 1)) % count) as usize].current;
                    let ledger = app.ledger.clone();
                    Box::pin(async move {
                        use huoban_ledger::{Amount, IdempotencyKey, TransferRequest, Unit};
                        let key = IdempotencyKey::new("bench", format!("core-{run}-{n}")).map_err(|e| e.to_string())?;
                        let amount = Amount::new(1 + (n % 100) as i64).map_err(|e| e.to_string())?;
                        let request = TransferRequest::single(key, Unit::Cny, from.into(), to.into(), amount);
                        ledger.transfer(request).await.map(|_| ()).map_err(|e| e.to_string())
                    })
                }),
            )
        }
        Scenario::Ledger => {
            let app = target
                .app
                .clone()
                .context("the ledger scenario seeds its own customers; run it without --url")?;
            ("ledger", ledger_op(&app, &client, &base, accounts).await?)
        }
        Scenario::H5 => bail!("the h5 scenario runs on its own"),
        Scenario::Risk => bail!("the risk scenario runs on its own"),
        Scenario::Events => bail!("the events scenario runs its own phases"),
        Scenario::FlashClaim => {
            let app = target
                .app
                .clone()
                .context("the flash-claim scenario seeds its own reward and customers; run it without --url")?;
            anyhow::ensure!(args.stock > 0, "--stock must be at least 1");
            let reward = create_flash_reward(&app, args.stock).await?;
            let customers = Arc::new(seed_points_customers(&app, accounts.max(1), FLASH_PRICE * 10).await?);
            let counts = Arc::new(ClaimCounts::default());
            flash = Some((reward.clone(), counts.clone()));
            let url = format!("{base}/api/v1/rewards/{reward}/claims");
            let client = client.clone();
            let run = rand::random::<u32>();
            let load_started = Instant::now();
            (
                "flash-claim",
                Arc::new(move |n| {
                    let customer = &customers[(n % customers.len() as u64) as usize];
                    let request = client
                        .post(&url)
                        .bearer_auth(&customer.token)
                        .header("idempotency-key", format!("flash-{run}-{n}"));
                    let counts = counts.clone();
                    Box::pin(async move {
                        let response = request.send().await.map_err(|e| e.to_string())?;
                        let status = response.status();
                        let body = response.bytes().await.map_err(|e| e.to_string())?;
                        match status.as_u16() {
                            201 => {
                                counts.won.fetch_add(1, Ordering::Relaxed);
                                let at = load_started.elapsed().as_micros() as u64;
                                counts.last_win_micros.fetch_max(at, Ordering::Relaxed);
                                return Ok(());
                            }
                            409 => {
                                let kind = serde_json::from_slice::<serde_json::Value>(&body)
                                    .ok()
                                    .and_then(|v| v["type"].as_str().map(str::to_owned))
                                    .unwrap_or_default();
                                if kind.ends_with(":out-of-stock") {
                                    counts.out_of_stock.fetch_add(1, Ordering::Relaxed);
                                    return Ok(());
                                }
                                if kind.ends_with(":claim-limit-reached") {
                                    counts.limit_reached.fetch_add(1, Ordering::Relaxed);
                                    return Ok(());
                                }
                            }
                            _ => {}
                        }
                        Err(format!("status {status}: {}", String::from_utf8_lossy(&body)))
                    })
                }),
            )
        }
    };
    let load = run_load(
        op,
        args.concurrency,
        Duration::from_secs(args.warmup),
        Duration::from_secs(args.duration),
    )
    .await?;
    let mut report = report(name, &target.backend, args.concurrency, &load);
    if let (Scenario::Ledger | Scenario::LedgerCore, Some(app)) = (args.scenario, &target.app) {
        let invariants = app.ledger.invariants().await?;
        let stats = app.ledger.writer_stats();
        report.extra.insert("accounts".into(), accounts.into());
        report.extra.insert(
            "invariants".into(),
            if invariants.is_ok() {
                "ok".into()
            } else {
                format!("{} violations", invariants.violations.len()).into()
            },
        );
        report.extra.insert(
            "avg_batch".into(),
            format!(
                "{:.1} transfers per commit",
                stats.commands as f64 / stats.batches.max(1) as f64
            )
            .into(),
        );
    }
    if let (Some((reward, counts)), Some(app)) = (&flash, &target.app) {
        flash_claim_figures(app, reward, args.stock, accounts, counts, &load, &mut report.extra).await?;
    }
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

/// Creates the `flash-claim` reward: `stock` units at [`FLASH_PRICE`] points, one per
/// customer, claimable from an hour ago for a day. Returns its id.
pub async fn create_flash_reward(app: &App, stock: i64) -> anyhow::Result<String> {
    use huoban_engage::rewards::service::{NewRewardRequest, RewardsService};
    let service = RewardsService::new(&app.engage_state());
    let now = app.clock.now();
    let at = |hours: i64| -> anyhow::Result<String> {
        Ok(now.checked_add(jiff::SignedDuration::from_hours(hours))?.to_string())
    };
    let reward = service
        .create(
            uuid::Uuid::now_v7(),
            NewRewardRequest {
                titles: [
                    ("zh-CN".to_owned(), "双十一秒杀券".to_owned()),
                    ("en".to_owned(), "Singles' Day flash coupon".to_owned()),
                ]
                .into(),
                points_price: FLASH_PRICE,
                total_stock: stock,
                per_customer_limit: 1,
                claimable_from: at(-1)?,
                claimable_until: at(24)?,
                coupon_valid_days: 30,
                campaign_id: None,
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("creating the flash-claim reward: {e}"))?;
    Ok(reward.id)
}

/// After a `flash-claim` run: what the database says about the stock, the winners and the
/// ledger, next to what the clients saw.
async fn flash_claim_figures(
    app: &App,
    reward: &str,
    stock: i64,
    accounts: usize,
    counts: &ClaimCounts,
    load: &LoadResult,
    extra: &mut serde_json::Map<String, serde_json::Value>,
) -> anyhow::Result<()> {
    let (total, claimed, reserved): (i64, i64, i64) =
        sqlx::query_as("SELECT total, claimed, reserved FROM reward_stock WHERE reward_id = $1")
            .bind(reward)
            .fetch_one(app.db.reader())
            .await
            .context("reading the reward's stock")?;
    let (winners,): (i64,) = sqlx::query_as(
        "SELECT COUNT(DISTINCT customer_id) FROM reward_claims WHERE reward_id = $1 AND state = 'claimed'",
    )
    .bind(reward)
    .fetch_one(app.db.reader())
    .await
    .context("counting the winners")?;
    let (coupons,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM reward_claims WHERE reward_id = $1 AND state = 'claimed'")
            .bind(reward)
            .fetch_one(app.db.reader())
            .await
            .context("counting the coupons")?;
    let invariants = app.ledger.invariants().await?;
    let secs = load.elapsed.as_secs_f64().max(0.001);
    extra.insert("accounts".into(), accounts.into());
    extra.insert("stock".into(), total.into());
    extra.insert("claims_per_s".into(), (load.operations as f64 / secs).round().into());
    extra.insert("claimed".into(), claimed.into());
    extra.insert("reserved".into(), reserved.into());
    extra.insert("oversell".into(), (claimed - stock).max(0).into());
    extra.insert("winners".into(), winners.into());
    extra.insert("coupons".into(), coupons.into());
    extra.insert("http_201".into(), counts.won.load(Ordering::Relaxed).into());
    extra.insert(
        "out_of_stock".into(),
        counts.out_of_stock.load(Ordering::Relaxed).into(),
    );
    extra.insert(
        "limit_reached".into(),
        counts.limit_reached.load(Ordering::Relaxed).into(),
    );
    let last_win = counts.last_win_micros.load(Ordering::Relaxed);
    if last_win > 0 {
        extra.insert(
            "last_win".into(),
            format!("{:.2} s after the load started", last_win as f64 / 1e6).into(),
        );
    }
    extra.insert(
        "invariants".into(),
        if invariants.is_ok() {
            "ok".into()
        } else {
            format!("{} violations", invariants.violations.len()).into()
        },
    );
    Ok(())
}

/// A customer the ledger scenario moves money for.
#[derive(Debug)]
pub struct TransferCustomer {
    pub token: String,
    pub current: uuid::Uuid,
    pub phone: String,
}

/// One `ledger` operation: a transfer through `POST /api/v1/transfers` between two of
/// `accounts` seeded customers, each with its own `Idempotency-Key` and device.
pub async fn ledger_op(app: &App, client: &reqwest::Client, base: &str, accounts: usize) -> anyhow::Result<Operation> {
    let customers = Arc::new(seed_transfer_customers(app, accounts.max(2)).await?);
    // Each customer uses one device, known to adaptive security as if they signed in on it.
    for (i, c) in customers.iter().enumerate() {
        if let Some(id) = app.risk.customer_by_phone(&c.phone).await {
            app.risk
                .register_device(id, &format!("bench-device-{i}"), false)
                .await?;
        }
    }
    let url = format!("{base}/api/v1/transfers");
    let client = client.clone();
    let run = rand::random::<u32>();
    Ok(Arc::new(move |n| {
        let count = customers.len() as u64;
        let i = (n.wrapping_mul(2_654_435_761) % count) as usize;
        let from = &customers[i];
        let to = &customers[((n.wrapping_mul(2_654_435_761) + 1 + n % (count - 1)) % count) as usize];
        let request = client
            .post(&url)
            .bearer_auth(&from.token)
            .header("idempotency-key", format!("bench-{run}-{n}"))
            .header("x-device-id", format!("bench-device-{i}"))
            .json(&serde_json::json!({
                "from_account": from.current,
                "to_phone": to.phone,
                "amount": 1 + (n % 100) as i64,
                "currency": "CNY",
                "category": "transfer",
            }));
        Box::pin(async move {
            let response = request.send().await.map_err(|e| e.to_string())?;
            let status = response.status();
            let body = response.bytes().await.map_err(|e| e.to_string())?;
            if status.as_u16() == 201 {
                Ok(())
            } else {
                Err(format!("status {status}: {}", String::from_utf8_lossy(&body)))
            }
        })
    }))
}

/// Creates `n` customers with funded current accounts and open sessions, in-process and
/// concurrently (group commit makes this quick), with a progress line.
pub async fn seed_transfer_customers(app: &App, n: usize) -> anyhow::Result<Vec<TransferCustomer>> {
    seed_customers(app, n, huoban_ledger::Unit::Cny, 1_000_000_000).await
}

/// Creates `n` customers with `points` points each (granted from the bank's points
/// clearing) and open sessions, like [`seed_transfer_customers`].
pub async fn seed_points_customers(app: &App, n: usize, points: i64) -> anyhow::Result<Vec<TransferCustomer>> {
    seed_customers(app, n, huoban_ledger::Unit::Points, points).await
}

/// `n` customers with open sessions whose `unit` account (current account for CNY, points
/// account for points) holds `amount`, moved in from the bank's clearing for that unit.
async fn seed_customers(
    app: &App,
    n: usize,
    unit: huoban_ledger::Unit,
    amount: i64,
) -> anyhow::Result<Vec<TransferCustomer>> {
    anyhow::ensure!(n <= 100_000, "at most 100,000 customers per run");
    use futures::{StreamExt, TryStreamExt};
    use huoban_identity::{Channel, service::Registration};
    use huoban_ledger::{Amount, IdempotencyKey, TransferRequest, Unit};

    let started = Instant::now();
    // 150xxxxxxxx to 158xxxxxxxx: valid mainland mobile numbers, a random block per run.
    let base: u64 = 15_000_000_000 + u64::from(rand::random::<u16>() % 9_000) * 100_000;
    let mut rows = Vec::with_capacity(n);
    for i in 0..n as u64 {
        let reg = Registration {
            phone: (base + i).to_string(),
            name: format!("Bench {i}"),
            ..Default::default()
        };
        rows.push(
            app.identity
                .new_customer_row(&reg, None)
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        );
    }
    for chunk in rows.chunks(1000) {
        app.identity.store().insert_customers(chunk).await?;
    }
    let clearing = app.accounts.clearing(unit).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let done = Arc::new(AtomicU64::new(0));
    let customers: Vec<TransferCustomer> = futures::stream::iter(rows.into_iter().enumerate())
        .map(|(_, row)| {
            let done = done.clone();
            async move {
                let id = uuid::Uuid::parse_str(&row.id)?;
                let accounts = app
                    .accounts
                    .ensure_standard_accounts(id)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let fund = TransferRequest::single(
                    IdempotencyKey::new("bench", format!("fund-{}", row.id)).map_err(|e| anyhow::anyhow!("{e}"))?,
                    unit,
                    clearing,
                    if unit == Unit::Points {
                        accounts.points
                    } else {
                        accounts.current
                    },
                    Amount::new(amount).map_err(|e| anyhow::anyhow!("{e}"))?,
                );
                app.ledger.transfer(fund).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                let session = app
                    .identity
                    .open_customer_session(id, Channel::App)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                if finished.is_multiple_of(500) || finished == n as u64 {
                    eprint!("\r[seeding] {finished}/{n} customers with funded accounts   ");
                }
                Ok::<_, anyhow::Error>(TransferCustomer {
                    token: session.token,
                    current: accounts.current.as_uuid(),
                    phone: row.phone,
                })
            }
        })
        .buffer_unordered(64)
        .try_collect()
        .await?;
    eprintln!("\n[seeding] done in {:.1}s", started.elapsed().as_secs_f64());
    Ok(customers)
}
