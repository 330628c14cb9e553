//! Personal data at rest: names, phone numbers, ID numbers and birthdays are sealed field
//! by field, phone lookups go through the blind index, `huoban keys rotate` moves rows to
//! a new master key while they stay readable, and customers export and erase their data
//! without unbalancing the ledger or breaking the audit chain.

use std::{collections::BTreeMap, sync::Arc};

use huoban_identity::{
    IdentityService, Role,
    store::IdentityStore,
    vault::{ConfigKeys, KeySettings, Vault, generate_key},
};
use huoban_kit::Backend;
use reqwest::Method;
use serde_json::json;

use crate::helpers::{TestApp, spawn_app_with};

crate::on_both_backends!(customers_export_and_erase_their_data);
crate::for_each_backend!(
    no_phone_number_is_stored_in_clear,
    keys_rotate_moves_every_row_and_keeps_it_readable,
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
