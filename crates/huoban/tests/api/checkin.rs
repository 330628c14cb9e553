//! Daily check-in: days counted in the customer's own time zone, streaks across midnight,
//! month ends and a leap day, milestones paid once into the points account, make-up cards,
//! the month calendar, every refusal with its problem type and nothing written, and a
//! retry that completes an owed reward without paying it twice.

use huoban_identity::Role;
use jiff::Timestamp;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    helpers::{Reply, TestApp},
    on_both_backends,
};

on_both_backends!(
    a_day_is_the_customers_own_day_across_midnight,
    streaks_run_across_month_ends_and_a_leap_day,
    milestones_at_three_and_seven_days_are_paid_once_into_the_points_balance,
    a_second_checkin_the_same_day_is_refused_and_pays_nothing,
    concurrent_checkins_the_same_day_write_one_day_and_pay_once,
    a_broken_streak_restarts_at_one,
    a_makeup_card_fills_a_gap_and_the_streak_recomputes,
    every_refused_makeup_names_its_problem_and_writes_nothing,
    the_calendar_shows_each_days_state_and_the_reward_schedule,
    check_in_is_for_signed_in_customers_only,
    a_retry_completes_an_owed_reward_and_never_pays_it_twice,
    the_checkin_endpoints_are_documented,
);

crate::for_each_backend!(the_configured_reward_schedule_is_what_check_ins_pay);

/// Registers a customer in a time zone; returns the customer id.
async fn register(app: &TestApp, phone: &str, time_zone: &str) -> Uuid {
    let reg = app
        .post(
            "/api/v1/customers",
            None,
            json!({ "phone": phone, "password": "secret-pass", "name": "打卡客户", "time_zone": time_zone }),
        )
        .await;
    assert_eq!(reg.status, StatusCode::CREATED, "{:?}", reg.body);
    reg.body["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("customer id")
}

/// Moves the clock to `instant` and signs in again (sessions expire as the clock moves).
async fn at(app: &TestApp, phone: &str, instant: &str) -> String {
    app.clock.set(instant.parse::<Timestamp>().expect("instant"));
    app.sign_in(phone, "h5").await
}

async fn check_in(app: &TestApp, token: &str) -> Reply {
    app.post("/api/v1/checkins", Some(token), json!({})).await
}

/// Checks in at `instant` and expects it to succeed.
async fn check_in_at(app: &TestApp, phone: &str, instant: &str) -> Value {
    let token = at(app, phone, instant).await;
    let reply = check_in(app, &token).await;
    assert_eq!(
        reply.status,
        StatusCode::CREATED,
        "check-in at {instant}: {:?}",
        reply.body
    );
    reply.body
}

async fn make_up(app: &TestApp, token: &str, date: &str) -> Reply {
    app.post("/api/v1/checkins/makeup", Some(token), json!({ "date": date }))
        .await
}

/// The points balance as the customer sees it in `GET /api/v1/accounts`.
async fn points(app: &TestApp, token: &str) -> i64 {
    let list = app.get("/api/v1/accounts", Some(token)).await;
    assert_eq!(list.status, StatusCode::OK, "{:?}", list.body);
    list.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|a| a["type"] == "points")
        .and_then(|a| a["balance"]["posted"].as_i64())
        .expect("points account")
}

async fn calendar(app: &TestApp, token: &str, query: &str) -> Reply {
    app.get(&format!("/api/v1/checkins/calendar{query}"), Some(token)).await
}

fn state_of(calendar: &Value, date: &str) -> String {
    calendar["days"]
        .as_array()
        .expect("days")
        .iter()
        .find(|d| d["date"] == date)
        .and_then(|d| d["state"].as_str())
        .unwrap_or_else(|| panic!("{date} in {calendar}"))
        .to_owned()
}

