//! Durability: the `huoban` process is killed with SIGKILL in the middle of a transfer
//! load; after a restart on the same database every acknowledged transfer is present
//! exactly once (and a retry of it replays instead of moving money again), and the
//! ledger's invariants hold. Runs on SQLite and on PostgreSQL.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use huoban_kit::{Backend, Db, testing::TestDb};
use serde_json::{Value, json};

/// Starts `huoban serve` on the database (a small demo bank when `demo`).
async fn start(url: &str, demo: bool) -> (tokio::process::Child, String) {
    let mut args = vec!["--database-url", url];
    if demo {
        args.push("--demo");
    }
    let env = [("HUOBAN_DEMO__CUSTOMERS", "4"), ("HUOBAN_DEMO__DAYS_OF_HISTORY", "3")];
    let (child, base, _) = crate::helpers::spawn_binary(&args, &env).await;
    (child, base)
}

struct Customer {
    id: String,
    token: String,
    current: String,
    phone: String,
}

async fn sign_in(http: &reqwest::Client, base: &str, phone: &str) -> Customer {
    let session: Value = http
        .post(format!("{base}/api/v1/sessions"))
        .json(&json!({ "phone": phone, "password": huoban::demo::CUSTOMER_PASSWORD, "channel": "app" }))
        .send()
        .await
        .expect("sign in")
        .json()
        .await
        .expect("json");
    let token = session["token"].as_str().expect("token").to_owned();
    let accounts: Value = http
        .get(format!("{base}/api/v1/accounts"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("accounts")
        .json()
        .await
        .expect("json");
    let current = accounts["items"]
        .as_array()
        .or(accounts.as_array())
        .expect("account list")
        .iter()
        .find(|a| a["type"] == "current" || a["account_type"] == "current")
        .expect("a current account")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    Customer {
        id: session["customer"]["id"].as_str().expect("id").to_owned(),
        token,
        current,
        phone: phone.to_owned(),
    }
}

async fn acknowledged_transfers_survive_a_sigkill(backend: Backend) {
    let Some(test_db) = TestDb::fresh(backend).await else {
        return;
    };
    huoban::install_tls_provider();
    let http = reqwest::Client::new();
    let (mut child, base) = start(&test_db.url, true).await;
    let phones = ["13800000001", "13800000002", "13800000003", "13800000004"];
    let mut customers = Vec::new();
    for p in phones {
        customers.push(Arc::new(sign_in(&http, &base, p).await));
    }
    // (scope, key, acknowledged id, the request body)
    type Acked = (String, String, String, Value);
    let acked: Arc<Mutex<Vec<Acked>>> = Arc::default();
    let mut tasks = Vec::new();
    for t in 0..16usize {
        let from = customers[t % 4].clone();
        let to = customers[(t + 1) % 4].clone();
        let (http, base, acked) = (http.clone(), base.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            for n in 0.. {
                let key = format!("crash-{t}-{n}");
                let body = json!({ "from_account": from.current, "to_phone": to.phone, "amount": 1 + n % 7, "currency": "CNY" });
                let sent = http
                    .post(format!("{base}/api/v1/transfers"))
                    .bearer_auth(&from.token)
                    .header("idempotency-key", &key)
                    .json(&body)
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 201 => {
                        let answer: Value = r.json().await.unwrap_or_default();
                        let id = answer["id"].as_str().unwrap_or_default().to_owned();
                        acked.lock().expect("lock").push((format!("customer:{}", from.id), key, id, body));
                    }
                    Ok(r) => panic!("unexpected answer {}", r.status()),
                    // The server is gone: whatever was in flight is unacknowledged.
                    Err(_) => return,
                }
            }
        }));
    }
    // Let the load run, then kill the server without warning.
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if acked.lock().expect("lock").len() >= 300 {
            break;
        }
    }
    child.start_kill().expect("SIGKILL");
    let _ = child.wait().await;
    for task in tasks {
        task.await.expect("load task");
    }
    let acked = acked.lock().expect("lock").clone();
    assert!(
        acked.len() >= 50,
        "the load was running when the server died ({} acknowledged)",
        acked.len()
    );

    // Restart on the same database and check every acknowledged transfer.
    let (mut restarted, base) = start(&test_db.url, false).await;
    let db = Db::connect(&test_db.url, &Default::default()).await.expect("db");
    for (scope, key, id, _) in &acked {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT id, status FROM ledger_transfers WHERE scope = $1 AND idem_key = $2")
                .bind(scope)
                .bind(key)
                .fetch_all(db.reader())
                .await
                .expect("query");
        assert_eq!(rows.len(), 1, "acknowledged transfer {key} is present exactly once");
        assert_eq!(&rows[0].0, id, "with the id that was acknowledged");
        assert_eq!(rows[0].1, "posted");
    }
    let report = huoban_ledger::invariants(&db).await.expect("invariants");
    assert!(report.is_ok(), "{:?}", report.violations);
    // A client retrying an acknowledged transfer after the restart gets a replay.
    let from = &customers[0];
    let (_, key, id, body) = acked
        .iter()
        .find(|(scope, ..)| *scope == format!("customer:{}", from.id))
        .expect("an acknowledged transfer of the first customer");
    let retry = http
        .post(format!("{base}/api/v1/transfers"))
        .bearer_auth(&from.token)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .expect("retry");
    let status = retry.status();
    let headers = retry.headers().clone();
    let body: Value = retry.json().await.expect("json");
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        headers.get("idempotent-replayed").and_then(|v| v.to_str().ok()),
        Some("true")
    );
    assert_eq!(body["id"].as_str(), Some(id.as_str()));
    db.close().await;
    let _ = restarted.start_kill();
    let _ = restarted.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_transfers_survive_a_sigkill_on_sqlite() {
    acknowledged_transfers_survive_a_sigkill(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_transfers_survive_a_sigkill_on_postgres() {
    acknowledged_transfers_survive_a_sigkill(Backend::Postgres).await;
}
