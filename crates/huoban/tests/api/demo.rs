//! The demo bank: deterministic from its seed, with believable customers, balanced
//! history on the real ledger, balance alerts ready to fire, and a live Spring Festival
//! campaign that every engagement feature is part of.

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
    the_spring_festival_campaign_uses_each_feature,
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

/// The live Spring Festival campaign takes in each feature: its rules and tasks react to
/// check-ins, the festival quiz, the risk-appetite questionnaire and money saved into
/// goals; its flash-sale reward and points-conversion offer belong to it; demo goals save
/// automatically; the invite programme and the team challenge are part of it. A customer
/// goes through several of them and sees the campaign answer.
async fn the_spring_festival_campaign_uses_each_feature(backend: Backend) {
    use crate::campaigns::{caught_up, effects};
    let Some(app) = spawn_app_with(backend, |c| {
        c.demo.customers = 12;
        c.demo.days_of_history = 35;
    })
    .await
    else {
        return;
    };
    app.clock.set("2026-11-22T08:00:00Z".parse().expect("time"));
    huoban::demo::seed(&app.app).await.expect("demo seeded");
    caught_up(&app).await;
    app.clock.advance(jiff::SignedDuration::from_mins(1));
    let token = app.sign_in_demo("13800000001").await;
    let live = app.get("/api/v1/campaigns", Some(&token)).await;
    assert_eq!(live.body[0]["theme"], "spring-festival", "{:?}", live.body);
    assert_eq!(live.body[0]["state"], "live");
    let campaign = live.body[0]["id"].as_str().expect("campaign").to_owned();

    // Staff see what belongs to it: rules over each kind of behaviour, tasks, the invite
    // programme and the team challenge.
    let staff = app
        .post(
            "/api/v1/staff/sessions",
            None,
            json!({ "username": "operator", "password": huoban::demo::STAFF_PASSWORD }),
        )
        .await
        .body["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let rules = app
        .get(&format!("/api/v1/staff/campaigns/{campaign}/rules"), Some(&staff))
        .await
        .body;
    let triggers: std::collections::BTreeSet<&str> = rules
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| r["trigger"].as_str().expect("trigger"))
        .collect();
    for trigger in [
        "check_in",
        "questionnaire_completed",
        "transfer_in",
        "share",
        "product_view",
        "green_trip",
    ] {
        assert!(triggers.contains(trigger), "no rule on {trigger}: {triggers:?}");
    }
    assert!(
        rules.to_string().contains("risk-appetite"),
        "a rule follows the risk-appetite questionnaire"
    );
    let tasks = app.get("/api/v1/tasks", Some(&token)).await.body;
    let task_events: Vec<&str> = tasks
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| t["event_type"].as_str().expect("event"))
        .collect();
    assert!(task_events.contains(&"check_in") && task_events.contains(&"questionnaire_completed"));
    for list in ["/api/v1/staff/invite-programmes", "/api/v1/staff/challenges"] {
        let items = app.get(list, Some(&staff)).await.body;
        assert_eq!(items["items"][0]["campaign_id"], campaign.as_str(), "{list}: {items}");
    }

    // Goals: customer 1 saves automatically, customer 2 does not.
    let goals = app.get("/api/v1/goals", Some(&token)).await.body;
    let goal = goals["items"][0].clone();
    assert!(goal["saved"].as_i64() > Some(0), "a first deposit: {goal}");
    assert_eq!(
        goal["auto_transfer"]["transfer_day"], goal["plan"]["transfer_day"],
        "{goal}"
    );
    let second = app.sign_in_demo("13800000002").await;
    let theirs = app.get("/api/v1/goals", Some(&second)).await.body;
    assert_eq!(theirs["items"][0]["auto_transfer"], serde_json::Value::Null);

    // The flash sale and the conversion offer belong to the campaign.
    let rewards = app.get("/api/v1/rewards", Some(&token)).await.body;
    let flash = rewards["items"]
        .as_array()
        .expect("rewards")
        .iter()
        .find(|r| r["points_price"] == 88 && r["per_customer_limit"] == 1)
        .cloned()
        .unwrap_or_else(|| panic!("the flash-sale reward is listed: {rewards}"));
    assert_eq!(flash["campaign_id"], campaign.as_str());
    let won = app
        .send(
            reqwest::Method::POST,
            &format!("/api/v1/rewards/{}/claims", flash["id"].as_str().expect("id")),
            Some(&token),
            None,
            &[("idempotency-key", "demo-flash")],
        )
        .await;
    assert_eq!(won.status, StatusCode::CREATED, "{:?}", won.body);
    let offers = app.get("/api/v1/goal-conversion-offers", Some(&token)).await.body;
    assert_eq!(offers["items"][0]["campaign_id"], campaign.as_str(), "{offers}");
    let converted = app
        .send(
            reqwest::Method::POST,
            &format!("/api/v1/goals/{}/conversions", goal["id"].as_str().expect("goal")),
            Some(&token),
            Some(json!({ "offer_id": offers["items"][0]["id"], "points": 100 })),
            &[("idempotency-key", "demo-convert")],
        )
        .await;
    assert_eq!(converted.status, StatusCode::CREATED, "{:?}", converted.body);
    assert_eq!(
        converted.body["goal"]["saved"],
        goal["saved"].as_i64().expect("saved") + 100
    );

    // Check in, pass the festival quiz: the campaign answers each.
    let checked = app.post("/api/v1/checkins", Some(&token), json!({})).await;
    assert_eq!(checked.status, StatusCode::CREATED, "{:?}", checked.body);
    let quizzes = app.get("/api/v1/questionnaires", Some(&token)).await.body;
    let quiz = quizzes["items"]
        .as_array()
        .expect("questionnaires")
        .iter()
        .find(|q| q["kind"] == "quiz")
        .cloned()
        .expect("the festival quiz is listed");
    let started = app
        .post(
            &format!("/api/v1/questionnaires/{}/sessions", quiz["id"].as_str().expect("id")),
            Some(&token),
            json!({}),
        )
        .await;
    assert_eq!(started.status, StatusCode::CREATED, "{:?}", started.body);
    let session = started.body["session_id"].as_str().expect("session").to_owned();
    for question in ["q1", "q2"] {
        let answered = app
            .post(
                &format!("/api/v1/questionnaires/sessions/{session}/answers"),
                Some(&token),
                json!({ "question_id": question, "option_id": "a" }),
            )
            .await;
        assert_eq!(answered.status.as_u16(), 200, "{:?}", answered.body);
    }
    caught_up(&app).await;
    let tasks = app.get("/api/v1/tasks", Some(&token)).await.body;
    let check_in_task = tasks
        .as_array()
        .expect("tasks")
        .iter()
        .find(|t| t["event_type"] == "check_in")
        .cloned()
        .expect("check-in task");
    assert_eq!(check_in_task["complete"], true, "{check_in_task}");
    let why: Vec<String> = effects(&app, &token)
        .await
        .iter()
        .filter_map(|e| e["rule_name"].as_str().map(str::to_owned))
        .collect();
    for rule in ["新春小测验达人 Festival quiz", "新春存下第一笔 First festival savings"] {
        assert!(why.iter().any(|w| w == rule), "{rule} did not fire: {why:?}");
    }
    let report = app.app.ledger.invariants().await.expect("invariants");
    assert!(report.is_ok(), "{:?}", report.violations);
}
