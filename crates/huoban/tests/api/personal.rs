//! Personal data at rest: names, phone numbers, ID numbers and birthdays are sealed field
//! by field, phone lookups go through the blind index, `huoban keys rotate` moves rows to
//! a new master key while they stay readable, and customers export and erase their data
//! without unbalancing the ledger or breaking the audit chain — every capability's data:
//! after an erasure no table holds the customer's name, phone, places, devices, address
//! or free text, and an erasure that stopped half-way is finished by a retry or by the
//! server.

use std::{collections::BTreeMap, sync::Arc};

use huoban_identity::{
    IdentityService, Role,
    store::IdentityStore,
    vault::{ConfigKeys, KeySettings, Vault, generate_key},
};
use huoban_kit::{Backend, Clock};
use reqwest::Method;
use serde_json::json;

use crate::helpers::{Reply, TestApp, spawn_app_with};

crate::on_both_backends!(
    customers_export_and_erase_their_data,
    an_erasure_keeps_a_freeze_and_a_step_up_lockout,
);
crate::for_each_backend!(
    no_phone_number_is_stored_in_clear,
    keys_rotate_moves_every_row_and_keeps_it_readable,
    erasure_leaves_nothing_about_the_customer_in_any_capability,
);

const ID_NUMBER: &str = "11010519491231002X";

/// Every byte the database holds: the SQLite file and its write-ahead log, or every
/// table of the PostgreSQL schema as text.
async fn database_contents(app: &TestApp) -> Vec<u8> {
    match app.backend {
        Backend::Sqlite => {
            let url = app.app.config.database_url().to_owned();
            let path = url
                .trim_start_matches("sqlite://")
                .split('?')
                .next()
                .expect("path")
                .to_owned();
            let mut bytes = std::fs::read(&path).expect("database file");
            if let Ok(wal) = std::fs::read(format!("{path}-wal")) {
                bytes.extend(wal);
            }
            bytes
        }
        Backend::Postgres => {
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT table_name::TEXT FROM information_schema.tables WHERE table_schema = current_schema()",
            )
            .fetch_all(app.app.db.reader())
            .await
            .expect("tables");
            let mut bytes = Vec::new();
            for t in tables {
                let text: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT COALESCE(string_agg(t::TEXT, '|'), '') FROM \"{t}\" t"
                )))
                .fetch_one(app.app.db.reader())
                .await
                .expect("table text");
                bytes.extend(text.into_bytes());
            }
            bytes
        }
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

async fn no_phone_number_is_stored_in_clear(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| {
        c.demo.customers = 20;
        c.demo.days_of_history = 10;
    })
    .await
    else {
        return;
    };
    huoban::demo::seed(&app.app).await.expect("demo seeded");
    let phones = ["13500000001", "13500000002", "13500000003"];
    for (i, phone) in phones.iter().enumerate() {
        let body = json!({ "phone": phone, "password": "secret-pass", "name": format!("加密客户{i}"),
                           "birthday": "1980-02-03", "id_number": ID_NUMBER });
        // Registered with an Idempotency-Key, and retried: the stored response (which holds
        // the phone number) must not be readable from the database either.
        let key_text = format!("register-sealed-{i}");
        let key = [("idempotency-key", key_text.as_str())];
        let r = app
            .send(Method::POST, "/api/v1/customers", None, Some(body.clone()), &key)
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        assert_eq!(r.body["id_number"], "110***********002X");
        let again = app
            .send(Method::POST, "/api/v1/customers", None, Some(body), &key)
            .await;
        assert_eq!(again.body, r.body, "the replay opens the stored response");
        assert_eq!(again.headers["idempotent-replayed"], "true");
    }
    // Demo-like flows: sign-ins (also a failed one), a profile change, staff lookups by
    // phone, an export, an erasure.
    let token = app.sign_in(phones[0], "h5").await;
    app.post(
        "/api/v1/sessions",
        None,
        json!({ "phone": phones[1], "password": "wrong-password" }),
    )
    .await
    .assert_problem(401, "invalid-credentials");
    let patched = app
        .patch(
            "/api/v1/me",
            Some(&token),
            json!({ "name": "新名字", "birthday": "1981-03-04" }),
        )
        .await;
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    assert_eq!(patched.body["phone"], format!("+86{}", phones[0]));
    let demo_token = app.sign_in_demo("13800000001").await;
    assert_eq!(app.get("/api/v1/me", Some(&demo_token)).await.status, 200);
    let staff = app.staff(Role::SupportAgent).await;
    let found = app
        .get(&format!("/api/v1/staff/customers?phone={}", phones[1]), Some(&staff))
        .await;
    assert_eq!(
        found.body["items"].as_array().map(Vec::len),
        Some(1),
        "{:?}",
        found.body
    );
    assert_eq!(found.body["items"][0]["name"], "加密客户1");
    let found_demo = app.get("/api/v1/staff/customers?phone=13800000005", Some(&staff)).await;
    assert_eq!(found_demo.body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(app.get("/api/v1/me/export", Some(&token)).await.status, 200);
    let handoff = app
        .send(
            Method::POST,
            "/api/v1/handoffs",
            Some(&token),
            Some(json!({ "target_channel": "app" })),
            &[("idempotency-key", "handoff-sealed")],
        )
        .await;
    let handoff_token = handoff.body["token"].as_str().expect("token").to_owned();
    let erased = app.sign_in(phones[2], "app").await;
    let r = app
        .post("/api/v1/me/erasure", Some(&erased), json!({ "confirm": true }))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    let contents = database_contents(&app).await;
    assert!(contents.len() > 10_000, "read the database");
    let demo_phones: Vec<String> = (0..20u64)
        .map(|i| (huoban::demo::FIRST_PHONE + i).to_string())
        .collect();
    for phone in phones.iter().copied().chain(demo_phones.iter().map(String::as_str)) {
        assert!(!contains(&contents, phone), "{phone} is stored in clear");
    }
    assert!(!contains(&contents, ID_NUMBER), "the ID number is stored in clear");
    assert!(
        !contains(&contents, &handoff_token),
        "a hand-off token is stored in clear"
    );
    assert!(!contains(&contents, &token), "a session token is stored in clear");
    assert!(!contains(&contents, "1981-03-04"), "the birthday is stored in clear");
}

