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

/// The accounts with these ids that exist (one query per chunk), through the read pool.
pub async fn accounts_by_ids(db: &Db, ids: &[AccountId]) -> Result<Vec<Account>, LedgerError> {
    let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
    accounts_where_in(db, "id", &ids).await
}

/// The accounts with these external references that exist, through the read pool.
pub async fn accounts_by_refs(db: &Db, refs: &[String]) -> Result<Vec<Account>, LedgerError> {
    accounts_where_in(db, "external_ref", refs).await
}

/// The accounts whose `column` (a fixed column name, never input) is one of `values`.
async fn accounts_where_in(db: &Db, column: &'static str, values: &[String]) -> Result<Vec<Account>, LedgerError> {
    let mut out = Vec::with_capacity(values.len());
    for chunk in values.chunks(CHUNK) {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts WHERE {column} IN ({})",
            placeholders(1, chunk.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql)).persistent(false);
        for value in chunk {
            query = query.bind(value.clone());
        }
        for row in query.fetch_all(db.reader()).await.map_err(sql_err)? {
            out.push(account_from_row(&row)?);
        }
    }
    Ok(out)
}

/// See [`crate::Ledger::scrub_owner_text`].
pub async fn scrub_owner_text(db: &Db, owner: &Owner) -> Result<(u64, u64), LedgerError> {
    let mut tx = db.writer().begin().await.map_err(sql_err)?;
    let labels = sqlx::query(
        "UPDATE ledger_accounts SET label = NULL WHERE owner_kind = $1 AND owner_id = $2 AND label IS NOT NULL",
    )
    .bind(owner.kind.as_str())
    .bind(&owner.id)
    .execute(&mut *tx)
    .await
    .map_err(sql_err)?
    .rows_affected();
    let descriptions = sqlx::query(
        "UPDATE ledger_transfers SET description = NULL WHERE description IS NOT NULL \
         AND id IN (SELECT l.transfer_id FROM ledger_legs l JOIN ledger_accounts a \
             ON a.id = l.debit_account OR a.id = l.credit_account \
             WHERE a.owner_kind = $1 AND a.owner_id = $2) \
         AND NOT EXISTS (SELECT 1 FROM ledger_legs l JOIN ledger_accounts a \
             ON a.id = l.debit_account OR a.id = l.credit_account \
             WHERE l.transfer_id = ledger_transfers.id AND a.owner_kind = $1 AND a.owner_id <> $2)",
    )
    .bind(owner.kind.as_str())
    .bind(&owner.id)
    .execute(&mut *tx)
    .await
    .map_err(sql_err)?
    .rows_affected();
    tx.commit().await.map_err(sql_err)?;
    Ok((labels, descriptions))
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
        let mut query = sqlx::query(AssertSqlSafe(sql)).persistent(false);
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

/// Writes the balances a batch ended with: one `UPDATE … FROM (VALUES …)` for all the
/// touched accounts (per chunk of rows).
pub(crate) async fn save_balances(
    conn: &mut AnyConnection,
    balances: &BTreeMap<AccountId, Balance>,
) -> Result<(), LedgerError> {
    let rows: Vec<Vec<Value>> = balances
        .iter()
        .map(|(id, b)| {
            vec![
                Value::Text(id.to_string()),
                Value::Int(b.posted),
                Value::Int(b.pending_out),
                Value::Int(b.pending_in),
            ]
        })
        .collect();
    for chunk in rows.chunks(MAX_PARAMS / 4) {
        // VALUES columns are named column1, column2, … on both backends.
        let sql = format!(
            "UPDATE ledger_accounts SET posted = v.column2, pending_out = v.column3, pending_in = v.column4 \
             FROM (VALUES {}) AS v WHERE ledger_accounts.id = v.column1",
            row_placeholders(conn, chunk.len(), 4)
        );
        let updated = bind_rows(sqlx::query(AssertSqlSafe(sql)).persistent(false), chunk)
            .execute(&mut *conn)
            .await
            .map_err(sql_err)?
            .rows_affected();
        if updated != chunk.len() as u64 {
            return Err(LedgerError::Inconsistent(format!(
                "{updated} of {} locked accounts were updated",
                chunk.len()
            )));
        }
    }
    Ok(())
}

/// Most parameters bound into one multi-row statement: SQLite allows 32,766,
/// PostgreSQL 65,535.
const MAX_PARAMS: usize = 32_766;

/// A value bound into a multi-row statement.
enum Value {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    OptInt(Option<i64>),
}

/// `($1, …, $n), ($n+1, …)` for `rows` rows of `columns` values; on SQLite `(?, …)`
/// instead: SQLite looks numbered parameters up by name, a cost that grows with their
/// count, which made large batches slower per row than small ones.
fn row_placeholders(conn: &AnyConnection, rows: usize, columns: usize) -> String {
    if conn.backend_name() == "SQLite" {
        let row = format!("({})", vec!["?"; columns].join(", "));
        return vec![row; rows].join(", ");
    }
    (0..rows)
        .map(|r| format!("({})", placeholders(r * columns + 1, columns)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn bind_rows<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    rows: &[Vec<Value>],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    for value in rows.iter().flatten() {
        query = match value {
            Value::Text(v) => query.bind(v.clone()),
            Value::OptText(v) => query.bind(v.clone()),
            Value::Int(v) => query.bind(*v),
            Value::OptInt(v) => query.bind(*v),
        };
    }
    query
}

/// `INSERT INTO {into} VALUES (…), (…) {tail}` in as few statements as the parameter
/// limit allows; returns the rows inserted. The statements vary in shape with the batch,
/// so they are not kept prepared.
async fn insert_rows(
    conn: &mut AnyConnection,
    into: &str,
    tail: &str,
    columns: usize,
    rows: &[Vec<Value>],
) -> Result<u64, LedgerError> {
    let mut inserted = 0;
    for chunk in rows.chunks(MAX_PARAMS / columns) {
        let sql = format!(
            "INSERT INTO {into} VALUES {}{tail}",
            row_placeholders(conn, chunk.len(), columns)
        );
        inserted += bind_rows(sqlx::query(AssertSqlSafe(sql)).persistent(false), chunk)
            .execute(&mut *conn)
            .await
            .map_err(sql_err)?
            .rows_affected();
    }
    Ok(inserted)
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
            "SELECT l.transfer_id, l.debit_account, l.credit_account, l.amount, t.unit AS transfer_unit, \
               a.unit AS leg_unit \
             FROM ledger_legs l JOIN ledger_transfers t ON t.id = l.transfer_id \
             JOIN ledger_accounts a ON a.id = l.debit_account \
             WHERE l.transfer_id IN ({}) ORDER BY l.transfer_id, l.leg",
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
                // A leg's unit is its accounts' (they never change unit); named only when
                // it is not the transfer's.
                unit: {
                    let leg_unit: Unit = parse(&col::<String>(&row, "leg_unit")?, "unit")?;
                    let transfer_unit: Unit = parse(&col::<String>(&row, "transfer_unit")?, "unit")?;
                    (leg_unit != transfer_unit).then_some(leg_unit)
                },
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

/// The stored transfers (with their request hashes) that hold any of the given
/// idempotency keys, in one query.
pub(crate) async fn transfers_by_keys(
    conn: &mut AnyConnection,
    keys: &[&IdempotencyKey],
) -> Result<Vec<(Transfer, String)>, LedgerError> {
    let mut rows = Vec::new();
    for chunk in keys.chunks(MAX_PARAMS / 2) {
        // A join with a VALUES list (rather than `(scope, idem_key) IN (VALUES …)`, which
        // SQLite answers with a table scan) probes the unique index once per key.
        let sql = format!(
            "SELECT {} FROM (VALUES {}) AS k JOIN ledger_transfers t \
             ON t.scope = k.column1 AND t.idem_key = k.column2",
            TRANSFER_COLUMNS
                .split(", ")
                .map(|c| format!("t.{c}"))
                .collect::<Vec<_>>()
                .join(", "),
            row_placeholders(conn, chunk.len(), 2)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql)).persistent(false);
        for key in chunk {
            query = query.bind(key.scope().to_owned()).bind(key.key().to_owned());
        }
        rows.extend(query.fetch_all(&mut *conn).await.map_err(sql_err)?);
    }
    with_legs(conn, rows, None).await
}

/// The stored transfers with the given ids, in one query per chunk. `legs` may hold
/// their legs already (legs never change).
pub(crate) async fn transfers_by_ids(
    conn: &mut AnyConnection,
    ids: &[TransferId],
    legs: &HashMap<TransferId, Vec<Leg>>,
) -> Result<Vec<(Transfer, String)>, LedgerError> {
    let mut rows = Vec::new();
    for chunk in ids.chunks(CHUNK) {
        let sql = format!(
            "SELECT {TRANSFER_COLUMNS} FROM ledger_transfers WHERE id IN ({})",
            placeholders(1, chunk.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql)).persistent(false);
        for id in chunk {
            query = query.bind(id.to_string());
        }
        rows.extend(query.fetch_all(&mut *conn).await.map_err(sql_err)?);
    }
    with_legs(conn, rows, Some(legs)).await
}

/// Posted transfers after (`posted_at`, id) `after`, up to `until`, in that order; see
/// [`crate::Ledger::posted_since`].
pub(crate) async fn posted_since(
    db: &Db,
    after: (Timestamp, Option<TransferId>),
    until: Timestamp,
    limit: u32,
) -> Result<Vec<Transfer>, LedgerError> {
    let mut conn = db.reader().acquire().await.map_err(sql_err)?;
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {TRANSFER_COLUMNS} FROM ledger_transfers \
         WHERE status = 'posted' AND posted_at <= $1 AND (posted_at > $2 OR (posted_at = $2 AND id > $3)) \
         ORDER BY posted_at, id LIMIT $4"
    )))
    .bind(to_micros(until))
    .bind(to_micros(after.0))
    .bind(after.1.map(|id| id.to_string()).unwrap_or_default())
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await
    .map_err(sql_err)?;
    Ok(with_legs(&mut conn, rows, None)
        .await?
        .into_iter()
        .map(|(transfer, _)| transfer)
        .collect())
}