async fn a_day_is_the_customers_own_day_across_midnight(app: TestApp) {
    register(&app, "13900000001", "Asia/Shanghai").await;
    register(&app, "13900000002", "UTC").await;

    // 23:50 in Shanghai, 15:50 in UTC, on 2026-11-22.
    let shanghai = check_in_at(&app, "13900000001", "2026-11-22T15:50:00Z").await;
    let utc = check_in_at(&app, "13900000002", "2026-11-22T15:50:00Z").await;
    assert_eq!(
        (shanghai["date"].as_str(), shanghai["streak"].as_i64()),
        (Some("2026-11-22"), Some(1))
    );
    assert_eq!(utc["date"], "2026-11-22");

    // Twenty minutes later it is 00:10 on the 23rd in Shanghai: a new day, a 2-day streak.
    let shanghai = check_in_at(&app, "13900000001", "2026-11-22T16:10:00Z").await;
    assert_eq!(
        (shanghai["date"].as_str(), shanghai["streak"].as_i64()),
        (Some("2026-11-23"), Some(2))
    );
    // In UTC it is still the 22nd: already checked in.
    let token = app.sign_in("13900000002", "h5").await;
    check_in(&app, &token).await.assert_problem(409, "already-checked-in");
    // The UTC customer's next day starts at UTC midnight; their streak is 2 only then.
    let utc = check_in_at(&app, "13900000002", "2026-11-23T00:10:00Z").await;
    assert_eq!(
        (utc["date"].as_str(), utc["streak"].as_i64()),
        (Some("2026-11-23"), Some(2))
    );
}

async fn streaks_run_across_month_ends_and_a_leap_day(app: TestApp) {
    register(&app, "13900000011", "Asia/Shanghai").await;
    let phone = "13900000011";
    // 10:00 in Shanghai each day.
    let streaks = [
        check_in_at(&app, phone, "2027-01-30T02:00:00Z").await,
        check_in_at(&app, phone, "2027-01-31T02:00:00Z").await,
        check_in_at(&app, phone, "2027-02-01T02:00:00Z").await,
    ];
    let got: Vec<_> = streaks
        .iter()
        .map(|o| (o["date"].clone(), o["streak"].clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (json!("2027-01-30"), json!(1)),
            (json!("2027-01-31"), json!(2)),
            (json!("2027-02-01"), json!(3))
        ]
    );
    assert_eq!(streaks[2]["milestone_reached"], json!({ "days": 3, "points": 10 }));

    let leap = [
        check_in_at(&app, phone, "2028-02-28T02:00:00Z").await,
        check_in_at(&app, phone, "2028-02-29T02:00:00Z").await,
        check_in_at(&app, phone, "2028-03-01T02:00:00Z").await,
    ];
    let got: Vec<_> = leap.iter().map(|o| (o["date"].clone(), o["streak"].clone())).collect();
    assert_eq!(
        got,
        vec![
            (json!("2028-02-28"), json!(1)),
            (json!("2028-02-29"), json!(2)),
            (json!("2028-03-01"), json!(3))
        ]
    );
    // A new run earns its own 3-day milestone.
    assert_eq!(leap[2]["points_awarded"], 11);
    let token = app.sign_in(phone, "h5").await;
    let feb = calendar(&app, &token, "?month=2028-02").await;
    assert_eq!(feb.status, StatusCode::OK, "{:?}", feb.body);
    assert_eq!(feb.body["days"].as_array().map(Vec::len), Some(29));
    assert_eq!(state_of(&feb.body, "2028-02-29"), "checked_in");
    assert_eq!(state_of(&feb.body, "2028-02-27"), "missed");
}

async fn milestones_at_three_and_seven_days_are_paid_once_into_the_points_balance(app: TestApp) {
    register(&app, "13900000021", "Asia/Shanghai").await;
    let phone = "13900000021";
    let mut awarded = Vec::new();
    let mut milestones = Vec::new();
    for day in 1..=8 {
        let o = check_in_at(&app, phone, &format!("2026-12-{day:02}T01:00:00Z")).await;
        awarded.push(o["points_awarded"].as_i64().expect("points"));
        milestones.push(o["milestone_reached"]["days"].as_i64());
        assert_eq!(o["streak"], day);
    }
    assert_eq!(awarded, [1, 1, 11, 1, 1, 1, 31, 1]);
    assert_eq!(milestones, [None, None, Some(3), None, None, None, Some(7), None]);
    let token = app.sign_in(phone, "h5").await;
    assert_eq!(points(&app, &token).await, 8 + 10 + 30);

    let o = check_in_at(&app, phone, "2026-12-09T01:00:00Z").await;
    assert_eq!(
        o["next_milestone"],
        json!({ "days": 30, "points": 150, "days_to_go": 21 })
    );
    // Each reward is its own transfer in the points history, filed under "rewards".
    let token = app.sign_in(phone, "h5").await;
    let list = app.get("/api/v1/accounts", Some(&token)).await;
    let account = list.body["items"]
        .as_array()
        .and_then(|items| items.iter().find(|a| a["type"] == "points"))
        .and_then(|a| a["id"].as_str())
        .expect("points account")
        .to_owned();
    let history = app
        .get(
            &format!("/api/v1/accounts/{account}/transactions?category=rewards"),
            Some(&token),
        )
        .await;
    assert_eq!(history.status, StatusCode::OK, "{:?}", history.body);
    assert_eq!(history.body["items"].as_array().map(Vec::len), Some(9 + 2));
}