async fn customers_export_and_erase_their_data(app: TestApp) {
    let reg = app
        .post(
            "/api/v1/customers",
            None,
            json!({ "phone": "13500000101", "password": "secret-pass", "name": "导出客户",
                    "birthday": "1990-05-06", "id_number": ID_NUMBER }),
        )
        .await;
    let id = reg.body["id"].as_str().expect("id").to_owned();
    let customer: uuid::Uuid = id.parse().expect("uuid");
    let accounts = app
        .app
        .accounts
        .ensure_standard_accounts(customer)
        .await
        .expect("accounts");
    let token = app.sign_in("13500000101", "h5").await;
    let other = app.sign_in("13500000101", "app").await;
    let staff = app.staff(Role::Admin).await;
    assert_eq!(
        app.get(&format!("/api/v1/staff/customers/{id}"), Some(&staff))
            .await
            .status,
        200
    );
    app.post(
        "/api/v1/customers",
        None,
        json!({ "phone": "13500000102", "password": "secret-pass", "name": "坏号码", "id_number": "110105194912310021" }),
    )
    .await
    .assert_problem(422, "validation");

    let export = app.get("/api/v1/me/export", Some(&token)).await;
    assert_eq!(export.status, 200, "{:?}", export.body);
    assert_eq!(export.body["profile"]["phone"], "+8613500000101");
    assert_eq!(export.body["profile"]["name"], "导出客户");
    assert_eq!(export.body["profile"]["birthday"], "1990-05-06");
    assert_eq!(export.body["id_number"], ID_NUMBER);
    assert_eq!(export.body["signs_in_with_password"], true);
    assert_eq!(export.body["sessions"].as_array().map(Vec::len), Some(2));
    assert_eq!(export.body["staff_access"].as_array().map(Vec::len), Some(1));
    assert_eq!(export.body["staff_access"][0]["action"], "customers.view");

    app.post("/api/v1/me/erasure", Some(&token), json!({ "confirm": false }))
        .await
        .assert_problem(422, "erasure-not-confirmed");
    let done = app
        .post("/api/v1/me/erasure", Some(&token), json!({ "confirm": true }))
        .await;
    assert_eq!(done.status, 200, "{:?}", done.body);
    assert_eq!(done.body["sessions_revoked"], 2);
    for t in [&token, &other] {
        app.get("/api/v1/me", Some(t))
            .await
            .assert_problem(401, "session-revoked");
    }
    app.post(
        "/api/v1/sessions",
        None,
        json!({ "phone": "13500000101", "password": "secret-pass" }),
    )
    .await
    .assert_problem(401, "invalid-credentials");
    let seen = app.get(&format!("/api/v1/staff/customers/{id}"), Some(&staff)).await;
    assert_eq!(seen.body["erased"], true);
    assert_eq!(seen.body["phone"], "");
    assert_eq!(seen.body["name"], "");
    assert!(seen.body["birthday"].is_null() && seen.body["id_number"].is_null());
    let (key, sealed): (Option<String>, Option<String>) =
        sqlx::query_as("SELECT data_key, phone_sealed FROM customers WHERE id = $1")
            .bind(&id)
            .fetch_one(app.app.db.reader())
            .await
            .expect("row");
    assert!(key.is_none() && sealed.is_none(), "key and ciphertext destroyed");

    // The accounts stay (pseudonymous), the books balance, the audit chain verifies.
    let still = app
        .app
        .accounts
        .ensure_standard_accounts(customer)
        .await
        .expect("accounts");
    assert_eq!(still.current, accounts.current);
    let report = app.app.ledger.invariants().await.expect("invariants");
    assert!(report.is_ok(), "{:?}", report.violations);
    let verify = app.app.audit.verify(|_, _| {}).await.expect("verify");
    assert!(verify.ok, "{verify:?}");
    let erasures = app
        .get(
            &format!("/api/v1/staff/audit?subject=customer:{id}&action=customer.erased"),
            Some(&staff),
        )
        .await;
    assert_eq!(erasures.body["items"].as_array().map(Vec::len), Some(1));
    // The phone number is free again.
    assert_eq!(app.register("13500000101", "新客户").await.status, 201);
}

