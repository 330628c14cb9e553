//! Adaptive security (crates/risk): risk-checked transfers (step-up, delayed settlement,
//! anomaly holds answered "was this you?"), freezes and cases, the policy, replay,
//! failed sign-in bursts and impossible travel.

use std::sync::Arc;

use huoban::App;
use huoban_identity::Role;
use huoban_kit::ApiError;
use huoban_risk::{Factor, StepUpVerifier};
use jiff::SignedDuration;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    accounts::{balance, fund, standard_accounts},
    helpers::{Reply, TestApp, second_node},
    on_both_backends,
};

/// Accepts tokens `ok-pin`, `ok-otp`, `ok-passkey` (once per challenge), refuses the rest.
#[derive(Debug, Default)]
struct TestVerifier(std::sync::Mutex<Vec<String>>);

impl StepUpVerifier for TestVerifier {
    fn consume<'a>(
        &'a self,
        _customer: Uuid,
        token: &'a str,
        purpose: &'a str,
    ) -> huoban_accounts::gate::BoxFuture<'a, Result<Factor, ApiError>> {
        Box::pin(async move {
            let mut used = self.0.lock().expect("lock");
            let key = format!("{purpose}:{token}");
            match token.strip_prefix("ok-").and_then(Factor::parse) {
                Some(f) if !used.contains(&key) => {
                    used.push(key);
                    Ok(f)
                }
                _ => Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "step-up-invalid",
                    "The step-up was not accepted",
                )),
            }
        })
    }
}

/// Signs a customer in with a device and place; returns the token.
async fn sign_in_with(app: &TestApp, phone: &str, device: &str, geo: Option<&str>) -> String {
    let mut headers = vec![("X-Device-Id", device)];
    if let Some(g) = geo {
        headers.push(("X-Geo", g));
    }
    let reply = app
        .send(
            Method::POST,
            "/api/v1/sessions",
            None,
            Some(json!({ "phone": phone, "password": "secret-pass", "channel": "app" })),
            &headers,
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    reply.body["token"].as_str().expect("token").to_owned()
}

struct Customer {
    token: String,
    current: String,
    savings: String,
}

/// A registered customer signed in on `phone-a` in Beijing, with ¥200,000 in current.
async fn rich_customer(app: &TestApp, phone: &str) -> Customer {
    assert_eq!(app.register(phone, "风控客户").await.status, StatusCode::CREATED);
    let token = sign_in_with(app, phone, "phone-a", Some("39.90,116.40")).await;
    let (current, savings, _) = standard_accounts(app, &token).await;
    fund(app, &current, 20_000_000, "salary").await;
    Customer {
        token,
        current,
        savings,
    }
}

async fn transfer(app: &TestApp, c: &Customer, key: &str, amount: i64, headers: &[(&str, &str)]) -> Reply {
    let mut all = vec![("Idempotency-Key", key)];
    all.extend_from_slice(headers);
    app.send(
        Method::POST,
        "/api/v1/transfers",
        Some(&c.token),
        Some(json!({ "from_account": c.current, "to_account": c.savings, "amount": amount, "currency": "CNY" })),
        &all,
    )
    .await
}

fn verifier(app: &TestApp) {
    app.app.risk.set_step_up_verifier(Arc::new(TestVerifier::default()));
}

/// A large transfer: step-up (PIN) first, then delayed; returns the transfer id.
async fn delayed_transfer(app: &TestApp, c: &Customer, key: &str) -> String {
    let first = transfer(app, c, key, 6_000_000, &[("X-Device-Id", "phone-a")]).await;
    first.assert_problem(403, "step-up-required");
    assert_eq!(first.body["factor"], "pin");
    let done = transfer(
        app,
        c,
        key,
        6_000_000,
        &[("X-Device-Id", "phone-a"), ("X-Step-Up-Token", "ok-pin")],
    )
    .await;
    assert_eq!(done.status, StatusCode::CREATED, "{:?}", done.body);
    assert_eq!(done.body["status"], "pending");
    assert_eq!(done.body["risk"]["handling"], "delayed");
    done.body["id"].as_str().expect("id").to_owned()
}

async fn step_up_is_asked_and_a_token_answers_it(app: TestApp) {
    let c = rich_customer(&app, "13900000101").await;
    // Small and from the known device: one tap.
    let small = transfer(&app, &c, "small-1", 10_000, &[("X-Device-Id", "phone-a")]).await;
    assert_eq!(small.status, StatusCode::CREATED, "{:?}", small.body);
    assert_eq!(small.body["status"], "posted");
    // Above the one-tap limit: a PIN is asked, with a challenge and reasons; nothing moves.
    let before = balance(&app, &c.current).await;
    let asked = transfer(&app, &c, "big-1", 600_000, &[("X-Device-Id", "phone-a")]).await;
    asked.assert_problem(403, "step-up-required");
    assert_eq!(asked.body["factor"], "pin");
    assert!(asked.body["challenge"].as_str().is_some());
    assert!(
        asked.body["reasons"]
            .as_array()
            .expect("reasons")
            .iter()
            .any(|r| r["code"] == "above_frictionless_limit")
    );
    assert_eq!(balance(&app, &c.current).await, before);
    // The server's verifier (the step-up factors) refuses a token it never issued.
    transfer(
        &app,
        &c,
        "big-1",
        600_000,
        &[("X-Device-Id", "phone-a"), ("X-Step-Up-Token", "ok-pin")],
    )
    .await
    .assert_problem(403, "step-up-token-invalid");
    verifier(&app);
    // A wrong token is refused and nothing moves.
    transfer(
        &app,
        &c,
        "big-1",
        600_000,
        &[("X-Device-Id", "phone-a"), ("X-Step-Up-Token", "forged")],
    )
    .await
    .assert_problem(403, "step-up-invalid");
    assert_eq!(balance(&app, &c.current).await, before);
    let done = transfer(
        &app,
        &c,
        "big-1",
        600_000,
        &[("X-Device-Id", "phone-a"), ("X-Step-Up-Token", "ok-pin")],
    )
    .await;
    assert_eq!(done.status, StatusCode::CREATED, "{:?}", done.body);
    assert_eq!(done.body["status"], "posted");
    assert_eq!(balance(&app, &c.current).await, before - 600_000);
    // A replay answers the same transfer and moves nothing more.
    let again = transfer(&app, &c, "big-1", 600_000, &[("X-Device-Id", "phone-a")]).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.body["id"], done.body["id"]);
    assert_eq!(balance(&app, &c.current).await, before - 600_000);
    // A malformed context is refused and nothing moves.
    transfer(&app, &c, "bad-geo", 10_000, &[("X-Geo", "north")])
        .await
        .assert_problem(422, "invalid-context");
    assert_eq!(balance(&app, &c.current).await, before - 600_000);
}

