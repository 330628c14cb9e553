//! Campaigns: the lifecycle (draft → scheduled → live → ended, by staff and by the
//! clock) and invalid transitions, validation with nothing saved, audiences that exclude
//! non-matching customers, unknown and ended campaigns for customers. Also the helpers
//! the rules, tasks and badges tests share.

use std::time::Duration;

use huoban_identity::Role;
use huoban_kit::Clock;
use jiff::SignedDuration;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{helpers::TestApp, on_both_backends};

on_both_backends!(
    a_campaign_moves_through_its_lifecycle_by_staff_and_by_the_clock,
    invalid_transitions_and_edits_are_refused,
    invalid_campaigns_are_refused_and_nothing_is_saved,
    the_audience_excludes_customers_who_do_not_match,
    unknown_and_ended_campaigns_for_customers,
    a_drafts_budget_is_funded_on_the_ledger_and_a_change_moves_the_difference,
);

pub fn instant(app: &TestApp, offset_hours: i64) -> String {
    (app.clock.now() + SignedDuration::from_hours(offset_hours)).to_string()
}

pub fn campaign_body(app: &TestApp, audience: &str, points_budget: i64, coupon_budget: i64) -> Value {
    json!({
        "name": "Spring test",
        "titles": { "zh-CN": "新春测试", "en": "Spring test" },
        "theme": "spring-festival",
        "starts_at": instant(app, -1),
        "ends_at": instant(app, 24 * 30),
        "audience": audience,
        "points_budget": points_budget,
        "coupon_budget": coupon_budget,
    })
}

