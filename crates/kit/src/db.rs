//! The database handle shared by every capability, on either backend.
//!
//! SQLite (a file in WAL mode) is the embedded default; a `postgres://` URL selects
//! PostgreSQL. Both are reached through sqlx's `Any` driver so that SQL the dialects agree
//! on (`$1` placeholders, `ON CONFLICT`, `RETURNING`) is written once; where they differ
//! (locking, upserts with row locks) a store asks [`Db::backend`].
//!
//! SQLite allows one writer at a time, so the handle keeps a separate single-connection
//! write pool: writers queue in Huoban instead of failing with `SQLITE_BUSY`, while readers
//! use their own pool and see the last committed state (WAL). On PostgreSQL both pools are
//! the same pool.
//!
//! Stores return [`DbError`], never `sqlx::Error`: a missing row becomes `NotFound`, a
//! unique or check violation becomes `Conflict` with the constraint's name, and the HTTP
//! layer maps those to 404/409 without knowing SQL.

use std::{borrow::Cow, str::FromStr, time::Duration};

use sqlx::{
    Any, AnyPool, Executor, Transaction,
    any::{AnyConnectOptions, AnyPoolOptions},
    migrate::{Migration, MigrationType, Migrator},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// One schema change, written in both dialects. Each capability owns its migrations and
/// hands them to [`Db::migrate`]; versions are `YYYYMMDDNN` so changes from different
/// capabilities apply in the order they were written.
#[derive(Debug, Clone, Copy)]
pub struct MigrationSpec {
    pub version: i64,
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("row not found")]
    NotFound,
    /// A unique, check or foreign-key constraint refused the write.
    #[error("constraint {constraint} refused the write")]
    Conflict { constraint: String },
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("database configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Other(sqlx::Error),
}

impl From<sqlx::Error> for DbError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::RowNotFound => DbError::NotFound,
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => DbError::Unavailable(err),
            sqlx::Error::Database(ref db)
                if db.is_unique_violation() || db.is_check_violation() || db.is_foreign_key_violation() =>
            {
                let constraint = db
                    .constraint()
                    .map(str::to_owned)
                    // SQLite names no constraint; its message names the columns instead.
                    .unwrap_or_else(|| db.message().to_owned());
                DbError::Conflict { constraint }
            }
            other => DbError::Other(other),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for DbError {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        match err {
            sqlx::migrate::MigrateError::Execute(e) => DbError::from(e),
            other => DbError::Config(other.to_string()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct DbOptions {
    /// Connections in the PostgreSQL pool, or SQLite readers.
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Db {
    backend: Backend,
    read: AnyPool,
    write: AnyPool,
    /// Where a [`Db::listener`] connects (PostgreSQL); never printed.
    url: Hidden,
}

/// A connection URL kept for later connections; its `Debug` hides it (it may hold a
/// password).
#[derive(Clone)]
struct Hidden(std::sync::Arc<str>);

impl std::fmt::Debug for Hidden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("…")
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SchemaStatus {
    pub backend: &'static str,
    /// Latest migration applied to the database, if any.
    pub applied: Option<i64>,
    /// Latest migration this binary knows.
    pub expected: i64,
    pub pending: Vec<String>,
}

impl SchemaStatus {
    pub fn is_current(&self) -> bool {
        self.pending.is_empty()
    }
}

/// Turns what an operator types (`./huoban.db`, `sqlite:x.db`, `postgres://…`) into a URL
/// the driver accepts, creating a missing SQLite file.
pub fn normalize_url(url: &str) -> Result<(Backend, String), DbError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((Backend::Postgres, url.to_owned()));
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    if path.is_empty() || path.contains(":memory:") {
        return Err(DbError::Config(
            "an in-memory SQLite database cannot be shared by Huoban's reader and writer pools; give a file path"
                .into(),
        ));
    }
    if url.contains("://") && !url.starts_with("sqlite://") {
        return Err(DbError::Config(format!(
            "unsupported database URL scheme in {}; use a SQLite file path or a postgres:// URL",
            url.split("://").next().unwrap_or(url)
        )));
    }
    let (file, query) = path.split_once('?').unwrap_or((path, ""));
    let mut params: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
    if !params.iter().any(|p| p.starts_with("mode=")) {
        params.push("mode=rwc");
    }
    Ok((Backend::Sqlite, format!("sqlite://{file}?{}", params.join("&"))))
}

async fn sqlite_pragmas(conn: &mut sqlx::AnyConnection) -> Result<(), sqlx::Error> {
    // FULL: a commit is on disk before it is acknowledged, also on power loss.
    conn.execute(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
         PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
    )
    .await?;
    Ok(())
}

/// The writer connection of [`Db::write_lazily`]: closed instead of returned to the pool
/// unless taken out once its `synchronous` setting is back to `FULL`.
struct LazyWriter {
    conn: sqlx::pool::PoolConnection<Any>,
    set_back: bool,
}

impl Drop for LazyWriter {
    fn drop(&mut self) {
        if !self.set_back {
            self.conn.close_on_drop();
        }
    }
}

impl Db {
    pub async fn connect(url: &str, options: &DbOptions) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let (backend, url) = normalize_url(url)?;
        let connect = AnyConnectOptions::from_str(&url).map_err(|e| DbError::Config(e.to_string()))?;
        let hidden = Hidden(url.as_str().into());
        match backend {
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(options.max_connections)
                    .acquire_timeout(options.acquire_timeout)
                    .connect_with(connect)
                    .await
                    .map_err(DbError::Unavailable)?;
                Ok(Self {
                    backend,
                    read: pool.clone(),
                    write: pool,
                    url: hidden,
                })
            }
            Backend::Sqlite => {
                let write = AnyPoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(Duration::from_secs(60))
                    .after_connect(|conn, _| Box::pin(sqlite_pragmas(conn)))
                    .connect_with(connect.clone())
                    .await
                    .map_err(DbError::Unavailable)?;
                let read = AnyPoolOptions::new()
                    .max_connections(options.max_connections.clamp(1, 8))
                    .acquire_timeout(options.acquire_timeout)
                    .after_connect(|conn, _| Box::pin(sqlite_pragmas(conn)))
                    .connect_with(connect)
                    .await
                    .map_err(DbError::Unavailable)?;
                Ok(Self {
                    backend,
                    read,
                    write,
                    url: hidden,
                })
            }
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A connection of its own that receives PostgreSQL notifications (`LISTEN`), for a
    /// node to hear what other nodes changed — e.g. a revoked session. SQLite has no such
    /// channel: a `Config` error.
    pub async fn listener(&self) -> Result<sqlx::postgres::PgListener, DbError> {
        match self.backend {
            Backend::Postgres => sqlx::postgres::PgListener::connect(&self.url.0)
                .await
                .map_err(DbError::Unavailable),
            Backend::Sqlite => Err(DbError::Config("SQLite has no notification channel".into())),
        }
    }

    /// Pool for reads. On SQLite it never blocks behind the writer.
    pub fn reader(&self) -> &AnyPool {
        &self.read
    }

    /// Pool for writes; on SQLite a single connection, so writes are serialized in-process.
    pub fn writer(&self) -> &AnyPool {
        &self.write
    }

    pub async fn begin(&self) -> Result<Transaction<'static, Any>, DbError> {
        Ok(self.write.begin().await?)
    }

    /// Runs `work` in a write transaction whose commit does not wait for the disk, for
    /// records a crash may lose without harm (never money, never a timer). It is atomic
    /// and never torn, only possibly lost on a crash right after it:
    /// - PostgreSQL: `synchronous_commit` is off for this transaction alone;
    /// - SQLite (WAL): the writer connection commits it with `synchronous = NORMAL`, so it
    ///   reaches the disk with the next ordinary commit or checkpoint, and is set back to
    ///   `FULL` before anything else uses it; a connection that cannot be set back (an
    ///   error, or this future dropped midway) is closed instead of returned to the pool.
    ///
    /// On SQLite this spares the single writer a sync that other writers wait behind.
    pub async fn write_lazily<T>(
        &self,
        work: impl AsyncFnOnce(&mut Transaction<'_, Any>) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let mut conn = LazyWriter {
            conn: self.write.acquire().await?,
            set_back: false,
        };
        let c = &mut conn.conn;
        if self.backend == Backend::Sqlite {
            sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut **c).await?;
        }
        let result = async {
            let mut tx = sqlx::Connection::begin(&mut **c).await?;
            if self.backend == Backend::Postgres {
                sqlx::query("SET LOCAL synchronous_commit = off")
                    .execute(&mut *tx)
                    .await?;
            }
            let out = work(&mut tx).await?;
            tx.commit().await?;
            Ok::<_, DbError>(out)
        }
        .await;
        if self.backend == Backend::Sqlite {
            sqlx::query("PRAGMA synchronous = FULL").execute(&mut **c).await?;
        }
        // Set back (or never changed): the connection may go back to the pool.
        conn.set_back = true;
        result
    }

    pub async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    /// Pool figures for the metrics endpoint: (pool, open connections, idle connections).
    pub fn pool_stats(&self) -> Vec<(&'static str, u32, usize)> {
        let mut stats = vec![("read", self.read.size(), self.read.num_idle())];
        if self.backend == Backend::Sqlite {
            stats.push(("write", self.write.size(), self.write.num_idle()));
        }
        stats
    }

    fn migrator(&self, specs: &[MigrationSpec]) -> Migrator {
        let mut migrations: Vec<Migration> = specs
            .iter()
            .map(|spec| {
                let sql = match self.backend {
                    Backend::Sqlite => spec.sqlite,
                    Backend::Postgres => spec.postgres,
                };
                Migration::new(
                    spec.version,
                    Cow::Borrowed(spec.name),
                    MigrationType::Simple,
                    sqlx::SqlStr::from_static(sql),
                    false,
                )
            })
            .collect();
        migrations.sort_by_key(|m| m.version);
        Migrator::with_migrations(migrations)
    }

    /// Applies every pending migration; safe to call from several nodes at once (sqlx
    /// takes an advisory lock on PostgreSQL).
    pub async fn migrate(&self, specs: &[MigrationSpec]) -> Result<SchemaStatus, DbError> {
        self.migrator(specs).run(&self.write).await?;
        self.schema_status(specs).await
    }

    pub async fn schema_status(&self, specs: &[MigrationSpec]) -> Result<SchemaStatus, DbError> {
        let exists: Option<i64> = match self.backend {
            Backend::Sqlite => {
                sqlx::query_scalar("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'")
                    .fetch_optional(&self.read)
                    .await?
            }
            Backend::Postgres => {
                sqlx::query_scalar(
                    "SELECT 1::BIGINT FROM information_schema.tables \
                 WHERE table_name = '_sqlx_migrations' AND table_schema = current_schema()",
                )
                .fetch_optional(&self.read)
                .await?
            }
        };
        let applied: Vec<i64> = if exists.is_some() {
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = TRUE ORDER BY version")
                .fetch_all(&self.read)
                .await?
        } else {
            Vec::new()
        };
        let pending = specs
            .iter()
            .filter(|s| !applied.contains(&s.version))
            .map(|s| format!("{} {}", s.version, s.name))
            .collect();
        Ok(SchemaStatus {
            backend: self.backend.name(),
            applied: applied.last().copied(),
            expected: specs.iter().map(|s| s.version).max().unwrap_or(0),
            pending,
        })
    }

    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

/// `'id1','id2',…` for an SQL `IN (…)` list of UUIDs: hyphenated UUIDs are hex and hyphens
/// only, so inlining them is safe, and one statement serves any number of ids.
pub fn uuid_in_list(ids: &[uuid::Uuid]) -> String {
    let mut s = String::with_capacity(ids.len() * 39);
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push('\'');
        s.push_str(&id.hyphenated().to_string());
        s.push('\'');
    }
    s
}

/// Reads a boolean stored as an integer (0/1), the one boolean representation both
/// backends share through the `Any` driver.
pub fn flag(value: i64) -> bool {
    value != 0
}

/// A value bound in a multi-row statement ([`insert_rows`]).
#[derive(Debug, Clone)]
pub enum Bind {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    OptInt(Option<i64>),
}

/// Most values bound into one multi-row statement (both backends accept more).
const MAX_BINDS: usize = 8000;

/// Most rows of `cols` values one multi-row statement takes.
pub fn rows_per_statement(cols: usize) -> usize {
    (MAX_BINDS / cols.max(1)).max(1)
}

/// `INSERT INTO {head} VALUES (…),(…) {tail}` for `rows` rows of `cols` columns. SQLite
/// gets `?` placeholders: sqlx-sqlite resolves `$N` by a scan per parameter, which grows
/// quadratically with the row count.
pub fn multi_row_insert(backend: Backend, head: &str, cols: usize, rows: usize, tail: &str) -> String {
    let mut sql = String::with_capacity(head.len() + tail.len() + 32 + rows * cols * 6);
    sql.push_str("INSERT INTO ");
    sql.push_str(head);
    sql.push_str(" VALUES ");
    let mut n = 0;
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push('(');
        for c in 0..cols {
            if c > 0 {
                sql.push(',');
            }
            match backend {
                Backend::Sqlite => sql.push('?'),
                Backend::Postgres => {
                    n += 1;
                    sql.push('$');
                    sql.push_str(&n.to_string());
                }
            }
        }
        sql.push(')');
    }
    sql.push(' ');
    sql.push_str(tail);
    sql
}

/// Binds the rows' values in order, for a statement from [`multi_row_insert`].
pub fn bind_rows<'q>(
    mut q: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
    rows: &[Vec<Bind>],
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
    for row in rows {
        for b in row {
            q = match b {
                Bind::Text(s) => q.bind(s.clone()),
                Bind::OptText(s) => q.bind(s.clone()),
                Bind::Int(i) => q.bind(*i),
                Bind::OptInt(i) => q.bind(*i),
            };
        }
    }
    q
}

