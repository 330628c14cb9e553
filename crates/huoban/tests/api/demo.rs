//! The demo bank: deterministic from its seed, with believable customers, balanced
//! history on the real ledger, and balance alerts ready to fire.

use huoban_kit::Backend;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, spawn_app_with};

async fn demo_app(backend: Backend, seed: u64) -> Option<TestApp> {
    let app = spawn_app_with(backend, |c| {
        c.demo.customers = 40;
        c.demo.days_of_history = 35;
        c.demo.seed = seed;
    })
    .await?;
    app.clock.set("2026-11-22T08:00:00Z".parse().expect("time"));
    huoban::demo::seed(&app.app).await.expect("demo seeded");
    Some(app)
}

/// What a seed decides: each customer's phone, name, birthday and balances (personal
/// fields are sealed in the database, so they are read through the service).
async fn fingerprint(app: &TestApp) -> Vec<(String, String, Option<String>, i64, i64, i64)> {
    let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "SELECT c.id, \
           (SELECT posted FROM ledger_accounts WHERE external_ref = 'cust:' || c.id || ':current'), \
           (SELECT posted FROM ledger_accounts WHERE external_ref = 'cust:' || c.id || ':savings'), \
           (SELECT posted FROM ledger_accounts WHERE external_ref = 'cust:' || c.id || ':points') \
         FROM customers c",
    )
    .fetch_all(app.app.db.reader())
    .await
    .expect("fingerprint");
    let mut out = Vec::new();
    for (id, current, savings, points) in rows {
        let p = app
            .app
            .identity
            .profile(id.parse().expect("id"))
            .await
            .expect("profile");
        out.push((p.phone, p.name, p.birthday, current, savings, points));
    }
    out.sort();
    out
}

crate::for_each_backend!(
    the_same_seed_builds_the_same_bank,
    the_demo_bank_has_history_segments_staff_and_alerts,
);

async fn the_same_seed_builds_the_same_bank(backend: Backend) {
    let Some(a) = demo_app(backend, 7).await else { return };
    let Some(b) = demo_app(backend, 7).await else { return };
    let Some(c) = demo_app(backend, 8).await else { return };
    let (fa, fb, fc) = (fingerprint(&a).await, fingerprint(&b).await, fingerprint(&c).await);
    assert_eq!(fa.len(), 40);
    assert_eq!(fa, fb, "same seed, same bank");
    assert_ne!(fa, fc, "another seed, another bank");
    // Seeding again does nothing.
    let again = huoban::demo::seed(&a.app).await.expect("seed");
    assert!(again.already_seeded);
    assert_eq!(fingerprint(&a).await, fa);
}

async fn the_demo_bank_has_history_segments_staff_and_alerts(backend: Backend) {
    let Some(app) = demo_app(backend, 2026).await else {
        return;
    };
    let report = app.app.ledger.invariants().await.expect("invariants");
    assert!(report.is_ok(), "{:?}", report.violations);
    let young = app.sign_in_demo("13800000001").await;
    let elderly = app.sign_in_demo("13800000002").await;
    let profile = app.get("/api/v1/me", Some(&elderly)).await.body;
    assert_eq!(profile["elderly_mode_suggested"], true, "{profile}");
    assert_eq!(
        app.get("/api/v1/me", Some(&young)).await.body["elderly_mode_suggested"],
        false
    );

    let accounts = app.get("/api/v1/accounts", Some(&young)).await.body;
    let current = accounts["items"][0]["id"].as_str().expect("current").to_owned();
    // Salary on one fixed day of the month, bills and spending in several categories.
    let salaries = app
        .get(
            &format!("/api/v1/accounts/{current}/transactions?category=salary&limit=200"),
            Some(&young),
        )
        .await
        .body;
    let days: std::collections::BTreeSet<String> = salaries["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| p["at"].as_str().expect("at")[8..10].to_owned())
        .collect();
    assert!(!days.is_empty(), "salary was paid");
    assert_eq!(days.len(), 1, "always on the same day of the month: {days:?}");
    let october = app
        .get(
            &format!("/api/v1/accounts/{current}/statement?month=2026-10"),
            Some(&young),
        )
        .await
        .body;
    assert!(
        october["spending_by_category"].as_array().expect("categories").len() >= 3,
        "{october}"
    );

    // Alerts are set and fire on a large debit.
    let alerts = app.get("/api/v1/alerts", Some(&young)).await.body;
    assert_eq!(
        alerts["items"]
            .as_array()
            .map(Vec::len)
            .or(alerts.as_array().map(Vec::len)),
        Some(3)
    );
    let paid = app
        .send(
            reqwest::Method::POST,
            "/api/v1/transfers",
            Some(&young),
            Some(json!({ "from_account": current, "to_phone": "13800000003", "amount": 120_000, "currency": "CNY" })),
            &[("idempotency-key", "demo-large-debit")],
        )
        .await;
    assert_eq!(paid.status, StatusCode::CREATED, "{:?}", paid.body);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        let unread = app.get("/api/v1/inbox/unread-count", Some(&young)).await.body["unread"].as_i64();
        if unread >= Some(1) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the alert reached the inbox within a second"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // Staff for every role.
    for username in ["operator", "risk", "support", "auditor", "demo-admin"] {
        let session = app
            .post(
                "/api/v1/staff/sessions",
                None,
                json!({ "username": username, "password": huoban::demo::STAFF_PASSWORD }),
            )
            .await;
        assert_eq!(session.status, StatusCode::CREATED, "{username}");
    }

    // Adaptive security: a held transfer waits for the last-but-one customer (of 40), an
    // open case for the officer.
    let held = app.sign_in_demo("13800000039").await;
    let holds = app.get("/api/v1/security/holds", Some(&held)).await.body;
    assert_eq!(holds["items"][0]["state"], "held", "{holds}");
    let risk = app
        .post(
            "/api/v1/staff/sessions",
            None,
            json!({ "username": "risk", "password": huoban::demo::STAFF_PASSWORD }),
        )
        .await
        .body["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let cases = app.get("/api/v1/staff/risk/cases?state=open", Some(&risk)).await.body;
    assert_eq!(cases["items"].as_array().map(Vec::len), Some(1), "{cases}");
}
