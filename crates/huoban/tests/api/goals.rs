//! Savings goals: plans, deposits that fill a goal pocket, milestones that fire once
//! (from the API and from the ledger listener), projection and behind-plan with a moving
//! clock, the durable reminder job, partners, and every refusal writing nothing. The
//! automatic monthly transfer (once on its day, not again after a restart, a second
//! runner or a crash after paying; short of money; turned off; bad input) and points
//! converted under campaign offers (once per key; every refusal moving nothing).

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
    the_automatic_transfer_moves_the_monthly_amount_once_on_its_day,
    an_automatic_transfer_short_of_money_moves_nothing_retries_then_skips_the_month,
    a_shortfall_found_days_late_is_retried_the_next_day_not_at_once,
    the_automatic_transfer_stops_when_turned_off_and_refuses_bad_input,
    points_convert_into_a_goal_under_a_campaign_offer_once_per_key,
    bad_conversions_and_offers_are_refused_and_move_nothing,
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

/// 08:00 Shanghai on a day of November 2026 (the automatic transfer's hour), plus seconds.
fn transfer_time(day: &str, seconds: i64) -> Timestamp {
    let at: Timestamp = format!("{day}T00:00:00Z").parse().expect("instant");
    at.checked_add(jiff::SignedDuration::from_secs(seconds))
        .expect("instant")
}

async fn auto_transfer(app: &TestApp, token: &str, goal: &str, body: Value) -> Reply {
    app.send(
        Method::PUT,
        &format!("/api/v1/goals/{goal}/auto-transfer"),
        Some(token),
        Some(body),
        &[],
    )
    .await
}

/// At [`start`]: a customer with ¥500 in their current account and a goal of ¥4,000 by
/// March 2027 that takes its monthly amount from that account on the 15th — more than
/// the account holds. Returns their token, current account and the goal.
async fn short_saver(app: &TestApp, phone: &str) -> (String, String, Value) {
    app.clock.set(start());
    let token = app.customer(phone).await;
    let current = current_account(app, &token).await;
    fund(app, &current, 50_000, "transfer").await;
    let goal = create_goal(app, &token, 400_000, "2027-03-31").await;
    let id = goal["id"].as_str().expect("id");
    let on = auto_transfer(app, &token, id, json!({ "transfer_day": 15, "from_account": current })).await;
    assert_eq!(on.status.as_u16(), 200, "{:?}", on.body);
    (token, current, goal)
}

async fn view(app: &TestApp, token: &str, goal: &str) -> Value {
    let reply = app.get(&format!("/api/v1/goals/{goal}"), Some(token)).await;
    assert_eq!(reply.status.as_u16(), 200, "{:?}", reply.body);
    reply.body
}

