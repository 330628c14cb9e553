//! The group-commit writer: the only code that changes ledger value.
//!
//! Callers send commands over a channel and wait. A writer task takes whatever is queued
//! (up to `max_batch`), applies the whole batch in **one** database transaction and
//! commits once; only after the commit returns does it answer each caller with its own
//! result. One fsync thus covers a whole batch (SQLite runs WAL + `synchronous = FULL`),
//! and an acknowledged transfer is always a committed one — a crash loses only
//! unacknowledged work, which the caller retries with the same idempotency key.
//!
//! Inside the batch each command runs in its own SAVEPOINT, so a refused command rolls
//! back alone while the others commit. The accounts the batch touches are loaded once, in
//! sorted id order and on PostgreSQL with `FOR UPDATE`, so several writers (one or more
//! per node) never deadlock on accounts; balances are tracked in memory through the
//! batch and written once per account before the commit.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use huoban_kit::{Backend, Db, SharedClock};
use jiff::Timestamp;
use sqlx::{AnyConnection, Executor};
use tokio::sync::{Mutex, broadcast, mpsc, oneshot};

use crate::{
    domain::{
        self, AccountId, AccountState, Balance, CheckedTransfer, Leg, Mode, Transfer, TransferId, TransferOutcome,
        TransferStatus, VoidReason,
    },
    error::LedgerError,
    store,
};

/// How the writer batches.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Most commands applied in one transaction.
    pub max_batch: usize,
    /// Writer tasks sharing the queue. On SQLite only one can write at a time, so one is
    /// used whatever is asked; on PostgreSQL a second overlaps one batch's commit with the
    /// next batch's work.
    pub writers: usize,
    /// Commands that may wait in the queue before callers are slowed down.
    pub queue: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            max_batch: 256,
            writers: 2,
            queue: 8192,
        }
    }
}

/// Counters for the metrics endpoint and for tests that group commit really groups.
#[derive(Debug, Default)]
pub(crate) struct WriterCounters {
    batches: AtomicU64,
    commands: AtomicU64,
    failed_batches: AtomicU64,
    largest_batch: AtomicU64,
}

impl WriterCounters {
    fn record(&self, size: usize, committed: bool) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.commands.fetch_add(size as u64, Ordering::Relaxed);
        self.largest_batch.fetch_max(size as u64, Ordering::Relaxed);
        if !committed {
            self.failed_batches.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn snapshot(&self) -> WriterStats {
        WriterStats {
            batches: self.batches.load(Ordering::Relaxed),
            commands: self.commands.load(Ordering::Relaxed),
            failed_batches: self.failed_batches.load(Ordering::Relaxed),
            largest_batch: self.largest_batch.load(Ordering::Relaxed),
        }
    }
}

/// What this node's writer has done since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct WriterStats {
    /// Transactions committed (or failed).
    pub batches: u64,
    /// Commands applied in them.
    pub commands: u64,
    /// Batches that could not commit after their retries.
    pub failed_batches: u64,
    pub largest_batch: u64,
}

type Reply<T> = oneshot::Sender<Result<T, LedgerError>>;

#[derive(Debug)]
pub(crate) enum Command {
    Transfer {
        checked: Box<CheckedTransfer>,
        reply: Reply<TransferOutcome>,
    },
    Finish {
        id: TransferId,
        post: bool,
        reply: Reply<Transfer>,
    },
    Sweep {
        now: Timestamp,
        limit: i64,
        reply: Reply<u64>,
    },
}

/// A command's result, held until the batch has committed.
enum Outcome {
    Transfer(Result<TransferOutcome, LedgerError>),
    Finish(Result<Transfer, LedgerError>),
    Sweep(Result<u64, LedgerError>),
}

impl Command {
    /// Answers the caller. A caller that has gone away is not an error: its work is
    /// committed and a retry with the same key finds it.
    fn answer(self, outcome: Result<Outcome, &LedgerError>) {
        let failed = |e: &LedgerError| LedgerError::WriteFailed(e.to_string());
        let mismatch = || LedgerError::Inconsistent("the writer answered a command with another kind of result".into());
        match self {
            Command::Transfer { reply, .. } => {
                let _ = reply.send(match outcome {
                    Ok(Outcome::Transfer(r)) => r,
                    Ok(_) => Err(mismatch()),
                    Err(e) => Err(failed(e)),
                });
            }
            Command::Finish { reply, .. } => {
                let _ = reply.send(match outcome {
                    Ok(Outcome::Finish(r)) => r,
                    Ok(_) => Err(mismatch()),
                    Err(e) => Err(failed(e)),
                });
            }
            Command::Sweep { reply, .. } => {
                let _ = reply.send(match outcome {
                    Ok(Outcome::Sweep(r)) => r,
                    Ok(_) => Err(mismatch()),
                    Err(e) => Err(failed(e)),
                });
            }
        }
    }
}

