//! Rules: a rule fires exactly once when the same event is sent twice and its effects say
//! which rule and event caused them; a windowed aggregate fires on the 3rd matching event
//! within 7 days but not when they are spread over 8; a replayed batch pays nothing more; budgets stop awards with no partial
//! award (points and coupons); a once-only rule; invalid CEL refused with its parse error
//! and nothing saved; nudges shown and dismissed; the lag metric; ledger invariants.
//! Budgets are exact: task claims and rule awards racing on the last of a small budget
//! never pay more than it (read from the ledger), and a batch that fails before its commit
//! leaves no message, points or coupon behind, while its retry applies each once.

use huoban_identity::Role;
use huoban_kit::Clock;
use jiff::SignedDuration;
use reqwest::StatusCode;
use serde_json::json;

use crate::{
    campaigns::{
        add_rule, assert_ledger_ok, campaign_body, caught_up, effects, live_campaign, points, send, staff_campaign,
        staff_reward,
    },
    helpers::TestApp,
    on_both_backends,
};

on_both_backends!(
    a_rule_fires_exactly_once_when_the_same_event_is_sent_twice_and_explains_itself,
    a_windowed_aggregate_fires_on_the_third_match_within_7_days_not_over_8,
    an_exhausted_budget_stops_awards_and_never_pays_part,
    a_once_only_rule_fires_once_per_customer,
    an_invalid_expression_is_refused_with_its_parse_error_and_nothing_is_saved,
    nudges_are_shown_until_dismissed,
    task_claims_and_rule_awards_racing_on_a_small_budget_never_pay_past_it,
    a_failed_batch_leaves_no_message_points_or_coupon_and_its_retry_applies_each_once,
);

async fn a_rule_fires_exactly_once_when_the_same_event_is_sent_twice_and_explains_itself(app: TestApp) {
    let staff = app.staff(Role::Operator).await;
    let (_, token) = crate::accounts::customer(&app, "13900003001").await;
    let campaign = live_campaign(&app, &staff, campaign_body(&app, "", 1000, 0)).await;
    let rule = add_rule(
        &app,
        &staff,
        &campaign,
        json!({ "name": "Wealth view bonus", "trigger": "product_view",
                "condition": "event.properties.category == 'wealth' && customer.age_band == 'unknown'",
                "actions": [{ "type": "award_points", "points": 10 },
                            { "type": "send_message", "title": "积分到账", "body": "感谢浏览理财产品" }] }),
    )
    .await;
    send(
        &app,
        &token,
        &[("v-1", "product_view", json!({ "category": "wealth" }))],
    )
    .await;
    send(
        &app,
        &token,
        &[("v-1", "product_view", json!({ "category": "wealth" }))],
    )
    .await;
    send(&app, &token, &[("v-2", "product_view", json!({ "category": "loans" }))]).await;
    assert_eq!(points(&app, &token).await, 10);
    assert_eq!(app.count("rule_firings").await, 1);
    let list = effects(&app, &token).await;
    assert_eq!(list.len(), 2, "{list:?}");
    let award = list.iter().find(|e| e["kind"] == "points").expect("points effect");
    assert_eq!(award["rule_id"], rule.as_str());
    assert_eq!(award["rule_name"], "Wealth view bonus");
    assert_eq!(award["event_id"], "v-1");
    assert_eq!(award["detail"]["points"], 10);
    assert!(award["why"].as_str().expect("why").contains("Wealth view bonus"));
    let inbox = app.get("/api/v1/inbox", Some(&token)).await;
    let titles: Vec<&str> = inbox.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|m| m["title"].as_str())
        .filter(|t| *t == "积分到账")
        .collect();
    assert_eq!(titles.len(), 1, "{:?}", inbox.body);
    assert_eq!(staff_campaign(&app, &staff, &campaign).await["points_used"], 10);
    // A replay of the same events (as after a crash between the ledger posting and the
    // commit, here by a second consumer from the start of the feed) pays nothing more: the
    // ledger replays the keyed transfer and the (rule, event) row refuses a second firing.
    let replay = huoban_engage::events::feed::EventFeed::new(app.app.db.clone(), "replay-test");
    assert!(app.app.campaigns_state().rules.run_batch(&replay).await.is_err());
    assert_eq!(points(&app, &token).await, 10);
    assert_eq!(app.count("rule_firings").await, 1);
    assert_eq!(effects(&app, &token).await.len(), 2);
    let level = app.get("/api/v1/me/level", Some(&token)).await;
    assert_eq!(level.body["points_earned"], 10);
    let metrics = app.get("/metrics", None).await;
    let text = metrics
        .body
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| metrics.body.to_string());
    assert!(text.contains("huoban_rules_lag_seconds_count"), "{text}");
    assert_ledger_ok(&app).await;
}

