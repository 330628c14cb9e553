//! Tasks: a daily task resets at the customer's local midnight (Asia/Shanghai, while it is
//! still the same day in UTC); a weekly task counts across days of one ISO week and
//! resets the next; claiming pays once (twice → `task-already-claimed`), an incomplete
//! claim is `task-not-complete`; a rule advances a task; bad definitions are refused.

use huoban_identity::Role;
use jiff::{SignedDuration, Timestamp};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    campaigns::{add_rule, assert_ledger_ok, campaign_body, live_campaign, points, send, staff_campaign},
    helpers::TestApp,
    on_both_backends,
};

on_both_backends!(
    a_daily_task_resets_at_the_customers_local_midnight_and_pays_once,
    a_weekly_task_counts_across_the_week_and_resets_the_next,
    a_rule_advances_a_one_off_task_with_a_coupon_reward,
    invalid_tasks_are_refused,
);

async fn add_task(app: &TestApp, staff: &str, campaign: &str, body: Value) -> String {
    let created = app
        .post(&format!("/api/v1/staff/campaigns/{campaign}/tasks"), Some(staff), body)
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    created.body["id"].as_str().expect("id").to_owned()
}

async fn task(app: &TestApp, token: &str, id: &str) -> Value {
    let list = app.get("/api/v1/tasks", Some(token)).await;
    assert_eq!(list.status, StatusCode::OK, "{:?}", list.body);
    list.body
        .as_array()
        .expect("tasks")
        .iter()
        .find(|t| t["id"] == id)
        .cloned()
        .expect("task listed")
}

async fn a_daily_task_resets_at_the_customers_local_midnight_and_pays_once(app: TestApp) {
    // 23:40 in Shanghai, 15:40 UTC.
    app.clock
        .set("2026-02-16T15:40:00Z".parse::<Timestamp>().expect("time"));
    let staff = app.staff(Role::Operator).await;
    let (_, token) = crate::accounts::customer(&app, "13900004001").await;
    let campaign = live_campaign(&app, &staff, campaign_body(&app, "", 1000, 0)).await;
    let id = add_task(
        &app,
        &staff,
        &campaign,
        json!({ "titles": { "zh-CN": "每日分享两次" }, "period": "daily", "event_type": "share",
                "filter": "event.channel == 'app'", "target": 2, "reward_points": 20 }),
    )
    .await;
    send(&app, &token, &[("s-1", "share", json!({}))]).await;
    let t = task(&app, &token, &id).await;
    assert_eq!(
        (t["progress"].as_i64(), t["target"].as_i64(), t["period_key"].as_str()),
        (Some(1), Some(2), Some("2026-02-16"))
    );
    app.post(&format!("/api/v1/tasks/{id}/claim"), Some(&token), json!({}))
        .await
        .assert_problem(409, "task-not-complete");
    send(
        &app,
        &token,
        &[("s-2", "share", json!({})), ("s-3", "share", json!({}))],
    )
    .await;
    let claimed = app
        .post(&format!("/api/v1/tasks/{id}/claim"), Some(&token), json!({}))
        .await;
    assert_eq!(claimed.status, StatusCode::OK, "{:?}", claimed.body);
    assert_eq!(claimed.body["points"], 20);
    app.post(&format!("/api/v1/tasks/{id}/claim"), Some(&token), json!({}))
        .await
        .assert_problem(409, "task-already-claimed");
    assert_eq!(points(&app, &token).await, 20);
    assert!(task(&app, &token, &id).await["claimed"].as_bool().expect("claimed"));
    // 00:10 in Shanghai: a new day there, still 2026-02-16 in UTC.
    app.clock.advance(SignedDuration::from_mins(30));
    let t = task(&app, &token, &id).await;
    assert_eq!(
        (t["progress"].as_i64(), t["claimed"].as_bool(), t["period_key"].as_str()),
        (Some(0), Some(false), Some("2026-02-17"))
    );
    send(
        &app,
        &token,
        &[("s-4", "share", json!({})), ("s-5", "share", json!({}))],
    )
    .await;
    let again = app
        .post(&format!("/api/v1/tasks/{id}/claim"), Some(&token), json!({}))
        .await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
    assert_eq!(points(&app, &token).await, 40);
    assert_eq!(staff_campaign(&app, &staff, &campaign).await["points_used"], 40);
    app.post(
        &format!("/api/v1/tasks/{}/claim", uuid::Uuid::now_v7()),
        Some(&token),
        json!({}),
    )
    .await
    .assert_problem(404, "unknown-task");
    assert_ledger_ok(&app).await;
}