async fn a_second_checkin_the_same_day_is_refused_and_pays_nothing(app: TestApp) {
    register(&app, "13900000031", "Asia/Shanghai").await;
    check_in_at(&app, "13900000031", "2026-11-22T01:00:00Z").await;
    let token = at(&app, "13900000031", "2026-11-22T15:59:59Z").await;
    let (checkins, rewards, before) = (
        app.count("checkins").await,
        app.count("checkin_rewards").await,
        points(&app, &token).await,
    );
    check_in(&app, &token).await.assert_problem(409, "already-checked-in");
    assert_eq!(app.count("checkins").await, checkins);
    assert_eq!(app.count("checkin_rewards").await, rewards);
    assert_eq!(points(&app, &token).await, before);
    assert_eq!(before, 1);
}

async fn concurrent_checkins_the_same_day_write_one_day_and_pay_once(app: TestApp) {
    register(&app, "13900000035", "Asia/Shanghai").await;
    let token = at(&app, "13900000035", "2026-11-24T01:00:00Z").await;
    let replies = futures::future::join_all((0..6).map(|_| check_in(&app, &token))).await;
    let created = replies.iter().filter(|r| r.status == StatusCode::CREATED).count();
    for r in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
        r.assert_problem(409, "already-checked-in");
    }
    // One wins; a loser that raced the winner's posting may answer the same outcome again.
    assert!(created >= 1, "{replies:?}");
    assert_eq!(app.count("checkins").await, 1);
    assert_eq!(points(&app, &token).await, 1);
}

async fn a_broken_streak_restarts_at_one(app: TestApp) {
    register(&app, "13900000041", "Asia/Shanghai").await;
    let phone = "13900000041";
    check_in_at(&app, phone, "2026-11-01T01:00:00Z").await;
    check_in_at(&app, phone, "2026-11-02T01:00:00Z").await;
    let o = check_in_at(&app, phone, "2026-11-04T01:00:00Z").await;
    assert_eq!(o["streak"], 1);
    assert_eq!(o["points_awarded"], 1);
    assert_eq!(o["next_milestone"]["days_to_go"], 2);
    let token = app.sign_in(phone, "h5").await;
    let cal = calendar(&app, &token, "").await;
    assert_eq!(
        (cal.body["current_streak"].as_i64(), cal.body["longest_streak"].as_i64()),
        (Some(1), Some(2))
    );
    // A day left out entirely breaks the current streak.
    let token = at(&app, phone, "2026-11-06T01:00:00Z").await;
    let cal = calendar(&app, &token, "").await;
    assert_eq!(cal.body["current_streak"], 0);
}