async fn a_windowed_aggregate_fires_on_the_third_match_within_7_days_not_over_8(app: TestApp) {
    let staff = app.staff(Role::Operator).await;
    crate::accounts::customer(&app, "13900003002").await;
    crate::accounts::customer(&app, "13900003003").await;
    // Sessions expire as the clock moves days ahead: sign in afresh for each step.
    let me = |phone: &'static str| app.sign_in(phone, "h5");
    let campaign = live_campaign(&app, &staff, campaign_body(&app, "", 1000, 0)).await;
    add_rule(
        &app,
        &staff,
        &campaign,
        json!({ "name": "Wealth explorer", "trigger": "product_view",
                "condition": "event.properties.category == 'wealth'",
                "aggregate": { "count": 3, "within_days": 7 },
                "actions": [{ "type": "show_nudge", "title": "定制我的配置方案", "body": "看了三次理财？来定制方案",
                              "action_url": "/h5/allocation" },
                            { "type": "award_points", "points": 30 }] }),
    )
    .await;
    let wealth = json!({ "category": "wealth" });
    // Close together: days 0, 2 (plus a non-matching view), 5 → fires on the third.
    send(
        &app,
        &me("13900003002").await,
        &[("c-1", "product_view", wealth.clone())],
    )
    .await;
    send(
        &app,
        &me("13900003003").await,
        &[("s-1", "product_view", wealth.clone())],
    )
    .await;
    app.clock.advance(SignedDuration::from_hours(48));
    send(
        &app,
        &me("13900003002").await,
        &[
            ("c-2", "product_view", wealth.clone()),
            ("c-x", "product_view", json!({ "category": "loans" })),
        ],
    )
    .await;
    app.clock.advance(SignedDuration::from_hours(48));
    send(
        &app,
        &me("13900003003").await,
        &[("s-2", "product_view", wealth.clone())],
    )
    .await;
    assert_eq!(
        points(&app, &me("13900003002").await).await,
        0,
        "two matches do not fire"
    );
    app.clock.advance(SignedDuration::from_hours(24));
    send(
        &app,
        &me("13900003002").await,
        &[("c-3", "product_view", wealth.clone())],
    )
    .await;
    assert_eq!(points(&app, &me("13900003002").await).await, 30);
    let nudges = app.get("/api/v1/nudges", Some(&me("13900003002").await)).await;
    assert_eq!(nudges.body[0]["title"], "定制我的配置方案");
    assert_eq!(nudges.body[0]["action_url"], "/h5/allocation");
    // Spread: days 0, 4, 8 — the first has left the 7-day window by the third.
    app.clock.advance(SignedDuration::from_hours(24 * 3));
    send(
        &app,
        &me("13900003003").await,
        &[("s-3", "product_view", wealth.clone())],
    )
    .await;
    assert_eq!(points(&app, &me("13900003003").await).await, 0);
    assert!(
        app.get("/api/v1/nudges", Some(&me("13900003003").await))
            .await
            .body
            .as_array()
            .expect("list")
            .is_empty()
    );
    // Two more within the window make three again (s-2, s-3, s-4).
    send(&app, &me("13900003003").await, &[("s-4", "product_view", wealth)]).await;
    assert_eq!(points(&app, &me("13900003003").await).await, 30);
    assert_ledger_ok(&app).await;
}