/// Creates and schedules a campaign already inside its window: live.
pub async fn live_campaign(app: &TestApp, staff: &str, body: Value) -> String {
    let created = app.post("/api/v1/staff/campaigns", Some(staff), body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["id"].as_str().expect("id").to_owned();
    let scheduled = app
        .post(
            &format!("/api/v1/staff/campaigns/{id}/schedule"),
            Some(staff),
            json!({}),
        )
        .await;
    assert_eq!(scheduled.status, StatusCode::OK, "{:?}", scheduled.body);
    assert_eq!(scheduled.body["state"], "live");
    id
}

pub async fn add_rule(app: &TestApp, staff: &str, campaign: &str, body: Value) -> String {
    let created = app
        .post(&format!("/api/v1/staff/campaigns/{campaign}/rules"), Some(staff), body)
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    created.body["id"].as_str().expect("id").to_owned()
}

/// Sends events `(id, type, properties)` happening now.
pub async fn send(app: &TestApp, token: &str, events: &[(&str, &str, Value)]) {
    let at = (app.clock.now() - SignedDuration::from_secs(1)).to_string();
    let events: Vec<Value> = events
        .iter()
        .map(|(id, kind, props)| json!({ "id": id, "type": kind, "channel": "app", "at": at, "properties": props }))
        .collect();
    let reply = app
        .post("/api/v1/events", Some(token), json!({ "events": events }))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    caught_up(app).await;
}

/// Waits until the rules consumer has committed every stored event.
pub async fn caught_up(app: &TestApp) {
    for _ in 0..500 {
        let end: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM behaviour_events")
            .fetch_one(app.app.db.reader())
            .await
            .expect("max seq");
        let at: Option<i64> = sqlx::query_scalar("SELECT position FROM event_cursors WHERE consumer = 'rules'")
            .fetch_optional(app.app.db.reader())
            .await
            .expect("cursor");
        if at.unwrap_or(0) >= end.unwrap_or(0) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the rules consumer did not catch up");
}

pub async fn effects(app: &TestApp, token: &str) -> Vec<Value> {
    let reply = app.get("/api/v1/me/effects?limit=200", Some(token)).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.body["items"].as_array().expect("items").clone()
}

/// The customer's points balance (posted).
pub async fn points(app: &TestApp, token: &str) -> i64 {
    let list = app.get("/api/v1/accounts", Some(token)).await;
    list.body["items"]
        .as_array()
        .expect("accounts")
        .iter()
        .find(|a| a["type"] == "points")
        .map_or(0, |a| a["balance"]["posted"].as_i64().expect("posted"))
}

pub async fn staff_campaign(app: &TestApp, staff: &str, id: &str) -> Value {
    let reply = app.get(&format!("/api/v1/staff/campaigns/{id}"), Some(staff)).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.body
}

/// A catalog reward for prizes: `stock` units, `limit` per customer; returns its id.
pub async fn staff_reward(app: &TestApp, staff: &str, stock: i64, limit: i64) -> String {
    let reward = app
        .post(
            "/api/v1/staff/rewards",
            Some(staff),
            json!({ "titles": { "zh-CN": "新春红包券" }, "points_price": 100, "total_stock": stock,
                    "per_customer_limit": limit, "claimable_from": instant(app, -1),
                    "claimable_until": instant(app, 24 * 40), "coupon_valid_days": 30 }),
        )
        .await;
    assert_eq!(reward.status, StatusCode::CREATED, "{:?}", reward.body);
    reward.body["id"].as_str().expect("id").to_owned()
}

pub async fn assert_ledger_ok(app: &TestApp) {
    let report = app.app.ledger.invariants().await.expect("invariants");
    assert!(report.is_ok(), "{:?}", report.violations);
}

/// The staff matrix: campaign routes need a campaign in the right state per call.
pub async fn matrix_path(app: &TestApp, path: &str, customer: &str, account: &str) -> String {
    if path.starts_with("/api/v1/staff/campaigns/{id}") {
        let admin = app.staff(Role::Admin).await;
        let created = app
            .post("/api/v1/staff/campaigns", Some(&admin), campaign_body(app, "", 100, 1))
            .await;
        let id = created.body["id"].as_str().expect("id").to_owned();
        if path.ends_with("/end") {
            app.post(
                &format!("/api/v1/staff/campaigns/{id}/schedule"),
                Some(&admin),
                json!({}),
            )
            .await;
        }
        return path.replace("{id}", &id);
    }
    path.replace("{id}", customer).replace("{account_id}", account)
}

/// The staff matrix: valid bodies for campaign routes.
pub fn matrix_body(path: &str) -> Option<Value> {
    let window = json!({
        "name": "Matrix", "titles": { "zh-CN": "矩阵" }, "theme": "matrix",
        "starts_at": "2026-01-01T00:00:00Z", "ends_at": "2036-01-01T00:00:00Z",
    });
    if path == "/api/v1/staff/campaigns"
        || (path.starts_with("/api/v1/staff/campaigns/") && path.matches('/').count() == 5)
    {
        return Some(window);
    }
    if path.ends_with("/rules") {
        return Some(
            json!({ "name": "r", "trigger": "share", "actions": [{ "type": "show_nudge", "title": "t", "body": "b" }] }),
        );
    }
    if path.ends_with("/tasks") {
        return Some(
            json!({ "titles": { "zh-CN": "分享" }, "period": "daily", "event_type": "share", "target": 1, "reward_points": 1 }),
        );
    }
    if path.ends_with("/tags") {
        return Some(json!({ "tags": ["payroll"] }));
    }
    if path == "/api/v1/staff/badges" {
        return Some(
            json!({ "titles": { "zh-CN": "徽章" }, "event_type": "share", "tiers": [{ "name": "bronze", "threshold": 1 }] }),
        );
    }
    if path.ends_with("/schedule") || path.ends_with("/end") {
        return Some(json!({}));
    }
    None
}

async fn a_campaign_moves_through_its_lifecycle_by_staff_and_by_the_clock(app: TestApp) {
    let staff = app.staff(Role::Operator).await;
    let mut body = campaign_body(&app, "", 1000, 10);
    body["starts_at"] = json!(instant(&app, 2));
    body["ends_at"] = json!(instant(&app, 5));
    let created = app.post("/api/v1/staff/campaigns", Some(&staff), body.clone()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["state"], "draft");
    assert_eq!(created.body["points_budget"], 1000);
    assert_eq!(created.body["points_used"], 0);
    let id = created.body["id"].as_str().expect("id").to_owned();
    // A draft can be changed.
    body["name"] = json!("Spring renamed");
    let updated = app
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/staff/campaigns/{id}"),
            Some(&staff),
            Some(body.clone()),
            &[],
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{:?}", updated.body);
    assert_eq!(updated.body["name"], "Spring renamed");
    let scheduled = app
        .post(
            &format!("/api/v1/staff/campaigns/{id}/schedule"),
            Some(&staff),
            json!({}),
        )
        .await;
    assert_eq!(scheduled.body["state"], "scheduled");
    app.clock.advance(SignedDuration::from_hours(3));
    assert_eq!(staff_campaign(&app, &staff, &id).await["state"], "live");
    app.clock.advance(SignedDuration::from_hours(3));
    assert_eq!(staff_campaign(&app, &staff, &id).await["state"], "ended");
    // Staff end a live one.
    let other = live_campaign(&app, &staff, campaign_body(&app, "", 0, 0)).await;
    let ended = app
        .post(&format!("/api/v1/staff/campaigns/{other}/end"), Some(&staff), json!({}))
        .await;
    assert_eq!(ended.status, StatusCode::OK, "{:?}", ended.body);
    assert_eq!(ended.body["state"], "ended");
    let list = app.get("/api/v1/staff/campaigns", Some(&staff)).await;
    assert_eq!(list.body["items"].as_array().expect("items").len(), 2);
}

async fn invalid_transitions_and_edits_are_refused(app: TestApp) {
    let staff = app.staff(Role::Operator).await;
    let created = app
        .post("/api/v1/staff/campaigns", Some(&staff), campaign_body(&app, "", 0, 0))
        .await;
    let id = created.body["id"].as_str().expect("id").to_owned();
    app.post(&format!("/api/v1/staff/campaigns/{id}/end"), Some(&staff), json!({}))
        .await
        .assert_problem(409, "invalid-campaign-transition");
    app.post(
        &format!("/api/v1/staff/campaigns/{id}/schedule"),
        Some(&staff),
        json!({}),
    )
    .await;
    app.post(
        &format!("/api/v1/staff/campaigns/{id}/schedule"),
        Some(&staff),
        json!({}),
    )
    .await
    .assert_problem(409, "invalid-campaign-transition");
    app.send(
        reqwest::Method::PUT,
        &format!("/api/v1/staff/campaigns/{id}"),
        Some(&staff),
        Some(campaign_body(&app, "", 5, 5)),
        &[],
    )
    .await
    .assert_problem(409, "invalid-campaign-transition");
    app.post(&format!("/api/v1/staff/campaigns/{id}/end"), Some(&staff), json!({}))
        .await;
    app.post(&format!("/api/v1/staff/campaigns/{id}/end"), Some(&staff), json!({}))
        .await
        .assert_problem(409, "campaign-ended");
    app.post(
        &format!("/api/v1/staff/campaigns/{id}/rules"),
        Some(&staff),
        json!({ "name": "late", "trigger": "share", "actions": [{ "type": "award_points", "points": 1 }] }),
    )
    .await
    .assert_problem(409, "campaign-ended");
    let unknown = Uuid::now_v7();
    app.post(
        &format!("/api/v1/staff/campaigns/{unknown}/schedule"),
        Some(&staff),
        json!({}),
    )
    .await
    .assert_problem(404, "unknown-campaign");
    app.get(&format!("/api/v1/staff/campaigns/{unknown}"), Some(&staff))
        .await
        .assert_problem(404, "unknown-campaign");
    // A draft whose window is over cannot be scheduled.
    let mut past = campaign_body(&app, "", 0, 0);
    past["starts_at"] = json!(instant(&app, -10));
    past["ends_at"] = json!(instant(&app, -5));
    let created = app.post("/api/v1/staff/campaigns", Some(&staff), past).await;
    let id = created.body["id"].as_str().expect("id").to_owned();
    app.post(
        &format!("/api/v1/staff/campaigns/{id}/schedule"),
        Some(&staff),
        json!({}),
    )
    .await
    .assert_problem(422, "validation");
}

async fn invalid_campaigns_are_refused_and_nothing_is_saved(app: TestApp) {
    let staff = app.staff(Role::Operator).await;
    let cases: Vec<(&str, Value, &str)> = vec![
        ("titles", json!({ "en": "no chinese" }), "validation"),
        ("theme", json!("Spring Festival"), "validation"),
        ("ends_at", json!(instant(&app, -2)), "validation"),
        ("starts_at", json!("tomorrow"), "validation"),
        ("points_budget", json!(-1), "validation"),
        ("audience", json!("customer.age >"), "invalid-rule-expression"),
        ("audience", json!("event.type == 'x'"), "invalid-rule-expression"),
    ];
    for (field, value, slug) in cases {
        let mut body = campaign_body(&app, "", 0, 0);
        body[field] = value;
        let reply = app.post("/api/v1/staff/campaigns", Some(&staff), body).await;
        reply.assert_problem(422, slug);
    }
    assert_eq!(app.count("campaigns").await, 0);
    app.post(
        "/api/v1/staff/campaigns",
        Some(&app.staff(Role::SupportAgent).await),
        campaign_body(&app, "", 0, 0),
    )
    .await
    .assert_problem(403, "permission-denied");
}

async fn the_audience_excludes_customers_who_do_not_match(app: TestApp) {
    let staff = app.staff(Role::Operator).await;
    let (payroll_id, payroll) = crate::accounts::customer(&app, "13900002001").await;
    let (_, other) = crate::accounts::customer(&app, "13900002002").await;
    let tagged = app
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/staff/customers/{payroll_id}/tags"),
            Some(&staff),
            Some(json!({ "tags": ["payroll"] })),
            &[],
        )
        .await;
    assert_eq!(tagged.status, StatusCode::NO_CONTENT, "{:?}", tagged.body);
    let id = live_campaign(
        &app,
        &staff,
        campaign_body(
            &app,
            "'payroll' in customer.tags && customer.locale == 'zh-CN'",
            1000,
            0,
        ),
    )
    .await;
    add_rule(
        &app,
        &staff,
        &id,
        json!({ "name": "Share for points", "trigger": "share", "actions": [{ "type": "award_points", "points": 10 }] }),
    )
    .await;
    let mine = app.get("/api/v1/campaigns", Some(&payroll)).await;
    assert_eq!(mine.body.as_array().expect("list").len(), 1, "{:?}", mine.body);
    assert_eq!(mine.body[0]["title"], "新春测试");
    let theirs = app.get("/api/v1/campaigns", Some(&other)).await;
    assert_eq!(theirs.body.as_array().expect("list").len(), 0);
    app.get(&format!("/api/v1/campaigns/{id}"), Some(&other))
        .await
        .assert_problem(404, "unknown-campaign");
    send(&app, &payroll, &[("s-1", "share", json!({}))]).await;
    send(&app, &other, &[("s-1", "share", json!({}))]).await;
    assert_eq!(points(&app, &payroll).await, 10);
    assert_eq!(points(&app, &other).await, 0);
    assert!(effects(&app, &other).await.is_empty());
    assert_ledger_ok(&app).await;
}

async fn unknown_and_ended_campaigns_for_customers(app: TestApp) {
    let staff = app.staff(Role::Operator).await;
    let (_, token) = crate::accounts::customer(&app, "13900002003").await;
    app.get(&format!("/api/v1/campaigns/{}", Uuid::now_v7()), Some(&token))
        .await
        .assert_problem(404, "unknown-campaign");
    let id = live_campaign(&app, &staff, campaign_body(&app, "", 0, 0)).await;
    let one = app.get(&format!("/api/v1/campaigns/{id}"), Some(&token)).await;
    assert_eq!(one.status, StatusCode::OK, "{:?}", one.body);
    assert_eq!(one.body["theme"], "spring-festival");
    app.post(&format!("/api/v1/staff/campaigns/{id}/end"), Some(&staff), json!({}))
        .await;
    app.get(&format!("/api/v1/campaigns/{id}"), Some(&token))
        .await
        .assert_problem(409, "campaign-ended");
    assert!(
        app.get("/api/v1/campaigns", Some(&token))
            .await
            .body
            .as_array()
            .expect("list")
            .is_empty()
    );
}

crate::for_each_backend!(the_demo_bank_runs_a_live_spring_festival_campaign);

async fn the_demo_bank_runs_a_live_spring_festival_campaign(backend: huoban_kit::Backend) {
    let Some(app) = crate::helpers::spawn_app_with(backend, |c| {
        c.demo.customers = 12;
        c.demo.days_of_history = 10;
    })
    .await
    else {
        return;
    };
    app.clock.set("2026-11-22T08:00:00Z".parse().expect("time"));
    huoban::demo::seed(&app.app).await.expect("demo seeded");
    caught_up(&app).await;
    // The seeded history predates the campaign: it earned nothing.
    assert_eq!(app.count("campaign_effects").await, 0);
    app.clock.advance(SignedDuration::from_mins(1));
    let token = app.sign_in_demo("13800000001").await;
    let live = app.get("/api/v1/campaigns", Some(&token)).await;
    assert_eq!(live.body[0]["theme"], "spring-festival", "{:?}", live.body);
    assert_eq!(live.body[0]["state"], "live");
    assert_eq!(
        app.get("/api/v1/tasks", Some(&token))
            .await
            .body
            .as_array()
            .expect("tasks")
            .len(),
        3
    );
    assert_eq!(
        app.get("/api/v1/badges", Some(&token))
            .await
            .body
            .as_array()
            .expect("badges")
            .len(),
        2
    );
    let wealth = json!({ "category": "wealth" });
    send(
        &app,
        &token,
        &[
            ("d-1", "product_view", wealth.clone()),
            ("d-2", "product_view", wealth.clone()),
            ("d-3", "product_view", wealth),
            ("d-4", "share", json!({})),
            ("d-5", "green_trip", json!({ "km": 6 })),
        ],
    )
    .await;
    let nudges = app.get("/api/v1/nudges", Some(&token)).await;
    assert_eq!(nudges.body[0]["title"], "定制我的配置方案", "{:?}", nudges.body);
    let coupons = app.get("/api/v1/coupons", Some(&token)).await;
    assert_eq!(coupons.body["items"].as_array().expect("coupons").len(), 1);
    let kinds: Vec<String> = effects(&app, &token)
        .await
        .iter()
        .map(|e| e["kind"].as_str().expect("kind").to_owned())
        .collect();
    for kind in ["nudge", "points", "coupon", "badge"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} missing from {kinds:?}");
    }
    assert_ledger_ok(&app).await;
}