async fn a_makeup_card_fills_a_gap_and_the_streak_recomputes(app: TestApp) {
    register(&app, "13900000051", "Asia/Shanghai").await;
    let phone = "13900000051";
    for day in ["01", "02", "04", "05"] {
        check_in_at(&app, phone, &format!("2026-11-{day}T01:00:00Z")).await;
    }
    let token = app.sign_in(phone, "h5").await;
    assert_eq!(points(&app, &token).await, 4);

    let reply = make_up(&app, &token, "2026-11-03").await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    let o = &reply.body;
    assert_eq!(o["kind"], "makeup");
    assert_eq!(o["streak"], 5);
    // The joined run reached 3 days for the first time: paid, dated on its third day.
    assert_eq!(
        o["rewards"],
        json!([{ "reason": "streak-3", "points": 10, "date": "2026-11-03" }])
    );
    assert_eq!(o["makeup_cards_left"], 1);
    assert_eq!(points(&app, &token).await, 14);

    // Two more days make seven in a row: the 7-day milestone, and no second 3-day one.
    let o = check_in_at(&app, phone, "2026-11-06T01:00:00Z").await;
    assert_eq!((o["streak"].as_i64(), o["points_awarded"].as_i64()), (Some(6), Some(1)));
    let o = check_in_at(&app, phone, "2026-11-07T01:00:00Z").await;
    assert_eq!(
        (o["streak"].as_i64(), o["points_awarded"].as_i64()),
        (Some(7), Some(31))
    );
    let token = app.sign_in(phone, "h5").await;
    assert_eq!(points(&app, &token).await, 14 + 1 + 31);
    let cal = calendar(&app, &token, "?month=2026-11").await;
    assert_eq!(state_of(&cal.body, "2026-11-03"), "made_up");
    assert_eq!(cal.body["longest_streak"], 7);
}

async fn every_refused_makeup_names_its_problem_and_writes_nothing(app: TestApp) {
    register(&app, "13900000061", "Asia/Shanghai").await;
    let phone = "13900000061";
    check_in_at(&app, phone, "2026-11-10T01:00:00Z").await;
    let token = at(&app, phone, "2026-11-20T01:00:00Z").await;
    let written = || async { (app.count("checkins").await, app.count("checkin_rewards").await) };
    let before = written().await;

    make_up(&app, &token, "2026-11-20")
        .await
        .assert_problem(422, "invalid-makeup-date");
    make_up(&app, &token, "2026-11-21")
        .await
        .assert_problem(422, "invalid-makeup-date");
    make_up(&app, &token, "2026-11-12")
        .await
        .assert_problem(422, "invalid-makeup-date");
    make_up(&app, &token, "2026-02-30")
        .await
        .assert_problem(422, "validation");
    make_up(&app, &token, "yesterday")
        .await
        .assert_problem(422, "validation");
    app.post(
        "/api/v1/checkins/makeup",
        Some(&token),
        json!({ "date": "2026-11-19", "cards": 5 }),
    )
    .await
    .assert_problem(422, "invalid-body");
    app.post("/api/v1/checkins/makeup", Some(&token), json!({}))
        .await
        .assert_problem(422, "invalid-body");
    assert_eq!(written().await, before);

    // Two cards a month; the third is refused. A day already there is a conflict.
    check_in_at(&app, phone, "2026-11-17T01:00:00Z").await;
    let token = at(&app, phone, "2026-11-20T01:00:00Z").await;
    make_up(&app, &token, "2026-11-17")
        .await
        .assert_problem(409, "already-checked-in");
    assert_eq!(make_up(&app, &token, "2026-11-19").await.status, StatusCode::CREATED);
    assert_eq!(make_up(&app, &token, "2026-11-18").await.status, StatusCode::CREATED);
    let before = written().await;
    make_up(&app, &token, "2026-11-16")
        .await
        .assert_problem(409, "no-makeup-cards");
    assert_eq!(written().await, before);
    let cal = calendar(&app, &token, "").await;
    assert_eq!(cal.body["makeup_cards_left"], 0);
    assert_eq!(cal.body["current_streak"], 3, "{:?}", cal.body);
    // A new month brings new cards.
    let token = at(&app, phone, "2026-12-02T01:00:00Z").await;
    let reply = make_up(&app, &token, "2026-11-30").await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    assert_eq!(reply.body["makeup_cards_left"], 1);
}

