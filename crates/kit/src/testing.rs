//! Fresh databases for tests, on both backends.
//!
//! Every behaviour test runs once per backend from [`backends`]. SQLite gets a new file in
//! a temporary folder; PostgreSQL gets a new schema in the database named by
//! `HUOBAN_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`), reached
//! through `search_path`, and the schema is dropped when the [`TestDb`] is dropped.
//! Without a reachable server the PostgreSQL run is skipped with a message, except under
//! `CI=true`, where it fails: CI must prove both backends.

use crate::db::{Backend, Db, DbOptions};

pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

pub fn postgres_base_url() -> String {
    std::env::var("HUOBAN_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

#[derive(Debug)]
pub struct TestDb {
    pub url: String,
    pub backend: Backend,
    schema: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// A fresh, empty database of the given backend, or `None` when PostgreSQL is not
    /// reachable outside CI.
    pub async fn fresh(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary folder");
                let url = format!("sqlite://{}", dir.path().join("huoban.db").display());
                Some(TestDb {
                    url,
                    backend,
                    schema: None,
                    _dir: Some(dir),
                })
            }
            Backend::Postgres => {
                let base = postgres_base_url();
                let admin = match Db::connect(
                    &base,
                    &DbOptions {
                        max_connections: 1,
                        ..Default::default()
                    },
                )
                .await
                {
                    Ok(db) => db,
                    Err(e) => {
                        if std::env::var("CI").is_ok_and(|v| v == "true") {
                            panic!("CI=true requires PostgreSQL at {base}: {e}");
                        }
                        eprintln!("skipping the PostgreSQL run: {base} is not reachable ({e})");
                        return None;
                    }
                };
                let schema = format!("t_{}", uuid::Uuid::now_v7().simple());
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                    .execute(admin.writer())
                    .await
                    .expect("create test schema");
                admin.close().await;
                let sep = if base.contains('?') { '&' } else { '?' };
                Some(TestDb {
                    url: format!("{base}{sep}options[search_path]={schema}"),
                    backend,
                    schema: Some(schema),
                    _dir: None,
                })
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(schema) = self.schema.take() else { return };
        // Dropping happens outside any runtime's async context; a short-lived thread with its
        // own runtime removes the schema.
        let base = postgres_base_url();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    if let Ok(db) = Db::connect(
                        &base,
                        &DbOptions {
                            max_connections: 1,
                            ..Default::default()
                        },
                    )
                    .await
                    {
                        let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {schema} CASCADE")))
                            .execute(db.writer())
                            .await;
                        db.close().await;
                    }
                });
            }
        })
        .join();
    }
}

/// The backends every behaviour test runs on.
pub const BACKENDS: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];
