//! The H5 pages in a real headless Chromium (Debian's `chromium` driven through
//! `chromedriver` with fantoccini) at a phone viewport, against a real server on SQLite and
//! on PostgreSQL: sign in, set a goal and watch a deposit move the bar live, check in, a
//! branching questionnaire down two paths, rewards (a claim, out of stock, not enough
//! points), the inbox, accounts and alerts, elderly mode, English, an expired session, and
//! an axe-core scan of every page (no serious or critical violations).
//!
//! Without chromedriver or axe-core the tests skip with a message, except under `CI=true`,
//! where they fail (`scripts/test` installs both). A failing journey leaves a screenshot in
//! `target/browser-screenshots/`.

#[path = "../api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::{path::PathBuf, process::Stdio, time::Duration};

use anyhow::{Context, anyhow, bail};
use fantoccini::{Client, ClientBuilder, Locator};
use helpers::TestApp;
use huoban::bench_h5::Cdp;
use huoban_identity::Role;
use huoban_kit::{Backend, Clock};
use huoban_ledger::{AccountId, Amount, IdempotencyKey, TransferMeta, TransferRequest};
use jiff::SignedDuration;
use serde_json::{Value, json};
use uuid::Uuid;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn screenshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/browser-screenshots")
}

/// axe-core's source, installed by `scripts/test` (or here) with npm.
fn axe_source() -> Option<String> {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let prefix = PathBuf::from(home).join(".cache/huoban/npm");
    let file = prefix.join("node_modules/axe-core/axe.min.js");
    if !file.exists() {
        let _ = std::process::Command::new("npm")
            .args(["install", "--silent", "--prefix"])
            .arg(&prefix)
            .arg("axe-core@4")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    std::fs::read_to_string(file).ok()
}

/// A chromedriver process and a session in it; both end when dropped.
struct Browser {
    client: Client,
    driver: std::process::Child,
    axe: String,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

async fn browser() -> Option<Browser> {
    let driver_path = std::env::var("HUOBAN_CHROMEDRIVER").unwrap_or_else(|_| CHROMEDRIVER.into());
    let chromium = std::env::var("HUOBAN_CHROMIUM").unwrap_or_else(|_| CHROMIUM.into());
    let axe = axe_source();
    if !std::path::Path::new(&driver_path).exists() || !std::path::Path::new(&chromium).exists() || axe.is_none() {
        assert!(
            !ci(),
            "CI=true but chromium ({chromium}), chromedriver ({driver_path}) or axe-core is missing; scripts/test installs them"
        );
        eprintln!(
            "skipping the browser tests: chromium, chromedriver or axe-core is missing (scripts/test installs them)"
        );
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let driver = std::process::Command::new(&driver_path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=390,844", "--lang=zh-CN", "--no-first-run"],
            "mobileEmulation": {
                "deviceMetrics": { "width": 390, "height": 844, "pixelRatio": 2.0, "touch": true },
                "userAgent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Mobile Safari/537.36"
            },
            "prefs": { "intl.accept_languages": "zh-CN" }
        }),
    );
    let url = format!("http://127.0.0.1:{port}");
    let mut last = None;
    for _ in 0..100 {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(client) => {
                return Some(Browser {
                    client,
                    driver,
                    axe: axe.unwrap_or_default(),
                });
            }
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("chromedriver did not start a session: {last:?}");
}

impl Browser {
    async fn js(&self, script: &str) -> anyhow::Result<Value> {
        self.client
            .execute(script, vec![])
            .await
            .with_context(|| format!("script {script}"))
    }

    /// Waits until the JavaScript expression is truthy.
    async fn until(&self, expr: &str, what: &str) -> anyhow::Result<()> {
        let script = format!("try {{ return !!({expr}); }} catch (e) {{ return false; }}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            if self.js(&script).await?.as_bool() == Some(true) {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                let url = self
                    .client
                    .current_url()
                    .await
                    .map(|u| u.to_string())
                    .unwrap_or_default();
                let text = self
                    .js("return document.body ? document.body.innerText.slice(0, 600) : ''")
                    .await?;
                bail!("timed out waiting for {what} ({expr}) on {url}; page text: {text}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Opens a page and waits until it has started (strings loaded, frame drawn).
    async fn open(&self, base: &str, path: &str) -> anyhow::Result<()> {
        self.client.goto(&format!("{base}{path}")).await?;
        self.until(
            "document.body && !document.body.hasAttribute('aria-busy')",
            "page start",
        )
        .await
    }

    async fn click(&self, css: &str) -> anyhow::Result<()> {
        self.js(&format!(
            "document.querySelector({})?.scrollIntoView({{block: 'center'}})",
            json!(css)
        ))
        .await?;
        self.client
            .find(Locator::Css(css))
            .await
            .with_context(|| format!("find {css}"))?
            .click()
            .await
            .with_context(|| format!("click {css}"))?;
        Ok(())
    }

    async fn type_into(&self, css: &str, text: &str) -> anyhow::Result<()> {
        let el = self
            .client
            .find(Locator::Css(css))
            .await
            .with_context(|| format!("find {css}"))?;
        el.clear().await?;
        el.send_keys(text).await?;
        Ok(())
    }

    /// Sets a field's value as a picker would (date inputs, selects) and fires `change`.
    async fn set(&self, css: &str, value: &str) -> anyhow::Result<()> {
        let script = format!(
            "const el = document.querySelector({css}); el.value = {value}; \
             el.dispatchEvent(new Event('input', {{bubbles: true}})); el.dispatchEvent(new Event('change', {{bubbles: true}}));",
            css = json!(css),
            value = json!(value)
        );
        self.js(&script).await.map(|_| ())
    }

    async fn text(&self, css: &str) -> anyhow::Result<String> {
        let v = self
            .js(&format!(
                "const e = document.querySelector({}); return e ? e.textContent : null;",
                json!(css)
            ))
            .await?;
        v.as_str().map(str::to_owned).ok_or_else(|| anyhow!("no element {css}"))
    }

    /// Runs axe-core on the page: no serious or critical violations.
    async fn accessible(&self, page: &str) -> anyhow::Result<()> {
        self.client.execute(&self.axe, vec![]).await.context("inject axe")?;
        let found = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { resultTypes: ['violations'] }).then((r) => done(r.violations
                   .filter((v) => v.impact === 'serious' || v.impact === 'critical')
                   .map((v) => v.id + ' (' + v.impact + '): ' + v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | '))),
                   (e) => done(['axe failed: ' + e]));",
                vec![],
            )
            .await
            .context("axe run")?;
        let list = found.as_array().cloned().unwrap_or_default();
        if !list.is_empty() {
            bail!("accessibility violations on {page}: {list:#?}");
        }
        Ok(())
    }

    async fn screenshot(&self, name: &str) {
        if let Ok(png) = self.client.screenshot().await {
            let dir = screenshot_dir();
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(dir.join(format!("{name}.png")), png);
        }
    }
}

// ---- the test bank ----

struct Customer {
    phone: String,
    token: String,
    current: String,
    points: String,
}

async fn fund(app: &TestApp, account: &str, amount: i64) {
    let ledger = &app.app.ledger;
    let account: AccountId = account.parse::<Uuid>().expect("account id").into();
    let unit = ledger.account(account).await.expect("account").unit;
    let clearing = app.app.accounts.clearing(unit).await.expect("clearing account");
    let key = IdempotencyKey::new("test:funding", Uuid::now_v7().to_string()).expect("key");
    let request = TransferRequest::single(key, unit, clearing, account, Amount::new(amount).expect("amount"))
        .with_meta(TransferMeta {
            description: Some("工资".into()),
            merchant_category: Some("salary".into()),
            ..TransferMeta::default()
        });
    ledger.transfer(request).await.expect("funded");
}

async fn customer(app: &TestApp, money: i64, points: i64) -> Customer {
    let phone = format!("139{:08}", rand::random::<u32>() % 100_000_000);
    let token = app.customer(&phone).await;
    let accounts = app.get("/api/v1/accounts", Some(&token)).await;
    let find = |kind: &str| {
        accounts.body["items"]
            .as_array()
            .and_then(|items| items.iter().find(|a| a["type"] == kind))
            .and_then(|a| a["id"].as_str())
            .unwrap_or_else(|| panic!("{kind} account in {:?}", accounts.body))
            .to_owned()
    };
    let (current, points_account) = (find("current"), find("points"));
    if money > 0 {
        fund(app, &current, money).await;
    }
    if points > 0 {
        fund(app, &points_account, points).await;
    }
    Customer {
        phone,
        token,
        current,
        points: points_account,
    }
}

async fn reward(app: &TestApp, staff: &str, title: &str, price: i64, stock: i64) -> String {
    let at = |h: i64| {
        app.clock
            .now()
            .checked_add(SignedDuration::from_hours(h))
            .expect("instant")
            .to_string()
    };
    let created = app
        .post(
            "/api/v1/staff/rewards",
            Some(staff),
            json!({
                "titles": { "zh-CN": title, "en": title },
                "points_price": price,
                "total_stock": stock,
                "per_customer_limit": 1,
                "claimable_from": at(-1),
                "claimable_until": at(24 * 10),
                "coupon_valid_days": 30,
            }),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{:?}", created.body);
    created.body["id"].as_str().expect("reward id").to_owned()
}

/// Runs a journey; on failure keeps a screenshot and the error.
async fn run<F, Fut>(backend: Backend, name: &str, journey: F)
where
    F: FnOnce(TestApp, Browser) -> Fut,
    Fut: std::future::Future<Output = (Browser, anyhow::Result<()>)>,
{
    let Some(app) = helpers::spawn_app(backend).await else {
        return;
    };
    let Some(browser) = browser().await else { return };
    let (browser, outcome) = journey(app, browser).await;
    if let Err(e) = outcome {
        let shot = format!("{name}-{}", backend_name(backend));
        browser.screenshot(&shot).await;
        panic!("{e:#}\n(screenshot: {}/{shot}.png)", screenshot_dir().display());
    }
}

fn backend_name(b: Backend) -> &'static str {
    match b {
        Backend::Sqlite => "sqlite",
        _ => "postgres",
    }
}

macro_rules! journeys {
    ($($name:ident),* $(,)?) => { $(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::run(huoban_kit::Backend::Sqlite, stringify!($name), |a, b| async move { let r = super::$name(&a, &b).await; (b, r) }).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::run(huoban_kit::Backend::Postgres, stringify!($name), |a, b| async move { let r = super::$name(&a, &b).await; (b, r) }).await;
            }
        }
    )* };
}

journeys!(goal_checkin_quiz_and_inbox, rewards_preferences_and_errors);

/// Sign in (sent there by the goal page, and back), set a goal through the wizard, see a
/// deposit made elsewhere move the bar without a reload, deposit from the page, check in,
/// take the risk questionnaire down two branches, read the inbox; axe on every page.
async fn goal_checkin_quiz_and_inbox(app: &TestApp, b: &Browser) -> anyhow::Result<()> {
    let base = &app.base;
    let c = customer(app, 2_000_000, 0).await;

    // Not signed in: the goal page sends us to sign-in, which brings us back.
    b.client.goto(&format!("{base}/h5/goal")).await?;
    b.until(
        "location.pathname === '/h5/signin' && location.search.includes('next=')",
        "sign-in redirect",
    )
    .await?;
    b.until(
        "document.body && !document.body.hasAttribute('aria-busy')",
        "sign-in page",
    )
    .await?;
    b.accessible("/h5/signin").await?;
    b.type_into("#signin [name=phone]", &c.phone).await?;
    b.type_into("#signin [name=password]", "wrong-password").await?;
    b.click("#signin button[type=submit]").await?;
    b.until("!document.querySelector('#page-error').hidden && document.querySelector('#page-error').textContent.includes('密码不正确')", "localized bad-credentials message").await?;
    assert_eq!(
        b.js("return document.querySelector('#signin [name=phone]').value")
            .await?,
        json!(c.phone),
        "the phone number is kept"
    );
    b.type_into("#signin [name=password]", "secret-pass").await?;
    b.click("#signin button[type=submit]").await?;
    b.until(
        "location.pathname === '/h5/goal' && document.body && !document.body.hasAttribute('aria-busy')",
        "back on the goal page",
    )
    .await?;

    // The wizard: target → plan → confirm.
    b.until("document.querySelector('h-goal-wizard input[name=name]')", "wizard")
        .await?;
    b.type_into("h-goal-wizard [name=name]", "旅行基金").await?;
    b.type_into("h-goal-wizard [name=amount]", "10000").await?;
    let date = app
        .clock
        .now()
        .checked_add(SignedDuration::from_hours(24 * 300))
        .expect("date")
        .to_string();
    b.set("h-goal-wizard [name=date]", &date[..10]).await?;
    b.click("h-goal-wizard button[type=submit]").await?;
    b.until("document.querySelector('h-goal-wizard [data-back]')", "plan step")
        .await?;
    let plan = b.text("h-goal-wizard .big").await?;
    assert!(plan.contains("每月存"), "the plan shows a monthly amount: {plan}");
    b.click("h-goal-wizard button[type=submit]").await?;
    b.until(
        "document.querySelector('h-goal-wizard button[type=submit]').textContent.includes('创建')",
        "confirm step",
    )
    .await?;
    b.click("h-goal-wizard button[type=submit]").await?;
    b.until(
        "document.querySelector('#goal[goal-id] [role=progressbar]')",
        "the new goal's bar",
    )
    .await?;
    b.until(
        "document.querySelector('#goal [role=progressbar]').getAttribute('aria-valuenow') === '0'",
        "0 %",
    )
    .await?;
    b.accessible("/h5/goal").await?;

    // A deposit made elsewhere (another device) moves the bar without a reload.
    b.js("window.__sameDocument = 'yes'").await?;
    let goal = b
        .js("return document.querySelector('#goal').getAttribute('goal-id')")
        .await?;
    let goal = goal.as_str().context("goal id")?.to_owned();
    let deposit = app
        .send(
            reqwest::Method::POST,
            &format!("/api/v1/goals/{goal}/deposits"),
            Some(&c.token),
            Some(json!({ "from_account": c.current, "amount": 500_000 })),
            &[("idempotency-key", &Uuid::now_v7().to_string())],
        )
        .await;
    assert_eq!(deposit.status.as_u16(), 201, "{:?}", deposit.body);
    b.until(
        "document.querySelector('#goal [role=progressbar]').getAttribute('aria-valuenow') === '50'",
        "the bar at 50 % live",
    )
    .await?;
    assert_eq!(b.js("return window.__sameDocument").await?, json!("yes"), "no reload");
    b.until(
        "document.querySelectorAll('#goal .mark.hit').length === 2",
        "25 % and 50 % milestones lit",
    )
    .await?;

    // A deposit from the page; an impossible one is refused with a localized message and
    // the amount stays in the field.
    b.type_into("#deposit-form [name=amount]", "100").await?;
    b.click("#deposit-form button[type=submit]").await?;
    b.until(
        "document.querySelector('#goal [role=progressbar]').getAttribute('aria-valuenow') === '51'",
        "the bar at 51 %",
    )
    .await?;
    b.until("!document.querySelector('.toast, .confetti')", "the toast gone")
        .await?;
    b.screenshot("goal-page").await;
    b.type_into("#deposit-form [name=amount]", "99999").await?;
    b.click("#deposit-form button[type=submit]").await?;
    b.until("!document.querySelector('#page-error').hidden && document.querySelector('#page-error').textContent.includes('余额不足')", "insufficient funds, localized").await?;
    assert_eq!(
        b.js("return document.querySelector('#deposit-form [name=amount]').value")
            .await?,
        json!("99999"),
        "input kept"
    );

    // Offline: a localized message, the amount kept, the Idempotency-Key kept for the
    // retry; back online the retry deposits once.
    let goal_before = app.get(&format!("/api/v1/goals/{goal}"), Some(&c.token)).await.body["saved"].as_i64();
    b.client.issue_cmd(Cdp("Network.enable", json!({}))).await?;
    b.client
        .issue_cmd(Cdp(
            "Network.emulateNetworkConditions",
            json!({ "offline": true, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1 }),
        ))
        .await?;
    b.type_into("#deposit-form [name=amount]", "10").await?;
    b.click("#deposit-form button[type=submit]").await?;
    b.until("!document.querySelector('#page-error').hidden && /网络|服务器/.test(document.querySelector('#page-error').textContent)", "an offline message").await?;
    assert_eq!(
        b.js("return document.querySelector('#deposit-form [name=amount]').value")
            .await?,
        json!("10"),
        "input kept offline"
    );
    let kept = b
        .js(&format!("return localStorage.getItem('huoban.idem.deposit:{goal}')"))
        .await?;
    assert!(kept.is_string(), "the key is kept for the retry");
    b.client
        .issue_cmd(Cdp(
            "Network.emulateNetworkConditions",
            json!({ "offline": false, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1 }),
        ))
        .await?;
    b.click("#deposit-form button[type=submit]").await?;
    b.until(&format!("localStorage.getItem('huoban.idem.deposit:{goal}') === null && document.querySelector('#deposit-form [name=amount]').value === ''"), "the retry deposited").await?;
    let goal_after = app.get(&format!("/api/v1/goals/{goal}"), Some(&c.token)).await.body["saved"].as_i64();
    assert_eq!(goal_after, goal_before.map(|s| s + 1_000), "one deposit of 10");

    // Check in.
    b.open(base, "/h5/checkin").await?;
    b.until("document.querySelector('[data-checkin]')", "check-in button")
        .await?;
    b.accessible("/h5/checkin").await?;
    b.click("[data-checkin]").await?;
    b.until("!document.querySelector('#outcome').hidden", "check-in outcome")
        .await?;
    b.until(
        "document.querySelector('[data-streak]').textContent.includes('1')",
        "a one-day streak",
    )
    .await?;
    b.until("document.querySelector('[data-checkin]').disabled", "checked in today")
        .await?;

    // The risk questionnaire branches on the first answer: two different second questions.
    let mut seconds = Vec::new();
    let mut results = Vec::new();
    for pick in ["first", "last"] {
        b.open(base, "/h5/quiz?id=risk-appetite").await?;
        b.until("document.querySelector('h-quiz legend')", "first question")
            .await?;
        if pick == "first" {
            b.accessible("/h5/quiz").await?;
            // Answering without a choice keeps the form and says why.
            b.click("h-quiz button[type=submit]").await?;
            b.until("document.querySelector('h-quiz .alert')", "pick an answer")
                .await?;
        }
        let mut asked = Vec::new();
        for _ in 0..10 {
            if b.js("return !!document.querySelector('h-quiz [data-result]')")
                .await?
                .as_bool()
                == Some(true)
            {
                break;
            }
            let legend = b.text("h-quiz legend").await?;
            asked.push(legend.clone());
            b.click(&format!("h-quiz label.choice:{pick}-of-type input")).await?;
            b.click("h-quiz button[type=submit]").await?;
            b.until(
                &format!("document.querySelector('h-quiz [data-result]') || (document.querySelector('h-quiz legend') && document.querySelector('h-quiz legend').textContent !== {})", json!(legend)),
                "the next question",
            )
            .await?;
        }
        seconds.push(asked.get(1).cloned().context("a second question")?);
        results.push(
            b.js("return [...document.querySelectorAll('h-quiz [data-result]')].map((e) => e.textContent).join(' | ')")
                .await?,
        );
    }
    assert_ne!(
        seconds[0], seconds[1],
        "the two first answers lead to different questions"
    );
    assert_ne!(results[0], results[1], "and to different results");

    // The inbox has the milestone messages; opening one marks it read.
    let unread = app.get("/api/v1/inbox/unread-count", Some(&c.token)).await.body["unread"]
        .as_i64()
        .unwrap_or(0);
    assert!(unread >= 2, "milestone messages are in the inbox ({unread})");
    b.open(base, "/h5/inbox").await?;
    b.until(
        "document.querySelectorAll('h-inbox summary').length >= 2",
        "messages listed",
    )
    .await?;
    b.accessible("/h5/inbox").await?;
    b.click("h-inbox summary").await?;
    for _ in 0..50 {
        let now = app.get("/api/v1/inbox/unread-count", Some(&c.token)).await.body["unread"]
            .as_i64()
            .unwrap_or(0);
        if now < unread {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let now = app.get("/api/v1/inbox/unread-count", Some(&c.token)).await.body["unread"].as_i64();
    assert_eq!(now, Some(unread - 1), "opening a message marks it read");

    // The hub shows the goal.
    b.open(base, "/h5/").await?;
    b.until(
        "document.querySelector('h-goal-progress [role=progressbar]')",
        "hub goal",
    )
    .await?;
    b.accessible("/h5/").await?;

    // Behaviour events: every page view was queued, sent in batches and stored once, and
    // the queue is empty afterwards.
    b.js("return import('/h5/assets/huoban.js').then((m) => m.events.flush())")
        .await?;
    b.until(
        "JSON.parse(localStorage.getItem('huoban.events') || '[]').length === 0",
        "the event queue drained",
    )
    .await?;
    let events = app.get("/api/v1/events?limit=100", Some(&c.token)).await;
    let views: Vec<&Value> = events.body["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|e| e["type"] == "page_view" && e["channel"] == "h5")
                .collect()
        })
        .unwrap_or_default();
    let pages: Vec<&str> = views.iter().filter_map(|e| e["properties"]["page"].as_str()).collect();
    for page in ["/h5/signin", "/h5/goal", "/h5/checkin", "/h5/quiz", "/h5/inbox", "/h5/"] {
        assert!(pages.contains(&page), "a page view of {page} stored: {pages:?}");
    }
    assert_eq!(pages.iter().filter(|p| **p == "/h5/quiz").count(), 2, "{pages:?}");
    let mut ids: Vec<&str> = views.iter().filter_map(|e| e["id"].as_str()).collect();
    let all = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), all, "no duplicates");
    Ok(())
}

/// Rewards: a claim, out of stock and not enough points shown localized; accounts and an
/// alert; elderly mode (≥ 18 px, ≥ 48 px targets, saved); English (saved); an expired
/// session goes to sign-in and back; the gallery; axe on each.
async fn rewards_preferences_and_errors(app: &TestApp, b: &Browser) -> anyhow::Result<()> {
    let base = &app.base;
    let c = customer(app, 100_000, 300).await;
    let staff = app.staff(Role::Operator).await;
    let cheap = reward(app, &staff, "咖啡券", 100, 5).await;
    let dear = reward(app, &staff, "咖啡机", 5_000, 5).await;
    let gone = reward(app, &staff, "限量红包", 10, 1).await;
    // Someone else takes the last one of `gone`.
    let other = customer(app, 0, 100).await;
    let taken = app
        .send(
            reqwest::Method::POST,
            &format!("/api/v1/rewards/{gone}/claims"),
            Some(&other.token),
            Some(json!({})),
            &[("idempotency-key", &Uuid::now_v7().to_string())],
        )
        .await;
    assert_eq!(taken.status.as_u16(), 201, "{:?}", taken.body);

    b.client.goto(&format!("{base}/h5/gallery")).await?;
    b.until("document.body && !document.body.hasAttribute('aria-busy') && document.querySelectorAll('#gallery section').length >= 12", "gallery").await?;
    b.accessible("/h5/gallery").await?;

    b.client.goto(&format!("{base}/h5/signin")).await?;
    b.until("document.body && !document.body.hasAttribute('aria-busy')", "sign-in")
        .await?;
    b.js(&format!("localStorage.setItem('huoban.token', {})", json!(c.token)))
        .await?;

    b.open(base, "/h5/rewards").await?;
    b.until(
        "document.querySelectorAll('[data-reward]').length === 3",
        "three rewards",
    )
    .await?;
    b.until(
        "document.querySelector('[data-points]').textContent === '300'",
        "points balance",
    )
    .await?;
    b.accessible("/h5/rewards").await?;
    b.click(&format!("[data-reward='{cheap}'] button")).await?;
    b.until("document.querySelector('#coupons code')", "a coupon").await?;
    b.until(
        "document.querySelector('[data-points]').textContent === '200'",
        "points spent",
    )
    .await?;
    b.click(&format!("[data-reward='{dear}'] button")).await?;
    b.until(
        &format!("document.querySelector(\"[data-reward='{dear}'] .alert\")"),
        "insufficient points",
    )
    .await?;
    let msg = b.text(&format!("[data-reward='{dear}'] .alert")).await?;
    assert!(msg.contains("积分不够"), "localized insufficient-points: {msg}");
    b.click(&format!("[data-reward='{gone}'] button")).await?;
    b.until(
        &format!("document.querySelector(\"[data-reward='{gone}'] .alert\")"),
        "out of stock",
    )
    .await?;
    let msg = b.text(&format!("[data-reward='{gone}'] .alert")).await?;
    assert!(msg.contains("兑完"), "localized out-of-stock: {msg}");
    let claims = app.get("/api/v1/coupons", Some(&c.token)).await;
    assert_eq!(
        claims.body["items"].as_array().map(Vec::len),
        Some(1),
        "one claim, no double"
    );

    // Accounts, history and a balance alert.
    b.open(base, "/h5/accounts").await?;
    b.until("document.querySelectorAll('[data-balance]').length >= 3", "balances")
        .await?;
    b.until("document.querySelector('#txs li strong')", "recent transactions")
        .await?;
    b.type_into("#alert-form [name=threshold]", "100").await?;
    b.click("#alert-form button[type=submit]").await?;
    b.until("document.querySelector('#alerts [data-del]')", "the alert listed")
        .await?;
    b.accessible("/h5/accounts").await?;

    // Elderly mode: large print, big targets, saved to the profile.
    b.click("[data-elderly]").await?;
    b.until("document.documentElement.dataset.mode === 'elderly'", "elderly mode")
        .await?;
    let font = b
        .js("return parseFloat(getComputedStyle(document.body).fontSize)")
        .await?;
    assert!(font.as_f64().unwrap_or(0.0) >= 18.0, "font size {font}");
    let target = b
        .js("return document.querySelector('#alert-form button').getBoundingClientRect().height")
        .await?;
    assert!(target.as_f64().unwrap_or(0.0) >= 48.0, "touch target {target}");
    b.accessible("/h5/accounts (elderly)").await?;
    for _ in 0..50 {
        if app.get("/api/v1/me", Some(&c.token)).await.body["preferences"]["elderly_mode"] == json!(true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        app.get("/api/v1/me", Some(&c.token)).await.body["preferences"]["elderly_mode"],
        json!(true)
    );

    // English, saved to the profile and kept on the next page.
    b.set("[data-lang]", "en").await?;
    b.until(
        "document.documentElement.lang === 'en' && document.querySelector('header h1').textContent === 'My accounts'",
        "English",
    )
    .await?;
    b.open(base, "/h5/rewards").await?;
    b.until(
        "document.querySelector('nav.tabs').textContent.includes('Rewards') && document.querySelector('[data-reward]')",
        "English rewards",
    )
    .await?;
    assert_eq!(
        b.js("return document.documentElement.dataset.mode").await?,
        json!("elderly")
    );
    assert_eq!(app.get("/api/v1/me", Some(&c.token)).await.body["locale"], json!("en"));
    b.click(&format!("[data-reward='{dear}'] button")).await?;
    b.until(
        &format!("document.querySelector(\"[data-reward='{dear}'] .alert\")"),
        "insufficient points",
    )
    .await?;
    let msg = b.text(&format!("[data-reward='{dear}'] .alert")).await?;
    assert!(msg.contains("enough points"), "English insufficient-points: {msg}");
    b.accessible("/h5/rewards (elderly, en)").await?;

    // The session ends while the customer is typing: to sign-in with a clear message,
    // then back where they were with what they typed.
    b.open(base, "/h5/accounts").await?;
    b.until("document.querySelector('[data-balance]')", "accounts").await?;
    b.type_into("#alert-form [name=threshold]", "123").await?;
    b.js("localStorage.setItem('huoban.token', 'expired-token')").await?;
    b.click("#alert-form button[type=submit]").await?;
    b.until(
        "location.pathname === '/h5/signin' && decodeURIComponent(location.search).includes('/h5/accounts')",
        "sign-in with the target kept",
    )
    .await?;
    b.until("!document.querySelector('#page-error').hidden && document.querySelector('#page-error').textContent.includes('session has ended')", "an expired-session message").await?;
    b.type_into("#signin [name=phone]", &c.phone).await?;
    b.type_into("#signin [name=password]", "secret-pass").await?;
    b.click("#signin button[type=submit]").await?;
    b.until(
        "location.pathname === '/h5/accounts' && document.querySelector('[data-balance]')",
        "back on accounts",
    )
    .await?;
    b.until(
        "document.querySelector('#alert-form [name=threshold]').value === '123'",
        "the typed amount back",
    )
    .await?;
    // Traditional Chinese too.
    b.set("[data-lang]", "zh-TW").await?;
    b.until(
        "document.documentElement.lang === 'zh-TW' && document.querySelector('header h1').textContent === '我的帳戶'",
        "Traditional Chinese",
    )
    .await?;
    let _ = (&c.points, &other.current);
    Ok(())
}