async fn an_exhausted_budget_stops_awards_and_never_pays_part(app: TestApp) {
    let staff = app.staff(Role::Operator).await;
    let (_, a) = crate::accounts::customer(&app, "13900003004").await;
    let (_, b) = crate::accounts::customer(&app, "13900003005").await;
    let reward = app
        .post(
            "/api/v1/staff/rewards",
            Some(&staff),
            json!({ "titles": { "zh-CN": "新春红包券" }, "points_price": 100, "total_stock": 10, "per_customer_limit": 5,
                    "claimable_from": crate::campaigns::instant(&app, -1), "claimable_until": crate::campaigns::instant(&app, 24 * 40),
                    "coupon_valid_days": 30 }),
        )
        .await;
    assert_eq!(reward.status, StatusCode::CREATED, "{:?}", reward.body);
    let reward = reward.body["id"].as_str().expect("id").to_owned();
    let campaign = live_campaign(&app, &staff, campaign_body(&app, "", 25, 1)).await;
    add_rule(
        &app,
        &staff,
        &campaign,
        json!({ "name": "Share bonus", "trigger": "share", "actions": [{ "type": "award_points", "points": 10 }] }),
    )
    .await;
    add_rule(
        &app,
        &staff,
        &campaign,
        json!({ "name": "Green coupon", "trigger": "green_trip", "actions": [{ "type": "issue_coupon", "reward": reward }] }),
    )
    .await;
    send(&app, &a, &[("s-1", "share", json!({})), ("s-2", "share", json!({}))]).await;
    send(&app, &b, &[("s-1", "share", json!({}))]).await;
    assert_eq!(points(&app, &a).await, 20);
    assert_eq!(points(&app, &b).await, 0, "5 left cannot pay 10: nothing is paid");
    send(&app, &a, &[("g-1", "green_trip", json!({}))]).await;
    send(&app, &b, &[("g-1", "green_trip", json!({}))]).await;
    let coupons_a = app.get("/api/v1/coupons", Some(&a)).await.body["items"]
        .as_array()
        .expect("items")
        .len();
    let coupons_b = app.get("/api/v1/coupons", Some(&b)).await.body["items"]
        .as_array()
        .expect("items")
        .len();
    assert_eq!((coupons_a, coupons_b), (1, 0));
    let view = staff_campaign(&app, &staff, &campaign).await;
    assert_eq!(
        (view["points_used"].as_i64(), view["points_left"].as_i64()),
        (Some(20), Some(5))
    );
    assert_eq!(
        (view["coupons_used"].as_i64(), view["coupons_left"].as_i64()),
        (Some(1), Some(0))
    );
    let exhausted: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM rule_firings WHERE outcome = 'budget_exhausted'")
        .fetch_one(app.app.db.reader())
        .await
        .expect("count");
    assert_eq!(exhausted, 2);
    assert!(effects(&app, &b).await.is_empty());
    assert_ledger_ok(&app).await;
}

async fn a_once_only_rule_fires_once_per_customer(app: TestApp) {
    let staff = app.staff(Role::Operator).await;
    let (_, token) = crate::accounts::customer(&app, "13900003006").await;
    let campaign = live_campaign(&app, &staff, campaign_body(&app, "", 1000, 0)).await;
    add_rule(
        &app,
        &staff,
        &campaign,
        json!({ "name": "First check-in of the festival", "trigger": "share", "max_per_customer": 1,
                "condition": "counters.share >= 1",
                "actions": [{ "type": "award_points", "points": 88 }] }),
    )
    .await;
    send(
        &app,
        &token,
        &[("s-1", "share", json!({})), ("s-2", "share", json!({}))],
    )
    .await;
    send(&app, &token, &[("s-3", "share", json!({}))]).await;
    assert_eq!(points(&app, &token).await, 88);
    caught_up(&app).await;
    assert_ledger_ok(&app).await;
}

