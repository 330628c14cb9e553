//! Hardening: rate limits on sign-in, step-up and reward claims (per address and per
//! account, 429 `rate-limited` with Retry-After), sign out everywhere, security headers
//! on every response, and cross-site writes refused (CSRF: 403 `cross-site-request`,
//! nothing written).

use huoban_identity::{
    Role,
    limits::{Limit, Rate},
};
use huoban_kit::Backend;
use reqwest::Method;
use serde_json::json;

use crate::helpers::{TestApp, second_node, spawn_app_with};

crate::on_both_backends!(
    sign_out_everywhere_revokes_every_session_of_the_caller,
    every_response_carries_security_headers
);

crate::for_each_backend!(
    sign_in_is_limited_per_account_then_refills,
    sign_in_is_limited_per_address_across_accounts,
    step_up_and_claims_are_limited_per_customer,
    hsts_is_sent_when_configured,
    cross_site_writes_are_refused_and_change_nothing,
    same_site_pages_and_disabled_protection_are_configurable,
    a_sign_out_reaches_the_session_memory_of_every_node,
);

fn limited(burst: u32, per_minute: u32) -> Rate {
    Rate::new(burst, per_minute)
}

async fn sign_in_is_limited_per_account_then_refills(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| {
        c.rate_limits.sign_in = Limit {
            per_ip: Rate::OFF,
            per_account: limited(3, 1),
        }
    })
    .await
    else {
        return;
    };
    app.register("13600000001", "限流客户").await;
    let attempt = |password: &'static str| {
        app.post(
            "/api/v1/sessions",
            None,
            json!({ "phone": "136 0000 0001", "password": password }),
        )
    };
    for _ in 0..3 {
        attempt("wrong-password")
            .await
            .assert_problem(401, "invalid-credentials");
    }
    let refused = attempt("secret-pass").await;
    refused.assert_problem(429, "rate-limited");
    let retry: u64 = refused.headers["retry-after"]
        .to_str()
        .expect("header")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(refused.body["retry_after_seconds"], retry);
    // Another account is not affected.
    app.register("13600000002", "别的客户").await;
    assert!(app.sign_in("13600000002", "h5").await.len() > 10);
    // A minute later one attempt is allowed again.
    app.clock.advance(jiff::SignedDuration::from_secs(60));
    let ok = attempt("secret-pass").await;
    assert_eq!(ok.status, 201, "{:?}", ok.body);
    attempt("secret-pass").await.assert_problem(429, "rate-limited");
}

async fn sign_in_is_limited_per_address_across_accounts(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| {
        c.rate_limits.sign_in = Limit {
            per_ip: limited(4, 1),
            per_account: Rate::OFF,
        }
    })
    .await
    else {
        return;
    };
    for i in 0..4 {
        app.post(
            "/api/v1/sessions",
            None,
            json!({ "phone": format!("1360000010{i}"), "password": "guess-guess" }),
        )
        .await
        .assert_problem(401, "invalid-credentials");
    }
    app.post(
        "/api/v1/staff/sessions",
        None,
        json!({ "username": "admin", "password": "guess-guess" }),
    )
    .await
    .assert_problem(429, "rate-limited");
    // Behind a trusted proxy the forwarded address counts instead; not trusted here, so a
    // forged header does not escape the limit.
    let forged = app
        .send(
            Method::POST,
            "/api/v1/sessions",
            None,
            Some(json!({ "phone": "13600000200", "password": "guess-guess" })),
            &[("x-forwarded-for", "203.0.113.9")],
        )
        .await;
    forged.assert_problem(429, "rate-limited");
}

async fn step_up_and_claims_are_limited_per_customer(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| {
        c.rate_limits.step_up = Limit {
            per_ip: Rate::OFF,
            per_account: limited(2, 1),
        };
        c.rate_limits.claims = Limit {
            per_ip: Rate::OFF,
            per_account: limited(2, 1),
        };
    })
    .await
    else {
        return;
    };
    let a = app.customer("13600000301").await;
    let b = app.customer("13600000302").await;
    let reward = uuid::Uuid::now_v7();
    for n in 0..2 {
        let r = claim(&app, reward, &a, n).await;
        assert_ne!(r.status, 429, "{:?}", r.body);
    }
    claim(&app, reward, &a, 3).await.assert_problem(429, "rate-limited");
    let other = claim(&app, reward, &b, 4).await;
    assert_ne!(other.status, 429, "another customer has their own bucket");

    // Step-up paths are limited by prefix, whichever factor they address.
    for path in ["/api/v1/step-up/pin/verify", "/api/v1/step-up/otp/verify"] {
        let r = app.post(path, Some(&a), json!({ "code": "000000" })).await;
        assert_ne!(r.status, 429, "{:?}", r.body);
    }
    app.post("/api/v1/step-up/pin/verify", Some(&a), json!({ "code": "000000" }))
        .await
        .assert_problem(429, "rate-limited");
    let get = app.get("/api/v1/step-up/factors", Some(&a)).await;
    assert_ne!(get.status, 429, "reads are not limited");
}

