//! The demo bank behind `huoban serve --demo`: about a thousand customers of all ages
//! (so young and elderly segments exist), a staff user for every role, and for every
//! customer a current, a savings and a points account with 90 days of history — salary or
//! pension on the customer's own pay day, monthly utility bills, everyday spending across
//! merchant categories, a monthly move into savings and points for spending.
//! Deterministic: the same seed always builds the same bank.
//!
//! History is written through the real ledger (every posting balanced and idempotent),
//! by a writer whose clock steps through the past 90 days, so postings carry their dates.

use anyhow::Context;
use huoban_identity::{Locale, Role, secrets::hash_password, service::Registration};
use std::sync::Arc;

use huoban_accounts::StandardAccounts;
use huoban_kit::ManualClock;
use huoban_ledger::{Amount, IdempotencyKey, Ledger, TransferMeta, TransferRequest, Unit};
use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::app::App;

pub const CUSTOMER_PASSWORD: &str = "huoban-demo";
pub const STAFF_PASSWORD: &str = "huoban-demo-staff";
pub const FIRST_PHONE: u64 = 13_800_000_001;

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "林", "高",
    "罗",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英", "霞",
    "平", "刚", "桂英", "晓明", "思远", "雨桐", "子涵", "浩然", "欣怡",
];

pub const DEMO_STAFF: &[(&str, &str, Role)] = &[
    ("operator", "运营 Operator", Role::Operator),
    ("risk", "风控 Risk officer", Role::RiskOfficer),
    ("support", "客服 Support agent", Role::SupportAgent),
    ("auditor", "审计 Auditor", Role::Auditor),
    ("demo-admin", "管理员 Demo admin", Role::Admin),
];

#[derive(Debug, Default)]
pub struct DemoReport {
    pub already_seeded: bool,
    pub customers: usize,
    pub elderly: usize,
    pub transfers: usize,
}

impl DemoReport {
    pub fn print(&self, url: &str) {
        if self.already_seeded {
            println!("\nThe demo bank is already in this database.");
        } else {
            println!(
                "\nSeeded the demo bank: {} customers ({} aged 60 or over), {} transactions, staff for every role.",
                self.customers, self.elderly, self.transfers
            );
        }
        println!("  Home:          {url}/");
        println!("  API reference: {url}/api/docs/");
        println!(
            "  Customer sign-in: phone 13800000001 (to 1380000{:04}), password {CUSTOMER_PASSWORD}",
            self.customers.max(1)
        );
        println!("    curl -s -X POST {url}/api/v1/sessions -H 'content-type: application/json' \\");
        println!("      -d '{{\"phone\":\"13800000001\",\"password\":\"{CUSTOMER_PASSWORD}\",\"channel\":\"h5\"}}'");
        println!("  Staff sign-in (POST {url}/api/v1/staff/sessions), password {STAFF_PASSWORD}:");
        for (username, _, role) in DEMO_STAFF {
            println!("    {username:<11} {}", role.as_str());
        }
        println!();
    }
}

/// Seeds the demo bank into an empty database; does nothing when customers exist.
pub async fn seed(app: &App) -> anyhow::Result<DemoReport> {
    let store = app.identity.store();
    if store.count_customers().await? > 0 {
        let customers = store.count_customers().await? as usize;
        return Ok(DemoReport {
            already_seeded: true,
            customers,
            ..DemoReport::default()
        });
    }
    let settings = &app.config.demo;
    let started = std::time::Instant::now();
    eprintln!(
        "Seeding the demo bank ({} customers, seed {})…",
        settings.customers, settings.seed
    );
    for (username, name, role) in DEMO_STAFF {
        app.identity
            .create_staff_with_password(username, name, *role, STAFF_PASSWORD)
            .await
            .map_err(|e| anyhow::anyhow!("demo staff {username}: {e}"))?;
    }
    let mut rng = StdRng::seed_from_u64(settings.seed);
    // One hash for every demo customer: hashing a thousand passwords would take a minute,
    // and these accounts are public demo accounts anyway.
    let hash = hash_password(CUSTOMER_PASSWORD).map_err(anyhow::Error::msg)?;
    let today = app
        .clock
        .now()
        .to_zoned(jiff::tz::TimeZone::get("Asia/Shanghai")?)
        .date();
    let mut rows = Vec::with_capacity(settings.customers as usize);
    let mut elderly = 0;
    for i in 0..u64::from(settings.customers) {
        let name = format!(
            "{}{}",
            SURNAMES[rng.random_range(0..SURNAMES.len())],
            GIVEN[rng.random_range(0..GIVEN.len())]
        );
        // Ages 18 to 85, weighted so that about a fifth are 60 or older; the first demo
        // customer is young (the playful pages), the second elderly (large print).
        let age: i16 = match i {
            0 => 29,
            1 => 72,
            _ if rng.random_bool(0.2) => rng.random_range(60..=85),
            _ => rng.random_range(18..60),
        };
        if age >= 60 {
            elderly += 1;
        }
        let birthday = today
            .checked_sub(jiff::Span::new().years(i64::from(age)).days(rng.random_range(1..360)))
            .context("birthday")?;
        let locale = match rng.random_range(0..20) {
            0 => Locale::En,
            1 | 2 => Locale::ZhTw,
            _ => Locale::ZhCn,
        };
        let reg = Registration {
            phone: (FIRST_PHONE + i).to_string(),
            password: String::new(),
            name,
            birthday: Some(birthday.to_string()),
            locale: Some(locale),
            time_zone: None,
            id_number: None,
        };
        let mut row = app
            .identity
            .new_customer_row(&reg, Some(hash.clone()))
            .map_err(|e| anyhow::anyhow!("demo customer {i}: {e}"))?;
        if age >= 70 {
            row.preferences = r#"{"elderly_mode":true,"marketing_messages":true}"#.to_owned();
        }
        rows.push(row);
    }
    for chunk in rows.chunks(500) {
        store.insert_customers(chunk).await?;
    }
    let transfers = seed_history(app, &rows, settings.seed, settings.days_of_history).await?;
    seed_alerts(app, &rows).await.context("demo: balance alerts")?;
    let campaign = crate::demo_campaign::seed(app)
        .await
        .context("demo: the Spring Festival campaign")?;
    crate::demo_campaign::seed_goals(app, &rows)
        .await
        .context("demo: savings goals")?;
    crate::demo_social::seed(app, &rows, settings.seed, campaign.id)
        .await
        .context("demo: invites and team challenges")?;
    crate::demo_risk::seed(app, &rows)
        .await
        .context("demo: a held transfer and a case")?;
    eprintln!("Demo bank seeded in {:.1}s.", started.elapsed().as_secs_f64());
    Ok(DemoReport {
        already_seeded: false,
        customers: rows.len(),
        elderly,
        transfers,
    })
}