/// Inserts `rows` (all of one width) with multi-row statements, chunked past the bind
/// limit, on a connection (usually inside a transaction); `tail` follows the VALUES
/// (`ON CONFLICT …`). Returns the rows inserted.
pub async fn insert_rows(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    head: &str,
    tail: &str,
    rows: &[Vec<Bind>],
) -> Result<u64, DbError> {
    let Some(cols) = rows.first().map(Vec::len) else {
        return Ok(0);
    };
    let mut inserted = 0;
    for chunk in rows.chunks(rows_per_statement(cols)) {
        let sql = multi_row_insert(backend, head, cols, chunk.len(), tail);
        inserted += bind_rows(sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false), chunk)
            .execute(&mut *conn)
            .await?
            .rows_affected();
    }
    Ok(inserted)
}

/// Like [`insert_rows`] with a `tail` ending in `RETURNING <one text column>`: the values
/// of the rows actually inserted (an `ON CONFLICT DO NOTHING` skips the others).
pub async fn insert_rows_returning(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    head: &str,
    tail: &str,
    rows: &[Vec<Bind>],
) -> Result<Vec<String>, DbError> {
    let Some(cols) = rows.first().map(Vec::len) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for chunk in rows.chunks(rows_per_statement(cols)) {
        let sql = multi_row_insert(backend, head, cols, chunk.len(), tail);
        let q = bind_rows(sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false), chunk);
        for row in q.fetch_all(&mut *conn).await? {
            out.push(sqlx::Row::try_get::<String, _>(&row, 0)?);
        }
    }
    Ok(out)
}
