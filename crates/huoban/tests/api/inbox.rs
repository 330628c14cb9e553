//! The inbox: messages delivered in-process, listed newest first with cursors, unread
//! counts, marking read (all or nothing), strict input, and the live SSE stream.

use std::time::Duration;

use huoban_inbox::NewMessage;
use jiff::SignedDuration;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{helpers::TestApp, on_both_backends};

on_both_backends!(
    delivered_messages_are_listed_newest_first_with_their_content,
    cursor_pagination_walks_every_message_exactly_once,
    the_unread_filter_and_count_follow_marking_read,
    delivering_twice_with_one_dedupe_key_leaves_one_message,
    a_customer_never_sees_or_marks_another_customers_messages,
    bad_mark_read_requests_are_refused,
    only_signed_in_customers_reach_the_inbox,
    the_stream_pushes_a_delivered_message_within_a_second,
    the_stream_takes_the_token_from_the_query_for_event_stream_requests,
    the_stream_refuses_bad_tokens_with_a_problem,
    a_stream_only_carries_its_own_customers_messages,
);

const STREAM: &str = "/api/v1/inbox/stream";

/// A signed-in customer: token and id.
async fn customer(app: &TestApp, phone: &str) -> (String, Uuid) {
    let token = app.customer(phone).await;
    let me = app.get("/api/v1/me", Some(&token)).await;
    assert_eq!(me.status, StatusCode::OK, "{:?}", me.body);
    let id = me.body["id"].as_str().expect("id").parse().expect("uuid");
    (token, id)
}

/// Delivers a message in-process and returns its id.
async fn deliver(app: &TestApp, customer: Uuid, title: &str, dedupe_key: Option<&str>) -> Option<Uuid> {
    let delivered = app
        .app
        .inbox
        .deliver(NewMessage {
            customer_id: customer,
            kind: "balance_alert".into(),
            title: title.into(),
            body: format!("{title} body"),
            link: Some("/accounts/1".into()),
            data: json!({ "title": title, "amount": "12.50" }),
            dedupe_key: dedupe_key.map(str::to_owned),
        })
        .await
        .expect("delivered");
    delivered.map(|m| m.id)
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|m| m["id"].as_str().expect("id").to_owned())
        .collect()
}

async fn unread(app: &TestApp, token: &str) -> i64 {
    let reply = app.get("/api/v1/inbox/unread-count", Some(token)).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.body["unread"].as_i64().expect("unread")
}

async fn delivered_messages_are_listed_newest_first_with_their_content(app: TestApp) {
    let (token, me) = customer(&app, "13800138100").await;
    let mut delivered = Vec::new();
    for title in ["first", "second", "third"] {
        delivered.push(deliver(&app, me, title, None).await.expect("new").to_string());
        app.clock.advance(SignedDuration::from_secs(1));
    }
    let list = app.get("/api/v1/inbox", Some(&token)).await;
    assert_eq!(list.status, StatusCode::OK, "{:?}", list.body);
    delivered.reverse();
    assert_eq!(ids(&list.body), delivered, "newest first");
    assert_eq!(list.body["next_cursor"], Value::Null);
    let newest = &list.body["items"][0];
    assert_eq!(newest["title"], "third");
    assert_eq!(newest["body"], "third body");
    assert_eq!(newest["kind"], "balance_alert");
    assert_eq!(newest["link"], "/accounts/1");
    assert_eq!(newest["data"], json!({ "title": "third", "amount": "12.50" }));
    assert_eq!(newest["read"], false);
    let times: Vec<&str> = list.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|m| m["created_at"].as_str().expect("created_at"))
        .collect();
    assert!(times.windows(2).all(|w| w[0] > w[1]), "{times:?}");
}

async fn cursor_pagination_walks_every_message_exactly_once(app: TestApp) {
    let (token, me) = customer(&app, "13800138101").await;
    let mut delivered = Vec::new();
    for n in 0..7 {
        delivered.push(
            deliver(&app, me, &format!("m{n}"), None)
                .await
                .expect("new")
                .to_string(),
        );
    }
    delivered.reverse();
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut path = "/api/v1/inbox?limit=3".to_owned();
    loop {
        let page = app.get(&path, Some(&token)).await;
        assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
        pages += 1;
        let items = ids(&page.body);
        assert!(items.len() <= 3);
        seen.extend(items);
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/inbox?limit=3&cursor={cursor}"),
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, delivered, "every message once, newest first");
    app.get("/api/v1/inbox?cursor=forged", Some(&token))
        .await
        .assert_problem(422, "validation");
    app.get("/api/v1/inbox?limit=0", Some(&token))
        .await
        .assert_problem(422, "validation");
}