async fn new_device_and_large_transfer_is_held_until_confirmed(app: TestApp) {
    let c = rich_customer(&app, "13900000102").await;
    let before = balance(&app, &c.current).await;
    let held = transfer(&app, &c, "held-1", 800_000, &[("X-Device-Id", "phone-b")]).await;
    assert_eq!(held.status, StatusCode::CREATED, "{:?}", held.body);
    assert_eq!(held.body["status"], "pending");
    assert_eq!(held.body["risk"]["handling"], "held");
    let id = held.body["id"].as_str().expect("id").to_owned();
    // Nothing posted yet; the money is held.
    assert_eq!(balance(&app, &c.current).await, before);
    // The customer is asked in the inbox.
    let inbox = app.get("/api/v1/inbox", Some(&c.token)).await;
    let asked = inbox.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|m| m["title"] == "Was this you?")
        .cloned()
        .expect("a was-this-you message");
    assert_eq!(asked["data"]["hold_id"], id.as_str());
    assert_eq!(asked["data"]["anomaly"], "new_device_large_transfer");
    // Someone else cannot answer it.
    let other = app.customer("13900000199").await;
    app.post(&format!("/api/v1/security/holds/{id}/confirm"), Some(&other), json!({}))
        .await
        .assert_problem(404, "unknown-hold");
    let confirmed = app
        .post(
            &format!("/api/v1/security/holds/{id}/confirm"),
            Some(&c.token),
            json!({}),
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{:?}", confirmed.body);
    assert_eq!(confirmed.body["state"], "released");
    assert_eq!(balance(&app, &c.current).await, before - 800_000);
    // Answering twice is refused.
    app.post(&format!("/api/v1/security/holds/{id}/deny"), Some(&c.token), json!({}))
        .await
        .assert_problem(409, "hold-already-answered");
    assert_eq!(balance(&app, &c.current).await, before - 800_000);
    // The device is now known and trusted.
    let devices = app.get("/api/v1/security/devices", Some(&c.token)).await;
    let b = devices.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|d| d["device_id"] == "phone-b")
        .cloned()
        .expect("phone-b registered");
    assert_eq!(b["trusted"], true);
    // Untrust and remove it; unknown devices are refused.
    let untrust = app
        .send(
            Method::POST,
            "/api/v1/security/devices/phone-b/untrust",
            Some(&c.token),
            None,
            &[],
        )
        .await;
    assert_eq!(untrust.status, StatusCode::NO_CONTENT);
    let removed = app
        .send(
            Method::DELETE,
            "/api/v1/security/devices/phone-b",
            Some(&c.token),
            None,
            &[],
        )
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    app.send(
        Method::DELETE,
        "/api/v1/security/devices/phone-b",
        Some(&c.token),
        None,
        &[],
    )
    .await
    .assert_problem(404, "unknown-device");
}

