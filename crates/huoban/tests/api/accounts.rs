//! Accounts: standard accounts opened once, transfers (own accounts and by phone) that
//! move money exactly once per idempotency key, every refusal with its problem type and
//! nothing moved, history filters and cursors, monthly statements by category, the wall
//! between customers, and staff views that are recorded.

use huoban_identity::Role;
use huoban_ledger::{AccountId, Amount, IdempotencyKey, TransferMeta, TransferRequest, Unit};
use jiff::Timestamp;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    helpers::{Reply, TestApp},
    on_both_backends,
};

on_both_backends!(
    a_customer_gets_three_standard_accounts_opened_once,
    a_transfer_between_own_accounts_moves_money_once_per_key,
    ten_concurrent_retries_of_a_transfer_move_money_once,
    a_customer_pays_another_customer_by_phone,
    every_refused_transfer_names_its_problem_and_moves_nothing,
    history_filters_by_date_direction_and_category_and_walks_by_cursor,
    a_statement_sums_a_month_by_category_in_the_customers_time_zone,
    a_customer_can_never_read_another_customers_accounts,
    staff_views_of_accounts_need_the_permission_and_are_recorded,
);

/// Registers a customer and signs in on H5; returns (customer id, token).
pub async fn customer(app: &TestApp, phone: &str) -> (Uuid, String) {
    let reg = app.register(phone, "测试客户").await;
    assert_eq!(reg.status, StatusCode::CREATED, "{:?}", reg.body);
    let id = reg.body["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("customer id");
    (id, app.sign_in(phone, "h5").await)
}

/// The customer's (current, savings, points) account ids, opened through the API.
pub async fn standard_accounts(app: &TestApp, token: &str) -> (String, String, String) {
    let list = app.get("/api/v1/accounts", Some(token)).await;
    assert_eq!(list.status, StatusCode::OK, "{:?}", list.body);
    let id = |i: usize| list.body["items"][i]["id"].as_str().expect("id").to_owned();
    (id(0), id(1), id(2))
}

/// Credits an account from the bank's clearing account, in process, filed under a
/// category (e.g. `salary`).
pub async fn fund(app: &TestApp, account: &str, amount: i64, category: &str) -> Uuid {
    let accounts = &app.app.accounts;
    let account: AccountId = account.parse::<Uuid>().expect("account id").into();
    let unit = app.app.ledger.account(account).await.expect("account").unit;
    let clearing = accounts.clearing(unit).await.expect("clearing account");
    let key = IdempotencyKey::new("test:funding", Uuid::now_v7().to_string()).expect("key");
    let request = TransferRequest::single(key, unit, clearing, account, Amount::new(amount).expect("amount"))
        .with_meta(TransferMeta {
            description: Some("Funding".into()),
            merchant_category: Some(category.into()),
            ..TransferMeta::default()
        });
    let outcome = app.app.ledger.transfer(request).await.expect("funded");
    outcome.transfer.id.as_uuid()
}

pub async fn balance(app: &TestApp, account: &str) -> i64 {
    let id: AccountId = account.parse::<Uuid>().expect("account id").into();
    app.app.ledger.balance(id).await.expect("balance").posted
}

async fn balances(app: &TestApp, accounts: &[&str]) -> Vec<i64> {
    let mut all = Vec::new();
    for account in accounts {
        all.push(balance(app, account).await);
    }
    all
}

pub async fn transfer(app: &TestApp, token: &str, key: &str, body: Value) -> Reply {
    app.send(
        Method::POST,
        "/api/v1/transfers",
        Some(token),
        Some(body),
        &[("idempotency-key", key)],
    )
    .await
}

async fn a_customer_gets_three_standard_accounts_opened_once(app: TestApp) {
    let (id, token) = customer(&app, "13900000001").await;
    let first = app.get("/api/v1/accounts", Some(&token)).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let items = first.body["items"].as_array().expect("items");
    let kinds: Vec<(&str, &str, &str)> = items
        .iter()
        .map(|a| {
            (
                a["type"].as_str().expect("type"),
                a["currency"].as_str().expect("currency"),
                a["label"].as_str().expect("label"),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("current", "CNY", "活期 Current"),
            ("savings", "CNY", "储蓄 Savings"),
            ("points", "POINTS", "积分 Points")
        ]
    );
    assert_eq!(
        items[0]["balance"],
        json!({ "posted": 0, "available": 0, "pending_out": 0, "pending_in": 0 })
    );
    let again = app.get("/api/v1/accounts", Some(&token)).await;
    assert_eq!(again.body, first.body, "a second call opens nothing new");
    let standard = app.app.accounts.ensure_standard_accounts(id).await.expect("standard");
    assert_eq!(standard.current.to_string(), items[0]["id"].as_str().expect("id"));
    assert_eq!(standard.points.to_string(), items[2]["id"].as_str().expect("id"));
    assert_eq!(app.count("ledger_accounts").await, 3);
    let clearing = app.app.accounts.clearing(Unit::Cny).await.expect("clearing");
    assert_eq!(app.app.accounts.clearing(Unit::Cny).await.expect("clearing"), clearing);
    let clearing = app.app.ledger.account(clearing).await.expect("account");
    assert_eq!(clearing.external_ref.as_deref(), Some("bank:clearing:CNY"));

    fund(&app, items[0]["id"].as_str().expect("id"), 12_345, "salary").await;
    let funded = app.get("/api/v1/accounts", Some(&token)).await;
    assert_eq!(funded.body["items"][0]["balance"]["posted"], 12_345);
    assert_eq!(funded.body["items"][0]["balance"]["available"], 12_345);
    app.get("/api/v1/accounts", None)
        .await
        .assert_problem(401, "unauthenticated");
}

async fn a_transfer_between_own_accounts_moves_money_once_per_key(app: TestApp) {
    let (_, token) = customer(&app, "13900000002").await;
    let (current, savings, _) = standard_accounts(&app, &token).await;
    fund(&app, &current, 100_000, "salary").await;
    let body = json!({
        "from_account": current, "to_account": savings, "amount": 30_000, "currency": "CNY",
        "description": "存一点", "category": "transfer"
    });
    let first = transfer(&app, &token, "move-1", body.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    assert!(first.headers.get("idempotent-replayed").is_none());
    assert_eq!(first.body["status"], "posted");
    assert_eq!(first.body["amount"], 30_000);
    assert_eq!(first.body["currency"], "CNY");
    assert_eq!(first.body["from_account"], current.as_str());
    assert_eq!(first.body["to_account"], savings.as_str());
    assert_eq!(first.body["description"], "存一点");
    assert_eq!(first.body["category"], "transfer");
    assert!(
        first.body["created_at"]
            .as_str()
            .is_some_and(|t| t.parse::<Timestamp>().is_ok())
    );
    assert_eq!(
        (balance(&app, &current).await, balance(&app, &savings).await),
        (70_000, 30_000)
    );

    let replay = transfer(&app, &token, "move-1", body.clone()).await;
    assert_eq!(replay.status, StatusCode::CREATED);
    assert_eq!(replay.body, first.body, "a replay answers the same transfer");
    assert_eq!(
        replay.headers.get("idempotent-replayed").and_then(|v| v.to_str().ok()),
        Some("true")
    );
    assert_eq!(
        (balance(&app, &current).await, balance(&app, &savings).await),
        (70_000, 30_000)
    );
    // The key lives in the ledger only: the HTTP middleware stored nothing.
    assert_eq!(app.count("idempotency_keys").await, 0);

    let mut changed = body.clone();
    changed["amount"] = json!(30_001);
    transfer(&app, &token, "move-1", changed)
        .await
        .assert_problem(422, "idempotency-key-mismatch");
    assert_eq!(
        (balance(&app, &current).await, balance(&app, &savings).await),
        (70_000, 30_000)
    );

    // A new key is a new transfer; with no category it is filed under `transfer`.
    let back = transfer(
        &app,
        &token,
        "move-2",
        json!({ "from_account": savings, "to_account": current, "amount": 5_000, "currency": "CNY" }),
    )
    .await;
    assert_eq!(back.status, StatusCode::CREATED, "{:?}", back.body);
    assert_eq!(back.body["category"], "transfer");
    assert_eq!(
        (balance(&app, &current).await, balance(&app, &savings).await),
        (75_000, 25_000)
    );
}

async fn ten_concurrent_retries_of_a_transfer_move_money_once(app: TestApp) {
    let (_, token) = customer(&app, "13900000003").await;
    let (current, savings, _) = standard_accounts(&app, &token).await;
    fund(&app, &current, 10_000, "salary").await;
    let before = app.count("ledger_transfers").await;
    let body = json!({ "from_account": current, "to_account": savings, "amount": 1_000, "currency": "CNY" });
    let replies = futures::future::join_all((0..10).map(|_| transfer(&app, &token, "same-key", body.clone()))).await;
    let ids: std::collections::BTreeSet<String> = replies
        .iter()
        .map(|r| {
            assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
            r.body["id"].as_str().expect("id").to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1, "every retry answers the one transfer");
    let fresh = replies
        .iter()
        .filter(|r| r.headers.get("idempotent-replayed").is_none())
        .count();
    assert_eq!(fresh, 1, "exactly one attempt applied");
    assert_eq!(app.count("ledger_transfers").await, before + 1);
    assert_eq!(
        (balance(&app, &current).await, balance(&app, &savings).await),
        (9_000, 1_000)
    );
}

async fn a_customer_pays_another_customer_by_phone(app: TestApp) {
    let (_, payer) = customer(&app, "13900000004").await;
    let (payee_id, payee) = customer(&app, "13900000005").await;
    let (current, _, _) = standard_accounts(&app, &payer).await;
    fund(&app, &current, 50_000, "salary").await;
    // The payee has never opened their accounts: paying them opens their current account.
    let paid = transfer(
        &app,
        &payer,
        "pay-friend",
        json!({ "from_account": current, "to_phone": "13900000005", "amount": 12_000, "currency": "CNY",
                "description": "午饭 AA", "category": "dining" }),
    )
    .await;
    assert_eq!(paid.status, StatusCode::CREATED, "{:?}", paid.body);
    let payee_current = app
        .app
        .accounts
        .ensure_standard_accounts(payee_id)
        .await
        .expect("standard")
        .current;
    assert_eq!(paid.body["to_account"], payee_current.to_string().as_str());
    assert_eq!(balance(&app, &current).await, 38_000);
    let listed = app.get("/api/v1/accounts", Some(&payee)).await;
    assert_eq!(listed.body["items"][0]["balance"]["posted"], 12_000);
    let history = app
        .get(&format!("/api/v1/accounts/{payee_current}/transactions"), Some(&payee))
        .await;
    let item = &history.body["items"][0];
    assert_eq!(item["direction"], "credit");
    assert_eq!(item["amount"], 12_000);
    assert_eq!(item["category"], "dining");
    assert_eq!(item["description"], "午饭 AA");
    assert_eq!(item["channel"], "h5", "the payer's session channel is recorded");
    assert_eq!(item["transfer_id"], paid.body["id"]);
    // The same number in E.164 form reaches the same customer.
    let again = transfer(
        &app,
        &payer,
        "pay-friend-2",
        json!({ "from_account": current, "to_phone": "+8613900000005", "amount": 1_000, "currency": "CNY" }),
    )
    .await;
    assert_eq!(again.body["to_account"], paid.body["to_account"]);
}

async fn every_refused_transfer_names_its_problem_and_moves_nothing(app: TestApp) {
    let (_, token) = customer(&app, "13900000006").await;
    let (_, other) = customer(&app, "13900000007").await;
    let (current, savings, points) = standard_accounts(&app, &token).await;
    let (theirs, _, _) = standard_accounts(&app, &other).await;
    fund(&app, &current, 10_000, "salary").await;
    fund(&app, &theirs, 10_000, "salary").await;
    let ghost = Uuid::now_v7().to_string();
    let base = json!({ "from_account": current, "to_account": savings, "amount": 100, "currency": "CNY" });
    let with = |changes: Value| {
        let mut body = base.clone();
        for (k, v) in changes.as_object().expect("object") {
            if v.is_null() {
                body.as_object_mut().expect("object").remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        body
    };
    let cases: Vec<(Value, u16, &str)> = vec![
        (with(json!({ "from_account": ghost })), 404, "unknown-account"),
        (with(json!({ "to_account": ghost })), 404, "unknown-account"),
        (with(json!({ "from_account": theirs })), 403, "not-your-account"),
        (with(json!({ "to_account": theirs })), 403, "not-your-account"),
        (
            with(json!({ "to_account": null, "to_phone": "13900009999" })),
            404,
            "unknown-payee",
        ),
        (
            with(json!({ "to_account": null, "to_phone": "not-a-phone" })),
            422,
            "validation",
        ),
        (with(json!({ "to_phone": "13900000007" })), 422, "validation"),
        (with(json!({ "amount": 0 })), 422, "invalid-amount"),
        (with(json!({ "amount": -500 })), 422, "invalid-amount"),
        (
            with(json!({ "amount": 9_223_372_036_854_775_808u64 })),
            422,
            "invalid-body",
        ),
        (with(json!({ "amount": 1.5 })), 422, "invalid-body"),
        (with(json!({ "currency": "POINTS" })), 422, "unit-mismatch"),
        (with(json!({ "to_account": points })), 422, "unit-mismatch"),
        (with(json!({ "currency": "USD" })), 422, "validation"),
        (with(json!({ "amount": 10_001 })), 409, "insufficient-funds"),
        (with(json!({ "to_account": current })), 422, "same-account"),
        (
            with(json!({ "to_account": null, "to_phone": "13900000006" })),
            422,
            "same-account",
        ),
        (with(json!({ "category": "casino" })), 422, "validation"),
        (with(json!({ "description": "x".repeat(200) })), 422, "validation"),
        (with(json!({ "surprise": true })), 422, "invalid-body"),
    ];
    let transfers = app.count("ledger_transfers").await;
    let accounts = [current.as_str(), savings.as_str(), theirs.as_str()];
    let before = balances(&app, &accounts).await;
    for (i, (body, status, slug)) in cases.into_iter().enumerate() {
        let reply = transfer(&app, &token, &format!("bad-{i}"), body.clone()).await;
        assert_eq!(reply.status.as_u16(), status, "{body}: {:?}", reply.body);
        reply.assert_problem(status, slug);
    }
    // No key at all.
    app.send(Method::POST, "/api/v1/transfers", Some(&token), Some(base.clone()), &[])
        .await
        .assert_problem(400, "idempotency-key-required");
    transfer(&app, &token, "has space", base.clone())
        .await
        .assert_problem(400, "invalid-idempotency-key");
    app.send(
        Method::POST,
        "/api/v1/transfers",
        None,
        Some(base.clone()),
        &[("idempotency-key", "k")],
    )
    .await
    .assert_problem(401, "unauthenticated");
    assert_eq!(balances(&app, &accounts).await, before, "nothing moved");
    assert_eq!(app.count("ledger_transfers").await, transfers);

    // A refused key stays free: the same key then works for a valid transfer.
    let ok = transfer(&app, &token, "bad-0", base).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{:?}", ok.body);
}

async fn history_filters_by_date_direction_and_category_and_walks_by_cursor(app: TestApp) {
    let now: Timestamp = "2026-10-20T02:00:00Z".parse().expect("ts");
    app.clock.set(now);
    let (_, token) = customer(&app, "13900000008").await;
    let (current, _, _) = standard_accounts(&app, &token).await;
    // (instant, amount, category): a credit, then debits; 2026-10-04T17:00Z is already
    // 5 October in Shanghai.
    let at = |s: &str| s.parse::<Timestamp>().expect("ts");
    app.clock.set(at("2026-10-01T02:00:00Z"));
    fund(&app, &current, 100_000, "salary").await;
    let mut spent = Vec::new();
    for (when, amount, category) in [
        ("2026-10-03T04:00:00Z", 1_000, "groceries"),
        ("2026-10-04T17:00:00Z", 2_000, "dining"),
        ("2026-10-06T04:00:00Z", 3_000, "groceries"),
        ("2026-10-08T04:00:00Z", 4_000, "transport"),
    ] {
        app.clock.set(at(when));
        let clearing = app.app.accounts.clearing(Unit::Cny).await.expect("clearing");
        let key = IdempotencyKey::new("test:spend", Uuid::now_v7().to_string()).expect("key");
        let from: AccountId = current.parse::<Uuid>().expect("uuid").into();
        app.app
            .ledger
            .transfer(
                TransferRequest::single(key, Unit::Cny, from, clearing, Amount::new(amount).expect("amount"))
                    .with_meta(TransferMeta {
                        merchant_category: Some(category.into()),
                        ..TransferMeta::default()
                    }),
            )
            .await
            .expect("spent");
        spent.push(amount);
    }
    app.clock.set(now);
    let path = format!("/api/v1/accounts/{current}/transactions");
    let amounts = |r: &Reply| -> Vec<i64> {
        r.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| i["amount"].as_i64().expect("amount"))
            .collect()
    };
    let all = app.get(&path, Some(&token)).await;
    assert_eq!(all.status, StatusCode::OK, "{:?}", all.body);
    assert_eq!(amounts(&all), [4_000, 3_000, 2_000, 1_000, 100_000], "newest first");
    assert!(all.body["next_cursor"].is_null());
    let debits = app.get(&format!("{path}?direction=debit"), Some(&token)).await;
    assert_eq!(amounts(&debits), [4_000, 3_000, 2_000, 1_000]);
    let credits = app.get(&format!("{path}?direction=credit"), Some(&token)).await;
    assert_eq!(amounts(&credits), [100_000]);
    assert_eq!(credits.body["items"][0]["category"], "salary");
    let groceries = app.get(&format!("{path}?category=groceries"), Some(&token)).await;
    assert_eq!(amounts(&groceries), [3_000, 1_000]);
    // Dates are the customer's (Asia/Shanghai) days, `to` inclusive of its day.
    let fifth = app
        .get(&format!("{path}?from=2026-10-05&to=2026-10-06"), Some(&token))
        .await;
    assert_eq!(amounts(&fifth), [3_000, 2_000]);
    let instants = app
        .get(
            &format!("{path}?from=2026-10-04T00:00:00Z&to=2026-10-04T17:00:00Z"),
            Some(&token),
        )
        .await;
    assert_eq!(amounts(&instants), Vec::<i64>::new(), "to is exclusive for an instant");
    let combined = app
        .get(
            &format!("{path}?from=2026-10-02&direction=debit&category=groceries"),
            Some(&token),
        )
        .await;
    assert_eq!(amounts(&combined), [3_000, 1_000]);

    // Walk two at a time: every posting once, in order.
    let mut walked = Vec::new();
    let mut next = format!("{path}?limit=2");
    let mut pages = 0;
    loop {
        let page = app.get(&next, Some(&token)).await;
        assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
        walked.extend(amounts(&page));
        pages += 1;
        match page.body["next_cursor"].as_str() {
            Some(cursor) => next = format!("{path}?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(walked, amounts(&all));

    for (query, status, slug) in [
        ("direction=sideways", 422, "validation"),
        ("from=yesterday", 422, "validation"),
        ("to=2026-02-30", 422, "validation"),
        ("from=2026-10-08&to=2026-10-01", 422, "validation"),
        ("category=Not%20A%20Category", 422, "validation"),
        ("limit=0", 422, "validation"),
        ("limit=201", 422, "validation"),
        ("limit=abc", 400, "invalid-query"),
        ("cursor=forged", 422, "validation"),
        ("colour=blue", 400, "invalid-query"),
    ] {
        app.get(&format!("{path}?{query}"), Some(&token))
            .await
            .assert_problem(status, slug);
    }
    app.get(
        &format!("/api/v1/accounts/{}/transactions", Uuid::now_v7()),
        Some(&token),
    )
    .await
    .assert_problem(404, "unknown-account");
}

async fn a_statement_sums_a_month_by_category_in_the_customers_time_zone(app: TestApp) {
    let at = |s: &str| s.parse::<Timestamp>().expect("ts");
    let now = at("2026-11-10T02:00:00Z");
    app.clock.set(now);
    let (_, token) = customer(&app, "13900000009").await;
    let (current, savings, _) = standard_accounts(&app, &token).await;
    app.clock.set(at("2026-09-20T02:00:00Z"));
    fund(&app, &current, 50_000, "salary").await;
    // Midnight in Shanghai is 16:00 UTC: the first stays in September, the last is November.
    app.clock.set(at("2026-09-30T15:59:00Z"));
    fund(&app, &current, 1_000, "transfer").await;
    for (when, amount, category) in [
        ("2026-09-30T16:00:00Z", 2_000, "groceries"),
        ("2026-10-05T04:00:00Z", 5_000, "dining"),
        ("2026-10-09T04:00:00Z", 3_000, "groceries"),
        ("2026-10-31T15:59:00Z", 1_500, "groceries"),
        ("2026-10-31T16:00:00Z", 9_000, "shopping"),
    ] {
        app.clock.set(at(when));
        let clearing = app.app.accounts.clearing(Unit::Cny).await.expect("clearing");
        let key = IdempotencyKey::new("test:spend", Uuid::now_v7().to_string()).expect("key");
        let from: AccountId = current.parse::<Uuid>().expect("uuid").into();
        app.app
            .ledger
            .transfer(
                TransferRequest::single(key, Unit::Cny, from, clearing, Amount::new(amount).expect("amount"))
                    .with_meta(TransferMeta {
                        merchant_category: Some(category.into()),
                        ..TransferMeta::default()
                    }),
            )
            .await
            .expect("spent");
    }
    app.clock.set(at("2026-10-12T04:00:00Z"));
    fund(&app, &current, 80_000, "salary").await;
    app.clock.set(now);
    let october = app
        .get(
            &format!("/api/v1/accounts/{current}/statement?month=2026-10"),
            Some(&token),
        )
        .await;
    assert_eq!(october.status, StatusCode::OK, "{:?}", october.body);
    let s = &october.body;
    assert_eq!(s["month"], "2026-10");
    assert_eq!(s["time_zone"], "Asia/Shanghai");
    assert_eq!(s["currency"], "CNY");
    assert_eq!(s["period_start"], "2026-09-30T16:00:00Z");
    assert_eq!(s["period_end"], "2026-10-31T16:00:00Z");
    assert_eq!(s["opening_balance"], 51_000);
    assert_eq!(s["total_in"], 80_000);
    assert_eq!(s["total_out"], 2_000 + 5_000 + 3_000 + 1_500);
    assert_eq!(s["closing_balance"], 51_000 + 80_000 - 11_500);
    assert_eq!(
        s["spending_by_category"],
        json!([
            { "category": "groceries", "amount": 6_500 },
            { "category": "dining", "amount": 5_000 }
        ])
    );
    // Without a month: the current one (November in Shanghai).
    let current_month = app
        .get(&format!("/api/v1/accounts/{current}/statement"), Some(&token))
        .await;
    assert_eq!(current_month.body["month"], "2026-11");
    assert_eq!(
        current_month.body["spending_by_category"],
        json!([{ "category": "shopping", "amount": 9_000 }])
    );
    let empty = app
        .get(
            &format!("/api/v1/accounts/{savings}/statement?month=2026-10"),
            Some(&token),
        )
        .await;
    assert_eq!(empty.body["total_out"], 0);
    assert_eq!(empty.body["spending_by_category"], json!([]));
    for bad in ["2026-13", "2026-1", "October", "2026-10-01"] {
        app.get(
            &format!("/api/v1/accounts/{current}/statement?month={bad}"),
            Some(&token),
        )
        .await
        .assert_problem(422, "validation");
    }
}

async fn a_customer_can_never_read_another_customers_accounts(app: TestApp) {
    let (_, mine) = customer(&app, "13900000010").await;
    let (_, theirs) = customer(&app, "13900000011").await;
    let (my_current, _, _) = standard_accounts(&app, &mine).await;
    let (their_current, their_savings, _) = standard_accounts(&app, &theirs).await;
    fund(&app, &their_current, 10_000, "salary").await;
    app.get(&format!("/api/v1/accounts/{their_current}/transactions"), Some(&mine))
        .await
        .assert_problem(403, "not-your-account");
    app.get(
        &format!("/api/v1/accounts/{their_current}/statement?month=2026-10"),
        Some(&mine),
    )
    .await
    .assert_problem(403, "not-your-account");
    transfer(
        &app,
        &mine,
        "steal",
        json!({ "from_account": their_current, "to_account": my_current, "amount": 1, "currency": "CNY" }),
    )
    .await
    .assert_problem(403, "not-your-account");
    transfer(
        &app,
        &mine,
        "push",
        json!({ "from_account": their_current, "to_account": their_savings, "amount": 1, "currency": "CNY" }),
    )
    .await
    .assert_problem(403, "not-your-account");
    app.post(
        "/api/v1/alerts",
        Some(&mine),
        json!({ "kind": "salary_received", "account_id": their_current }),
    )
    .await
    .assert_problem(403, "not-your-account");
    let listed = app.get("/api/v1/accounts", Some(&mine)).await;
    assert!(
        listed.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|a| a["id"] != their_current.as_str())
    );
    assert_eq!(balance(&app, &their_current).await, 10_000);
    // Customers cannot use the staff views either.
    app.get(
        &format!("/api/v1/staff/accounts/{their_current}/transactions"),
        Some(&mine),
    )
    .await
    .assert_problem(403, "staff-only");
}

async fn staff_views_of_accounts_need_the_permission_and_are_recorded(app: TestApp) {
    let (customer_id, token) = customer(&app, "13900000012").await;
    let (current, _, _) = standard_accounts(&app, &token).await;
    fund(&app, &current, 20_000, "salary").await;
    let support = app.staff(Role::SupportAgent).await;
    let auditor = app.staff(Role::Auditor).await;
    let accounts = app
        .get(
            &format!("/api/v1/staff/customers/{customer_id}/accounts"),
            Some(&support),
        )
        .await;
    assert_eq!(accounts.status, StatusCode::OK, "{:?}", accounts.body);
    assert_eq!(accounts.body["items"].as_array().map(Vec::len), Some(3));
    assert_eq!(accounts.body["items"][0]["balance"]["posted"], 20_000);
    let history = app
        .get(
            &format!("/api/v1/staff/accounts/{current}/transactions?direction=credit"),
            Some(&support),
        )
        .await;
    assert_eq!(history.status, StatusCode::OK, "{:?}", history.body);
    assert_eq!(history.body["items"][0]["amount"], 20_000);
    app.get(
        &format!("/api/v1/staff/accounts/{current}/transactions?direction=up"),
        Some(&support),
    )
    .await
    .assert_problem(422, "validation");
    app.get(
        &format!("/api/v1/staff/customers/{}/accounts", Uuid::now_v7()),
        Some(&support),
    )
    .await
    .assert_problem(404, "not-found");
    app.get(
        &format!("/api/v1/staff/accounts/{}/transactions", Uuid::now_v7()),
        Some(&support),
    )
    .await
    .assert_problem(404, "unknown-account");
    app.get(
        &format!("/api/v1/staff/customers/{customer_id}/accounts"),
        Some(&auditor),
    )
    .await
    .assert_problem(403, "permission-denied");

    let log = app
        .get(
            &format!("/api/v1/staff/access-log?customer_id={customer_id}"),
            Some(&auditor),
        )
        .await;
    let mut actions: Vec<&str> = log.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| r["action"].as_str().expect("action"))
        .collect();
    actions.sort_unstable();
    assert_eq!(actions, ["accounts.transactions", "accounts.view"], "{:?}", log.body);
}
