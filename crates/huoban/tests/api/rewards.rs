//! Rewards: a festival flash claim of 200 customers on 50 units (exactly 50 winners, the
//! rest `out-of-stock`, points balanced), replays with the same key charging once (also
//! concurrently), insufficient points leaving stock untouched, the per-customer limit,
//! the claim window, staff validation and the catalog, and recovery of a claim whose
//! request died after reserving, in both directions. Refusals answered from the read
//! (sold out, at the limit) are true and write nothing, and a unit a voided reservation
//! returns is claimable at once. Rewards of a campaign: claimable only while it is live
//! and for its audience; unknown and ended campaigns refused.

use huoban_engage::rewards::service::RewardsService;
use huoban_identity::{Channel, Role, store::CustomerRow};
use huoban_kit::Clock;
use huoban_ledger::{Amount, IdempotencyKey, TransferRequest, Unit};
use jiff::{SignedDuration, Timestamp};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    helpers::{Reply, TestApp},
    on_both_backends,
};

on_both_backends!(
    a_flash_claim_of_200_customers_on_50_units_has_exactly_50_winners,
    a_replayed_claim_returns_the_first_coupon_and_charges_once,
    too_few_points_refuse_the_claim_and_leave_stock_untouched,
    a_customer_cannot_claim_more_than_the_limit,
    a_reward_is_claimable_only_inside_its_window,
    staff_create_validated_rewards_and_see_stock_and_claims,
    recovery_finishes_a_posted_claim_and_releases_an_unpaid_one,
    a_granted_prize_costs_no_points_takes_stock_once_and_respects_stock,
    refusals_from_the_read_are_true_and_a_voided_reservation_frees_the_last_unit,
    concurrent_claims_of_one_customer_never_pass_the_limit,
    two_nodes_reserving_at_once_never_pass_the_stock,
    a_campaign_reward_is_claimable_only_while_its_campaign_is_live_for_the_customer,
    rewards_refuse_unknown_and_ended_campaigns_and_save_nothing,
);

const PRICE: i64 = 100;

fn instant(app: &TestApp, offset_hours: i64) -> String {
    app.clock
        .now()
        .checked_add(SignedDuration::from_hours(offset_hours))
        .expect("instant")
        .to_string()
}

fn reward_body(app: &TestApp, stock: i64, limit: i64) -> Value {
    json!({
        "titles": { "zh-CN": "双十一咖啡券", "en": "Singles' Day coffee" },
        "points_price": PRICE,
        "total_stock": stock,
        "per_customer_limit": limit,
        "claimable_from": instant(app, -1),
        "claimable_until": instant(app, 24),
        "coupon_valid_days": 30,
    })
}