async fn claim(app: &TestApp, reward: uuid::Uuid, token: &str, n: u32) -> crate::helpers::Reply {
    app.send(
        Method::POST,
        &format!("/api/v1/rewards/{reward}/claims"),
        Some(token),
        Some(json!({})),
        &[("idempotency-key", &format!("claim-{n}-{}", &token[..12]))],
    )
    .await
}

async fn sign_out_everywhere_revokes_every_session_of_the_caller(app: TestApp) {
    let first = app.customer("13600000401").await;
    let second = app.sign_in("13600000401", "app").await;
    let third = app.sign_in("13600000401", "mini_program").await;
    let bystander = app.customer("13600000402").await;
    let staff = app.staff(Role::Auditor).await;

    let out = app
        .send(Method::DELETE, "/api/v1/sessions", Some(&second), None, &[])
        .await;
    assert_eq!(out.status, 200, "{:?}", out.body);
    assert_eq!(out.body["revoked"], 3);
    for token in [&first, &second, &third] {
        app.get("/api/v1/me", Some(token))
            .await
            .assert_problem(401, "session-revoked");
    }
    assert_eq!(app.get("/api/v1/me", Some(&bystander)).await.status, 200);
    app.send(Method::DELETE, "/api/v1/sessions", None, None, &[])
        .await
        .assert_problem(401, "unauthenticated");
    let audit = app
        .get("/api/v1/staff/audit?action=session.sign_out_everywhere", Some(&staff))
        .await;
    assert_eq!(audit.body["items"][0]["details"]["revoked"], 3, "{:?}", audit.body);
}

