//! The audit trail: staff actions, staff access to customer data and sign-ins are recorded
//! in a hash chain with signed checkpoints; the tables refuse changes; concurrent appends
//! never fork the chain; and `huoban audit verify` (the real binary) names the first entry
//! of a tampered row or a rewritten tail.

use huoban_audit::{
    Actor,
    domain::{EntryRow, entry_hash},
};
use huoban_identity::Role;
use huoban_kit::Backend;
use serde_json::json;

use crate::helpers::{TestApp, spawn_app_with};

crate::on_both_backends!(
    staff_actions_access_and_sign_ins_are_audited,
    concurrent_appends_never_fork_the_chain,
    the_trail_refuses_updates_and_deletes,
);

crate::for_each_backend!(
    a_tampered_row_is_named_by_audit_verify,
    a_rewritten_tail_is_detected_by_its_signed_checkpoint,
);

async fn staff_actions_access_and_sign_ins_are_audited(app: TestApp) {
    let customer = app.register("13900000001", "审计客户").await.body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let admin = app.staff(Role::Admin).await;
    let agent = app.staff(Role::SupportAgent).await;
    let auditor = app.staff(Role::Auditor).await;

    let created = app
        .post(
            "/api/v1/staff/users",
            Some(&admin),
            json!({ "username": "new.ops", "display_name": "New ops", "role": "operator" }),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let viewed = app
        .get(&format!("/api/v1/staff/customers/{customer}"), Some(&agent))
        .await;
    assert_eq!(viewed.status, 200);
    let failed = app
        .post(
            "/api/v1/sessions",
            None,
            json!({ "phone": "13900000001", "password": "wrong-password" }),
        )
        .await;
    failed.assert_problem(401, "invalid-credentials");

    let all = app.get("/api/v1/staff/audit?limit=200", Some(&auditor)).await;
    assert_eq!(all.status, 200, "{:?}", all.body);
    let items = all.body["items"].as_array().expect("items").clone();
    let text = serde_json::to_string(&items).expect("json");
    assert!(!text.contains("13900000001"), "no phone number in the trail: {text}");
    assert!(!text.contains("审计客户"), "no name in the trail");
    let find = |action: &str| {
        items
            .iter()
            .filter(|e| e["action"] == action)
            .cloned()
            .collect::<Vec<_>>()
    };

    let requests = find("staff.request");
    assert!(
        requests.iter().any(|e| e["details"]["route"] == "/api/v1/staff/users"
            && e["details"]["method"] == "POST"
            && e["details"]["status"] == 201
            && e["actor_kind"] == "staff"),
        "{requests:?}"
    );
    let views = find("customers.view");
    assert_eq!(views.len(), 1, "{items:?}");
    assert_eq!(views[0]["subject"], format!("customer:{customer}"));
    assert_eq!(views[0]["actor_kind"], "staff");
    let failures = find("session.sign_in_failed");
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0]["subject"], format!("customer:{customer}"));
    assert!(find("session.sign_in").len() >= 3, "staff sign-ins recorded");
    // Newest first, each linked to the one before.
    let seqs: Vec<i64> = items.iter().map(|e| e["seq"].as_i64().expect("seq")).collect();
    assert!(seqs.windows(2).all(|w| w[0] == w[1] + 1), "{seqs:?}");
    assert!(items.windows(2).all(|w| w[0]["prev_hash"] == w[1]["hash"]));

    // Filters and cursor pages.
    let only = app
        .get("/api/v1/staff/audit?action=customers.view", Some(&auditor))
        .await;
    assert_eq!(only.body["items"].as_array().map(Vec::len), Some(1));
    let by_subject = app
        .get(
            &format!("/api/v1/staff/audit?subject=customer:{customer}"),
            Some(&auditor),
        )
        .await;
    assert_eq!(by_subject.body["items"].as_array().map(Vec::len), Some(2));
    let first = app.get("/api/v1/staff/audit?limit=2", Some(&auditor)).await;
    let cursor = first.body["next_cursor"].as_str().expect("another page").to_owned();
    let second = app
        .get(&format!("/api/v1/staff/audit?limit=2&cursor={cursor}"), Some(&auditor))
        .await;
    assert_eq!(second.body["items"][0]["seq"], seqs[2]);
    app.get("/api/v1/staff/audit?cursor=zzz", Some(&auditor))
        .await
        .assert_problem(422, "validation");
    app.get("/api/v1/staff/audit", Some(&agent))
        .await
        .assert_problem(403, "permission-denied");

    let verify = app.get("/api/v1/staff/audit/verify", Some(&auditor)).await;
    assert_eq!(verify.status, 200);
    assert_eq!(verify.body["ok"], true, "{:?}", verify.body);
    assert_eq!(verify.body["entries"], seqs[0]);
}

async fn concurrent_appends_never_fork_the_chain(app: TestApp) {
    let audit = app.app.audit.clone();
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let audit = audit.clone();
            tokio::spawn(async move {
                audit
                    .record(Actor::system("test"), "test.concurrent", None, json!({ "i": i }))
                    .await
                    .expect("recorded")
                    .seq
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.expect("task"));
    }
    seqs.sort();
    seqs.dedup();
    assert_eq!(seqs.len(), 40, "every append got its own seq");
    let report = audit.verify(|_, _| {}).await.expect("verify");
    assert!(report.ok, "{report:?}");
    assert_eq!(report.entries as i64, report.last_seq);
    assert!(report.last_seq >= 40);
}

