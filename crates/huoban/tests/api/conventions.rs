//! The HTTP conventions every endpoint follows: problem+json for bad input with nothing
//! written, request ids, Idempotency-Key replay, cursor pagination, body limits, CORS, the
//! OpenAPI document and its embedded reference page, health and metrics.

use huoban_identity::Role;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::{helpers::TestApp, on_both_backends};

on_both_backends!(
    bad_bodies_get_problem_json_and_write_nothing,
    oversized_bodies_are_refused,
    unknown_routes_and_methods_are_problem_json,
    request_ids_are_echoed_or_made,
    an_idempotent_replay_returns_the_first_response_and_writes_once,
    an_idempotency_key_reused_for_another_request_is_refused,
    idempotency_keys_belong_to_their_caller,
    cursor_pagination_walks_every_item_once,
    health_readiness_and_metrics_report,
    the_openapi_document_and_reference_are_served_without_a_cdn,
    a_lazy_write_commits_whole_or_not_at_all_and_leaves_the_writer_syncing,
);

async fn bad_bodies_get_problem_json_and_write_nothing(app: TestApp) {
    let before = app.count("customers").await;
    let cases: &[(&str, u16, &str)] = &[
        ("{\"phone\":", 400, "malformed-json"),
        ("[1,2,3]", 422, "invalid-body"),
        (
            "{\"phone\":13800138000,\"password\":\"secret-pass\",\"name\":\"A\"}",
            422,
            "invalid-body",
        ),
        (
            "{\"phone\":\"13800138000\",\"password\":\"secret-pass\",\"name\":\"A\",\"admin\":true}",
            422,
            "invalid-body",
        ),
        (
            "{\"phone\":\"13800138000\",\"password\":\"secret-pass\"}",
            422,
            "invalid-body",
        ),
    ];
    for (body, status, slug) in cases {
        let response = app
            .http
            .post(format!("{}/api/v1/customers", app.base))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status().as_u16(), *status, "{body}");
        assert_eq!(
            response.headers().get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/problem+json")
        );
        let problem: serde_json::Value = response.json().await.expect("json");
        assert_eq!(problem["type"], format!("urn:huoban:problem:{slug}"), "{body}");
        assert_eq!(problem["status"], *status);
    }
    let no_json = app
        .http
        .post(format!("{}/api/v1/customers", app.base))
        .body("phone=1")
        .send()
        .await
        .expect("sent");
    assert_eq!(no_json.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(app.count("customers").await, before, "nothing was written");
}

async fn oversized_bodies_are_refused(app: TestApp) {
    let huge = "x".repeat(app.app.config.http.body_limit_bytes + 10);
    let reply = app
        .post(
            "/api/v1/customers",
            None,
            json!({ "phone": "13800138000", "password": "secret-pass", "name": huge }),
        )
        .await;
    reply.assert_problem(413, "body-too-large");
    assert_eq!(app.count("customers").await, 0);
}

async fn unknown_routes_and_methods_are_problem_json(app: TestApp) {
    app.get("/api/v1/no-such-thing", None)
        .await
        .assert_problem(404, "not-found");
    app.send(Method::PUT, "/api/v1/me", None, None, &[])
        .await
        .assert_problem(405, "method-not-allowed");
    let token = app.staff(Role::Admin).await;
    app.get("/api/v1/staff/customers/not-a-uuid", Some(&token))
        .await
        .assert_problem(404, "not-found");
    app.get("/api/v1/staff/customers?limit=abc", Some(&token))
        .await
        .assert_problem(400, "invalid-query");
}

async fn request_ids_are_echoed_or_made(app: TestApp) {
    let given = app
        .send(
            Method::GET,
            "/healthz",
            None,
            None,
            &[("x-request-id", "trace-abc-123")],
        )
        .await;
    assert_eq!(
        given.headers.get("x-request-id").and_then(|v| v.to_str().ok()),
        Some("trace-abc-123")
    );
    let made = app.get("/api/v1/nothing", None).await;
    let id = made
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("request id");
    assert!(uuid::Uuid::parse_str(id).is_ok(), "generated id {id} is a UUID");
}