/// Starts the writer tasks and returns the queue they serve. They stop when every
/// sender is dropped, after draining what was queued.
pub(crate) fn spawn(
    db: Db,
    clock: SharedClock,
    config: &WriterConfig,
    stats: Arc<WriterCounters>,
    posted: broadcast::Sender<Arc<Transfer>>,
) -> mpsc::Sender<Command> {
    let (tx, rx) = mpsc::channel(config.queue.max(1));
    let rx = Arc::new(Mutex::new(rx));
    let writers = match db.backend() {
        Backend::Sqlite => 1,
        Backend::Postgres => config.writers.max(1),
    };
    for _ in 0..writers {
        tokio::spawn(run(
            db.clone(),
            clock.clone(),
            rx.clone(),
            config.max_batch.max(1),
            stats.clone(),
            posted.clone(),
        ));
    }
    tx
}

async fn run(
    db: Db,
    clock: SharedClock,
    rx: Arc<Mutex<mpsc::Receiver<Command>>>,
    max_batch: usize,
    stats: Arc<WriterCounters>,
    posted: broadcast::Sender<Arc<Transfer>>,
) {
    loop {
        // The lock is held only while taking a batch, so another writer can take the
        // next one while this one applies and commits.
        let batch = {
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else { return };
            let mut batch = vec![first];
            while batch.len() < max_batch {
                match rx.try_recv() {
                    Ok(command) => batch.push(command),
                    Err(_) => break,
                }
            }
            batch
        };
        let outcomes = apply_with_retries(&db, &clock, &batch).await;
        stats.record(batch.len(), outcomes.is_ok());
        match outcomes {
            Ok(outcomes) => {
                // Listeners (balance alerts, live pages) hear of value only once it is
                // committed, and only once per transfer: replays are not news.
                if posted.receiver_count() > 0 {
                    for outcome in &outcomes {
                        let fresh = match outcome {
                            Outcome::Transfer(Ok(o)) if !o.replayed && o.transfer.status == TransferStatus::Posted => {
                                Some(&o.transfer)
                            }
                            Outcome::Finish(Ok(t)) if t.status == TransferStatus::Posted => Some(t),
                            _ => None,
                        };
                        if let Some(t) = fresh {
                            let _ = posted.send(Arc::new(t.clone()));
                        }
                    }
                }
                for (command, outcome) in batch.into_iter().zip(outcomes) {
                    command.answer(Ok(outcome));
                }
            }
            Err(e) => {
                for command in batch {
                    command.answer(Err(&e));
                }
            }
        }
    }
}

/// A batch that failed as a whole (a lost connection, a PostgreSQL deadlock between two
/// writers inserting the same keys in opposite orders) committed nothing, so it is simply
/// run again. Even a failed COMMIT whose outcome is unknown cannot apply anything twice
/// when rerun: transfers find their key and replay; a post or void finds the hold finished
/// and answers `pending-already-posted`/`-voided`, which is truthful if unhelpful.
async fn apply_with_retries(db: &Db, clock: &SharedClock, batch: &[Command]) -> Result<Vec<Outcome>, LedgerError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match apply_batch(db, clock.now(), batch).await {
            Ok(outcomes) => return Ok(outcomes),
            Err(e) if attempt < 4 => {
                tracing::warn!(error = %e, attempt, size = batch.len(), "ledger batch failed; retrying");
                tokio::time::sleep(Duration::from_millis(10 * attempt)).await;
            }
            Err(e) => {
                tracing::error!(error = %e, size = batch.len(), "ledger batch failed");
                return Err(e);
            }
        }
    }
}