async fn the_trail_refuses_updates_and_deletes(app: TestApp) {
    app.app
        .audit
        .record(Actor::system("test"), "test.entry", None, json!({}))
        .await
        .expect("recorded");
    app.app.audit.checkpoint().await.expect("checkpoint");
    for sql in [
        "UPDATE audit_log SET action = 'x'",
        "DELETE FROM audit_log",
        "UPDATE audit_checkpoints SET hash = 'x'",
        "DELETE FROM audit_checkpoints",
    ] {
        let refused = sqlx::query(sql).execute(app.app.db.writer()).await;
        assert!(refused.is_err(), "{sql} must be refused");
    }
    assert_eq!(app.count("audit_checkpoints").await, 1);
}

async fn app_with_checkpoints(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |c| c.audit.checkpoint_every = 10).await
}

async fn record_many(app: &TestApp, n: usize) {
    for i in 0..n {
        app.app
            .audit
            .record(Actor::system("test"), "test.entry", Some("thing:1"), json!({ "i": i }))
            .await
            .expect("recorded");
    }
}

async fn drop_triggers(app: &TestApp) {
    let statements: &[&str] = match app.backend {
        Backend::Sqlite => &["DROP TRIGGER audit_log_no_update", "DROP TRIGGER audit_log_no_delete"],
        Backend::Postgres => &["DROP TRIGGER audit_log_append_only ON audit_log"],
    };
    for sql in statements {
        sqlx::query(*sql)
            .execute(app.app.db.writer())
            .await
            .expect("drop trigger");
    }
}

/// Runs `huoban audit verify` against the app's database.
fn verify_binary(app: &TestApp) -> (bool, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_huoban"))
        .args(["audit", "verify", "--database-url", app.app.config.database_url()])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .output()
        .expect("huoban runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn a_tampered_row_is_named_by_audit_verify(backend: Backend) {
    let Some(app) = app_with_checkpoints(backend).await else {
        return;
    };
    record_many(&app, 30).await;
    let (ok, text) = verify_binary(&app);
    assert!(ok, "{text}");
    assert!(text.contains("audit trail intact"), "{text}");

    drop_triggers(&app).await;
    sqlx::query("UPDATE audit_log SET details = '{\"i\":999}' WHERE seq = 17")
        .execute(app.app.db.writer())
        .await
        .expect("tamper");
    let (ok, text) = verify_binary(&app);
    assert!(!ok, "tampering must fail verification: {text}");
    assert!(text.contains("broken at entry 17"), "{text}");
    assert!(text.contains("altered"), "{text}");
}

async fn a_rewritten_tail_is_detected_by_its_signed_checkpoint(backend: Backend) {
    let Some(app) = app_with_checkpoints(backend).await else {
        return;
    };
    record_many(&app, 25).await;
    let signed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_checkpoints WHERE seq IN (10, 20)")
        .fetch_one(app.app.db.reader())
        .await
        .expect("checkpoints");
    assert_eq!(signed, 2, "checkpoints at 10 and 20");
    drop_triggers(&app).await;
    let db = app.app.db.writer();
    // Truncate after entry 14 and re-chain a forged tail with valid hashes.
    sqlx::query("DELETE FROM audit_log WHERE seq > 14")
        .execute(db)
        .await
        .expect("truncate");
    let (_, mut prev): (i64, String) = sqlx::query_as("SELECT seq, hash FROM audit_log WHERE seq = 14")
        .fetch_one(db)
        .await
        .expect("entry 14");
    for seq in 15..=25 {
        let mut e = EntryRow {
            seq,
            at: 1,
            actor_kind: "system".into(),
            actor_id: Some("forger".into()),
            action: "test.entry".into(),
            subject: None,
            details: "{}".into(),
            prev_hash: prev.clone(),
            hash: String::new(),
        };
        e.hash = entry_hash(&e);
        sqlx::query(
            "INSERT INTO audit_log (seq, at, actor_kind, actor_id, action, subject, details, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(e.seq)
        .bind(e.at)
        .bind(&e.actor_kind)
        .bind(&e.actor_id)
        .bind(&e.action)
        .bind(&e.subject)
        .bind(&e.details)
        .bind(&e.prev_hash)
        .bind(&e.hash)
        .execute(db)
        .await
        .expect("forged entry");
        prev = e.hash;
    }
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
        .bind(&prev)
        .execute(db)
        .await
        .expect("head");
    let (ok, text) = verify_binary(&app);
    assert!(!ok, "a rewritten tail must fail verification: {text}");
    assert!(text.contains("broken at entry 20"), "{text}");
    assert!(text.contains("entries 11..=20 were rewritten"), "{text}");

    // Cutting the tail below a checkpoint is detected too.
    sqlx::query("DELETE FROM audit_log WHERE seq > 16")
        .execute(db)
        .await
        .expect("truncate");
    sqlx::query("UPDATE audit_head SET seq = 16 WHERE id = 1")
        .execute(db)
        .await
        .expect("head");
    let (ok, text) = verify_binary(&app);
    assert!(!ok, "{text}");
    assert!(text.contains("broken at entry 17"), "{text}");
    assert!(text.contains("missing"), "{text}");
}
