//! Team challenges: create and join (full, twice, completed, ended, unknown), progress
//! from members' events with contributions, the leaderboard order, and a reward for every
//! member exactly once when the target is reached (not before), with the ledger balanced.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    helpers::{Reply, TestApp},
    on_both_backends,
    social::{assert_ledger_balanced, drain, green_trip, instant, messages, operator, points},
};

on_both_backends!(
    teams_are_created_joined_and_never_overfilled,
    progress_comes_from_members_events_and_the_leaderboard_ranks_teams,
    every_member_is_rewarded_once_when_the_target_is_reached,
    an_ended_challenge_refuses_teams_and_members,
    staff_validate_challenges,
    concurrent_joins_never_overfill_a_team,
    consumers_running_at_once_count_each_trip_once,
    a_campaigns_challenge_pays_from_its_budget_until_it_runs_out,
);

const PRIZE: i64 = 200;

fn challenge_body(app: &TestApp, target: i64, max_members: i64) -> Value {
    json!({
        "name": "30 天绿色出行打卡计划",
        "event_type": "green_trip",
        "target": target,
        "max_members": max_members,
        "reward": { "points": PRIZE },
        "starts_at": instant(app, -1),
        "ends_at": instant(app, 24 * 30),
    })
}

async fn create_challenge(app: &TestApp, body: Value) -> String {
    let staff = operator(app).await;
    let created = app.post("/api/v1/staff/challenges", Some(&staff), body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    created.body["id"].as_str().expect("id").to_owned()
}

async fn create_team(app: &TestApp, token: &str, challenge: &str, name: &str) -> Reply {
    app.post(
        &format!("/api/v1/challenges/{challenge}/teams"),
        Some(token),
        json!({ "name": name }),
    )
    .await
}

async fn join(app: &TestApp, token: &str, code: &str) -> Reply {
    app.post("/api/v1/teams/join", Some(token), json!({ "code": code }))
        .await
}

/// Creates a team and returns (team id, join code).
async fn team(app: &TestApp, token: &str, challenge: &str, name: &str) -> (String, String) {
    let created = create_team(app, token, challenge, name).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    (
        created.body["id"].as_str().expect("id").to_owned(),
        created.body["join_code"].as_str().expect("code").to_owned(),
    )
}

async fn trips(app: &TestApp, token: &str, ids: &[&str]) {
    let at = instant(app, 0);
    let events: Vec<Value> = ids.iter().map(|id| green_trip(id, &at)).collect();
    let sent = app
        .post("/api/v1/events", Some(token), json!({ "events": events }))
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{:?}", sent.body);
}

async fn view(app: &TestApp, token: &str, team: &str) -> Value {
    let reply = app.get(&format!("/api/v1/teams/{team}"), Some(token)).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.body
}

async fn teams_are_created_joined_and_never_overfilled(app: TestApp) {
    let challenge = create_challenge(&app, challenge_body(&app, 10, 2)).await;
    let a = app.customer("13800000001").await;
    let b = app.customer("13800000002").await;
    let c = app.customer("13800000003").await;
    let (team_id, code) = team(&app, &a, &challenge, "绿色先锋队").await;
    let joined = join(&app, &b, &code.to_lowercase()).await;
    assert_eq!(joined.status, StatusCode::CREATED, "{:?}", joined.body);
    assert_eq!(joined.body["member_count"], 2);
    join(&app, &c, &code).await.assert_problem(409, "team-full");
    // Twice: a member cannot join again nor found a second team in the same challenge.
    join(&app, &a, &code).await.assert_problem(409, "already-in-team");
    create_team(&app, &b, &challenge, "另起炉灶")
        .await
        .assert_problem(409, "already-in-team");
    join(&app, &c, "ZZZZZZZZ").await.assert_problem(404, "unknown-team");
    create_team(&app, &c, &challenge, "  ")
        .await
        .assert_problem(422, "validation");
    create_team(&app, &c, &uuid::Uuid::now_v7().to_string(), "无名队")
        .await
        .assert_problem(404, "unknown-challenge");
    assert_eq!(app.count("team_members").await, 2, "refusals wrote nothing");
    assert_eq!(app.count("teams").await, 1);

    let seen = view(&app, &a, &team_id).await;
    assert_eq!(seen["join_code"], code.as_str(), "members see the code");
    let names: Vec<&str> = seen["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["测试客户", "测*"], "others are masked");
    assert_eq!(seen["members"][0]["captain"], true);
    let outsider = view(&app, &c, &team_id).await;
    assert_eq!(outsider["join_code"], Value::Null, "outsiders do not");

    // The customer's list shows their team.
    let listed = app.get("/api/v1/challenges", Some(&b)).await;
    assert_eq!(listed.body["items"][0]["my_team_id"], team_id.as_str());
    // Another challenge is another team.
    let other = create_challenge(&app, challenge_body(&app, 10, 3)).await;
    team(&app, &a, &other, "第二个挑战队").await;
}

async fn progress_comes_from_members_events_and_the_leaderboard_ranks_teams(app: TestApp) {
    let challenge = create_challenge(&app, challenge_body(&app, 100, 3)).await;
    let a = app.customer("13800000101").await;
    let b = app.customer("13800000102").await;
    let c = app.customer("13800000103").await;
    let d = app.customer("13800000104").await;
    let outsider = app.customer("13800000105").await;
    let (first, code) = team(&app, &a, &challenge, "骑行小队").await;
    assert_eq!(join(&app, &b, &code).await.status, StatusCode::CREATED);
    let (second, _) = team(&app, &c, &challenge, "步行小队").await;
    let (third, _) = team(&app, &d, &challenge, "公交小队").await;

    trips(&app, &a, &["a1", "a2"]).await;
    trips(&app, &b, &["b1"]).await;
    trips(&app, &c, &["c1", "c2", "c3", "c4"]).await;
    // Resent events are duplicates and count once; other types and outsiders not at all.
    trips(&app, &c, &["c1", "c2"]).await;
    let other =
        json!({ "id": "pv-1", "type": "page_view", "channel": "app", "at": instant(&app, 0), "properties": {} });
    app.post("/api/v1/events", Some(&a), json!({ "events": [other] })).await;
    trips(&app, &outsider, &["o1", "o2", "o3", "o4", "o5", "o6"]).await;
    drain(&app).await;

    let seen = view(&app, &a, &first).await;
    assert_eq!(seen["progress"], 3);
    assert_eq!(seen["percent"], 3);
    let contributions: Vec<i64> = seen["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["contribution"].as_i64().expect("contribution"))
        .collect();
    assert_eq!(contributions, [2, 1]);
    assert_eq!(view(&app, &c, &second).await["progress"], 4);

    let board = app
        .get(&format!("/api/v1/challenges/{challenge}/leaderboard"), Some(&a))
        .await;
    assert_eq!(board.status, StatusCode::OK, "{:?}", board.body);
    let order: Vec<(i64, &str, i64, bool)> = board.body["teams"]
        .as_array()
        .expect("teams")
        .iter()
        .map(|t| {
            (
                t["rank"].as_i64().expect("rank"),
                t["team_id"].as_str().expect("id"),
                t["progress"].as_i64().expect("progress"),
                t["mine"].as_bool().expect("mine"),
            )
        })
        .collect();
    assert_eq!(
        order,
        vec![
            (1, second.as_str(), 4, false),
            (2, first.as_str(), 3, true),
            (3, third.as_str(), 0, false)
        ]
    );
    app.get(
        &format!("/api/v1/challenges/{}/leaderboard", uuid::Uuid::now_v7()),
        Some(&a),
    )
    .await
    .assert_problem(404, "unknown-challenge");
}

async fn every_member_is_rewarded_once_when_the_target_is_reached(app: TestApp) {
    let challenge = create_challenge(&app, challenge_body(&app, 5, 3)).await;
    let a = app.customer("13800000201").await;
    let b = app.customer("13800000202").await;
    let c = app.customer("13800000203").await;
    let (first, code) = team(&app, &a, &challenge, "低碳先锋").await;
    assert_eq!(join(&app, &b, &code).await.status, StatusCode::CREATED);
    let (_, other_code) = team(&app, &c, &challenge, "另一队").await;

    trips(&app, &a, &["a1", "a2"]).await;
    trips(&app, &b, &["b1", "b2"]).await;
    trips(&app, &c, &["c1"]).await;
    drain(&app).await;
    assert_eq!(view(&app, &a, &first).await["completed"], false);
    assert_eq!(points(&app, &a).await, 0, "nothing before the target");
    assert_eq!(points(&app, &b).await, 0);

    trips(&app, &b, &["b3"]).await;
    drain(&app).await;
    let seen = view(&app, &a, &first).await;
    assert_eq!(seen["completed"], true, "{seen:?}");
    assert_eq!(seen["percent"], 100);
    assert_eq!(points(&app, &a).await, PRIZE);
    assert_eq!(points(&app, &b).await, PRIZE);
    assert_eq!(points(&app, &c).await, 0, "the other team has not finished");
    assert_eq!(messages(&app, &a, "team_challenge_completed").await.len(), 1);
    assert_eq!(messages(&app, &b, "team_challenge_completed").await.len(), 1);

    // More trips after completion and another pass: no second reward.
    trips(&app, &a, &["a3", "a4"]).await;
    drain(&app).await;
    assert_eq!(view(&app, &a, &first).await["progress"], 7);
    assert_eq!(points(&app, &a).await, PRIZE);
    assert_eq!(points(&app, &b).await, PRIZE);
    assert_eq!(messages(&app, &a, "team_challenge_completed").await.len(), 1);
    // Nobody joins a completed team to share its prize.
    let late = app.customer("13800000204").await;
    join(&app, &late, &code).await.assert_problem(409, "team-completed");
    assert_eq!(join(&app, &late, &other_code).await.status, StatusCode::CREATED);
    assert_ledger_balanced(&app).await;
}

async fn an_ended_challenge_refuses_teams_and_members(app: TestApp) {
    let challenge = create_challenge(&app, challenge_body(&app, 5, 3)).await;
    let a = app.customer("13800000301").await;
    app.customer("13800000302").await;
    let (first, code) = team(&app, &a, &challenge, "过期队").await;
    app.clock.advance(jiff::SignedDuration::from_hours(24 * 31));
    // Sessions do not last a month: sign in again.
    let a = app.sign_in("13800000301", "h5").await;
    let b = app.sign_in("13800000302", "h5").await;
    join(&app, &b, &code).await.assert_problem(409, "challenge-ended");
    create_team(&app, &b, &challenge, "新队")
        .await
        .assert_problem(409, "challenge-ended");
    // Trips after the end do not count.
    trips(&app, &a, &["late-1"]).await;
    drain(&app).await;
    assert_eq!(view(&app, &a, &first).await["progress"], 0);
    let open = app.get("/api/v1/challenges", Some(&a)).await;
    assert_eq!(open.body["items"], json!([]));
}

async fn staff_validate_challenges(app: TestApp) {
    let staff = operator(&app).await;
    for (field, value) in [
        ("max_members", json!(1)),
        ("max_members", json!(11)),
        ("target", json!(0)),
        ("event_type", json!("")),
        ("reward", json!({})),
        ("ends_at", json!(instant(&app, -5))),
    ] {
        let mut body = challenge_body(&app, 10, 3);
        body[field] = value;
        let reply = app.post("/api/v1/staff/challenges", Some(&staff), body).await;
        reply.assert_problem(422, "validation");
        assert_eq!(reply.body["field"], field, "{:?}", reply.body);
    }
    assert_eq!(app.count("team_challenges").await, 0);
    let customer = app.customer("13800000401").await;
    app.post("/api/v1/staff/challenges", Some(&customer), challenge_body(&app, 10, 3))
        .await
        .assert_problem(403, "staff-only");
    let id = create_challenge(&app, challenge_body(&app, 10, 3)).await;
    let list = app.get("/api/v1/staff/challenges", Some(&staff)).await;
    assert_eq!(list.body["items"][0]["id"], id.as_str());
}

crate::for_each_backend!(the_demo_bank_has_an_invite_half_way_and_a_green_travel_leaderboard);

/// The demo's Spring Festival social features: customer 1's invite at "2 of 3" and a
/// green-travel challenge with three teams ranked on the leaderboard.
async fn the_demo_bank_has_an_invite_half_way_and_a_green_travel_leaderboard(backend: huoban_kit::Backend) {
    let Some(app) = crate::helpers::spawn_app_with(backend, |c| {
        c.demo.customers = 20;
        c.demo.days_of_history = 5;
    })
    .await
    else {
        return;
    };
    huoban::demo::seed(&app.app).await.expect("demo seeded");
    let first = app.sign_in_demo("13800000001").await;
    let mine = app.get("/api/v1/invites/mine", Some(&first)).await;
    assert_eq!(mine.status, StatusCode::OK, "{:?}", mine.body);
    assert_eq!(mine.body[0]["accepted"], 3, "{:?}", mine.body);
    assert_eq!(mine.body[0]["progress"], "2 of 3");
    assert_eq!(mine.body[0]["code"], "HBFEST26");

    let open = app.get("/api/v1/challenges", Some(&first)).await;
    let challenge = open.body["items"][0]["id"].as_str().expect("challenge").to_owned();
    assert!(open.body["items"][0]["my_team_id"].is_string(), "{:?}", open.body);
    let board = app
        .get(&format!("/api/v1/challenges/{challenge}/leaderboard"), Some(&first))
        .await;
    let teams = board.body["teams"].as_array().expect("teams");
    assert_eq!(teams.len(), 3, "{:?}", board.body);
    let progress: Vec<i64> = teams
        .iter()
        .map(|t| t["progress"].as_i64().expect("progress"))
        .collect();
    assert!(progress.iter().all(|p| *p > 0), "{progress:?}");
    assert!(progress.windows(2).all(|w| w[0] >= w[1]), "{progress:?}");
    assert_ledger_balanced(&app).await;
}

async fn concurrent_joins_never_overfill_a_team(app: TestApp) {
    let challenge = create_challenge(&app, challenge_body(&app, 10, 4)).await;
    let captain = app.customer("13800000501").await;
    let (team_id, code) = team(&app, &captain, &challenge, "抢位队").await;
    let mut joiners = Vec::new();
    for i in 0..8 {
        joiners.push(app.customer(&format!("1380000060{i}")).await);
    }
    let replies = futures::future::join_all(joiners.iter().map(|t| join(&app, t, &code))).await;
    let joined = replies.iter().filter(|r| r.status == StatusCode::CREATED).count();
    assert_eq!(joined, 3, "three seats were left");
    for r in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
        r.assert_problem(409, "team-full");
    }
    assert_eq!(view(&app, &captain, &team_id).await["member_count"], 4);
    assert_eq!(app.count("team_members").await, 4);
}

/// Several consumers of the same cursor at once (several nodes, or a catch-up loop beside
/// the background task): none fails, and each trip counts once.
async fn consumers_running_at_once_count_each_trip_once(app: TestApp) {
    let challenge = create_challenge(&app, challenge_body(&app, 40, 3)).await;
    let a = app.customer("13800000701").await;
    let b = app.customer("13800000702").await;
    let (team_id, code) = team(&app, &a, &challenge, "并发队").await;
    assert_eq!(join(&app, &b, &code).await.status, StatusCode::CREATED);
    for round in 0..5 {
        let ids_a: Vec<String> = (0..4).map(|i| format!("ca-{round}-{i}")).collect();
        let ids_b: Vec<String> = (0..3).map(|i| format!("cb-{round}-{i}")).collect();
        trips(&app, &a, &ids_a.iter().map(String::as_str).collect::<Vec<_>>()).await;
        trips(&app, &b, &ids_b.iter().map(String::as_str).collect::<Vec<_>>()).await;
        let state = app.app.social_state();
        let runs = (0..4).map(|_| {
            let teams = huoban_social::teams::service::TeamsService::new(state.clone());
            let invites = huoban_social::invites::service::InvitesService::new(state.clone());
            async move {
                for _ in 0..20 {
                    let t = teams.consume().await?;
                    let i = invites.consume().await?;
                    if t == 0 && i == 0 {
                        break;
                    }
                }
                Ok::<(), huoban_kit::ApiError>(())
            }
        });
        for result in futures::future::join_all(runs).await {
            result.expect("a consumer running beside others never fails");
        }
    }
    drain(&app).await;
    let seen = view(&app, &a, &team_id).await;
    assert_eq!(seen["progress"], 35, "{seen:?}");
    assert_eq!(points(&app, &a).await, 0, "the target (40) is not reached");
    assert_ledger_balanced(&app).await;
}

/// A challenge that belongs to a campaign pays its points prizes out of that campaign's
/// points budget on the ledger: the budget shrinks by what members got, and once it cannot
/// pay a whole prize it pays nothing more — that member's prize stays owed (no points, no
/// message, retried on later passes) and the ledger stays balanced.
async fn a_campaigns_challenge_pays_from_its_budget_until_it_runs_out(app: TestApp) {
    use crate::campaigns::{campaign_body, live_campaign, staff_campaign};
    let staff = operator(&app).await;
    let campaign = live_campaign(&app, &staff, campaign_body(&app, "", PRIZE + PRIZE / 2, 0)).await;
    let mut body = challenge_body(&app, 2, 3);
    body["campaign_id"] = json!(campaign);
    let challenge = create_challenge(&app, body).await;
    let a = app.customer("13800000231").await;
    let b = app.customer("13800000232").await;
    let (first, code) = team(&app, &a, &challenge, "预算队").await;
    assert_eq!(join(&app, &b, &code).await.status, StatusCode::CREATED);
    trips(&app, &a, &["a1"]).await;
    trips(&app, &b, &["b1"]).await;
    drain(&app).await;
    assert_eq!(view(&app, &a, &first).await["completed"], true);

    let check = |label: &'static str| {
        let app = &app;
        let (a, b, staff, campaign) = (&a, &b, &staff, &campaign);
        async move {
            let mut got = [points(app, a).await, points(app, b).await];
            got.sort();
            assert_eq!(got, [0, PRIZE], "{label}: one prize paid, the other owed");
            let told = messages(app, a, "team_challenge_completed").await.len()
                + messages(app, b, "team_challenge_completed").await.len();
            assert_eq!(told, 1, "{label}: only the paid member is told");
            let seen = staff_campaign(app, staff, campaign).await;
            assert_eq!(seen["points_used"], PRIZE, "{label}: {seen:?}");
            assert_eq!(seen["points_left"], PRIZE / 2, "{label}: {seen:?}");
        }
    };
    check("first pass").await;
    // Another pass retries the owed prize: the budget still cannot pay it.
    trips(&app, &a, &["a2"]).await;
    drain(&app).await;
    check("retried").await;
    assert_ledger_balanced(&app).await;
}