async fn apply_batch(db: &Db, now: Timestamp, batch: &[Command]) -> Result<Vec<Outcome>, LedgerError> {
    let sql = |e: sqlx::Error| LedgerError::Storage(e.into());
    let mut tx = match db.backend() {
        // IMMEDIATE takes SQLite's write lock up front, so the read-then-write batch can
        // never fail to upgrade its lock because another process wrote meanwhile.
        Backend::Sqlite => db.writer().begin_with("BEGIN IMMEDIATE").await.map_err(sql)?,
        Backend::Postgres => db.begin().await?,
    };
    let conn: &mut AnyConnection = &mut tx;

    // Holds to finish, and expired holds to sweep, are read first: their legs say which
    // accounts to lock. Legs never change, so reading them before the locks is safe; the
    // holds' status is re-read under the locks.
    let mut sweeps: Vec<Vec<TransferId>> = Vec::new();
    let mut finishing: Vec<TransferId> = Vec::new();
    for command in batch {
        match command {
            Command::Finish { id, .. } => finishing.push(*id),
            Command::Sweep { now, limit, .. } => {
                let due = store::expired_holds(conn, *now, *limit).await?;
                finishing.extend(&due);
                sweeps.push(due);
            }
            Command::Transfer { .. } => {}
        }
    }
    let legs: HashMap<TransferId, Vec<Leg>> = store::legs_of(conn, &finishing).await?;
    let mut ids: BTreeSet<AccountId> = BTreeSet::new();
    for command in batch {
        if let Command::Transfer { checked, .. } = command {
            ids.extend(checked.movements.keys());
        }
    }
    for leg in legs.values().flatten() {
        ids.insert(leg.debit);
        ids.insert(leg.credit);
    }
    let ids: Vec<AccountId> = ids.into_iter().collect();
    let mut batch_state = BatchState {
        accounts: store::lock_accounts(conn, db.backend(), &ids).await?,
        dirty: BTreeMap::new(),
        now,
    };

    let mut sweeps = sweeps.into_iter();
    let mut outcomes = Vec::with_capacity(batch.len());
    for command in batch {
        let outcome = match command {
            Command::Transfer { checked, .. } => {
                savepoint(conn).await?;
                let result = batch_state.transfer(conn, checked).await;
                Outcome::Transfer(batch_state.settle(conn, result).await?)
            }
            Command::Finish { id, post, .. } => {
                savepoint(conn).await?;
                let reason = (!post).then_some(VoidReason::Voided);
                let result = batch_state.finish(conn, *id, reason).await;
                Outcome::Finish(batch_state.settle(conn, result).await?)
            }
            Command::Sweep { now: sweep_now, .. } => {
                let mut voided = 0;
                for id in sweeps.next().unwrap_or_default() {
                    savepoint(conn).await?;
                    let result = batch_state.expire(conn, id, *sweep_now).await;
                    match batch_state.settle(conn, result).await? {
                        Ok(true) => voided += 1,
                        Ok(false) => {}
                        Err(e) => {
                            tracing::error!(transfer = %id, error = %e, "could not void an expired hold")
                        }
                    }
                }
                Outcome::Sweep(Ok(voided))
            }
        };
        outcomes.push(outcome);
    }

    store::save_balances(conn, &batch_state.dirty).await?;
    tx.commit().await.map_err(sql)?;
    Ok(outcomes)
}

async fn savepoint(conn: &mut AnyConnection) -> Result<(), LedgerError> {
    conn.execute("SAVEPOINT ledger_command")
        .await
        .map_err(|e| LedgerError::Storage(e.into()))?;
    Ok(())
}

/// What a command did to balances, applied to the batch's view only once its SQL
/// succeeded.
type Changes = Vec<(AccountId, Balance)>;

struct BatchState {
    accounts: BTreeMap<AccountId, AccountState>,
    dirty: BTreeMap<AccountId, Balance>,
    now: Timestamp,
}

impl BatchState {
    /// Ends a command's savepoint: kept and its balance changes taken on success, rolled
    /// back on refusal. An error here (the savepoint itself failing) fails the batch.
    async fn settle<T>(
        &mut self,
        conn: &mut AnyConnection,
        result: Result<(T, Changes), LedgerError>,
    ) -> Result<Result<T, LedgerError>, LedgerError> {
        let sql = |e: sqlx::Error| LedgerError::Storage(e.into());
        match result {
            Ok((value, changes)) => {
                conn.execute("RELEASE SAVEPOINT ledger_command").await.map_err(sql)?;
                for (id, balance) in changes {
                    if let Some(state) = self.accounts.get_mut(&id) {
                        state.balance = balance;
                    }
                    self.dirty.insert(id, balance);
                }
                Ok(Ok(value))
            }
            Err(refusal) => {
                conn.execute("ROLLBACK TO SAVEPOINT ledger_command; RELEASE SAVEPOINT ledger_command")
                    .await
                    .map_err(sql)?;
                Ok(Err(refusal))
            }
        }
    }

