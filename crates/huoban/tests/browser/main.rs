//! The H5 pages in a real headless Chromium (Debian's `chromium` driven through
//! `chromedriver` with fantoccini) at a phone viewport, against a real server on SQLite and
//! on PostgreSQL: sign in, set a goal and watch a deposit move the bar live, check in, a
//! branching questionnaire down two paths, rewards (a claim, out of stock, not enough
//! points), the inbox, accounts and alerts, elderly mode, English, an expired session;
//! campaign tasks claimed, a team challenge created and joined by a second customer, an
//! invite shared and completed by a second customer in a fresh browser; a goal's automatic
//! monthly transfer turned on from the page and paid when the test clock reaches its day,
//! points converted into the goal, campaign rewards (one whose campaign ends while the page
//! is open); the gallery in every language and mode; and an axe-core scan of every page (no
//! serious or critical violations).
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
use huoban_engage::goals::GoalsService;
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

/// A chromedriver process and a session in it (plus any fresh sessions a journey opens);
/// [`run`] closes the sessions and the driver ends when dropped.
struct Browser {
    client: Client,
    driver: Option<std::process::Child>,
    port: u16,
    axe: String,
    /// This session's Chromium profile directory (its processes name it).
    profile: PathBuf,
    /// Sessions opened with [`Browser::fresh`], closed with this one.
    others: std::sync::Mutex<Vec<(Client, PathBuf)>>,
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(driver) = &mut self.driver {
            let _ = driver.kill();
            let _ = driver.wait();
        }
    }
}

fn capabilities(chromium: &str, profile: &std::path::Path) -> serde_json::Map<String, Value> {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=390,844", "--lang=zh-CN", "--no-first-run",
                     format!("--user-data-dir={}", profile.display())],
            "mobileEmulation": {
                "deviceMetrics": { "width": 390, "height": 844, "pixelRatio": 2.0, "touch": true },
                "userAgent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Mobile Safari/537.36"
            },
            "prefs": { "intl.accept_languages": "zh-CN" }
        }),
    );
    caps
}

/// A new session (a new Chromium) with its own, fresh profile directory.
async fn session(port: u16) -> Result<(Client, PathBuf), fantoccini::error::NewSessionError> {
    let chromium = std::env::var("HUOBAN_CHROMIUM").unwrap_or_else(|_| CHROMIUM.into());
    let profile = std::env::temp_dir().join(format!("huoban-browser-{}", Uuid::now_v7()));
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(capabilities(&chromium, &profile))
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .map(|client| (client, profile))
}

