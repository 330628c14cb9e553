//! The binary itself: `migrate` reports the schema, `serve --demo` seeds a demo bank whose
//! sign-ins work and shuts down cleanly on SIGTERM, `bench` prints and writes its figures.

use std::{process::Command, time::Duration};

const BIN: &str = env!("CARGO_BIN_EXE_huoban");

fn huoban(args: &[&str], dir: &std::path::Path) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("huoban runs")
}

#[test]
fn migrate_applies_and_reports_the_schema_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = huoban(&["migrate", "--database-url", "./m.db"], dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let latest = huoban::app::migrations().last().expect("migrations").version;
    assert!(text.contains(&format!("schema version {latest} on sqlite")), "{text}");
    assert!(text.contains("0 pending"), "{text}");
    assert!(dir.path().join("m.db").exists());
}

#[test]
fn a_bad_database_url_or_config_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = huoban(&["migrate", "--database-url", "mysql://x"], dir.path());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported database URL scheme"));
    let out = huoban(&["migrate", "--config", "missing.toml"], dir.path());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

#[test]
fn admin_create_prints_a_password_that_signs_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = huoban(
        &["admin", "create", "--username", "ops.lead", "--role", "operator"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("created staff user ops.lead (operator)"), "{text}");
    assert!(text.contains("password (shown once): "));
    let bad = huoban(
        &["admin", "create", "--username", "x.y", "--role", "emperor"],
        dir.path(),
    );
    assert!(!bad.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_demo_seeds_a_bank_whose_sign_ins_work_and_stops_on_sigterm() {
    let (mut child, base, printed) =
        crate::helpers::spawn_binary(&["--demo"], &[("HUOBAN_DEMO__CUSTOMERS", "120")]).await;
    let banner = printed.join("\n");
    assert!(banner.contains("password: "), "first admin password printed: {banner}");
    assert!(banner.contains("Seeded the demo bank: 120 customers"), "{banner}");
    assert!(banner.contains("huoban-demo"), "{banner}");
    huoban::install_tls_provider();
    let http = reqwest::Client::new();
    let session: serde_json::Value = http
        .post(format!("{base}/api/v1/sessions"))
        .json(&serde_json::json!({ "phone": "13800000001", "password": huoban::demo::CUSTOMER_PASSWORD }))
        .send()
        .await
        .expect("sign in")
        .json()
        .await
        .expect("json");
    assert!(session["token"].is_string(), "{session}");
    let staff = http
        .post(format!("{base}/api/v1/staff/sessions"))
        .json(&serde_json::json!({ "username": "risk", "password": huoban::demo::STAFF_PASSWORD }))
        .send()
        .await
        .expect("staff sign in");
    assert_eq!(staff.status(), 201);
    let pid = child.id().expect("pid");
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits after SIGTERM")
        .expect("status");
    assert!(status.success(), "graceful shutdown exits 0: {status:?}");
}

/// Runs `huoban bench <scenario>` briefly (1 s, no warm-up, 8 clients unless `args` says
/// otherwise), checks it succeeded with operations and no errors, and returns its JSON report.
fn bench(scenario: &str, args: &[&str]) -> (serde_json::Value, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut all = vec![
        "bench",
        scenario,
        "--duration",
        "1",
        "--warmup",
        "0",
        "--json",
        "report.json",
    ];
    if !args.contains(&"--concurrency") {
        all.extend(["--concurrency", "8"]);
    }
    all.extend_from_slice(args);
    let out = huoban(&all, dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).expect("json file")).expect("json");
    assert_eq!(report["scenario"], scenario);
    assert!(report["operations"].as_u64().expect("ops") > 0, "{report}");
    assert_eq!(report["errors"], 0, "{stderr}");
    (report, String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn bench_http_read_prints_and_writes_its_figures() {
    let (report, stdout) = bench("http-read", &["--concurrency", "4"]);
    assert!(stdout.contains("throughput") && stdout.contains("p99"), "{stdout}");
    assert_eq!(report["backend"], "sqlite");
    assert!(report["p99_ms"].as_f64().expect("p99") >= report["p50_ms"].as_f64().expect("p50"));
}

#[test]
fn json_logs_are_structured_and_never_show_the_database_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(BIN)
        .args(["admin", "create", "--username", "log.check", "--role", "auditor"])
        .current_dir(dir.path())
        .env("HUOBAN_LOG_FORMAT", "json")
        .env("HUOBAN_DATABASE_URL", "sqlite://./logs.db?cache=private")
        .env("HUOBAN_UNKNOWN_SETTING", "1")
        .env("RUST_LOG", "debug")
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let logs = String::from_utf8_lossy(&out.stderr);
    let events: Vec<serde_json::Value> = logs.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(!events.is_empty(), "JSON log lines on stderr: {logs}");
    assert!(
        events.iter().any(|e| e["level"] == "WARN"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("HUOBAN_UNKNOWN_SETTING"))),
        "unknown variables are warned about: {logs}"
    );
    assert!(events.iter().any(|e| e["message"] == "database ready"), "{logs}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("created staff user log.check"),
        "command output stays on stdout"
    );
}

#[test]
fn a_password_in_a_postgres_url_never_reaches_the_logs() {
    // No server listens there, so the error path is taken and logged too.
    let url = "postgres://postgres:hunter2-secret@127.0.0.1:5999/test";
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(BIN)
        .args(["migrate", "--database-url", url])
        .current_dir(dir.path())
        .env("RUST_LOG", "trace")
        .output()
        .expect("runs");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success());
    assert!(
        all.contains("connecting to the database"),
        "the failure is explained: {all}"
    );
    assert!(!all.contains("hunter2-secret"), "{all}");
}

