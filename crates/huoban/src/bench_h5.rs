//! `huoban bench h5`: the campaign hub's first load on a slow phone. Headless Chromium
//! (Debian's `chromium` through `chromedriver`, at a 390×844 phone viewport, set to zh-CN
//! like the customer) with a cold cache, the CPU slowed 4×
//! (`Emulation.setCPUThrottlingRate`) and a slow-3G-like network
//! (`Network.emulateNetworkConditions`: 400 ms round trip, 400 kbit/s down and up), both
//! through chromedriver's `goog/cdp/execute`. For each of `--concurrency` loads (default
//! 5 here) it records the bytes transferred (Resource Timing `transferSize`: the page and
//! its assets, and the API calls it makes, images aside) and the time until the page is
//! interactive (the `huoban:interactive` mark the page sets once its session, strings and
//! frame are in place and its handlers attached) and until the goal's bar is on screen (the
//! `huoban:goal` mark), and prints the medians. With `HUOBAN_BENCH_H5_WATERFALL` set it
//! also prints each load's requests (start, connection, request, first and last byte,
//! bytes), to see the critical path.

use std::{process::Stdio, time::Duration};

use anyhow::{Context, bail};
use fantoccini::{Client, ClientBuilder, wd::WebDriverCompatibleCommand};
use serde_json::{Value, json};

use crate::bench::{BenchReport, machine_description};

/// A Chrome DevTools Protocol command sent through chromedriver
/// (`client.issue_cmd(Cdp("Network.enable", json!({})))`); the browser tests use it too.
#[derive(Debug)]
pub struct Cdp(pub &'static str, pub Value);

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(&self, base_url: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/goog/cdp/execute", session_id.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({ "cmd": self.0, "params": self.1 }).to_string()),
        )
    }
}

struct Driver(std::process::Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn browser() -> anyhow::Result<(Client, Driver)> {
    let driver_path = std::env::var("HUOBAN_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
    let chromium = std::env::var("HUOBAN_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !std::path::Path::new(&driver_path).exists() {
        bail!("{driver_path} is missing: install Debian's chromium and chromium-driver");
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let driver = Driver(
        std::process::Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting chromedriver")?,
    );
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            // A phone set to the customer's language (zh-CN), as the bank's customers' are.
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run", "--lang=zh-CN"],
            "mobileEmulation": { "deviceMetrics": { "width": 390, "height": 844, "pixelRatio": 2.0, "touch": true } },
            "prefs": { "intl.accept_languages": "zh-CN" }
        }),
    );
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        if let Ok(client) = ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            return Ok((client, driver));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("chromedriver did not open a session")
}

