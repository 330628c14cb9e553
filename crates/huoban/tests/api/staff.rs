//! Staff: every role against every staff endpoint (the matrix is written out here, apart
//! from the code's own table, and checked to cover every staff route in the OpenAPI
//! document), staff user creation, and the record of staff looking at customers.

use huoban_identity::Role;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::{helpers::TestApp, on_both_backends};

on_both_backends!(
    every_role_reaches_exactly_the_staff_endpoints_it_may,
    an_admin_creates_staff_whose_password_is_shown_once,
    staff_lookups_of_customers_are_recorded,
    the_first_admin_is_created_once,
);

/// (method, path, roles allowed). `{id}` is replaced by a real customer id and
/// `{account_id}` by that customer's current account.
const MATRIX: &[(&str, &str, &[Role])] = &[
    (
        "GET",
        "/api/v1/staff/me",
        &[
            Role::Admin,
            Role::Operator,
            Role::RiskOfficer,
            Role::SupportAgent,
            Role::Auditor,
        ],
    ),
    ("GET", "/api/v1/staff/users", &[Role::Admin]),
    ("POST", "/api/v1/staff/users", &[Role::Admin]),
    (
        "GET",
        "/api/v1/staff/customers",
        &[Role::Admin, Role::Operator, Role::RiskOfficer, Role::SupportAgent],
    ),
    (
        "GET",
        "/api/v1/staff/customers/{id}",
        &[Role::Admin, Role::Operator, Role::RiskOfficer, Role::SupportAgent],
    ),
    ("GET", "/api/v1/staff/access-log", &[Role::Admin, Role::Auditor]),
    ("GET", "/api/v1/staff/audit", &[Role::Admin, Role::Auditor]),
    ("GET", "/api/v1/staff/audit/verify", &[Role::Admin, Role::Auditor]),
    (
        "GET",
        "/api/v1/staff/customers/{id}/accounts",
        &[Role::Admin, Role::Operator, Role::RiskOfficer, Role::SupportAgent],
    ),
    (
        "GET",
        "/api/v1/staff/accounts/{account_id}/transactions",
        &[Role::Admin, Role::Operator, Role::RiskOfficer, Role::SupportAgent],
    ),
    ("GET", "/api/v1/staff/questionnaires", &[Role::Admin, Role::Operator]),
    ("POST", "/api/v1/staff/questionnaires", &[Role::Admin, Role::Operator]),
    ("GET", "/api/v1/staff/rewards", &[Role::Admin, Role::Operator]),
    ("POST", "/api/v1/staff/rewards", &[Role::Admin, Role::Operator]),
    (
        "GET",
        "/api/v1/staff/goal-conversion-offers",
        &[Role::Admin, Role::Operator],
    ),
    (
        "POST",
        "/api/v1/staff/goal-conversion-offers",
        &[Role::Admin, Role::Operator],
    ),
    ("GET", "/api/v1/staff/invite-programmes", &[Role::Admin, Role::Operator]),
    (
        "POST",
        "/api/v1/staff/invite-programmes",
        &[Role::Admin, Role::Operator],
    ),
    ("GET", "/api/v1/staff/challenges", &[Role::Admin, Role::Operator]),
    ("POST", "/api/v1/staff/challenges", &[Role::Admin, Role::Operator]),
    (
        "GET",
        "/api/v1/staff/step-up/outbox",
        &[Role::Admin, Role::SupportAgent],
    ),
    ("GET", "/api/v1/staff/risk/policy", &[Role::Admin, Role::RiskOfficer]),
    ("PUT", "/api/v1/staff/risk/policy", &[Role::Admin, Role::RiskOfficer]),
    ("GET", "/api/v1/staff/risk/decisions", &[Role::Admin, Role::RiskOfficer]),
    (
        "GET",
        "/api/v1/staff/risk/decisions/{decision_id}",
        &[Role::Admin, Role::RiskOfficer],
    ),
    (
        "POST",
        "/api/v1/staff/risk/decisions/{decision_id}/replay",
        &[Role::Admin, Role::RiskOfficer],
    ),
    ("GET", "/api/v1/staff/risk/cases", &[Role::Admin, Role::RiskOfficer]),
    (
        "GET",
        "/api/v1/staff/risk/cases/{case_id}",
        &[Role::Admin, Role::RiskOfficer],
    ),
    (
        "POST",
        "/api/v1/staff/risk/cases/{case_id}/assign",
        &[Role::Admin, Role::RiskOfficer],
    ),
    (
        "POST",
        "/api/v1/staff/risk/cases/{case_id}/notes",
        &[Role::Admin, Role::RiskOfficer],
    ),
    (
        "POST",
        "/api/v1/staff/risk/cases/{case_id}/resolve",
        &[Role::Admin, Role::RiskOfficer],
    ),
    (
        "GET",
        "/api/v1/staff/risk/customers/{id}/trust",
        &[Role::Admin, Role::RiskOfficer],
    ),
    ("GET", "/api/v1/staff/campaigns", &[Role::Admin, Role::Operator]),
    ("POST", "/api/v1/staff/campaigns", &[Role::Admin, Role::Operator]),
    ("GET", "/api/v1/staff/campaigns/{id}", &[Role::Admin, Role::Operator]),
    ("PUT", "/api/v1/staff/campaigns/{id}", &[Role::Admin, Role::Operator]),
    (
        "POST",
        "/api/v1/staff/campaigns/{id}/schedule",
        &[Role::Admin, Role::Operator],
    ),
    (
        "POST",
        "/api/v1/staff/campaigns/{id}/end",
        &[Role::Admin, Role::Operator],
    ),
    (
        "GET",
        "/api/v1/staff/campaigns/{id}/rules",
        &[Role::Admin, Role::Operator],
    ),
    (
        "POST",
        "/api/v1/staff/campaigns/{id}/rules",
        &[Role::Admin, Role::Operator],
    ),
    (
        "GET",
        "/api/v1/staff/campaigns/{id}/tasks",
        &[Role::Admin, Role::Operator],
    ),
    (
        "POST",
        "/api/v1/staff/campaigns/{id}/tasks",
        &[Role::Admin, Role::Operator],
    ),
    (
        "PUT",
        "/api/v1/staff/customers/{id}/tags",
        &[Role::Admin, Role::Operator],
    ),
    ("GET", "/api/v1/staff/badges", &[Role::Admin, Role::Operator]),
    ("POST", "/api/v1/staff/badges", &[Role::Admin, Role::Operator]),
];