    async fn transfer(
        &self,
        conn: &mut AnyConnection,
        checked: &CheckedTransfer,
    ) -> Result<(TransferOutcome, Changes), LedgerError> {
        let request = &checked.request;
        // The key is looked up before any rule runs: a retry of an accepted transfer must
        // get the original answer even if the balances would refuse it now. Within a
        // batch this also catches a duplicate queued behind the original.
        if let Some(replay) = replay(conn, checked).await? {
            return Ok((replay, Vec::new()));
        }
        let (status, expires_at, posted_at) = match checked.mode {
            Mode::Post => (TransferStatus::Posted, None, Some(self.now)),
            Mode::Hold { expires_after } => {
                let expires_at = expires_after
                    .map(|d| self.now.checked_add(d).map_err(|_| LedgerError::AmountOverflow))
                    .transpose()?;
                (TransferStatus::Pending, expires_at, None)
            }
        };
        let changes = domain::apply_movements(&self.accounts, &checked.movements, request.unit, |s, m| match checked
            .mode
        {
            Mode::Post => s.post(m),
            Mode::Hold { .. } => s.hold(m),
        })?;
        let transfer = Transfer {
            id: TransferId::new(),
            key: request.key.clone(),
            unit: request.unit,
            legs: request.legs.clone(),
            status,
            two_phase: matches!(checked.mode, Mode::Hold { .. }),
            void_reason: None,
            meta: request.meta.clone(),
            created_at: self.now,
            expires_at,
            posted_at,
            voided_at: None,
        };
        if !store::insert_transfer(conn, &transfer, &checked.request_hash).await? {
            // Another writer (another node) committed this key while we worked.
            return match replay(conn, checked).await? {
                Some(replay) => Ok((replay, Vec::new())),
                None => Err(LedgerError::Inconsistent(
                    "idempotency key conflict without a stored transfer".into(),
                )),
            };
        }
        if status == TransferStatus::Posted {
            store::insert_entries(conn, &transfer, self.now).await?;
        }
        Ok((
            TransferOutcome {
                transfer,
                replayed: false,
            },
            changes,
        ))
    }

    /// Posts (`reason` None) or voids a hold.
    async fn finish(
        &self,
        conn: &mut AnyConnection,
        id: TransferId,
        reason: Option<VoidReason>,
    ) -> Result<(Transfer, Changes), LedgerError> {
        let (mut transfer, _) = store::load_transfer(conn, id)
            .await?
            .ok_or_else(|| LedgerError::PendingNotFound(id.to_string()))?;
        transfer.check_open(self.now, reason.is_none())?;
        let movements = transfer.movements()?;
        let changes = domain::apply_movements(&self.accounts, &movements, transfer.unit, |s, m| match reason {
            None => s.post_held(m),
            Some(_) => s.release(m),
        })?;
        let status = match reason {
            None => TransferStatus::Posted,
            Some(_) => TransferStatus::Voided,
        };
        if !store::finish_pending(conn, id, status, reason, self.now).await? {
            return Err(LedgerError::Inconsistent(format!(
                "hold {id} changed under its account locks"
            )));
        }
        transfer.status = status;
        match reason {
            None => {
                transfer.posted_at = Some(self.now);
                store::insert_entries(conn, &transfer, self.now).await?;
            }
            Some(r) => {
                transfer.voided_at = Some(self.now);
                transfer.void_reason = Some(r);
            }
        }
        Ok((transfer, changes))
    }

    /// Voids one expired hold if it is still open and still due; false when another
    /// writer or a caller finished it first.
    async fn expire(
        &self,
        conn: &mut AnyConnection,
        id: TransferId,
        now: Timestamp,
    ) -> Result<(bool, Changes), LedgerError> {
        let Some((transfer, _)) = store::load_transfer(conn, id).await? else {
            return Ok((false, Vec::new()));
        };
        let due = transfer.status == TransferStatus::Pending && transfer.expires_at.is_some_and(|at| at <= now);
        if !due {
            return Ok((false, Vec::new()));
        }
        let changes = domain::apply_movements(&self.accounts, &transfer.movements()?, transfer.unit, |s, m| {
            s.release(m)
        })?;
        if !store::finish_pending(conn, id, TransferStatus::Voided, Some(VoidReason::Expired), self.now).await? {
            return Err(LedgerError::Inconsistent(format!(
                "hold {id} changed under its account locks"
            )));
        }
        Ok((true, changes))
    }
}

/// The original outcome if this key was used before: the same request replays, a
/// different one is refused.
async fn replay(conn: &mut AnyConnection, checked: &CheckedTransfer) -> Result<Option<TransferOutcome>, LedgerError> {
    match store::load_transfer_by_key(conn, &checked.request.key).await? {
        Some((transfer, hash)) if hash == checked.request_hash => Ok(Some(TransferOutcome {
            transfer,
            replayed: true,
        })),
        Some(_) => Err(LedgerError::IdempotencyKeyReused {
            key: checked.request.key.key().to_owned(),
        }),
        None => Ok(None),
    }
}
