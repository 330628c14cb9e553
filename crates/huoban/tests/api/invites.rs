//! Invites: three invitees accept a code and finish the risk questionnaire, and the
//! inviter's prize unlocks exactly once (also when the events are applied again); every
//! abuse guard answers its own problem and writes nothing; the share poster is a PNG whose
//! QR code reads back the invite link; staff validation and permissions.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    helpers::{Reply, TestApp},
    on_both_backends,
    social::{assert_ledger_balanced, drain, instant, messages, operator, points},
};

on_both_backends!(
    three_invitees_finishing_the_risk_test_unlock_the_prize_exactly_once,
    every_abuse_guard_refuses_with_its_own_problem_and_writes_nothing,
    an_ended_programme_refuses_codes_and_acceptances,
    the_poster_is_a_png_whose_qr_code_is_the_invite_link,
    a_coupon_prize_is_granted_once_without_points,
    staff_validate_programmes_and_customers_cannot_create_them,
    concurrent_acceptances_never_pass_the_cap,
    a_programme_joins_only_a_campaign_that_exists_and_has_not_ended,
);

const PRIZE: i64 = 500;

fn programme_body(app: &TestApp, unlock: i64, cap: Option<i64>) -> Value {
    let mut body = json!({
        "name": "邀请三位好友完成理财测试，解锁专属优惠券",
        "event_type": "questionnaire_completed",
        "event_match": { "questionnaire_id": "risk-appetite" },
        "unlock_count": unlock,
        "reward": { "points": PRIZE },
        "starts_at": instant(app, -1),
        "ends_at": instant(app, 24),
    });
    if let Some(cap) = cap {
        body["max_invitees"] = json!(cap);
    }
    body
}