fn keys(current: &str, ids: &[(&str, &str)], index: &str) -> KeySettings {
    KeySettings {
        current: Some(current.to_owned()),
        master: ids
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        blind_index: Some(index.to_owned()),
    }
}

fn service_with(app: &TestApp, settings: &KeySettings) -> IdentityService {
    let (provider, _) = ConfigKeys::from_settings(settings).expect("keys");
    IdentityService::new(
        IdentityStore::new(app.app.db.clone(), Vault::new(Arc::new(provider))),
        app.app.clock.clone(),
        Default::default(),
    )
    .expect("service")
}

async fn keys_rotate_moves_every_row_and_keeps_it_readable(backend: Backend) {
    let (k1, k2, index) = (generate_key(), generate_key(), generate_key());
    let first = keys("k1", &[("k1", &k1)], &index);
    let settings = first.clone();
    let Some(app) = spawn_app_with(backend, move |c| c.keys = settings).await else {
        return;
    };
    let mut ids = Vec::new();
    for i in 0..5 {
        let r = app.register(&format!("1350000020{i}"), &format!("轮换客户{i}")).await;
        ids.push(r.body["id"].as_str().expect("id").parse::<uuid::Uuid>().expect("uuid"));
    }
    // A row written before encryption (clear values, no key) is sealed at start.
    sqlx::query(
        "INSERT INTO customers (id, phone_index, name_sealed, birthday_sealed, locale, time_zone, preferences, created_at, updated_at) \
         VALUES ($1, '+8613500000299', '旧客户', '1970-01-01', 'zh-CN', 'Asia/Shanghai', '{}', 1, 1)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .execute(app.app.db.writer())
    .await
    .expect("legacy row");
    assert_eq!(app.app.identity.seal_unencrypted_rows().await.expect("sealed"), 1);
    let legacy = app
        .app
        .identity
        .store()
        .customer_by_phone("+8613500000299")
        .await
        .expect("lookup")
        .expect("found by blind index");
    assert_eq!(legacy.name, "旧客户");

    // Rotate with the real binary: k2 becomes current, k1 is still known.
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("huoban.toml");
    std::fs::write(
        &config,
        format!("[keys]\ncurrent = \"k2\"\nblind_index = \"{index}\"\n[keys.master]\nk1 = \"{k1}\"\nk2 = \"{k2}\"\n"),
    )
    .expect("config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_huoban"))
        .args(["keys", "rotate", "--batch", "2", "--config"])
        .arg(&config)
        .args(["--database-url", app.app.config.database_url()])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .output()
        .expect("huoban runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("6 customers moved under key k2"), "{stdout}");
    assert!(stderr.contains("[rotate] 2/6 customers under key k2"), "{stderr}");
    let not_moved: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM customers WHERE key_id <> 'k2' OR key_id IS NULL")
        .fetch_one(app.app.db.reader())
        .await
        .expect("count");
    assert_eq!(not_moved, 0);

    // Readable with k2 alone: k1 can now be retired.
    let only_k2 = service_with(&app, &keys("k2", &[("k2", &k2)], &index));
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            only_k2.profile(*id).await.expect("profile").name,
            format!("轮换客户{i}")
        );
    }
    let by_phone = only_k2
        .store()
        .customer_by_phone("+8613500000203")
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(by_phone.id, ids[3].to_string());
    // A node that knows only k1 can no longer open them: roll the new keys out first.
    let only_k1 = service_with(&app, &first);
    assert!(only_k1.profile(ids[0]).await.is_err());
}

