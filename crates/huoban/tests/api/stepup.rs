//! Step-up factors (issue 6, item 4): the transaction PIN, TOTP, sent codes, lockout after
//! five failures with a cool-down, single-use step-up tokens bound to a purpose, and
//! every bad input answered with its own problem type while nothing but the failure
//! counter changes.

use huoban_identity::Role;
use huoban_kit::Clock;
use huoban_stepup::{Factor, domain};
use jiff::SignedDuration;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    helpers::{Reply, TestApp},
    on_both_backends,
};

on_both_backends!(
    a_pin_is_set_changed_and_proves_a_transfer_once,
    trivial_or_malformed_pins_and_bad_challenges_are_refused,
    an_expired_or_someone_elses_challenge_is_refused,
    five_failures_lock_a_factor_until_the_cool_down_and_a_success_resets_the_count,
    an_authenticator_app_is_enrolled_and_its_codes_work_once,
    a_sent_code_arrives_in_the_outbox_and_works_once_before_it_expires,
    a_token_redeems_once_for_its_customer_and_purpose_only,
    concurrent_redemptions_of_one_token_have_exactly_one_winner,
    a_passkey_registered_in_chromium_proves_a_step_up_and_a_forged_assertion_does_not,
);

const PIN: &str = "271828";

/// Registers and signs in a customer; (token, customer id).
async fn customer(app: &TestApp, phone: &str) -> (String, Uuid) {
    let reg = app.register(phone, "步骤测试").await;
    assert_eq!(reg.status, StatusCode::CREATED, "{:?}", reg.body);
    let id = Uuid::parse_str(reg.body["id"].as_str().expect("id")).expect("uuid");
    (app.sign_in(phone, "h5").await, id)
}

async fn put_pin(app: &TestApp, token: &str, body: Value) -> Reply {
    app.send(Method::PUT, "/api/v1/security/pin", Some(token), Some(body), &[])
        .await
}

