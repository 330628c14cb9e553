//! Sign-in through the bank's identity provider: assertions signed with ES256 (keys from
//! a JWKS URL served on loopback, as an IdP publishes them) and RS256 (a configured PEM
//! key) open Huoban sessions; every kind of forged or stale assertion is refused and
//! writes nothing.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use huoban_identity::idp::IdpSettings;
use huoban_kit::Backend;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, spawn_app_with};

const ES_KEY: &str = include_str!("../fixtures/idp-es256.key");
const RS_KEY: &str = include_str!("../fixtures/idp-rs256.key");
const RS_PUB: &str = include_str!("../fixtures/idp-rs256.pub");
const JWKS: &str = include_str!("../fixtures/idp-jwks.json");
const ISSUER: &str = "https://idp.bank.test";
const AUDIENCE: &str = "huoban";

/// Serves the JWKS on a loopback port and counts the fetches.
async fn jwks_server() -> (String, Arc<AtomicUsize>) {
    let fetches = Arc::new(AtomicUsize::new(0));
    let counter = fetches.clone();
    let router = axum::Router::new().route(
        "/.well-known/jwks.json",
        axum::routing::get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { ([("content-type", "application/json")], JWKS) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/.well-known/jwks.json", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, fetches)
}

fn sign(alg: Algorithm, kid: Option<&str>, claims: serde_json::Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    let key = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(ES_KEY.as_bytes()).expect("ec key"),
        Algorithm::RS256 => EncodingKey::from_rsa_pem(RS_KEY.as_bytes()).expect("rsa key"),
        _ => EncodingKey::from_secret(b"shared-secret"),
    };
    jsonwebtoken::encode(&header, &claims, &key).expect("signed")
}

fn claims(sub: &str, phone: Option<&str>) -> serde_json::Value {
    let now = jiff::Timestamp::now().as_second();
    let mut c = json!({ "iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + 300, "name": "周杰" });
    if let Some(p) = phone {
        c["phone_number"] = json!(p);
    }
    c
}

async fn app_with_idp(backend: Backend, jwks_url: Option<String>, pem: Vec<String>) -> Option<TestApp> {
    spawn_app_with(backend, |c| {
        c.identity.idp = Some(IdpSettings {
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            jwks_url,
            public_keys_pem: pem,
            provision: true,
        });
    })
    .await
}

crate::for_each_backend!(
    an_es256_assertion_from_the_jwks_opens_a_session_and_provisions_once,
    an_rs256_assertion_checked_with_a_configured_key_links_a_registered_customer,
    forged_stale_or_foreign_assertions_are_refused_and_write_nothing,
    without_an_identity_provider_the_exchange_is_not_found,
);

async fn an_es256_assertion_from_the_jwks_opens_a_session_and_provisions_once(backend: Backend) {
    let (url, fetches) = jwks_server().await;
    let Some(app) = app_with_idp(backend, Some(url), vec![]).await else {
        return;
    };
    let assertion = sign(
        Algorithm::ES256,
        Some("es-key-1"),
        claims("bank-user-42", Some("13600000001")),
    );
    let first = app
        .post(
            "/api/v1/sessions/idp",
            None,
            json!({ "assertion": assertion, "channel": "app" }),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    assert_eq!(first.body["channel"], "app");
    assert_eq!(first.body["customer"]["name"], "周杰");
    assert_eq!(first.body["customer"]["phone"], "+8613600000001");
    let again = sign(
        Algorithm::ES256,
        Some("es-key-1"),
        claims("bank-user-42", Some("13600000001")),
    );
    let second = app
        .post(
            "/api/v1/sessions/idp",
            None,
            json!({ "assertion": again, "channel": "wechat_oa" }),
        )
        .await;
    assert_eq!(
        second.body["customer"]["id"], first.body["customer"]["id"],
        "the same customer"
    );
    assert_eq!(app.count("customers").await, 1);
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "the key set is cached");
    let token = second.body["token"].as_str().expect("token");
    assert_eq!(app.get("/api/v1/me", Some(token)).await.status, StatusCode::OK);
}

async fn an_rs256_assertion_checked_with_a_configured_key_links_a_registered_customer(backend: Backend) {
    let Some(app) = app_with_idp(backend, None, vec![RS_PUB.to_owned()]).await else {
        return;
    };
    let registered = app.register("13600000002", "先注册").await;
    let assertion = sign(Algorithm::RS256, None, claims("bank-user-7", Some("+8613600000002")));
    let session = app
        .post("/api/v1/sessions/idp", None, json!({ "assertion": assertion }))
        .await;
    assert_eq!(session.status, StatusCode::CREATED, "{:?}", session.body);
    assert_eq!(
        session.body["customer"]["id"], registered.body["id"],
        "linked, not duplicated"
    );
    assert_eq!(app.count("customers").await, 1);
}

async fn forged_stale_or_foreign_assertions_are_refused_and_write_nothing(backend: Backend) {
    let (url, _) = jwks_server().await;
    let Some(app) = app_with_idp(backend, Some(url), vec![RS_PUB.to_owned()]).await else {
        return;
    };
    let now = jiff::Timestamp::now().as_second();
    let mut wrong_audience = claims("u1", Some("13600000003"));
    wrong_audience["aud"] = json!("someone-else");
    let mut wrong_issuer = claims("u1", Some("13600000003"));
    wrong_issuer["iss"] = json!("https://evil.test");
    let mut expired = claims("u1", Some("13600000003"));
    expired["exp"] = json!(now - 3600);
    let mut tampered = sign(Algorithm::ES256, Some("es-key-1"), claims("u1", Some("13600000003")));
    let payload_at = tampered.find('.').expect("dot") + 5;
    let flipped = if &tampered[payload_at..=payload_at] == "A" {
        "B"
    } else {
        "A"
    };
    tampered.replace_range(payload_at..=payload_at, flipped);
    let cases = [
        (
            "wrong audience",
            sign(Algorithm::ES256, Some("es-key-1"), wrong_audience),
        ),
        ("wrong issuer", sign(Algorithm::ES256, Some("es-key-1"), wrong_issuer)),
        ("expired", sign(Algorithm::RS256, None, expired)),
        ("tampered payload", tampered),
        (
            "HMAC with a guessed secret",
            sign(Algorithm::HS256, None, claims("u1", Some("13600000003"))),
        ),
        (
            "unknown key id",
            sign(Algorithm::ES256, Some("no-such-key"), claims("u1", Some("13600000003"))),
        ),
        ("not a JWT", "hello.world".to_owned()),
    ];
    for (what, assertion) in cases {
        let reply = app
            .post("/api/v1/sessions/idp", None, json!({ "assertion": assertion }))
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{what}: {:?}", reply.body);
        assert_eq!(reply.problem(), "invalid-assertion", "{what}");
    }
    // A valid assertion for an unknown subject without a phone number cannot provision.
    let no_phone = sign(Algorithm::RS256, None, claims("u2", None));
    app.post("/api/v1/sessions/idp", None, json!({ "assertion": no_phone }))
        .await
        .assert_problem(422, "invalid-assertion");
    assert_eq!((app.count("customers").await, app.count("sessions").await), (0, 0));
}

async fn without_an_identity_provider_the_exchange_is_not_found(backend: Backend) {
    let Some(app) = crate::helpers::spawn_app(backend).await else {
        return;
    };
    let assertion = sign(Algorithm::RS256, None, claims("u1", Some("13600000004")));
    app.post("/api/v1/sessions/idp", None, json!({ "assertion": assertion }))
        .await
        .assert_problem(404, "idp-not-configured");
}