async fn the_unread_filter_and_count_follow_marking_read(app: TestApp) {
    let (token, me) = customer(&app, "13800138102").await;
    let mut all = Vec::new();
    for n in 0..4 {
        all.push(deliver(&app, me, &format!("m{n}"), None).await.expect("new"));
    }
    assert_eq!(unread(&app, &token).await, 4);
    let marked = app
        .post(
            "/api/v1/inbox/read",
            Some(&token),
            json!({ "message_ids": [all[0], all[2]] }),
        )
        .await;
    assert_eq!(marked.status, StatusCode::OK, "{:?}", marked.body);
    assert_eq!(marked.body["marked"], 2);
    assert_eq!(unread(&app, &token).await, 2);
    // Marking again changes nothing.
    let again = app
        .post("/api/v1/inbox/read", Some(&token), json!({ "message_ids": [all[0]] }))
        .await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
    assert_eq!(again.body["marked"], 0);
    assert_eq!(unread(&app, &token).await, 2);

    let unread_list = app.get("/api/v1/inbox?unread=true", Some(&token)).await;
    assert_eq!(unread_list.status, StatusCode::OK, "{:?}", unread_list.body);
    assert_eq!(ids(&unread_list.body), vec![all[3].to_string(), all[1].to_string()]);
    let everything = app.get("/api/v1/inbox", Some(&token)).await;
    let read_flags: Vec<bool> = everything.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|m| m["read"].as_bool().expect("read"))
        .collect();
    assert_eq!(read_flags, vec![false, true, false, true]);

    let all_read = app
        .post("/api/v1/inbox/read", Some(&token), json!({ "all": true }))
        .await;
    assert_eq!(all_read.status, StatusCode::OK, "{:?}", all_read.body);
    assert_eq!(all_read.body["marked"], 2);
    assert_eq!(unread(&app, &token).await, 0);
    let none_left = app.get("/api/v1/inbox?unread=true", Some(&token)).await;
    assert_eq!(ids(&none_left.body), Vec::<String>::new());
    assert_eq!(ids(&app.get("/api/v1/inbox", Some(&token)).await.body).len(), 4);
}

async fn delivering_twice_with_one_dedupe_key_leaves_one_message(app: TestApp) {
    let (token, me) = customer(&app, "13800138103").await;
    let (_, other) = customer(&app, "13800138104").await;
    let first = deliver(&app, me, "low balance", Some("alert-42")).await;
    assert!(first.is_some());
    assert_eq!(deliver(&app, me, "low balance", Some("alert-42")).await, None);
    // The key is per customer, and messages without a key never collide.
    assert!(deliver(&app, other, "low balance", Some("alert-42")).await.is_some());
    assert!(deliver(&app, me, "no key", None).await.is_some());
    assert!(deliver(&app, me, "no key", None).await.is_some());
    let list = app.get("/api/v1/inbox", Some(&token)).await;
    let titles: Vec<&str> = list.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|m| m["title"].as_str().expect("title"))
        .collect();
    assert_eq!(titles, vec!["no key", "no key", "low balance"]);
    assert_eq!(unread(&app, &token).await, 3);
    assert_eq!(app.count("inbox_messages").await, 4);
}