/// Decodes transfer rows, loading the legs not in `known`.
async fn with_legs(
    conn: &mut AnyConnection,
    rows: Vec<AnyRow>,
    known: Option<&HashMap<TransferId, Vec<Leg>>>,
) -> Result<Vec<(Transfer, String)>, LedgerError> {
    let mut ids = Vec::with_capacity(rows.len());
    for row in &rows {
        ids.push(parse::<TransferId>(&col::<String>(row, "id")?, "transfer id")?);
    }
    let missing: Vec<TransferId> = ids
        .iter()
        .filter(|id| known.is_none_or(|k| !k.contains_key(id)))
        .copied()
        .collect();
    let mut loaded = legs_of(conn, &missing).await?;
    rows.iter()
        .zip(ids)
        .map(|(row, id)| {
            let legs = match loaded.remove(&id) {
                Some(legs) => legs,
                None => known.and_then(|k| k.get(&id)).cloned().unwrap_or_default(),
            };
            transfer_from_row(row, legs)
        })
        .collect()
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

/// Inserts new transfer rows and their legs, with multi-row INSERTs. Returns how many
/// transfers were inserted: fewer than given when another writer committed one of the
/// idempotency keys first (those rows are skipped, not failed; the caller rolls back).
pub(crate) async fn insert_transfers(
    conn: &mut AnyConnection,
    transfers: &[(&Transfer, &str)],
) -> Result<u64, LedgerError> {
    if transfers.is_empty() {
        return Ok(0);
    }
    let rows: Vec<Vec<Value>> = transfers
        .iter()
        .map(|(t, hash)| {
            vec![
                Value::Text(t.id.to_string()),
                Value::Text(t.key.scope().to_owned()),
                Value::Text(t.key.key().to_owned()),
                Value::Text((*hash).to_owned()),
                Value::Text(t.unit.as_str().to_owned()),
                Value::Int(i64::from(t.two_phase)),
                Value::Text(t.status.as_str().to_owned()),
                Value::OptText(t.meta.description.clone()),
                Value::OptText(t.meta.merchant_category.clone()),
                Value::OptText(t.meta.channel.clone()),
                Value::OptText(t.meta.event_id.clone()),
                Value::OptText(t.meta.metadata.as_ref().map(|m| m.to_string())),
                Value::Int(to_micros(t.created_at)),
                Value::OptInt(t.expires_at.map(to_micros)),
                Value::OptInt(t.posted_at.map(to_micros)),
            ]
        })
        .collect();
    // ON CONFLICT DO NOTHING rather than failing on the violation: on PostgreSQL it waits
    // for a concurrent inserter of the same key to finish and then yields cleanly.
    let inserted = insert_rows(
        conn,
        "ledger_transfers (id, scope, idem_key, request_hash, unit, two_phase, status, description, \
         merchant_category, channel, event_id, metadata, created_at, expires_at, posted_at)",
        " ON CONFLICT (scope, idem_key) DO NOTHING",
        15,
        &rows,
    )
    .await?;
    if inserted != transfers.len() as u64 {
        return Ok(inserted);
    }
    let legs: Vec<Vec<Value>> = transfers
        .iter()
        .flat_map(|(t, _)| {
            t.legs.iter().enumerate().map(|(i, leg)| {
                vec![
                    Value::Text(t.id.to_string()),
                    Value::Int(i as i64),
                    Value::Text(leg.debit.to_string()),
                    Value::Text(leg.credit.to_string()),
                    Value::Int(leg.amount.get()),
                ]
            })
        })
        .collect();
    insert_rows(
        conn,
        "ledger_legs (transfer_id, leg, debit_account, credit_account, amount)",
        "",
        5,
        &legs,
    )
    .await?;
    Ok(inserted)
}

/// PostgreSQL: writes a batch's new transfers, their legs, the entries of everything it
/// posted and the touched accounts' balances in **one** statement (data-modifying CTEs),
/// each table's rows passed as one JSON parameter. The SQL never changes, so it stays
/// prepared and costs one round trip whatever the batch's size. Returns how many new
/// transfers were inserted: a key another writer committed first is skipped by ON
/// CONFLICT, and then its legs fail their foreign key, failing the statement; either
/// way the caller rolls back and reruns the batch.
pub(crate) async fn write_batch_postgres(
    conn: &mut AnyConnection,
    created: &[(&Transfer, &str)],
    posted: &[&Transfer],
    balances: &BTreeMap<AccountId, Balance>,
    at: Timestamp,
) -> Result<u64, LedgerError> {
    use serde_json::{Value as Json, json};
    if created.is_empty() && posted.is_empty() && balances.is_empty() {
        return Ok(0);
    }
    let transfers: Vec<Json> = created
        .iter()
        .map(|(t, hash)| {
            json!({
                "id": t.id.to_string(), "scope": t.key.scope(), "idem_key": t.key.key(),
                "request_hash": hash, "unit": t.unit.as_str(), "two_phase": i64::from(t.two_phase),
                "status": t.status.as_str(), "description": t.meta.description,
                "merchant_category": t.meta.merchant_category, "channel": t.meta.channel,
                "event_id": t.meta.event_id, "metadata": t.meta.metadata.as_ref().map(|m| m.to_string()),
                "created_at": to_micros(t.created_at), "expires_at": t.expires_at.map(to_micros),
                "posted_at": t.posted_at.map(to_micros),
            })
        })
        .collect();
    let legs: Vec<Json> = created
        .iter()
        .flat_map(|(t, _)| {
            t.legs.iter().enumerate().map(|(i, leg)| {
                json!({
                    "transfer_id": t.id.to_string(), "leg": i as i64, "debit_account": leg.debit.to_string(),
                    "credit_account": leg.credit.to_string(), "amount": leg.amount.get(),
                })
            })
        })
        .collect();
    let entries: Vec<Json> = posted
        .iter()
        .flat_map(|t| {
            t.legs.iter().enumerate().flat_map(move |(i, leg)| {
                [(leg.debit, -leg.amount.get()), (leg.credit, leg.amount.get())].map(|(account, amount)| {
                    json!({
                        "id": huoban_kit::ids::new_id().to_string(), "account_id": account.to_string(),
                        "transfer_id": t.id.to_string(), "leg": i as i64, "unit": leg.unit_in(t.unit).as_str(),
                        "amount": amount, "merchant_category": t.meta.merchant_category, "at": to_micros(at),
                    })
                })
            })
        })
        .collect();
    let accounts: Vec<Json> = balances
        .iter()
        .map(|(id, b)| {
            json!({
                "id": id.to_string(), "posted": b.posted, "pending_out": b.pending_out, "pending_in": b.pending_in,
            })
        })
        .collect();
    let inserted: i64 = sqlx::query_scalar(
        "WITH t AS ( \
           INSERT INTO ledger_transfers (id, scope, idem_key, request_hash, unit, two_phase, status, description, \
             merchant_category, channel, event_id, metadata, created_at, expires_at, posted_at) \
           SELECT * FROM json_to_recordset($1::json) AS x(id TEXT, scope TEXT, idem_key TEXT, request_hash TEXT, \
             unit TEXT, two_phase BIGINT, status TEXT, description TEXT, merchant_category TEXT, channel TEXT, \
             event_id TEXT, metadata TEXT, created_at BIGINT, expires_at BIGINT, posted_at BIGINT) \
           ON CONFLICT (scope, idem_key) DO NOTHING RETURNING 1), \
         l AS ( \
           INSERT INTO ledger_legs (transfer_id, leg, debit_account, credit_account, amount) \
           SELECT * FROM json_to_recordset($2::json) AS x(transfer_id TEXT, leg BIGINT, debit_account TEXT, \
             credit_account TEXT, amount BIGINT)), \
         e AS ( \
           INSERT INTO ledger_entries (id, account_id, transfer_id, leg, unit, amount, merchant_category, at) \
           SELECT * FROM json_to_recordset($3::json) AS x(id TEXT, account_id TEXT, transfer_id TEXT, leg BIGINT, \
             unit TEXT, amount BIGINT, merchant_category TEXT, at BIGINT)), \
         b AS ( \
           UPDATE ledger_accounts a SET posted = x.posted, pending_out = x.pending_out, pending_in = x.pending_in \
           FROM json_to_recordset($4::json) AS x(id TEXT, posted BIGINT, pending_out BIGINT, pending_in BIGINT) \
           WHERE a.id = x.id) \
         SELECT CAST(COUNT(*) AS BIGINT) FROM t",
    )
    .bind(Json::Array(transfers).to_string())
    .bind(Json::Array(legs).to_string())
    .bind(Json::Array(entries).to_string())
    .bind(Json::Array(accounts).to_string())
    .fetch_one(&mut *conn)
    .await
    .map_err(sql_err)?;
    Ok(inserted as u64)
}

/// Writes the two signed entries of every leg of the transfers being posted at `at`.
pub(crate) async fn insert_entries(
    conn: &mut AnyConnection,
    transfers: &[&Transfer],
    at: Timestamp,
) -> Result<(), LedgerError> {
    let rows: Vec<Vec<Value>> = transfers
        .iter()
        .flat_map(|t| {
            t.legs.iter().enumerate().flat_map(move |(i, leg)| {
                [(leg.debit, -leg.amount.get()), (leg.credit, leg.amount.get())].map(|(account, amount)| {
                    vec![
                        Value::Text(huoban_kit::ids::new_id().to_string()),
                        Value::Text(account.to_string()),
                        Value::Text(t.id.to_string()),
                        Value::Int(i as i64),
                        Value::Text(leg.unit_in(t.unit).as_str().to_owned()),
                        Value::Int(amount),
                        Value::OptText(t.meta.merchant_category.clone()),
                        Value::Int(to_micros(at)),
                    ]
                })
            })
        })
        .collect();
    insert_rows(
        conn,
        "ledger_entries (id, account_id, transfer_id, leg, unit, amount, merchant_category, at)",
        "",
        8,
        &rows,
    )
    .await?;
    Ok(())
}

/// Moves pending transfers to `posted` or `voided` (with `reason`). Returns how many were
/// still pending (all of them, under the account locks; the caller treats fewer as a bug).
pub(crate) async fn finish_pending(
    conn: &mut AnyConnection,
    ids: &[TransferId],
    status: TransferStatus,
    reason: Option<VoidReason>,
    at: Timestamp,
) -> Result<u64, LedgerError> {
    let mut finished = 0;
    for chunk in ids.chunks(CHUNK) {
        let sql = match status {
            TransferStatus::Posted => format!(
                "UPDATE ledger_transfers SET status = 'posted', posted_at = $1 \
                 WHERE status = 'pending' AND id IN ({})",
                placeholders(2, chunk.len())
            ),
            _ => format!(
                "UPDATE ledger_transfers SET status = 'voided', voided_at = $1, void_reason = ${} \
                 WHERE status = 'pending' AND id IN ({})",
                chunk.len() + 2,
                placeholders(2, chunk.len())
            ),
        };
        let mut query = sqlx::query(AssertSqlSafe(sql)).persistent(false).bind(to_micros(at));
        for id in chunk {
            query = query.bind(id.to_string());
        }
        if status != TransferStatus::Posted {
            query = query.bind(reason.unwrap_or(VoidReason::Voided).as_str());
        }
        finished += query.execute(&mut *conn).await.map_err(sql_err)?.rows_affected();
    }
    Ok(finished)
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
