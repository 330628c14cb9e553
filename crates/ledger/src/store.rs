//! The ledger's SQL, for both backends: reading accounts, transfers, postings and
//! statements (through the read pool), opening accounts, the statements the group-commit
//! writer runs inside its batch transaction, and the invariant check.
//!
//! Rules live in [`crate::domain`]; this module only loads and saves. The statements that
//! change value are `pub(crate)`: only the writer may run them. Every function
//! returns [`LedgerError`], never `sqlx::Error`.

use std::collections::{BTreeMap, HashMap};

use huoban_kit::{
    Backend, Db, DbError,
    clock::{from_micros, to_micros},
    db::flag,
    page::Page,
};
use jiff::{Timestamp, civil::Date, tz::TimeZone};
use serde::Serialize;
use sqlx::{AnyConnection, AssertSqlSafe, Row, any::AnyRow};

use crate::{
    domain::{
        Account, AccountId, AccountState, AccountType, Amount, Balance, Direction, IdempotencyKey, Leg, Limits,
        NewAccount, Owner, OwnerKind, Posting, Transfer, TransferId, TransferMeta, TransferStatus, Unit, VoidReason,
    },
    error::LedgerError,
};

/// Most rows bound into one statement; both backends accept far more, this keeps
/// statements a reasonable size.
const CHUNK: usize = 400;

fn sql_err(err: sqlx::Error) -> LedgerError {
    LedgerError::Storage(DbError::from(err))
}

fn parse<T: std::str::FromStr>(value: &str, what: &str) -> Result<T, LedgerError> {
    value
        .parse()
        .map_err(|_| LedgerError::Inconsistent(format!("stored {what} {value:?} is not valid")))
}

fn col<'r, T>(row: &'r AnyRow, name: &str) -> Result<T, LedgerError>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(name).map_err(sql_err)
}

/// `$start, $start+1, …` for `count` values.
fn placeholders(start: usize, count: usize) -> String {
    (start..start + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

const ACCOUNT_COLUMNS: &str = "id, unit, owner_kind, owner_id, account_type, label, external_ref, allow_negative, \
     max_balance, posted, pending_out, pending_in, created_at";

fn account_from_row(row: &AnyRow) -> Result<Account, LedgerError> {
    Ok(Account {
        id: parse(&col::<String>(row, "id")?, "account id")?,
        unit: parse(&col::<String>(row, "unit")?, "unit")?,
        owner: Owner {
            kind: parse::<OwnerKind>(&col::<String>(row, "owner_kind")?, "owner kind")?,
            id: col(row, "owner_id")?,
        },
        account_type: parse::<AccountType>(&col::<String>(row, "account_type")?, "account type")?,
        limits: Limits {
            allow_negative: flag(col(row, "allow_negative")?),
            max_balance: col(row, "max_balance")?,
        },
        label: col(row, "label")?,
        external_ref: col(row, "external_ref")?,
        balance: Balance {
            posted: col(row, "posted")?,
            pending_out: col(row, "pending_out")?,
            pending_in: col(row, "pending_in")?,
        },
        created_at: from_micros(col(row, "created_at")?),
    })
}

/// Opens an account; with an `external_ref`, opening it again returns the first one.
pub async fn create_account(db: &Db, new: &NewAccount, now: Timestamp) -> Result<Account, LedgerError> {
    new.validate()?;
    let id = AccountId::new();
    // ON CONFLICT DO NOTHING: two nodes opening the same reference at once both get the
    // one account instead of one of them failing.
    let inserted = sqlx::query(
        "INSERT INTO ledger_accounts (id, unit, owner_kind, owner_id, account_type, label, external_ref, \
         allow_negative, max_balance, posted, pending_out, pending_in, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, 0, 0, $10) ON CONFLICT (external_ref) DO NOTHING",
    )
    .bind(id.to_string())
    .bind(new.unit.as_str())
    .bind(new.owner.kind.as_str())
    .bind(&new.owner.id)
    .bind(new.account_type.as_str())
    .bind(&new.label)
    .bind(&new.external_ref)
    .bind(i64::from(new.limits.allow_negative))
    .bind(new.limits.max_balance)
    .bind(to_micros(now))
    .execute(db.writer())
    .await
    .map_err(sql_err)?
    .rows_affected()
        == 1;
    if inserted {
        return account(db.writer(), id).await;
    }
    let reference = new.external_ref.clone().unwrap_or_default();
    let existing = sqlx::query(AssertSqlSafe(format!(
        "SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts WHERE external_ref = $1"
    )))
    .bind(&reference)
    .fetch_one(db.writer())
    .await
    .map_err(sql_err)?;
    let existing = account_from_row(&existing)?;
    if existing.matches(new) {
        Ok(existing)
    } else {
        Err(LedgerError::AccountReferenceReused(reference))
    }
}

pub async fn account<'e, E>(executor: E, id: AccountId) -> Result<Account, LedgerError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts WHERE id = $1"
    )))
    .bind(id.to_string())
    .fetch_optional(executor)
    .await
    .map_err(sql_err)?
    .ok_or_else(|| LedgerError::UnknownAccount(id.to_string()))?;
    account_from_row(&row)
}