/// The first two demo customers watch their current account: a large debit, a low balance
/// and their salary or pension each leave a message in the inbox.
async fn seed_alerts(app: &App, rows: &[huoban_identity::store::CustomerRow]) -> anyhow::Result<()> {
    use huoban_accounts::service::NewAlert;
    for row in rows.iter().take(2) {
        let customer = uuid::Uuid::parse_str(&row.id)?;
        let current = app
            .accounts
            .ensure_standard_accounts(customer)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .current
            .as_uuid();
        let alerts = [
            ("debit_above", None, Some(100_000)),
            ("balance_below", Some(50_000), None),
            ("salary_received", None, None),
        ];
        for (kind, threshold, amount) in alerts {
            let new = NewAlert {
                kind: kind.to_owned(),
                account_id: current,
                threshold,
                amount,
            };
            app.accounts
                .create_alert(customer, new)
                .await
                .map_err(|e| anyhow::anyhow!("demo alert {kind}: {e}"))?;
        }
    }
    Ok(())
}

/// One planned transfer of the demo history.
struct Planned {
    step: usize,
    request: TransferRequest,
}

/// Times of day (Asia/Shanghai) at which the history's transfers happen.
const SLOTS: [(i8, i8); 3] = [(9, 0), (12, 30), (19, 15)];

const SPENDING: &[(&str, &str, i64, i64)] = &[
    // category, description, min fen, max fen
    ("groceries", "超市 Supermarket", 1_500, 30_000),
    ("dining", "餐饮 Restaurant", 2_000, 25_000),
    ("transport", "地铁公交 Metro & bus", 200, 1_500),
    ("shopping", "网购 Online shopping", 3_000, 80_000),
    ("entertainment", "电影 Cinema", 4_000, 15_000),
    ("health", "药店 Pharmacy", 1_000, 20_000),
    ("education", "课程 Course", 10_000, 60_000),
];

