//! Savings goals: plans, deposits that fill a goal pocket, milestones that fire once
//! (from the API and from the ledger listener), projection and behind-plan with a moving
//! clock, the durable reminder job, partners, and every refusal writing nothing.

use std::time::Duration;

use huoban_engage::goals::GoalsService;
use jiff::{Timestamp, ToSpan, civil::date};
use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    accounts::{balance, fund},
    helpers::{Reply, TestApp},
    on_both_backends,
};

on_both_backends!(
    a_goal_fills_from_deposits_and_fires_each_milestone_once,
    projection_and_behind_plan_follow_the_clock,
    the_reminder_job_fires_when_due_once_and_reschedules,
    a_partner_sees_the_goal_and_deposits_into_it,
    bad_goal_requests_are_refused_and_write_nothing,
);

/// 10:00 on 10 November 2026 in Shanghai.
fn start() -> Timestamp {
    "2026-11-10T02:00:00Z".parse().expect("instant")
}

async fn current_account(app: &TestApp, token: &str) -> String {
    let accounts = app.get("/api/v1/accounts", Some(token)).await;
    accounts.body["items"][0]["id"]
        .as_str()
        .expect("current account")
        .to_owned()
}

async fn create_goal(app: &TestApp, token: &str, target: i64, target_date: &str) -> Value {
    let goal = app
        .post(
            "/api/v1/goals",
            Some(token),
            json!({ "name": "教育", "target_amount": target, "target_date": target_date, "category": "education" }),
        )
        .await;
    assert_eq!(goal.status.as_u16(), 201, "{:?}", goal.body);
    goal.body
}

async fn deposit(app: &TestApp, token: &str, goal: &str, from: &str, amount: i64, key: Option<&str>) -> Reply {
    let headers: Vec<(&str, &str)> = key.map(|k| vec![("idempotency-key", k)]).unwrap_or_default();
    app.send(
        Method::POST,
        &format!("/api/v1/goals/{goal}/deposits"),
        Some(token),
        Some(json!({ "from_account": from, "amount": amount })),
        &headers,
    )
    .await
}

async fn messages(app: &TestApp, kind: &str) -> Vec<(String, String)> {
    sqlx::query_as("SELECT customer_id, dedupe_key FROM inbox_messages WHERE kind = $1 ORDER BY dedupe_key")
        .bind(kind)
        .fetch_all(app.app.db.reader())
        .await
        .expect("messages")
}