async fn a_customer_never_sees_or_marks_another_customers_messages(app: TestApp) {
    let (alice, alice_id) = customer(&app, "13800138105").await;
    let (bob, bob_id) = customer(&app, "13800138106").await;
    let alices = deliver(&app, alice_id, "for alice", None).await.expect("new");
    let bobs = deliver(&app, bob_id, "for bob", None).await.expect("new");

    let bob_list = app.get("/api/v1/inbox", Some(&bob)).await;
    assert_eq!(ids(&bob_list.body), vec![bobs.to_string()]);
    assert_eq!(unread(&app, &bob).await, 1);

    for ids in [json!([bobs, alices]), json!([alices, bobs]), json!([alices])] {
        let reply = app
            .post("/api/v1/inbox/read", Some(&bob), json!({ "message_ids": ids }))
            .await;
        reply.assert_problem(404, "unknown-message");
        assert_eq!(reply.body["message_id"], alices.to_string());
    }
    // Nothing of those requests was applied: Bob's own message stays unread too.
    assert_eq!(unread(&app, &bob).await, 1);
    assert_eq!(unread(&app, &alice).await, 1);
    let bob_list = app.get("/api/v1/inbox", Some(&bob)).await;
    assert_eq!(bob_list.body["items"][0]["read"], false);

    // Unknown ids are refused the same way.
    app.post(
        "/api/v1/inbox/read",
        Some(&bob),
        json!({ "message_ids": [Uuid::now_v7()] }),
    )
    .await
    .assert_problem(404, "unknown-message");

    // Marking all reaches only one's own messages.
    app.post("/api/v1/inbox/read", Some(&bob), json!({ "all": true })).await;
    assert_eq!(unread(&app, &bob).await, 0);
    assert_eq!(unread(&app, &alice).await, 1);
}

async fn bad_mark_read_requests_are_refused(app: TestApp) {
    let (token, me) = customer(&app, "13800138107").await;
    let id = deliver(&app, me, "hello", None).await.expect("new");
    let cases = [
        (json!({}), "validation"),
        (json!({ "all": true, "message_ids": [id] }), "validation"),
        (json!({ "all": true, "message_ids": [] }), "validation"),
        (json!({ "all": false }), "validation"),
        (json!({ "message_ids": [] }), "validation"),
        (json!({ "message_ids": [id], "everything": true }), "invalid-body"),
        (json!({ "message_ids": ["not-a-uuid"] }), "invalid-body"),
    ];
    for (body, slug) in cases {
        let reply = app.post("/api/v1/inbox/read", Some(&token), body.clone()).await;
        assert_eq!(reply.status.as_u16(), 422, "{body}: {:?}", reply.body);
        reply.assert_problem(422, slug);
    }
    let too_many: Vec<Uuid> = (0..501).map(|_| id).collect();
    app.post("/api/v1/inbox/read", Some(&token), json!({ "message_ids": too_many }))
        .await
        .assert_problem(422, "validation");
    app.get("/api/v1/inbox?unread=true&colour=red", Some(&token))
        .await
        .assert_problem(400, "invalid-query");
    assert_eq!(unread(&app, &token).await, 1, "nothing was marked");
}

async fn only_signed_in_customers_reach_the_inbox(app: TestApp) {
    let staff = app.staff(huoban_identity::Role::Admin).await;
    let requests: [(Method, &str, Option<Value>); 4] = [
        (Method::GET, "/api/v1/inbox", None),
        (Method::GET, "/api/v1/inbox/unread-count", None),
        (Method::POST, "/api/v1/inbox/read", Some(json!({ "all": true }))),
        (Method::GET, STREAM, None),
    ];
    for (method, path, body) in requests {
        app.send(method.clone(), path, None, body.clone(), &[])
            .await
            .assert_problem(401, "unauthenticated");
        app.send(method.clone(), path, Some("not-a-session"), body.clone(), &[])
            .await
            .assert_problem(401, "unauthenticated");
        app.send(method, path, Some(&staff), body, &[])
            .await
            .assert_problem(403, "customers-only");
    }
    // The query-string token is only for event streams.
    let token = app.customer("13800138108").await;
    app.get(&format!("/api/v1/inbox?access_token={token}"), None)
        .await
        .assert_problem(401, "unauthenticated");
}

/// Opens the live stream; `token_in_query` sends the token as `?access_token=`.
async fn open_stream(app: &TestApp, token: &str, token_in_query: bool) -> reqwest::Response {
    let mut request = app.http.get(if token_in_query {
        format!("{}{STREAM}?access_token={token}", app.base)
    } else {
        format!("{}{STREAM}", app.base)
    });
    if !token_in_query {
        request = request.bearer_auth(token);
    }
    let response = request
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("stream opens");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers().get("content-type").and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    response
}

/// Reads the next event (skipping keep-alive comments) within `within`; `None` on timeout.
async fn next_event(response: &mut reqwest::Response, within: Duration) -> Option<(String, Value)> {
    let deadline = tokio::time::Instant::now() + within;
    let mut buffer = String::new();
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let mut event = None;
            let mut data = String::new();
            for line in frame.lines() {
                if let Some(e) = line.strip_prefix("event:") {
                    event = Some(e.trim().to_owned());
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.strip_prefix(' ').unwrap_or(d));
                }
            }
            if let Some(event) = event {
                let json = serde_json::from_str(&data).expect("event data is JSON");
                return Some((event, json));
            }
        }
        let chunk = tokio::time::timeout_at(deadline, response.chunk()).await.ok()?;
        let bytes = chunk.expect("stream reads").expect("stream stays open");
        buffer.push_str(std::str::from_utf8(&bytes).expect("utf-8"));
    }
}

