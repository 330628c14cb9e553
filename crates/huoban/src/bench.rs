//! The benchmark harness behind `huoban bench <scenario>`: a load generator that starts a
//! Huoban server in-process on a loopback port (or targets `--url`), warms up, runs for a
//! fixed time with a fixed number of concurrent clients, shows a progress line, and prints
//! throughput and latency percentiles; `--json FILE` writes the same figures.
//!
//! Scenarios:
//! - `http-read`: an authenticated read (`GET /api/v1/me`) by one signed-in customer.

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
    _tmp: Option<tempfile::TempDir>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Target {
    pub async fn start(args_url: Option<&str>, mut config: Config, database_given: bool) -> anyhow::Result<Target> {
        if let Some(url) = args_url {
            return Ok(Target {
                base_url: url.trim_end_matches('/').to_owned(),
                backend: "remote".into(),
                _tmp: None,
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
        config.listen = "127.0.0.1:0".parse()?;
        // Load tests hit the server far harder than the default request timeout expects.
        config.http.request_timeout_secs = 120;
        let app = App::start(config, Arc::new(SystemClock)).await?;
        let backend = app.db.backend().name().to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.serve(listener, async move {
            let _ = rx.await;
        }));
        eprintln!("started a Huoban server at {base_url} on {backend}");
        Ok(Target {
            base_url,
            backend,
            _tmp: tmp,
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
    let target = Target::start(args.url.as_deref(), config, database_given).await?;
    let client = client()?;
    let base = target.base_url.clone();
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
    };
    let load = run_load(
        op,
        args.concurrency,
        Duration::from_secs(args.warmup),
        Duration::from_secs(args.duration),
    )
    .await?;
    let report = report(name, &target.backend, args.concurrency, &load);
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