/// Ends the session, then any of its Chromium processes still running (chromedriver does
/// not always wait for them before it is stopped), and removes its profile.
async fn end_session(client: Client, profile: &std::path::Path) {
    let _ = client.close().await;
    let marker = format!("--user-data-dir={}", profile.display());
    for _ in 0..20 {
        let mut alive = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse::<i32>().ok()) else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).split('\0').any(|arg| arg == marker) {
                alive.push(pid);
            }
        }
        if alive.is_empty() {
            break;
        }
        // Only this session's processes carry its unique profile directory.
        let _ = std::process::Command::new("kill")
            .args(alive.iter().map(ToString::to_string))
            .output();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = std::fs::remove_dir_all(profile);
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
    let mut last = None;
    for _ in 0..100 {
        match session(port).await {
            Ok((client, profile)) => {
                return Some(Browser {
                    client,
                    driver: Some(driver),
                    port,
                    axe: axe.unwrap_or_default(),
                    profile,
                    others: std::sync::Mutex::new(Vec::new()),
                });
            }
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("chromedriver did not start a session: {last:?}");
}

impl Browser {
    /// Another browser on the same driver: a new Chromium with an empty profile (no
    /// storage, no cookies), as a second customer's phone.
    async fn fresh(&self) -> anyhow::Result<Browser> {
        let (client, profile) = session(self.port).await.context("a fresh browser session")?;
        self.others
            .lock()
            .expect("sessions")
            .push((client.clone(), profile.clone()));
        Ok(Browser {
            client,
            driver: None,
            port: self.port,
            axe: self.axe.clone(),
            profile,
            others: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Ends every session and their Chromium processes.
    async fn close(&self) {
        let others: Vec<(Client, PathBuf)> = self.others.lock().expect("sessions").drain(..).collect();
        for (client, profile) in others {
            end_session(client, &profile).await;
        }
        end_session(self.client.clone(), &self.profile).await;
    }

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

    /// Runs axe-core on the page: no serious or critical violations; and no string shows as
    /// its locale key (each page carries only the strings it shows, so a missing one would).
    async fn accessible(&self, page: &str) -> anyhow::Result<()> {
        self.no_raw_keys(page).await?;
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

    /// Every string on the page (text and labels) came from the locale files: none of their
    /// keys shows as such, which is what `t()` gives for a key the locale lacks.
    async fn no_raw_keys(&self, page: &str) -> anyhow::Result<()> {
        let found = self
            .js(&format!(
                "const keys = {}; const text = document.body.innerText + ' ' +
                   [...document.querySelectorAll('[aria-label],[alt],[placeholder]')].map((e) => [e.getAttribute('aria-label'), e.getAttribute('alt'), e.getAttribute('placeholder')].join(' ')).join(' ');
                 return keys.filter((k) => text.includes(k));",
                locale_keys()
            ))
            .await?;
        if found.as_array().is_some_and(|a| !a.is_empty()) {
            bail!("untranslated strings on {page}: {found}");
        }
        Ok(())
    }

    /// Large print: body text at least 18 px and every visible button and link-button at
    /// least 48 px tall.
    async fn large_print(&self, page: &str) -> anyhow::Result<()> {
        let found = self
            .js("const font = parseFloat(getComputedStyle(document.body).fontSize);
                 const small = [...document.querySelectorAll('main button, main .btn')]
                   .filter((e) => e.offsetParent && e.getBoundingClientRect().height < 48)
                   .map((e) => e.textContent.trim().slice(0, 20));
                 return { font, small, mode: document.documentElement.dataset.mode };")
            .await?;
        let font = found["font"].as_f64().unwrap_or(0.0);
        if found["mode"] != "elderly" || font < 18.0 || found["small"].as_array().is_none_or(|a| !a.is_empty()) {
            bail!("large print on {page}: {found}");
        }
        Ok(())
    }

    /// Sets the session token in this browser's storage (as signing in does).
    async fn sign_in_as(&self, base: &str, token: &str) -> anyhow::Result<()> {
        if !self.client.current_url().await?.as_str().starts_with(base) {
            self.client.goto(&format!("{base}/h5/signin")).await?;
        }
        self.js(&format!("localStorage.setItem('huoban.token', {})", json!(token)))
            .await
            .map(|_| ())
    }

    async fn screenshot(&self, name: &str) {
        if let Ok(png) = self.client.screenshot().await {
            let dir = screenshot_dir();
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(dir.join(format!("{name}.png")), png);
        }
    }
}

/// Every locale key (from en.json; the three files have the same keys), as a JSON array.
fn locale_keys() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../web/assets/locales/en.json");
    let text = std::fs::read_to_string(path).expect("en.json");
    let map: serde_json::Map<String, Value> = serde_json::from_str(&text).expect("locale JSON");
    Value::from(map.keys().cloned().collect::<Vec<_>>()).to_string()
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
    campaign_reward(app, staff, title, price, stock, None).await
}

/// A reward, of a campaign when `campaign` is given (then listed and claimable only while
/// that campaign is live).
async fn campaign_reward(
    app: &TestApp,
    staff: &str,
    title: &str,
    price: i64,
    stock: i64,
    campaign: Option<&str>,
) -> String {
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
                "campaign_id": campaign,
            }),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{:?}", created.body);
    created.body["id"].as_str().expect("reward id").to_owned()
}

fn at(app: &TestApp, hours: i64) -> String {
    app.clock
        .now()
        .checked_add(SignedDuration::from_hours(hours))
        .expect("instant")
        .to_string()
}

/// A live campaign with a points budget (theme `spring-festival`); returns its id.
async fn live_campaign(app: &TestApp, staff: &str) -> String {
    live_campaign_titled(
        app,
        staff,
        json!({ "zh-CN": "新春伙伴季", "zh-TW": "新春夥伴季", "en": "Spring with Huoban" }),
        "spring-festival",
    )
    .await
}

/// A live campaign for 30 days with these titles and theme; returns its id.
async fn live_campaign_titled(app: &TestApp, staff: &str, titles: Value, theme: &str) -> String {
    let created = app
        .post(
            "/api/v1/staff/campaigns",
            Some(staff),
            json!({
                "name": format!("Browser {theme}"),
                "titles": titles,
                "theme": theme,
                "starts_at": at(app, -1),
                "ends_at": at(app, 24 * 30),
                "audience": "",
                "points_budget": 100_000,
                "coupon_budget": 0,
            }),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{:?}", created.body);
    let id = created.body["id"].as_str().expect("campaign id").to_owned();
    let live = app
        .post(
            &format!("/api/v1/staff/campaigns/{id}/schedule"),
            Some(staff),
            json!({}),
        )
        .await;
    assert_eq!(live.body["state"], "live", "{:?}", live.body);
    id
}

/// Behaviour events `(id, type, properties)` sent through the API as the app would.
async fn send_events(app: &TestApp, token: &str, events: &[(&str, &str, Value)]) {
    let when = at(app, 0);
    let events: Vec<Value> = events
        .iter()
        .map(|(id, kind, props)| json!({ "id": id, "type": kind, "channel": "app", "at": when, "properties": props }))
        .collect();
    let sent = app
        .post("/api/v1/events", Some(token), json!({ "events": events }))
        .await;
    assert_eq!(sent.status.as_u16(), 200, "{:?}", sent.body);
}

/// Polls `read` (an API read) until `done` holds for its body, for up to 20 s.
async fn eventually(app: &TestApp, token: &str, path: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..200 {
        last = app.get(path, Some(token)).await.body;
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: {path} never got there: {last}");
}

async fn points_balance(app: &TestApp, token: &str) -> i64 {
    let accounts = app.get("/api/v1/accounts", Some(token)).await;
    accounts.body["items"]
        .as_array()
        .and_then(|items| items.iter().find(|a| a["type"] == "points"))
        .and_then(|a| a["balance"]["posted"].as_i64())
        .unwrap_or(0)
}

/// Runs a journey; on failure keeps a screenshot and the error.
async fn run<F, Fut>(backend: Backend, name: &str, journey: F)
where
    F: FnOnce(TestApp, Browser) -> Fut,
    Fut: std::future::Future<Output = (Browser, anyhow::Result<()>)>,
{
    // Sessions last 60 days here, so a journey can move the test clock by days (to an
    // automatic transfer's day) and stay signed in.
    let Some(app) = helpers::spawn_app_with(backend, |c| c.identity.session_ttl_minutes = 60 * 24 * 60).await else {
        return;
    };
    let Some(browser) = browser().await else { return };
    let (browser, outcome) = journey(app, browser).await;
    if let Err(e) = outcome {
        let shot = format!("{name}-{}", backend_name(backend));
        browser.screenshot(&shot).await;
        let others: Vec<Client> = browser
            .others
            .lock()
            .expect("sessions")
            .iter()
            .map(|(c, _)| c.clone())
            .collect();
        for (i, other) in others.iter().enumerate() {
            if let Ok(png) = other.screenshot().await {
                let _ = std::fs::write(screenshot_dir().join(format!("{shot}-{}.png", i + 2)), png);
            }
        }
        browser.close().await;
        panic!("{e:#}\n(screenshot: {}/{shot}.png)", screenshot_dir().display());
    }
    browser.close().await;
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

journeys!(
    goal_checkin_quiz_and_inbox,
    rewards_preferences_and_errors,
    tasks_and_team_challenge,
    invite_a_friend,
    gallery_in_every_language_and_mode,
    goal_automation_and_points,
);

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
    // The README's picture of the goal page (docs/goal-page.png), from the top.
    b.js("window.scrollTo(0, 0)").await?;
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
    b.until("document.body && !document.body.hasAttribute('aria-busy') && document.querySelectorAll('#gallery section').length >= 15", "gallery").await?;
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

/// Tasks: daily, weekly and one-off tasks with their progress; a complete one claimed
/// (points paid once, the card stays claimed after a reload); the hub in the live
/// campaign's theme. A team challenge: a team created on the page, a second customer joins
/// with its code, a green trip recorded from the page, progress, members and the
/// leaderboard across teams, and every member rewarded at the target. English, Traditional
/// Chinese and large print on these pages; axe on each.
async fn tasks_and_team_challenge(app: &TestApp, b: &Browser) -> anyhow::Result<()> {
    let base = &app.base;
    let staff = app.staff(Role::Operator).await;
    let campaign = live_campaign(app, &staff).await;
    let mut tasks = Vec::new();
    for body in [
        json!({ "titles": { "zh-CN": "每日签到", "zh-TW": "每日簽到", "en": "Check in today" },
                "period": "daily", "event_type": "check_in", "target": 1, "reward_points": 10 }),
        json!({ "titles": { "zh-CN": "本周分享两次", "zh-TW": "本週分享兩次", "en": "Share twice this week" },
                "period": "weekly", "event_type": "share", "target": 2, "reward_points": 20 }),
        json!({ "titles": { "zh-CN": "完成风险测评", "zh-TW": "完成風險測評", "en": "Finish the risk questionnaire" },
                "period": "once", "event_type": "questionnaire_completed", "target": 1, "reward_points": 30 }),
    ] {
        let created = app
            .post(&format!("/api/v1/staff/campaigns/{campaign}/tasks"), Some(&staff), body)
            .await;
        assert_eq!(created.status.as_u16(), 201, "{:?}", created.body);
        tasks.push(created.body["id"].as_str().expect("task id").to_owned());
    }
    let (daily, weekly, once) = (&tasks[0], &tasks[1], &tasks[2]);
    let c = customer(app, 0, 0).await;
    send_events(
        app,
        &c.token,
        &[("share-1", "share", json!({})), ("share-2", "share", json!({}))],
    )
    .await;
    eventually(app, &c.token, "/api/v1/tasks", "the weekly task complete", |list| {
        list.as_array()
            .is_some_and(|l| l.iter().any(|t| t["id"] == weekly.as_str() && t["complete"] == true))
    })
    .await;

    b.sign_in_as(base, &c.token).await?;
    b.open(base, "/h5/tasks").await?;
    b.until(
        "document.querySelectorAll('h-task-card [data-task]').length === 3",
        "three tasks",
    )
    .await?;
    let headings = b
        .js("return [...document.querySelectorAll('#tasks h2')].map((h) => h.textContent)")
        .await?;
    assert_eq!(
        headings,
        json!(["每日任务", "每周任务", "一次性任务"]),
        "grouped by period"
    );
    let card = |id: &str| format!("h-task-card [data-task='{id}']");
    // Open tasks show their progress and where to do them.
    assert_eq!(
        b.js(&format!(
            "return document.querySelector(\"{} [role=progressbar]\").getAttribute('aria-valuenow')",
            card(daily)
        ))
        .await?,
        json!("0")
    );
    assert_eq!(
        b.js(&format!(
            "return document.querySelector(\"{} a.btn\").getAttribute('href')",
            card(once)
        ))
        .await?,
        json!("/h5/quiz"),
        "the one-off task links to the quiz"
    );
    assert_eq!(
        b.js(&format!(
            "return document.querySelector(\"{}\").dataset.status",
            card(weekly)
        ))
        .await?,
        json!("done")
    );
    b.accessible("/h5/tasks").await?;
    b.no_raw_keys("/h5/tasks").await?;

    // Claim the complete one: paid once, claimed on the card and after a reload.
    let before = points_balance(app, &c.token).await;
    b.click(&format!("{} [data-claim]", card(weekly))).await?;
    b.until(
        &format!("document.querySelector(\"{} [data-message]\") && document.querySelector(\"{}\").dataset.status === 'claimed'", card(weekly), card(weekly)),
        "the claim confirmed",
    )
    .await?;
    let message = b.text(&format!("{} [data-message]", card(weekly))).await?;
    assert!(message.contains("20 积分已到账"), "{message}");
    b.screenshot("tasks-page").await;
    assert_eq!(points_balance(app, &c.token).await, before + 20, "paid once");
    b.open(base, "/h5/tasks").await?;
    b.until(&format!("document.querySelector(\"{}\")", card(weekly)), "tasks again")
        .await?;
    assert_eq!(
        b.js(&format!(
            "return [document.querySelector(\"{0}\").dataset.status, document.querySelector(\"{0} button\").disabled]",
            card(weekly)
        ))
        .await?,
        json!(["claimed", true])
    );
    // A daily check-in moves the daily task; its claim pays too.
    let checked = app.post("/api/v1/checkins", Some(&c.token), json!({})).await;
    assert_eq!(checked.status.as_u16(), 201, "{:?}", checked.body);
    for _ in 0..100 {
        b.open(base, "/h5/tasks").await?;
        if b.js(&format!(
            "return document.querySelector(\"{}\")?.dataset.status === 'done'",
            card(daily)
        ))
        .await?
            == json!(true)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // By keyboard: Enter on the focused button claims, and the focus lands on the answer.
    let claim = b
        .client
        .find(Locator::Css(&format!("{} [data-claim]", card(daily))))
        .await?;
    b.js(&format!(
        "document.querySelector(\"{} [data-claim]\").focus()",
        card(daily)
    ))
    .await?;
    claim.send_keys("\u{E007}").await?;
    b.until(
        &format!(
            "document.querySelector(\"{}\").dataset.status === 'claimed'",
            card(daily)
        ),
        "daily claimed",
    )
    .await?;
    b.until(
        &format!(
            "document.activeElement === document.querySelector(\"{} [data-message]\")",
            card(daily)
        ),
        "the focus on the claim's answer",
    )
    .await?;
    let base_points = checked.body["points_awarded"].as_i64().unwrap_or(0);
    assert_eq!(
        points_balance(app, &c.token).await,
        before + 30 + base_points,
        "20 + 10 and the check-in's own"
    );

    // The hub is in the live campaign's theme and names it.
    b.open(base, "/h5/").await?;
    b.until(
        "document.documentElement.dataset.theme === 'spring-festival' && !document.querySelector('#campaign').hidden",
        "the campaign's theme and banner",
    )
    .await?;
    assert!(b.text("#campaign h2").await?.contains("新春伙伴季"));
    assert_eq!(
        b.js("return [...document.querySelectorAll('.grid2 a')].map((a) => a.getAttribute('href')).filter((h) => ['/h5/tasks', '/h5/invite', '/h5/team'].includes(h)).length")
            .await?,
        json!(3),
        "the hub links the campaign pages"
    );
    b.accessible("/h5/ (festival theme)").await?;

    // English and large print on the tasks page.
    b.open(base, "/h5/tasks").await?;
    b.until(&format!("document.querySelector(\"{}\")", card(once)), "tasks")
        .await?;
    b.set("[data-lang]", "en").await?;
    b.until(
        "document.documentElement.lang === 'en' && document.querySelector('#tasks h2') && document.querySelector('#tasks h2').textContent === 'Today'",
        "tasks in English",
    )
    .await?;
    assert!(b.text(&card(once)).await?.contains("Finish the risk questionnaire"));
    b.no_raw_keys("/h5/tasks (en)").await?;
    b.click("[data-elderly]").await?;
    b.until("document.documentElement.dataset.mode === 'elderly'", "large print")
        .await?;
    b.large_print("/h5/tasks (elderly)").await?;
    b.accessible("/h5/tasks (elderly, en)").await?;
    b.click("[data-elderly]").await?;
    b.set("[data-lang]", "zh-CN").await?;
    b.until(
        "document.documentElement.lang === 'zh-CN' && document.documentElement.dataset.mode === 'playful'",
        "back to standard Chinese",
    )
    .await?;

    // ---- the team challenge ----
    let challenge = app
        .post(
            "/api/v1/staff/challenges",
            Some(&staff),
            json!({
                "name": "30 天绿色出行打卡计划",
                "campaign_id": campaign,
                "event_type": "green_trip",
                "target": 5,
                "max_members": 3,
                "reward": { "points": 50 },
                "starts_at": at(app, -1),
                "ends_at": at(app, 24 * 30),
            }),
        )
        .await;
    assert_eq!(challenge.status.as_u16(), 201, "{:?}", challenge.body);
    let challenge = challenge.body["id"].as_str().expect("challenge").to_owned();
    // Another team, so the leaderboard has two.
    let rival = customer(app, 0, 0).await;
    let rival_team = app
        .post(
            &format!("/api/v1/challenges/{challenge}/teams"),
            Some(&rival.token),
            json!({ "name": "低碳骑行团" }),
        )
        .await;
    assert_eq!(rival_team.status.as_u16(), 201, "{:?}", rival_team.body);
    send_events(app, &rival.token, &[("rival-1", "green_trip", json!({}))]).await;

    b.open(base, "/h5/team").await?;
    b.until(
        "document.querySelector('[data-create] input[name=team_name]')",
        "the create form",
    )
    .await?;
    b.until(
        "document.querySelectorAll('h-leaderboard [data-team]').length === 1",
        "the leaderboard",
    )
    .await?;
    b.accessible("/h5/team (no team)").await?;
    // A team without a name is refused on the page, with the reason.
    b.click("[data-create] button[type=submit]").await?;
    b.until(
        "!document.querySelector('[data-create] .alert').hidden",
        "a name is needed",
    )
    .await?;
    b.type_into("[data-create] input[name=team_name]", "绿色先锋队").await?;
    b.click("[data-create] button[type=submit]").await?;
    b.until(
        "document.querySelector('h-team-board [data-join-code]')",
        "my team with its code",
    )
    .await?;
    b.until(
        "document.activeElement?.closest('h-team-board')",
        "the focus on the new team",
    )
    .await?;
    let code = b.text("h-team-board [data-join-code]").await?;

    // A second customer joins with the code from a shared link (the code filled in).
    let friend = customer(app, 0, 0).await;
    b.sign_in_as(base, &friend.token).await?;
    b.open(base, &format!("/h5/team?code={code}")).await?;
    b.until(
        &format!(
            "document.querySelector('[data-join] input[name=code]')?.value === {}",
            json!(code)
        ),
        "the code filled in",
    )
    .await?;
    b.click("[data-join] button[type=submit]").await?;
    b.until(
        "document.querySelectorAll('h-team-board [data-members] li').length === 2",
        "two members",
    )
    .await?;
    // A green trip recorded from the page counts once however often it is pressed.
    b.click("[data-trip]").await?;
    b.until("document.querySelector('[data-trip]').disabled", "recorded today")
        .await?;
    b.js("return import('/h5/assets/huoban.js').then((m) => m.events.flush())")
        .await?;
    b.until(
        "document.querySelector('h-team-board [role=progressbar]').getAttribute('aria-valuenow') === '1'",
        "progress from the page's trip",
    )
    .await?;
    // The captain's trips complete the target: everyone is rewarded once.
    send_events(
        app,
        &c.token,
        &[
            ("t-1", "green_trip", json!({})),
            ("t-2", "green_trip", json!({})),
            ("t-3", "green_trip", json!({})),
            ("t-4", "green_trip", json!({})),
        ],
    )
    .await;
    b.open(base, "/h5/team").await?;
    b.until(
        "document.querySelector('h-team-board [data-completed]') && document.querySelector('h-leaderboard .mine')",
        "the target reached",
    )
    .await?;
    let board = b
        .js("return [...document.querySelectorAll('h-leaderboard [data-team]')].map((li) => [li.classList.contains('mine'), li.querySelector('strong:last-child').textContent])")
        .await?;
    assert_eq!(board, json!([[true, "5"], [false, "1"]]), "ours first, then the rival");
    let members = b.text("h-team-board [data-members]").await?;
    assert!(members.contains("(我)") && members.contains("队长"), "{members}");
    b.screenshot("team-page").await;
    eventually(app, &friend.token, "/api/v1/accounts", "the member's reward", |a| {
        a["items"].as_array().is_some_and(|items| {
            items
                .iter()
                .any(|x| x["type"] == "points" && x["balance"]["posted"] == 50)
        })
    })
    .await;
    b.accessible("/h5/team").await?;

    // Traditional Chinese and large print on the team page.
    b.set("[data-lang]", "zh-TW").await?;
    b.until(
        "document.documentElement.lang === 'zh-TW' && document.querySelector('h-leaderboard h2').textContent === '隊伍排行榜'",
        "the team page in Traditional Chinese",
    )
    .await?;
    b.no_raw_keys("/h5/team (zh-TW)").await?;
    b.click("[data-elderly]").await?;
    b.until("document.documentElement.dataset.mode === 'elderly'", "large print")
        .await?;
    b.large_print("/h5/team (elderly)").await?;
    b.accessible("/h5/team (elderly, zh-TW)").await?;
    Ok(())
}

/// Invite a friend: customer 1 opens the invite page (code, link, the server's poster,
/// "1 of 2"); a friend opens the link in a fresh browser, switches to Traditional Chinese
/// and large print, is refused a too-short password (the input kept), opens an account,
/// accepts and takes the finance quiz through the pages; customer 1's page moves to "2 of
/// 2" and unlocks, and the prize is paid once. Accepting one's own code is refused.
async fn invite_a_friend(app: &TestApp, b: &Browser) -> anyhow::Result<()> {
    let base = &app.base;
    let staff = app.staff(Role::Operator).await;
    let programme = app
        .post(
            "/api/v1/staff/invite-programmes",
            Some(&staff),
            json!({
                "name": "邀请好友完成理财测试",
                "event_type": "questionnaire_completed",
                "event_match": { "questionnaire_id": "risk-appetite" },
                "unlock_count": 2,
                "reward": { "points": 500 },
                "starts_at": at(app, -1),
                "ends_at": at(app, 24 * 7),
            }),
        )
        .await;
    assert_eq!(programme.status.as_u16(), 201, "{:?}", programme.body);
    let inviter = customer(app, 0, 0).await;

    b.sign_in_as(base, &inviter.token).await?;
    b.open(base, "/h5/invite").await?;
    b.until("document.querySelector('h-invite-panel [data-code]')", "my invite code")
        .await?;
    let code = b.text("h-invite-panel [data-code]").await?;
    let link = b
        .js("return document.querySelector('h-invite-panel [data-link]').value")
        .await?;
    let link = link.as_str().context("the link")?.to_owned();
    assert!(link.ends_with(&format!("/h5/invite?code={code}")), "{link}");
    b.until(
        "document.querySelector('h-invite-panel img').complete && document.querySelector('h-invite-panel img').naturalWidth === 750",
        "the server's share poster",
    )
    .await?;
    assert!(b.text("h-invite-panel [data-status]").await?.contains("0/2"));
    b.screenshot("invite-page").await;
    b.accessible("/h5/invite").await?;
    b.no_raw_keys("/h5/invite").await?;

    // One friend qualifies through the API: the page moves to 1 of 2 by itself.
    let first = format!("139{:08}", rand::random::<u32>() % 100_000_000);
    let first = app.customer(&first).await;
    let accepted = app
        .send(
            reqwest::Method::POST,
            "/api/v1/invites/accept",
            Some(&first),
            Some(json!({ "code": code })),
            &[("x-device-id", "first-friends-phone")],
        )
        .await;
    assert_eq!(accepted.status.as_u16(), 201, "{:?}", accepted.body);
    let session = app
        .post("/api/v1/questionnaires/risk-appetite/sessions", Some(&first), json!({}))
        .await;
    let sid = session.body["session_id"].as_str().expect("session").to_owned();
    for (q, o) in [
        ("age", "a"),
        ("experience", "d"),
        ("horizon", "d"),
        ("loss_tolerance", "e"),
        ("goal", "d"),
    ] {
        let answered = app
            .post(
                &format!("/api/v1/questionnaires/sessions/{sid}/answers"),
                Some(&first),
                json!({ "question_id": q, "option_id": o }),
            )
            .await;
        assert_eq!(answered.status.as_u16(), 200, "{:?}", answered.body);
    }
    b.until(
        "document.querySelector('h-invite-panel [data-status]').textContent.includes('1/2')",
        "1 of 2, live",
    )
    .await?;

    // Accepting one's own code is refused, in words.
    b.open(base, &format!("/h5/invite?code={code}")).await?;
    b.click("[data-accept]").await?;
    b.until(
        "document.querySelector('.alert:not([hidden])')?.textContent.includes('自己的邀请码')",
        "self-invite refused",
    )
    .await?;

    // The friend's phone: a fresh browser opens the link.
    let f = b.fresh().await?;
    f.open(base, &format!("/h5/invite?code={code}")).await?;
    f.until(
        "document.querySelector('#register input[name=phone]')",
        "the sign-up form",
    )
    .await?;
    f.accessible("/h5/invite?code (signed out)").await?;
    f.set("[data-lang]", "zh-TW").await?;
    f.until(
        "document.documentElement.lang === 'zh-TW' && document.querySelector('#welcome').textContent === '好友邀請你加入'",
        "the invitation in Traditional Chinese",
    )
    .await?;
    f.no_raw_keys("/h5/invite?code (zh-TW)").await?;
    f.click("[data-elderly]").await?;
    f.until("document.documentElement.dataset.mode === 'elderly'", "large print")
        .await?;
    f.large_print("/h5/invite?code (elderly)").await?;
    f.screenshot("invite-landing-elderly").await;
    f.accessible("/h5/invite?code (elderly, zh-TW)").await?;
    let phone = format!("139{:08}", rand::random::<u32>() % 100_000_000);
    f.type_into("#register input[name=name]", "林小美").await?;
    f.type_into("#register input[name=phone]", &phone).await?;
    f.type_into("#register input[name=password]", "short").await?;
    f.click("#register button[type=submit]").await?;
    f.until(
        "!document.querySelector('#register .alert').hidden",
        "a refused password",
    )
    .await?;
    assert!(f.text("#register .alert").await?.contains("密碼至少需要 8 位"));
    assert_eq!(
        f.js("return document.querySelector('#register input[name=phone]').value")
            .await?,
        json!(phone),
        "the input kept"
    );
    f.type_into("#register input[name=password]", "friend-pass-1").await?;
    f.click("#register button[type=submit]").await?;
    f.until("document.querySelector('[data-next]')", "accepted, with the next step")
        .await?;
    assert!(f.text("#accepted").await?.contains("已接受"));
    assert_eq!(
        f.js("return document.querySelector('[data-next]').getAttribute('href')")
            .await?,
        json!("/h5/quiz?id=risk-appetite")
    );
    f.accessible("/h5/invite?code (accepted)").await?;
    // The qualifying action through the pages: the finance quiz to the end.
    f.click("[data-next]").await?;
    f.until("document.querySelector('h-quiz legend')", "the quiz").await?;
    for _ in 0..10 {
        if f.js("return !!document.querySelector('h-quiz [data-result]')").await? == json!(true) {
            break;
        }
        let legend = f.text("h-quiz legend").await?;
        f.click("h-quiz label.choice:first-of-type input").await?;
        f.click("h-quiz button[type=submit]").await?;
        f.until(
            &format!("document.querySelector('h-quiz [data-result]') || (document.querySelector('h-quiz legend') && document.querySelector('h-quiz legend').textContent !== {})", json!(legend)),
            "the next question",
        )
        .await?;
    }
    f.until("document.querySelector('h-quiz [data-result]')", "the quiz finished")
        .await?;

    // Customer 1 sees the progress move and the unlock; the prize is paid once.
    b.open(base, "/h5/invite").await?;
    b.until(
        "document.querySelector('h-invite-panel [data-status]')?.textContent.includes('2/2') && document.querySelector('h-invite-panel [data-unlocked]')",
        "2 of 2 and unlocked",
    )
    .await?;
    eventually(app, &inviter.token, "/api/v1/invites/mine", "the prize paid", |m| {
        m[0]["rewarded"] == true
    })
    .await;
    assert_eq!(points_balance(app, &inviter.token).await, 500, "paid once");
    // English on the inviter's page.
    b.set("[data-lang]", "en").await?;
    b.until(
        "document.documentElement.lang === 'en' && document.querySelector('h-invite-panel [data-status]').textContent.includes('2 of 2')",
        "the invite page in English",
    )
    .await?;
    b.no_raw_keys("/h5/invite (en)").await?;
    b.screenshot("invite-page-unlocked").await;
    b.accessible("/h5/invite (en, unlocked)").await?;
    Ok(())
}

/// The gallery: every component in each state (loading, empty, normal, error, elderly) in
/// zh-CN, en and zh-TW, in the playful and the elderly mode; no untranslated string; axe.
async fn gallery_in_every_language_and_mode(app: &TestApp, b: &Browser) -> anyhow::Result<()> {
    const TAGS: [&str; 15] = [
        "h-account-overview",
        "h-goal-progress",
        "h-goal-wizard",
        "h-goal-auto-transfer",
        "h-goal-conversion",
        "h-checkin-calendar",
        "h-task-card",
        "h-badge-wall",
        "h-quiz",
        "h-invite-panel",
        "h-team-board",
        "h-leaderboard",
        "h-reward-shelf",
        "h-inbox",
        "h-nudge",
    ];
    b.open(&app.base, "/h5/gallery").await?;
    let check = format!(
        "const tags = {}; const bad = [];
         for (const tag of tags) for (const s of ['loading', 'empty', 'normal', 'error', 'elderly']) {{
           const slot = document.querySelector(`[data-slot='${{tag}}:${{s}}']`), el = slot && slot.querySelector(tag);
           if (!el) {{ bad.push(tag + ':' + s + ' missing'); continue; }}
           const ok = s === 'loading' ? el.querySelector('[aria-busy=true]') || tag === 'h-nudge'
             : s === 'error' ? el.querySelector('[role=alert]')
             : s === 'empty' ? el.textContent.trim() || tag === 'h-nudge'
             : !el.querySelector('[aria-busy=true], [role=alert]:not([hidden])') && el.textContent.trim().length > 0;
           if (!ok) bad.push(tag + ':' + s + ' not drawn');
           if (s === 'elderly' && parseFloat(getComputedStyle(el).fontSize) < 18) bad.push(tag + ':elderly font');
         }}
         return bad;",
        json!(TAGS)
    );
    for (lang, title) in [
        ("zh-CN", "组件展示"),
        ("en", "Component gallery"),
        ("zh-TW", "元件展示"),
    ] {
        if lang != "zh-CN" {
            b.set("[data-lang]", lang).await?;
        }
        b.until(
            &format!("document.documentElement.lang === '{lang}' && document.querySelector('header h1').textContent === '{title}'"),
            lang,
        )
        .await?;
        let bad = b.js(&check).await?;
        assert_eq!(bad, json!([]), "{lang}");
        // The goal cards take fewer steps in the elderly slot: one button converts all the
        // points, the day waits behind a button, the wizard has two steps.
        let fewer = b
            .js("const at = (slot, css) => !!document.querySelector(`[data-slot='${slot}'] ${css}`);
                 return [at('h-goal-conversion:elderly', '[data-all]'), at('h-goal-conversion:normal', '[data-all]'),
                         at('h-goal-auto-transfer:elderly', '[data-change]'), at('h-goal-auto-transfer:normal', 'select[name=day]'),
                         document.querySelector(`[data-slot='h-goal-wizard:elderly'] .muted`).textContent.includes('2'),
                         document.querySelector(`[data-slot='h-goal-wizard:normal'] .muted`).textContent.includes('3')];")
            .await?;
        assert_eq!(fewer, json!([true, false, true, true, true, true]), "{lang}");
        b.no_raw_keys(&format!("/h5/gallery ({lang})")).await?;
        for mode in ["playful", "elderly"] {
            if mode == "elderly" {
                b.click("[data-elderly]").await?;
            }
            b.until(&format!("document.documentElement.dataset.mode === '{mode}'"), mode)
                .await?;
            b.accessible(&format!("/h5/gallery ({lang}, {mode})")).await?;
            if mode == "elderly" {
                let font = b
                    .js("return parseFloat(getComputedStyle(document.body).fontSize)")
                    .await?;
                assert!(font.as_f64().unwrap_or(0.0) >= 18.0, "{lang}: {font}");
                b.click("[data-elderly]").await?;
            }
        }
    }
    Ok(())
}

/// The goal page's automatic monthly transfer and points conversion. The transfer turned on
/// from the page on a chosen day from the (empty) savings account; the test clock moved to
/// that day and the job run: the shortfall and the retry date show live; money arrives, the
/// clock moves to the retry and the job runs again: the bar moves live without a reload and
/// the next date moves on a month; turned off. Points
/// converted under a campaign's offer: a bad multiple and more than the balance first
/// (localized, the amount kept), then offline (the Idempotency-Key kept) and the retry
/// converting once, the bar and the points balance moving. On the rewards page a campaign's
/// reward named and claimed, and another whose campaign ends while the page is open
/// (`reward-not-claimable`, localized). The goal page in English and large print: the
/// transfer turned on and all the points converted with one tap each, then the offer ending
/// while the page is open (`conversion-offer-unavailable`, localized). A partner sees the
/// owner's transfer without the controls. Axe on each.
async fn goal_automation_and_points(app: &TestApp, b: &Browser) -> anyhow::Result<()> {
    let base = &app.base;
    let staff = app.staff(Role::Operator).await;
    let spring = live_campaign(app, &staff).await;
    let autumn = live_campaign_titled(
        app,
        &staff,
        json!({ "zh-CN": "中秋团圆季", "zh-TW": "中秋團圓季", "en": "Mid-autumn together" }),
        "mid-autumn",
    )
    .await;
    let offer = app
        .post(
            "/api/v1/staff/goal-conversion-offers",
            Some(&staff),
            json!({
                "titles": { "zh-CN": "积分换存款", "zh-TW": "積分換存款", "en": "Points into savings" },
                "points": 100, "fen": 100, "max_points": 10_000, "campaign_id": spring,
            }),
        )
        .await;
    assert_eq!(offer.status.as_u16(), 201, "{:?}", offer.body);
    let spring_reward = campaign_reward(app, &staff, "新春红包券", 100, 5, Some(&spring)).await;
    let autumn_reward = campaign_reward(app, &staff, "中秋月饼券", 100, 5, Some(&autumn)).await;
    let c = customer(app, 1_000_000, 5_000).await;
    // ¥1,000 in about ten months: about ¥100 (10 %) a month.
    let target_date = at(app, 24 * 300);
    let created = app
        .post(
            "/api/v1/goals",
            Some(&c.token),
            json!({ "name": "旅行基金", "target_amount": 100_000, "target_date": &target_date[..10] }),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{:?}", created.body);
    let goal = created.body["id"].as_str().context("goal id")?.to_owned();
    let goal_path = format!("/api/v1/goals/{goal}");
    let monthly = created.body["plan"]["monthly_amount"].as_i64().context("monthly")?;
    let bar = "document.querySelector('#goal [role=progressbar]').getAttribute('aria-valuenow')";
    let auto = "h-goal-auto-transfer";

    b.sign_in_as(base, &c.token).await?;
    b.open(base, "/h5/goal").await?;
    b.until(
        &format!("document.querySelector('{auto} [data-auto=off] button[data-on]')"),
        "the automatic transfer, off",
    )
    .await?;
    b.until(
        "!document.querySelector('h-goal-conversion').hidden && document.querySelector('h-goal-conversion [data-points]')?.textContent === '5,000'",
        "the points offer with my balance",
    )
    .await?;
    assert!(
        b.text("h-goal-conversion").await?.contains("100 积分 = ¥1.00"),
        "the rate"
    );
    b.no_raw_keys("/h5/goal").await?;
    b.accessible("/h5/goal (automatic transfer off, points offer)").await?;

    // ---- the automatic transfer, on a chosen day (tomorrow in Shanghai, or the 1st), from
    // the savings account, which is empty ----
    let accounts = app.get("/api/v1/accounts", Some(&c.token)).await.body;
    let savings = accounts["items"]
        .as_array()
        .and_then(|items| items.iter().find(|a| a["type"] == "savings"))
        .and_then(|a| a["id"].as_str())
        .context("a savings account")?
        .to_owned();
    let tomorrow = app
        .clock
        .now()
        .checked_add(SignedDuration::from_hours(24 + 8))?
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let day = if tomorrow.day() <= 28 { tomorrow.day() } else { 1 };
    b.set(&format!("{auto} select[name=day]"), &day.to_string()).await?;
    b.set(&format!("{auto} select[name=from]"), &savings).await?;
    b.until(
        &format!("document.querySelector('{auto} [data-line]').textContent.includes('每月 {day} 日从储蓄账户')"),
        "the chosen day and account in words",
    )
    .await?;
    b.click(&format!("{auto} button[data-on]")).await?;
    b.until(
        &format!("document.querySelector('{auto} [data-auto=on] [data-next] time') && document.activeElement === document.querySelector('{auto} [data-message]')"),
        "on, with the next date, the focus on the answer",
    )
    .await?;
    let view = app.get(&goal_path, Some(&c.token)).await.body;
    let on = &view["auto_transfer"];
    assert_eq!(on["transfer_day"], json!(day), "{view}");
    assert_eq!(on["from_account"], json!(savings));
    assert_eq!(on["amount"], json!(monthly));
    let next = on["next_transfer_at"].as_str().context("next transfer")?.to_owned();
    assert_eq!(
        b.js(&format!(
            "return document.querySelector('{auto} [data-next] time').getAttribute('datetime')"
        ))
        .await?,
        json!(next)
    );
    b.js("document.querySelector('h-goal-auto-transfer').scrollIntoView({block: 'end'})")
        .await?;
    b.screenshot("goal-auto-transfer-on").await;
    b.accessible("/h5/goal (automatic transfer on)").await?;

    // The transfer day comes (the test clock) and the job runs, as the server's tick does:
    // the savings account is short, so nothing moves, an inbox message says so, and the card
    // shows the retry tomorrow, live.
    b.js("window.__sameDocument = 'yes'").await?;
    let transfers = GoalsService::new(&app.app.engage_state());
    let due: jiff::Timestamp = next.parse()?;
    app.clock.set(due.checked_add(SignedDuration::from_secs(1))?);
    transfers
        .run_due_transfers(app.clock.now())
        .await
        .map_err(|e| anyhow!("the transfer job: {e:?}"))?;
    let short = eventually(app, &c.token, &goal_path, "a shortfall", |g| {
        g["auto_transfer"]["attempts"] == 1
    })
    .await;
    assert_eq!(short["saved"], 0, "nothing moved");
    let retry = short["auto_transfer"]["next_transfer_at"]
        .as_str()
        .context("retry")?
        .to_owned();
    b.until(
        &format!(
            "document.querySelector('{auto} [data-retry] time')?.getAttribute('datetime') === {}",
            json!(retry)
        ),
        "the retry shown live",
    )
    .await?;
    let inbox = app.get("/api/v1/inbox", Some(&c.token)).await.body;
    assert!(
        inbox["items"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m["kind"] == "goal_auto_transfer_failed")),
        "the shortfall message: {inbox}"
    );
    // Money arrives; the retry pays: the bar moves without a reload and the next date moves
    // on a month.
    fund(app, &savings, 100_000).await;
    let due: jiff::Timestamp = retry.parse()?;
    app.clock.set(due.checked_add(SignedDuration::from_secs(1))?);
    transfers
        .run_due_transfers(app.clock.now())
        .await
        .map_err(|e| anyhow!("the transfer job: {e:?}"))?;
    let paid = eventually(app, &c.token, &goal_path, "the month paid", |g| {
        g["saved"].as_i64() == Some(monthly)
    })
    .await;
    let pct = paid["percent"].as_i64().context("percent")?;
    assert!(pct > 0, "{paid}");
    b.until(&format!("{bar} === '{pct}'"), "the bar moved live").await?;
    assert_eq!(b.js("return window.__sameDocument").await?, json!("yes"), "no reload");
    let following = paid["auto_transfer"]["next_transfer_at"]
        .as_str()
        .context("next")?
        .to_owned();
    assert!(following > next, "the next month is due: {following}");
    b.until(
        &format!(
            "document.querySelector('{auto} [data-next] time')?.getAttribute('datetime') === {}",
            json!(following)
        ),
        "the next date moved on",
    )
    .await?;
    assert_eq!(points_balance(app, &c.token).await, 5_000, "no points moved");

    // Off again: nothing more will move.
    b.click(&format!("{auto} button[data-off]")).await?;
    b.until(
        &format!("document.querySelector('{auto} [data-auto=off]') && document.querySelector('{auto} [data-message]')?.textContent.includes('已关闭')"),
        "turned off",
    )
    .await?;
    assert_eq!(
        app.get(&goal_path, Some(&c.token)).await.body["auto_transfer"],
        Value::Null
    );

    // ---- points into the goal ----
    let conv = "h-goal-conversion";
    let field = format!("return document.querySelector('{conv} input[name=points]').value");
    b.type_into(&format!("{conv} input[name=points]"), "150").await?;
    b.click(&format!("{conv} button[type=submit]")).await?;
    b.until(
        &format!("document.querySelector('{conv} [data-message].alert')?.textContent.includes('100 积分的整数倍')"),
        "not a multiple, localized",
    )
    .await?;
    assert_eq!(b.js(&field).await?, json!("150"), "the amount kept");
    b.type_into(&format!("{conv} input[name=points]"), "9000").await?;
    b.until(
        &format!("document.querySelector('{conv} [data-preview]').textContent.includes('¥90.00')"),
        "what 9,000 points make",
    )
    .await?;
    b.click(&format!("{conv} button[type=submit]")).await?;
    b.until(
        &format!("document.querySelector('{conv} [data-message].alert')?.textContent.includes('积分不够')"),
        "not enough points, localized",
    )
    .await?;
    assert_eq!(b.js(&field).await?, json!("9000"), "the amount kept");
    assert_eq!(points_balance(app, &c.token).await, 5_000, "nothing converted");

    // Offline: a localized message, the amount and the Idempotency-Key kept; back online
    // the retry converts once.
    b.client.issue_cmd(Cdp("Network.enable", json!({}))).await?;
    let network = |offline: bool| {
        Cdp(
            "Network.emulateNetworkConditions",
            json!({ "offline": offline, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1 }),
        )
    };
    b.client.issue_cmd(network(true)).await?;
    b.type_into(&format!("{conv} input[name=points]"), "1000").await?;
    b.click(&format!("{conv} button[type=submit]")).await?;
    b.until(
        &format!("/网络|服务器/.test(document.querySelector('{conv} [data-message].alert')?.textContent)"),
        "an offline message",
    )
    .await?;
    assert_eq!(b.js(&field).await?, json!("1000"), "the amount kept offline");
    let key = format!("huoban.idem.convert:{goal}");
    assert!(
        b.js(&format!("return localStorage.getItem('{key}')"))
            .await?
            .is_string(),
        "the key is kept for the retry"
    );
    b.client.issue_cmd(network(false)).await?;
    b.click(&format!("{conv} button[type=submit]")).await?;
    b.until(
        &format!("document.querySelector('{conv} [data-points]').textContent === '4,000' && document.querySelector('{conv} [data-message].ok') && localStorage.getItem('{key}') === null"),
        "converted, the balance lowered",
    )
    .await?;
    assert_eq!(b.js(&field).await?, json!(""), "the field emptied");
    let converted = app.get(&goal_path, Some(&c.token)).await.body;
    assert_eq!(converted["saved"].as_i64(), Some(monthly + 1_000), "¥10 once");
    assert_eq!(points_balance(app, &c.token).await, 4_000, "1,000 points once");
    b.until(&format!("{bar} === '{}'", converted["percent"]), "the bar moved")
        .await?;
    b.until("!document.querySelector('.toast, .confetti')", "the celebration over")
        .await?;
    b.js("document.querySelector('h-goal-conversion').scrollIntoView({block: 'end'})")
        .await?;
    b.screenshot("goal-points").await;
    b.accessible("/h5/goal (points converted)").await?;

    // ---- campaign rewards ----
    b.open(base, "/h5/rewards").await?;
    b.until(
        "document.querySelectorAll('[data-reward]').length === 2 && document.querySelector('[data-points]')?.textContent === '4,000'",
        "the two campaigns' rewards",
    )
    .await?;
    assert!(
        b.text(&format!("[data-reward='{spring_reward}'] [data-campaign]"))
            .await?
            .contains("新春伙伴季 限定"),
        "named with its campaign"
    );
    assert!(
        b.text(&format!("[data-reward='{autumn_reward}'] [data-campaign]"))
            .await?
            .contains("中秋团圆季")
    );
    b.accessible("/h5/rewards (campaign rewards)").await?;
    b.click(&format!("[data-reward='{spring_reward}'] button")).await?;
    b.until(
        "document.querySelector('#coupons code') && document.querySelector('[data-points]').textContent === '3,900'",
        "the spring reward claimed",
    )
    .await?;
    // The autumn campaign ends while the page is open.
    let ended = app
        .post(
            &format!("/api/v1/staff/campaigns/{autumn}/end"),
            Some(&staff),
            json!({}),
        )
        .await;
    assert_eq!(ended.status.as_u16(), 200, "{:?}", ended.body);
    b.click(&format!("[data-reward='{autumn_reward}'] button")).await?;
    b.until(
        &format!("document.querySelector(\"[data-reward='{autumn_reward}'] .alert\")?.textContent.includes('所属活动已结束') && document.querySelector(\"[data-reward='{autumn_reward}'] button\").disabled"),
        "reward-not-claimable, localized",
    )
    .await?;
    assert_eq!(
        points_balance(app, &c.token).await,
        3_900,
        "charged once, for the spring reward"
    );
    assert_eq!(
        app.get("/api/v1/coupons", Some(&c.token)).await.body["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // ---- the goal page in English and large print ----
    b.open(base, "/h5/goal").await?;
    b.until(
        &format!("document.querySelector('{auto} [data-auto=off]')"),
        "the goal page",
    )
    .await?;
    b.set("[data-lang]", "en").await?;
    b.until(
        &format!("document.documentElement.lang === 'en' && document.querySelector('{auto} h2').textContent === 'Automatic monthly saving' && document.querySelector('{conv} [data-points]')?.textContent === '3,900'"),
        "the goal page in English",
    )
    .await?;
    b.until(
        &format!("document.querySelector('{conv}').textContent.includes('Points into savings') && !document.querySelector('{conv}').textContent.includes('积分换存款')"),
        "the offer's title in English",
    )
    .await?;
    let rate = b.text(conv).await?;
    assert!(rate.contains("100 points = CN¥1.00"), "the rate in English: {rate}");
    b.no_raw_keys("/h5/goal (en)").await?;
    let card = b.text("#goal").await?;
    assert!(
        card.contains("to go") && !card.contains("每月"),
        "the bar's card in English: {card}"
    );
    b.accessible("/h5/goal (en)").await?;
    b.click("[data-elderly]").await?;
    b.until("document.documentElement.dataset.mode === 'elderly'", "large print")
        .await?;
    // Fewer steps: the plan's day as it is, one button (the day waits behind another).
    b.until(
        &format!(
            "document.querySelector('{auto} [data-change]') && !document.querySelector('{auto} select[name=day]')"
        ),
        "the day choice folded away",
    )
    .await?;
    b.large_print("/h5/goal (elderly)").await?;
    assert!(
        b.text("h-goal-wizard .muted").await?.contains("Step 1 of 2"),
        "the wizard in two steps"
    );
    b.accessible("/h5/goal (elderly, en)").await?;
    assert!(
        b.text(&format!("{auto} [data-line]"))
            .await?
            .contains("from your current account"),
        "plain words"
    );
    // By keyboard: Enter on the focused button; the focus lands on the answer.
    let turn_on = b.client.find(Locator::Css(&format!("{auto} button[data-on]"))).await?;
    b.js(&format!("document.querySelector('{auto} button[data-on]').focus()"))
        .await?;
    turn_on.send_keys("\u{E007}").await?;
    b.until(
        &format!("document.querySelector('{auto} [data-auto=on]') && document.activeElement === document.querySelector('{auto} [data-message]') && document.activeElement.textContent.includes('Automatic saving is on')"),
        "on with one key press",
    )
    .await?;
    let plan_day = app.get(&goal_path, Some(&c.token)).await.body;
    assert_eq!(
        plan_day["auto_transfer"]["transfer_day"], plan_day["plan"]["transfer_day"],
        "the plan's day"
    );
    // All the points with one tap.
    let all = b.text(&format!("{conv} button[data-all]")).await?;
    assert!(all.contains("3,900") && all.contains("¥39.00"), "{all}");
    b.click(&format!("{conv} button[data-all]")).await?;
    b.until(
        &format!("document.querySelector('{conv} [data-points]').textContent === '0' && document.querySelector('{conv} [data-message].ok')"),
        "all the points converted",
    )
    .await?;
    let all_in = app.get(&goal_path, Some(&c.token)).await.body;
    assert_eq!(all_in["saved"].as_i64(), Some(monthly + 1_000 + 3_900));
    assert_eq!(points_balance(app, &c.token).await, 0);
    b.until(&format!("{bar} === '{}'", all_in["percent"]), "the bar moved")
        .await?;
    b.screenshot("goal-automation-elderly").await;
    b.accessible("/h5/goal (elderly, en, converted)").await?;

    // The offer's campaign ends while the page is open: a plain English message, the amount kept.
    let ended = app
        .post(
            &format!("/api/v1/staff/campaigns/{spring}/end"),
            Some(&staff),
            json!({}),
        )
        .await;
    assert_eq!(ended.status.as_u16(), 200, "{:?}", ended.body);
    b.type_into(&format!("{conv} input[name=points]"), "500").await?;
    b.click(&format!("{conv} button[type=submit]")).await?;
    b.until(
        &format!("document.querySelector('{conv} [data-message].alert')?.textContent.includes('offer has ended')"),
        "the offer ended, in English",
    )
    .await?;
    assert_eq!(b.js(&field).await?, json!("500"), "the amount kept");

    // A partner sees the owner's automatic transfer, without the controls.
    let partner = customer(app, 0, 0).await;
    let shared = app
        .post(
            &format!("{goal_path}/partners"),
            Some(&c.token),
            json!({ "phone": partner.phone }),
        )
        .await;
    assert_eq!(shared.status.as_u16(), 201, "{:?}", shared.body);
    b.sign_in_as(base, &partner.token).await?;
    b.open(base, "/h5/goal").await?;
    b.until(
        &format!(
            "document.querySelector('{auto} [data-auto=on] [data-next]') && document.documentElement.lang === 'zh-CN'"
        ),
        "the shared goal's automatic transfer",
    )
    .await?;
    let card = b.text(auto).await?;
    assert!(
        card.contains("目标创建人的账户") && card.contains("只有设定这个目标的人可以修改"),
        "{card}"
    );
    assert_eq!(
        b.js(&format!(
            "return document.querySelectorAll('{auto} button, {auto} select').length"
        ))
        .await?,
        json!(0),
        "no controls for a partner"
    );
    b.accessible("/h5/goal (partner)").await?;
    Ok(())
}