async fn a_denied_hold_freezes_transfers_and_opens_a_case(app: TestApp) {
    let c = rich_customer(&app, "13900000103").await;
    let before = balance(&app, &c.current).await;
    let held = transfer(&app, &c, "held-2", 900_000, &[("X-Device-Id", "stranger")]).await;
    let id = held.body["id"].as_str().expect("id").to_owned();
    let denied = app
        .post(&format!("/api/v1/security/holds/{id}/deny"), Some(&c.token), json!({}))
        .await;
    assert_eq!(denied.status, StatusCode::OK, "{:?}", denied.body);
    assert_eq!(denied.body["state"], "voided");
    assert_eq!(balance(&app, &c.current).await, before);
    let available = app.get("/api/v1/accounts", Some(&c.token)).await.body["items"][0]["balance"]["available"].clone();
    assert_eq!(available, json!(before), "the hold was released");
    // Frozen: even a small transfer from the known device is refused, nothing moves.
    transfer(&app, &c, "after-freeze", 100, &[("X-Device-Id", "phone-a")])
        .await
        .assert_problem(403, "account-frozen");
    assert_eq!(balance(&app, &c.current).await, before);
    let trust = app.get("/api/v1/security/trust", Some(&c.token)).await;
    assert_eq!(trust.body["level"], 0);
    assert_eq!(trust.body["facts"]["frozen"], true);
    // A risk officer works the case.
    let officer = app.staff(Role::RiskOfficer).await;
    let cases = app.get("/api/v1/staff/risk/cases?state=open", Some(&officer)).await;
    assert_eq!(cases.status, StatusCode::OK, "{:?}", cases.body);
    let case = cases.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|k| k["hold_id"] == id.as_str())
        .cloned()
        .expect("a case for the hold");
    assert_eq!(case["kind"], "new_device_large_transfer");
    let case_id = case["id"].as_str().expect("case id");
    let assigned = app
        .post(
            &format!("/api/v1/staff/risk/cases/{case_id}/assign"),
            Some(&officer),
            json!({}),
        )
        .await;
    assert_eq!(assigned.status, StatusCode::OK, "{:?}", assigned.body);
    assert!(assigned.body["assignee"].is_string());
    app.post(
        &format!("/api/v1/staff/risk/cases/{case_id}/assign"),
        Some(&officer),
        json!({ "assignee": Uuid::now_v7() }),
    )
    .await
    .assert_problem(422, "unknown-staff");
    app.post(
        &format!("/api/v1/staff/risk/cases/{case_id}/notes"),
        Some(&officer),
        json!({ "body": "  " }),
    )
    .await
    .assert_problem(422, "validation");
    let noted = app
        .post(
            &format!("/api/v1/staff/risk/cases/{case_id}/notes"),
            Some(&officer),
            json!({ "body": "Called the customer; phone stolen." }),
        )
        .await;
    assert_eq!(noted.body["notes"].as_array().expect("notes").len(), 1);
    let resolved = app
        .post(
            &format!("/api/v1/staff/risk/cases/{case_id}/resolve"),
            Some(&officer),
            json!({ "resolution": "New SIM issued", "unfreeze": true }),
        )
        .await;
    assert_eq!(resolved.status, StatusCode::OK, "{:?}", resolved.body);
    assert_eq!(resolved.body["state"], "resolved");
    app.post(
        &format!("/api/v1/staff/risk/cases/{case_id}/resolve"),
        Some(&officer),
        json!({ "resolution": "again" }),
    )
    .await
    .assert_problem(409, "case-resolved");
    app.get(&format!("/api/v1/staff/risk/cases/{}", Uuid::now_v7()), Some(&officer))
        .await
        .assert_problem(404, "unknown-case");
    // Unfrozen: small transfers work again.
    let ok = transfer(&app, &c, "after-unfreeze", 100, &[("X-Device-Id", "phone-a")]).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{:?}", ok.body);
}

async fn a_delayed_transfer_settles_once_and_survives_a_restart(app: TestApp) {
    verifier(&app);
    let c = rich_customer(&app, "13900000104").await;
    let before = balance(&app, &c.current).await;
    let id = delayed_transfer(&app, &c, "delayed-1").await;
    assert_eq!(
        balance(&app, &c.current).await,
        before,
        "nothing posted before the delay"
    );
    // Not due yet: nothing settles.
    assert_eq!(app.app.risk.settle_due().await.expect("tick"), 0);
    // A new server on the same database, as after a restart, settles it once due.
    let restarted = App::start((*app.app.config).clone(), Arc::new(app.clock.clone()))
        .await
        .expect("restart");
    app.clock.advance(SignedDuration::from_mins(121));
    // The first server's own background tick may win the race; either way it is once.
    let settled = restarted.risk.settle_due().await.expect("tick");
    let again = app.app.risk.settle_due().await.expect("tick") + restarted.risk.settle_due().await.expect("tick");
    assert!(settled + again <= 1, "settles exactly once ({settled}, {again})");
    assert_eq!(balance(&app, &c.current).await, before - 6_000_000);
    let holds = app.get("/api/v1/security/holds", Some(&c.token)).await;
    let hold = holds.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|h| h["id"] == id.as_str())
        .cloned()
        .expect("hold listed");
    assert_eq!(hold["state"], "settled");
    // Too late to cancel.
    app.post(&format!("/api/v1/transfers/{id}/cancel"), Some(&c.token), json!({}))
        .await
        .assert_problem(409, "transfer-already-settled");
    assert_eq!(balance(&app, &c.current).await, before - 6_000_000);
}