/// Waits up to two seconds for `kind` messages to number `n`.
async fn wait_for_messages(app: &TestApp, kind: &str, n: usize) -> Vec<(String, String)> {
    for _ in 0..40 {
        let found = messages(app, kind).await;
        if found.len() >= n {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    messages(app, kind).await
}

fn goals_service(app: &TestApp) -> GoalsService {
    GoalsService::new(&app.app.engage_state())
}

async fn a_goal_fills_from_deposits_and_fires_each_milestone_once(app: TestApp) {
    app.clock.set(start());
    let token = app.customer("13800138001").await;
    let current = current_account(&app, &token).await;
    // Salary on the 10th: the plan suggests the 13th.
    fund(&app, &current, 2_000_000, "salary").await;

    let goal = create_goal(&app, &token, 1_000_000, "2027-06-30").await;
    let id = goal["id"].as_str().expect("id").to_owned();
    assert_eq!(goal["plan"]["transfer_day"], 13);
    assert_eq!(goal["plan"]["installments"], 8, "13 Nov to 13 Jun");
    assert_eq!(goal["plan"]["monthly_amount"], 125_000);
    assert_eq!(goal["plan"]["last_date"], "2027-06-13");
    assert_eq!(goal["projected_completion"], "2027-06-13", "no history: the plan");
    assert_eq!((goal["saved"].as_i64(), goal["percent"].as_i64()), (Some(0), Some(0)));
    let pocket = goal["pocket_account_id"].as_str().expect("pocket").to_owned();
    let account = app
        .app
        .ledger
        .account(pocket.parse::<uuid::Uuid>().expect("uuid").into())
        .await
        .expect("pocket");
    assert_eq!(account.external_ref, Some(format!("goal:{id}")));
    assert_eq!(account.account_type.as_str(), "goal_pocket");

    let first = deposit(&app, &token, &id, &current, 300_000, Some("d1")).await;
    assert_eq!(first.status.as_u16(), 201, "{:?}", first.body);
    assert_eq!(first.body["milestones_fired"], json!([25]));
    assert_eq!(first.body["goal"]["saved"], 300_000);
    assert_eq!(first.body["goal"]["percent"], 30);
    assert_eq!(first.body["goal"]["remaining"], 700_000);
    // The milestone is there as soon as the deposit answers.
    assert_eq!(messages(&app, "goal_milestone").await.len(), 1);

    let replay = deposit(&app, &token, &id, &current, 300_000, Some("d1")).await;
    assert_eq!(replay.status.as_u16(), 201, "{:?}", replay.body);
    assert_eq!(replay.body["transfer_id"], first.body["transfer_id"]);
    assert_eq!(balance(&app, &pocket).await, 300_000, "a replay moves nothing");

    // Money credited to the pocket by any ledger transfer moves the goal too.
    fund(&app, &pocket, 300_000, "transfer").await;
    let fired = wait_for_messages(&app, "goal_milestone", 2).await;
    assert_eq!(fired.len(), 2, "{fired:?}");
    let view = app.get(&format!("/api/v1/goals/{id}"), Some(&token)).await;
    assert_eq!(view.body["saved"], 600_000);
    assert_eq!(view.body["milestones_reached"], json!([25, 50]));

    let last = deposit(&app, &token, &id, &current, 400_000, Some("d2")).await;
    assert_eq!(last.status.as_u16(), 201, "{:?}", last.body);
    assert_eq!(last.body["goal"]["completed"], true);
    assert_eq!(last.body["goal"]["projected_completion"], "2026-11-10");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fired = messages(&app, "goal_milestone").await;
    let keys: Vec<&str> = fired.iter().map(|(_, k)| k.as_str()).collect();
    let expected: Vec<String> = [100, 25, 50, 75].iter().map(|p| format!("goal:{id}:{p}")).collect();
    assert_eq!(
        keys,
        expected.iter().map(String::as_str).collect::<Vec<_>>(),
        "each milestone once"
    );
    assert_eq!(app.count("goal_milestones").await, 4);
    let contributions = &last.body["goal"]["contributions"];
    assert_eq!(contributions[0]["amount"], 700_000, "{contributions}");
    assert_eq!(contributions[0]["is_you"], true);
    assert_eq!(contributions[1]["customer_id"], Value::Null, "the bank's transfer");
}

async fn projection_and_behind_plan_follow_the_clock(app: TestApp) {
    app.clock.set(start());
    let token = app.customer("13800138002").await;
    let current = current_account(&app, &token).await;
    fund(&app, &current, 500_000, "transfer").await;
    let goal = create_goal(&app, &token, 120_000, "2027-10-31").await;
    let id = goal["id"].as_str().expect("id").to_owned();
    // No salary seen: the 1st, December to October.
    assert_eq!(goal["plan"]["transfer_day"], 1);
    assert_eq!(goal["plan"]["installments"], 11);
    assert_eq!(goal["plan"]["monthly_amount"], 10_910);
    assert_eq!(goal["plan"]["last_amount"], 120_000 - 10 * 10_910);
    assert_eq!(goal["projected_completion"], "2027-10-01");
    assert_eq!(goal["behind_plan"], false);

    app.clock.set("2026-12-05T02:00:00Z".parse().expect("instant"));
    // Sessions last hours; a new one after the clock's jump.
    let token = app.sign_in("13800138002", "h5").await;
    let late = app.get(&format!("/api/v1/goals/{id}"), Some(&token)).await;
    assert_eq!(late.body["behind_plan"], true, "{:?}", late.body);
    assert_eq!(late.body["expected_by_now"], 10_910);

    let paid = deposit(&app, &token, &id, &current, 21_820, Some("catch-up")).await;
    assert_eq!(paid.status.as_u16(), 201, "{:?}", paid.body);
    assert_eq!(paid.body["goal"]["behind_plan"], false);
    // 21,820 in 25 days: 98,180 more takes 113 days at that pace.
    let projected = date(2026, 12, 5).checked_add(113.days()).expect("date").to_string();
    assert_eq!(paid.body["goal"]["projected_completion"], projected.as_str());
}

async fn the_reminder_job_fires_when_due_once_and_reschedules(app: TestApp) {
    // The app's own tick runs on the app clock, which stays here; the test drives the job
    // with explicit instants.
    app.clock.set(start());
    let token = app.customer("13800138003").await;
    let goal = create_goal(&app, &token, 120_000, "2027-10-31").await;
    let id = goal["id"].as_str().expect("id").to_owned();
    assert_eq!(
        goal["next_reminder_at"], "2026-12-01T01:00:00Z",
        "09:00 Shanghai on the 1st"
    );
    let goals = goals_service(&app);

    assert_eq!(goals.run_due_reminders(start()).await.expect("tick"), 0, "not due yet");
    let due: Timestamp = "2026-12-01T01:00:00Z".parse().expect("instant");
    let (a, b) = tokio::join!(goals.run_due_reminders(due), goals.run_due_reminders(due));
    assert_eq!(a.expect("tick") + b.expect("tick"), 1, "claimed by one runner");
    assert_eq!(goals.run_due_reminders(due).await.expect("tick"), 0, "rescheduled");
    let reminders = messages(&app, "goal_reminder").await;
    assert_eq!(reminders.len(), 1);
    assert_eq!(reminders[0].1, format!("goal:{id}:reminder:2026-12"));
    assert!(
        messages(&app, "goal_behind_plan").await.is_empty(),
        "nothing was due before today"
    );

    let view = app.get(&format!("/api/v1/goals/{id}"), Some(&token)).await;
    assert_eq!(view.body["next_reminder_at"], "2027-01-01T01:00:00Z");
    // A month later nothing has been saved: the reminder and a behind-plan nudge.
    let next: Timestamp = "2027-01-01T01:00:05Z".parse().expect("instant");
    assert_eq!(goals.run_due_reminders(next).await.expect("tick"), 1);
    assert_eq!(messages(&app, "goal_reminder").await.len(), 2);
    let nudges = messages(&app, "goal_behind_plan").await;
    assert_eq!(nudges.len(), 1);
    assert_eq!(nudges[0].1, format!("goal:{id}:behind:2027-01"));
}

async fn a_partner_sees_the_goal_and_deposits_into_it(app: TestApp) {
    app.clock.set(start());
    let owner = app.customer("13800138004").await;
    let partner = app.customer("13800138005").await;
    let owner_current = current_account(&app, &owner).await;
    let partner_current = current_account(&app, &partner).await;
    fund(&app, &owner_current, 100_000, "transfer").await;
    fund(&app, &partner_current, 100_000, "transfer").await;
    let goal = create_goal(&app, &owner, 200_000, "2027-06-30").await;
    let id = goal["id"].as_str().expect("id").to_owned();

    app.get(&format!("/api/v1/goals/{id}"), Some(&partner))
        .await
        .assert_problem(404, "unknown-goal");
    let invited = app
        .post(
            &format!("/api/v1/goals/{id}/partners"),
            Some(&owner),
            json!({ "phone": "13800138005" }),
        )
        .await;
    assert_eq!(invited.status.as_u16(), 201, "{:?}", invited.body);
    assert_eq!(invited.body["members"].as_array().map(Vec::len), Some(2));
    assert_eq!(messages(&app, "goal_invite").await.len(), 1);

    let listed = app.get("/api/v1/goals", Some(&partner)).await;
    assert_eq!(listed.body["items"][0]["id"], id.as_str());
    assert_eq!(listed.body["items"][0]["role"], "partner");

    let theirs = deposit(&app, &partner, &id, &partner_current, 50_000, Some("p1")).await;
    assert_eq!(theirs.status.as_u16(), 201, "{:?}", theirs.body);
    let mine = deposit(&app, &owner, &id, &owner_current, 20_000, Some("o1")).await;
    assert_eq!(mine.status.as_u16(), 201, "{:?}", mine.body);
    let contributions = &mine.body["goal"]["contributions"];
    assert_eq!(contributions[0]["amount"], 50_000, "{contributions}");
    assert_eq!(contributions[0]["is_you"], false);
    assert_eq!(contributions[1]["amount"], 20_000);
    assert_eq!(contributions[1]["is_you"], true);
    assert_eq!(mine.body["goal"]["saved"], 70_000);
    // 25 % reached: both members hear of it.
    let fired = wait_for_messages(&app, "goal_milestone", 2).await;
    assert_eq!(fired.len(), 2, "{fired:?}");

    app.post(
        &format!("/api/v1/goals/{id}/partners"),
        Some(&partner),
        json!({ "phone": "13800138004" }),
    )
    .await
    .assert_problem(403, "not-goal-owner");
}

async fn bad_goal_requests_are_refused_and_write_nothing(app: TestApp) {
    app.clock.set(start());
    let token = app.customer("13800138006").await;
    let other = app.customer("13800138007").await;
    let current = current_account(&app, &token).await;
    let others_current = current_account(&app, &other).await;
    fund(&app, &current, 10_000, "transfer").await;
    let body = |target: i64, date: &str| json!({ "name": "Trip", "target_amount": target, "target_date": date });

    for (target, when, slug) in [
        (0, "2027-06-30", "invalid-target-amount"),
        (-5, "2027-06-30", "invalid-target-amount"),
        (1_000, "2026-11-09", "invalid-target-date"),
        (1_000, "2036-11-11", "invalid-target-date"),
    ] {
        app.post("/api/v1/goals", Some(&token), body(target, when))
            .await
            .assert_problem(422, slug);
    }
    app.post("/api/v1/goals", Some(&token), body(1_000, "June"))
        .await
        .assert_problem(422, "validation");
    assert_eq!(app.count("goals").await, 0);
    assert_eq!(app.count("goal_reminders").await, 0);

    let goal = create_goal(&app, &token, 100_000, "2027-06-30").await;
    let id = goal["id"].as_str().expect("id").to_owned();
    let pocket = goal["pocket_account_id"].as_str().expect("pocket").to_owned();
    let unknown = uuid::Uuid::now_v7();
    app.get(&format!("/api/v1/goals/{unknown}"), Some(&token))
        .await
        .assert_problem(404, "unknown-goal");
    app.get(&format!("/api/v1/goals/{id}"), Some(&other))
        .await
        .assert_problem(404, "unknown-goal");
    deposit(&app, &other, &id, &others_current, 100, Some("x1"))
        .await
        .assert_problem(404, "unknown-goal");
    deposit(&app, &token, &id, &others_current, 100, Some("x2"))
        .await
        .assert_problem(403, "not-your-account");
    deposit(&app, &token, &id, &current, 20_000, Some("x3"))
        .await
        .assert_problem(409, "insufficient-funds");
    deposit(&app, &token, &id, &current, 100, None)
        .await
        .assert_problem(400, "idempotency-key-required");
    deposit(&app, &token, &id, &current, 0, Some("x4"))
        .await
        .assert_problem(422, "invalid-amount");
    app.post(
        &format!("/api/v1/goals/{id}/partners"),
        Some(&token),
        json!({ "phone": "13800138006" }),
    )
    .await
    .assert_problem(422, "cannot-invite-yourself");
    app.post(
        &format!("/api/v1/goals/{id}/partners"),
        Some(&token),
        json!({ "phone": "13900000000" }),
    )
    .await
    .assert_problem(404, "unknown-phone");
    app.post(
        &format!("/api/v1/goals/{unknown}/partners"),
        Some(&token),
        json!({ "phone": "13800138007" }),
    )
    .await
    .assert_problem(404, "unknown-goal");

    assert_eq!(balance(&app, &pocket).await, 0);
    assert_eq!(balance(&app, &current).await, 10_000);
    assert_eq!(app.count("goal_contributions").await, 0);
    assert_eq!(app.count("goal_members").await, 1);
}