async fn create_programme(app: &TestApp, body: Value) -> String {
    let staff = operator(app).await;
    let created = app.post("/api/v1/staff/invite-programmes", Some(&staff), body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    created.body["id"].as_str().expect("id").to_owned()
}

async fn issue(app: &TestApp, token: &str, programme: &str) -> Reply {
    app.post("/api/v1/invites", Some(token), json!({ "programme_id": programme }))
        .await
}

async fn accept(app: &TestApp, token: &str, code: &str, device: Option<&str>) -> Reply {
    let headers: Vec<(&str, &str)> = device.map(|d| vec![("x-device-id", d)]).unwrap_or_default();
    app.send(
        Method::POST,
        "/api/v1/invites/accept",
        Some(token),
        Some(json!({ "code": code })),
        &headers,
    )
    .await
}

/// Takes the built-in risk-appetite questionnaire to the end.
pub async fn finish_risk_test(app: &TestApp, token: &str) {
    let started = app
        .post("/api/v1/questionnaires/risk-appetite/sessions", Some(token), json!({}))
        .await;
    assert_eq!(started.status, StatusCode::CREATED, "{:?}", started.body);
    let session = started.body["session_id"].as_str().expect("session").to_owned();
    for (q, o) in [
        ("age", "a"),
        ("experience", "d"),
        ("horizon", "d"),
        ("loss_tolerance", "e"),
        ("goal", "d"),
    ] {
        let answered = app
            .post(
                &format!("/api/v1/questionnaires/sessions/{session}/answers"),
                Some(token),
                json!({ "question_id": q, "option_id": o }),
            )
            .await;
        assert_eq!(answered.status, StatusCode::OK, "{:?}", answered.body);
    }
}

async fn mine(app: &TestApp, token: &str) -> Value {
    let mine = app.get("/api/v1/invites/mine", Some(token)).await;
    assert_eq!(mine.status, StatusCode::OK, "{:?}", mine.body);
    mine.body[0].clone()
}

async fn three_invitees_finishing_the_risk_test_unlock_the_prize_exactly_once(app: TestApp) {
    let programme = create_programme(&app, programme_body(&app, 3, None)).await;
    let inviter = app.customer("13700000001").await;
    let first = issue(&app, &inviter, &programme).await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    let code = first.body["code"].as_str().expect("code").to_owned();
    let link = first.body["link"].as_str().expect("link");
    assert!(link.ends_with(&format!("/h5/invite?code={code}")), "{link}");
    assert!(link.starts_with("http://127.0.0.1:"), "from the Host header: {link}");
    let again = issue(&app, &inviter, &programme).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["code"], code.as_str(), "one code per inviter and programme");

    let mut invitees = Vec::new();
    for i in 0..4 {
        let token = app.customer(&format!("1370000010{i}")).await;
        let accepted = accept(&app, &token, &code.to_lowercase(), Some(&format!("device-{i}"))).await;
        assert_eq!(accepted.status, StatusCode::CREATED, "{:?}", accepted.body);
        assert_eq!(accepted.body["event_type"], "questionnaire_completed");
        assert_eq!(accepted.body["inviter"], "测*", "the inviter's name is masked");
        invitees.push(token);
    }
    // The fourth invitee does something else: a check-in is not the qualifying action.
    let checked = app.post("/api/v1/checkins", Some(&invitees[3]), json!({})).await;
    assert_eq!(checked.status, StatusCode::CREATED, "{:?}", checked.body);
    // The inviter finishing the test themselves counts for nobody.
    finish_risk_test(&app, &inviter).await;
    finish_risk_test(&app, &invitees[0]).await;
    finish_risk_test(&app, &invitees[1]).await;
    drain(&app).await;
    let progress = mine(&app, &inviter).await;
    assert_eq!(progress["accepted"], 4);
    assert_eq!(progress["qualified"], 2);
    assert_eq!(progress["progress"], "2 of 3");
    assert_eq!(progress["unlocked"], false);
    assert_eq!(points(&app, &inviter).await, 0, "nothing before the count is reached");

    finish_risk_test(&app, &invitees[2]).await;
    // The first invitee takes the test again: still one friend.
    finish_risk_test(&app, &invitees[0]).await;
    drain(&app).await;
    let progress = mine(&app, &inviter).await;
    assert_eq!(progress["progress"], "3 of 3", "{progress:?}");
    assert_eq!(progress["unlocked"], true);
    assert_eq!(progress["rewarded"], true);
    assert_eq!(points(&app, &inviter).await, PRIZE);
    let told = messages(&app, &inviter, "invite_unlocked").await;
    assert_eq!(told.len(), 1, "{told:?}");

    // Every event applied again (the consumer's cursor moved back): nothing more.
    sqlx::query("UPDATE event_cursors SET position = 0 WHERE consumer = 'invites'")
        .execute(app.app.db.writer())
        .await
        .expect("rewind");
    drain(&app).await;
    let progress = mine(&app, &inviter).await;
    assert_eq!(progress["qualified"], 3);
    assert_eq!(points(&app, &inviter).await, PRIZE, "the prize is paid once");
    assert_eq!(messages(&app, &inviter, "invite_unlocked").await.len(), 1);
    // (The fourth invitee's check-in paid its own points.)
    for (i, token) in invitees[..3].iter().enumerate() {
        assert_eq!(
            points(&app, token).await,
            0,
            "invitee {i} is not paid by this programme"
        );
    }
    assert_ledger_balanced(&app).await;
}