async fn a_cancelled_delayed_transfer_never_settles(app: TestApp) {
    verifier(&app);
    let c = rich_customer(&app, "13900000105").await;
    let before = balance(&app, &c.current).await;
    let id = delayed_transfer(&app, &c, "delayed-2").await;
    let cancelled = app
        .post(&format!("/api/v1/transfers/{id}/cancel"), Some(&c.token), json!({}))
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{:?}", cancelled.body);
    assert_eq!(cancelled.body["state"], "cancelled");
    app.post(&format!("/api/v1/transfers/{id}/cancel"), Some(&c.token), json!({}))
        .await
        .assert_problem(409, "transfer-already-cancelled");
    app.clock.advance(SignedDuration::from_hours(3));
    assert_eq!(app.app.risk.settle_due().await.expect("tick"), 0);
    assert_eq!(balance(&app, &c.current).await, before);
    // Bad ids: not a hold of yours.
    app.post(
        &format!("/api/v1/transfers/{}/cancel", Uuid::now_v7()),
        Some(&c.token),
        json!({}),
    )
    .await
    .assert_problem(404, "unknown-hold");
    app.post("/api/v1/transfers/not-a-uuid/cancel", Some(&c.token), json!({}))
        .await
        .assert_problem(404, "not-found");
}

async fn impossible_travel_is_held(app: TestApp) {
    let c = rich_customer(&app, "13900000106").await;
    let before = balance(&app, &c.current).await;
    // Signed in in Beijing; ten minutes later a transfer from Shanghai.
    app.clock.advance(SignedDuration::from_mins(10));
    let held = transfer(
        &app,
        &c,
        "travel-1",
        10_000,
        &[("X-Device-Id", "phone-a"), ("X-Geo", "31.23,121.47")],
    )
    .await;
    assert_eq!(held.status, StatusCode::CREATED, "{:?}", held.body);
    assert_eq!(held.body["risk"]["handling"], "held");
    assert!(held.body["risk"]["reason"].as_str().expect("reason").contains("km"));
    assert_eq!(balance(&app, &c.current).await, before);
    let holds = app.get("/api/v1/security/holds", Some(&c.token)).await;
    assert_eq!(holds.body["items"][0]["anomaly"], "impossible_travel");
}

async fn a_burst_of_failed_sign_ins_asks_was_this_you(app: TestApp) {
    let token = app.customer("13900000107").await;
    for _ in 0..5 {
        app.post(
            "/api/v1/sessions",
            None,
            json!({ "phone": "13900000107", "password": "wrong-pass-1" }),
        )
        .await
        .assert_problem(401, "invalid-credentials");
    }
    let holds = app.get("/api/v1/security/holds", Some(&token)).await;
    let items = holds.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "one hold for one burst: {items:?}");
    assert_eq!(items[0]["kind"], "sign_in");
    assert_eq!(items[0]["anomaly"], "failed_sign_in_burst");
    let inbox = app.get("/api/v1/inbox", Some(&token)).await;
    assert!(
        inbox.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|m| m["title"] == "Was this you?")
    );
    // A sixth failure raises no second hold.
    app.post(
        "/api/v1/sessions",
        None,
        json!({ "phone": "13900000107", "password": "wrong-pass-1" }),
    )
    .await
    .assert_problem(401, "invalid-credentials");
    let id = items[0]["id"].as_str().expect("id");
    assert_eq!(
        app.get("/api/v1/security/holds", Some(&token)).await.body["items"]
            .as_array()
            .expect("items")
            .len(),
        1
    );
    let denied = app
        .post(&format!("/api/v1/security/holds/{id}/deny"), Some(&token), json!({}))
        .await;
    assert_eq!(denied.status, StatusCode::OK, "{:?}", denied.body);
    let (current, savings, _) = standard_accounts(&app, &token).await;
    fund(&app, &current, 1_000, "salary").await;
    app.send(
        Method::POST,
        "/api/v1/transfers",
        Some(&token),
        Some(json!({ "from_account": current, "to_account": savings, "amount": 100, "currency": "CNY" })),
        &[("Idempotency-Key", "frozen-1")],
    )
    .await
    .assert_problem(403, "account-frozen");
}

