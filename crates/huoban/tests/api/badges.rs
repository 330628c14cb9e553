//! Badges and levels: tiers reached as matching events count, with "2 of 3" progress on
//! the wall; a rule granting a badge; invalid badges refused; the level from points
//! earned, which spending points does not lower.

use huoban_identity::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    campaigns::{add_rule, assert_ledger_ok, campaign_body, effects, live_campaign, points, send},
    helpers::TestApp,
    on_both_backends,
};

on_both_backends!(
    badge_tiers_follow_progress_and_the_wall_shows_2_of_3,
    a_rule_grants_a_badge,
    invalid_badges_are_refused,
    the_level_comes_from_points_earned_not_the_balance,
);

async fn add_badge(app: &TestApp, staff: &str, body: Value) -> String {
    let created = app.post("/api/v1/staff/badges", Some(staff), body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    created.body["id"].as_str().expect("id").to_owned()
}

async fn wall_entry(app: &TestApp, token: &str, id: &str) -> Value {
    let wall = app.get("/api/v1/badges", Some(token)).await;
    assert_eq!(wall.status, StatusCode::OK, "{:?}", wall.body);
    wall.body
        .as_array()
        .expect("wall")
        .iter()
        .find(|b| b["id"] == id)
        .cloned()
        .expect("on the wall")
}

fn tiers() -> Value {
    json!([{ "name": "bronze", "threshold": 1 }, { "name": "silver", "threshold": 3 }, { "name": "gold", "threshold": 5 }])
}

async fn badge_tiers_follow_progress_and_the_wall_shows_2_of_3(app: TestApp) {
    let staff = app.staff(Role::Operator).await;
    let (_, token) = crate::accounts::customer(&app, "13900005001").await;
    let id = add_badge(
        &app,
        &staff,
        json!({ "titles": { "zh-CN": "绿色出行达人", "en": "Green traveller" }, "event_type": "green_trip",
                "filter": "event.properties.km >= 1", "tiers": tiers() }),
    )
    .await;
    let entry = wall_entry(&app, &token, &id).await;
    assert_eq!(
        (
            entry["progress"].as_i64(),
            entry["tier"].is_null(),
            entry["next_threshold"].as_i64()
        ),
        (Some(0), true, Some(1))
    );
    send(
        &app,
        &token,
        &[
            ("g-1", "green_trip", json!({ "km": 3 })),
            ("g-2", "green_trip", json!({ "km": 0 })),
        ],
    )
    .await;
    send(&app, &token, &[("g-3", "green_trip", json!({ "km": 2 }))]).await;
    let entry = wall_entry(&app, &token, &id).await;
    assert_eq!(entry["progress"], 2);
    assert_eq!(entry["tier"], "bronze");
    assert_eq!(entry["next_tier"], "silver");
    assert_eq!(entry["next_threshold"], 3);
    assert_eq!(entry["title"], "绿色出行达人");
    send(&app, &token, &[("g-4", "green_trip", json!({ "km": 5 }))]).await;
    let entry = wall_entry(&app, &token, &id).await;
    assert_eq!(
        (entry["tier"].as_str(), entry["next_threshold"].as_i64()),
        (Some("silver"), Some(5))
    );
    let tiers: Vec<String> = effects(&app, &token)
        .await
        .iter()
        .filter(|e| e["kind"] == "badge_tier")
        .map(|e| e["detail"]["tier"].as_str().expect("tier").to_owned())
        .collect();
    assert_eq!(tiers, vec!["silver", "bronze"]);
}

async fn a_rule_grants_a_badge(app: TestApp) {
    let staff = app.staff(Role::Operator).await;
    let (_, token) = crate::accounts::customer(&app, "13900005002").await;
    let campaign = live_campaign(&app, &staff, campaign_body(&app, "", 0, 0)).await;
    let badge = add_badge(
        &app,
        &staff,
        json!({ "campaign_id": campaign, "titles": { "zh-CN": "新春理财星" }, "event_type": "never_sent", "tiers": tiers() }),
    )
    .await;
    add_rule(
        &app,
        &staff,
        &campaign,
        json!({ "name": "Big purchase star", "trigger": "fund_purchase", "condition": "event.properties.amount >= 100000",
                "actions": [{ "type": "grant_badge", "badge": badge }] }),
    )
    .await;
    send(&app, &token, &[("d-1", "fund_purchase", json!({ "amount": 500 }))]).await;
    assert!(wall_entry(&app, &token, &badge).await["tier"].is_null());
    send(&app, &token, &[("d-2", "fund_purchase", json!({ "amount": 200000 }))]).await;
    let entry = wall_entry(&app, &token, &badge).await;
    assert_eq!(entry["tier"], "bronze");
    let why = effects(&app, &token).await;
    assert_eq!(why[0]["kind"], "badge");
    assert_eq!(why[0]["event_id"], "d-2");
}

async fn invalid_badges_are_refused(app: TestApp) {
    let staff = app.staff(Role::Operator).await;
    let good = json!({ "titles": { "zh-CN": "b" }, "event_type": "share", "tiers": tiers() });
    for (field, value, slug) in [
        (
            "tiers",
            json!([{ "name": "bronze", "threshold": 3 }, { "name": "silver", "threshold": 2 }]),
            "validation",
        ),
        ("tiers", json!([]), "validation"),
        ("filter", json!("event.properties.("), "invalid-rule-expression"),
        ("titles", json!({ "fr": "x" }), "validation"),
    ] {
        let mut body = good.clone();
        body[field] = value;
        app.post("/api/v1/staff/badges", Some(&staff), body)
            .await
            .assert_problem(422, slug);
    }
    let mut body = good.clone();
    body["campaign_id"] = json!(uuid::Uuid::now_v7());
    app.post("/api/v1/staff/badges", Some(&staff), body)
        .await
        .assert_problem(404, "unknown-campaign");
    assert_eq!(app.count("badges").await, 0);
    let list = app.get("/api/v1/staff/badges", Some(&staff)).await;
    assert!(list.body.as_array().expect("list").is_empty());
}

async fn the_level_comes_from_points_earned_not_the_balance(app: TestApp) {
    let staff = app.staff(Role::Operator).await;
    let (_, token) = crate::accounts::customer(&app, "13900005003").await;
    let level = app.get("/api/v1/me/level", Some(&token)).await;
    assert_eq!(
        (level.body["level"].as_i64(), level.body["next_level_at"].as_i64()),
        (Some(1), Some(100))
    );
    let campaign = live_campaign(&app, &staff, campaign_body(&app, "", 1000, 0)).await;
    add_rule(
        &app,
        &staff,
        &campaign,
        json!({ "name": "Festival gift", "trigger": "share", "actions": [{ "type": "award_points", "points": 150 }] }),
    )
    .await;
    send(&app, &token, &[("s-1", "share", json!({}))]).await;
    assert_eq!(points(&app, &token).await, 150);
    // Spend 100 of them on a coupon.
    let reward = app
        .post(
            "/api/v1/staff/rewards",
            Some(&staff),
            json!({ "titles": { "zh-CN": "咖啡券" }, "points_price": 100, "total_stock": 5, "per_customer_limit": 1,
                    "claimable_from": crate::campaigns::instant(&app, -1), "claimable_until": crate::campaigns::instant(&app, 24),
                    "coupon_valid_days": 30 }),
        )
        .await;
    let reward = reward.body["id"].as_str().expect("id").to_owned();
    let claim = app
        .send(
            reqwest::Method::POST,
            &format!("/api/v1/rewards/{reward}/claims"),
            Some(&token),
            Some(json!({})),
            &[("Idempotency-Key", "level-claim-1")],
        )
        .await;
    assert_eq!(claim.status, StatusCode::CREATED, "{:?}", claim.body);
    assert_eq!(points(&app, &token).await, 50);
    let level = app.get("/api/v1/me/level", Some(&token)).await;
    assert_eq!(level.body["points_earned"], 150);
    assert_eq!(level.body["level"], 2);
    assert_eq!(level.body["next_level"], 3);
    assert_eq!(level.body["next_level_at"], 500);
    assert_ledger_ok(&app).await;
}
