//! Behaviour events: a mixed batch answered event by event in order with only the valid
//! ones stored, resends answered `duplicate` without storing more, an oversized batch
//! refused whole, ledger postings recorded as events for both sides of a transfer, my
//! events listed newest first with a cursor, and customers only.

use std::time::Duration;

use huoban_identity::Role;
use huoban_kit::Clock;
use jiff::SignedDuration;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    accounts::{customer, fund, standard_accounts, transfer},
    helpers::TestApp,
    on_both_backends,
};

on_both_backends!(
    a_mixed_batch_is_answered_in_order_and_only_valid_events_are_stored,
    a_resent_batch_is_duplicate_and_stores_nothing_more,
    a_malformed_batch_is_refused_whole_and_stores_nothing,
    a_transfer_shows_up_as_events_for_both_customers,
    my_events_are_listed_newest_first_with_a_cursor,
    events_are_for_signed_in_customers_only,
    the_feed_gives_every_event_once_in_order_and_cursors_move_once,
    check_ins_and_finished_questionnaires_are_server_events_clients_cannot_forge,
    a_posting_the_listener_missed_is_swept_into_events_once,
);

fn event(app: &TestApp, id: &str, kind: &str) -> Value {
    let at = app.clock.now() - SignedDuration::from_secs(60);
    json!({ "id": id, "type": kind, "channel": "mini_program", "at": at.to_string(),
            "properties": { "product": "fund-007" } })
}

async fn ingest(app: &TestApp, token: &str, events: Vec<Value>) -> crate::helpers::Reply {
    app.post("/api/v1/events", Some(token), json!({ "events": events }))
        .await
}

fn statuses(body: &Value) -> Vec<&str> {
    body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["status"].as_str().expect("status"))
        .collect()
}