async fn an_idempotent_replay_returns_the_first_response_and_writes_once(app: TestApp) {
    let body = json!({ "phone": "13900000001", "password": "secret-pass", "name": "重试" });
    let key = [("idempotency-key", "register-once-1")];
    let first = app
        .send(Method::POST, "/api/v1/customers", None, Some(body.clone()), &key)
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert!(first.headers.get("idempotent-replayed").is_none());
    let second = app
        .send(Method::POST, "/api/v1/customers", None, Some(body.clone()), &key)
        .await;
    assert_eq!(second.status, StatusCode::CREATED, "a replay is not a 409 phone-taken");
    assert_eq!(second.body, first.body, "the replay returns the first response");
    assert_eq!(
        second.headers.get("idempotent-replayed").and_then(|v| v.to_str().ok()),
        Some("true")
    );
    assert_eq!(app.count("customers").await, 1);

    // Without a key the same request is a new request and fails on the phone.
    app.post("/api/v1/customers", None, body)
        .await
        .assert_problem(409, "phone-taken");
}

async fn an_idempotency_key_reused_for_another_request_is_refused(app: TestApp) {
    let key = [("idempotency-key", "k-1")];
    let first = json!({ "phone": "13900000002", "password": "secret-pass", "name": "甲" });
    let other = json!({ "phone": "13900000003", "password": "secret-pass", "name": "乙" });
    assert_eq!(
        app.send(Method::POST, "/api/v1/customers", None, Some(first), &key)
            .await
            .status,
        StatusCode::CREATED
    );
    app.send(Method::POST, "/api/v1/customers", None, Some(other), &key)
        .await
        .assert_problem(422, "idempotency-key-mismatch");
    assert_eq!(app.count("customers").await, 1, "the refused request wrote nothing");
    let long = "k".repeat(300);
    app.send(
        Method::POST,
        "/api/v1/customers",
        None,
        Some(json!({ "phone": "13900000004", "password": "secret-pass", "name": "丙" })),
        &[("idempotency-key", &long)],
    )
    .await
    .assert_problem(400, "invalid-idempotency-key");
    assert_eq!(app.count("customers").await, 1);
}

async fn idempotency_keys_belong_to_their_caller(app: TestApp) {
    let alice = app.customer("13900000011").await;
    let bob = app.customer("13900000012").await;
    let key = [("idempotency-key", "same-key")];
    let a = app
        .send(
            Method::POST,
            "/api/v1/handoffs",
            Some(&alice),
            Some(json!({ "target_channel": "app" })),
            &key,
        )
        .await;
    let b = app
        .send(
            Method::POST,
            "/api/v1/handoffs",
            Some(&bob),
            Some(json!({ "target_channel": "app" })),
            &key,
        )
        .await;
    assert_eq!((a.status, b.status), (StatusCode::CREATED, StatusCode::CREATED));
    assert_ne!(
        a.body["token"], b.body["token"],
        "Bob never sees Alice's stored response"
    );
    assert!(b.headers.get("idempotent-replayed").is_none());
}

async fn cursor_pagination_walks_every_item_once(app: TestApp) {
    for i in 0..7 {
        assert_eq!(
            app.register(&format!("1390000010{i}"), "翻页").await.status,
            StatusCode::CREATED
        );
    }
    let token = app.staff(Role::Operator).await;
    let mut seen = Vec::new();
    let mut path = "/api/v1/staff/customers?limit=3".to_owned();
    for _ in 0..10 {
        let page = app.get(&path, Some(&token)).await;
        assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
        let items = page.body["items"].as_array().expect("items");
        assert!(items.len() <= 3);
        seen.extend(items.iter().map(|c| c["id"].as_str().expect("id").to_owned()));
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/staff/customers?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (7, 7));
    app.get("/api/v1/staff/customers?limit=0", Some(&token))
        .await
        .assert_problem(422, "validation");
    app.get("/api/v1/staff/customers?limit=500", Some(&token))
        .await
        .assert_problem(422, "validation");
    app.get("/api/v1/staff/customers?cursor=forged", Some(&token))
        .await
        .assert_problem(422, "validation");
}

