//! Customers: registration, password sign-in with the channel recorded, profile edits,
//! sign-out, session expiry, and the single-use cross-channel hand-off.

use jiff::SignedDuration;
use reqwest::StatusCode;
use serde_json::json;

use crate::{helpers::TestApp, on_both_backends};

on_both_backends!(
    a_customer_registers_signs_in_and_reads_their_profile,
    wrong_credentials_are_refused_alike,
    invalid_registrations_are_refused_field_by_field_and_write_nothing,
    a_profile_can_be_changed_and_bad_changes_change_nothing,
    older_customers_are_offered_elderly_mode,
    signing_out_ends_the_session,
    sessions_expire,
    a_handoff_token_opens_one_session_on_another_channel,
    a_handoff_token_expires,
    concurrent_redemptions_of_one_handoff_token_open_one_session,
    staff_and_customer_tokens_stay_on_their_side,
);

async fn a_customer_registers_signs_in_and_reads_their_profile(app: TestApp) {
    let reg = app
        .post(
            "/api/v1/customers",
            None,
            json!({ "phone": "138 0013 8000", "password": "secret-pass", "name": "  李雷 ", "birthday": "1990-05-01",
                    "locale": "zh-TW", "time_zone": "Asia/Taipei" }),
        )
        .await;
    assert_eq!(reg.status, StatusCode::CREATED, "{:?}", reg.body);
    assert_eq!(reg.body["phone"], "+8613800138000", "stored in E.164");
    assert_eq!(reg.body["name"], "李雷", "trimmed");
    let session = app
        .post(
            "/api/v1/sessions",
            None,
            json!({ "phone": "+8613800138000", "password": "secret-pass", "channel": "mini_program" }),
        )
        .await;
    assert_eq!(session.status, StatusCode::CREATED);
    assert_eq!(session.body["channel"], "mini_program");
    let token = session.body["token"].as_str().expect("token");
    let me = app.get("/api/v1/me", Some(token)).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["id"], reg.body["id"]);
    assert_eq!(me.body["locale"], "zh-TW");
    assert_eq!(me.body["time_zone"], "Asia/Taipei");
    assert_eq!(me.body["birthday"], "1990-05-01");
    assert_eq!(
        me.body["preferences"],
        json!({ "elderly_mode": false, "marketing_messages": true })
    );
    // The token is stored only as a hash.
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE token_hash = $1")
        .bind(token)
        .fetch_one(app.app.db.reader())
        .await
        .expect("query");
    assert_eq!(stored, 0);
}

async fn wrong_credentials_are_refused_alike(app: TestApp) {
    app.customer("13800138001").await;
    let wrong = app
        .post(
            "/api/v1/sessions",
            None,
            json!({ "phone": "13800138001", "password": "not-the-pass" }),
        )
        .await;
    wrong.assert_problem(401, "invalid-credentials");
    let unknown = app
        .post(
            "/api/v1/sessions",
            None,
            json!({ "phone": "13800138999", "password": "secret-pass" }),
        )
        .await;
    unknown.assert_problem(401, "invalid-credentials");
    assert_eq!(
        wrong.body["detail"], unknown.body["detail"],
        "no hint whether the phone exists"
    );
    app.post(
        "/api/v1/sessions",
        None,
        json!({ "phone": "13800138001", "password": "secret-pass", "channel": "fax" }),
    )
    .await
    .assert_problem(422, "invalid-body");
}

