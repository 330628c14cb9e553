//! The claim writer: group commit for the three claim writes (reserve a unit, finish a
//! claim, release it).
//!
//! A flash sale makes hundreds of these at once, and each alone is tiny but needs a
//! durable commit of its own (SQLite `synchronous = FULL` syncs the file per commit; on
//! PostgreSQL every reservation waits for the stock row's lock until the previous one's
//! commit is flushed). So one task per store takes whatever writes are waiting and makes
//! them one transaction, the way the ledger's writer does with transfers:
//!
//! 1. lock the stock rows of the batch's rewards, in id order (`FOR UPDATE` on
//!    PostgreSQL; on SQLite a no-op write takes the file's write lock first). Every claim
//!    write touches its reward's stock row, so this serializes all claim writes of a
//!    reward across nodes, and what is read next stays true until the commit;
//! 2. read the customers' holdings, the keys already used and the states of the claims to
//!    settle;
//! 3. decide every write in arrival order, in memory, with exactly the guards each had as
//!    a transaction of its own — a reservation needs an unused key, the customer under
//!    their limit, then a unit with reservations counted as taken; finish and release need
//!    the claim still `reserved` — so the batch is the same as its writes committed one by
//!    one, and a refused write changes nothing;
//! 4. write the outcome with a handful of multi-row statements whatever the batch's size,
//!    commit, and only then answer each write.
//!
//! If the batch cannot commit (a key another node committed after the read, a deadlock
//! between nodes), nothing of it happened and it is decided again from fresh reads, up to
//! `ATTEMPTS` (3) times; then every write in it is answered with the error (a retry is safe:
//! a reservation is keyed by its Idempotency-Key, finish and release by the claim's state).
//! The table constraints (`claimed + reserved <= total`, `held >= 0`) stay the last line
//! of defence.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    sync::{Arc, OnceLock},
};

use huoban_kit::{Backend, Db, DbError, clock::to_micros};
use jiff::Timestamp;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use super::store::{NewClaim, Reservation};

/// Most writes one commit takes.
const MAX_BATCH: usize = 512;
/// Tries of a batch that failed as a whole before its writes are answered with the error.
const ATTEMPTS: usize = 3;

/// One claim write.
#[derive(Debug, Clone)]
pub enum ClaimOp {
    /// Step 1: insert the claim, count it against the customer's limit, reserve a unit.
    Reserve(NewClaim),
    /// Step 3: the reserved claim becomes `claimed`; its unit moves to claimed.
    Finish {
        claim: String,
        reward: String,
        transfer_id: Option<String>,
        valid_until: Timestamp,
    },
    /// The reserved claim becomes `released`; its unit and the customer's count return.
    Release {
        claim: String,
        reward: String,
        customer: String,
        failure: String,
    },
}

impl ClaimOp {
    fn reward(&self) -> String {
        match self {
            ClaimOp::Reserve(c) => c.reward_id.to_string(),
            ClaimOp::Finish { reward, .. } | ClaimOp::Release { reward, .. } => reward.clone(),
        }
    }
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    Reserved(Reservation),
    /// Finish or release: whether the claim was still reserved and so moved.
    Moved(bool),
}

impl Done {
    pub fn moved(self) -> bool {
        matches!(self, Done::Moved(true))
    }
}

struct Command {
    op: ClaimOp,
    now: Timestamp,
    reply: oneshot::Sender<Result<Done, DbError>>,
}

/// The handle: cheap to clone; its task starts on first use and ends with the last handle.
#[derive(Debug, Clone)]
pub struct ClaimWriter {
    db: Db,
    queue: Arc<OnceLock<mpsc::Sender<Command>>>,
}

impl ClaimWriter {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            queue: Arc::default(),
        }
    }

    /// Runs `op` in the next batch and answers after its commit.
    pub async fn run(&self, op: ClaimOp, now: Timestamp) -> Result<Done, DbError> {
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
            tokio::spawn(writer_loop(self.db.clone(), rx));
            tx
        });
        let (reply, answer) = oneshot::channel();
        let gone = || DbError::Other(sqlx::Error::Protocol("the claim writer stopped".into()));
        queue.send(Command { op, now, reply }).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

async fn writer_loop(db: Db, mut rx: mpsc::Receiver<Command>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let commands = std::mem::take(&mut batch);
        let mut outcome = write_batch(&db, &commands).await;
        for _ in 1..ATTEMPTS {
            // Nothing was committed: a lost race (a key another node committed meanwhile,
            // a deadlock between nodes) is decided again from fresh reads.
            let Err(e) = &outcome else { break };
            tracing::info!(error = %e, writes = commands.len(), "a batch of claim writes is retried");
            outcome = write_batch(&db, &commands).await;
        }
        match outcome {
            Ok(results) => {
                for (command, result) in commands.into_iter().zip(results) {
                    let _ = command.reply.send(result);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, writes = commands.len(), "a batch of claim writes failed");
                let text = e.to_string();
                for command in commands {
                    let _ = command
                        .reply
                        .send(Err(DbError::Other(sqlx::Error::Protocol(text.clone()))));
                }
            }
        }
    }
}