async fn every_abuse_guard_refuses_with_its_own_problem_and_writes_nothing(app: TestApp) {
    // Registered before any code exists: not a new customer.
    let old = app.customer("13700000200").await;
    app.clock.advance(jiff::SignedDuration::from_secs(5));
    let programme = create_programme(&app, programme_body(&app, 1, Some(2))).await;
    let inviter = app.customer("13700000201").await;
    let other_inviter = app.customer("13700000202").await;
    let code = issue(&app, &inviter, &programme).await.body["code"]
        .as_str()
        .expect("code")
        .to_owned();
    let other_code = issue(&app, &other_inviter, &programme).await.body["code"]
        .as_str()
        .expect("code")
        .to_owned();

    accept(&app, &inviter, &code, Some("inviter-phone"))
        .await
        .assert_problem(409, "self-invite");
    accept(&app, &old, &code, Some("old-phone"))
        .await
        .assert_problem(409, "invite-not-eligible");
    accept(&app, &old, "ZZZZZZZZ", Some("old-phone"))
        .await
        .assert_problem(404, "unknown-invite-code");
    accept(&app, &old, "not a code", Some("old-phone"))
        .await
        .assert_problem(404, "unknown-invite-code");

    let friend = app.customer("13700000203").await;
    accept(&app, &friend, &code, None)
        .await
        .assert_problem(400, "device-id-required");
    let ok = accept(&app, &friend, &code, Some("phone-a")).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{:?}", ok.body);
    // Already attributed in this programme, whichever code.
    accept(&app, &friend, &other_code, Some("phone-b"))
        .await
        .assert_problem(409, "invite-not-eligible");
    // A second account on the same device.
    let sock_puppet = app.customer("13700000204").await;
    accept(&app, &sock_puppet, &code, Some("phone-a"))
        .await
        .assert_problem(409, "invite-device-reused");
    let second = app.customer("13700000205").await;
    let ok = accept(&app, &second, &code, Some("phone-c")).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{:?}", ok.body);
    // The cap is two friends per inviter.
    let third = app.customer("13700000206").await;
    let capped = accept(&app, &third, &code, Some("phone-d")).await;
    capped.assert_problem(409, "invite-cap-reached");
    assert_eq!(capped.body["cap"], 2);
    // The same friend may still accept another inviter's code.
    let ok = accept(&app, &third, &other_code, Some("phone-d")).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{:?}", ok.body);

    assert_eq!(app.count("invite_attributions").await, 3, "refusals wrote nothing");
    let counted: i64 = sqlx::query_scalar("SELECT CAST(SUM(accepted) AS BIGINT) FROM invite_codes")
        .fetch_one(app.app.db.reader())
        .await
        .expect("sum");
    assert_eq!(counted, 3);
    // Unknown programme.
    issue(&app, &inviter, &uuid::Uuid::now_v7().to_string())
        .await
        .assert_problem(404, "unknown-invite-programme");
}

async fn an_ended_programme_refuses_codes_and_acceptances(app: TestApp) {
    let programme = create_programme(&app, programme_body(&app, 3, None)).await;
    let inviter = app.customer("13700000301").await;
    let code = issue(&app, &inviter, &programme).await.body["code"]
        .as_str()
        .expect("code")
        .to_owned();
    app.customer("13700000302").await;
    // A friend who accepted in time but finishes the test after the end does not count.
    let punctual = app.customer("13700000304").await;
    assert_eq!(
        accept(&app, &punctual, &code, Some("phone-p")).await.status,
        StatusCode::CREATED
    );
    app.clock.advance(jiff::SignedDuration::from_hours(25));
    let punctual = app.sign_in("13700000304", "h5").await;
    finish_risk_test(&app, &punctual).await;
    drain(&app).await;
    let progress = mine(&app, &app.sign_in("13700000301", "h5").await).await;
    assert_eq!(progress["accepted"], 1);
    assert_eq!(progress["qualified"], 0, "{progress:?}");
    // Sessions do not last a day: sign in again.
    let friend = app.sign_in("13700000302", "h5").await;
    accept(&app, &friend, &code, Some("phone-x"))
        .await
        .assert_problem(409, "invite-programme-ended");
    let late = app.customer("13700000303").await;
    issue(&app, &late, &programme)
        .await
        .assert_problem(409, "invite-programme-ended");
    assert_eq!(app.count("invite_attributions").await, 1, "only the punctual friend");
    let live = app.get("/api/v1/invite-programmes", Some(&late)).await;
    assert_eq!(live.body["items"], json!([]), "ended programmes are not offered");
}