async fn health_readiness_and_metrics_report(app: TestApp) {
    let health = app.get("/healthz", None).await;
    assert_eq!(
        (health.status, health.body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.body["database"]["backend"], app.backend.name());
    assert_eq!(ready.body["database"]["pending"], json!([]));
    let _ = app.get("/api/v1/me", None).await;
    let metrics = app.get("/metrics", None).await;
    let text = metrics.body.as_str().expect("text");
    assert!(
        text.contains("huoban_http_requests_total{method=\"GET\",route=\"/api/v1/me\",status=\"401\"} 1"),
        "{text}"
    );
    assert!(text.contains("huoban_http_request_duration_seconds_bucket"));
    assert!(text.contains("huoban_db_pool_connections{pool=\"read\"}"));
}

async fn the_openapi_document_and_reference_are_served_without_a_cdn(app: TestApp) {
    let doc = app.get("/api/openapi.json", None).await;
    assert_eq!(doc.status, StatusCode::OK);
    assert!(doc.body["openapi"].as_str().expect("version").starts_with("3.1"));
    for path in [
        "/api/v1/customers",
        "/api/v1/sessions",
        "/api/v1/handoffs",
        "/api/v1/staff/users",
    ] {
        assert!(doc.body["paths"][path].is_object(), "{path} documented");
    }
    assert!(doc.body["components"]["schemas"]["Problem"].is_object());
    let page = app
        .http
        .get(format!("{}/api/docs/", app.base))
        .send()
        .await
        .expect("docs");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("html");
    assert!(html.contains("swagger-ui"), "the reference page renders Swagger UI");
    for line in html.lines().filter(|l| l.contains("src=") || l.contains("href=")) {
        assert!(
            !line.contains("http://") && !line.contains("https://"),
            "external asset: {line}"
        );
    }
}

#[tokio::test]
async fn cors_allows_configured_h5_origins_only() {
    let Some(app) = crate::helpers::spawn_app_with(huoban_kit::Backend::Sqlite, |c| {
        c.http.cors_origins = vec!["https://h5.bank.example".into()];
    })
    .await
    else {
        return;
    };
    let preflight = |origin: &'static str| {
        app.http
            .request(Method::OPTIONS, format!("{}/api/v1/me", app.base))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let allowed = preflight("https://h5.bank.example").await.expect("preflight");
    assert_eq!(
        allowed
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("https://h5.bank.example")
    );
    let refused = preflight("https://evil.example").await.expect("preflight");
    assert!(refused.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_while_migrations_are_pending() {
    for backend in huoban_kit::testing::BACKENDS {
        let Some(app) = crate::helpers::spawn_app(backend).await else {
            continue;
        };
        let latest = huoban::app::migrations().last().expect("migrations").version;
        sqlx::query("DELETE FROM _sqlx_migrations WHERE version = $1")
            .bind(latest)
            .execute(app.app.db.writer())
            .await
            .expect("forget a migration");
        let reply = app.get("/readyz", None).await;
        reply.assert_problem(503, "unavailable");
        assert!(
            reply.body["pending"].as_array().is_some_and(|p| p.len() == 1),
            "{:?}",
            reply.body
        );
        assert_eq!(
            app.get("/healthz", None).await.status,
            StatusCode::OK,
            "alive all the same"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_that_outlast_the_timeout_get_408_and_write_nothing() {
    let Some(app) = crate::helpers::spawn_app_with(huoban_kit::Backend::Sqlite, |c| {
        c.http.request_timeout_secs = 1;
    })
    .await
    else {
        return;
    };
    // Hold SQLite's only write connection, so a registration has to wait for it.
    let mut blocker = app.app.db.begin().await.expect("hold the writer");
    let started = std::time::Instant::now();
    let reply = app.register("13900000099", "等待").await;
    reply.assert_problem(408, "timeout");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    sqlx::query("SELECT 1")
        .execute(&mut *blocker)
        .await
        .expect("still open");
    blocker.rollback().await.expect("release");
    assert_eq!(app.count("customers").await, 0, "the abandoned request wrote nothing");
}

/// `Db::write_lazily` (the risk recorder's commits of plain allows): what it writes is
/// committed as a whole, a failure inside rolls everything back, and afterwards the
/// writer commits to the disk again (SQLite: `synchronous` back to FULL = 2;
/// PostgreSQL: `synchronous_commit` was off for that transaction only).
async fn a_lazy_write_commits_whole_or_not_at_all_and_leaves_the_writer_syncing(app: TestApp) {
    use huoban_kit::db::{Backend, DbError};
    let db = &app.app.db;
    sqlx::query("CREATE TABLE lazy_probe (id BIGINT PRIMARY KEY, note TEXT NOT NULL)")
        .execute(db.writer())
        .await
        .expect("create table");
    let setting = async || match app.backend {
        Backend::Sqlite => {
            let (v,): (i64,) = sqlx::query_as("PRAGMA synchronous")
                .fetch_one(db.writer())
                .await
                .expect("pragma");
            v.to_string()
        }
        Backend::Postgres => {
            let (v,): (String,) = sqlx::query_as("SHOW synchronous_commit")
                .fetch_one(db.writer())
                .await
                .expect("show");
            v
        }
    };
    let full = match app.backend {
        Backend::Sqlite => "2",
        Backend::Postgres => "on",
    };
    assert_eq!(setting().await, full);

    // Inside, the lazy setting is in force; both rows land.
    let inside = db
        .write_lazily(async |tx: &mut sqlx::Transaction<'_, sqlx::Any>| {
            for id in [1_i64, 2] {
                sqlx::query("INSERT INTO lazy_probe (id, note) VALUES ($1, 'kept')")
                    .bind(id)
                    .execute(&mut **tx)
                    .await?;
            }
            let seen: String = match app.backend {
                Backend::Sqlite => {
                    let (v,): (i64,) = sqlx::query_as("PRAGMA synchronous").fetch_one(&mut **tx).await?;
                    v.to_string()
                }
                Backend::Postgres => {
                    let (v,): (String,) = sqlx::query_as("SHOW synchronous_commit").fetch_one(&mut **tx).await?;
                    v
                }
            };
            Ok::<_, DbError>(seen)
        })
        .await
        .expect("lazy write");
    let lazy = match app.backend {
        Backend::Sqlite => "1",
        Backend::Postgres => "off",
    };
    assert_eq!(inside, lazy, "the lazy setting applies inside");
    assert_eq!(app.count("lazy_probe").await, 2);
    assert_eq!(setting().await, full, "the writer syncs fully again");

    // A failure midway (a duplicate key after a good row) writes nothing.
    let failed = db
        .write_lazily(async |tx: &mut sqlx::Transaction<'_, sqlx::Any>| {
            sqlx::query("INSERT INTO lazy_probe (id, note) VALUES (3, 'lost')")
                .execute(&mut **tx)
                .await?;
            sqlx::query("INSERT INTO lazy_probe (id, note) VALUES (1, 'duplicate')")
                .execute(&mut **tx)
                .await?;
            Ok::<_, DbError>(())
        })
        .await;
    assert!(matches!(failed, Err(DbError::Conflict { .. })), "{failed:?}");
    assert_eq!(app.count("lazy_probe").await, 2, "nothing of the failed write stays");
    assert_eq!(setting().await, full, "the writer syncs fully after a failure too");
    // An ordinary write goes on as before.
    sqlx::query("INSERT INTO lazy_probe (id, note) VALUES (4, 'after')")
        .execute(db.writer())
        .await
        .expect("ordinary write");
    assert_eq!(app.count("lazy_probe").await, 3);
}
