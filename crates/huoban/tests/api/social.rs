//! Shared helpers of the invite and team challenge tests.

use huoban_identity::Role;
use huoban_kit::Clock;
use jiff::SignedDuration;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::TestApp;

pub fn instant(app: &TestApp, offset_hours: i64) -> String {
    (app.clock.now() + SignedDuration::from_hours(offset_hours)).to_string()
}

/// Runs both event-feed consumers until neither finds new events (the server's own
/// consumers run too; the cursor makes every event count once whoever applies it).
pub async fn drain(app: &TestApp) {
    let state = app.app.social_state();
    let invites = huoban_social::invites::service::InvitesService::new(state.clone());
    let teams = huoban_social::teams::service::TeamsService::new(state);
    for _ in 0..50 {
        let a = invites.consume().await.expect("invites consumer");
        let b = teams.consume().await.expect("teams consumer");
        if a == 0 && b == 0 {
            return;
        }
    }
    panic!("the consumers never caught up");
}

/// The customer's posted points balance.
pub async fn points(app: &TestApp, token: &str) -> i64 {
    let accounts = app.get("/api/v1/accounts", Some(token)).await;
    accounts.body["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .find(|a| a["type"] == "points")
                .and_then(|a| a["balance"]["posted"].as_i64())
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

/// The customer's inbox messages of `kind`.
pub async fn messages(app: &TestApp, token: &str, kind: &str) -> Vec<Value> {
    let inbox = app.get("/api/v1/inbox", Some(token)).await;
    assert_eq!(inbox.status, StatusCode::OK, "{:?}", inbox.body);
    inbox.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|m| m["kind"] == kind)
        .cloned()
        .collect()
}

pub async fn operator(app: &TestApp) -> String {
    app.staff(Role::Operator).await
}

pub async fn assert_ledger_balanced(app: &TestApp) {
    let report = app.app.ledger.invariants().await.expect("invariants");
    assert!(report.is_ok(), "{:?}", report.violations);
}

pub fn green_trip(id: &str, at: &str) -> Value {
    json!({ "id": id, "type": "green_trip", "channel": "app", "at": at, "properties": { "mode": "bike" } })
}