async fn challenge(app: &TestApp, token: &str, factor: &str) -> String {
    let r = app
        .post(
            "/api/v1/step-up/challenges",
            Some(token),
            json!({ "purpose": "transfer", "factor": factor, "reference": "tr-42" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["factor"], factor);
    assert_eq!(r.body["reference"], "tr-42");
    r.body["id"].as_str().expect("id").to_owned()
}

async fn verify(app: &TestApp, token: &str, id: &str, proof: Value) -> Reply {
    app.post(&format!("/api/v1/step-up/challenges/{id}/verify"), Some(token), proof)
        .await
}

/// A step-up token for `transfer` proved with the PIN.
async fn pin_token(app: &TestApp, token: &str) -> String {
    let id = challenge(app, token, "pin").await;
    let r = verify(app, token, &id, json!({ "pin": PIN })).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["step_up_token"].as_str().expect("token").to_owned()
}

async fn factor(app: &TestApp, token: &str, name: &str) -> Value {
    let r = app.get("/api/v1/security/factors", Some(token)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|f| f["factor"] == name)
        .cloned()
        .expect("factor listed")
}

async fn attempts(app: &TestApp, customer: Uuid, outcome: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM step_up_attempts WHERE customer_id = $1 AND outcome = $2")
        .bind(customer.to_string())
        .bind(outcome)
        .fetch_one(app.app.db.reader())
        .await
        .expect("count")
}

async fn a_pin_is_set_changed_and_proves_a_transfer_once(app: TestApp) {
    let (token, me) = customer(&app, "+8613900000001").await;
    assert_eq!(factor(&app, &token, "pin").await["enrolled"], false);
    assert_eq!(
        put_pin(&app, &token, json!({ "pin": "314159" })).await.status,
        StatusCode::NO_CONTENT
    );
    let stored: String = sqlx::query_scalar("SELECT pin_hash FROM step_up_pins WHERE customer_id = $1")
        .bind(me.to_string())
        .fetch_one(app.app.db.reader())
        .await
        .expect("pin row");
    assert!(stored.starts_with("$argon2id$") && !stored.contains("314159"));

    // Changing needs the old PIN; a wrong one counts as a PIN failure.
    put_pin(&app, &token, json!({ "pin": PIN }))
        .await
        .assert_problem(422, "old-pin-required");
    let wrong = put_pin(&app, &token, json!({ "pin": PIN, "old_pin": "999111" })).await;
    wrong.assert_problem(403, "pin-incorrect");
    assert_eq!(wrong.body["remaining_attempts"], 4);
    assert_eq!(
        put_pin(&app, &token, json!({ "pin": PIN, "old_pin": "314159" }))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let pin = factor(&app, &token, "pin").await;
    assert_eq!(pin["enrolled"], true);
    assert_eq!(pin["remaining_attempts"], 5, "a success resets the count");

    // A step-up: the old PIN no longer works, the new one does.
    let id = challenge(&app, &token, "pin").await;
    let r = verify(&app, &token, &id, json!({ "pin": "314159" })).await;
    r.assert_problem(403, "pin-incorrect");
    assert_eq!(r.body["remaining_attempts"], 4);
    let r = verify(&app, &token, &id, json!({ "pin": PIN })).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["factor"], "pin");
    assert_eq!(r.body["purpose"], "transfer");
    assert_eq!(r.body["reference"], "tr-42");
    let step_up = r.body["step_up_token"].as_str().expect("token").to_owned();
    assert!(step_up.len() > 43, "256 random bits");
    // The token is stored only as its hash.
    let clear: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM step_up_tokens WHERE token_hash = $1")
        .bind(&step_up)
        .fetch_one(app.app.db.reader())
        .await
        .expect("count");
    assert_eq!(clear, 0);

    // The challenge yields one token only.
    verify(&app, &token, &id, json!({ "pin": PIN }))
        .await
        .assert_problem(409, "challenge-already-verified");
    assert_eq!(
        app.app.stepup.consume(me, &step_up, "transfer").await.ok(),
        Some(Factor::Pin)
    );
    let again = app
        .app
        .stepup
        .consume(me, &step_up, "transfer")
        .await
        .expect_err("used");
    assert_eq!(again.slug, "step-up-token-used");
    assert!(attempts(&app, me, "ok").await >= 4);
    assert_eq!(attempts(&app, me, "pin-incorrect").await, 2);
    assert_eq!(attempts(&app, me, "step-up-token-used").await, 1);
}

async fn trivial_or_malformed_pins_and_bad_challenges_are_refused(app: TestApp) {
    let (token, me) = customer(&app, "+8613900000002").await;
    for pin in ["123456", "000000", "654321", "121212"] {
        put_pin(&app, &token, json!({ "pin": pin }))
            .await
            .assert_problem(422, "pin-too-simple");
    }
    for pin in ["12345", "abcdef", "1234567"] {
        put_pin(&app, &token, json!({ "pin": pin }))
            .await
            .assert_problem(422, "pin-invalid");
    }
    assert_eq!(app.count("step_up_pins").await, 0, "nothing stored");

    // No PIN, no authenticator app: those factors cannot be challenged.
    for factor in ["pin", "totp"] {
        app.post(
            "/api/v1/step-up/challenges",
            Some(&token),
            json!({ "purpose": "transfer", "factor": factor }),
        )
        .await
        .assert_problem(409, "factor-not-enrolled");
    }
    app.post(
        "/api/v1/step-up/challenges",
        Some(&token),
        json!({ "purpose": "Big Transfer!", "factor": "sms" }),
    )
    .await
    .assert_problem(422, "validation");
    app.post(
        "/api/v1/step-up/challenges",
        Some(&token),
        json!({ "purpose": "transfer", "factor": "fingerprint" }),
    )
    .await
    .assert_problem(422, "invalid-body");
    app.post(
        "/api/v1/step-up/challenges",
        None,
        json!({ "purpose": "transfer", "factor": "sms" }),
    )
    .await
    .assert_problem(401, "unauthenticated");
    assert_eq!(app.count("step_up_challenges").await, 0);

    // A proof of the wrong kind is a validation error and costs no attempt.
    assert_eq!(
        put_pin(&app, &token, json!({ "pin": PIN })).await.status,
        StatusCode::NO_CONTENT
    );
    let id = challenge(&app, &token, "pin").await;
    verify(&app, &token, &id, json!({ "code": "123456" }))
        .await
        .assert_problem(422, "validation");
    assert_eq!(factor(&app, &token, "pin").await["remaining_attempts"], 5);
    assert_eq!(attempts(&app, me, "factor-not-enrolled").await, 2);
}

async fn an_expired_or_someone_elses_challenge_is_refused(app: TestApp) {
    let (alice, _) = customer(&app, "+8613900000003").await;
    let (bob, _) = customer(&app, "+8613900000004").await;
    for t in [&alice, &bob] {
        assert_eq!(
            put_pin(&app, t, json!({ "pin": PIN })).await.status,
            StatusCode::NO_CONTENT
        );
    }
    let id = challenge(&app, &alice, "pin").await;
    // Bob cannot see Alice's challenge, even with the right PIN for his own account.
    verify(&app, &bob, &id, json!({ "pin": PIN }))
        .await
        .assert_problem(404, "challenge-not-found");
    verify(&app, &alice, &Uuid::now_v7().to_string(), json!({ "pin": PIN }))
        .await
        .assert_problem(404, "challenge-not-found");
    app.clock.advance(SignedDuration::from_secs(301));
    verify(&app, &alice, &id, json!({ "pin": PIN }))
        .await
        .assert_problem(410, "challenge-expired");
    assert_eq!(app.count("step_up_tokens").await, 0);
    assert_eq!(factor(&app, &alice, "pin").await["remaining_attempts"], 5);
}

async fn five_failures_lock_a_factor_until_the_cool_down_and_a_success_resets_the_count(app: TestApp) {
    let (token, me) = customer(&app, "+8613900000005").await;
    assert_eq!(
        put_pin(&app, &token, json!({ "pin": PIN })).await.status,
        StatusCode::NO_CONTENT
    );

    // A success resets the count.
    let id = challenge(&app, &token, "pin").await;
    for _ in 0..3 {
        verify(&app, &token, &id, json!({ "pin": "000111" }))
            .await
            .assert_problem(403, "pin-incorrect");
    }
    assert_eq!(
        verify(&app, &token, &id, json!({ "pin": PIN })).await.status,
        StatusCode::OK
    );
    assert_eq!(factor(&app, &token, "pin").await["remaining_attempts"], 5);

    // Five consecutive failures lock the PIN.
    let id = challenge(&app, &token, "pin").await;
    for remaining in (1..=4).rev() {
        let r = verify(&app, &token, &id, json!({ "pin": "000111" })).await;
        r.assert_problem(403, "pin-incorrect");
        assert_eq!(r.body["remaining_attempts"], remaining);
    }
    let locked = verify(&app, &token, &id, json!({ "pin": "000111" })).await;
    locked.assert_problem(423, "factor-locked");
    assert_eq!(locked.body["retry_after"], 900);
    assert_eq!(locked.body["factor"], "pin");
    // Locked: even the right PIN is refused, no new PIN challenge, no PIN change.
    let r = verify(&app, &token, &id, json!({ "pin": PIN })).await;
    r.assert_problem(423, "factor-locked");
    app.post(
        "/api/v1/step-up/challenges",
        Some(&token),
        json!({ "purpose": "transfer", "factor": "pin" }),
    )
    .await
    .assert_problem(423, "factor-locked");
    put_pin(&app, &token, json!({ "pin": "314159", "old_pin": PIN }))
        .await
        .assert_problem(423, "factor-locked");
    let pin = factor(&app, &token, "pin").await;
    assert_eq!(pin["locked"], true);
    assert!(pin["locked_until"].is_string());
    // Other factors stay usable.
    assert_eq!(factor(&app, &token, "sms").await["locked"], false);

    // Ten minutes on, still locked, with the remaining wait.
    app.clock.advance(SignedDuration::from_mins(10));
    let r = app
        .post(
            "/api/v1/step-up/challenges",
            Some(&token),
            json!({ "purpose": "transfer", "factor": "pin" }),
        )
        .await;
    r.assert_problem(423, "factor-locked");
    assert_eq!(r.body["retry_after"], 300);

    // After the cool-down the PIN works again and the count starts afresh.
    app.clock.advance(SignedDuration::from_mins(5));
    assert_eq!(factor(&app, &token, "pin").await["locked"], false);
    let id = challenge(&app, &token, "pin").await;
    let r = verify(&app, &token, &id, json!({ "pin": "000111" })).await;
    r.assert_problem(403, "pin-incorrect");
    assert_eq!(r.body["remaining_attempts"], 4);
    assert_eq!(
        verify(&app, &token, &id, json!({ "pin": PIN })).await.status,
        StatusCode::OK
    );
    assert_eq!(attempts(&app, me, "factor-locked").await, 5);
}

async fn an_authenticator_app_is_enrolled_and_its_codes_work_once(app: TestApp) {
    let (token, me) = customer(&app, "+8613900000006").await;
    app.post(
        "/api/v1/security/totp/confirm",
        Some(&token),
        json!({ "code": "123456" }),
    )
    .await
    .assert_problem(409, "totp-not-started");
    let r = app.post("/api/v1/security/totp", Some(&token), json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let secret_b32 = r.body["secret"].as_str().expect("secret").to_owned();
    let uri = r.body["otpauth_uri"].as_str().expect("uri");
    assert!(
        uri.starts_with("otpauth://totp/Huoban:139%2A%2A%2A%2A0006?secret="),
        "{uri}"
    );
    assert!(uri.contains(&secret_b32));
    let secret = domain::base32_decode(&secret_b32).expect("base32");
    assert_eq!(secret.len(), 20);
    assert_eq!(
        factor(&app, &token, "totp").await["enrolled"],
        false,
        "not before confirmation"
    );

    let code = domain::totp_code(&secret, app.clock.now());
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let r = app
        .post("/api/v1/security/totp/confirm", Some(&token), json!({ "code": wrong }))
        .await;
    r.assert_problem(403, "code-incorrect");
    assert_eq!(r.body["remaining_attempts"], 4);
    let r = app
        .post("/api/v1/security/totp/confirm", Some(&token), json!({ "code": code }))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    assert_eq!(factor(&app, &token, "totp").await["enrolled"], true);
    app.post("/api/v1/security/totp", Some(&token), json!({}))
        .await
        .assert_problem(409, "totp-already-enrolled");

    // The confirmation code cannot be replayed for a step-up.
    let id = challenge(&app, &token, "totp").await;
    verify(&app, &token, &id, json!({ "code": code }))
        .await
        .assert_problem(409, "code-already-used");
    // The next period's code works, once.
    app.clock.advance(SignedDuration::from_secs(30));
    let next = domain::totp_code(&secret, app.clock.now());
    let r = verify(&app, &token, &id, json!({ "code": next })).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["factor"], "totp");
    let step_up = r.body["step_up_token"].as_str().expect("token").to_owned();
    let id2 = challenge(&app, &token, "totp").await;
    verify(&app, &token, &id2, json!({ "code": next }))
        .await
        .assert_problem(409, "code-already-used");
    // An old code (expired: two periods ago) is simply wrong.
    app.clock.advance(SignedDuration::from_secs(90));
    let r = verify(&app, &token, &id2, json!({ "code": next })).await;
    r.assert_problem(403, "code-incorrect");
    assert_eq!(
        app.app.stepup.consume(me, &step_up, "transfer").await.ok(),
        Some(Factor::Totp)
    );
}

async fn outbox(app: &TestApp, support: &str, customer: Uuid) -> Vec<Value> {
    let path = format!("/api/v1/staff/step-up/outbox?customer_id={customer}");
    let r = app.get(&path, Some(support)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["items"].as_array().expect("items").clone()
}

fn code_in(body: &str) -> String {
    let start = body.find("验证码 ").expect("code in message") + "验证码 ".len();
    body[start..start + 6].to_owned()
}

async fn a_sent_code_arrives_in_the_outbox_and_works_once_before_it_expires(app: TestApp) {
    let (token, me) = customer(&app, "+8613900000007").await;
    let support = app.staff(Role::SupportAgent).await;
    let id = challenge(&app, &token, "sms").await;
    let messages = outbox(&app, &support, me).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["channel"], "sms");
    let code = code_in(messages[0]["body"].as_str().expect("body"));
    // The code is never stored in clear.
    let stored: Option<String> = sqlx::query_scalar("SELECT code_digest FROM step_up_challenges WHERE id = $1")
        .bind(&id)
        .fetch_one(app.app.db.reader())
        .await
        .expect("row");
    assert_ne!(stored.as_deref(), Some(code.as_str()));

    let wrong = if code == "000000" { "000001" } else { "000000" };
    let r = verify(&app, &token, &id, json!({ "code": wrong })).await;
    r.assert_problem(403, "code-incorrect");
    assert_eq!(r.body["remaining_attempts"], 4);
    let r = verify(&app, &token, &id, json!({ "code": code })).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["factor"], "sms");
    verify(&app, &token, &id, json!({ "code": code }))
        .await
        .assert_problem(409, "code-already-used");

    // A code that waited too long has expired.
    let id = challenge(&app, &token, "sms").await;
    let messages = outbox(&app, &support, me).await;
    assert_eq!(messages.len(), 2);
    let code = code_in(messages[0]["body"].as_str().expect("body"));
    app.clock.advance(SignedDuration::from_secs(301));
    verify(&app, &token, &id, json!({ "code": code }))
        .await
        .assert_problem(410, "code-expired");

    // Only staff who handle support read the outbox.
    app.get("/api/v1/staff/step-up/outbox", Some(&token))
        .await
        .assert_problem(403, "staff-only");
    let operator = app.staff(Role::Operator).await;
    app.get("/api/v1/staff/step-up/outbox", Some(&operator))
        .await
        .assert_problem(403, "permission-denied");
}

async fn a_token_redeems_once_for_its_customer_and_purpose_only(app: TestApp) {
    let (alice_token, alice) = customer(&app, "+8613900000008").await;
    let (_, bob) = customer(&app, "+8613900000009").await;
    assert_eq!(
        put_pin(&app, &alice_token, json!({ "pin": PIN })).await.status,
        StatusCode::NO_CONTENT
    );
    let step_up = pin_token(&app, &alice_token).await;
    let s = &app.app.stepup;

    let e = s
        .consume(alice, &step_up, "card-lost")
        .await
        .expect_err("other purpose");
    assert_eq!(e.slug, "step-up-token-wrong-purpose");
    let e = s.consume(bob, &step_up, "transfer").await.expect_err("other customer");
    assert_eq!(e.slug, "step-up-token-invalid");
    let e = s.consume(alice, "hbu_forged", "transfer").await.expect_err("forged");
    assert_eq!(e.slug, "step-up-token-invalid");
    // None of that used the token up.
    assert_eq!(s.consume(alice, &step_up, "transfer").await.ok(), Some(Factor::Pin));
    let e = s.consume(alice, &step_up, "transfer").await.expect_err("used");
    assert_eq!(e.slug, "step-up-token-used");
    assert_eq!(e.status.as_u16(), 409);

    // A token not redeemed within five minutes expires.
    let late = pin_token(&app, &alice_token).await;
    app.clock.advance(SignedDuration::from_secs(301));
    let e = s.consume(alice, &late, "transfer").await.expect_err("expired");
    assert_eq!(e.slug, "step-up-token-expired");
    assert_eq!(attempts(&app, alice, "step-up-token-invalid").await, 1);
    assert_eq!(attempts(&app, bob, "step-up-token-invalid").await, 1);
}

async fn concurrent_redemptions_of_one_token_have_exactly_one_winner(app: TestApp) {
    let (token, me) = customer(&app, "+8613900000010").await;
    assert_eq!(
        put_pin(&app, &token, json!({ "pin": PIN })).await.status,
        StatusCode::NO_CONTENT
    );
    for _ in 0..3 {
        let step_up = pin_token(&app, &token).await;
        let attempts: Vec<_> = (0..8)
            .map(|_| {
                let s = app.app.stepup.clone();
                let t = step_up.clone();
                tokio::spawn(async move { s.consume(me, &t, "transfer").await })
            })
            .collect();
        let mut won = 0;
        for a in attempts {
            match a.await.expect("task") {
                Ok(f) => {
                    assert_eq!(f, Factor::Pin);
                    won += 1;
                }
                Err(e) => assert_eq!(e.slug, "step-up-token-used"),
            }
        }
        assert_eq!(won, 1);
    }
}

// ---- passkeys, in headless Chromium with a WebDriver virtual authenticator ----

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// Decodes base64url in the browser, calls `navigator.credentials.create` or `.get` with
/// the server's options, and answers the credential as JSON (binary fields base64url).
const WEBAUTHN_JS: &str = r#"
const [mode, options] = arguments; const done = arguments[arguments.length - 1];
const dec = s => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - s.length % 4) % 4)), c => c.charCodeAt(0));
const enc = b => btoa(String.fromCharCode(...new Uint8Array(b))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const pk = options.publicKey;
pk.challenge = dec(pk.challenge);
const ids = list => (list || []).map(c => ({ ...c, id: dec(c.id) }));
(async () => {
  if (mode === 'create') {
    pk.user.id = dec(pk.user.id);
    pk.excludeCredentials = ids(pk.excludeCredentials);
    const c = await navigator.credentials.create({ publicKey: pk });
    return { id: c.id, rawId: enc(c.rawId), type: c.type, extensions: {},
      response: { attestationObject: enc(c.response.attestationObject), clientDataJSON: enc(c.response.clientDataJSON) } };
  }
  pk.allowCredentials = ids(pk.allowCredentials);
  const c = await navigator.credentials.get({ publicKey: pk });
  return { id: c.id, rawId: enc(c.rawId), type: c.type, extensions: {},
    response: { authenticatorData: enc(c.response.authenticatorData), clientDataJSON: enc(c.response.clientDataJSON),
      signature: enc(c.response.signature), userHandle: c.response.userHandle ? enc(c.response.userHandle) : null } };
})().then(done, e => done({ error: String(e) }));
"#;

/// A headless Chromium driven over WebDriver, with a virtual platform authenticator
/// that verifies the user (the "biometric" passkey).
struct Browser {
    http: reqwest::Client,
    session: String,
    _driver: tokio::process::Child,
}

impl Browser {
    async fn start(page: &str) -> Option<Browser> {
        if !std::path::Path::new(CHROMEDRIVER).exists() || !std::path::Path::new(CHROMIUM).exists() {
            // Like the PostgreSQL tests: skipped on a developer machine, a failure on CI.
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{CHROMEDRIVER} and {CHROMIUM} are required under CI=true (Debian: chromium chromium-driver)"
            );
            eprintln!("skipping: {CHROMEDRIVER} or {CHROMIUM} is not installed");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let driver = tokio::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if http.get(format!("{base}/status")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let caps = json!({ "capabilities": { "alwaysMatch": { "browserName": "chrome", "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] } } } });
        let created: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("session request")
            .json()
            .await
            .expect("session json");
        let session = format!(
            "{base}/session/{}",
            created["value"]["sessionId"].as_str().expect("session id")
        );
        let browser = Browser {
            http,
            session,
            _driver: driver,
        };
        browser.command("url", json!({ "url": page })).await;
        browser
            .command(
                "webauthn/authenticator",
                json!({ "protocol": "ctap2", "transport": "internal", "hasResidentKey": true,
                        "hasUserVerification": true, "isUserVerified": true }),
            )
            .await;
        Some(browser)
    }

    async fn command(&self, path: &str, body: Value) -> Value {
        let reply: Value = self
            .http
            .post(format!("{}/{path}", self.session))
            .json(&body)
            .send()
            .await
            .expect("webdriver command")
            .json()
            .await
            .expect("webdriver json");
        assert!(reply["value"]["error"].is_null(), "{path}: {reply}");
        reply["value"].clone()
    }

    /// Runs the WebAuthn ceremony `mode` (`create` or `get`) with the server's options.
    async fn ceremony(&self, mode: &str, options: &Value) -> Value {
        let credential = self
            .command(
                "execute/async",
                json!({ "script": WEBAUTHN_JS, "args": [mode, options] }),
            )
            .await;
        assert!(credential["error"].is_null(), "{mode}: {credential}");
        credential
    }

    async fn close(self) {
        let _ = self.http.delete(&self.session).send().await;
    }
}

async fn a_passkey_registered_in_chromium_proves_a_step_up_and_a_forged_assertion_does_not(app: TestApp) {
    let (token, me) = customer(&app, "+8613900000011").await;
    app.post(
        "/api/v1/step-up/challenges",
        Some(&token),
        json!({ "purpose": "transfer", "factor": "passkey" }),
    )
    .await
    .assert_problem(409, "factor-not-enrolled");
    // The relying party is `localhost` (the default); pages on any localhost port count.
    let port = app.base.rsplit(':').next().expect("port");
    let Some(browser) = Browser::start(&format!("http://localhost:{port}/")).await else {
        return;
    };

    // Registration.
    let r = app
        .post("/api/v1/security/passkeys/registrations", Some(&token), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let registration = r.body["id"].as_str().expect("id").to_owned();
    let attestation = browser.ceremony("create", &r.body["options"]).await;
    let finish = format!("/api/v1/security/passkeys/registrations/{registration}/finish");
    let r = app
        .post(&finish, Some(&token), json!({ "credential": attestation }))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    app.post(&finish, Some(&token), json!({ "credential": attestation }))
        .await
        .assert_problem(409, "registration-finished");
    assert_eq!(factor(&app, &token, "passkey").await["enrolled"], true);

    // A step-up with the passkey.
    let r = app
        .post(
            "/api/v1/step-up/challenges",
            Some(&token),
            json!({ "purpose": "transfer", "factor": "passkey" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["id"].as_str().expect("id").to_owned();
    let assertion = browser.ceremony("get", &r.body["passkey_options"]).await;

    // A forged assertion: the signature altered.
    let mut forged = assertion.clone();
    let signature = forged["response"]["signature"].as_str().expect("signature").to_owned();
    let mut bytes = signature.into_bytes();
    let middle = bytes.len() / 2;
    bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
    forged["response"]["signature"] = Value::String(String::from_utf8(bytes).expect("ascii"));
    let r = verify(&app, &token, &id, json!({ "credential": forged })).await;
    r.assert_problem(403, "passkey-invalid");
    assert_eq!(r.body["remaining_attempts"], 4);
    // Garbage is just as invalid.
    verify(&app, &token, &id, json!({ "credential": { "id": "x" } }))
        .await
        .assert_problem(403, "passkey-invalid");

    let r = verify(&app, &token, &id, json!({ "credential": assertion })).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["factor"], "passkey");
    let step_up = r.body["step_up_token"].as_str().expect("token").to_owned();
    assert_eq!(
        app.app.stepup.consume(me, &step_up, "transfer").await.ok(),
        Some(Factor::Passkey)
    );
    assert_eq!(factor(&app, &token, "passkey").await["remaining_attempts"], 5);

    // The same assertion replayed for a new challenge is refused (its challenge differs).
    let r = app
        .post(
            "/api/v1/step-up/challenges",
            Some(&token),
            json!({ "purpose": "transfer", "factor": "passkey" }),
        )
        .await;
    let id = r.body["id"].as_str().expect("id").to_owned();
    verify(&app, &token, &id, json!({ "credential": assertion }))
        .await
        .assert_problem(403, "passkey-invalid");
    browser.close().await;
}