async fn the_poster_is_a_png_whose_qr_code_is_the_invite_link(app: TestApp) {
    let programme = create_programme(&app, programme_body(&app, 3, None)).await;
    let inviter = app.customer("13700000401").await;
    let issued = issue(&app, &inviter, &programme).await;
    let link = issued.body["link"].as_str().expect("link").to_owned();
    let poster_url = issued.body["poster_url"].as_str().expect("poster url").to_owned();
    assert!(poster_url.ends_with("/poster.png"), "{poster_url}");

    let response = app.http.get(&poster_url).send().await.expect("poster");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers().get("content-type").and_then(|v| v.to_str().ok()),
        Some("image/png")
    );
    let png = response.bytes().await.expect("bytes");
    let pixmap = tiny_skia::Pixmap::decode_png(&png).expect("decodes as PNG");
    assert_eq!((pixmap.width(), pixmap.height()), (750, 1334));
    let (w, h) = (pixmap.width() as usize, pixmap.height() as usize);
    let data = pixmap.data();
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        let i = (y * w + x) * 4;
        ((u16::from(data[i]) + u16::from(data[i + 1]) + u16::from(data[i + 2])) / 3) as u8
    });
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1);
    let (_, content) = grids[0].decode().expect("QR decodes");
    assert_eq!(content, link);

    let missing = app.get("/api/v1/invites/ZZZZZZZZ/poster.png", None).await;
    missing.assert_problem(404, "unknown-invite-code");
}

async fn a_coupon_prize_is_granted_once_without_points(app: TestApp) {
    let staff = operator(&app).await;
    let reward = app
        .post(
            "/api/v1/staff/rewards",
            Some(&staff),
            json!({
                "titles": { "zh-CN": "新春理财专属券" }, "points_price": 100, "total_stock": 10,
                "per_customer_limit": 1, "claimable_from": instant(&app, -1),
                "claimable_until": instant(&app, 48), "coupon_valid_days": 30,
            }),
        )
        .await;
    assert_eq!(reward.status, StatusCode::CREATED, "{:?}", reward.body);
    let mut body = programme_body(&app, 1, None);
    body["reward"] = json!({ "reward_id": reward.body["id"] });
    let programme = create_programme(&app, body).await;
    let inviter = app.customer("13700000501").await;
    let code = issue(&app, &inviter, &programme).await.body["code"]
        .as_str()
        .expect("code")
        .to_owned();
    let friend = app.customer("13700000502").await;
    assert_eq!(
        accept(&app, &friend, &code, Some("phone-1")).await.status,
        StatusCode::CREATED
    );
    finish_risk_test(&app, &friend).await;
    drain(&app).await;
    drain(&app).await;
    let coupons = app.get("/api/v1/coupons", Some(&inviter)).await;
    assert_eq!(
        coupons.body["items"].as_array().map(Vec::len),
        Some(1),
        "{:?}",
        coupons.body
    );
    assert_eq!(coupons.body["items"][0]["points_spent"], 0);
    assert_eq!(points(&app, &inviter).await, 0);
    assert_eq!(mine(&app, &inviter).await["rewarded"], true);
    assert_ledger_balanced(&app).await;
}

async fn staff_validate_programmes_and_customers_cannot_create_them(app: TestApp) {
    let staff = operator(&app).await;
    let bad = |field: &str, value: Value| {
        let mut body = programme_body(&app, 3, None);
        body[field] = value;
        body
    };
    for (field, value) in [
        ("unlock_count", json!(0)),
        ("max_invitees", json!(2)),
        ("event_type", json!("Not A Type")),
        ("ends_at", json!(instant(&app, -2))),
        ("reward", json!({ "points": 5, "reward_id": uuid::Uuid::now_v7() })),
        ("reward", json!({ "reward_id": uuid::Uuid::now_v7() })),
        ("starts_at", json!("tomorrow")),
    ] {
        let reply = app
            .post("/api/v1/staff/invite-programmes", Some(&staff), bad(field, value))
            .await;
        reply.assert_problem(422, "validation");
        assert_eq!(reply.body["field"], field, "{:?}", reply.body);
    }
    assert_eq!(app.count("invite_programmes").await, 0);
    let customer = app.customer("13700000601").await;
    app.post(
        "/api/v1/staff/invite-programmes",
        Some(&customer),
        programme_body(&app, 3, None),
    )
    .await
    .assert_problem(403, "staff-only");
    let id = create_programme(&app, programme_body(&app, 3, None)).await;
    let list = app.get("/api/v1/staff/invite-programmes", Some(&staff)).await;
    assert_eq!(list.body["items"][0]["id"], id.as_str());
    assert_eq!(list.body["items"][0]["status"], "live");
    let live = app.get("/api/v1/invite-programmes", Some(&customer)).await;
    assert_eq!(live.body["items"][0]["id"], id.as_str());
}