async fn the_automatic_transfer_moves_the_monthly_amount_once_on_its_day(app: TestApp) {
    app.clock.set(start());
    let token = app.customer("13800138101").await;
    let current = current_account(&app, &token).await;
    fund(&app, &current, 1_000_000, "transfer").await;
    // 1 Dec, 1 Jan, 1 Feb, 1 Mar: four installments of ¥1,000.
    let goal = create_goal(&app, &token, 400_000, "2027-03-31").await;
    let id = goal["id"].as_str().expect("id").to_owned();
    let pocket = goal["pocket_account_id"].as_str().expect("pocket").to_owned();
    assert_eq!(goal["plan"]["monthly_amount"], 100_000);
    assert_eq!(goal["auto_transfer"], Value::Null);

    let on = auto_transfer(&app, &token, &id, json!({ "transfer_day": 15 })).await;
    assert_eq!(on.status.as_u16(), 200, "{:?}", on.body);
    let auto = &on.body["auto_transfer"];
    assert_eq!(auto["from_account"], current.as_str(), "the current account by default");
    assert_eq!(auto["transfer_day"], 15);
    assert_eq!(auto["amount"], 100_000);
    assert_eq!(
        auto["next_transfer_at"], "2026-11-15T00:00:00Z",
        "08:00 Shanghai on the 15th"
    );
    assert_eq!(auto["month"], "2026-11");

    let goals = goals_service(&app);
    assert_eq!(
        goals
            .run_due_transfers(transfer_time("2026-11-14", 86_399))
            .await
            .expect("tick"),
        0
    );
    assert_eq!(balance(&app, &pocket).await, 0, "not before its day");
    let due = transfer_time("2026-11-15", 5);
    let (a, b) = tokio::join!(goals.run_due_transfers(due), goals.run_due_transfers(due));
    assert_eq!(a.expect("tick") + b.expect("tick"), 1, "claimed by one runner");
    assert_eq!(balance(&app, &pocket).await, 100_000);
    assert_eq!(balance(&app, &current).await, 900_000);
    // A second tick, and a restarted node, find nothing due.
    assert_eq!(goals.run_due_transfers(due).await.expect("tick"), 0);
    assert_eq!(goals_service(&app).run_due_transfers(due).await.expect("tick"), 0);
    let after = view(&app, &token, &id).await;
    assert_eq!(after["saved"], 100_000);
    assert_eq!(after["milestones_reached"], json!([25]));
    assert_eq!(after["auto_transfer"]["next_transfer_at"], "2026-12-15T00:00:00Z");
    assert_eq!(after["auto_transfer"]["month"], "2026-12");
    assert_eq!(after["contributions"][0]["is_you"], true, "{after}");
    assert_eq!(
        messages(&app, "goal_auto_transfer").await,
        vec![(
            after["members"][0]["customer_id"].as_str().expect("id").to_owned(),
            format!("goal:{id}:auto:2026-11")
        )]
    );
    assert_eq!(messages(&app, "goal_milestone").await.len(), 1);

    // A node that paid November and died before moving the job on: the job comes due
    // again for November, and the month's key finds the payment instead of paying twice.
    sqlx::query("UPDATE goal_auto_transfers SET due_at = $1, month = '2026-11', claimed_until = 0, claim_token = NULL")
        .bind(due.as_microsecond())
        .execute(app.app.db.writer())
        .await
        .expect("rewound");
    assert_eq!(goals.run_due_transfers(due).await.expect("tick"), 0);
    assert_eq!(balance(&app, &pocket).await, 100_000, "November paid once");
    assert_eq!(view(&app, &token, &id).await["auto_transfer"]["month"], "2026-12");

    // December: the second installment.
    assert_eq!(
        goals
            .run_due_transfers(transfer_time("2026-12-15", 1))
            .await
            .expect("tick"),
        1
    );
    assert_eq!(balance(&app, &pocket).await, 200_000);
    // A deposit leaves ¥500 to save: January moves only that, and the goal is done.
    let paid = deposit(&app, &token, &id, &current, 150_000, Some("extra")).await;
    assert_eq!(paid.status.as_u16(), 201, "{:?}", paid.body);
    assert_eq!(paid.body["goal"]["auto_transfer"]["amount"], 50_000);
    assert_eq!(
        goals
            .run_due_transfers(transfer_time("2027-01-15", 1))
            .await
            .expect("tick"),
        1
    );
    assert_eq!(balance(&app, &pocket).await, 400_000, "never past the target");
    // February finds the goal complete and ends the transfer.
    assert_eq!(
        goals
            .run_due_transfers(transfer_time("2027-02-15", 1))
            .await
            .expect("tick"),
        0
    );
    let done = view(&app, &token, &id).await;
    assert_eq!(done["completed"], true);
    assert_eq!(done["auto_transfer"], Value::Null);
    assert_eq!(balance(&app, &current).await, 600_000);
    assert_eq!(messages(&app, "goal_auto_transfer").await.len(), 3);
    let report = app.app.ledger.invariants().await.expect("invariants");
    assert!(report.is_ok(), "{:?}", report.violations);
}