async fn officers_tune_the_policy_and_replay_decisions(app: TestApp) {
    let officer = app.staff(Role::RiskOfficer).await;
    let current = app.get("/api/v1/staff/risk/policy", Some(&officer)).await;
    assert_eq!(current.status, StatusCode::OK);
    assert_eq!(current.body["version"], 0);
    assert_eq!(current.body["policy"]["high_value_threshold"], 5_000_000);
    assert_eq!(current.body["policy"]["delay_minutes"], 120);
    let mut policy: Value = current.body["policy"].clone();
    // Invalid: thresholds out of order, a zero delay. Each field is named; nothing stored.
    let mut bad = policy.clone();
    bad["otp_at"] = json!(1);
    bad["delay_minutes"] = json!(0);
    let refused = app
        .send(Method::PUT, "/api/v1/staff/risk/policy", Some(&officer), Some(bad), &[])
        .await;
    refused.assert_problem(422, "invalid-policy");
    let fields: Vec<&str> = refused.body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert!(
        fields.contains(&"otp_at") && fields.contains(&"delay_minutes"),
        "{fields:?}"
    );
    let mut unknown = policy.clone();
    unknown["surprise"] = json!(1);
    app.send(
        Method::PUT,
        "/api/v1/staff/risk/policy",
        Some(&officer),
        Some(unknown),
        &[],
    )
    .await
    .assert_problem(422, "invalid-body");
    assert_eq!(app.count("risk_policies").await, 0);
    // An operator may not touch it.
    let operator = app.staff(Role::Operator).await;
    app.get("/api/v1/staff/risk/policy", Some(&operator))
        .await
        .assert_problem(403, "permission-denied");

    // A decision under the default policy: a PIN for ¥6,000.
    let c = rich_customer(&app, "13900000108").await;
    let asked = transfer(&app, &c, "replay-1", 600_000, &[("X-Device-Id", "phone-a")]).await;
    asked.assert_problem(403, "step-up-required");
    let decision = asked.body["challenge"].as_str().expect("challenge").to_owned();
    let shown = app
        .get(&format!("/api/v1/staff/risk/decisions/{decision}"), Some(&officer))
        .await;
    assert_eq!(shown.status, StatusCode::OK, "{:?}", shown.body);
    assert_eq!(shown.body["outcome"], "step_up");
    assert_eq!(shown.body["policy_version"], 0);
    assert_eq!(shown.body["inputs"]["amount"], 600_000);
    // Raise the one-tap limit; replaying under the current policy now allows it, under
    // the stored one it still asks.
    policy["frictionless_limit"] = json!(1_000_000);
    let saved = app
        .send(
            Method::PUT,
            "/api/v1/staff/risk/policy",
            Some(&officer),
            Some(policy),
            &[],
        )
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{:?}", saved.body);
    assert_eq!(saved.body["version"], 1);
    let now = app
        .post(
            &format!("/api/v1/staff/risk/decisions/{decision}/replay"),
            Some(&officer),
            json!({ "policy": "current" }),
        )
        .await;
    assert_eq!(now.status, StatusCode::OK, "{:?}", now.body);
    assert_eq!(now.body["policy_version"], 1);
    assert_eq!(now.body["replayed"]["outcome"], "allow");
    assert_eq!(now.body["same_outcome"], false);
    let then = app
        .post(
            &format!("/api/v1/staff/risk/decisions/{decision}/replay"),
            Some(&officer),
            json!({}),
        )
        .await;
    assert_eq!(then.body["policy_version"], 0);
    assert_eq!(then.body["same_outcome"], true);
    assert_eq!(then.body["replayed"], then.body["original"]);
    app.post(
        &format!("/api/v1/staff/risk/decisions/{decision}/replay"),
        Some(&officer),
        json!({ "policy": "tomorrow" }),
    )
    .await
    .assert_problem(422, "validation");
    app.post(
        &format!("/api/v1/staff/risk/decisions/{}/replay", Uuid::now_v7()),
        Some(&officer),
        json!({}),
    )
    .await
    .assert_problem(404, "unknown-decision");
    let listed = app
        .get(
            &format!(
                "/api/v1/staff/risk/decisions?customer_id={}",
                shown.body["customer_id"].as_str().expect("id")
            ),
            Some(&officer),
        )
        .await;
    assert!(!listed.body["items"].as_array().expect("items").is_empty());
    // The new limit is in force: the same ¥6,000 goes through in one tap.
    let ok = transfer(&app, &c, "replay-2", 600_000, &[("X-Device-Id", "phone-a")]).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{:?}", ok.body);
    // Trust is visible to the customer and to officers.
    let trust = app.get("/api/v1/security/trust", Some(&c.token)).await;
    assert_eq!(trust.status, StatusCode::OK);
    assert_eq!(trust.body["frictionless_limit"], 1_000_000);
    let customer_id = shown.body["customer_id"].as_str().expect("id");
    let staff_view = app
        .get(
            &format!("/api/v1/staff/risk/customers/{customer_id}/trust"),
            Some(&officer),
        )
        .await;
    assert_eq!(staff_view.body["level"], trust.body["level"]);
}

async fn medium_and_high_tier_assessments(app: TestApp) {
    let c = rich_customer(&app, "13900000109").await;
    let wealth = app
        .send(
            Method::POST,
            "/api/v1/security/assessments",
            Some(&c.token),
            Some(json!({ "operation": "wealth_purchase", "amount": 100_000 })),
            &[("X-Device-Id", "phone-a")],
        )
        .await;
    assert_eq!(wealth.status, StatusCode::CREATED, "{:?}", wealth.body);
    assert_eq!(wealth.body["decision"]["tier"], "medium");
    assert_eq!(wealth.body["decision"]["confirm"], true);
    let lost = app
        .post(
            "/api/v1/security/assessments",
            Some(&c.token),
            json!({ "operation": "report_card_lost" }),
        )
        .await;
    assert_eq!(lost.body["decision"]["tier"], "high");
    app.post(
        "/api/v1/security/assessments",
        Some(&c.token),
        json!({ "operation": "transfer", "amount": 1 }),
    )
    .await
    .assert_problem(422, "validation");
    app.post(
        "/api/v1/security/assessments",
        Some(&c.token),
        json!({ "operation": "wealth_purchase", "amount": -5 }),
    )
    .await
    .assert_problem(422, "validation");
}