async fn a_mixed_batch_is_answered_in_order_and_only_valid_events_are_stored(app: TestApp) {
    let (_, token) = customer(&app, "13900000101").await;
    let future = (app.clock.now() + SignedDuration::from_secs(3600)).to_string();
    let mut bad_type = event(&app, "e-2", "Page View");
    bad_type["channel"] = json!("h5");
    let mut bad_time = event(&app, "e-3", "share");
    bad_time["at"] = json!(future);
    let mut too_big = event(&app, "e-4", "green_trip");
    too_big["properties"] = json!({ "blob": "x".repeat(5_000) });
    let reply = ingest(
        &app,
        &token,
        vec![
            event(&app, "e-1", "page_view"),
            bad_type,
            bad_time,
            too_big,
            event(&app, "e-5", "product_view"),
            json!("not an event"),
            event(&app, "e-1", "page_view"),
        ],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(
        statuses(&reply.body),
        [
            "accepted",
            "rejected",
            "rejected",
            "rejected",
            "accepted",
            "rejected",
            "duplicate"
        ]
    );
    let results = &reply.body["results"];
    let problem = |i: usize| results[i]["problem"]["type"].as_str().unwrap_or("-").to_owned();
    assert_eq!(problem(1), "urn:huoban:problem:invalid-event-type");
    assert_eq!(problem(2), "urn:huoban:problem:invalid-event-time");
    assert_eq!(problem(3), "urn:huoban:problem:properties-too-large");
    assert_eq!(problem(5), "urn:huoban:problem:invalid-event");
    assert_eq!(results[1]["problem"]["field"], "type");
    assert_eq!(results[1]["id"], "e-2");
    assert_eq!(results[4]["index"], 4);
    assert_eq!(
        (
            &reply.body["accepted"],
            &reply.body["duplicates"],
            &reply.body["rejected"]
        ),
        (&json!(2), &json!(1), &json!(4))
    );
    assert_eq!(app.count("behaviour_events").await, 2);

    let mine = app.get("/api/v1/events", Some(&token)).await;
    assert_eq!(mine.status, StatusCode::OK, "{:?}", mine.body);
    let items = mine.body["items"].as_array().expect("items");
    let ids: Vec<&str> = items.iter().map(|e| e["id"].as_str().expect("id")).collect();
    assert_eq!(ids, ["e-5", "e-1"], "newest first");
    assert_eq!(items[0]["type"], "product_view");
    assert_eq!(items[0]["channel"], "mini_program");
    assert_eq!(items[0]["properties"], json!({ "product": "fund-007" }));
}

async fn a_resent_batch_is_duplicate_and_stores_nothing_more(app: TestApp) {
    let (_, token) = customer(&app, "13900000102").await;
    let batch: Vec<Value> = (0..3).map(|i| event(&app, &format!("r-{i}"), "page_view")).collect();
    let first = ingest(&app, &token, batch.clone()).await;
    assert_eq!(statuses(&first.body), ["accepted"; 3], "{:?}", first.body);
    let again = ingest(&app, &token, batch.clone()).await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
    assert_eq!(statuses(&again.body), ["duplicate"; 3]);
    assert_eq!(app.count("behaviour_events").await, 3);
    // Another customer's events with the same ids are theirs, not duplicates.
    let (_, other) = customer(&app, "13900000103").await;
    let theirs = ingest(&app, &other, batch).await;
    assert_eq!(statuses(&theirs.body), ["accepted"; 3]);
    assert_eq!(app.count("behaviour_events").await, 6);
}

async fn a_malformed_batch_is_refused_whole_and_stores_nothing(app: TestApp) {
    let (_, token) = customer(&app, "13900000104").await;
    let too_many: Vec<Value> = (0..1_001)
        .map(|i| {
            json!({ "id": format!("m-{i}"), "type": "page_view", "channel": "h5",
                         "at": "2026-01-01T00:00:00Z" })
        })
        .collect();
    ingest(&app, &token, too_many)
        .await
        .assert_problem(422, "invalid-batch");
    ingest(&app, &token, vec![]).await.assert_problem(422, "invalid-batch");
    app.post(
        "/api/v1/events",
        Some(&token),
        json!({ "events": [event(&app, "x", "share")], "extra": true }),
    )
    .await
    .assert_problem(422, "invalid-body");
    app.send(
        reqwest::Method::POST,
        "/api/v1/events",
        Some(&token),
        None,
        &[("content-type", "application/json")],
    )
    .await
    .assert_problem(400, "malformed-json");
    assert_eq!(app.count("behaviour_events").await, 0);
    // Exactly 1,000 is a batch.
    let full: Vec<Value> = (0..1_000)
        .map(|i| event(&app, &format!("f-{i}"), "page_view"))
        .collect();
    let reply = ingest(&app, &token, full).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body["accepted"]);
    assert_eq!(reply.body["accepted"], 1_000);
    assert_eq!(app.count("behaviour_events").await, 1_000);
}