pub async fn accounts_of_owner(db: &Db, owner: &Owner) -> Result<Vec<Account>, LedgerError> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts WHERE owner_kind = $1 AND owner_id = $2 ORDER BY id"
    )))
    .bind(owner.kind.as_str())
    .bind(&owner.id)
    .fetch_all(db.reader())
    .await
    .map_err(sql_err)?;
    rows.iter().map(account_from_row).collect()
}

/// Loads and, on PostgreSQL, row-locks the given accounts. The ids must be sorted: every
/// writer locks in the same order, so two batches touching the same accounts queue
/// behind each other instead of deadlocking. On SQLite the single write connection
/// already makes the batch the only writer.
pub(crate) async fn lock_accounts(
    conn: &mut AnyConnection,
    backend: Backend,
    sorted_ids: &[AccountId],
) -> Result<BTreeMap<AccountId, AccountState>, LedgerError> {
    let mut states = BTreeMap::new();
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    };
    for chunk in sorted_ids.chunks(CHUNK) {
        let sql = format!(
            "SELECT id, unit, allow_negative, max_balance, posted, pending_out, pending_in \
             FROM ledger_accounts WHERE id IN ({}) ORDER BY id{lock}",
            placeholders(1, chunk.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(id.to_string());
        }
        for row in query.fetch_all(&mut *conn).await.map_err(sql_err)? {
            let state = AccountState {
                id: parse(&col::<String>(&row, "id")?, "account id")?,
                unit: parse::<Unit>(&col::<String>(&row, "unit")?, "unit")?,
                limits: Limits {
                    allow_negative: flag(col(&row, "allow_negative")?),
                    max_balance: col(&row, "max_balance")?,
                },
                balance: Balance {
                    posted: col(&row, "posted")?,
                    pending_out: col(&row, "pending_out")?,
                    pending_in: col(&row, "pending_in")?,
                },
            };
            states.insert(state.id, state);
        }
    }
    Ok(states)
}

/// Writes the balances a batch ended with, once per touched account.
pub(crate) async fn save_balances(
    conn: &mut AnyConnection,
    balances: &BTreeMap<AccountId, Balance>,
) -> Result<(), LedgerError> {
    for (id, b) in balances {
        sqlx::query("UPDATE ledger_accounts SET posted = $1, pending_out = $2, pending_in = $3 WHERE id = $4")
            .bind(b.posted)
            .bind(b.pending_out)
            .bind(b.pending_in)
            .bind(id.to_string())
            .execute(&mut *conn)
            .await
            .map_err(sql_err)?;
    }
    Ok(())
}

const TRANSFER_COLUMNS: &str = "id, scope, idem_key, request_hash, unit, two_phase, status, void_reason, description, \
     merchant_category, channel, event_id, metadata, created_at, expires_at, posted_at, voided_at";