/// A reward's stock as the batch sees it.
#[derive(Debug, Clone, Copy)]
struct Stock {
    total: i64,
    claimed: i64,
    reserved: i64,
}

/// The rows a batch reads, decides against in memory, and writes back.
#[derive(Debug, Default)]
struct Plan {
    stock: BTreeMap<String, Stock>,
    /// (reward, customer) → claims held.
    held: BTreeMap<(String, String), i64>,
    /// (customer, key) already used.
    keys: HashSet<(String, String)>,
    /// claim → state.
    states: HashMap<String, String>,
    new_claims: Vec<serde_json::Value>,
    changed_claims: Vec<serde_json::Value>,
    touched_holders: BTreeSet<(String, String)>,
    touched_stock: BTreeSet<String>,
}

impl Plan {
    fn decide(&mut self, op: &ClaimOp, now: Timestamp) -> Result<Done, DbError> {
        let missing = || DbError::NotFound;
        match op {
            ClaimOp::Reserve(c) => {
                let (reward, customer) = (c.reward_id.to_string(), c.customer_id.to_string());
                if !self.keys.insert((customer.clone(), c.idem_key.clone())) {
                    return Ok(Done::Reserved(Reservation::Replay));
                }
                let stock = *self.stock.get(&reward).ok_or_else(missing)?;
                let held = self.held.get(&(reward.clone(), customer.clone())).copied().unwrap_or(0);
                // The same guards as the read path, decided on the locked stock row.
                let refusal =
                    super::domain::sure_refusal(c.per_customer_limit, held, stock.total, stock.claimed, stock.reserved)
                        .map(|r| match r {
                            super::domain::Refusal::LimitReached { .. } => Reservation::LimitReached,
                            _ => Reservation::OutOfStock,
                        });
                if let Some(refusal) = refusal {
                    // A refused claim leaves its key free.
                    self.keys.remove(&(customer, c.idem_key.clone()));
                    return Ok(Done::Reserved(refusal));
                }
                self.held.insert((reward.clone(), customer.clone()), held + 1);
                self.touched_holders.insert((reward.clone(), customer.clone()));
                self.add_stock(&reward, 0, 1)?;
                self.new_claims.push(serde_json::json!({
                    "id": c.id.to_string(), "reward_id": reward, "customer_id": customer,
                    "idem_key": c.idem_key, "points": c.points, "code": c.code, "at": to_micros(now),
                }));
                Ok(Done::Reserved(Reservation::Reserved))
            }
            ClaimOp::Finish {
                claim,
                reward,
                transfer_id,
                valid_until,
            } => {
                if !self.leave_reserved(claim, "claimed") {
                    return Ok(Done::Moved(false));
                }
                self.add_stock(reward, 1, -1)?;
                self.changed_claims.push(serde_json::json!({
                    "id": claim, "state": "claimed", "failure": null, "transfer_id": transfer_id,
                    "updated_at": to_micros(now), "claimed_at": to_micros(now),
                    "valid_until": to_micros(*valid_until),
                }));
                Ok(Done::Moved(true))
            }
            ClaimOp::Release {
                claim,
                reward,
                customer,
                failure,
            } => {
                if !self.leave_reserved(claim, "released") {
                    return Ok(Done::Moved(false));
                }
                self.add_stock(reward, 0, -1)?;
                let key = (reward.clone(), customer.clone());
                let held = self.held.get(&key).copied().unwrap_or(0);
                self.held.insert(key.clone(), (held - 1).max(0));
                self.touched_holders.insert(key);
                self.changed_claims.push(serde_json::json!({
                    "id": claim, "state": "released", "failure": failure, "transfer_id": null,
                    "updated_at": to_micros(now), "claimed_at": null, "valid_until": null,
                }));
                Ok(Done::Moved(true))
            }
        }
    }

    /// Moves a claim out of `reserved`; false when it had already left it (or is unknown).
    fn leave_reserved(&mut self, claim: &str, to: &str) -> bool {
        match self.states.get_mut(claim) {
            Some(state) if state == "reserved" => {
                *state = to.to_owned();
                true
            }
            _ => false,
        }
    }