#[test]
fn bench_ledger_core_moves_value_and_keeps_the_invariants() {
    let (report, _) = bench("ledger-core", &["--accounts", "20"]);
    assert_eq!(report["extra"]["invariants"], "ok");
}

#[test]
fn bench_ledger_moves_value_through_http_and_keeps_the_invariants() {
    let (report, _) = bench("ledger", &["--accounts", "12"]);
    assert_eq!(report["extra"]["invariants"], "ok");
}

#[test]
fn bench_events_applies_rules_and_measures_the_lag() {
    let (report, _) = bench("events", &["--accounts", "20", "--rate", "500", "--concurrency", "2"]);
    let extra = &report["extra"];
    assert_eq!(extra["invariants"], "ok", "{extra}");
    assert!(extra["lag_ms"].as_str().expect("lag").contains("p99"), "{extra}");
    assert!(
        !extra["lag_ms"].as_str().expect("lag").contains("(0 effects)"),
        "{extra}"
    );
}

#[test]
fn bench_flash_claim_never_oversells_and_keeps_the_invariants() {
    let (report, _) = bench("flash-claim", &["--stock", "15", "--accounts", "40"]);
    let extra = &report["extra"];
    assert_eq!(extra["oversell"], 0);
    assert_eq!(extra["reserved"], 0);
    assert_eq!(extra["stock"], 15);
    // Every unit claimed went to a distinct customer who got a 201, and a refusal for
    // stock means every unit was gone (40 customers on 15 units sell out within the second).
    let claimed = extra["claimed"].as_i64().expect("claimed");
    assert!(claimed <= 15, "{extra}");
    assert_eq!(extra["winners"], claimed, "{extra}");
    assert_eq!(extra["http_201"], claimed, "{extra}");
    if extra["out_of_stock"].as_u64().expect("out_of_stock") > 0 {
        assert_eq!(claimed, 15, "{extra}");
    }
    assert_eq!(extra["invariants"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_can_target_a_running_server_by_url() {
    let (mut server, base, _) = crate::helpers::spawn_binary(&[], &[]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = tokio::process::Command::new(BIN)
        .args([
            "bench",
            "http-read",
            "--url",
            &base,
            "--duration",
            "1",
            "--warmup",
            "0",
            "--concurrency",
            "4",
        ])
        .args(["--json", "remote.json"])
        .current_dir(dir.path())
        .output()
        .await
        .expect("bench runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("remote.json")).expect("json file")).expect("json");
    assert_eq!(
        report["backend"], "remote",
        "it used the given server, not one of its own"
    );
    assert!(report["operations"].as_u64().expect("ops") > 0);
    assert_eq!(report["errors"], 0);
    // The ledger scenarios seed in-process and refuse a remote target with a clear error.
    let refused = tokio::process::Command::new(BIN)
        .args(["bench", "ledger", "--url", &base, "--duration", "1", "--warmup", "0"])
        .current_dir(dir.path())
        .output()
        .await
        .expect("bench runs");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("run it without --url"));
    let _ = server.start_kill();
    let _ = server.wait().await;
}

#[test]
fn bench_risk_times_decisions_and_transfers_without_and_with_checks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = [
        "bench",
        "risk",
        "--duration",
        "1",
        "--warmup",
        "0",
        "--concurrency",
        "4",
        "--json",
        "report.json",
    ];
    let out = huoban(&args, dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).expect("json file")).expect("json");
    assert!(report["decisions"]["p99_us"].as_f64().expect("p99") > 0.0, "{report}");
    // Pairs of runs without and with checks, in alternating order (without-with in odd
    // rounds, with-without in even ones); the checked transfers found their customers'
    // facts in memory.
    let runs = report["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2 * huoban::bench_risk::ROUNDS, "{report}");
    for (i, run) in runs.iter().enumerate() {
        let round = i / 2 + 1;
        let checked = (i % 2 == 1) == (round % 2 == 1);
        assert_eq!(run["extra"]["round"], round, "{report}");
        assert!(run["operations"].as_u64().expect("ops") > 0, "{report}");
        assert_eq!(run["errors"], 0, "{stderr}");
        assert_eq!(run["extra"]["risk_checks"], checked, "{report}");
        assert!(run["extra"]["cpu_us_per_transfer"].as_f64().is_some(), "{report}");
        if checked {
            assert!(
                run["extra"]["facts_from_memory"].as_u64().expect("hits") > 0,
                "{report}"
            );
        }
    }
    assert!(report["median_with_checks"].as_f64().expect("median") > 0.0);
    assert!(report["cost_percent"].is_number());
}