async fn concurrent_acceptances_never_pass_the_cap(app: TestApp) {
    let programme = create_programme(&app, programme_body(&app, 1, Some(2))).await;
    let inviter = app.customer("13700000701").await;
    let code = issue(&app, &inviter, &programme).await.body["code"]
        .as_str()
        .expect("code")
        .to_owned();
    let mut friends = Vec::new();
    for i in 0..6 {
        friends.push(app.customer(&format!("1370000080{i}")).await);
    }
    let devices: Vec<String> = (0..6).map(|i| format!("race-{i}")).collect();
    let replies = futures::future::join_all(
        friends
            .iter()
            .zip(&devices)
            .map(|(t, d)| accept(&app, t, &code, Some(d))),
    )
    .await;
    let accepted = replies.iter().filter(|r| r.status == StatusCode::CREATED).count();
    assert_eq!(accepted, 2);
    for r in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
        r.assert_problem(409, "invite-cap-reached");
    }
    assert_eq!(app.count("invite_attributions").await, 2);
    assert_eq!(mine(&app, &inviter).await["accepted"], 2);
}

/// Programmes belong to campaigns: an unknown campaign is `unknown-campaign`, an ended one
/// `campaign-ended`, and nothing is saved; a live one is accepted and named on the programme.
async fn a_programme_joins_only_a_campaign_that_exists_and_has_not_ended(app: TestApp) {
    let staff = operator(&app).await;
    let admin = app.staff(huoban_identity::Role::Admin).await;
    let mut body = programme_body(&app, 3, None);
    body["campaign_id"] = json!(uuid::Uuid::now_v7().to_string());
    app.post("/api/v1/staff/invite-programmes", Some(&staff), body.clone())
        .await
        .assert_problem(404, "unknown-campaign");
    body["campaign_id"] = json!("spring-festival-2027");
    app.post("/api/v1/staff/invite-programmes", Some(&staff), body.clone())
        .await
        .assert_problem(404, "unknown-campaign");
    assert_eq!(app.count("invite_programmes").await, 0, "nothing saved");

    let created = app
        .post(
            "/api/v1/staff/campaigns",
            Some(&admin),
            crate::campaigns::campaign_body(&app, "", 100, 1),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let campaign = created.body["id"].as_str().expect("id").to_owned();
    body["campaign_id"] = json!(campaign);
    let ok = app
        .post("/api/v1/staff/invite-programmes", Some(&staff), body.clone())
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{:?}", ok.body);
    assert_eq!(ok.body["campaign_id"], campaign.as_str());

    for step in ["schedule", "end"] {
        let r = app
            .post(
                &format!("/api/v1/staff/campaigns/{campaign}/{step}"),
                Some(&admin),
                json!({}),
            )
            .await;
        assert!(r.status.is_success(), "{step}: {:?}", r.body);
    }
    app.post("/api/v1/staff/invite-programmes", Some(&staff), body.clone())
        .await
        .assert_problem(409, "campaign-ended");
    let challenge = json!({
        "name": "绿色出行", "campaign_id": campaign, "event_type": "green_trip", "target": 10,
        "max_members": 5, "reward": { "points": 10 },
        "starts_at": body["starts_at"], "ends_at": body["ends_at"],
    });
    app.post("/api/v1/staff/challenges", Some(&staff), challenge)
        .await
        .assert_problem(409, "campaign-ended");
    assert_eq!(app.count("invite_programmes").await, 1);
}