/// Opens every customer's accounts and writes their history; returns how many transfers.
async fn seed_history(
    app: &App,
    rows: &[huoban_identity::store::CustomerRow],
    seed: u64,
    days: u32,
) -> anyhow::Result<usize> {
    use futures::{StreamExt, TryStreamExt};

    let tz = jiff::tz::TimeZone::get("Asia/Shanghai")?;
    let today = app.clock.now().to_zoned(tz.clone()).date();
    let first_day = today.checked_sub(jiff::Span::new().days(i64::from(days)))?;
    let steps = days as usize * SLOTS.len();
    let at = |step: usize| -> anyhow::Result<jiff::Timestamp> {
        let day = first_day.checked_add(jiff::Span::new().days((step / SLOTS.len()) as i64))?;
        let (h, m) = SLOTS[step % SLOTS.len()];
        Ok(day.at(h, m, 0, 0).to_zoned(tz.clone())?.timestamp())
    };

    eprintln!("Opening accounts for {} customers…", rows.len());
    let accounts: Vec<StandardAccounts> = futures::stream::iter(rows)
        .map(|row| async move {
            let id = uuid::Uuid::parse_str(&row.id)?;
            app.accounts
                .ensure_standard_accounts(id)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))
        })
        .buffered(64)
        .try_collect()
        .await?;
    let cny = app
        .accounts
        .clearing(Unit::Cny)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let points = app
        .accounts
        .clearing(Unit::Points)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;

    let mut plan: Vec<Planned> = Vec::new();
    for (i, (row, acc)) in rows.iter().zip(&accounts).enumerate() {
        let mut rng = StdRng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let retired = row
            .birthday
            .as_deref()
            .and_then(|b| b.parse::<jiff::civil::Date>().ok())
            .is_some_and(|b| huoban_identity::domain::age_on(b, today) >= 60);
        let income: i64 = if retired {
            rng.random_range(2_500..7_000)
        } else {
            rng.random_range(6_000..30_000)
        } * 100;
        let pay_day: i8 = [5, 10, 15, 20, 25][rng.random_range(0..5)];
        let mut balance: i64 = rng.random_range(2_000..40_000) * 100;
        let mut spent_this_month: i64 = 0;
        let mut n = 0u32;
        let mut push = |plan: &mut Vec<Planned>,
                        step,
                        unit,
                        from,
                        to,
                        amount: i64,
                        category: &str,
                        description: &str|
         -> anyhow::Result<()> {
            n += 1;
            let key = IdempotencyKey::new("demo", format!("{}:{n}", row.id)).map_err(|e| anyhow::anyhow!("{e}"))?;
            let request = TransferRequest::single(
                key,
                unit,
                from,
                to,
                Amount::new(amount).map_err(|e| anyhow::anyhow!("{e}"))?,
            )
            .with_meta(TransferMeta {
                description: Some(description.to_owned()),
                merchant_category: Some(category.to_owned()),
                channel: Some("demo".into()),
                event_id: None,
                metadata: None,
            });
            plan.push(Planned { step, request });
            Ok(())
        };
        push(
            &mut plan,
            0,
            Unit::Cny,
            cny,
            acc.current,
            balance,
            "transfer",
            "开户余额 Opening balance",
        )?;
        for step in 1..steps {
            let day = first_day.checked_add(jiff::Span::new().days((step / SLOTS.len()) as i64))?;
            let slot = step % SLOTS.len();
            if slot == 0 && day.day() == pay_day {
                let label = if retired { "养老金 Pension" } else { "工资 Salary" };
                push(&mut plan, step, Unit::Cny, cny, acc.current, income, "salary", label)?;
                balance += income;
                let saving = income / 10;
                push(
                    &mut plan,
                    step + 1,
                    Unit::Cny,
                    acc.current,
                    acc.savings,
                    saving,
                    "transfer",
                    "每月储蓄 Monthly saving",
                )?;
                balance -= saving;
            }
            if slot == 2 && day.day() == 28 {
                let bill = rng.random_range(8_000..40_000);
                if bill <= balance {
                    push(
                        &mut plan,
                        step,
                        Unit::Cny,
                        acc.current,
                        cny,
                        bill,
                        "utilities",
                        "水电燃气 Utilities",
                    )?;
                    balance -= bill;
                }
            }
            if slot == 0 && day.day() == 1 && spent_this_month > 0 {
                // One point per yuan spent last month.
                let earned = (spent_this_month / 100).max(1);
                push(
                    &mut plan,
                    step,
                    Unit::Points,
                    points,
                    acc.points,
                    earned,
                    "rewards",
                    "消费积分 Points for spending",
                )?;
                spent_this_month = 0;
            }
            let chance = if slot == 1 { 0.6 } else { 0.35 };
            if rng.random_bool(chance) {
                let (category, description, min, max) = SPENDING[rng.random_range(0..SPENDING.len())];
                let amount = rng.random_range(min..max);
                // Everyday spending never overdraws: customers keep a cushion.
                if amount + 50_000 <= balance {
                    push(
                        &mut plan,
                        step,
                        Unit::Cny,
                        acc.current,
                        cny,
                        amount,
                        category,
                        description,
                    )?;
                    balance -= amount;
                    spent_this_month += amount;
                }
            }
        }
    }

    // A writer whose clock walks through the history, so every posting carries its date.
    let clock = ManualClock::new(at(0)?);
    let ledger = Ledger::start(app.db.clone(), Arc::new(clock.clone()));
    let mut by_step: Vec<Vec<TransferRequest>> = (0..=steps).map(|_| Vec::new()).collect();
    let total = plan.len();
    for p in plan {
        by_step[p.step.min(steps)].push(p.request);
    }
    let mut written = 0usize;
    for (step, requests) in by_step.into_iter().enumerate() {
        if requests.is_empty() {
            continue;
        }
        clock.set(at(step.min(steps - 1))?);
        let count = requests.len();
        futures::stream::iter(requests)
            .map(|r| {
                let ledger = ledger.clone();
                async move {
                    ledger
                        .transfer(r)
                        .await
                        .map_err(|e| anyhow::anyhow!("demo history: {e}"))
                }
            })
            .buffer_unordered(256)
            .try_collect::<Vec<_>>()
            .await?;
        written += count;
        if step % 30 == 0 {
            eprint!("\r  history: {written}/{total} transactions   ");
        }
    }
    eprintln!("\r  history: {written}/{total} transactions   ");
    Ok(written)
}