/// Polls my events until one of `kind` appears, for up to a second.
async fn ledger_event(app: &TestApp, token: &str, kind: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    loop {
        let mine = app.get("/api/v1/events", Some(token)).await;
        assert_eq!(mine.status, StatusCode::OK, "{:?}", mine.body);
        if let Some(found) = mine.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|e| e["type"] == kind)
        {
            return found.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {kind} event within a second: {:?}",
            mine.body
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn a_transfer_shows_up_as_events_for_both_customers(app: TestApp) {
    let (_, payer) = customer(&app, "13900000105").await;
    let (_, payee) = customer(&app, "13900000106").await;
    let (current, _, _) = standard_accounts(&app, &payer).await;
    let (payee_current, _, _) = standard_accounts(&app, &payee).await;
    let funding = fund(&app, &current, 50_000, "salary").await;
    let deposit = ledger_event(&app, &payer, "deposit").await;
    assert_eq!(deposit["id"], format!("ledger:{funding}:{current}"));
    assert_eq!(deposit["channel"], "ledger");
    assert_eq!(deposit["properties"]["amount"], 50_000);

    let paid = transfer(
        &app,
        &payer,
        "events-pay",
        json!({ "from_account": current, "to_phone": "13900000106", "amount": 12_000, "currency": "CNY" }),
    )
    .await;
    assert_eq!(paid.status, StatusCode::CREATED, "{:?}", paid.body);
    let transfer_id = paid.body["id"].as_str().expect("transfer id").to_owned();
    let out = ledger_event(&app, &payer, "transfer_out").await;
    assert_eq!(out["id"], format!("ledger:{transfer_id}:{current}"));
    assert_eq!(out["properties"]["amount"], 12_000);
    let into = ledger_event(&app, &payee, "transfer_in").await;
    assert_eq!(into["id"], format!("ledger:{transfer_id}:{payee_current}"));
    assert_eq!(into["properties"]["amount"], 12_000);
    assert_eq!(into["properties"]["transfer_id"], transfer_id.as_str());

    // Hearing the transfer again records nothing more.
    let before = app.count("behaviour_events").await;
    let stored = app
        .app
        .ledger
        .get_transfer(transfer_id.parse().expect("transfer id"))
        .await
        .expect("transfer");
    let state = app.app.engage_state();
    let service = huoban_engage::events::service::EventsService::new(&state);
    let fresh = service
        .handle_posted(&[std::sync::Arc::new(stored)])
        .await
        .expect("handled");
    assert_eq!(fresh, 0);
    assert_eq!(app.count("behaviour_events").await, before);

    // Clients cannot forge ledger events.
    let mut forged = event(&app, "ledger:x:y", "page_view");
    let reply = ingest(&app, &payer, vec![forged.clone()]).await;
    assert_eq!(statuses(&reply.body), ["rejected"]);
    forged["id"] = json!("fine");
    forged["type"] = json!("deposit");
    let reply = ingest(&app, &payer, vec![forged]).await;
    assert_eq!(statuses(&reply.body), ["rejected"]);
}

async fn my_events_are_listed_newest_first_with_a_cursor(app: TestApp) {
    let (_, token) = customer(&app, "13900000107").await;
    let (_, other) = customer(&app, "13900000108").await;
    let batch: Vec<Value> = (0..5).map(|i| event(&app, &format!("p-{i}"), "page_view")).collect();
    ingest(&app, &token, batch).await;
    ingest(&app, &other, vec![event(&app, "not-mine", "share")]).await;
    let first = app.get("/api/v1/events?limit=3", Some(&token)).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let ids = |b: &Value| -> Vec<String> {
        b["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|e| e["id"].as_str().expect("id").to_owned())
            .collect()
    };
    assert_eq!(ids(&first.body), ["p-4", "p-3", "p-2"]);
    let cursor = first.body["next_cursor"].as_str().expect("cursor");
    let second = app
        .get(&format!("/api/v1/events?limit=3&cursor={cursor}"), Some(&token))
        .await;
    assert_eq!(ids(&second.body), ["p-1", "p-0"]);
    assert!(second.body["next_cursor"].is_null());
    app.get("/api/v1/events?cursor=forged", Some(&token))
        .await
        .assert_problem(422, "validation");
    app.get("/api/v1/events?limit=0", Some(&token))
        .await
        .assert_problem(422, "validation");
}

async fn events_are_for_signed_in_customers_only(app: TestApp) {
    let batch = json!({ "events": [event(&app, "a", "page_view")] });
    app.post("/api/v1/events", None, batch.clone())
        .await
        .assert_problem(401, "unauthenticated");
    app.get("/api/v1/events", None)
        .await
        .assert_problem(401, "unauthenticated");
    let staff = app.staff(Role::Operator).await;
    app.post("/api/v1/events", Some(&staff), batch)
        .await
        .assert_problem(403, "customers-only");
    app.get("/api/v1/events", Some(&staff))
        .await
        .assert_problem(403, "customers-only");
    assert_eq!(app.count("behaviour_events").await, 0);
}

async fn the_feed_gives_every_event_once_in_order_and_cursors_move_once(app: TestApp) {
    use huoban_engage::events::feed::EventFeed;
    let (_, a) = customer(&app, "13900000111").await;
    let (_, b) = customer(&app, "13900000112").await;
    ingest(
        &app,
        &a,
        (0..3).map(|i| event(&app, &format!("a-{i}"), "page_view")).collect(),
    )
    .await;
    ingest(&app, &b, vec![event(&app, "b-0", "share")]).await;
    ingest(&app, &a, vec![event(&app, "a-0", "page_view")]).await; // a duplicate: not in the feed again

    let feed = EventFeed::new(app.app.db.clone(), "test-consumer");
    assert_eq!(
        feed.position().await.expect("ok"),
        0,
        "a new consumer starts at the beginning"
    );
    let events = feed.read(0, 100).await.expect("ok");
    let ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids, ["a-0", "a-1", "a-2", "b-0"], "commit order, each once");
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(events[3].properties["product"], "fund-007");

    let now = app.clock.now();
    let mut tx = app.app.db.begin().await.expect("ok");
    assert!(feed.advance(&mut tx, 0, events[1].seq, now).await.expect("ok"));
    tx.commit().await.expect("ok");
    assert_eq!(feed.position().await.expect("ok"), events[1].seq);
    let rest = feed.read(events[1].seq, 100).await.expect("ok");
    assert_eq!(rest.len(), 2);

    // A second node that read from the same position loses the race and must roll back.
    let mut tx = app.app.db.begin().await.expect("ok");
    assert!(
        !feed.advance(&mut tx, 0, events[3].seq, now).await.expect("ok"),
        "stale from 0"
    );
    tx.rollback().await.expect("ok");
    let mut tx = app.app.db.begin().await.expect("ok");
    assert!(
        feed.advance(&mut tx, events[1].seq, events[3].seq, now)
            .await
            .expect("ok")
    );
    tx.commit().await.expect("ok");
    let mut tx = app.app.db.begin().await.expect("ok");
    assert!(
        !feed
            .advance(&mut tx, events[1].seq, events[3].seq, now)
            .await
            .expect("ok"),
        "moved already"
    );
    tx.rollback().await.expect("ok");
    assert_eq!(feed.position().await.expect("ok"), events[3].seq);

    // Starting at the end skips history, and leaves an existing cursor alone.
    let late = EventFeed::new(app.app.db.clone(), "late-consumer");
    late.start_at_end(now).await.expect("ok");
    assert_eq!(late.position().await.expect("ok"), events[3].seq);
    feed.start_at_end(now).await.expect("ok");
    assert_eq!(feed.position().await.expect("ok"), events[3].seq);
}

async fn check_ins_and_finished_questionnaires_are_server_events_clients_cannot_forge(app: TestApp) {
    let (_, token) = customer(&app, "13900000113").await;
    let reply = app.post("/api/v1/checkins", Some(&token), json!({})).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    let session = app
        .post("/api/v1/questionnaires/risk-appetite/sessions", Some(&token), json!({}))
        .await;
    assert_eq!(session.status, StatusCode::CREATED, "{:?}", session.body);
    let id = session.body["session_id"].as_str().expect("session id").to_owned();
    let mut question = session.body["question"].clone();
    while !question.is_null() {
        let option = question["options"][0]["id"].as_str().expect("option").to_owned();
        let reply = app
            .post(
                &format!("/api/v1/questionnaires/sessions/{id}/answers"),
                Some(&token),
                json!({ "question_id": question["id"], "option_id": option }),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        question = reply.body["question"].clone();
    }
    let list = app.get("/api/v1/events", Some(&token)).await;
    let kinds: Vec<(&str, &str)> = list.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| (e["type"].as_str().expect("ok"), e["channel"].as_str().expect("ok")))
        .collect();
    assert!(kinds.contains(&("check_in", "server")), "{kinds:?}");
    assert!(kinds.contains(&("questionnaire_completed", "server")), "{kinds:?}");
    let done = list.body["items"]
        .as_array()
        .expect("ok")
        .iter()
        .find(|e| e["type"] == "questionnaire_completed")
        .expect("ok");
    assert_eq!(done["properties"]["questionnaire_id"], "risk-appetite");
    assert!(done["properties"]["suitability"].as_str().expect("ok").starts_with('C'));

    // A client cannot send the server's types.
    let forged = ingest(&app, &token, vec![event(&app, "f-1", "check_in")]).await;
    assert_eq!(forged.body["results"][0]["status"], "rejected", "{:?}", forged.body);
    assert_eq!(
        forged.body["results"][0]["problem"]["type"],
        "urn:huoban:problem:invalid-event-type"
    );
}

/// A posting committed but never announced — a crash between the ledger's commit and its
/// announcement — still becomes events: the sweep reads the ledger's record of postings
/// once they are older than its margin, and records each missed event once (a sweep that
/// did not record it fails this test: nothing else would). A posting the listener heard is
/// not recorded again.
async fn a_posting_the_listener_missed_is_swept_into_events_once(app: TestApp) {
    use huoban_engage::events::service::{EventsService, SWEEP_MARGIN};
    use huoban_ledger::{Amount, IdempotencyKey, TransferRequest, Unit};
    let (_, token) = customer(&app, "13900000121").await;
    let (current, _, _) = standard_accounts(&app, &token).await;
    let heard = fund(&app, &current, 10_000, "heard").await;
    ledger_event(&app, &token, "deposit").await;
    let state = app.app.engage_state();
    let sweeper = EventsService::new(&state);
    sweeper.sweep_postings().await.expect("a first sweep sets the mark");

    // Posted and committed, never announced.
    let clearing = app.app.accounts.clearing(Unit::Cny).await.expect("clearing");
    let request = TransferRequest::single(
        IdempotencyKey::new("test-crash", "unannounced").expect("key"),
        Unit::Cny,
        clearing,
        current.parse().expect("account id"),
        Amount::new(2_500).expect("amount"),
    );
    let mut tx = app.app.db.begin().await.expect("tx");
    let posted = app
        .app
        .ledger
        .transfer_in(&mut tx, vec![request])
        .await
        .expect("posted");
    tx.commit().await.expect("commit");
    let missed = posted.results[0].as_ref().expect("transfer").transfer.id.to_string();
    let event_id = format!("ledger:{missed}:{current}");
    let has = |id: String| {
        let app = &app;
        async move {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM behaviour_events WHERE event_id = $1")
                .bind(id)
                .fetch_one(app.app.db.reader())
                .await
                .expect("count")
        }
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(has(event_id.clone()).await, 0, "nobody announced it");

    // Not yet older than the margin: the sweep leaves it.
    assert_eq!(sweeper.sweep_postings().await.expect("sweep"), 0);
    assert_eq!(has(event_id.clone()).await, 0);
    app.clock.advance(SWEEP_MARGIN + SignedDuration::from_secs(1));
    // The server's own sweeper (every 10 s) may take it first; either way, once.
    let recorded = sweeper.sweep_postings().await.expect("sweep");
    assert!(recorded <= 1, "{recorded}");
    assert_eq!(has(event_id.clone()).await, 1, "the missed deposit");
    let mine = app.get("/api/v1/events", Some(&token)).await;
    let deposits: Vec<&Value> = mine.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["type"] == "deposit")
        .collect();
    assert_eq!(deposits.len(), 2, "{:?}", mine.body);
    assert!(deposits.iter().any(|e| e["properties"]["amount"] == 2_500));
    // Again: nothing more, and the heard posting was never doubled.
    assert_eq!(sweeper.sweep_postings().await.expect("sweep"), 0);
    assert_eq!(has(event_id).await, 1);
    assert_eq!(has(format!("ledger:{heard}:{current}")).await, 1);
}