async fn the_calendar_shows_each_days_state_and_the_reward_schedule(app: TestApp) {
    register(&app, "13900000071", "Asia/Shanghai").await;
    let phone = "13900000071";
    check_in_at(&app, phone, "2026-11-01T01:00:00Z").await;
    check_in_at(&app, phone, "2026-11-03T01:00:00Z").await;
    let token = at(&app, phone, "2026-11-05T01:00:00Z").await;
    assert_eq!(make_up(&app, &token, "2026-11-02").await.status, StatusCode::CREATED);

    let cal = calendar(&app, &token, "").await;
    assert_eq!(cal.status, StatusCode::OK, "{:?}", cal.body);
    let c = &cal.body;
    assert_eq!(
        (c["month"].as_str(), c["today"].as_str()),
        (Some("2026-11"), Some("2026-11-05"))
    );
    assert_eq!(c["time_zone"], "Asia/Shanghai");
    assert_eq!(c["days"].as_array().map(Vec::len), Some(30));
    let states: Vec<String> = (1..=6).map(|d| state_of(c, &format!("2026-11-{d:02}"))).collect();
    assert_eq!(
        states,
        ["checked_in", "made_up", "checked_in", "missed", "today", "future"]
    );
    assert_eq!(c["days"][3]["makeup_eligible"], true);
    assert_eq!(c["days"][0]["makeup_eligible"], false);
    assert_eq!(
        (c["current_streak"].as_i64(), c["longest_streak"].as_i64()),
        (Some(0), Some(3))
    );
    assert_eq!(c["checked_in_today"], false);
    assert_eq!(c["makeup_cards_left"], 1);
    assert_eq!(
        c["reward_schedule"],
        json!({ "base_points": 1, "milestones": [
            { "days": 3, "points": 10 }, { "days": 7, "points": 30 }, { "days": 30, "points": 150 } ] })
    );
    let oct = calendar(&app, &token, "?month=2026-10").await;
    assert_eq!(state_of(&oct.body, "2026-10-31"), "missed");
    let dec = calendar(&app, &token, "?month=2026-12").await;
    assert_eq!(state_of(&dec.body, "2026-12-01"), "future");

    for bad in ["2026-13", "2026-1", "november", "2026-11-01"] {
        calendar(&app, &token, &format!("?month={bad}"))
            .await
            .assert_problem(422, "validation");
    }
    calendar(&app, &token, "?month=2026-11&day=3")
        .await
        .assert_problem(400, "invalid-query");
}

async fn check_in_is_for_signed_in_customers_only(app: TestApp) {
    let staff = app.staff(Role::Operator).await;
    check_in(&app, &staff).await.assert_problem(403, "customers-only");
    make_up(&app, &staff, "2026-11-01")
        .await
        .assert_problem(403, "customers-only");
    calendar(&app, &staff, "").await.assert_problem(403, "customers-only");
    app.post("/api/v1/checkins", None, json!({}))
        .await
        .assert_problem(401, "unauthenticated");
    app.get("/api/v1/checkins/calendar", None)
        .await
        .assert_problem(401, "unauthenticated");
    assert_eq!(app.count("checkins").await, 0);
}

async fn a_retry_completes_an_owed_reward_and_never_pays_it_twice(app: TestApp) {
    let customer = register(&app, "13900000081", "Asia/Shanghai").await;
    let phone = "13900000081";

    // The ledger posted the reward but the answer was lost before the reward row was
    // marked: a retry replays the ledger transfer and pays nothing more.
    let first = check_in_at(&app, phone, "2026-11-22T01:00:00Z").await;
    sqlx::query("UPDATE checkin_rewards SET transfer_id = NULL")
        .execute(app.app.db.writer())
        .await
        .expect("forget the posting");
    let token = app.sign_in(phone, "h5").await;
    let retry = check_in(&app, &token).await;
    assert_eq!(retry.status, StatusCode::CREATED, "{:?}", retry.body);
    assert_eq!(retry.body, first);
    assert_eq!(points(&app, &token).await, 1);
    check_in(&app, &token).await.assert_problem(409, "already-checked-in");

    // The day and its reward were committed but the ledger never saw the reward (it was
    // unavailable): the retry pays it, once.
    let token = at(&app, phone, "2026-11-23T01:00:00Z").await;
    sqlx::query(
        "INSERT INTO checkins (id, customer_id, local_date, kind, at, streak_after) \
         VALUES ($1, $2, '2026-11-23', 'checkin', 0, 2)",
    )
    .bind(Uuid::now_v7().to_string())
    .bind(customer.to_string())
    .execute(app.app.db.writer())
    .await
    .expect("day written");
    sqlx::query(
        "INSERT INTO checkin_rewards (customer_id, local_date, reason, streak_days, points, source_date, created_at) \
         VALUES ($1, '2026-11-23', 'base', 0, 1, '2026-11-23', 0)",
    )
    .bind(customer.to_string())
    .execute(app.app.db.writer())
    .await
    .expect("reward owed");
    assert_eq!(points(&app, &token).await, 1);
    let retry = check_in(&app, &token).await;
    assert_eq!(retry.status, StatusCode::CREATED, "{:?}", retry.body);
    assert_eq!(
        (retry.body["streak"].as_i64(), retry.body["points_awarded"].as_i64()),
        (Some(2), Some(1))
    );
    assert_eq!(points(&app, &token).await, 2);
    check_in(&app, &token).await.assert_problem(409, "already-checked-in");
    assert_eq!(points(&app, &token).await, 2);
}