/// Every row of every table as text: what the tables hold, as the application and an
/// operator's query see it. (Not the file: SQLite keeps deleted bytes in free pages until
/// they are reused, see README "Personal data".)
async fn all_rows_text(app: &TestApp) -> String {
    if app.backend == Backend::Postgres {
        return String::from_utf8(database_contents(app).await).expect("text");
    }
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
            .fetch_all(app.app.db.reader())
            .await
            .expect("tables");
    let mut all = String::new();
    for t in tables {
        let columns: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT name FROM pragma_table_info('{t}')"
        )))
        .fetch_all(app.app.db.reader())
        .await
        .expect("columns");
        let row = columns
            .iter()
            // Blobs (the audit trail's hashes) as hex: they are not text.
            .map(|c| {
                format!(
                    "COALESCE(CASE WHEN typeof(\"{c}\") = 'blob' THEN hex(\"{c}\") ELSE CAST(\"{c}\" AS TEXT) END, '')"
                )
            })
            .collect::<Vec<_>>()
            .join(" || '|' || ");
        let text: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT group_concat({row}, '\n') FROM \"{t}\""
        )))
        .fetch_one(app.app.db.reader())
        .await
        .expect("rows");
        all.push_str(&format!("== {t}\n{}\n", text.unwrap_or_default()));
    }
    all
}

/// A capability whose erasure fails the first time for each customer, as a crash half-way
/// would leave it.
#[derive(Debug, Default)]
struct FailsOnce(std::sync::Mutex<Vec<uuid::Uuid>>);

impl huoban_kit::personal::PersonalData for FailsOnce {
    fn section(&self) -> &'static str {
        "test"
    }
    fn export<'a>(
        &'a self,
        _: uuid::Uuid,
    ) -> huoban_kit::personal::BoxFuture<'a, Result<serde_json::Value, huoban_kit::ApiError>> {
        Box::pin(async { Ok(json!({})) })
    }
    fn erase<'a>(
        &'a self,
        customer: uuid::Uuid,
    ) -> huoban_kit::personal::BoxFuture<'a, Result<(), huoban_kit::ApiError>> {
        Box::pin(async move {
            let mut failed = self.0.lock().expect("lock");
            if failed.contains(&customer) {
                return Ok(());
            }
            failed.push(customer);
            Err(huoban_kit::ApiError::unavailable("The test capability stopped."))
        })
    }
}

const NAME: &str = "抹除客户甲乙";
const PHONE: &str = "13500000301";
const BIRTHDAY: &str = "1985-07-08";
const GOAL: &str = "抹除目标-教育基金";
const TEAM: &str = "抹除队-绿色出行";
const OWN_NOTE: &str = "OWN-NOTE-给自己";
const SHARED_NOTE: &str = "SHARED-NOTE-房租";
const EVENT_NOTE: &str = "EVENT-PROP-抹除";
const DEVICE: &str = "E-DEVICE-1";
const INVITE_DEVICE: &str = "E-DEVICE-INVITE";
const STRANGER: &str = "E-STRANGER";
const ADDRESS: &str = "203.0.113.77";
const LATITUDE: &str = "31.230416";

