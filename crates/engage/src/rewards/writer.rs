//! The claim writer: group commit for the three claim writes (reserve a unit, finish a
//! claim, release it).
//!
//! A flash sale makes hundreds of these at once, and each alone is tiny but needs a
//! durable commit of its own (SQLite `synchronous = FULL` syncs the file per commit, and
//! on PostgreSQL every reservation waits for the stock row's lock until the previous
//! reservation's commit is flushed). So a single task per store takes whatever writes are
//! waiting, runs them one after another inside ONE transaction, each in its own savepoint,
//! and commits once; nobody is answered before that commit. Each write keeps exactly the
//! guards it had as a transaction of its own (`WHERE claimed + reserved < total`, `WHERE
//! held < limit`, `WHERE state = 'reserved'`), and runs against what the writes before it
//! in the batch left, so a batch is the same as its writes committed one by one: a refused
//! or failed write is rolled back to its savepoint and answered alone, the others stand.
//! If the commit itself fails, every write in the batch is answered with that error and
//! none of them happened (a retry is safe: a reservation is keyed by its Idempotency-Key,
//! finish and release are guarded by the claim's state).
//!
//! Writes are taken in reward order within a batch, so two nodes' batches lock stock rows
//! in the same order.

use huoban_kit::{Db, DbError, clock::to_micros};
use jiff::Timestamp;
use sqlx::AnyConnection;
use std::sync::{Arc, OnceLock};
use tokio::sync::{mpsc, oneshot};

use super::store::{NewClaim, Reservation};

/// Most writes one commit takes.
const MAX_BATCH: usize = 512;

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

    /// Whether the write is to be kept (a refused reservation is rolled back).
    fn keep(self) -> bool {
        matches!(self, Done::Reserved(Reservation::Reserved) | Done::Moved(true))
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
        batch.sort_by_cached_key(|c| c.op.reward());
        let commands = std::mem::take(&mut batch);
        match write_batch(&db, &commands).await {
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

/// One transaction for the batch; a savepoint per write. Err only when the batch as a
/// whole could not be committed.
async fn write_batch(db: &Db, commands: &[Command]) -> Result<Vec<Result<Done, DbError>>, DbError> {
    let mut tx = db.begin().await?;
    let mut results = Vec::with_capacity(commands.len());
    for command in commands {
        sql(&mut tx, "SAVEPOINT claim_write").await?;
        let result = apply(&mut tx, &command.op, command.now).await;
        if !matches!(&result, Ok(done) if done.keep()) {
            sql(&mut tx, "ROLLBACK TO SAVEPOINT claim_write").await?;
        }
        sql(&mut tx, "RELEASE SAVEPOINT claim_write").await?;
        results.push(result);
    }
    tx.commit().await?;
    Ok(results)
}

async fn sql(conn: &mut AnyConnection, statement: &'static str) -> Result<(), DbError> {
    sqlx::query(statement).execute(conn).await?;
    Ok(())
}

async fn apply(conn: &mut AnyConnection, op: &ClaimOp, now: Timestamp) -> Result<Done, DbError> {
    match op {
        ClaimOp::Reserve(claim) => reserve(conn, claim, now).await.map(Done::Reserved),
        ClaimOp::Finish {
            claim,
            reward,
            transfer_id,
            valid_until,
        } => {
            let moved = leave_reserved(
                conn,
                claim,
                "claimed",
                None,
                transfer_id.as_deref(),
                now,
                Some(*valid_until),
            )
            .await?;
            if moved {
                sqlx::query(
                    "UPDATE reward_stock SET reserved = reserved - 1, claimed = claimed + 1 WHERE reward_id = $1",
                )
                .bind(reward)
                .execute(&mut *conn)
                .await?;
            }
            Ok(Done::Moved(moved))
        }
        ClaimOp::Release {
            claim,
            reward,
            customer,
            failure,
        } => {
            let moved = leave_reserved(conn, claim, "released", Some(failure), None, now, None).await?;
            if moved {
                sqlx::query("UPDATE reward_stock SET reserved = reserved - 1 WHERE reward_id = $1")
                    .bind(reward)
                    .execute(&mut *conn)
                    .await?;
                sqlx::query("UPDATE reward_holders SET held = held - 1 WHERE reward_id = $1 AND customer_id = $2")
                    .bind(reward)
                    .bind(customer)
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(Done::Moved(moved))
        }
    }
}

/// The claim row, the customer's count and a unit of stock; any guard that affects no row
/// says why, and the caller rolls the three back together. The stock row is touched last
/// so its lock (PostgreSQL) is taken as late as possible.
async fn reserve(conn: &mut AnyConnection, claim: &NewClaim, now: Timestamp) -> Result<Reservation, DbError> {
    let inserted = sqlx::query(
        "INSERT INTO reward_claims (id, reward_id, customer_id, idem_key, state, points, code, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'reserved', $5, $6, $7, $7) ON CONFLICT (customer_id, idem_key) DO NOTHING",
    )
    .bind(claim.id.to_string())
    .bind(claim.reward_id.to_string())
    .bind(claim.customer_id.to_string())
    .bind(&claim.idem_key)
    .bind(claim.points)
    .bind(&claim.code)
    .bind(to_micros(now))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(Reservation::Replay);
    }
    let counted = sqlx::query(
        "INSERT INTO reward_holders (reward_id, customer_id, held) VALUES ($1, $2, 1) \
         ON CONFLICT (reward_id, customer_id) DO UPDATE SET held = reward_holders.held + 1 \
         WHERE reward_holders.held < $3",
    )
    .bind(claim.reward_id.to_string())
    .bind(claim.customer_id.to_string())
    .bind(claim.per_customer_limit)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if counted == 0 {
        return Ok(Reservation::LimitReached);
    }
    let reserved = sqlx::query(
        "UPDATE reward_stock SET reserved = reserved + 1 WHERE reward_id = $1 AND claimed + reserved < total",
    )
    .bind(claim.reward_id.to_string())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(if reserved == 0 {
        Reservation::OutOfStock
    } else {
        Reservation::Reserved
    })
}

/// Moves a claim out of `reserved`; false when it had already left it.
async fn leave_reserved(
    conn: &mut AnyConnection,
    claim: &str,
    state: &str,
    failure: Option<&str>,
    transfer_id: Option<&str>,
    now: Timestamp,
    valid_until: Option<Timestamp>,
) -> Result<bool, DbError> {
    let claimed_at = (state == "claimed").then(|| to_micros(now));
    let changed = sqlx::query(
        "UPDATE reward_claims SET state = $2, failure = $3, transfer_id = $4, updated_at = $5, \
         claimed_at = $6, valid_until = $7 WHERE id = $1 AND state = 'reserved'",
    )
    .bind(claim)
    .bind(state)
    .bind(failure)
    .bind(transfer_id)
    .bind(to_micros(now))
    .bind(claimed_at)
    .bind(valid_until.map(to_micros))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(changed == 1)
}