async fn an_automatic_transfer_short_of_money_moves_nothing_retries_then_skips_the_month(app: TestApp) {
    let (token, current, goal) = short_saver(&app, "13800138111").await;
    let id = goal["id"].as_str().expect("id").to_owned();
    let pocket = goal["pocket_account_id"].as_str().expect("pocket").to_owned();
    let goals = goals_service(&app);

    // ¥500 in the account, ¥1,000 due: nothing moves, one message, tried again tomorrow.
    assert_eq!(
        goals
            .run_due_transfers(transfer_time("2026-11-15", 1))
            .await
            .expect("tick"),
        0
    );
    assert_eq!(
        (balance(&app, &pocket).await, balance(&app, &current).await),
        (0, 50_000)
    );
    let auto = view(&app, &token, &id).await["auto_transfer"].clone();
    assert_eq!(
        (auto["month"].as_str(), auto["attempts"].as_i64()),
        (Some("2026-11"), Some(1))
    );
    assert_eq!(auto["next_transfer_at"], "2026-11-16T00:00:00Z");
    assert_eq!(
        goals
            .run_due_transfers(transfer_time("2026-11-16", 1))
            .await
            .expect("tick"),
        0
    );
    assert_eq!(
        messages(&app, "goal_auto_transfer_failed").await.len(),
        1,
        "one message for the month"
    );
    // Salary lands: the next day's try pays November.
    fund(&app, &current, 100_000, "salary").await;
    assert_eq!(
        goals
            .run_due_transfers(transfer_time("2026-11-17", 1))
            .await
            .expect("tick"),
        1
    );
    assert_eq!(
        (balance(&app, &pocket).await, balance(&app, &current).await),
        (100_000, 50_000)
    );
    let auto = view(&app, &token, &id).await["auto_transfer"].clone();
    assert_eq!(
        (auto["month"].as_str(), auto["attempts"].as_i64()),
        (Some("2026-12"), Some(0))
    );
    assert_eq!(auto["next_transfer_at"], "2026-12-15T00:00:00Z");

    // December stays short: the day and three more tries, then December is skipped.
    for day in ["2026-12-15", "2026-12-16", "2026-12-17", "2026-12-18"] {
        assert_eq!(goals.run_due_transfers(transfer_time(day, 1)).await.expect("tick"), 0);
    }
    let auto = view(&app, &token, &id).await["auto_transfer"].clone();
    assert_eq!(
        (auto["month"].as_str(), auto["attempts"].as_i64()),
        (Some("2027-01"), Some(0))
    );
    assert_eq!(auto["next_transfer_at"], "2027-01-15T00:00:00Z");
    assert_eq!(
        (balance(&app, &pocket).await, balance(&app, &current).await),
        (100_000, 50_000)
    );
    let failed = messages(&app, "goal_auto_transfer_failed").await;
    let keys: Vec<&str> = failed.iter().map(|(_, k)| k.as_str()).collect();
    assert_eq!(
        keys,
        vec![
            format!("goal:{id}:auto:2026-11:short"),
            format!("goal:{id}:auto:2026-12:short")
        ]
    );
    let report = app.app.ledger.invariants().await.expect("invariants");
    assert!(report.is_ok(), "{:?}", report.violations);
}

async fn a_shortfall_found_days_late_is_retried_the_next_day_not_at_once(app: TestApp) {
    let (token, _current, goal) = short_saver(&app, "13800138151").await;
    let id = goal["id"].as_str().expect("id").to_owned();
    let goals = goals_service(&app);

    // Due on the 15th, first run (after an outage) on the 19th: short, and the retry is
    // the next day at the transfer hour, not the 16th (already past).
    let late = transfer_time("2026-11-19", 3600);
    assert_eq!(goals.run_due_transfers(late).await.expect("tick"), 0);
    let auto = view(&app, &token, &id).await["auto_transfer"].clone();
    assert_eq!(
        (auto["month"].as_str(), auto["attempts"].as_i64()),
        (Some("2026-11"), Some(1))
    );
    assert_eq!(auto["next_transfer_at"], "2026-11-20T00:00:00Z");
    // The following ticks of the same day try nothing more.
    for seconds in [3605, 3610] {
        assert_eq!(
            goals
                .run_due_transfers(transfer_time("2026-11-19", seconds))
                .await
                .expect("tick"),
            0
        );
    }
    let auto = view(&app, &token, &id).await["auto_transfer"].clone();
    assert_eq!(auto["attempts"], 1, "{auto}");
    assert_eq!(auto["next_transfer_at"], "2026-11-20T00:00:00Z");
    assert_eq!(messages(&app, "goal_auto_transfer_failed").await.len(), 1);
}