async fn the_stream_pushes_a_delivered_message_within_a_second(app: TestApp) {
    let (token, me) = customer(&app, "13800138109").await;
    let mut stream = open_stream(&app, &token, false).await;
    let id = deliver(&app, me, "live", None).await.expect("new");
    let (event, data) = next_event(&mut stream, Duration::from_secs(1))
        .await
        .expect("an event within a second");
    assert_eq!(event, "message");
    assert_eq!(data["id"], id.to_string());
    assert_eq!(data["title"], "live");
    assert_eq!(data["body"], "live body");
    assert_eq!(data["data"], json!({ "title": "live", "amount": "12.50" }));
    assert_eq!(data["read"], false);
    // A duplicate delivery pushes nothing; the next new message arrives in order.
    assert!(deliver(&app, me, "dup", Some("k")).await.is_some());
    assert_eq!(deliver(&app, me, "dup", Some("k")).await, None);
    let second = deliver(&app, me, "after", None).await.expect("new");
    let (_, dup) = next_event(&mut stream, Duration::from_secs(1))
        .await
        .expect("dup event");
    assert_eq!(dup["title"], "dup");
    let (_, after) = next_event(&mut stream, Duration::from_secs(1))
        .await
        .expect("next event");
    assert_eq!(after["id"], second.to_string());
}

async fn the_stream_takes_the_token_from_the_query_for_event_stream_requests(app: TestApp) {
    let (token, me) = customer(&app, "13800138110").await;
    let mut stream = open_stream(&app, &token, true).await;
    let id = deliver(&app, me, "via query", None).await.expect("new");
    let (event, data) = next_event(&mut stream, Duration::from_secs(1))
        .await
        .expect("an event within a second");
    assert_eq!(event, "message");
    assert_eq!(data["id"], id.to_string());
    // Without the event-stream Accept header the query token is ignored.
    app.get(&format!("{STREAM}?access_token={token}"), None)
        .await
        .assert_problem(401, "unauthenticated");
}

async fn the_stream_refuses_bad_tokens_with_a_problem(app: TestApp) {
    let sse = [("accept", "text/event-stream")];
    for path in [
        format!("{STREAM}?access_token=not-a-session"),
        format!("{STREAM}?access_token="),
        STREAM.to_owned(),
    ] {
        let reply = app.send(Method::GET, &path, None, None, &sse).await;
        reply.assert_problem(401, "unauthenticated");
    }
    app.send(Method::GET, STREAM, Some("not-a-session"), None, &sse)
        .await
        .assert_problem(401, "unauthenticated");
    let staff = app.staff(huoban_identity::Role::Admin).await;
    app.send(Method::GET, &format!("{STREAM}?access_token={staff}"), None, None, &sse)
        .await
        .assert_problem(403, "customers-only");
}

async fn a_stream_only_carries_its_own_customers_messages(app: TestApp) {
    let (alice, alice_id) = customer(&app, "13800138111").await;
    let (bob, bob_id) = customer(&app, "13800138112").await;
    let mut alice_stream = open_stream(&app, &alice, false).await;
    let mut bob_stream = open_stream(&app, &bob, true).await;
    let for_alice = deliver(&app, alice_id, "for alice", None).await.expect("new");
    let (_, data) = next_event(&mut alice_stream, Duration::from_secs(1))
        .await
        .expect("alice's event");
    assert_eq!(data["id"], for_alice.to_string());
    assert_eq!(
        next_event(&mut bob_stream, Duration::from_millis(300)).await,
        None,
        "bob's stream stays quiet"
    );
    // Bob's stream is live: the first thing on it is Bob's own message.
    let for_bob = deliver(&app, bob_id, "for bob", None).await.expect("new");
    let (_, data) = next_event(&mut bob_stream, Duration::from_secs(1))
        .await
        .expect("bob's event");
    assert_eq!(data["id"], for_bob.to_string());
    assert_eq!(data["title"], "for bob");
}