async fn every_response_carries_security_headers(app: TestApp) {
    for path in ["/healthz", "/api/v1/me", "/no-such-page"] {
        let r = app.get(path, None).await;
        assert_eq!(r.headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(r.headers["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(r.headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(
            r.headers["content-security-policy"], "default-src 'none'; frame-ancestors 'none'",
            "{path}"
        );
        assert!(
            r.headers.get("strict-transport-security").is_none(),
            "no HSTS unless configured"
        );
    }
    let page = app.get("/", None).await;
    let csp = page.headers["content-security-policy"].to_str().expect("csp");
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
}

async fn hsts_is_sent_when_configured(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| c.http.hsts_max_age_secs = 31_536_000).await else {
        return;
    };
    let r = app.get("/healthz", None).await;
    assert_eq!(
        r.headers["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
}

const H5: &str = "https://h5.bank.example";
const PUBLIC: &str = "https://huoban.bank.example";

/// A browser-like request: the forged Fetch Metadata and `Origin` headers a page on
/// another site would make the browser send.
async fn browser(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
    headers: &[(&str, &str)],
) -> crate::helpers::Reply {
    app.send(method, path, token, body, headers).await
}

async fn cross_site_writes_are_refused_and_change_nothing(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| {
        c.http.cors_origins = vec![H5.into()];
        c.public_url = Some(format!("{PUBLIC}/"));
    })
    .await
    else {
        return;
    };
    let (_, a) = crate::accounts::customer(&app, "13600000501").await;
    let (current, savings, _) = crate::accounts::standard_accounts(&app, &a).await;
    crate::accounts::fund(&app, &current, 100_000, "salary").await;
    let sessions_before = app.count("sessions").await;
    let own_origin = app.base.clone();
    let evil = "https://evil.example";
    let transfer_body = || json!({ "from_account": current, "to_account": savings, "amount": 500, "currency": "CNY" });

    // Refused: every state-changing method, whatever the browser says short of our pages.
    let forged: [&[(&str, &str)]; 5] = [
        &[("sec-fetch-site", "cross-site"), ("origin", evil)],
        &[("sec-fetch-site", "cross-site")],
        &[("origin", evil)],
        &[("origin", "null")],
        &[("sec-fetch-site", "same-site"), ("origin", "https://shop.bank.example")],
    ];
    for headers in forged {
        let mut with_key = headers.to_vec();
        with_key.push(("idempotency-key", "csrf-transfer-1"));
        browser(
            &app,
            Method::POST,
            "/api/v1/transfers",
            Some(&a),
            Some(transfer_body()),
            &with_key,
        )
        .await
        .assert_problem(403, "cross-site-request");
        browser(
            &app,
            Method::PATCH,
            "/api/v1/me",
            Some(&a),
            Some(json!({ "name": "被改名" })),
            headers,
        )
        .await
        .assert_problem(403, "cross-site-request");
        browser(&app, Method::DELETE, "/api/v1/sessions", Some(&a), None, headers)
            .await
            .assert_problem(403, "cross-site-request");
        browser(
            &app,
            Method::POST,
            "/api/v1/sessions",
            None,
            Some(json!({ "phone": "13600000501", "password": "secret-pass" })),
            headers,
        )
        .await
        .assert_problem(403, "cross-site-request");
    }
    // Nothing moved, nothing renamed, nobody signed out, no session made, no key kept.
    assert_eq!(crate::accounts::balance(&app, &current).await, 100_000);
    assert_eq!(crate::accounts::balance(&app, &savings).await, 0);
    let me = app.get("/api/v1/me", Some(&a)).await;
    assert_eq!(me.status, 200, "still signed in: {:?}", me.body);
    assert_eq!(me.body["name"], "测试客户");
    assert_eq!(app.count("sessions").await, sessions_before);
    // Reads are not refused: CORS decides whether the page may see them.
    let read = browser(
        &app,
        Method::GET,
        "/api/v1/me",
        Some(&a),
        None,
        &[("sec-fetch-site", "cross-site"), ("origin", evil)],
    )
    .await;
    assert_eq!(read.status, 200, "{:?}", read.body);

    // Allowed: the configured H5 origin across sites, our own origin, the public URL, and
    // callers that are not browsers. The refused key was never stored, so it still works.
    let allowed: [&[(&str, &str)]; 5] = [
        &[("sec-fetch-site", "cross-site"), ("origin", H5)],
        &[("sec-fetch-site", "same-origin"), ("origin", own_origin.as_str())],
        &[("origin", own_origin.as_str())],
        &[("sec-fetch-site", "same-site"), ("origin", PUBLIC)],
        &[],
    ];
    for (n, headers) in allowed.iter().enumerate() {
        let key = format!("csrf-transfer-{}", n + 1);
        let mut with_key = headers.to_vec();
        with_key.push(("idempotency-key", &key));
        let r = browser(
            &app,
            Method::POST,
            "/api/v1/transfers",
            Some(&a),
            Some(transfer_body()),
            &with_key,
        )
        .await;
        assert_eq!(r.status, 201, "{headers:?}: {:?}", r.body);
        assert!(
            r.headers.get(huoban_kit::idempotency::REPLAYED).is_none(),
            "a new transfer, not a replay"
        );
        let name = format!("客户{n}");
        let r = browser(
            &app,
            Method::PATCH,
            "/api/v1/me",
            Some(&a),
            Some(json!({ "name": name })),
            headers,
        )
        .await;
        assert_eq!(r.status, 200, "{headers:?}: {:?}", r.body);
        assert_eq!(r.body["name"], name.as_str());
    }
    assert_eq!(crate::accounts::balance(&app, &savings).await, 5 * 500);
    assert_eq!(crate::accounts::balance(&app, &current).await, 100_000 - 5 * 500);
    let signed_in = browser(
        &app,
        Method::POST,
        "/api/v1/sessions",
        None,
        Some(json!({ "phone": "13600000501", "password": "secret-pass" })),
        &[("sec-fetch-site", "cross-site"), ("origin", H5)],
    )
    .await;
    assert_eq!(signed_in.status, 201, "{:?}", signed_in.body);
}

async fn same_site_pages_and_disabled_protection_are_configurable(backend: Backend) {
    let same_site: &[(&str, &str)] = &[("sec-fetch-site", "same-site"), ("origin", "https://shop.bank.example")];
    for (allow_same_site, enabled) in [(true, true), (false, false)] {
        let Some(app) = spawn_app_with(backend, |c| {
            c.http.csrf_allow_same_site = allow_same_site;
            c.http.csrf_protection = enabled;
        })
        .await
        else {
            return;
        };
        let a = app.customer("13600000601").await;
        let r = browser(
            &app,
            Method::PATCH,
            "/api/v1/me",
            Some(&a),
            Some(json!({ "name": "同站" })),
            same_site,
        )
        .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let cross: &[(&str, &str)] = &[("sec-fetch-site", "cross-site"), ("origin", "https://evil.example")];
        let r = browser(
            &app,
            Method::PATCH,
            "/api/v1/me",
            Some(&a),
            Some(json!({ "name": "跨站" })),
            cross,
        )
        .await;
        if enabled {
            r.assert_problem(403, "cross-site-request");
        } else {
            assert_eq!(r.status, 200, "protection off: {:?}", r.body);
        }
    }
}

/// `GET /api/v1/me` with a token against any node's base URL; the status.
async fn me_on(app: &TestApp, base: &str, token: &str) -> u16 {
    app.http
        .get(format!("{base}/api/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

/// Polls until the node answers `status` for the token, for at most `within`; the time it
/// took, or a failure naming what it answered instead.
async fn until_status(app: &TestApp, base: &str, token: &str, status: u16, within: std::time::Duration) {
    let start = std::time::Instant::now();
    loop {
        let got = me_on(app, base, token).await;
        if got == status {
            return;
        }
        assert!(
            start.elapsed() < within,
            "{base} still answers {got}, not {status}, after {within:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Customer sessions are remembered in each node's memory (`identity.session_cache_ms`), so
/// an authenticated request need not read its session. A sign-out on a node is refused on
/// that node at once; on PostgreSQL every other node hears it through a notification long
/// before its bound (60 s here); on SQLite, where nodes have no channel, within the bound
/// (300 ms here). A revocation written behind Huoban's back (no notification) is what shows
/// the memory is used: it is honoured once the bound has passed.
async fn a_sign_out_reaches_the_session_memory_of_every_node(backend: Backend) {
    let bound_ms = match backend {
        Backend::Postgres => 60_000,
        Backend::Sqlite => 300,
    };
    let Some(app) = spawn_app_with(backend, |c| c.identity.session_cache_ms = bound_ms).await else {
        return;
    };
    let (node2, base2, _stop) = second_node(&app).await;
    let one = app.customer("13600000411").await;
    let two = app.sign_in("13600000411", "app").await;
    let other = app.customer("13600000412").await;
    let base1 = app.base.clone();
    let calls = [
        (&one, &base1),
        (&two, &base1),
        (&one, &base2),
        (&two, &base2),
        (&other, &base2),
    ];
    // On PostgreSQL a node uses its memory only once its listener is connected.
    for (token, base) in calls {
        until_status(&app, base, token, 200, std::time::Duration::from_secs(5)).await;
    }
    let remembered = || {
        (
            app.app.identity.sessions_remembered(),
            node2.identity.sessions_remembered(),
        )
    };
    let warm = std::time::Instant::now();
    for _ in 0..50 {
        if remembered().0 >= 2 && remembered().1 >= 3 {
            break;
        }
        for (token, base) in calls {
            assert_eq!(me_on(&app, base, token).await, 200);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        remembered().0 >= 2 && remembered().1 >= 3,
        "sessions remembered by node 1 and node 2: {:?} after {:?}",
        remembered(),
        warm.elapsed()
    );

    // Signing out one session: refused at once on the node that signed it out…
    let out = app
        .send(Method::DELETE, "/api/v1/sessions/current", Some(&one), None, &[])
        .await;
    assert!(out.status.is_success(), "{:?}", out.body);
    assert_eq!(me_on(&app, &base1, &one).await, 401);
    // …and soon on the other node, which had it in memory.
    let reach = std::time::Duration::from_millis(bound_ms).min(std::time::Duration::from_secs(3)) * 3;
    until_status(&app, &base2, &one, 401, reach).await;
    assert_eq!(me_on(&app, &base2, &two).await, 200, "the other session stays");

    // Signing out everywhere on node 2: node 2 at once, node 1 soon.
    let out = app
        .http
        .delete(format!("{base2}/api/v1/sessions"))
        .bearer_auth(&two)
        .send()
        .await
        .expect("request");
    assert_eq!(out.status().as_u16(), 200);
    assert_eq!(me_on(&app, &base2, &two).await, 401);
    until_status(&app, &base1, &two, 401, reach).await;
    assert_eq!(
        me_on(&app, &base2, &other).await,
        200,
        "another customer is not signed out"
    );

    // A revocation that bypasses Huoban (no notification) is seen once the bound passed:
    // until then node 2 answers from memory, which is what saves the read.
    assert_eq!(me_on(&app, &base2, &other).await, 200);
    sqlx::query("UPDATE sessions SET revoked_at = 1 WHERE revoked_at IS NULL")
        .execute(app.app.db.writer())
        .await
        .expect("revoke behind Huoban's back");
    if backend == Backend::Postgres {
        assert_eq!(
            me_on(&app, &base2, &other).await,
            200,
            "answered from memory within the bound"
        );
    } else {
        until_status(
            &app,
            &base2,
            &other,
            401,
            std::time::Duration::from_millis(bound_ms * 5),
        )
        .await;
    }
}