async fn the_checkin_endpoints_are_documented(app: TestApp) {
    let doc = app.get("/api/openapi.json", None).await;
    assert_eq!(doc.status, StatusCode::OK);
    for (path, method) in [
        ("/api/v1/checkins", "post"),
        ("/api/v1/checkins/makeup", "post"),
        ("/api/v1/checkins/calendar", "get"),
    ] {
        assert_eq!(doc.body["paths"][path][method]["tags"], json!(["engage"]), "{path}");
    }
    for schema in [
        "CheckinOutcome",
        "CalendarView",
        "MakeupRequest",
        "CalendarDayView",
        "RewardSchedule",
    ] {
        assert!(
            doc.body["components"]["schemas"][schema].is_object(),
            "{schema} is documented"
        );
    }
}

/// `[checkin]` in the configuration sets what a check-in pays and how many make-up cards a
/// month gives; a schedule that makes no sense stops the server from starting.
async fn the_configured_reward_schedule_is_what_check_ins_pay(backend: huoban_kit::Backend) {
    use huoban::config::{CheckinMilestone, CheckinSettings};
    let schedule = CheckinSettings {
        base_points: 2,
        milestones: vec![
            CheckinMilestone { days: 5, points: 40 },
            CheckinMilestone { days: 2, points: 7 },
        ],
        makeup_window_days: 3,
        makeup_cards_per_month: 1,
    };
    let configured = schedule.clone();
    let Some(app) = crate::helpers::spawn_app_with(backend, move |c| c.checkin = configured).await else {
        return;
    };
    register(&app, "13900000091", "Asia/Shanghai").await;
    let phone = "13900000091";
    let first = check_in_at(&app, phone, "2026-12-01T01:00:00Z").await;
    assert_eq!(first["points_awarded"], 2);
    assert_eq!(
        first["next_milestone"],
        json!({ "days": 2, "points": 7, "days_to_go": 1 })
    );
    let second = check_in_at(&app, phone, "2026-12-02T01:00:00Z").await;
    assert_eq!(
        (
            second["points_awarded"].as_i64(),
            second["milestone_reached"]["days"].as_i64()
        ),
        (Some(9), Some(2))
    );
    let token = at(&app, phone, "2026-12-06T01:00:00Z").await;
    assert_eq!(points(&app, &token).await, 2 + 9);
    let cal = calendar(&app, &token, "").await;
    assert_eq!(
        cal.body["reward_schedule"],
        json!({ "base_points": 2, "milestones": [ { "days": 2, "points": 7 }, { "days": 5, "points": 40 } ] })
    );
    assert_eq!(cal.body["makeup_cards_left"], 1);
    // The window is three days: six days back is refused, three days back is allowed once.
    make_up(&app, &token, "2026-11-30")
        .await
        .assert_problem(422, "invalid-makeup-date");
    assert_eq!(make_up(&app, &token, "2026-12-03").await.status, StatusCode::CREATED);
    make_up(&app, &token, "2026-12-04")
        .await
        .assert_problem(409, "no-makeup-cards");

    let mut bad = schedule;
    bad.milestones.push(CheckinMilestone { days: 2, points: 1 });
    // Checked before the database is opened: nothing is created at this path.
    let config = huoban::Config {
        database_url: "./never-created.db".to_owned().into(),
        checkin: bad,
        ..huoban::Config::default()
    };
    let clock = std::sync::Arc::new(huoban_kit::ManualClock::new(jiff::Timestamp::now()));
    let refused = huoban::App::start(config, clock)
        .await
        .expect_err("a bad schedule stops the start");
    assert!(refused.to_string().contains("two milestones at 2 days"), "{refused:#}");
    assert!(!std::path::Path::new("./never-created.db").exists());
}