async fn erasure_leaves_nothing_about_the_customer_in_any_capability(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| c.risk.trust_forwarded_for = true).await else {
        return;
    };
    let fails_once = Arc::new(FailsOnce::default());
    app.app.identity.register_personal_data(fails_once.clone());
    let shared = crate::authorization::shared(&app).await;
    let operator = app.staff(Role::Operator).await;

    // B: another customer, with a goal and an invite code of their own.
    let (b_id, b) = crate::accounts::customer(&app, "13500000302").await;
    let (b_current, _, _) = crate::accounts::standard_accounts(&app, &b).await;
    crate::accounts::fund(&app, &b_current, 1_000_000, "salary").await;
    let b_goal = app
        .post(
            "/api/v1/goals",
            Some(&b),
            json!({ "name": "乙的目标", "target_amount": 90_000, "target_date": "2031-01-01" }),
        )
        .await;
    assert_eq!(b_goal.status, 201, "{:?}", b_goal.body);
    let b_goal = b_goal.body["id"].as_str().expect("goal").to_owned();
    let b_code = app
        .post("/api/v1/invites", Some(&b), json!({ "programme_id": shared.programme }))
        .await;
    let b_code = b_code.body["code"].as_str().expect("code").to_owned();

    // E, the customer who will ask to be erased, with something in every capability.
    let reg = app
        .post(
            "/api/v1/customers",
            None,
            json!({ "phone": PHONE, "password": "secret-pass", "name": NAME, "birthday": BIRTHDAY, "id_number": ID_NUMBER }),
        )
        .await;
    assert_eq!(reg.status, 201, "{:?}", reg.body);
    let e_id: uuid::Uuid = reg.body["id"].as_str().expect("id").parse().expect("uuid");
    let context = [
        ("X-Device-Id", DEVICE),
        ("X-Geo", "31.230416,121.473701"),
        ("X-Forwarded-For", ADDRESS),
    ];
    let signed_in = app
        .send(
            Method::POST,
            "/api/v1/sessions",
            None,
            Some(json!({ "phone": PHONE, "password": "secret-pass", "channel": "app" })),
            &context,
        )
        .await;
    assert_eq!(signed_in.status, 201, "{:?}", signed_in.body);
    let e = signed_in.body["token"].as_str().expect("token").to_owned();
    let (current, savings, points) = crate::accounts::standard_accounts(&app, &e).await;
    crate::accounts::fund(&app, &current, 20_000_000, "salary").await;
    crate::accounts::fund(&app, &points, 1_000, "reward").await;
    let pay = |key: &'static str, body: serde_json::Value| {
        let mut headers = context.to_vec();
        headers.push(("Idempotency-Key", key));
        let app = &app;
        let e = e.clone();
        async move {
            app.send(Method::POST, "/api/v1/transfers", Some(&e), Some(body), &headers)
                .await
        }
    };
    let own = pay(
        "own-1",
        json!({ "from_account": current, "to_account": savings, "amount": 1_000, "currency": "CNY", "description": OWN_NOTE }),
    )
    .await;
    assert_eq!(own.status, 201, "{:?}", own.body);
    let to_b = pay(
        "to-b-1",
        json!({ "from_account": current, "to_phone": "13500000302", "amount": 2_000, "currency": "CNY", "description": SHARED_NOTE }),
    )
    .await;
    assert_eq!(to_b.status, 201, "{:?}", to_b.body);
    let held = app
        .send(
            Method::POST,
            "/api/v1/transfers",
            Some(&e),
            Some(json!({ "from_account": current, "to_account": savings, "amount": 900_000, "currency": "CNY" })),
            &[
                ("Idempotency-Key", "held-1"),
                ("X-Device-Id", STRANGER),
                ("X-Forwarded-For", ADDRESS),
            ],
        )
        .await;
    assert_eq!(held.body["risk"]["handling"], "held", "{:?}", held.body);
    let goal = app
        .post(
            "/api/v1/goals",
            Some(&e),
            json!({ "name": GOAL, "target_amount": 100_000, "target_date": "2031-01-01" }),
        )
        .await;
    assert_eq!(goal.status, 201, "{:?}", goal.body);
    let goal = goal.body["id"].as_str().expect("goal").to_owned();
    let deposit = app
        .send(
            Method::POST,
            &format!("/api/v1/goals/{goal}/deposits"),
            Some(&e),
            Some(json!({ "from_account": current, "amount": 10_000 })),
            &[("Idempotency-Key", "goal-1")],
        )
        .await;
    assert_eq!(deposit.status, 201, "{:?}", deposit.body);
    // Partners both ways: B in E's goal (B's inbox gets an invitation naming E), E in B's.
    for (token, goal, phone) in [(&e, &goal, "13500000302"), (&b, &b_goal, PHONE)] {
        let r = app
            .post(
                &format!("/api/v1/goals/{goal}/partners"),
                Some(token),
                json!({ "phone": phone }),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
    }
    let alert = app
        .post(
            "/api/v1/alerts",
            Some(&e),
            json!({ "kind": "balance_below", "account_id": current, "threshold": 50_000 }),
        )
        .await;
    assert_eq!(alert.status, 201, "{:?}", alert.body);
    let accepted = app
        .send(
            Method::POST,
            "/api/v1/invites/accept",
            Some(&e),
            Some(json!({ "code": b_code })),
            &[("x-device-id", INVITE_DEVICE)],
        )
        .await;
    assert!(accepted.status.is_success(), "{:?}", accepted.body);
    crate::invites::finish_risk_test(&app, &e).await;
    assert_eq!(app.post("/api/v1/checkins", Some(&e), json!({})).await.status, 201);
    let coupon = app
        .send(
            Method::POST,
            &format!("/api/v1/rewards/{}/claims", shared.reward),
            Some(&e),
            None,
            &[("Idempotency-Key", "coupon-1")],
        )
        .await;
    assert_eq!(coupon.status, 201, "{:?}", coupon.body);
    let code = app
        .post("/api/v1/invites", Some(&e), json!({ "programme_id": shared.programme }))
        .await;
    let e_code = code.body["code"].as_str().expect("code").to_owned();
    let now = app.clock.now();
    let challenge = app
        .post(
            "/api/v1/staff/challenges",
            Some(&operator),
            json!({ "name": "绿色出行", "event_type": "green_trip", "target": 100, "max_members": 5,
                    "reward": { "points": 200 },
                    "starts_at": (now - jiff::SignedDuration::from_hours(1)).to_string(),
                    "ends_at": (now + jiff::SignedDuration::from_hours(240)).to_string() }),
        )
        .await;
    let challenge = challenge.body["id"].as_str().expect("challenge").to_owned();
    let team = app
        .post(
            &format!("/api/v1/challenges/{challenge}/teams"),
            Some(&e),
            json!({ "name": TEAM }),
        )
        .await;
    assert_eq!(team.status, 201, "{:?}", team.body);
    let joined = app
        .post(
            "/api/v1/teams/join",
            Some(&b),
            json!({ "code": team.body["join_code"] }),
        )
        .await;
    assert!(joined.status.is_success(), "{:?}", joined.body);
    crate::campaigns::send(
        &app,
        &e,
        &[("erase-1", "page_view", json!({ "page": "goals", "note": EVENT_NOTE }))],
    )
    .await;
    let pin = app
        .send(
            Method::PUT,
            "/api/v1/security/pin",
            Some(&e),
            Some(json!({ "pin": "271828" })),
            &[],
        )
        .await;
    assert!(pin.status.is_success(), "{:?}", pin.body);
    let sms = app
        .post(
            "/api/v1/step-up/challenges",
            Some(&e),
            json!({ "purpose": "transfer", "factor": "sms" }),
        )
        .await;
    assert_eq!(sms.status, 201, "{:?}", sms.body);
    let tagged = app
        .send(
            Method::PUT,
            &format!("/api/v1/staff/customers/{e_id}/tags"),
            Some(&operator),
            Some(json!({ "tags": ["erase-me"] })),
            &[],
        )
        .await;
    assert!(tagged.status.is_success(), "{:?}", tagged.body);

    // The export has every capability's section, each with what E did there.
    let export = app.get("/api/v1/me/export", Some(&e)).await;
    assert_eq!(export.status, 200, "{:?}", export.body);
    let sections = &export.body["sections"];
    for name in [
        "accounts",
        "engagement",
        "campaigns",
        "social",
        "step_up",
        "security",
        "inbox",
    ] {
        assert!(sections[name].is_object(), "section {name}: {sections}");
    }
    let text = |v: &serde_json::Value| v.to_string();
    assert!(text(&sections["accounts"]).contains(OWN_NOTE) && text(&sections["accounts"]).contains(SHARED_NOTE));
    assert_eq!(sections["accounts"]["alerts"].as_array().map(Vec::len), Some(1));
    assert!(
        text(&sections["engagement"]["goals"]).contains(GOAL),
        "{}",
        sections["engagement"]
    );
    assert!(
        text(&sections["engagement"]["goals"]).contains("乙的目标"),
        "E is B's partner"
    );
    assert_eq!(sections["engagement"]["check_ins"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        sections["engagement"]["questionnaire_answers"][0]["answers"]
            .as_array()
            .map(Vec::len),
        Some(5)
    );
    assert_eq!(sections["engagement"]["coupons"][0]["code"], coupon.body["code"]);
    assert!(text(&sections["engagement"]["behaviour_events"]).contains(EVENT_NOTE));
    assert!(!sections["campaigns"]["nudges"].as_array().expect("nudges").is_empty());
    assert_eq!(sections["campaigns"]["tags"][0]["tag"], "erase-me");
    assert_eq!(sections["social"]["invite_codes"][0]["code"], e_code.as_str());
    assert_eq!(sections["social"]["invites_accepted"][0]["device_id"], INVITE_DEVICE);
    assert_eq!(sections["social"]["teams"][0]["name"], TEAM);
    assert_eq!(sections["step_up"]["pin"].as_array().map(Vec::len), Some(1));
    assert_eq!(sections["step_up"]["codes_sent"].as_array().map(Vec::len), Some(1));
    let security = text(&sections["security"]);
    for marker in [DEVICE, STRANGER, ADDRESS, LATITUDE] {
        assert!(security.contains(marker), "{marker} in {security}");
    }
    assert!(text(&sections["inbox"]).contains("Was this you?"));

    // Everything that must survive, as it stands now.
    let balances_before = [
        crate::accounts::balance(&app, &current).await,
        crate::accounts::balance(&app, &savings).await,
        crate::accounts::balance(&app, &points).await,
    ];
    let before = all_rows_text(&app).await;
    for marker in [
        NAME,
        GOAL,
        TEAM,
        OWN_NOTE,
        EVENT_NOTE,
        DEVICE,
        INVITE_DEVICE,
        STRANGER,
        ADDRESS,
        LATITUDE,
    ] {
        assert!(before.contains(marker), "the scan sees {marker} before the erasure");
    }

    // The erasure stops half-way (a capability fails): E is not erased yet and can retry.
    let first = app
        .post("/api/v1/me/erasure", Some(&e), json!({ "confirm": true }))
        .await;
    first.assert_problem(503, "unavailable");
    assert_eq!(app.get("/api/v1/me", Some(&e)).await.body["name"], NAME);
    let done = app
        .post("/api/v1/me/erasure", Some(&e), json!({ "confirm": true }))
        .await;
    assert_eq!(done.status, 200, "{:?}", done.body);
    app.get("/api/v1/me", Some(&e))
        .await
        .assert_problem(401, "session-revoked");

    // No table holds E's name, phone, birthday, ID number, places, devices, address or
    // free text any more.
    let after = all_rows_text(&app).await;
    for marker in [
        NAME,
        PHONE,
        BIRTHDAY,
        ID_NUMBER,
        GOAL,
        TEAM,
        OWN_NOTE,
        EVENT_NOTE,
        DEVICE,
        INVITE_DEVICE,
        STRANGER,
        ADDRESS,
        LATITUDE,
        "erase-me",
    ] {
        if let Some(at) = after.find(marker) {
            let table = after[..at].rfind("== ").map(|t| &after[t..t + 40.min(after.len() - t)]);
            panic!("{marker} is still stored, in {table:?}");
        }
    }
    // Kept on purpose: the description of a payment to B is B's record too (README).
    let b_history = app
        .get(&format!("/api/v1/accounts/{b_current}/transactions"), Some(&b))
        .await;
    assert!(text(&b_history.body).contains(SHARED_NOTE), "{:?}", b_history.body);
    // Value and other customers' data stay whole.
    let balances_after = [
        crate::accounts::balance(&app, &current).await,
        crate::accounts::balance(&app, &savings).await,
        crate::accounts::balance(&app, &points).await,
    ];
    assert_eq!(balances_after, balances_before);
    let report = app.app.ledger.invariants().await.expect("invariants");
    assert!(report.is_ok(), "{:?}", report.violations);
    let verify = app.app.audit.verify(|_, _| {}).await.expect("verify");
    assert!(verify.ok, "{verify:?}");
    let b_goal_now = app.get(&format!("/api/v1/goals/{b_goal}"), Some(&b)).await;
    assert_eq!(b_goal_now.body["name"], "乙的目标");
    let b_mine = app.get("/api/v1/invites/mine", Some(&b)).await;
    assert_eq!(
        b_mine.body[0]["accepted"], 1,
        "B's invite still counts E: {:?}",
        b_mine.body
    );
    let b_team = app
        .get(
            &format!("/api/v1/teams/{}", team.body["id"].as_str().expect("team")),
            Some(&b),
        )
        .await;
    assert_eq!(b_team.status, 200, "{:?}", b_team.body);
    assert_eq!(
        b_team.body["members"].as_array().map(Vec::len),
        Some(2),
        "{:?}",
        b_team.body
    );
    // B can still be erased too, and an erasure stopped half-way with no retry is finished
    // by the server a minute later.
    let first = app
        .post("/api/v1/me/erasure", Some(&b), json!({ "confirm": true }))
        .await;
    first.assert_problem(503, "unavailable");
    assert_eq!(
        app.app.identity.resume_erasures().await.expect("resume"),
        0,
        "not before a minute"
    );
    app.clock.advance(jiff::SignedDuration::from_secs(61));
    assert_eq!(app.app.identity.resume_erasures().await.expect("resume"), 1);
    assert_eq!(app.app.identity.resume_erasures().await.expect("resume"), 0, "once");
    app.get("/api/v1/me", Some(&b))
        .await
        .assert_problem(401, "session-revoked");
    assert!(
        !all_rows_text(&app).await.contains("乙的目标"),
        "B's goal name is erased too"
    );
    let report = app.app.ledger.invariants().await.expect("invariants");
    assert!(report.is_ok(), "{:?}", report.violations);
    assert!(app.app.audit.verify(|_, _| {}).await.expect("verify").ok);
    // Each erasure is in the audit trail once, naming the sections it erased.
    let auditor = app.staff(Role::Auditor).await;
    for id in [e_id, b_id] {
        let logged = app
            .get(
                &format!("/api/v1/staff/audit?subject=customer:{id}&action=customer.erased"),
                Some(&auditor),
            )
            .await;
        assert_eq!(
            logged.body["items"].as_array().map(Vec::len),
            Some(1),
            "{:?}",
            logged.body
        );
        assert!(text(&logged.body["items"][0]["details"]["sections"]).contains("security"));
    }
}

const FROZEN_PHONE: &str = "13500000311";

/// A transfer of `amount` fen from current to savings, made on `device`.
async fn transfer_on(app: &TestApp, token: &str, from: &str, to: &str, key: &str, amount: i64, device: &str) -> Reply {
    app.send(
        Method::POST,
        "/api/v1/transfers",
        Some(token),
        Some(json!({ "from_account": from, "to_account": to, "amount": amount, "currency": "CNY" })),
        &[("Idempotency-Key", key), ("X-Device-Id", device)],
    )
    .await
}

/// A risk profile: frozen, frozen at, place, amount statistics, clean operations, step-ups.
type Profile = (i64, Option<i64>, Option<i64>, Option<i64>, i64, i64, i64, i64, i64);
/// The customer's risk profile row.
async fn profile(app: &TestApp, id: &str) -> Profile {
    sqlx::query_as(
        "SELECT frozen, frozen_at, last_lat, last_lon, amount_count, amount_sum, amount_max, clean_ops, \
         step_ups FROM risk_profiles WHERE customer_id = $1",
    )
    .bind(id)
    .fetch_one(app.app.db.reader())
    .await
    .expect("profile kept")
}
/// The customer's step-up failure counters.
async fn lockouts(app: &TestApp, id: &str) -> Vec<(String, i64, Option<i64>)> {
    sqlx::query_as("SELECT factor, failures, locked_until FROM step_up_failures WHERE customer_id = $1 ORDER BY factor")
        .bind(id)
        .fetch_all(app.app.db.reader())
        .await
        .expect("failures")
}

/// A freeze (the customer denied a held transfer) and a step-up lockout are safety
/// controls, not data about the person: an erasure keeps them — above all while it is
/// under way and the customer's session still works — and blanks the rest of the risk
/// profile.
async fn an_erasure_keeps_a_freeze_and_a_step_up_lockout(app: TestApp) {
    let fails_once = Arc::new(FailsOnce::default());
    app.app.identity.register_personal_data(fails_once.clone());
    let reg = app.register(FROZEN_PHONE, "冻结客户").await;
    assert_eq!(reg.status, 201, "{:?}", reg.body);
    let id = reg.body["id"].as_str().expect("id").to_owned();
    let signed = app
        .send(
            Method::POST,
            "/api/v1/sessions",
            None,
            Some(json!({ "phone": FROZEN_PHONE, "password": "secret-pass", "channel": "app" })),
            &[("X-Device-Id", "phone-a"), ("X-Geo", "39.90,116.40")],
        )
        .await;
    assert_eq!(signed.status, 201, "{:?}", signed.body);
    let token = signed.body["token"].as_str().expect("token").to_owned();
    let (current, savings, _) = crate::accounts::standard_accounts(&app, &token).await;
    crate::accounts::fund(&app, &current, 20_000_000, "salary").await;

    // "Was this you?" — no: transfers are frozen.
    let held = transfer_on(&app, &token, &current, &savings, "held", 900_000, "stranger").await;
    let hold = held.body["id"].as_str().expect("hold id").to_owned();
    let denied = app
        .post(&format!("/api/v1/security/holds/{hold}/deny"), Some(&token), json!({}))
        .await;
    assert_eq!(denied.status, 200, "{:?}", denied.body);
    transfer_on(&app, &token, &current, &savings, "frozen-1", 100, "phone-a")
        .await
        .assert_problem(403, "account-frozen");
    // And the PIN is locked out after failures; the authenticator has one failure, no lock.
    let now = app.app.clock.now().as_microsecond();
    for (factor, failures, locked_until) in [("pin", 5i64, Some(now + 3_600_000_000)), ("totp", 1, None)] {
        sqlx::query(
            "INSERT INTO step_up_failures (customer_id, factor, failures, locked_until) VALUES ($1, $2, $3, $4)",
        )
        .bind(&id)
        .bind(factor)
        .bind(failures)
        .bind(locked_until)
        .execute(app.app.db.writer())
        .await
        .expect("failures");
    }
    let before = crate::accounts::balance(&app, &current).await;

    // The erasure stops after the risk and step-up parts: the session still works, the
    // account stays frozen.
    app.post("/api/v1/me/erasure", Some(&token), json!({ "confirm": true }))
        .await
        .assert_problem(503, "unavailable");
    assert_eq!(app.get("/api/v1/me", Some(&token)).await.status, 200);
    transfer_on(&app, &token, &current, &savings, "frozen-2", 100, "phone-a")
        .await
        .assert_problem(403, "account-frozen");
    assert_eq!(crate::accounts::balance(&app, &current).await, before);
    let trust = app.get("/api/v1/security/trust", Some(&token)).await;
    assert_eq!(trust.body["facts"]["frozen"], true, "{:?}", trust.body);

    let (frozen, frozen_at, lat, lon, count, sum, max, clean, step_ups) = profile(&app, &id).await;
    assert_eq!(frozen, 1);
    assert!(frozen_at.is_some());
    assert_eq!((lat, lon), (None, None), "the place is erased");
    assert_eq!(
        (count, sum, max, clean, step_ups),
        (0, 0, 0, 0, 0),
        "the habits are erased"
    );
    let kept = vec![("pin".to_owned(), 5, Some(now + 3_600_000_000))];
    assert_eq!(
        lockouts(&app, &id).await,
        kept,
        "the lockout stays, the bare counter goes"
    );

    // Finished: the session ends, the freeze and the lockout stay.
    let done = app
        .post("/api/v1/me/erasure", Some(&token), json!({ "confirm": true }))
        .await;
    assert_eq!(done.status, 200, "{:?}", done.body);
    app.get("/api/v1/me", Some(&token))
        .await
        .assert_problem(401, "session-revoked");
    assert_eq!(profile(&app, &id).await.0, 1);
    assert_eq!(lockouts(&app, &id).await, kept);
    let report = app.app.ledger.invariants().await.expect("invariants");
    assert!(report.is_ok(), "{:?}", report.violations);
}