async fn create_reward(app: &TestApp, body: Value) -> String {
    let staff = app.staff(Role::Operator).await;
    let created = app.post("/api/v1/staff/rewards", Some(&staff), body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    created.body["id"].as_str().expect("id").to_owned()
}

/// Customers created in-process (no password hashing), each with a session token.
async fn customers(app: &TestApp, n: usize) -> Vec<(Uuid, String)> {
    let now = app.clock.now().as_microsecond();
    let prefix = rand::random::<u32>() % 1000;
    let rows: Vec<CustomerRow> = (0..n)
        .map(|i| CustomerRow {
            id: Uuid::now_v7().to_string(),
            phone: format!("139{prefix:03}{i:05}"),
            name: format!("抢券客户{i}"),
            birthday: None,
            id_number: None,
            locale: "zh-CN".into(),
            time_zone: "Asia/Shanghai".into(),
            preferences: "{}".into(),
            password_hash: None,
            idp_subject: None,
            created_at: now,
            updated_at: now,
            erased_at: None,
        })
        .collect();
    app.app
        .identity
        .store()
        .insert_customers(&rows)
        .await
        .expect("customers");
    let mut out = Vec::with_capacity(n);
    for row in rows {
        let id: Uuid = row.id.parse().expect("id");
        let session = app
            .app
            .identity
            .open_customer_session(id, Channel::H5)
            .await
            .expect("session");
        out.push((id, session.token));
    }
    out
}

async fn give_points(app: &TestApp, customer: Uuid, points: i64) {
    let account = app
        .app
        .accounts
        .ensure_standard_accounts(customer)
        .await
        .expect("accounts")
        .points;
    let clearing = app.app.accounts.clearing(Unit::Points).await.expect("clearing");
    app.app
        .ledger
        .transfer(TransferRequest::single(
            IdempotencyKey::new("test-grant", Uuid::now_v7().to_string()).expect("key"),
            Unit::Points,
            clearing,
            account,
            Amount::new(points).expect("amount"),
        ))
        .await
        .expect("points granted");
}

/// (posted, available) of the customer's points account.
async fn points(app: &TestApp, customer: Uuid) -> (i64, i64) {
    let account = app
        .app
        .accounts
        .ensure_standard_accounts(customer)
        .await
        .expect("accounts")
        .points;
    let balance = app.app.ledger.balance(account).await.expect("balance");
    (balance.posted, balance.available() as i64)
}

async fn claim(app: &TestApp, token: &str, reward: &str, key: &str) -> Reply {
    app.send(
        Method::POST,
        &format!("/api/v1/rewards/{reward}/claims"),
        Some(token),
        None,
        &[("idempotency-key", key)],
    )
    .await
}

/// (total, claimed, reserved) straight from the stock row.
async fn stock(app: &TestApp, reward: &str) -> (i64, i64, i64) {
    sqlx::query_as("SELECT total, claimed, reserved FROM reward_stock WHERE reward_id = $1")
        .bind(reward)
        .fetch_one(app.app.db.reader())
        .await
        .expect("stock")
}

async fn assert_ledger_ok(app: &TestApp) {
    let report = app.app.ledger.invariants().await.expect("invariants");
    assert!(report.is_ok(), "{report:?}");
}

fn service(app: &TestApp) -> RewardsService {
    RewardsService::new(&app.app.engage_state())
}

async fn a_flash_claim_of_200_customers_on_50_units_has_exactly_50_winners(app: TestApp) {
    let reward = create_reward(&app, reward_body(&app, 50, 1)).await;
    let crowd = customers(&app, 200).await;
    for (id, _) in &crowd {
        give_points(&app, *id, 150).await;
    }

    let mut tasks = Vec::new();
    for (id, token) in crowd.clone() {
        let (http, url) = (app.http.clone(), format!("{}/api/v1/rewards/{reward}/claims", app.base));
        tasks.push(tokio::spawn(async move {
            let response = http
                .post(url)
                .bearer_auth(token)
                .header("idempotency-key", format!("flash-{id}"))
                .send()
                .await
                .expect("request");
            let status = response.status();
            let body: Value = response.json().await.expect("json");
            (id, status, body)
        }));
    }
    let mut winners = Vec::new();
    let mut sold_out = 0;
    for task in tasks {
        let (id, status, body) = task.await.expect("task");
        match status {
            StatusCode::CREATED => {
                assert!(body["code"].as_str().expect("code").starts_with("HB-"));
                winners.push(id);
            }
            StatusCode::CONFLICT if body["type"] == "urn:huoban:problem:out-of-stock" => sold_out += 1,
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(winners.len(), 50);
    assert_eq!(sold_out, 150);
    assert_eq!(stock(&app, &reward).await, (50, 50, 0));

    // Points balance: winners paid exactly the price, nobody else paid anything.
    let mut spent = 0;
    for (id, _) in &crowd {
        let (posted, available) = points(&app, *id).await;
        assert_eq!(posted, available, "no hold is left behind");
        let paid = 150 - posted;
        assert_eq!(paid, if winners.contains(id) { PRICE } else { 0 });
        spent += paid;
    }
    assert_eq!(spent, 50 * PRICE);
    let codes: std::collections::HashSet<String> =
        sqlx::query_scalar("SELECT code FROM reward_claims WHERE state = 'claimed'")
            .fetch_all(app.app.db.reader())
            .await
            .expect("codes")
            .into_iter()
            .collect();
    assert_eq!(codes.len(), 50, "every coupon has its own code");
    // The claim keeps its key in its own row: no attempt, won or refused, stored a
    // response in the HTTP idempotency layer.
    assert_eq!(app.count("idempotency_keys").await, 0);
    assert_ledger_ok(&app).await;
}

async fn a_replayed_claim_returns_the_first_coupon_and_charges_once(app: TestApp) {
    let reward = create_reward(&app, reward_body(&app, 10, 3)).await;
    let (customer, token) = customers(&app, 1).await.remove(0);
    give_points(&app, customer, 1000).await;

    let first = claim(&app, &token, &reward, "coffee-1").await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    let again = claim(&app, &token, &reward, "coffee-1").await;
    assert_eq!(again.status, StatusCode::CREATED, "{:?}", again.body);
    assert_eq!(
        again.headers.get("idempotent-replayed").map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    assert_eq!(again.body["code"], first.body["code"]);
    assert_eq!(points(&app, customer).await, (900, 900));

    // Concurrent replays, each from its own session so every one reaches the claim
    // itself rather than the HTTP idempotency layer: one coupon, one charge.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let session = app
            .app
            .identity
            .open_customer_session(customer, Channel::App)
            .await
            .expect("session")
            .token;
        let (http, url) = (app.http.clone(), format!("{}/api/v1/rewards/{reward}/claims", app.base));
        tasks.push(tokio::spawn(async move {
            let r = http
                .post(url)
                .bearer_auth(session)
                .header("idempotency-key", "coffee-2")
                .send()
                .await
                .expect("request");
            (r.status(), r.json::<Value>().await.expect("json"))
        }));
    }
    let mut codes = std::collections::HashSet::new();
    for task in tasks {
        let (status, body) = task.await.expect("task");
        assert_eq!(status, StatusCode::CREATED, "{body}");
        codes.insert(body["code"].as_str().expect("code").to_owned());
    }
    assert_eq!(codes.len(), 1);
    assert_eq!(points(&app, customer).await, (800, 800));
    assert_eq!(stock(&app, &reward).await, (10, 2, 0));

    // The same key for another reward is a different request.
    let other = create_reward(&app, reward_body(&app, 10, 3)).await;
    claim(&app, &token, &other, "coffee-1")
        .await
        .assert_problem(422, "idempotency-key-mismatch");

    let coupons = app.get("/api/v1/coupons", Some(&token)).await;
    assert_eq!(coupons.status, StatusCode::OK);
    assert_eq!(coupons.body["items"].as_array().expect("items").len(), 2);
    assert_eq!(coupons.body["items"][0]["title"], "双十一咖啡券");
    assert_ledger_ok(&app).await;
}

async fn too_few_points_refuse_the_claim_and_leave_stock_untouched(app: TestApp) {
    let reward = create_reward(&app, reward_body(&app, 5, 1)).await;
    let (customer, token) = customers(&app, 1).await.remove(0);
    give_points(&app, customer, PRICE - 1).await;

    claim(&app, &token, &reward, "poor-1")
        .await
        .assert_problem(409, "insufficient-points");
    assert_eq!(stock(&app, &reward).await, (5, 0, 0));
    assert_eq!(points(&app, customer).await, (PRICE - 1, PRICE - 1));
    // The replay answers the first result; the limit was not used up.
    claim(&app, &token, &reward, "poor-1")
        .await
        .assert_problem(409, "insufficient-points");
    let list = app.get("/api/v1/rewards", Some(&token)).await;
    assert_eq!(list.body["items"][0]["my_claims"], 0);
    assert_eq!(list.body["items"][0]["stock_left"], 5);

    give_points(&app, customer, 1).await;
    let paid = claim(&app, &token, &reward, "poor-2").await;
    assert_eq!(paid.status, StatusCode::CREATED, "{:?}", paid.body);
    assert_eq!(points(&app, customer).await, (0, 0));
    assert_eq!(stock(&app, &reward).await, (5, 1, 0));
    assert_ledger_ok(&app).await;
}

async fn a_customer_cannot_claim_more_than_the_limit(app: TestApp) {
    let reward = create_reward(&app, reward_body(&app, 10, 2)).await;
    let (customer, token) = customers(&app, 1).await.remove(0);
    give_points(&app, customer, 1000).await;
    for key in ["l-1", "l-2"] {
        assert_eq!(claim(&app, &token, &reward, key).await.status, StatusCode::CREATED);
    }
    claim(&app, &token, &reward, "l-3")
        .await
        .assert_problem(409, "claim-limit-reached");
    assert_eq!(stock(&app, &reward).await, (10, 2, 0));
    assert_eq!(points(&app, customer).await.0, 1000 - 2 * PRICE);
    let list = app.get("/api/v1/rewards", Some(&token)).await;
    assert_eq!(list.body["items"][0]["my_claims"], 2);
    assert_eq!(list.body["items"][0]["my_claims_left"], 0);
    assert_eq!(list.body["items"][0]["stock_left"], 8);
}

async fn a_reward_is_claimable_only_inside_its_window(app: TestApp) {
    let mut body = reward_body(&app, 10, 5);
    body["claimable_from"] = json!(instant(&app, 1));
    body["claimable_until"] = json!(instant(&app, 2));
    let reward = create_reward(&app, body).await;
    let (customer, token) = customers(&app, 1).await.remove(0);
    give_points(&app, customer, 1000).await;

    claim(&app, &token, &reward, "w-1")
        .await
        .assert_problem(409, "reward-not-claimable");
    let list = app.get("/api/v1/rewards", Some(&token)).await;
    assert_eq!(list.body["items"], json!([]), "not listed before it opens");

    app.clock.advance(SignedDuration::from_mins(61));
    let won = claim(&app, &token, &reward, "w-2").await;
    assert_eq!(won.status, StatusCode::CREATED, "{:?}", won.body);
    let claimed_at: Timestamp = won.body["claimed_at"]
        .as_str()
        .expect("claimed_at")
        .parse()
        .expect("ts");
    let valid_until: Timestamp = won.body["valid_until"]
        .as_str()
        .expect("valid_until")
        .parse()
        .expect("ts");
    assert_eq!(
        valid_until.duration_since(claimed_at),
        SignedDuration::from_hours(30 * 24)
    );
    assert_eq!(
        app.get("/api/v1/rewards", Some(&token)).await.body["items"][0]["id"],
        reward.as_str()
    );

    app.clock.advance(SignedDuration::from_mins(60));
    claim(&app, &token, &reward, "w-3")
        .await
        .assert_problem(409, "reward-not-claimable");
    // A replay still answers its first result after the window closed.
    assert_eq!(claim(&app, &token, &reward, "w-2").await.body["code"], won.body["code"]);

    claim(&app, &token, &Uuid::now_v7().to_string(), "w-4")
        .await
        .assert_problem(404, "not-found");
    app.post(&format!("/api/v1/rewards/{reward}/claims"), Some(&token), json!({}))
        .await
        .assert_problem(400, "idempotency-key-required");
}

async fn staff_create_validated_rewards_and_see_stock_and_claims(app: TestApp) {
    let staff = app.staff(Role::Operator).await;
    for (field, value) in [
        ("points_price", json!(0)),
        ("total_stock", json!(0)),
        ("per_customer_limit", json!(0)),
        ("coupon_valid_days", json!(0)),
        ("titles", json!({})),
        ("titles", json!({ "fr": "Café" })),
        ("claimable_until", json!(instant(&app, -2))),
        ("claimable_from", json!("tomorrow")),
    ] {
        let mut body = reward_body(&app, 10, 1);
        body[field] = value;
        let refused = app.post("/api/v1/staff/rewards", Some(&staff), body).await;
        refused.assert_problem(422, "validation");
        assert_eq!(refused.body["field"], field, "{:?}", refused.body);
    }
    assert_eq!(app.count("rewards").await, 0, "a refused reward writes nothing");

    let reward = create_reward(&app, reward_body(&app, 10, 1)).await;
    let (customer, token) = customers(&app, 1).await.remove(0);
    give_points(&app, customer, PRICE).await;
    assert_eq!(claim(&app, &token, &reward, "s-1").await.status, StatusCode::CREATED);
    let list = app.get("/api/v1/staff/rewards", Some(&staff)).await;
    assert_eq!(list.status, StatusCode::OK);
    let item = &list.body["items"][0];
    assert_eq!(item["id"], reward.as_str());
    assert_eq!(
        item["stock"],
        json!({ "total": 10, "claimed": 1, "reserved": 0, "left": 9 })
    );
    assert_eq!(item["claims"], 1);
    assert_eq!(item["titles"]["en"], "Singles' Day coffee");
}

async fn recovery_finishes_a_posted_claim_and_releases_an_unpaid_one(app: TestApp) {
    let reward = create_reward(&app, reward_body(&app, 10, 5)).await;
    let (customer, _) = customers(&app, 1).await.remove(0);
    give_points(&app, customer, 1000).await;
    let svc = service(&app);
    let row = svc
        .store()
        .reward(reward.parse().expect("id"))
        .await
        .expect("read")
        .expect("reward");

    // Died after the points were posted: recovery issues the coupon.
    let (posted_claim, _) = svc.reserve(customer, &row, "crash-posted").await.expect("reserved");
    let hold = svc.hold(&posted_claim).await.expect("held");
    app.app.ledger.post_pending(hold.id).await.expect("posted");
    // Died with the points held: recovery voids the hold and returns the stock.
    let (held_claim, _) = svc.reserve(customer, &row, "crash-held").await.expect("reserved");
    svc.hold(&held_claim).await.expect("held");
    // Died before holding anything: recovery returns the stock.
    svc.reserve(customer, &row, "crash-early").await.expect("reserved");
    assert_eq!(stock(&app, &reward).await, (10, 0, 3));
    assert_eq!(points(&app, customer).await, (900, 800));

    // Fresh reservations belong to live requests and are left alone.
    let report = svc.recover_stale().await.expect("recovery");
    assert_eq!((report.finished, report.released), (0, 0));

    app.clock.advance(SignedDuration::from_mins(6));
    let report = svc.recover_stale().await.expect("recovery");
    assert_eq!((report.finished, report.released, report.skipped), (1, 2, 0));
    assert_eq!(stock(&app, &reward).await, (10, 1, 0));
    assert_eq!(
        points(&app, customer).await,
        (900, 900),
        "charged once, for the coupon issued"
    );
    let report = svc.recover_stale().await.expect("recovery");
    assert_eq!((report.finished, report.released), (0, 0), "settled once");

    // Retries of the died requests answer what recovery decided.
    let token2 = app
        .app
        .identity
        .open_customer_session(customer, Channel::App)
        .await
        .expect("session")
        .token;
    let finished = claim(&app, &token2, &reward, "crash-posted").await;
    assert_eq!(finished.status, StatusCode::CREATED, "{:?}", finished.body);
    assert_eq!(finished.body["code"].as_str(), Some(posted_claim.code.as_str()));
    claim(&app, &token2, &reward, "crash-early")
        .await
        .assert_problem(409, "claim-expired");
    let coupons = app.get("/api/v1/coupons", Some(&token2)).await;
    assert_eq!(coupons.body["items"].as_array().expect("items").len(), 1);
    assert_ledger_ok(&app).await;
}

async fn a_granted_prize_costs_no_points_takes_stock_once_and_respects_stock(app: TestApp) {
    let reward = create_reward(&app, reward_body(&app, 2, 1)).await;
    let reward_id: Uuid = reward.parse().expect("uuid");
    let people = customers(&app, 3).await;
    let rewards = service(&app);
    let (first, replayed) = rewards
        .grant(people[0].0, reward_id, "rule:r1:e1")
        .await
        .expect("grant");
    assert!(!replayed);
    let (again, replayed) = rewards
        .grant(people[0].0, reward_id, "rule:r1:e1")
        .await
        .expect("replay");
    assert!(replayed, "the same key issues nothing more");
    assert_eq!(first.code, again.code);
    assert_eq!(first.points_spent, 0);
    assert_eq!(points(&app, people[0].0).await.0, 0, "a prize charges no points");
    assert_eq!(stock(&app, &reward).await, (2, 1, 0));
    // The per-customer limit holds for prizes too.
    rewards
        .grant(people[0].0, reward_id, "rule:r1:e2")
        .await
        .expect_err("limit")
        .assert_slug("claim-limit-reached");
    rewards
        .grant(people[1].0, reward_id, "rule:r1:e3")
        .await
        .expect("second unit");
    let err = rewards
        .grant(people[2].0, reward_id, "rule:r1:e4")
        .await
        .expect_err("sold out");
    err.assert_slug("out-of-stock");
    assert_eq!(stock(&app, &reward).await, (2, 2, 0));
    let coupons = app.get("/api/v1/coupons", Some(&people[0].1)).await;
    assert_eq!(
        coupons.body["items"][0]["code"],
        first.code.as_str(),
        "{:?}",
        coupons.body
    );
    assert_ledger_ok(&app).await;
}

trait AssertSlug {
    fn assert_slug(&self, slug: &str);
}

impl AssertSlug for huoban_kit::ApiError {
    fn assert_slug(&self, slug: &str) {
        assert_eq!(self.slug, slug, "{self:?}");
    }
}

async fn refusals_from_the_read_are_true_and_a_voided_reservation_frees_the_last_unit(app: TestApp) {
    let reward = create_reward(&app, reward_body(&app, 1, 1)).await;
    let people = customers(&app, 2).await;
    let (holder, holder_token) = people[0].clone();
    let (late, late_token) = people[1].clone();
    give_points(&app, holder, 1000).await;
    give_points(&app, late, 1000).await;
    let svc = service(&app);
    let row = svc
        .store()
        .reward(reward.parse().expect("id"))
        .await
        .expect("read")
        .expect("reward");
    // The holder's request reserved the last unit and held its points, then died.
    let (held, _) = svc.reserve(holder, &row, "died").await.expect("reserved");
    svc.hold(&held).await.expect("held");
    assert_eq!(stock(&app, &reward).await, (1, 0, 1));
    let claims = app.count("reward_claims").await;

    // The unit is taken while it is reserved: refused, as the reservation's guard would.
    claim(&app, &late_token, &reward, "late-1")
        .await
        .assert_problem(409, "out-of-stock");
    // The holder is at their limit while their claim is in progress.
    claim(&app, &holder_token, &reward, "again")
        .await
        .assert_problem(409, "claim-limit-reached");
    assert_eq!(app.count("reward_claims").await, claims, "a refusal writes nothing");
    assert_eq!(stock(&app, &reward).await, (1, 0, 1));

    // The died request's hold runs out and recovery voids it: the unit is back.
    app.clock.advance(SignedDuration::from_mins(6));
    let report = svc.recover_stale().await.expect("recovery");
    assert_eq!((report.finished, report.released), (0, 1));
    assert_eq!(stock(&app, &reward).await, (1, 0, 0));
    assert_eq!(
        points(&app, holder).await,
        (1000, 1000),
        "the voided hold charged nothing"
    );

    // Nothing remembered the refusal: the same key now wins the unit (a refusal keeps its
    // key free).
    let won = claim(&app, &late_token, &reward, "late-1").await;
    assert_eq!(won.status, StatusCode::CREATED, "{:?}", won.body);
    assert_eq!(stock(&app, &reward).await, (1, 1, 0));
    assert_eq!(points(&app, late).await, (900, 900));
    // Sold out for good now; the holder, no longer at the limit, is told so.
    claim(&app, &holder_token, &reward, "again")
        .await
        .assert_problem(409, "out-of-stock");
    // A replay of the winning key still answers its coupon, without charging again.
    let replay = claim(&app, &late_token, &reward, "late-1").await;
    assert_eq!(replay.status, StatusCode::CREATED, "{:?}", replay.body);
    assert_eq!(replay.body["code"], won.body["code"]);
    assert_eq!(
        replay.headers.get("idempotent-replayed").map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    assert_eq!(points(&app, late).await, (900, 900));
    assert_ledger_ok(&app).await;
}

async fn tag(app: &TestApp, staff: &str, customer: Uuid, tags: Value) {
    let tagged = app
        .send(
            Method::PUT,
            &format!("/api/v1/staff/customers/{customer}/tags"),
            Some(staff),
            Some(json!({ "tags": tags })),
            &[],
        )
        .await;
    assert_eq!(tagged.status, StatusCode::NO_CONTENT, "{:?}", tagged.body);
}

fn listed(reply: &Reply) -> Vec<String> {
    reply.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_owned())
        .collect()
}

async fn a_campaign_reward_is_claimable_only_while_its_campaign_is_live_for_the_customer(app: TestApp) {
    use crate::campaigns::{campaign_body, live_campaign};
    let staff = app.staff(Role::Operator).await;
    let people = customers(&app, 2).await;
    let (vip, vip_token) = people[0].clone();
    let (other, other_token) = people[1].clone();
    give_points(&app, vip, 1000).await;
    give_points(&app, other, 1000).await;
    tag(&app, &staff, vip, json!(["vip"])).await;
    let campaign = live_campaign(&app, &staff, campaign_body(&app, "'vip' in customer.tags", 1000, 10)).await;
    let mut body = reward_body(&app, 10, 2);
    body["campaign_id"] = json!(campaign);
    let reward = create_reward(&app, body).await;
    let plain = create_reward(&app, reward_body(&app, 10, 1)).await;

    // Listed for the audience only; a reward of its own is listed for everyone.
    let mine = app.get("/api/v1/rewards", Some(&vip_token)).await;
    assert_eq!(listed(&mine), vec![plain.clone(), reward.clone()]);
    assert_eq!(mine.body["items"][1]["campaign_id"], campaign.as_str());
    assert_eq!(
        listed(&app.get("/api/v1/rewards", Some(&other_token)).await),
        vec![plain.clone()]
    );

    // Outside the audience: refused, nothing reserved or charged.
    claim(&app, &other_token, &reward, "o-1")
        .await
        .assert_problem(409, "reward-not-claimable");
    assert_eq!(stock(&app, &reward).await, (10, 0, 0));
    assert_eq!(points(&app, other).await, (1000, 1000));
    let won = claim(&app, &vip_token, &reward, "v-1").await;
    assert_eq!(won.status, StatusCode::CREATED, "{:?}", won.body);

    // A campaign scheduled for later: its reward waits for it.
    let mut later = campaign_body(&app, "", 1000, 10);
    later["starts_at"] = json!(crate::campaigns::instant(&app, 2));
    let created = app.post("/api/v1/staff/campaigns", Some(&staff), later).await;
    let later_id = created.body["id"].as_str().expect("id").to_owned();
    let scheduled = app
        .post(
            &format!("/api/v1/staff/campaigns/{later_id}/schedule"),
            Some(&staff),
            json!({}),
        )
        .await;
    assert_eq!(scheduled.body["state"], "scheduled", "{:?}", scheduled.body);
    let mut body = reward_body(&app, 10, 1);
    body["campaign_id"] = json!(later_id);
    let waiting = create_reward(&app, body).await;
    claim(&app, &other_token, &waiting, "w-1")
        .await
        .assert_problem(409, "reward-not-claimable");
    assert!(!listed(&app.get("/api/v1/rewards", Some(&other_token)).await).contains(&waiting));
    app.clock.advance(SignedDuration::from_hours(3));
    assert!(listed(&app.get("/api/v1/rewards", Some(&other_token)).await).contains(&waiting));
    let won_later = claim(&app, &other_token, &waiting, "w-1").await;
    assert_eq!(won_later.status, StatusCode::CREATED, "{:?}", won_later.body);

    // Ended by staff: no more claims, not listed; an earlier claim still replays.
    let ended = app
        .post(
            &format!("/api/v1/staff/campaigns/{campaign}/end"),
            Some(&staff),
            json!({}),
        )
        .await;
    assert_eq!(ended.status, StatusCode::OK, "{:?}", ended.body);
    claim(&app, &vip_token, &reward, "v-2")
        .await
        .assert_problem(409, "reward-not-claimable");
    assert!(!listed(&app.get("/api/v1/rewards", Some(&vip_token)).await).contains(&reward));
    assert_eq!(
        claim(&app, &vip_token, &reward, "v-1").await.body["code"],
        won.body["code"]
    );
    assert_eq!(stock(&app, &reward).await, (10, 1, 0));
    assert_eq!(points(&app, vip).await, (900, 900));
    assert_ledger_ok(&app).await;
}

async fn rewards_refuse_unknown_and_ended_campaigns_and_save_nothing(app: TestApp) {
    use crate::campaigns::{campaign_body, live_campaign};
    let staff = app.staff(Role::Operator).await;
    for unknown in [Uuid::now_v7().to_string(), "spring-festival-2027".to_owned()] {
        let mut body = reward_body(&app, 10, 1);
        body["campaign_id"] = json!(unknown);
        let refused = app.post("/api/v1/staff/rewards", Some(&staff), body).await;
        refused.assert_problem(404, "unknown-campaign");
        assert_eq!(refused.body["field"], "campaign_id");
    }
    for bad in [json!(""), json!("x".repeat(65)), json!(42)] {
        let mut body = reward_body(&app, 10, 1);
        body["campaign_id"] = bad;
        let refused = app.post("/api/v1/staff/rewards", Some(&staff), body).await;
        assert_eq!(refused.status.as_u16(), 422, "{:?}", refused.body);
    }
    let campaign = live_campaign(&app, &staff, campaign_body(&app, "", 1000, 10)).await;
    app.post(
        &format!("/api/v1/staff/campaigns/{campaign}/end"),
        Some(&staff),
        json!({}),
    )
    .await;
    let mut body = reward_body(&app, 10, 1);
    body["campaign_id"] = json!(campaign);
    let refused = app.post("/api/v1/staff/rewards", Some(&staff), body).await;
    refused.assert_problem(409, "campaign-ended");
    assert_eq!(app.count("rewards").await, 0, "a refused reward writes nothing");

    let live = live_campaign(&app, &staff, campaign_body(&app, "", 1000, 10)).await;
    let mut body = reward_body(&app, 10, 1);
    body["campaign_id"] = json!(live);
    let created = app.post("/api/v1/staff/rewards", Some(&staff), body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["campaign_id"], live.as_str());
    let list = app.get("/api/v1/staff/rewards", Some(&staff)).await;
    assert_eq!(list.body["items"][0]["campaign_id"], live.as_str());
}

/// Twenty claims of one customer at once, each with its own key, committed in shared
/// batches: the limit holds, and each refused claim leaves nothing behind.
async fn concurrent_claims_of_one_customer_never_pass_the_limit(app: TestApp) {
    let reward = create_reward(&app, reward_body(&app, 100, 3)).await;
    let (customer, _) = customers(&app, 1).await.remove(0);
    give_points(&app, customer, 10 * PRICE).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        // A session each, so the requests run side by side.
        let token = app
            .app
            .identity
            .open_customer_session(customer, Channel::App)
            .await
            .expect("session")
            .token;
        let (http, url) = (app.http.clone(), format!("{}/api/v1/rewards/{reward}/claims", app.base));
        tasks.push(tokio::spawn(async move {
            let r = http
                .post(url)
                .bearer_auth(token)
                .header("idempotency-key", format!("many-{i}"))
                .send()
                .await
                .expect("request");
            (r.status(), r.json::<Value>().await.expect("json"))
        }));
    }
    let (mut won, mut refused) = (0, 0);
    for task in tasks {
        let (status, body) = task.await.expect("task");
        match status {
            StatusCode::CREATED => won += 1,
            StatusCode::CONFLICT if body["type"] == "urn:huoban:problem:claim-limit-reached" => refused += 1,
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((won, refused), (3, 17));
    assert_eq!(stock(&app, &reward).await, (100, 3, 0));
    assert_eq!(points(&app, customer).await, (7 * PRICE, 7 * PRICE));
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM reward_claims WHERE reward_id = $1")
        .bind(&reward)
        .fetch_one(app.app.db.reader())
        .await
        .expect("claims");
    assert_eq!(rows, 3, "refused claims wrote nothing");
    assert_ledger_ok(&app).await;
}

/// Two services with a claim writer each, as two nodes have, reserving the same reward at
/// once: their batches take the stock row in turn, so the stock is never passed.
async fn two_nodes_reserving_at_once_never_pass_the_stock(app: TestApp) {
    let reward = create_reward(&app, reward_body(&app, 10, 1)).await;
    let nodes = [service(&app), service(&app)];
    let row = nodes[0]
        .store()
        .reward(reward.parse().expect("id"))
        .await
        .expect("read")
        .expect("reward");
    let crowd = customers(&app, 40).await;
    let mut tasks = Vec::new();
    for (i, (customer, _)) in crowd.into_iter().enumerate() {
        let (node, row) = (nodes[i % 2].clone(), row.clone());
        tasks.push(tokio::spawn(async move {
            node.reserve(customer, &row, &format!("node-{i}")).await
        }));
    }
    let (mut reserved, mut sold_out) = (0, 0);
    for task in tasks {
        match task.await.expect("task") {
            Ok((_, true)) => reserved += 1,
            Err(e) if e.slug == "out-of-stock" => sold_out += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((reserved, sold_out), (10, 30));
    assert_eq!(stock(&app, &reward).await, (10, 0, 10));
}