async fn an_invalid_expression_is_refused_with_its_parse_error_and_nothing_is_saved(app: TestApp) {
    let staff = app.staff(Role::Operator).await;
    let campaign = live_campaign(&app, &staff, campaign_body(&app, "", 1000, 0)).await;
    let path = format!("/api/v1/staff/campaigns/{campaign}/rules");
    let reply = app
        .post(
            &path,
            Some(&staff),
            json!({ "name": "broken", "trigger": "share", "condition": "event.properties.category ==",
                    "actions": [{ "type": "award_points", "points": 1 }] }),
        )
        .await;
    reply.assert_problem(422, "invalid-rule-expression");
    assert!(!reply.body["parse_error"].as_str().expect("parse error").is_empty());
    assert_eq!(reply.body["field"], "condition");
    let reply = app
        .post(
            &path,
            Some(&staff),
            json!({ "name": "typo", "trigger": "share", "condition": "evnt.type == 'share'",
                    "actions": [{ "type": "award_points", "points": 1 }] }),
        )
        .await;
    reply.assert_problem(422, "invalid-rule-expression");
    assert!(reply.body["detail"].as_str().expect("detail").contains("evnt"));
    for bad in [
        json!({ "name": "", "trigger": "share", "actions": [{ "type": "award_points", "points": 1 }] }),
        json!({ "name": "x", "trigger": "Share!", "actions": [{ "type": "award_points", "points": 1 }] }),
        json!({ "name": "x", "trigger": "share", "actions": [] }),
        json!({ "name": "x", "trigger": "share", "actions": [{ "type": "award_points", "points": 0 }] }),
        json!({ "name": "x", "trigger": "share", "aggregate": { "count": 1, "within_days": 7 }, "actions": [{ "type": "award_points", "points": 1 }] }),
        json!({ "name": "x", "trigger": "share", "actions": [{ "type": "grant_badge", "badge": uuid::Uuid::now_v7() }] }),
    ] {
        app.post(&path, Some(&staff), bad)
            .await
            .assert_problem(422, "validation");
    }
    assert_eq!(app.count("campaign_rules").await, 0);
}

async fn nudges_are_shown_until_dismissed(app: TestApp) {
    let staff = app.staff(Role::Operator).await;
    let (_, token) = crate::accounts::customer(&app, "13900003007").await;
    let (_, other) = crate::accounts::customer(&app, "13900003008").await;
    let campaign = live_campaign(&app, &staff, campaign_body(&app, "", 0, 0)).await;
    add_rule(
        &app,
        &staff,
        &campaign,
        json!({ "name": "Goal nudge", "trigger": "page_view", "condition": "event.properties.page == 'goals'",
                "actions": [{ "type": "show_nudge", "title": "开始攒钱", "body": "设一个目标吧" }] }),
    )
    .await;
    send(&app, &token, &[("p-1", "page_view", json!({ "page": "goals" }))]).await;
    let list = app.get("/api/v1/nudges", Some(&token)).await;
    assert_eq!(list.body.as_array().expect("list").len(), 1);
    let id = list.body[0]["id"].as_str().expect("id").to_owned();
    app.post(&format!("/api/v1/nudges/{id}/dismiss"), Some(&other), json!({}))
        .await
        .assert_problem(404, "not-found");
    let dismissed = app
        .post(&format!("/api/v1/nudges/{id}/dismiss"), Some(&token), json!({}))
        .await;
    assert_eq!(dismissed.status, StatusCode::NO_CONTENT);
    assert!(
        app.get("/api/v1/nudges", Some(&token))
            .await
            .body
            .as_array()
            .expect("list")
            .is_empty()
    );
}

/// Points that left a campaign's budget account for anyone but the bank's clearing
/// (which only funds budgets): what the campaign paid, read from the ledger itself.
async fn paid_from_budget(app: &TestApp, account: &str) -> i64 {
    let paid: Option<i64> = sqlx::query_scalar(
        "SELECT CAST(SUM(c.amount) AS BIGINT) FROM ledger_entries d JOIN ledger_entries c \
         ON c.transfer_id = d.transfer_id AND c.leg = d.leg AND c.amount > 0 \
         JOIN ledger_accounts a ON a.id = c.account_id \
         WHERE d.account_id = $1 AND d.amount < 0 AND a.owner_kind = 'customer'",
    )
    .bind(account)
    .fetch_one(app.app.db.reader())
    .await
    .expect("paid");
    paid.unwrap_or(0)
}

async fn applied(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM rule_firings WHERE outcome = 'applied'")
        .fetch_one(app.app.db.reader())
        .await
        .expect("count")
}