/// The balance of a ledger account, straight from its row.
async fn ledger_balance(app: &TestApp, account: &str) -> i64 {
    sqlx::query_scalar("SELECT posted FROM ledger_accounts WHERE id = $1")
        .bind(account)
        .fetch_one(app.app.db.reader())
        .await
        .expect("account")
}

async fn a_drafts_budget_is_funded_on_the_ledger_and_a_change_moves_the_difference(app: TestApp) {
    let staff = app.staff(Role::Operator).await;
    let mut body = campaign_body(&app, "", 300, 4);
    let created = app.post("/api/v1/staff/campaigns", Some(&staff), body.clone()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["id"].as_str().expect("id").to_owned();
    let account = created.body["points_account"]
        .as_str()
        .expect("budget account")
        .to_owned();
    assert_eq!(
        (
            created.body["points_used"].as_i64(),
            created.body["points_left"].as_i64(),
            created.body["coupons_left"].as_i64()
        ),
        (Some(0), Some(300), Some(4))
    );
    assert_eq!(
        ledger_balance(&app, &account).await,
        300,
        "funded with the whole budget"
    );
    let path = format!("/api/v1/staff/campaigns/{id}");
    for (budget, left) in [(500, 500), (120, 120)] {
        body["points_budget"] = json!(budget);
        let updated = app
            .send(reqwest::Method::PUT, &path, Some(&staff), Some(body.clone()), &[])
            .await;
        assert_eq!(updated.status, StatusCode::OK, "{:?}", updated.body);
        assert_eq!(updated.body["points_left"].as_i64(), Some(left));
        assert_eq!(updated.body["points_account"].as_str(), Some(account.as_str()));
        assert_eq!(ledger_balance(&app, &account).await, left);
    }
    // A refused change moves nothing.
    body["points_budget"] = json!(-5);
    app.send(reqwest::Method::PUT, &path, Some(&staff), Some(body.clone()), &[])
        .await
        .assert_problem(422, "validation");
    assert_eq!(ledger_balance(&app, &account).await, 120);
    // Once scheduled the budget is fixed; the refusal moves nothing either.
    app.post(&format!("{path}/schedule"), Some(&staff), json!({})).await;
    body["points_budget"] = json!(900);
    app.send(reqwest::Method::PUT, &path, Some(&staff), Some(body), &[])
        .await
        .assert_problem(409, "invalid-campaign-transition");
    assert_eq!(ledger_balance(&app, &account).await, 120);
    assert_eq!(staff_campaign(&app, &staff, &id).await["points_budget"], 120);
    assert_ledger_ok(&app).await;
}