async fn a_weekly_task_counts_across_the_week_and_resets_the_next(app: TestApp) {
    // Monday 2026-02-16 10:00 in Shanghai.
    app.clock
        .set("2026-02-16T02:00:00Z".parse::<Timestamp>().expect("time"));
    let staff = app.staff(Role::Operator).await;
    let (_, mut token) = crate::accounts::customer(&app, "13900004002").await;
    let campaign = live_campaign(&app, &staff, campaign_body(&app, "", 1000, 0)).await;
    let id = add_task(
        &app,
        &staff,
        &campaign,
        json!({ "titles": { "zh-CN": "每周绿色出行三次" }, "period": "weekly", "event_type": "green_trip",
                "target": 3, "reward_points": 50 }),
    )
    .await;
    for (day, event) in ["g-1", "g-2", "g-3"].iter().enumerate() {
        if day > 0 {
            app.clock.advance(SignedDuration::from_hours(48));
            token = app.sign_in("13900004002", "h5").await;
        }
        send(&app, &token, &[(event, "green_trip", json!({}))]).await;
    }
    // Friday: three in week 8.
    let t = task(&app, &token, &id).await;
    assert_eq!(
        (
            t["progress"].as_i64(),
            t["complete"].as_bool(),
            t["period_key"].as_str()
        ),
        (Some(3), Some(true), Some("2026-W08"))
    );
    // Monday of the next week: a fresh count, and the unclaimed reward of last week is gone.
    app.clock.advance(SignedDuration::from_hours(72));
    token = app.sign_in("13900004002", "h5").await;
    let t = task(&app, &token, &id).await;
    assert_eq!(
        (t["progress"].as_i64(), t["period_key"].as_str()),
        (Some(0), Some("2026-W09"))
    );
    app.post(&format!("/api/v1/tasks/{id}/claim"), Some(&token), json!({}))
        .await
        .assert_problem(409, "task-not-complete");
}

async fn a_rule_advances_a_one_off_task_with_a_coupon_reward(app: TestApp) {
    let staff = app.staff(Role::Operator).await;
    let (_, token) = crate::accounts::customer(&app, "13900004003").await;
    let reward = app
        .post(
            "/api/v1/staff/rewards",
            Some(&staff),
            json!({ "titles": { "zh-CN": "理财体验券" }, "points_price": 100, "total_stock": 10, "per_customer_limit": 1,
                    "claimable_from": crate::campaigns::instant(&app, -1), "claimable_until": crate::campaigns::instant(&app, 24 * 40),
                    "coupon_valid_days": 30 }),
        )
        .await;
    let reward = reward.body["id"].as_str().expect("id").to_owned();
    let campaign = live_campaign(&app, &staff, campaign_body(&app, "", 0, 5)).await;
    let id = add_task(
        &app,
        &staff,
        &campaign,
        json!({ "titles": { "zh-CN": "完成理财测评" }, "period": "once", "event_type": "questionnaire_completed",
                "target": 1, "reward_coupon": reward }),
    )
    .await;
    add_rule(
        &app,
        &staff,
        &campaign,
        json!({ "name": "Quiz counts", "trigger": "quiz_done", "actions": [{ "type": "advance_task", "task": id }] }),
    )
    .await;
    send(&app, &token, &[("q-1", "quiz_done", json!({}))]).await;
    let t = task(&app, &token, &id).await;
    assert_eq!(t["complete"], true, "{t:?}");
    let claimed = app
        .post(&format!("/api/v1/tasks/{id}/claim"), Some(&token), json!({}))
        .await;
    assert_eq!(claimed.status, StatusCode::OK, "{:?}", claimed.body);
    assert!(claimed.body["coupon_code"].as_str().expect("code").starts_with("HB-"));
    app.post(&format!("/api/v1/tasks/{id}/claim"), Some(&token), json!({}))
        .await
        .assert_problem(409, "task-already-claimed");
    let coupons = app.get("/api/v1/coupons", Some(&token)).await;
    assert_eq!(coupons.body["items"].as_array().expect("items").len(), 1);
    assert_eq!(staff_campaign(&app, &staff, &campaign).await["coupons_used"], 1);
}

async fn invalid_tasks_are_refused(app: TestApp) {
    let staff = app.staff(Role::Operator).await;
    let campaign = live_campaign(&app, &staff, campaign_body(&app, "", 0, 0)).await;
    let path = format!("/api/v1/staff/campaigns/{campaign}/tasks");
    let good = json!({ "titles": { "zh-CN": "t" }, "period": "daily", "event_type": "share", "target": 1, "reward_points": 1 });
    for (field, value, slug) in [
        ("target", json!(0), "validation"),
        ("reward_points", json!(0), "validation"),
        ("event_type", json!("Share"), "validation"),
        ("filter", json!("event.properties.x >"), "invalid-rule-expression"),
    ] {
        let mut body = good.clone();
        body[field] = value;
        app.post(&path, Some(&staff), body).await.assert_problem(422, slug);
    }
    let mut body = good.clone();
    body["period"] = json!("monthly");
    app.post(&path, Some(&staff), body)
        .await
        .assert_problem(422, "invalid-body");
    assert_eq!(app.count("campaign_tasks").await, 0);
    app.post(
        &format!("/api/v1/staff/campaigns/{}/tasks", uuid::Uuid::now_v7()),
        Some(&staff),
        good,
    )
    .await
    .assert_problem(404, "unknown-campaign");
}