async fn task_claims_and_rule_awards_racing_on_a_small_budget_never_pay_past_it(app: TestApp) {
    let staff = app.staff(Role::Operator).await;
    let reward = staff_reward(&app, &staff, 100, 5).await;
    // 100 points and 3 coupons, asked for by 8 customers × (a 10-point rule with a coupon
    // and a 30-point task claim with a coupon): 320 points and 16 coupons wanted.
    let campaign = live_campaign(&app, &staff, campaign_body(&app, "", 100, 3)).await;
    add_rule(
        &app,
        &staff,
        &campaign,
        json!({ "name": "Share bonus", "trigger": "share",
                "actions": [{ "type": "award_points", "points": 10 }, { "type": "issue_coupon", "reward": reward },
                            { "type": "send_message", "title": "分享奖励", "body": "谢谢分享" }] }),
    )
    .await;
    let task = app
        .post(
            &format!("/api/v1/staff/campaigns/{campaign}/tasks"),
            Some(&staff),
            json!({ "titles": { "zh-CN": "绿色出行" }, "period": "daily", "event_type": "green_trip",
                    "target": 1, "reward_points": 30, "reward_coupon": reward }),
        )
        .await;
    assert_eq!(task.status, StatusCode::CREATED, "{:?}", task.body);
    let task = task.body["id"].as_str().expect("id").to_owned();
    let mut tokens = Vec::new();
    for i in 0..8 {
        let (_, token) = crate::accounts::customer(&app, &format!("139000031{i:02}")).await;
        send(&app, &token, &[("g-1", "green_trip", json!({}))]).await;
        tokens.push(token);
    }
    // Claims and rule-firing events at once: the consumer and the claims race on the
    // last points and coupons.
    let at = (app.clock.now() - SignedDuration::from_secs(1)).to_string();
    let claim_path = format!("/api/v1/tasks/{task}/claim");
    let claims = futures::future::join_all(tokens.iter().map(|t| app.post(&claim_path, Some(t), json!({}))));
    let shares = futures::future::join_all(tokens.iter().map(|t| {
        app.post(
            "/api/v1/events",
            Some(t),
            json!({ "events": [{ "id": "s-1", "type": "share", "channel": "app", "at": at, "properties": {} }] }),
        )
    }));
    let (claims, shares) = tokio::join!(claims, shares);
    let mut claimed = 0;
    for c in &claims {
        match c.status {
            StatusCode::OK => claimed += 1,
            _ => assert_eq!(c.body["type"], "urn:huoban:problem:budget-exhausted", "{:?}", c.body),
        }
    }
    assert!(shares.iter().all(|s| s.status == StatusCode::OK));
    caught_up(&app).await;

    let view = staff_campaign(&app, &staff, &campaign).await;
    let account = view["points_account"].as_str().expect("budget account").to_owned();
    let used = view["points_used"].as_i64().expect("used");
    let paid = paid_from_budget(&app, &account).await;
    assert!(used <= 100, "{view:?}");
    assert_eq!(paid, used, "what the ledger paid out is the budget used");
    assert_eq!(view["points_left"].as_i64(), Some(100 - used));
    let mut received = 0;
    for t in &tokens {
        received += points(&app, t).await;
    }
    assert_eq!(received, paid, "customers received exactly what the budget paid");
    // Every award paid is explained by an effect, and only those.
    let explained: Option<i64> = sqlx::query_scalar(
        "SELECT CAST(SUM(CASE WHEN kind = 'points' THEN 10 ELSE 30 END) AS BIGINT) FROM campaign_effects \
         WHERE campaign_id = $1 AND kind IN ('points', 'task_reward')",
    )
    .bind(&campaign)
    .fetch_one(app.app.db.reader())
    .await
    .expect("effects");
    assert_eq!(explained.unwrap_or(0), paid);
    assert_eq!(used, claimed * 30 + 10 * applied(&app).await);
    // Coupons: never more than the coupon budget, and the count matches what was granted.
    let granted = app.count("reward_claims").await;
    assert!(granted <= 3, "{granted} coupons granted on a budget of 3");
    assert_eq!(view["coupons_used"].as_i64(), Some(granted));
    // A message only for a firing that applied.
    let messages: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbox_messages WHERE title = '分享奖励'")
        .fetch_one(app.app.db.reader())
        .await
        .expect("messages");
    assert_eq!(messages, applied(&app).await);
    assert_ledger_ok(&app).await;
}