on_both_backends!(
    a_large_transfer_goes_through_with_a_real_pin_step_up,
    step_up_is_asked_and_a_token_answers_it,
    new_device_and_large_transfer_is_held_until_confirmed,
    a_denied_hold_freezes_transfers_and_opens_a_case,
    a_delayed_transfer_settles_once_and_survives_a_restart,
    a_cancelled_delayed_transfer_never_settles,
    impossible_travel_is_held,
    a_burst_of_failed_sign_ins_asks_was_this_you,
    officers_tune_the_policy_and_replay_decisions,
    medium_and_high_tier_assessments,
);

/// The whole path with the server's own factors: risk asks for a PIN, the customer proves
/// it for the purpose the problem names, and the retry with that token moves the money
/// once; the token does not work twice, nor for another challenge.
async fn a_large_transfer_goes_through_with_a_real_pin_step_up(app: TestApp) {
    let c = rich_customer(&app, "13900000109").await;
    let pin = app
        .send(
            Method::PUT,
            "/api/v1/security/pin",
            Some(&c.token),
            Some(json!({ "pin": "274913" })),
            &[],
        )
        .await;
    assert_eq!(pin.status, StatusCode::NO_CONTENT, "{:?}", pin.body);
    let before = balance(&app, &c.current).await;
    let asked = transfer(&app, &c, "real-1", 600_000, &[("X-Device-Id", "phone-a")]).await;
    asked.assert_problem(403, "step-up-required");
    let purpose = asked.body["purpose"].as_str().expect("purpose").to_owned();
    assert!(purpose.starts_with("risk-"), "{purpose}");

    let proved = |purpose: String| {
        let app = &app;
        let token = c.token.clone();
        async move {
            let ch = app
                .post(
                    "/api/v1/step-up/challenges",
                    Some(&token),
                    json!({ "purpose": purpose, "factor": "pin" }),
                )
                .await;
            assert_eq!(ch.status, StatusCode::CREATED, "{:?}", ch.body);
            let id = ch.body["id"].as_str().expect("id").to_owned();
            let ok = app
                .post(
                    &format!("/api/v1/step-up/challenges/{id}/verify"),
                    Some(&token),
                    json!({ "pin": "274913" }),
                )
                .await;
            assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
            ok.body["step_up_token"].as_str().expect("token").to_owned()
        }
    };
    // A token proved for another purpose does not answer this challenge; nothing moves.
    let other = proved("transfer".to_owned()).await;
    transfer(
        &app,
        &c,
        "real-1",
        600_000,
        &[("X-Device-Id", "phone-a"), ("X-Step-Up-Token", &other)],
    )
    .await
    .assert_problem(403, "step-up-token-wrong-purpose");
    assert_eq!(balance(&app, &c.current).await, before);

    let token = proved(purpose).await;
    let done = transfer(
        &app,
        &c,
        "real-1",
        600_000,
        &[("X-Device-Id", "phone-a"), ("X-Step-Up-Token", &token)],
    )
    .await;
    assert_eq!(done.status, StatusCode::CREATED, "{:?}", done.body);
    assert_eq!(balance(&app, &c.current).await, before - 600_000);
    // The same token on a new large transfer is spent.
    let next = transfer(&app, &c, "real-2", 600_000, &[("X-Device-Id", "phone-a")]).await;
    next.assert_problem(403, "step-up-required");
    transfer(
        &app,
        &c,
        "real-2",
        600_000,
        &[("X-Device-Id", "phone-a"), ("X-Step-Up-Token", &token)],
    )
    .await
    .assert_problem(409, "step-up-token-used");
    assert_eq!(balance(&app, &c.current).await, before - 600_000);

    // The decisions and every step-up attempt are in the audit trail, without personal data.
    let auditor = app.staff(Role::Auditor).await;
    let decisions = app
        .get("/api/v1/staff/audit?action=risk.decision", Some(&auditor))
        .await;
    assert_eq!(decisions.status, StatusCode::OK, "{:?}", decisions.body);
    let items = decisions.body["items"].as_array().expect("items");
    assert!(
        items
            .iter()
            .any(|e| e["details"]["outcome"] == "step_up" && e["details"]["factor"] == "pin"),
        "{items:?}"
    );
    let attempts = app
        .get("/api/v1/staff/audit?action=step_up.verify", Some(&auditor))
        .await;
    let attempts = attempts.body["items"].as_array().expect("items").clone();
    assert!(attempts.iter().any(|e| e["details"]["outcome"] == "ok"), "{attempts:?}");
    let consumed = app
        .get("/api/v1/staff/audit?action=step_up.consume", Some(&auditor))
        .await;
    let consumed = consumed.body["items"].as_array().expect("items").clone();
    assert!(
        consumed
            .iter()
            .any(|e| e["details"]["outcome"] == "step-up-token-wrong-purpose"),
        "a refused attempt is audited: {consumed:?}"
    );
    assert!(!decisions.body.to_string().contains("13900000109"));
}