/// One cold first load of the hub; returns (bytes of /h5 assets and page, bytes of API
/// calls, milliseconds until interactive, milliseconds until the goal's bar is shown).
async fn one_load(client: &Client, base: &str) -> anyhow::Result<(u64, u64, f64, f64)> {
    client.issue_cmd(Cdp("Network.enable", json!({}))).await?;
    client.issue_cmd(Cdp("Network.clearBrowserCache", json!({}))).await?;
    client
        .issue_cmd(Cdp("Network.setCacheDisabled", json!({ "cacheDisabled": true })))
        .await?;
    client
        .issue_cmd(Cdp(
            "Network.emulateNetworkConditions",
            json!({ "offline": false, "latency": 400, "downloadThroughput": 50_000, "uploadThroughput": 50_000 }),
        ))
        .await?;
    client
        .issue_cmd(Cdp("Emulation.setCPUThrottlingRate", json!({ "rate": 4 })))
        .await?;
    client.goto(&format!("{base}/h5/")).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let ready = client
            .execute(
                "return performance.getEntriesByName('huoban:interactive').length > 0 && performance.getEntriesByName('huoban:goal').length > 0",
                vec![],
            )
            .await?;
        if ready.as_bool() == Some(true) {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the hub did not become interactive within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let the calls the page makes after it is interactive finish, so they are counted.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let figures = client
        .execute(
            "const nav = performance.getEntriesByType('navigation')[0];
             let assets = nav.transferSize, api = 0;
             for (const r of performance.getEntriesByType('resource')) {
               if (r.initiatorType === 'img') continue;
               if (new URL(r.name).pathname.startsWith('/api/')) api += r.transferSize; else assets += r.transferSize;
             }
             return [assets, api, performance.getEntriesByName('huoban:interactive')[0].startTime, performance.getEntriesByName('huoban:goal')[0].startTime];",
            vec![],
        )
        .await?;
    if std::env::var_os("HUOBAN_BENCH_H5_WATERFALL").is_some() {
        let rows = client
            .execute(
                "const rows = [performance.getEntriesByType('navigation')[0], ...performance.getEntriesByType('resource')];
                 return rows.map((r) => [Math.round(r.startTime), Math.round(r.connectEnd), Math.round(r.requestStart), Math.round(r.responseStart), Math.round(r.responseEnd), r.transferSize, new URL(r.name).pathname]);",
                vec![],
            )
            .await?;
        eprintln!("  start  connEnd reqStart respStart respEnd  bytes  path");
        for r in rows.as_array().into_iter().flatten() {
            let c = |i: usize| r.get(i).map(ToString::to_string).unwrap_or_default();
            eprintln!(
                "  {:>5} {:>7} {:>8} {:>9} {:>7} {:>6}  {}",
                c(0),
                c(1),
                c(2),
                c(3),
                c(4),
                c(5),
                c(6).trim_matches('"')
            );
        }
    }
    let f = figures.as_array().context("figures")?;
    let n = |i: usize| f.get(i).and_then(Value::as_f64).unwrap_or(0.0);
    client
        .issue_cmd(Cdp("Emulation.setCPUThrottlingRate", json!({ "rate": 1 })))
        .await?;
    Ok((n(0) as u64, n(1) as u64, n(2), n(3)))
}

/// Runs the scenario against `base` with a signed-in customer's `token`.
pub async fn run(base: &str, token: &str, loads: usize, backend: &str) -> anyhow::Result<BenchReport> {
    let http = crate::bench::client()?;
    // An in-process server compresses its assets in the background; measure with them.
    huoban_web::Web::embedded().wait_compressed();
    let target_date = jiff::Zoned::now().date().checked_add(jiff::Span::new().months(10))?;
    // A goal, so the hub draws its progress bar as a customer with a goal sees it.
    let goal = http
        .post(format!("{base}/api/v1/goals"))
        .bearer_auth(token)
        .json(&json!({ "name": "旅行基金", "target_amount": 1_000_000, "target_date": target_date.to_string() }))
        .send()
        .await?;
    if !goal.status().is_success() {
        bail!("creating the benchmark goal failed: {}", goal.text().await?);
    }
    let (client, _driver) = browser().await?;
    client.goto(&format!("{base}/h5/signin")).await?;
    client
        .execute(
            &format!("localStorage.setItem('huoban.token', {})", json!(token)),
            vec![],
        )
        .await?;
    let started = std::time::Instant::now();
    let mut runs = Vec::new();
    for i in 0..loads.max(1) {
        let run = one_load(&client, base).await?;
        eprintln!(
            "load {}: {} B page and assets, {} B API, interactive after {:.0} ms, goal bar after {:.0} ms",
            i + 1,
            run.0,
            run.1,
            run.2,
            run.3
        );
        runs.push(run);
    }
    let _ = client.close().await;
    let mut tti: Vec<f64> = runs.iter().map(|r| r.2).collect();
    tti.sort_by(f64::total_cmp);
    let median = tti[tti.len() / 2];
    let mut assets: Vec<u64> = runs.iter().map(|r| r.0).collect();
    assets.sort_unstable();
    let mut api: Vec<u64> = runs.iter().map(|r| r.1).collect();
    api.sort_unstable();
    let mut extra = serde_json::Map::new();
    extra.insert(
        "network".into(),
        json!("400 ms RTT, 400 kbit/s down and up; CPU 4x slower"),
    );
    extra.insert("page_bytes".into(), json!(assets[assets.len() / 2]));
    extra.insert("api_bytes".into(), json!(api[api.len() / 2]));
    extra.insert(
        "total_kb".into(),
        json!(((assets[assets.len() / 2] + api[api.len() / 2]) as f64 / 1024.0 * 10.0).round() / 10.0),
    );
    extra.insert("interactive_ms".into(), json!(median.round()));
    let mut shown: Vec<f64> = runs.iter().map(|r| r.3).collect();
    shown.sort_by(f64::total_cmp);
    extra.insert("goal_bar_ms".into(), json!(shown[shown.len() / 2].round()));
    extra.insert(
        "interactive_all_ms".into(),
        json!(tti.iter().map(|t| t.round()).collect::<Vec<_>>()),
    );
    Ok(BenchReport {
        scenario: "h5".into(),
        backend: backend.to_owned(),
        concurrency: 1,
        duration_secs: started.elapsed().as_secs_f64(),
        operations: runs.len() as u64,
        errors: 0,
        throughput_per_sec: 0.0,
        p50_ms: median,
        p99_ms: *tti.last().unwrap_or(&median),
        max_ms: *tti.last().unwrap_or(&median),
        machine: machine_description(),
        date: jiff::Zoned::now().date().to_string(),
        extra,
    })
}
