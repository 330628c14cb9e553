//! The demo bank behind `huoban serve --demo`: about a thousand customers of all ages
//! (so young and elderly segments exist), a staff user for every role, and — once the
//! ledger holds them — their accounts and 90 days of transactions. Deterministic: the same
//! seed always builds the same bank.

use anyhow::Context;
use huoban_identity::{Locale, Role, secrets::hash_password, service::Registration};
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
}

impl DemoReport {
    pub fn print(&self, url: &str) {
        if self.already_seeded {
            println!("\nThe demo bank is already in this database.");
        } else {
            println!(
                "\nSeeded the demo bank: {} customers ({} aged 60 or over), staff for every role.",
                self.customers, self.elderly
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
            elderly: 0,
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
        // Ages 18 to 85, weighted so that about a fifth are 60 or older.
        let age: i16 = if rng.random_bool(0.2) {
            rng.random_range(60..=85)
        } else {
            rng.random_range(18..60)
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
    eprintln!("Demo bank seeded in {:.1}s.", started.elapsed().as_secs_f64());
    Ok(DemoReport {
        already_seeded: false,
        customers: rows.len(),
        elderly,
    })
}