async fn invalid_registrations_are_refused_field_by_field_and_write_nothing(app: TestApp) {
    let base = json!({ "phone": "13800138002", "password": "secret-pass", "name": "韩梅梅" });
    let cases = [
        ("phone", json!("12345")),
        ("password", json!("short")),
        ("name", json!("   ")),
        ("birthday", json!("2999-01-01")),
        ("birthday", json!("1990-02-30")),
        ("time_zone", json!("Mars/Base")),
    ];
    for (field, value) in cases {
        let mut body = base.clone();
        body[field] = value.clone();
        let reply = app.post("/api/v1/customers", None, body).await;
        reply.assert_problem(422, "validation");
        assert_eq!(reply.body["field"], field, "{value}");
    }
    let mut bad_locale = base.clone();
    bad_locale["locale"] = json!("fr");
    app.post("/api/v1/customers", None, bad_locale)
        .await
        .assert_problem(422, "invalid-body");
    assert_eq!(app.count("customers").await, 0);
    assert_eq!(
        app.post("/api/v1/customers", None, base.clone()).await.status,
        StatusCode::CREATED
    );
    app.post("/api/v1/customers", None, base)
        .await
        .assert_problem(409, "phone-taken");
    assert_eq!(app.count("customers").await, 1);
}

async fn a_profile_can_be_changed_and_bad_changes_change_nothing(app: TestApp) {
    let token = app.customer("13800138003").await;
    let changed = app
        .patch(
            "/api/v1/me",
            Some(&token),
            json!({ "locale": "en", "time_zone": "Europe/London", "preferences": { "elderly_mode": true, "marketing_messages": false } }),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{:?}", changed.body);
    assert_eq!(changed.body["locale"], "en");
    assert_eq!(changed.body["preferences"]["elderly_mode"], true);
    let before = app.get("/api/v1/me", Some(&token)).await.body;
    for bad in [
        json!({ "time_zone": "Nowhere/City" }),
        json!({ "birthday": "tomorrow" }),
        json!({ "name": "" }),
    ] {
        app.patch("/api/v1/me", Some(&token), bad)
            .await
            .assert_problem(422, "validation");
    }
    app.patch(
        "/api/v1/me",
        Some(&token),
        json!({ "preferences": { "dark_mode": true } }),
    )
    .await
    .assert_problem(422, "invalid-body");
    app.patch("/api/v1/me", Some(&token), json!({ "phone": "13800138999" }))
        .await
        .assert_problem(422, "invalid-body");
    // A valid field beside an invalid one is not applied either.
    app.patch(
        "/api/v1/me",
        Some(&token),
        json!({ "name": "新名字", "time_zone": "Nowhere/City" }),
    )
    .await
    .assert_problem(422, "validation");
    assert_eq!(app.get("/api/v1/me", Some(&token)).await.body, before);
}

async fn older_customers_are_offered_elderly_mode(app: TestApp) {
    let reg = app
        .post(
            "/api/v1/customers",
            None,
            json!({ "phone": "13800138004", "password": "secret-pass", "name": "张奶奶", "birthday": "1950-01-01" }),
        )
        .await;
    assert_eq!(reg.body["elderly_mode_suggested"], true);
    let young = app
        .post(
            "/api/v1/customers",
            None,
            json!({ "phone": "13800138005", "password": "secret-pass", "name": "小张", "birthday": "2000-01-01" }),
        )
        .await;
    assert_eq!(young.body["elderly_mode_suggested"], false);
}

async fn signing_out_ends_the_session(app: TestApp) {
    let token = app.customer("13800138006").await;
    let other = app.sign_in("13800138006", "app").await;
    let out = app
        .send(
            reqwest::Method::DELETE,
            "/api/v1/sessions/current",
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    app.get("/api/v1/me", Some(&token))
        .await
        .assert_problem(401, "session-revoked");
    assert_eq!(
        app.get("/api/v1/me", Some(&other)).await.status,
        StatusCode::OK,
        "other sessions live on"
    );
    app.get("/api/v1/me", Some("hbs_made-up"))
        .await
        .assert_problem(401, "unauthenticated");
    app.send(
        reqwest::Method::GET,
        "/api/v1/me",
        None,
        None,
        &[("authorization", "Basic abc")],
    )
    .await
    .assert_problem(401, "unauthenticated");
}

async fn sessions_expire(app: TestApp) {
    let token = app.customer("13800138007").await;
    app.clock.advance(SignedDuration::from_hours(7));
    assert_eq!(app.get("/api/v1/me", Some(&token)).await.status, StatusCode::OK);
    app.clock.advance(SignedDuration::from_hours(2));
    app.get("/api/v1/me", Some(&token))
        .await
        .assert_problem(401, "session-expired");
}

async fn a_handoff_token_opens_one_session_on_another_channel(app: TestApp) {
    let h5 = app.customer("13800138008").await;
    let handoff = app
        .post("/api/v1/handoffs", Some(&h5), json!({ "target_channel": "app" }))
        .await;
    assert_eq!(handoff.status, StatusCode::CREATED, "{:?}", handoff.body);
    let token = handoff.body["token"].as_str().expect("token").to_owned();
    assert!(handoff.body["deep_link"].as_str().expect("link").contains(&token));
    assert!(handoff.body["qr_svg"].as_str().expect("qr").starts_with("<?xml"));
    let session = app
        .post("/api/v1/handoffs/redeem", None, json!({ "token": token }))
        .await;
    assert_eq!(session.status, StatusCode::CREATED, "{:?}", session.body);
    assert_eq!(session.body["channel"], "app");
    let app_token = session.body["token"].as_str().expect("session");
    let me = app.get("/api/v1/me", Some(app_token)).await;
    assert_eq!(me.body["phone"], "+8613800138008");
    let sessions_before = app.count("sessions").await;
    app.post("/api/v1/handoffs/redeem", None, json!({ "token": token }))
        .await
        .assert_problem(401, "handoff-used");
    app.post("/api/v1/handoffs/redeem", None, json!({ "token": "hbh_forged" }))
        .await
        .assert_problem(401, "handoff-invalid");
    assert_eq!(
        app.count("sessions").await,
        sessions_before,
        "refused redemptions open nothing"
    );
    app.post("/api/v1/handoffs", None, json!({ "target_channel": "app" }))
        .await
        .assert_problem(401, "unauthenticated");
    app.post(
        "/api/v1/handoffs",
        Some(&h5),
        json!({ "target_channel": "carrier_pigeon" }),
    )
    .await
    .assert_problem(422, "invalid-body");
}

async fn a_handoff_token_expires(app: TestApp) {
    let h5 = app.customer("13800138009").await;
    let handoff = app
        .post("/api/v1/handoffs", Some(&h5), json!({ "target_channel": "wechat_oa" }))
        .await;
    let token = handoff.body["token"].as_str().expect("token").to_owned();
    app.clock
        .advance(SignedDuration::from_mins(5) + SignedDuration::from_secs(1));
    app.post("/api/v1/handoffs/redeem", None, json!({ "token": token }))
        .await
        .assert_problem(401, "handoff-expired");
}

async fn concurrent_redemptions_of_one_handoff_token_open_one_session(app: TestApp) {
    let h5 = app.customer("13800138010").await;
    let handoff = app
        .post("/api/v1/handoffs", Some(&h5), json!({ "target_channel": "app" }))
        .await;
    let token = handoff.body["token"].as_str().expect("token").to_owned();
    let attempts = (0..10).map(|_| app.post("/api/v1/handoffs/redeem", None, json!({ "token": token })));
    let replies = futures::future::join_all(attempts).await;
    let won = replies.iter().filter(|r| r.status == StatusCode::CREATED).count();
    assert_eq!(won, 1, "{:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());
    assert!(
        replies
            .iter()
            .filter(|r| r.status != StatusCode::CREATED)
            .all(|r| r.problem() == "handoff-used")
    );
}

async fn staff_and_customer_tokens_stay_on_their_side(app: TestApp) {
    let customer = app.customer("13800138011").await;
    let staff = app.staff(huoban_identity::Role::Admin).await;
    app.get("/api/v1/staff/customers", Some(&customer))
        .await
        .assert_problem(403, "staff-only");
    app.get("/api/v1/staff/me", Some(&customer))
        .await
        .assert_problem(403, "staff-only");
    app.get("/api/v1/me", Some(&staff))
        .await
        .assert_problem(403, "customers-only");
    app.post("/api/v1/handoffs", Some(&staff), json!({ "target_channel": "app" }))
        .await
        .assert_problem(403, "customers-only");
}