/// Staff routes that need no staff session.
const PUBLIC_STAFF_ROUTES: &[(&str, &str)] = &[("POST", "/api/v1/staff/sessions")];

/// A valid body for a POST in the matrix, so that an allowed role gets a success.
fn request_body(path: &str) -> serde_json::Value {
    match path {
        "/api/v1/staff/questionnaires" => crate::questionnaire::quiz(10),
        "/api/v1/staff/risk/policy" => serde_json::to_value(huoban_risk::Policy::default()).expect("policy"),
        p if p.ends_with("/replay") => json!({ "policy": "current" }),
        p if p.ends_with("/assign") => json!({}),
        p if p.ends_with("/notes") => json!({ "body": "Looked at it." }),
        p if p.ends_with("/resolve") => json!({ "resolution": "Customer confirmed by phone." }),
        "/api/v1/staff/rewards" => json!({
            "titles": { "zh-CN": "矩阵测试券" },
            "points_price": 10,
            "total_stock": 5,
            "per_customer_limit": 1,
            "claimable_from": "2026-01-01T00:00:00Z",
            "claimable_until": "2036-01-01T00:00:00Z",
            "coupon_valid_days": 7,
        }),
        "/api/v1/staff/goal-conversion-offers" => json!({
            "titles": { "zh-CN": "矩阵测试换存款" }, "points": 100, "fen": 100,
        }),
        "/api/v1/staff/invite-programmes" => json!({
            "name": "矩阵测试邀请", "event_type": "questionnaire_completed", "unlock_count": 3,
            "reward": { "points": 10 }, "starts_at": "2026-01-01T00:00:00Z", "ends_at": "2036-01-01T00:00:00Z",
        }),
        "/api/v1/staff/challenges" => json!({
            "name": "矩阵测试挑战", "event_type": "green_trip", "target": 10, "max_members": 5,
            "reward": { "points": 10 }, "starts_at": "2026-01-01T00:00:00Z", "ends_at": "2036-01-01T00:00:00Z",
        }),
        _ if crate::campaigns::matrix_body(path).is_some() => crate::campaigns::matrix_body(path).unwrap_or_default(),
        _ => {
            json!({ "username": format!("new-{}", crate::helpers::rand_suffix()), "display_name": "New", "role": "auditor" })
        }
    }
}

