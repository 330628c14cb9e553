//! The personal data a capability holds about a customer, for their rights under PIPL:
//! access and copy (art. 45, the data export) and deletion (art. 47, erasure).
//!
//! Every capability that keeps rows about a customer implements [`PersonalData`] over its
//! own tables (capabilities never read each other's) and is registered when the server is
//! assembled; identity gathers the exports into one document and runs every erasure
//! before erasing its own part (the sealed name, phone, ID number and birthday, and the
//! sessions).
//!
//! An erasure must be idempotent: it runs again, whole, after a crash or a retry, so it
//! deletes or overwrites what is there and never fails because part of it was done
//! before. It must keep what other rules keep: value on the ledger stays (balances and
//! entries are the bank's books), and what other customers own stays theirs (a shared
//! goal's partner, a team's other members).

use std::{fmt::Debug, future::Future, pin::Pin};

use serde_json::Value;
use uuid::Uuid;

use crate::ApiError;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A capability's personal data about customers.
pub trait PersonalData: Send + Sync + Debug {
    /// The section's name in the export (`inbox`, `goals`, `security`…).
    fn section(&self) -> &'static str;

    /// Everything this capability holds about the customer, readable by them.
    fn export<'a>(&'a self, customer: Uuid) -> BoxFuture<'a, Result<Value, ApiError>>;

    /// Deletes (or overwrites) what this capability holds about the customer.
    /// Idempotent: safe to run again after a crash or on a retry.
    fn erase<'a>(&'a self, customer: Uuid) -> BoxFuture<'a, Result<(), ApiError>>;
}

/// Runs `statements` (each binding the customer id to `$1`) in one write transaction, for
/// erasures: all of them or none.
pub async fn erase_rows(db: &crate::Db, customer: Uuid, statements: &[&'static str]) -> Result<(), crate::DbError> {
    let mut tx = db.writer().begin().await?;
    for sql in statements {
        sqlx::query(*sql).bind(customer.to_string()).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Runs a query binding the customer id to `$1` and returns its rows as JSON objects,
/// for exports: integer columns as numbers (times — columns named `at` or ending in `_at`
/// — as RFC 3339 text), text columns as text, JSON text columns (`data`, `properties`,
/// `answers`, `detail`, `inputs`, `decision`) parsed.
pub async fn rows_json(db: &crate::Db, sql: &str, customer: Uuid) -> Result<Vec<Value>, crate::DbError> {
    use sqlx::{Column, Row};
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .bind(customer.to_string())
        .fetch_all(db.reader())
        .await?;
    Ok(rows
        .iter()
        .map(|row| {
            let mut object = serde_json::Map::new();
            for (i, column) in row.columns().iter().enumerate() {
                let name = column.name();
                let value = if let Ok(n) = row.try_get::<Option<i64>, _>(i) {
                    match n {
                        Some(micros) if name == "at" || name.ends_with("_at") => {
                            Value::String(crate::clock::from_micros(micros).to_string())
                        }
                        Some(n) => Value::from(n),
                        None => Value::Null,
                    }
                } else if let Ok(text) = row.try_get::<Option<String>, _>(i) {
                    match text {
                        Some(t) if JSON_COLUMNS.contains(&name) => serde_json::from_str(&t).unwrap_or(Value::String(t)),
                        Some(t) => Value::String(t),
                        None => Value::Null,
                    }
                } else {
                    Value::Null
                };
                object.insert(name.to_owned(), value);
            }
            Value::Object(object)
        })
        .collect())
}

const JSON_COLUMNS: &[&str] = &[
    "data",
    "properties",
    "answers",
    "detail",
    "inputs",
    "decision",
    "titles",
];