    fn add_stock(&mut self, reward: &str, claimed: i64, reserved: i64) -> Result<(), DbError> {
        let stock = self.stock.get_mut(reward).ok_or(DbError::NotFound)?;
        stock.claimed += claimed;
        stock.reserved += reserved;
        self.touched_stock.insert(reward.to_owned());
        Ok(())
    }
}

/// One transaction for the batch: lock the stock rows of its rewards (in id order), read
/// the holdings, keys and claim states it needs, decide every write in order in memory,
/// then write the outcome with a handful of statements whatever the batch's size. Err
/// when the batch as a whole could not be committed (nothing of it was).
async fn write_batch(db: &Db, commands: &[Command]) -> Result<Vec<Result<Done, DbError>>, DbError> {
    let backend = db.backend();
    let mut tx = db.begin().await?;
    let mut plan = Plan::default();
    let rewards: BTreeSet<String> = commands.iter().map(|c| c.op.reward()).collect();
    let rewards: Vec<String> = rewards.into_iter().collect();
    let list = json!(rewards).to_string();
    if backend == Backend::Sqlite {
        // Take the write lock before reading, so what is read stays true until the commit
        // (another process on the same file waits instead of writing in between).
        sqlx::query("UPDATE reward_stock SET total = total WHERE reward_id IN (SELECT value FROM json_each($1))")
            .bind(&list)
            .execute(&mut *tx)
            .await?;
    }
    let lock = match backend {
        Backend::Postgres => {
            "SELECT reward_id, total, claimed, reserved FROM reward_stock \
             WHERE reward_id IN (SELECT json_array_elements_text($1::json)) ORDER BY reward_id FOR UPDATE"
        }
        Backend::Sqlite => {
            "SELECT reward_id, total, claimed, reserved FROM reward_stock \
             WHERE reward_id IN (SELECT value FROM json_each($1)) ORDER BY reward_id"
        }
    };
    let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(lock).bind(&list).fetch_all(&mut *tx).await?;
    for (reward, total, claimed, reserved) in rows {
        plan.stock.insert(
            reward,
            Stock {
                total,
                claimed,
                reserved,
            },
        );
    }
    let mut pairs = Vec::new();
    let mut keys = Vec::new();
    let mut claims = Vec::new();
    for c in commands {
        match &c.op {
            ClaimOp::Reserve(n) => {
                pairs.push(json!({ "a": n.reward_id.to_string(), "b": n.customer_id.to_string() }));
                keys.push(json!({ "a": n.customer_id.to_string(), "b": n.idem_key }));
            }
            ClaimOp::Release {
                reward,
                customer,
                claim,
                ..
            } => {
                pairs.push(json!({ "a": reward, "b": customer }));
                claims.push(claim.clone());
            }
            ClaimOp::Finish { claim, .. } => claims.push(claim.clone()),
        }
    }
    let pairs_in = |table: &str, a: &str, b: &str, extra: &str| match backend {
        Backend::Postgres => format!(
            "SELECT {a}, {b}{extra} FROM {table} t JOIN json_to_recordset($1::json) AS x(a TEXT, b TEXT) \
             ON t.{a} = x.a AND t.{b} = x.b"
        ),
        Backend::Sqlite => format!(
            "SELECT {a}, {b}{extra} FROM {table} t JOIN json_each($1) x \
             ON t.{a} = json_extract(x.value, '$.a') AND t.{b} = json_extract(x.value, '$.b')"
        ),
    };
    if !pairs.is_empty() {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(pairs_in(
            "reward_holders",
            "reward_id",
            "customer_id",
            ", held",
        )))
        .bind(json!(pairs).to_string())
        .fetch_all(&mut *tx)
        .await?;
        plan.held = rows.into_iter().map(|(r, c, h)| ((r, c), h)).collect();
    }
    if !keys.is_empty() {
        let rows: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(pairs_in(
            "reward_claims",
            "customer_id",
            "idem_key",
            "",
        )))
        .bind(json!(keys).to_string())
        .fetch_all(&mut *tx)
        .await?;
        plan.keys = rows.into_iter().collect();
    }
    if !claims.is_empty() {
        let states = match backend {
            Backend::Postgres => {
                "SELECT id, state FROM reward_claims WHERE id IN (SELECT json_array_elements_text($1::json))"
            }
            Backend::Sqlite => "SELECT id, state FROM reward_claims WHERE id IN (SELECT value FROM json_each($1))",
        };
        let rows: Vec<(String, String)> = sqlx::query_as(states)
            .bind(json!(claims).to_string())
            .fetch_all(&mut *tx)
            .await?;
        plan.states = rows.into_iter().collect();
    }

    let results: Vec<Result<Done, DbError>> = commands.iter().map(|c| plan.decide(&c.op, c.now)).collect();

    if !plan.new_claims.is_empty() {
        let insert = match backend {
            Backend::Postgres => {
                "INSERT INTO reward_claims (id, reward_id, customer_id, idem_key, state, points, code, created_at, updated_at) \
                 SELECT id, reward_id, customer_id, idem_key, 'reserved', points, code, at, at \
                 FROM json_to_recordset($1::json) AS x(id TEXT, reward_id TEXT, customer_id TEXT, idem_key TEXT, \
                   points BIGINT, code TEXT, at BIGINT) \
                 ON CONFLICT DO NOTHING"
            }
            Backend::Sqlite => {
                "INSERT INTO reward_claims (id, reward_id, customer_id, idem_key, state, points, code, created_at, updated_at) \
                 SELECT json_extract(value, '$.id'), json_extract(value, '$.reward_id'), \
                   json_extract(value, '$.customer_id'), json_extract(value, '$.idem_key'), 'reserved', \
                   json_extract(value, '$.points'), json_extract(value, '$.code'), json_extract(value, '$.at'), \
                   json_extract(value, '$.at') \
                 FROM json_each($1) WHERE true ON CONFLICT DO NOTHING"
            }
        };
        let inserted = sqlx::query(insert)
            .bind(json!(plan.new_claims).to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if inserted != plan.new_claims.len() as u64 {
            // A key (or a code) was committed by another node after the read: decide again.
            return Err(DbError::Conflict {
                constraint: "reward_claims_customer_key".into(),
            });
        }
    }
    if !plan.touched_holders.is_empty() {
        let rows: Vec<serde_json::Value> = plan
            .touched_holders
            .iter()
            .map(|k| json!({ "reward_id": k.0, "customer_id": k.1, "held": plan.held.get(k).copied().unwrap_or(0) }))
            .collect();
        let upsert = match backend {
            Backend::Postgres => {
                "INSERT INTO reward_holders (reward_id, customer_id, held) \
                 SELECT reward_id, customer_id, held FROM json_to_recordset($1::json) \
                   AS x(reward_id TEXT, customer_id TEXT, held BIGINT) \
                 ON CONFLICT (reward_id, customer_id) DO UPDATE SET held = excluded.held"
            }
            Backend::Sqlite => {
                "INSERT INTO reward_holders (reward_id, customer_id, held) \
                 SELECT json_extract(value, '$.reward_id'), json_extract(value, '$.customer_id'), \
                   json_extract(value, '$.held') FROM json_each($1) WHERE true \
                 ON CONFLICT (reward_id, customer_id) DO UPDATE SET held = excluded.held"
            }
        };
        sqlx::query(upsert)
            .bind(json!(rows).to_string())
            .execute(&mut *tx)
            .await?;
    }
    if !plan.changed_claims.is_empty() {
        let update = match backend {
            Backend::Postgres => {
                "UPDATE reward_claims c SET state = x.state, failure = x.failure, transfer_id = x.transfer_id, \
                   updated_at = x.updated_at, claimed_at = x.claimed_at, valid_until = x.valid_until \
                 FROM json_to_recordset($1::json) AS x(id TEXT, state TEXT, failure TEXT, transfer_id TEXT, \
                   updated_at BIGINT, claimed_at BIGINT, valid_until BIGINT) \
                 WHERE c.id = x.id AND c.state = 'reserved'"
            }
            Backend::Sqlite => {
                "UPDATE reward_claims SET state = x.state, failure = x.failure, transfer_id = x.transfer_id, \
                   updated_at = x.updated_at, claimed_at = x.claimed_at, valid_until = x.valid_until \
                 FROM (SELECT json_extract(value, '$.id') AS id, json_extract(value, '$.state') AS state, \
                   json_extract(value, '$.failure') AS failure, json_extract(value, '$.transfer_id') AS transfer_id, \
                   json_extract(value, '$.updated_at') AS updated_at, json_extract(value, '$.claimed_at') AS claimed_at, \
                   json_extract(value, '$.valid_until') AS valid_until FROM json_each($1)) AS x \
                 WHERE reward_claims.id = x.id AND reward_claims.state = 'reserved'"
            }
        };
        let changed = sqlx::query(update)
            .bind(json!(plan.changed_claims).to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if changed != plan.changed_claims.len() as u64 {
            return Err(DbError::Conflict {
                constraint: "reward_claims_state".into(),
            });
        }
    }
    for reward in &plan.touched_stock {
        let stock = plan.stock[reward];
        sqlx::query("UPDATE reward_stock SET claimed = $2, reserved = $3 WHERE reward_id = $1")
            .bind(reward)
            .bind(stock.claimed)
            .bind(stock.reserved)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(results)
}