/// Makes every insert into `campaign_effects` fail: the last thing a rules batch writes
/// before its commit, after its points, coupon and message.
async fn inject_failure(app: &TestApp, on: bool) {
    let statements: &[&str] = match (app.backend, on) {
        (huoban_kit::Backend::Sqlite, true) => {
            &["CREATE TRIGGER test_fail BEFORE INSERT ON campaign_effects BEGIN SELECT RAISE(ABORT, 'injected'); END"]
        }
        (huoban_kit::Backend::Sqlite, false) => &["DROP TRIGGER test_fail"],
        (huoban_kit::Backend::Postgres, true) => &[
            "CREATE FUNCTION test_fail() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'injected'; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER test_fail BEFORE INSERT ON campaign_effects FOR EACH ROW EXECUTE FUNCTION test_fail()",
        ],
        (huoban_kit::Backend::Postgres, false) => &["DROP TRIGGER test_fail ON campaign_effects"],
    };
    for sql in statements {
        sqlx::query(sqlx::AssertSqlSafe(*sql))
            .execute(app.app.db.writer())
            .await
            .expect(sql);
    }
}

async fn a_failed_batch_leaves_no_message_points_or_coupon_and_its_retry_applies_each_once(app: TestApp) {
    let staff = app.staff(Role::Operator).await;
    let reward = staff_reward(&app, &staff, 100, 5).await;
    let (_, token) = crate::accounts::customer(&app, "13900003201").await;
    let campaign = live_campaign(&app, &staff, campaign_body(&app, "", 1000, 10)).await;
    add_rule(
        &app,
        &staff,
        &campaign,
        json!({ "name": "Share bonus", "trigger": "share",
                "actions": [{ "type": "award_points", "points": 15 }, { "type": "issue_coupon", "reward": reward },
                            { "type": "send_message", "title": "分享奖励", "body": "谢谢分享" }] }),
    )
    .await;
    caught_up(&app).await;
    let cursor = || async {
        let at: Option<i64> = sqlx::query_scalar("SELECT position FROM event_cursors WHERE consumer = 'rules'")
            .fetch_optional(app.app.db.reader())
            .await
            .expect("cursor");
        at.unwrap_or(0)
    };
    let before = cursor().await;
    inject_failure(&app, true).await;
    let at = (app.clock.now() - SignedDuration::from_secs(1)).to_string();
    let sent = app
        .post(
            "/api/v1/events",
            Some(&token),
            json!({ "events": [{ "id": "s-1", "type": "share", "channel": "app", "at": at, "properties": {} }] }),
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{:?}", sent.body);
    // A batch that fails at its last write, after everything else was written in its
    // transaction (the background consumer meets the same failure and retries).
    let feed = huoban_engage::events::feed::EventFeed::new(app.app.db.clone(), "rules");
    let failed = app.app.campaigns_state().rules.run_batch(&feed).await;
    assert!(failed.is_err(), "{failed:?}");
    assert_eq!(cursor().await, before, "the cursor did not move");
    assert_eq!(points(&app, &token).await, 0, "no points without the effect");
    assert_eq!(app.count("reward_claims").await, 0, "no coupon without the effect");
    let inbox = app.get("/api/v1/inbox", Some(&token)).await;
    assert!(
        inbox.body["items"].as_array().expect("items").is_empty(),
        "no message without the effect: {:?}",
        inbox.body
    );
    assert_eq!(app.count("rule_firings").await, 0);
    let view = staff_campaign(&app, &staff, &campaign).await;
    assert_eq!(
        (view["points_used"].as_i64(), view["coupons_used"].as_i64()),
        (Some(0), Some(0))
    );

    // Once the failure is gone the consumer's retry applies everything, once.
    inject_failure(&app, false).await;
    caught_up(&app).await;
    assert_eq!(points(&app, &token).await, 15);
    assert_eq!(app.count("reward_claims").await, 1);
    let inbox = app.get("/api/v1/inbox", Some(&token)).await;
    assert_eq!(
        inbox.body["items"].as_array().expect("items").len(),
        1,
        "{:?}",
        inbox.body
    );
    let list = effects(&app, &token).await;
    let coupon = list.iter().find(|e| e["kind"] == "coupon").expect("coupon effect");
    assert_eq!(coupon["detail"]["issued"], true);
    assert!(list.iter().all(|e| e["rule_name"] == "Share bonus"), "{list:?}");
    let view = staff_campaign(&app, &staff, &campaign).await;
    assert_eq!(
        (view["points_used"].as_i64(), view["coupons_used"].as_i64()),
        (Some(15), Some(1))
    );
    assert_ledger_ok(&app).await;
}
