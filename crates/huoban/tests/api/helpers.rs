//! `spawn_app`: a Huoban server on a random loopback port with a fresh database, a movable
//! clock and typed request helpers. [`on_both_backends!`] turns one async test function
//! into a SQLite test and a PostgreSQL test.

use std::sync::Arc;

use huoban::{App, Config};
use huoban_identity::Role;
use huoban_kit::{Backend, ManualClock, testing::TestDb};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub clock: ManualClock,
    pub app: App,
    pub backend: Backend,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    _db: TestDb,
}

#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => { $(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(app) = $crate::helpers::spawn_app(huoban_kit::Backend::Sqlite).await {
                    super::$name(app).await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = $crate::helpers::spawn_app(huoban_kit::Backend::Postgres).await {
                    super::$name(app).await;
                }
            }
        }
    )* };
}

/// Like [`on_both_backends!`] for tests that take the backend and build their own app.
#[macro_export]
macro_rules! for_each_backend {
    ($($name:ident),* $(,)?) => { $(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() { super::$name(huoban_kit::Backend::Sqlite).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() { super::$name(huoban_kit::Backend::Postgres).await }
        }
    )* };
}

/// Starts the `huoban` binary with `serve --listen 127.0.0.1:0` and the given extra
/// arguments and environment, and returns it once it prints where it listens, with that
/// URL and everything it printed before. Its output keeps being drained.
pub async fn spawn_binary(args: &[&str], env: &[(&str, &str)]) -> (tokio::process::Child, String, Vec<String>) {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_huoban"));
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .current_dir(dir.path())
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn huoban");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut printed = Vec::new();
    let base = tokio::time::timeout(std::time::Duration::from_secs(120), async {
        while let Ok(Some(line)) = lines.next_line().await {
            printed.push(line.clone());
            if let Some(rest) = line.strip_prefix("Huoban is listening on ") {
                return rest.split_whitespace().next().expect("url").to_owned();
            }
        }
        panic!("huoban exited before listening: {printed:?}");
    })
    .await
    .expect("huoban starts");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    // The working folder must outlive the process; it is removed with the machine's /tmp.
    std::mem::forget(dir);
    (child, base, printed)
}

pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |_| {}).await
}

/// `HUOBAN_TEST_LOG=warn` (any filter) prints the servers' logs, to see what an internal
/// error was.
fn init_test_log() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        if let Ok(filter) = std::env::var("HUOBAN_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }
    });
}

pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut Config)) -> Option<TestApp> {
    init_test_log();
    let db = TestDb::fresh(backend).await?;
    let mut config = Config {
        database_url: db.url.clone().into(),
        database_max_connections: 4,
        ..Config::default()
    };
    configure(&mut config);
    let clock = ManualClock::new(jiff::Timestamp::now());
    let app = App::start(config, Arc::new(clock.clone())).await.expect("app starts");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.clone().serve(listener, async move {
        let _ = rx.await;
    }));
    huoban::install_tls_provider();
    Some(TestApp {
        base,
        http: reqwest::Client::new(),
        clock,
        app,
        backend,
        shutdown: Some(tx),
        _db: db,
    })
}

/// Another server on the same database and clock, as a second node behind the bank's
/// load balancer; returns it with its base URL. It stops when the sender is dropped.
pub async fn second_node(app: &TestApp) -> (App, String, tokio::sync::oneshot::Sender<()>) {
    let node = App::start((*app.app.config).clone(), Arc::new(app.clock.clone()))
        .await
        .expect("second node starts");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(node.clone().serve(listener, async move {
        let _ = rx.await;
    }));
    (node, base, tx)
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A response as the tests look at it.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The problem `type` slug, for error responses.
    pub fn problem(&self) -> &str {
        self.body["type"]
            .as_str()
            .and_then(|t| t.strip_prefix("urn:huoban:problem:"))
            .unwrap_or("<not a problem>")
    }

    pub fn assert_problem(&self, status: u16, slug: &str) {
        assert_eq!(self.status.as_u16(), status, "status of {:?}", self.body);
        assert_eq!(self.problem(), slug, "problem type of {:?}", self.body);
        assert_eq!(
            self.headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/problem+json"),
            "content type of {:?}",
            self.body
        );
    }
}

impl TestApp {
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        if let Some(b) = body {
            request = request.json(&b);
        }
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = request.send().await.expect("request reaches the server");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply { status, headers, body }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.send(Method::GET, path, token, None, &[]).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.send(Method::POST, path, token, Some(body), &[]).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.send(Method::PATCH, path, token, Some(body), &[]).await
    }

    pub async fn register(&self, phone: &str, name: &str) -> Reply {
        self.post(
            "/api/v1/customers",
            None,
            json!({ "phone": phone, "password": "secret-pass", "name": name }),
        )
        .await
    }

    /// Registers a customer and signs in on the H5 channel; returns the session token.
    pub async fn customer(&self, phone: &str) -> String {
        let reg = self.register(phone, "测试客户").await;
        assert_eq!(reg.status, StatusCode::CREATED, "{:?}", reg.body);
        self.sign_in(phone, "h5").await
    }

    pub async fn sign_in(&self, phone: &str, channel: &str) -> String {
        let session = self
            .post(
                "/api/v1/sessions",
                None,
                json!({ "phone": phone, "password": "secret-pass", "channel": channel }),
            )
            .await;
        assert_eq!(session.status, StatusCode::CREATED, "{:?}", session.body);
        session.body["token"].as_str().expect("token").to_owned()
    }

    /// Creates a staff user with the role and signs in; returns the session token.
    pub async fn staff(&self, role: Role) -> String {
        let username = format!("{}-{}", role.as_str().replace('_', "-"), rand_suffix());
        self.app
            .identity
            .create_staff_with_password(&username, "Test staff", role, "staff-secret")
            .await
            .expect("staff created");
        let session = self
            .post(
                "/api/v1/staff/sessions",
                None,
                json!({ "username": username, "password": "staff-secret" }),
            )
            .await;
        assert_eq!(session.status, StatusCode::CREATED, "{:?}", session.body);
        session.body["token"].as_str().expect("token").to_owned()
    }

    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(self.app.db.reader())
            .await
            .expect("count")
    }
}

pub fn rand_suffix() -> String {
    format!("{:06}", rand::random::<u32>() % 1_000_000)
}

impl TestApp {
    /// Signs in a demo-bank customer.
    pub async fn sign_in_demo(&self, phone: &str) -> String {
        let session = self
            .post(
                "/api/v1/sessions",
                None,
                json!({ "phone": phone, "password": huoban::demo::CUSTOMER_PASSWORD }),
            )
            .await;
        assert_eq!(session.status, StatusCode::CREATED, "{:?}", session.body);
        session.body["token"].as_str().expect("token").to_owned()
    }
}