fn transfer_from_row(row: &AnyRow, legs: Vec<Leg>) -> Result<(Transfer, String), LedgerError> {
    let metadata: Option<String> = col(row, "metadata")?;
    let metadata = metadata
        .map(|m| serde_json::from_str(&m))
        .transpose()
        .map_err(|e| LedgerError::Inconsistent(format!("stored metadata is not JSON: {e}")))?;
    let void_reason: Option<String> = col(row, "void_reason")?;
    let transfer = Transfer {
        id: parse(&col::<String>(row, "id")?, "transfer id")?,
        key: IdempotencyKey::new(col::<String>(row, "scope")?, col::<String>(row, "idem_key")?)?,
        unit: parse(&col::<String>(row, "unit")?, "unit")?,
        legs,
        status: parse::<TransferStatus>(&col::<String>(row, "status")?, "status")?,
        two_phase: flag(col(row, "two_phase")?),
        void_reason: void_reason
            .map(|r| parse::<VoidReason>(&r, "void reason"))
            .transpose()?,
        meta: TransferMeta {
            description: col(row, "description")?,
            merchant_category: col(row, "merchant_category")?,
            channel: col(row, "channel")?,
            event_id: col(row, "event_id")?,
            metadata,
        },
        created_at: from_micros(col(row, "created_at")?),
        expires_at: col::<Option<i64>>(row, "expires_at")?.map(from_micros),
        posted_at: col::<Option<i64>>(row, "posted_at")?.map(from_micros),
        voided_at: col::<Option<i64>>(row, "voided_at")?.map(from_micros),
    };
    Ok((transfer, col(row, "request_hash")?))
}

/// Legs of the given transfers, in leg order.
pub(crate) async fn legs_of(
    conn: &mut AnyConnection,
    ids: &[TransferId],
) -> Result<HashMap<TransferId, Vec<Leg>>, LedgerError> {
    let mut legs: HashMap<TransferId, Vec<Leg>> = HashMap::new();
    for chunk in ids.chunks(CHUNK) {
        let sql = format!(
            "SELECT transfer_id, debit_account, credit_account, amount FROM ledger_legs \
             WHERE transfer_id IN ({}) ORDER BY transfer_id, leg",
            placeholders(1, chunk.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(id.to_string());
        }
        for row in query.fetch_all(&mut *conn).await.map_err(sql_err)? {
            let transfer: TransferId = parse(&col::<String>(&row, "transfer_id")?, "transfer id")?;
            let leg = Leg {
                debit: parse(&col::<String>(&row, "debit_account")?, "account id")?,
                credit: parse(&col::<String>(&row, "credit_account")?, "account id")?,
                amount: Amount::new(col(&row, "amount")?)
                    .map_err(|_| LedgerError::Inconsistent("stored leg amount is not positive".into()))?,
            };
            legs.entry(transfer).or_default().push(leg);
        }
    }
    Ok(legs)
}

/// A transfer with its legs and the hash of the request that created it.
pub(crate) async fn load_transfer(
    conn: &mut AnyConnection,
    id: TransferId,
) -> Result<Option<(Transfer, String)>, LedgerError> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {TRANSFER_COLUMNS} FROM ledger_transfers WHERE id = $1"
    )))
    .bind(id.to_string())
    .fetch_optional(&mut *conn)
    .await
    .map_err(sql_err)?;
    let Some(row) = row else { return Ok(None) };
    let legs = legs_of(conn, &[id]).await?.remove(&id).unwrap_or_default();
    transfer_from_row(&row, legs).map(Some)
}

pub(crate) async fn load_transfer_by_key(
    conn: &mut AnyConnection,
    key: &IdempotencyKey,
) -> Result<Option<(Transfer, String)>, LedgerError> {
    let id: Option<String> = sqlx::query_scalar("SELECT id FROM ledger_transfers WHERE scope = $1 AND idem_key = $2")
        .bind(key.scope())
        .bind(key.key())
        .fetch_optional(&mut *conn)
        .await
        .map_err(sql_err)?;
    match id {
        Some(id) => load_transfer(conn, parse(&id, "transfer id")?).await,
        None => Ok(None),
    }
}

