//! Balance alerts: subscriptions are validated, listed and deleted; a posted transfer
//! that meets a rule leaves one inbox message (in the customer's language) within a
//! second, and a replayed transfer leaves no second one.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    accounts::{customer, fund, standard_accounts, transfer},
    helpers::TestApp,
    on_both_backends,
};

on_both_backends!(
    a_balance_alert_lands_in_the_inbox_within_a_second_and_only_once,
    salary_and_large_payment_alerts_speak_the_customers_language,
    alerts_are_validated_listed_and_deleted,
);

/// Balance alert messages in the customer's inbox, newest first.
async fn alert_messages(app: &TestApp, token: &str) -> Vec<Value> {
    let inbox = app.get("/api/v1/inbox", Some(token)).await;
    assert_eq!(inbox.status, StatusCode::OK, "{:?}", inbox.body);
    inbox.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|m| m["kind"] == "balance_alert")
        .cloned()
        .collect()
}

/// Polls the inbox until it holds `count` alert messages, failing after the deadline.
async fn wait_for_alerts(app: &TestApp, token: &str, count: usize, within: Duration) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let messages = alert_messages(app, token).await;
        if messages.len() >= count {
            return messages;
        }
        assert!(
            Instant::now() < deadline,
            "expected {count} alert(s) within {within:?}, have {messages:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_balance_alert_lands_in_the_inbox_within_a_second_and_only_once(app: TestApp) {
    let (_, token) = customer(&app, "13600000001").await;
    let (current, savings, _) = standard_accounts(&app, &token).await;
    let created = app
        .post(
            "/api/v1/alerts",
            Some(&token),
            json!({ "kind": "balance_below", "account_id": current, "threshold": 50_000 }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let alert_id = created.body["id"].as_str().expect("id").to_owned();
    // A credit never crosses a threshold downwards.
    fund(&app, &current, 100_000, "salary").await;
    let body = json!({ "from_account": current, "to_account": savings, "amount": 60_000, "currency": "CNY" });
    let moved = transfer(&app, &token, "drop-below", body.clone()).await;
    assert_eq!(moved.status, StatusCode::CREATED, "{:?}", moved.body);
    let messages = wait_for_alerts(&app, &token, 1, Duration::from_secs(1)).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let m = &messages[0];
    assert_eq!(m["title"], "余额提醒");
    assert!(
        m["body"]
            .as_str()
            .is_some_and(|b| b.contains("¥500.00") && b.contains("¥400.00")),
        "{m:?}"
    );
    assert_eq!(m["data"]["alert_id"], alert_id.as_str());
    assert_eq!(m["data"]["alert_kind"], "balance_below");
    assert_eq!(m["data"]["transfer_id"], moved.body["id"]);
    assert_eq!(m["data"]["balance"], 40_000);
    assert_eq!(m["data"]["threshold"], 50_000);
    assert_eq!(m["data"]["amount"], 60_000);
    assert_eq!(m["data"]["currency"], "CNY");

    // A replay moves nothing and tells nothing; a further debit while already below the
    // threshold is not a crossing.
    let replay = transfer(&app, &token, "drop-below", body).await;
    assert_eq!(
        replay.headers.get("idempotent-replayed").and_then(|v| v.to_str().ok()),
        Some("true")
    );
    let lower = transfer(
        &app,
        &token,
        "lower-still",
        json!({ "from_account": current, "to_account": savings, "amount": 1_000, "currency": "CNY" }),
    )
    .await;
    assert_eq!(lower.status, StatusCode::CREATED);
    // Hearing the same transfer twice leaves one message (the inbox dedupe key).
    let posted = app
        .app
        .ledger
        .get_transfer(
            moved.body["id"]
                .as_str()
                .and_then(|s| s.parse::<Uuid>().ok())
                .expect("id")
                .into(),
        )
        .await
        .expect("transfer");
    let again = app
        .app
        .accounts
        .handle_posted(&[std::sync::Arc::new(posted)])
        .await
        .expect("handled");
    assert_eq!(again, 0, "the same transfer is delivered once");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(alert_messages(&app, &token).await.len(), 1);

    // Back above, then below again: a new crossing, a new message.
    fund(&app, &current, 20_000, "transfer").await;
    let cross = transfer(
        &app,
        &token,
        "cross-again",
        json!({ "from_account": current, "to_account": savings, "amount": 20_000, "currency": "CNY" }),
    )
    .await;
    assert_eq!(cross.status, StatusCode::CREATED);
    let messages = wait_for_alerts(&app, &token, 2, Duration::from_secs(1)).await;
    assert_eq!(messages[0]["data"]["transfer_id"], cross.body["id"]);
    assert_eq!(messages[0]["data"]["balance"], 39_000);
}

async fn salary_and_large_payment_alerts_speak_the_customers_language(app: TestApp) {
    let (_, token) = customer(&app, "13600000002").await;
    let (_, friend) = customer(&app, "13600000003").await;
    let patched = app.patch("/api/v1/me", Some(&token), json!({ "locale": "en" })).await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    let (current, _, _) = standard_accounts(&app, &token).await;
    for alert in [
        json!({ "kind": "salary_received", "account_id": current }),
        json!({ "kind": "debit_above", "account_id": current, "amount": 100_000 }),
    ] {
        let created = app.post("/api/v1/alerts", Some(&token), alert).await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    }
    // Money that is not salary says nothing.
    fund(&app, &current, 5_000, "transfer").await;
    fund(&app, &current, 800_000, "salary").await;
    let messages = wait_for_alerts(&app, &token, 1, Duration::from_secs(1)).await;
    assert_eq!(messages[0]["title"], "Salary received");
    assert_eq!(
        messages[0]["body"],
        "Your salary of ¥8,000.00 arrived in your 活期 Current account."
    );
    assert_eq!(messages[0]["data"]["amount"], 800_000);

    // A payment of exactly the limit is not above it; one fen more is.
    let pay = |key: &'static str, amount: i64| {
        let (app, token, current) = (&app, token.clone(), current.clone());
        async move {
            let r = transfer(
                app,
                &token,
                key,
                json!({ "from_account": current, "to_phone": "13600000003", "amount": amount, "currency": "CNY" }),
            )
            .await;
            assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
            r
        }
    };
    pay("at-limit", 100_000).await;
    let big = pay("above-limit", 100_001).await;
    let messages = wait_for_alerts(&app, &token, 2, Duration::from_secs(1)).await;
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(messages[0]["title"], "Large payment");
    assert_eq!(messages[0]["data"]["transfer_id"], big.body["id"]);
    assert_eq!(messages[0]["data"]["limit"], 100_000);
    // The payee has no alerts and hears nothing.
    assert!(alert_messages(&app, &friend).await.is_empty());
}

async fn alerts_are_validated_listed_and_deleted(app: TestApp) {
    let (_, token) = customer(&app, "13600000004").await;
    let (_, other) = customer(&app, "13600000005").await;
    let (current, savings, points) = standard_accounts(&app, &token).await;
    for (body, status, slug) in [
        (
            json!({ "kind": "balance_below", "account_id": current }),
            422,
            "validation",
        ),
        (
            json!({ "kind": "balance_below", "account_id": current, "threshold": -1 }),
            422,
            "validation",
        ),
        (
            json!({ "kind": "balance_below", "account_id": current, "amount": 5 }),
            422,
            "validation",
        ),
        (
            json!({ "kind": "debit_above", "account_id": current, "threshold": 5 }),
            422,
            "validation",
        ),
        (
            json!({ "kind": "salary_received", "account_id": current, "amount": 5 }),
            422,
            "validation",
        ),
        (
            json!({ "kind": "lottery_won", "account_id": current }),
            422,
            "validation",
        ),
        (json!({ "kind": "salary_received" }), 422, "invalid-body"),
        (
            json!({ "kind": "salary_received", "account_id": Uuid::now_v7() }),
            404,
            "unknown-account",
        ),
    ] {
        app.post("/api/v1/alerts", Some(&token), body)
            .await
            .assert_problem(status, slug);
    }
    assert_eq!(app.count("account_alerts").await, 0, "nothing was saved");

    // Creation honours Idempotency-Key through the server's middleware.
    let body = json!({ "kind": "balance_below", "account_id": current, "threshold": 50_000 });
    let first = app
        .send(
            Method::POST,
            "/api/v1/alerts",
            Some(&token),
            Some(body.clone()),
            &[("idempotency-key", "alert-1")],
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    assert_eq!(first.body["kind"], "balance_below");
    assert_eq!(first.body["threshold"], 50_000);
    assert_eq!(first.body["account_id"], current.as_str());
    let replay = app
        .send(
            Method::POST,
            "/api/v1/alerts",
            Some(&token),
            Some(body.clone()),
            &[("idempotency-key", "alert-1")],
        )
        .await;
    assert_eq!(replay.status, StatusCode::CREATED);
    assert_eq!(replay.body, first.body);
    assert_eq!(
        replay.headers.get("idempotent-replayed").and_then(|v| v.to_str().ok()),
        Some("true")
    );
    // Without a key, the same alert again is a conflict.
    app.post("/api/v1/alerts", Some(&token), body)
        .await
        .assert_problem(409, "alert-exists");
    for alert in [
        json!({ "kind": "debit_above", "account_id": savings, "amount": 100_000 }),
        json!({ "kind": "salary_received", "account_id": current }),
        json!({ "kind": "balance_below", "account_id": points, "threshold": 100 }),
    ] {
        assert_eq!(
            app.post("/api/v1/alerts", Some(&token), alert).await.status,
            StatusCode::CREATED
        );
    }
    let listed = app.get("/api/v1/alerts", Some(&token)).await;
    let kinds: Vec<&str> = listed.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|a| a["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(
        kinds,
        ["balance_below", "debit_above", "salary_received", "balance_below"]
    );
    assert_eq!(
        app.get("/api/v1/alerts", Some(&other)).await.body["items"],
        json!([]),
        "another customer sees none of them"
    );

    let id = first.body["id"].as_str().expect("id");
    // Another customer cannot delete it, and learns nothing about it.
    app.send(Method::DELETE, &format!("/api/v1/alerts/{id}"), Some(&other), None, &[])
        .await
        .assert_problem(404, "unknown-alert");
    let deleted = app
        .send(Method::DELETE, &format!("/api/v1/alerts/{id}"), Some(&token), None, &[])
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    app.send(Method::DELETE, &format!("/api/v1/alerts/{id}"), Some(&token), None, &[])
        .await
        .assert_problem(404, "unknown-alert");
    assert_eq!(
        app.get("/api/v1/alerts", Some(&token)).await.body["items"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
}