async fn every_role_reaches_exactly_the_staff_endpoints_it_may(app: TestApp) {
    // The matrix covers every staff route the server documents.
    let doc = app.get("/api/openapi.json", None).await.body;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        if !path.starts_with("/api/v1/staff/") {
            continue;
        }
        for method in item.as_object().expect("methods").keys() {
            let method = method.to_uppercase();
            let covered = MATRIX.iter().any(|(m, p, _)| *m == method && p == path)
                || PUBLIC_STAFF_ROUTES.iter().any(|(m, p)| *m == method && p == path);
            assert!(covered, "{method} {path} is missing from the role matrix");
        }
    }
    let customer = app.register("13700000001", "被查客户").await.body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let account = app
        .app
        .accounts
        .ensure_standard_accounts(customer.parse().expect("customer id"))
        .await
        .expect("accounts opened")
        .current
        .to_string();
    let customer_token = app.customer("13700000002").await;
    let decision = app
        .app
        .risk
        .assess(
            customer.parse().expect("customer id"),
            huoban_risk::Operation::WealthPurchase,
            Some(100),
            "h5",
            &Default::default(),
        )
        .await
        .expect("a decision")
        .id
        .to_string();
    for role in Role::ALL {
        let token = app.staff(role).await;
        for (method, path, allowed) in MATRIX {
            let mut path = crate::campaigns::matrix_path(&app, path, &customer, &account)
                .await
                .replace("{decision_id}", &decision);
            if path.contains("{case_id}") {
                // A fresh open case for each request, since resolving one is final.
                let case = app
                    .app
                    .risk
                    .open_case(
                        customer.parse().expect("customer id"),
                        None,
                        "matrix",
                        "A case for the matrix.",
                    )
                    .await
                    .expect("case opened");
                path = path.replace("{case_id}", &case.id.to_string());
            }
            let body = (*method == "POST" || *method == "PUT").then(|| request_body(&path));
            let method = Method::from_bytes(method.as_bytes()).expect("method");
            let staff_before = app.count("staff_users").await;
            let reply = app.send(method.clone(), &path, Some(&token), body.clone(), &[]).await;
            if allowed.contains(&role) {
                assert!(reply.status.is_success(), "{role:?} {method} {path}: {:?}", reply.body);
            } else {
                reply.assert_problem(403, "permission-denied");
                assert_eq!(
                    app.count("staff_users").await,
                    staff_before,
                    "a refused request writes nothing"
                );
            }
            // Nobody without a staff session gets in.
            app.send(method.clone(), &path, None, body.clone(), &[])
                .await
                .assert_problem(401, "unauthenticated");
            app.send(method.clone(), &path, Some(&customer_token), body, &[])
                .await
                .assert_problem(403, "staff-only");
        }
    }
}

async fn an_admin_creates_staff_whose_password_is_shown_once(app: TestApp) {
    let admin = app.staff(Role::Admin).await;
    let created = app
        .post(
            "/api/v1/staff/users",
            Some(&admin),
            json!({ "username": "li.ops", "display_name": "李运营", "role": "operator" }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let password = created.body["password"].as_str().expect("password");
    assert!(password.len() >= 16);
    assert_eq!(created.body["user"]["role"], "operator");
    let session = app
        .post(
            "/api/v1/staff/sessions",
            None,
            json!({ "username": "li.ops", "password": password }),
        )
        .await;
    assert_eq!(session.status, StatusCode::CREATED);
    assert_eq!(
        session.body["staff"]["permissions"],
        json!(["view_customers", "view_accounts", "manage_campaigns"])
    );
    let listed = app.get("/api/v1/staff/users", Some(&admin)).await;
    assert!(
        listed.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|u| u.get("password").is_none())
    );
    app.post(
        "/api/v1/staff/users",
        Some(&admin),
        json!({ "username": "li.ops", "display_name": "Again", "role": "operator" }),
    )
    .await
    .assert_problem(409, "username-taken");
    app.post(
        "/api/v1/staff/users",
        Some(&admin),
        json!({ "username": "Bad Name!", "display_name": "X", "role": "operator" }),
    )
    .await
    .assert_problem(422, "validation");
    app.post(
        "/api/v1/staff/users",
        Some(&admin),
        json!({ "username": "ok.name", "display_name": "X", "role": "king" }),
    )
    .await
    .assert_problem(422, "invalid-body");
    app.post(
        "/api/v1/staff/sessions",
        None,
        json!({ "username": "li.ops", "password": "wrong-password" }),
    )
    .await
    .assert_problem(401, "invalid-credentials");
}

async fn staff_lookups_of_customers_are_recorded(app: TestApp) {
    let id = app.register("13700000003", "王五").await.body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let support = app.staff(Role::SupportAgent).await;
    let auditor = app.staff(Role::Auditor).await;
    let found = app
        .get("/api/v1/staff/customers?phone=13700000003", Some(&support))
        .await;
    assert_eq!(found.body["items"][0]["id"], id.as_str());
    let viewed = app.get(&format!("/api/v1/staff/customers/{id}"), Some(&support)).await;
    assert_eq!(viewed.body["name"], "王五");
    app.get(
        &format!("/api/v1/staff/customers/{}", uuid::Uuid::now_v7()),
        Some(&support),
    )
    .await
    .assert_problem(404, "not-found");
    let log = app
        .get(&format!("/api/v1/staff/access-log?customer_id={id}"), Some(&auditor))
        .await;
    let items = log.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["action"], "customers.view");
    let all = app.get("/api/v1/staff/access-log", Some(&auditor)).await;
    assert!(
        all.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|r| r["action"] == "customers.search")
    );
}

async fn the_first_admin_is_created_once(app: TestApp) {
    let (username, password) = app
        .app
        .identity
        .ensure_first_admin()
        .await
        .expect("ok")
        .expect("created");
    assert_eq!(username, "admin");
    assert!(app.app.identity.ensure_first_admin().await.expect("ok").is_none());
    let session = app
        .post(
            "/api/v1/staff/sessions",
            None,
            json!({ "username": "admin", "password": password }),
        )
        .await;
    assert_eq!(session.body["staff"]["role"], "admin");
}