/// Inserts a new transfer row and its legs. Returns false, having written nothing, when
/// another writer committed the same idempotency key first.
pub(crate) async fn insert_transfer(
    conn: &mut AnyConnection,
    t: &Transfer,
    request_hash: &str,
) -> Result<bool, LedgerError> {
    let metadata = t.meta.metadata.as_ref().map(|m| m.to_string());
    // ON CONFLICT DO NOTHING rather than catching the violation: on PostgreSQL it waits
    // for a concurrent inserter of the same key to finish and then yields cleanly.
    let inserted = sqlx::query(
        "INSERT INTO ledger_transfers (id, scope, idem_key, request_hash, unit, two_phase, status, void_reason, \
         description, merchant_category, channel, event_id, metadata, created_at, expires_at, posted_at, voided_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8, $9, $10, $11, $12, $13, $14, $15, NULL) \
         ON CONFLICT (scope, idem_key) DO NOTHING",
    )
    .bind(t.id.to_string())
    .bind(t.key.scope())
    .bind(t.key.key())
    .bind(request_hash)
    .bind(t.unit.as_str())
    .bind(i64::from(t.two_phase))
    .bind(t.status.as_str())
    .bind(&t.meta.description)
    .bind(&t.meta.merchant_category)
    .bind(&t.meta.channel)
    .bind(&t.meta.event_id)
    .bind(metadata)
    .bind(to_micros(t.created_at))
    .bind(t.expires_at.map(to_micros))
    .bind(t.posted_at.map(to_micros))
    .execute(&mut *conn)
    .await
    .map_err(sql_err)?
    .rows_affected()
        == 1;
    if !inserted {
        return Ok(false);
    }
    let sql = format!(
        "INSERT INTO ledger_legs (transfer_id, leg, debit_account, credit_account, amount) VALUES {}",
        (0..t.legs.len())
            .map(|i| format!("({})", placeholders(i * 5 + 1, 5)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for (i, leg) in t.legs.iter().enumerate() {
        query = query
            .bind(t.id.to_string())
            .bind(i as i64)
            .bind(leg.debit.to_string())
            .bind(leg.credit.to_string())
            .bind(leg.amount.get());
    }
    query.execute(&mut *conn).await.map_err(sql_err)?;
    Ok(true)
}

/// Writes the two signed entries of every leg of a transfer being posted at `at`.
pub(crate) async fn insert_entries(conn: &mut AnyConnection, t: &Transfer, at: Timestamp) -> Result<(), LedgerError> {
    let rows = t.legs.len() * 2;
    let sql = format!(
        "INSERT INTO ledger_entries (id, account_id, transfer_id, leg, unit, amount, merchant_category, at) VALUES {}",
        (0..rows)
            .map(|i| format!("({})", placeholders(i * 8 + 1, 8)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for (i, leg) in t.legs.iter().enumerate() {
        for (account, amount) in [(leg.debit, -leg.amount.get()), (leg.credit, leg.amount.get())] {
            query = query
                .bind(huoban_kit::ids::new_id().to_string())
                .bind(account.to_string())
                .bind(t.id.to_string())
                .bind(i as i64)
                .bind(t.unit.as_str())
                .bind(amount)
                .bind(&t.meta.merchant_category)
                .bind(to_micros(at));
        }
    }
    query.execute(&mut *conn).await.map_err(sql_err)?;
    Ok(())
}

/// Moves a pending transfer to `posted` or `voided`. Returns false when it was no longer
/// pending (which the account locks make impossible; the caller treats it as a bug).
pub(crate) async fn finish_pending(
    conn: &mut AnyConnection,
    id: TransferId,
    status: TransferStatus,
    reason: Option<VoidReason>,
    at: Timestamp,
) -> Result<bool, LedgerError> {
    let sql = match status {
        TransferStatus::Posted => {
            "UPDATE ledger_transfers SET status = 'posted', posted_at = $1 WHERE id = $2 AND status = 'pending'"
        }
        _ => {
            "UPDATE ledger_transfers SET status = 'voided', voided_at = $1, void_reason = $3 \
             WHERE id = $2 AND status = 'pending'"
        }
    };
    let mut query = sqlx::query(sql).bind(to_micros(at)).bind(id.to_string());
    if status != TransferStatus::Posted {
        query = query.bind(reason.unwrap_or(VoidReason::Voided).as_str());
    }
    Ok(query.execute(&mut *conn).await.map_err(sql_err)?.rows_affected() == 1)
}

/// Holds whose expiry has passed, oldest first.
pub(crate) async fn expired_holds(
    conn: &mut AnyConnection,
    now: Timestamp,
    limit: i64,
) -> Result<Vec<TransferId>, LedgerError> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM ledger_transfers WHERE status = 'pending' AND expires_at <= $1 ORDER BY expires_at, id LIMIT $2",
    )
    .bind(to_micros(now))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await
    .map_err(sql_err)?;
    ids.iter().map(|id| parse(id, "transfer id")).collect()
}

/// Filters for an account's postings. `after` is the last posting id of the previous page
/// (the HTTP layer decodes its cursor with `huoban_kit::page`).
#[derive(Debug, Clone, Default)]
pub struct PostingQuery {
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub direction: Option<Direction>,
    pub merchant_category: Option<String>,
    pub limit: u32,
    pub after: Option<String>,
}

enum Arg {
    Int(i64),
    Text(String),
}

/// An account's postings, newest first, `limit` (1 to 200, default 50) per page.
pub async fn postings(db: &Db, account: AccountId, q: &PostingQuery) -> Result<Page<Posting>, LedgerError> {
    let limit = if q.limit == 0 { 50 } else { q.limit.min(200) };
    let mut sql = String::from(
        "SELECT e.id, e.account_id, e.transfer_id, e.leg, e.unit, e.amount, e.merchant_category, e.at, \
         t.description, t.channel \
         FROM ledger_entries e JOIN ledger_transfers t ON t.id = e.transfer_id WHERE e.account_id = $1",
    );
    let mut args = vec![Arg::Text(account.to_string())];
    let mut push = |clause: &str, arg: Arg, sql: &mut String| {
        args.push(arg);
        sql.push_str(&format!(" AND {clause} ${}", args.len()));
    };
    if let Some(from) = q.from {
        push("e.at >=", Arg::Int(to_micros(from)), &mut sql);
    }
    if let Some(to) = q.to {
        push("e.at <", Arg::Int(to_micros(to)), &mut sql);
    }
    if let Some(category) = &q.merchant_category {
        push("e.merchant_category =", Arg::Text(category.clone()), &mut sql);
    }
    if let Some(after) = &q.after {
        push("e.id <", Arg::Text(after.clone()), &mut sql);
    }
    match q.direction {
        Some(Direction::Debit) => sql.push_str(" AND e.amount < 0"),
        Some(Direction::Credit) => sql.push_str(" AND e.amount > 0"),
        None => {}
    }
    sql.push_str(&format!(" ORDER BY e.id DESC LIMIT {}", limit + 1));
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for arg in args {
        query = match arg {
            Arg::Int(i) => query.bind(i),
            Arg::Text(s) => query.bind(s),
        };
    }
    let rows = query.fetch_all(db.reader()).await.map_err(sql_err)?;
    let items = rows
        .iter()
        .map(|row| {
            let amount: i64 = col(row, "amount")?;
            Ok(Posting {
                id: col(row, "id")?,
                account_id: parse(&col::<String>(row, "account_id")?, "account id")?,
                transfer_id: parse(&col::<String>(row, "transfer_id")?, "transfer id")?,
                leg: col(row, "leg")?,
                direction: if amount < 0 {
                    Direction::Debit
                } else {
                    Direction::Credit
                },
                amount: amount.checked_abs().ok_or(LedgerError::AmountOverflow)?,
                unit: parse(&col::<String>(row, "unit")?, "unit")?,
                at: from_micros(col(row, "at")?),
                merchant_category: col(row, "merchant_category")?,
                description: col(row, "description")?,
                channel: col(row, "channel")?,
            })
        })
        .collect::<Result<Vec<_>, LedgerError>>()?;
    Ok(Page::from_rows(items, limit, |p| p.id.clone()))
}

/// Spending in one merchant category over a statement period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CategoryTotal {
    /// `None` for spending without a category.
    pub merchant_category: Option<String>,
    pub amount: i64,
}

/// An account's calendar-month statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statement {
    pub account_id: AccountId,
    pub unit: Unit,
    pub time_zone: String,
    /// First instant of the month in the time zone, inclusive.
    pub period_start: Timestamp,
    /// First instant of the next month, exclusive.
    pub period_end: Timestamp,
    pub opening_balance: i64,
    pub closing_balance: i64,
    pub total_in: i64,
    pub total_out: i64,
    /// Outgoing totals by merchant category, largest first.
    pub spending_by_category: Vec<CategoryTotal>,
}

/// The calendar month `year-month` in `time_zone` (an IANA name such as `Asia/Shanghai`)
/// as a half-open range of instants.
pub fn month_bounds(year: i16, month: i8, time_zone: &str) -> Result<(Timestamp, Timestamp), LedgerError> {
    let tz =
        TimeZone::get(time_zone).map_err(|_| LedgerError::InvalidInput(format!("unknown time zone {time_zone:?}")))?;
    let first = Date::new(year, month, 1)
        .map_err(|_| LedgerError::InvalidInput(format!("{year}-{month} is not a calendar month")))?;
    let next = first
        .checked_add(jiff::Span::new().months(1))
        .map_err(|_| LedgerError::InvalidInput(format!("{year}-{month} is out of range")))?;
    let start = first
        .to_zoned(tz.clone())
        .map_err(|e| LedgerError::InvalidInput(e.to_string()))?
        .timestamp();
    let end = next
        .to_zoned(tz)
        .map_err(|e| LedgerError::InvalidInput(e.to_string()))?
        .timestamp();
    Ok((start, end))
}

pub async fn statement(
    db: &Db,
    account_id: AccountId,
    year: i16,
    month: i8,
    time_zone: &str,
) -> Result<Statement, LedgerError> {
    let (start, end) = month_bounds(year, month, time_zone)?;
    let mut conn = db.reader().acquire().await.map_err(sql_err)?;
    let acct = account(&mut *conn, account_id).await?;
    // SUM is NUMERIC on PostgreSQL, which the Any driver cannot decode: cast to BIGINT.
    let row = sqlx::query(
        "SELECT \
         CAST(COALESCE(SUM(CASE WHEN at < $2 THEN amount ELSE 0 END), 0) AS BIGINT) AS opening, \
         CAST(COALESCE(SUM(CASE WHEN at < $3 THEN amount ELSE 0 END), 0) AS BIGINT) AS closing, \
         CAST(COALESCE(SUM(CASE WHEN at >= $2 AND at < $3 AND amount > 0 THEN amount ELSE 0 END), 0) AS BIGINT) AS total_in, \
         CAST(COALESCE(SUM(CASE WHEN at >= $2 AND at < $3 AND amount < 0 THEN -amount ELSE 0 END), 0) AS BIGINT) AS total_out \
         FROM ledger_entries WHERE account_id = $1",
    )
    .bind(account_id.to_string())
    .bind(to_micros(start))
    .bind(to_micros(end))
    .fetch_one(&mut *conn)
    .await
    .map_err(sql_err)?;
    let categories = sqlx::query(
        "SELECT merchant_category, CAST(SUM(-amount) AS BIGINT) AS spent FROM ledger_entries \
         WHERE account_id = $1 AND at >= $2 AND at < $3 AND amount < 0 \
         GROUP BY merchant_category ORDER BY spent DESC, merchant_category",
    )
    .bind(account_id.to_string())
    .bind(to_micros(start))
    .bind(to_micros(end))
    .fetch_all(&mut *conn)
    .await
    .map_err(sql_err)?;
    Ok(Statement {
        account_id,
        unit: acct.unit,
        time_zone: time_zone.to_owned(),
        period_start: start,
        period_end: end,
        opening_balance: col(&row, "opening")?,
        closing_balance: col(&row, "closing")?,
        total_in: col(&row, "total_in")?,
        total_out: col(&row, "total_out")?,
        spending_by_category: categories
            .iter()
            .map(|r| {
                Ok(CategoryTotal {
                    merchant_category: col(r, "merchant_category")?,
                    amount: col(r, "spent")?,
                })
            })
            .collect::<Result<_, LedgerError>>()?,
    })
}

/// What [`invariants`] found. Empty `violations` means the ledger is consistent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InvariantReport {
    pub accounts: u64,
    pub entries: u64,
    pub violations: Vec<String>,
}

impl InvariantReport {
    pub fn is_ok(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Checks, from one consistent snapshot: per unit, all posted entries sum to zero; every
/// account's stored `posted` equals the sum of its entries and its `pending_out` /
/// `pending_in` equal its open holds; every entry is in its account's unit; no balance is
/// outside its account's limits. Meant for tests, `huoban audit` and after a crash.
pub async fn invariants(db: &Db) -> Result<InvariantReport, LedgerError> {
    let mut tx = db.reader().begin().await.map_err(sql_err)?;
    if db.backend() == Backend::Postgres {
        // One snapshot for every query below, so a concurrent commit cannot look like a
        // mismatch between two of them.
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(sql_err)?;
    }
    let mut report = InvariantReport::default();

    // Sums per account and unit; the per-unit totals are added up here in i128, so that
    // large opposite balances cannot overflow an SQL SUM across accounts.
    let sums = sqlx::query(
        "SELECT account_id, unit, CAST(SUM(amount) AS BIGINT) AS total, CAST(COUNT(*) AS BIGINT) AS n \
         FROM ledger_entries GROUP BY account_id, unit",
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(sql_err)?;
    let mut per_unit: BTreeMap<String, i128> = BTreeMap::new();
    let mut per_account: HashMap<(String, String), i64> = HashMap::new();
    for row in &sums {
        let (account, unit, total, n): (String, String, i64, i64) = (
            col(row, "account_id")?,
            col(row, "unit")?,
            col(row, "total")?,
            col(row, "n")?,
        );
        report.entries += n as u64;
        *per_unit.entry(unit.clone()).or_default() += i128::from(total);
        per_account.insert((account, unit), total);
    }
    for (unit, total) in &per_unit {
        if *total != 0 {
            report
                .violations
                .push(format!("posted entries in {unit} sum to {total}, not 0"));
        }
    }

    // Open holds per account, in one pass over the pending transfers' legs (a correlated
    // subquery per account is quadratic without an index the write path would pay for).
    let mut held: HashMap<(String, &'static str), i64> = HashMap::new();
    for (side, column) in [("out", "debit_account"), ("in", "credit_account")] {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT l.{column} AS account, CAST(SUM(l.amount) AS BIGINT) AS total \
             FROM ledger_legs l JOIN ledger_transfers t ON t.id = l.transfer_id \
             WHERE t.status = 'pending' GROUP BY l.{column}"
        )))
        .fetch_all(&mut *tx)
        .await
        .map_err(sql_err)?;
        for row in &rows {
            held.insert((col(row, "account")?, side), col(row, "total")?);
        }
    }
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts a ORDER BY a.id"
    )))
    .fetch_all(&mut *tx)
    .await
    .map_err(sql_err)?;
    for row in &rows {
        let account = account_from_row(row)?;
        report.accounts += 1;
        let b = account.balance;
        let id = account.id;
        let held_out = held.get(&(id.to_string(), "out")).copied().unwrap_or(0);
        let held_in = held.get(&(id.to_string(), "in")).copied().unwrap_or(0);
        let entry_sum = per_account
            .remove(&(id.to_string(), account.unit.as_str().to_owned()))
            .unwrap_or(0);
        if b.posted != entry_sum {
            report.violations.push(format!(
                "account {id}: posted {} but its entries sum to {entry_sum}",
                b.posted
            ));
        }
        if b.pending_out != held_out || b.pending_in != held_in {
            report.violations.push(format!(
                "account {id}: pending out/in {}/{} but open holds are {held_out}/{held_in}",
                b.pending_out, b.pending_in
            ));
        }
        let state = AccountState {
            id,
            unit: account.unit,
            limits: account.limits,
            balance: b,
        };
        if !state.within_limits() {
            report.violations.push(format!(
                "account {id}: balance {b:?} is outside its limits {:?}",
                account.limits
            ));
        }
    }
    // Whatever is left are entries in a unit their account does not hold, or on no account.
    for ((account, unit), total) in per_account {
        report.violations.push(format!(
            "account {account}: entries in {unit} (summing to {total}) do not match its unit"
        ));
    }

    // A posted transfer has two entries per leg, anything else none.
    let mismatched: Vec<String> = sqlx::query_scalar(
        "SELECT t.id FROM ledger_transfers t \
         LEFT JOIN (SELECT transfer_id, COUNT(*) AS n FROM ledger_entries GROUP BY transfer_id) e ON e.transfer_id = t.id \
         LEFT JOIN (SELECT transfer_id, COUNT(*) AS n FROM ledger_legs GROUP BY transfer_id) l ON l.transfer_id = t.id \
         WHERE COALESCE(e.n, 0) <> CASE WHEN t.status = 'posted' THEN 2 * COALESCE(l.n, 0) ELSE 0 END \
         ORDER BY t.id LIMIT 20",
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(sql_err)?;
    for id in mismatched {
        report
            .violations
            .push(format!("transfer {id}: entries do not match its status and legs"));
    }
    tx.rollback().await.map_err(sql_err)?;
    Ok(report)
}
