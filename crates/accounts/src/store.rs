//! The SQL of the accounts capability: balance alert subscriptions (`account_alerts`).
//! Balances, postings and statements are the ledger's and are read through its API,
//! never from its tables.

use huoban_kit::{Db, DbError, clock::to_micros, ids::new_id};
use jiff::Timestamp;
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use crate::domain::AlertRule;

/// A stored subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRow {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub account_id: Uuid,
    pub rule: AlertRule,
    pub created_at: i64,
}

#[derive(Debug, sqlx::FromRow)]
struct RawAlert {
    id: String,
    customer_id: String,
    account_id: String,
    kind: String,
    amount: i64,
    created_at: i64,
}

impl RawAlert {
    /// `None` for a row this version cannot read (an unknown kind from a newer node):
    /// skipped rather than failing the whole list.
    fn parse(self) -> Option<AlertRow> {
        Some(AlertRow {
            id: Uuid::parse_str(&self.id).ok()?,
            customer_id: Uuid::parse_str(&self.customer_id).ok()?,
            account_id: Uuid::parse_str(&self.account_id).ok()?,
            rule: AlertRule::from_stored(&self.kind, self.amount)?,
            created_at: self.created_at,
        })
    }
}

const COLUMNS: &str = "id, customer_id, account_id, kind, amount, created_at";

#[derive(Debug, Clone)]
pub struct AlertStore {
    db: Db,
}

impl AlertStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Saves a subscription; an identical one (same account, kind and number) is refused
    /// by the unique constraint as `DbError::Conflict`.
    #[tracing::instrument(skip_all, fields(customer = %customer))]
    pub async fn insert(
        &self,
        customer: Uuid,
        account: Uuid,
        rule: AlertRule,
        now: Timestamp,
    ) -> Result<AlertRow, DbError> {
        let row = AlertRow {
            id: new_id(),
            customer_id: customer,
            account_id: account,
            rule,
            created_at: to_micros(now),
        };
        sqlx::query(
            "INSERT INTO account_alerts (id, customer_id, account_id, kind, amount, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(row.id.to_string())
        .bind(customer.to_string())
        .bind(account.to_string())
        .bind(rule.kind())
        .bind(rule.amount())
        .bind(row.created_at)
        .execute(self.db.writer())
        .await?;
        Ok(row)
    }

    pub async fn count_of(&self, customer: Uuid) -> Result<i64, DbError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM account_alerts WHERE customer_id = $1")
                .bind(customer.to_string())
                .fetch_one(self.db.reader())
                .await?,
        )
    }

    /// A customer's subscriptions, oldest first.
    pub async fn list(&self, customer: Uuid) -> Result<Vec<AlertRow>, DbError> {
        let rows: Vec<RawAlert> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM account_alerts WHERE customer_id = $1 ORDER BY id"
        )))
        .bind(customer.to_string())
        .fetch_all(self.db.reader())
        .await?;
        Ok(rows.into_iter().filter_map(RawAlert::parse).collect())
    }

    /// Deletes one of the customer's subscriptions; false when they have none by that id.
    pub async fn delete(&self, customer: Uuid, id: Uuid) -> Result<bool, DbError> {
        Ok(
            sqlx::query("DELETE FROM account_alerts WHERE id = $1 AND customer_id = $2")
                .bind(id.to_string())
                .bind(customer.to_string())
                .execute(self.db.writer())
                .await?
                .rows_affected()
                == 1,
        )
    }

    /// Deletes all of a customer's subscriptions (their erasure).
    pub async fn delete_all(&self, customer: Uuid) -> Result<u64, DbError> {
        Ok(sqlx::query("DELETE FROM account_alerts WHERE customer_id = $1")
            .bind(customer.to_string())
            .execute(self.db.writer())
            .await?
            .rows_affected())
    }

    /// Every subscription on any of the accounts, in one query: the alert listener calls
    /// this once per group of posted transfers.
    pub async fn on_accounts(&self, accounts: &[String]) -> Result<Vec<AlertRow>, DbError> {
        if accounts.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (1..=accounts.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT {COLUMNS} FROM account_alerts WHERE account_id IN ({}) ORDER BY id",
            placeholders.join(", ")
        );
        let mut query = sqlx::query_as::<_, RawAlert>(AssertSqlSafe(sql));
        for account in accounts {
            query = query.bind(account.as_str());
        }
        let rows = query.fetch_all(self.db.reader()).await?;
        Ok(rows.into_iter().filter_map(RawAlert::parse).collect())
    }
}