async fn the_automatic_transfer_stops_when_turned_off_and_refuses_bad_input(app: TestApp) {
    app.clock.set(start());
    let token = app.customer("13800138121").await;
    let partner = app.customer("13800138122").await;
    let other = app.customer("13800138123").await;
    let current = current_account(&app, &token).await;
    let others_current = current_account(&app, &other).await;
    fund(&app, &current, 1_000_000, "transfer").await;
    let goal = create_goal(&app, &token, 400_000, "2027-03-31").await;
    let id = goal["id"].as_str().expect("id").to_owned();
    let pocket = goal["pocket_account_id"].as_str().expect("pocket").to_owned();
    let shared = app
        .post(
            &format!("/api/v1/goals/{id}/partners"),
            Some(&token),
            json!({ "phone": "13800138122" }),
        )
        .await;
    assert_eq!(shared.status.as_u16(), 201, "{:?}", shared.body);
    let points = app.get("/api/v1/accounts", Some(&token)).await.body["items"]
        .as_array()
        .expect("accounts")
        .iter()
        .find(|a| a["type"] == "points")
        .map(|a| a["id"].as_str().expect("id").to_owned())
        .expect("points account");

    for day in [0, 29, 31, -1] {
        let refused = auto_transfer(&app, &token, &id, json!({ "transfer_day": day })).await;
        refused.assert_problem(422, "invalid-transfer-day");
        assert_eq!(refused.body["field"], "transfer_day");
    }
    auto_transfer(&app, &token, &id, json!({ "from_account": others_current }))
        .await
        .assert_problem(403, "not-your-account");
    auto_transfer(&app, &token, &id, json!({ "from_account": uuid::Uuid::now_v7() }))
        .await
        .assert_problem(404, "unknown-account");
    auto_transfer(&app, &token, &id, json!({ "from_account": points }))
        .await
        .assert_problem(422, "invalid-source-account");
    auto_transfer(&app, &token, &id, json!({ "from_account": pocket }))
        .await
        .assert_problem(422, "invalid-source-account");
    auto_transfer(&app, &token, &id, json!({ "day": 3 }))
        .await
        .assert_problem(422, "invalid-body");
    auto_transfer(&app, &partner, &id, json!({}))
        .await
        .assert_problem(403, "not-goal-owner");
    auto_transfer(&app, &other, &id, json!({}))
        .await
        .assert_problem(404, "unknown-goal");
    auto_transfer(&app, &token, &uuid::Uuid::now_v7().to_string(), json!({}))
        .await
        .assert_problem(404, "unknown-goal");
    app.send(
        Method::DELETE,
        &format!("/api/v1/goals/{id}/auto-transfer"),
        Some(&other),
        None,
        &[],
    )
    .await
    .assert_problem(404, "unknown-goal");
    assert_eq!(app.count("goal_auto_transfers").await, 0, "a refusal writes nothing");

    // On, then off before its day: nothing is paid.
    let on = auto_transfer(&app, &token, &id, json!({})).await;
    assert_eq!(on.status.as_u16(), 200, "{:?}", on.body);
    assert_eq!(on.body["auto_transfer"]["transfer_day"], 1, "the plan's day");
    app.send(
        Method::DELETE,
        &format!("/api/v1/goals/{id}/auto-transfer"),
        Some(&partner),
        None,
        &[],
    )
    .await
    .assert_problem(403, "not-goal-owner");
    let off = app
        .send(
            Method::DELETE,
            &format!("/api/v1/goals/{id}/auto-transfer"),
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(off.status.as_u16(), 200, "{:?}", off.body);
    assert_eq!(off.body["auto_transfer"], Value::Null);
    let again = app
        .send(
            Method::DELETE,
            &format!("/api/v1/goals/{id}/auto-transfer"),
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(again.status.as_u16(), 200, "turning off twice changes nothing");
    let goals = goals_service(&app);
    assert_eq!(
        goals
            .run_due_transfers(transfer_time("2026-12-01", 5))
            .await
            .expect("tick"),
        0
    );
    assert_eq!(balance(&app, &pocket).await, 0);
    assert_eq!(balance(&app, &current).await, 1_000_000);

    // A complete goal needs none.
    deposit(&app, &token, &id, &current, 400_000, Some("all")).await;
    auto_transfer(&app, &token, &id, json!({}))
        .await
        .assert_problem(409, "goal-completed");
}

/// Grants points to the customer's points account from the bank's points clearing.
async fn give_points(app: &TestApp, token: &str, points: i64) -> String {
    let account = app.get("/api/v1/accounts", Some(token)).await.body["items"]
        .as_array()
        .expect("accounts")
        .iter()
        .find(|a| a["type"] == "points")
        .map(|a| a["id"].as_str().expect("id").to_owned())
        .expect("points account");
    fund(app, &account, points, "rewards").await;
    account
}

async fn offer(app: &TestApp, staff: &str, body: Value) -> String {
    let created = app
        .post("/api/v1/staff/goal-conversion-offers", Some(staff), body)
        .await;
    assert_eq!(created.status.as_u16(), 201, "{:?}", created.body);
    created.body["id"].as_str().expect("id").to_owned()
}

fn offer_body(campaign: Option<&str>) -> Value {
    json!({
        "titles": { "zh-CN": "积分换存款", "en": "Points into savings" },
        "points": 100, "fen": 100, "max_points": 100_000, "campaign_id": campaign,
    })
}

async fn convert(app: &TestApp, token: &str, goal: &str, offer: &str, points: i64, key: Option<&str>) -> Reply {
    let headers: Vec<(&str, &str)> = key.map(|k| vec![("idempotency-key", k)]).unwrap_or_default();
    app.send(
        Method::POST,
        &format!("/api/v1/goals/{goal}/conversions"),
        Some(token),
        Some(json!({ "offer_id": offer, "points": points })),
        &headers,
    )
    .await
}

async fn points_convert_into_a_goal_under_a_campaign_offer_once_per_key(app: TestApp) {
    use crate::campaigns::{campaign_body, live_campaign};
    let staff = app.staff(huoban_identity::Role::Operator).await;
    let token = app.customer("13800138131").await;
    let points = give_points(&app, &token, 50_000).await;
    let goal = create_goal(&app, &token, 100_000, "2027-06-30").await;
    let id = goal["id"].as_str().expect("id").to_owned();
    let pocket = goal["pocket_account_id"].as_str().expect("pocket").to_owned();
    let campaign = live_campaign(&app, &staff, campaign_body(&app, "", 1000, 10)).await;
    let festival = offer(&app, &staff, offer_body(Some(&campaign))).await;
    let always = offer(&app, &staff, offer_body(None)).await;

    let offers = app.get("/api/v1/goal-conversion-offers", Some(&token)).await;
    assert_eq!(offers.status.as_u16(), 200, "{:?}", offers.body);
    let ids: Vec<&str> = offers.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|o| o["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, vec![always.as_str(), festival.as_str()]);
    assert_eq!(offers.body["items"][1]["title"], "积分换存款");
    assert_eq!(offers.body["items"][1]["campaign_id"], campaign.as_str());
    let staff_offers = app.get("/api/v1/staff/goal-conversion-offers", Some(&staff)).await;
    assert_eq!(staff_offers.status.as_u16(), 200, "{:?}", staff_offers.body);
    let listed = staff_offers.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|o| o["id"] == festival.as_str())
        .expect("the created offer is listed");
    assert_eq!(listed["campaign_id"], campaign.as_str());
    assert_eq!(listed["titles"]["en"], "Points into savings");

    let converted = convert(&app, &token, &id, &festival, 25_000, Some("c-1")).await;
    assert_eq!(converted.status.as_u16(), 201, "{:?}", converted.body);
    assert_eq!(converted.body["amount"], 25_000, "100 points = ¥1");
    assert_eq!(converted.body["milestones_fired"], json!([25]));
    assert_eq!(converted.body["goal"]["saved"], 25_000);
    assert_eq!(
        converted.body["goal"]["contributions"][0]["is_you"], true,
        "{}",
        converted.body
    );
    assert_eq!(
        (balance(&app, &points).await, balance(&app, &pocket).await),
        (25_000, 25_000)
    );
    // One transfer moved both units.
    let transfer = app
        .app
        .ledger
        .get_transfer(
            converted.body["transfer_id"]
                .as_str()
                .expect("transfer")
                .parse::<uuid::Uuid>()
                .expect("uuid")
                .into(),
        )
        .await
        .expect("transfer");
    assert_eq!(transfer.legs.len(), 2);
    assert_eq!(transfer.legs[0].unit, Some(huoban_ledger::Unit::Points));
    // The ledger listener, which may see the transfer first, credits the converting
    // customer too (the money came from the bank's clearing, the points were theirs).
    sqlx::query("DELETE FROM goal_contributions")
        .execute(app.app.db.writer())
        .await
        .expect("forgotten");
    goals_service(&app)
        .handle_posted(&[std::sync::Arc::new(transfer.clone())])
        .await
        .expect("heard");
    assert_eq!(view(&app, &token, &id).await["contributions"][0]["is_you"], true);

    let replay = convert(&app, &token, &id, &festival, 25_000, Some("c-1")).await;
    assert_eq!(replay.status.as_u16(), 201, "{:?}", replay.body);
    assert_eq!(replay.body["replayed"], true);
    assert_eq!(
        replay.headers.get("idempotent-replayed").map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    assert_eq!(replay.body["transfer_id"], converted.body["transfer_id"]);
    assert_eq!(
        (balance(&app, &points).await, balance(&app, &pocket).await),
        (25_000, 25_000)
    );
    convert(&app, &token, &id, &festival, 100, Some("c-1"))
        .await
        .assert_problem(422, "idempotency-key-mismatch");

    let second = convert(&app, &token, &id, &always, 25_000, Some("c-2")).await;
    assert_eq!(second.status.as_u16(), 201, "{:?}", second.body);
    assert_eq!(second.body["milestones_fired"], json!([50]));
    assert_eq!(
        (balance(&app, &points).await, balance(&app, &pocket).await),
        (0, 50_000)
    );
    assert_eq!(messages(&app, "goal_milestone").await.len(), 2);
    let report = app.app.ledger.invariants().await.expect("invariants");
    assert!(report.is_ok(), "{:?}", report.violations);
}

async fn bad_conversions_and_offers_are_refused_and_move_nothing(app: TestApp) {
    use crate::campaigns::{campaign_body, live_campaign};
    let staff = app.staff(huoban_identity::Role::Operator).await;
    let token = app.customer("13800138141").await;
    let other = app.customer("13800138142").await;
    let points = give_points(&app, &token, 1_000).await;
    let goal = create_goal(&app, &token, 100_000, "2027-06-30").await;
    let id = goal["id"].as_str().expect("id").to_owned();
    let pocket = goal["pocket_account_id"].as_str().expect("pocket").to_owned();

    // Offers staff may not make: nothing is saved.
    for (field, value) in [
        ("points", json!(0)),
        ("fen", json!(-1)),
        ("max_points", json!(150)),
        ("max_points", json!(50)),
        ("titles", json!({})),
        ("titles", json!({ "fr": "Points" })),
    ] {
        let mut body = offer_body(None);
        body[field] = value;
        let refused = app
            .post("/api/v1/staff/goal-conversion-offers", Some(&staff), body)
            .await;
        refused.assert_problem(422, "validation");
        assert_eq!(refused.body["field"], field, "{:?}", refused.body);
    }
    let refused = app
        .post(
            "/api/v1/staff/goal-conversion-offers",
            Some(&staff),
            offer_body(Some(&uuid::Uuid::now_v7().to_string())),
        )
        .await;
    refused.assert_problem(404, "unknown-campaign");
    for bad in ["spring sale", "春节活动", ""] {
        let refused = app
            .post(
                "/api/v1/staff/goal-conversion-offers",
                Some(&staff),
                offer_body(Some(bad)),
            )
            .await;
        refused.assert_problem(422, "validation");
        assert_eq!(refused.body["field"], "campaign_id", "{:?}", refused.body);
    }
    let ended = live_campaign(&app, &staff, campaign_body(&app, "", 1000, 10)).await;
    app.post(&format!("/api/v1/staff/campaigns/{ended}/end"), Some(&staff), json!({}))
        .await;
    app.post(
        "/api/v1/staff/goal-conversion-offers",
        Some(&staff),
        offer_body(Some(&ended)),
    )
    .await
    .assert_problem(409, "campaign-ended");
    app.post(
        "/api/v1/staff/goal-conversion-offers",
        Some(&app.staff(huoban_identity::Role::SupportAgent).await),
        offer_body(None),
    )
    .await
    .assert_problem(403, "permission-denied");
    assert_eq!(app.count("goal_conversion_offers").await, 0);

    // A campaign that ends after its offer was made, and one for others only.
    let ending = live_campaign(&app, &staff, campaign_body(&app, "", 1000, 10)).await;
    let ending_offer = offer(&app, &staff, offer_body(Some(&ending))).await;
    app.post(
        &format!("/api/v1/staff/campaigns/{ending}/end"),
        Some(&staff),
        json!({}),
    )
    .await;
    let vips = live_campaign(&app, &staff, campaign_body(&app, "'vip' in customer.tags", 1000, 10)).await;
    let vip_offer = offer(&app, &staff, offer_body(Some(&vips))).await;
    let open = offer(&app, &staff, offer_body(None)).await;
    let listed = app.get("/api/v1/goal-conversion-offers", Some(&token)).await;
    assert_eq!(
        listed.body["items"].as_array().map(Vec::len),
        Some(1),
        "{:?}",
        listed.body
    );
    assert_eq!(listed.body["items"][0]["id"], open.as_str());

    for unavailable in [&ending_offer, &vip_offer] {
        convert(&app, &token, &id, unavailable, 100, Some("u-1"))
            .await
            .assert_problem(409, "conversion-offer-unavailable");
    }
    convert(&app, &token, &id, &uuid::Uuid::now_v7().to_string(), 100, Some("u-2"))
        .await
        .assert_problem(404, "unknown-conversion-offer");
    for bad in [150, 0, -100, 100_100] {
        let refused = convert(&app, &token, &id, &open, bad, Some("u-3")).await;
        refused.assert_problem(422, "invalid-points-amount");
        assert_eq!(refused.body["field"], "points");
    }
    let short = convert(&app, &token, &id, &open, 1_100, Some("u-4")).await;
    short.assert_problem(409, "insufficient-points");
    assert_eq!(short.body["available"], 1_000);
    convert(&app, &other, &id, &open, 100, Some("u-5"))
        .await
        .assert_problem(404, "unknown-goal");
    convert(&app, &token, &id, &open, 100, None)
        .await
        .assert_problem(400, "idempotency-key-required");

    assert_eq!((balance(&app, &points).await, balance(&app, &pocket).await), (1_000, 0));
    assert_eq!(app.count("goal_contributions").await, 0);
    // The refused keys stay free: the same key now converts.
    let ok = convert(&app, &token, &id, &open, 1_000, Some("u-4")).await;
    assert_eq!(ok.status.as_u16(), 201, "{:?}", ok.body);
    assert_eq!((balance(&app, &points).await, balance(&app, &pocket).await), (0, 1_000));
}