crate::for_each_backend!(
    a_second_node_never_decides_on_facts_the_first_changed,
    another_nodes_change_reaches_a_node_within_the_facts_max_age,
);

/// Waits until the decisions of these keys are written (allowed transfers' records are
/// written by the group-commit recorder just after the answer).
async fn recorded(app: &TestApp, keys: &[&str]) {
    let list = keys.iter().map(|k| format!("'{k}'")).collect::<Vec<_>>().join(", ");
    for _ in 0..200 {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM risk_decisions WHERE op_key IN ({list})"
        )))
        .fetch_one(app.app.db.reader())
        .await
        .expect("count");
        if n == keys.len() as i64 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("decisions of {keys:?} not written");
}

/// Each node keeps customers' risk facts in memory between transfers. With
/// `risk.facts_max_age_ms = 0` every transfer reads the customer's stamp (one small read
/// instead of the facts): whatever one node changes — a device removed, transfers frozen
/// after a denied hold — the other sees at its very next transfer.
async fn a_second_node_never_decides_on_facts_the_first_changed(backend: huoban_kit::Backend) {
    let Some(app) = crate::helpers::spawn_app_with(backend, |c| c.risk.facts_max_age_ms = 0).await else {
        return;
    };
    let (node2, base2, _stop) = second_node(&app).await;
    let c = rich_customer(&app, "13900000121").await;
    let payee_phone = "13900000122";
    assert_eq!(app.register(payee_phone, "收款人").await.status, StatusCode::CREATED);
    let on_node2 = |method: Method, path: &str, key: Option<&str>, body: Option<Value>, headers: &[(&str, &str)]| {
        let mut request = app.http.request(method, format!("{base2}{path}")).bearer_auth(&c.token);
        if let Some(k) = key {
            request = request.header("Idempotency-Key", k);
        }
        if let Some(b) = body {
            request = request.json(&b);
        }
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        async move {
            let r = request.send().await.expect("node 2 answers");
            (r.status(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let own = |amount: i64| json!({ "from_account": c.current, "to_account": c.savings, "amount": amount, "currency": "CNY" });
    let phone_a = [("X-Device-Id", "phone-a")];

    // Both nodes have decided for the customer; node 1 answers its second one from memory.
    let (status, body) = on_node2(
        Method::POST,
        "/api/v1/transfers",
        Some("n2-1"),
        Some(own(100)),
        &phone_a,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body:?}");
    recorded(&app, &["n2-1"]).await;
    for key in ["n1-1", "n1-2"] {
        let r = transfer(&app, &c, key, 100, &phone_a).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    let stats = app.app.risk.facts_stats();
    assert!(stats.from_memory >= 1, "node 1 kept the customer's facts: {stats:?}");
    assert_eq!(stats.fresh, 0, "max age 0: every transfer read the stamp");
    // (Node 1's records, which teach the device again, are written before node 2 acts.)
    recorded(&app, &["n1-1", "n1-2"]).await;

    // Node 2 forgets the device. On node 1, paying a new payee from it is now a new device
    // too (30 + 15 points): a PIN is asked. With node 1's old facts it would go in one tap.
    let (status, body) = on_node2(Method::DELETE, "/api/v1/security/devices/phone-a", None, None, &[]).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body:?}");
    let misses_before = app.app.risk.facts_stats().read_again;
    let to_payee = app
        .send(
            Method::POST,
            "/api/v1/transfers",
            Some(&c.token),
            Some(json!({ "from_account": c.current, "to_phone": payee_phone, "amount": 100, "currency": "CNY" })),
            &[("Idempotency-Key", "n1-new-payee"), ("X-Device-Id", "phone-a")],
        )
        .await;
    to_payee.assert_problem(403, "step-up-required");
    let codes: Vec<&str> = to_payee.body["reasons"]
        .as_array()
        .expect("reasons")
        .iter()
        .filter_map(|r| r["code"].as_str())
        .collect();
    assert!(
        codes.contains(&"new_device") && codes.contains(&"new_payee"),
        "{codes:?}"
    );
    assert!(
        app.app.risk.facts_stats().read_again > misses_before,
        "node 1 read the facts again"
    );

    // Node 1 is warm again (an own-account transfer re-learns the device)…
    let warm = transfer(&app, &c, "n1-3", 100, &phone_a).await;
    assert_eq!(warm.status, StatusCode::CREATED, "{:?}", warm.body);
    recorded(&app, &["n1-3"]).await;
    // …when the customer denies a held transfer on node 2: transfers are frozen there…
    let (status, held) = on_node2(
        Method::POST,
        "/api/v1/transfers",
        Some("n2-held"),
        Some(own(900_000)),
        &[("X-Device-Id", "stranger")],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{held:?}");
    assert_eq!(held["risk"]["handling"], "held", "{held:?}");
    let hold = held["id"].as_str().expect("hold id");
    let (status, body) = on_node2(
        Method::POST,
        &format!("/api/v1/security/holds/{hold}/deny"),
        None,
        Some(json!({})),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
    // …and on node 1 at its very next transfer, with nothing moved.
    let before = balance(&app, &c.current).await;
    transfer(&app, &c, "n1-after-freeze", 100, &phone_a)
        .await
        .assert_problem(403, "account-frozen");
    assert_eq!(balance(&app, &c.current).await, before);
    // Node 2 agrees, and both nodes' records are all there.
    let (status, body) = on_node2(
        Method::POST,
        "/api/v1/transfers",
        Some("n2-after"),
        Some(own(100)),
        &phone_a,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body:?}");
    assert_eq!(body["type"], "urn:huoban:problem:account-frozen");
    drop(node2);
}

/// With the default `risk.facts_max_age_ms`, a node decides a plain allow on the facts it
/// keeps for that long without reading anything; another node's freeze reaches it once the
/// time has passed. Anything but a plain allow is confirmed against the database even
/// inside the window: a retry of a transfer another node held gets the same answer.
async fn another_nodes_change_reaches_a_node_within_the_facts_max_age(backend: huoban_kit::Backend) {
    let Some(app) = crate::helpers::spawn_app(backend).await else {
        return;
    };
    let max_age = SignedDuration::from_millis(app.app.config.risk.facts_max_age_ms as i64);
    assert!(max_age.is_positive(), "the default keeps facts for a while");
    let (node2, base2, _stop) = second_node(&app).await;
    let c = rich_customer(&app, "13900000131").await;
    let phone_a = [("X-Device-Id", "phone-a")];
    for key in ["w-1", "w-2", "w-3"] {
        let r = transfer(&app, &c, key, 100, &phone_a).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    let stats = app.app.risk.facts_stats();
    assert!(stats.fresh >= 1, "decided without reading the stamp: {stats:?}");
    recorded(&app, &["w-1", "w-2", "w-3"]).await;

    // Node 2 holds a large transfer from a new device…
    let own = json!({ "from_account": c.current, "to_account": c.savings, "amount": 900_000, "currency": "CNY" });
    let on_node2 =
        |path: String, key: Option<&'static str>, body: Value, headers: Vec<(&'static str, &'static str)>| {
            let mut request = app
                .http
                .post(format!("{base2}{path}"))
                .bearer_auth(&c.token)
                .json(&body);
            if let Some(k) = key {
                request = request.header("Idempotency-Key", k);
            }
            for (k, v) in headers {
                request = request.header(k, v);
            }
            async move {
                let r = request.send().await.expect("node 2 answers");
                (r.status(), r.json::<Value>().await.unwrap_or(Value::Null))
            }
        };
    let (status, held) = on_node2(
        "/api/v1/transfers".into(),
        Some("w-held"),
        own.clone(),
        vec![("X-Device-Id", "stranger")],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{held:?}");
    assert_eq!(held["risk"]["handling"], "held", "{held:?}");
    // …and the retry on node 1, inside the window, is the same held transfer.
    let retry = transfer(&app, &c, "w-held", 900_000, &[("X-Device-Id", "stranger")]).await;
    assert_eq!(retry.status, StatusCode::CREATED, "{:?}", retry.body);
    assert_eq!(retry.body["id"], held["id"]);
    assert_eq!(retry.body["risk"]["handling"], "held", "{:?}", retry.body);
    assert_eq!(retry.body["status"], "pending");

    // The customer denies it on node 2: transfers are frozen. Once the max age has passed
    // (whatever node 1 kept), node 1 refuses too, and nothing moves.
    let hold = held["id"].as_str().expect("hold id").to_owned();
    let (status, body) = on_node2(format!("/api/v1/security/holds/{hold}/deny"), None, json!({}), vec![]).await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
    app.clock.advance(max_age + SignedDuration::from_millis(1));
    let before = balance(&app, &c.current).await;
    transfer(&app, &c, "w-after-freeze", 100, &phone_a)
        .await
        .assert_problem(403, "account-frozen");
    assert_eq!(balance(&app, &c.current).await, before);
    // A kept snapshot never refuses on its own: node 1 still keeps the frozen facts (read
    // just now) when an officer lifts the freeze on node 2, and its next transfer goes.
    let officer = app.staff(Role::RiskOfficer).await;
    let cases = app.get("/api/v1/staff/risk/cases?state=open", Some(&officer)).await;
    let case = cases.body["items"][0]["id"].as_str().expect("a case").to_owned();
    let resolved = app
        .http
        .post(format!("{base2}/api/v1/staff/risk/cases/{case}/resolve"))
        .bearer_auth(&officer)
        .json(&json!({ "resolution": "It was the customer after all", "unfreeze": true }))
        .send()
        .await
        .expect("node 2 answers");
    assert_eq!(resolved.status(), StatusCode::OK);
    let fresh_before = app.app.risk.facts_stats().fresh;
    let after = transfer(&app, &c, "w-after-unfreeze", 100, &phone_a).await;
    assert_eq!(after.status, StatusCode::CREATED, "{:?}", after.body);
    assert!(
        app.app.risk.facts_stats().fresh > fresh_before,
        "node 1 had the frozen facts in memory"
    );
    assert_eq!(balance(&app, &c.current).await, before - 100);
    drop(node2);
}
