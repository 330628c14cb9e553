//! The group-commit writer: the only code that changes ledger value.
//!
//! Callers send commands over a channel and wait. A writer task takes whatever is queued
//! (up to `max_batch`), applies the whole batch in **one** database transaction and
//! commits once; only after the commit returns does it answer each caller with its own
//! result. One fsync thus covers a whole batch (SQLite runs WAL + `synchronous = FULL`),
//! and an acknowledged transfer is always a committed one — a crash loses only
//! unacknowledged work, which the caller retries with the same idempotency key.
//!
//! A batch costs a fixed handful of statements whatever its size (chunked only past the
//! bind-parameter limits): the accounts it touches are loaded once, in sorted id order
//! and on PostgreSQL with `FOR UPDATE`, so several writers (one or more per node) never
//! deadlock on accounts; all its idempotency keys (and the holds it posts or voids) are
//! looked up in one query each; then every command is decided **in memory**, in queue
//! order, by the domain rules against the batch's running balances. A refused command
//! simply adds nothing to the plan, so no SAVEPOINT is needed; a key used twice in one
//! batch gives one transfer and replays. The plan is written with multi-row INSERTs
//! (transfers, legs, entries) and one UPDATE of the touched accounts' balances — on
//! PostgreSQL all of it in a single statement — and committed once. Any unexpected SQL
//! failure (say another node committed one of the keys meanwhile, which the unique
//! constraint catches) rolls the whole batch back, and it is rerun from the start.

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
use sqlx::AnyConnection;
use tokio::sync::{Mutex, broadcast, mpsc, oneshot};

use crate::{
    domain::{
        self, AccountId, AccountState, Balance, CheckedTransfer, IdempotencyKey, Leg, Mode, Transfer, TransferId,
        TransferOutcome, TransferStatus, VoidReason,
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
    /// next batch's work on other accounts (batches on the same accounts queue on their
    /// row locks). Measured on 2 cores with 32 callers, 1 writer did as well as 2 or 4
    /// (better on hot accounts): more writers split the queue into smaller batches.
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
pub(crate) enum Outcome {
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

/// A batch that failed as a whole (a lost connection, an idempotency key committed by
/// another node between our lookup and our insert) committed nothing, so it is simply run
/// again, and the rerun sees what the other node committed. Even a failed COMMIT whose
/// outcome is unknown cannot apply anything twice when rerun: transfers find their key
/// and replay; a post or void finds the hold finished and answers
/// `pending-already-posted`/`-voided`, which is truthful if unhelpful.
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
    let ops: Vec<Op<'_>> = batch.iter().map(Command::op).collect();
    let outcomes = apply_on(&mut tx, db.backend(), now, &ops).await?;
    tx.commit().await.map_err(sql)?;
    Ok(outcomes)
}

/// One thing a batch does: borrowed from a queued [`Command`], or from a caller that posts
/// inside its own transaction ([`crate::Ledger::transfer_in`]).
pub(crate) enum Op<'a> {
    Transfer(&'a CheckedTransfer),
    Finish { id: TransferId, post: bool },
    Sweep { now: Timestamp, limit: i64 },
}

impl Command {
    fn op(&self) -> Op<'_> {
        match self {
            Command::Transfer { checked, .. } => Op::Transfer(checked),
            Command::Finish { id, post, .. } => Op::Finish { id: *id, post: *post },
            Command::Sweep { now, limit, .. } => Op::Sweep {
                now: *now,
                limit: *limit,
            },
        }
    }
}

/// Applies a batch on a connection inside an open transaction, which the caller commits
/// (or rolls back on an error: then nothing of the batch may be kept). The writer runs it
/// in its own transaction; [`crate::Ledger::transfer_in`] in a caller's, so that value moves
/// in the same commit as the caller's own rows.
pub(crate) async fn apply_on(
    conn: &mut AnyConnection,
    backend: Backend,
    now: Timestamp,
    batch: &[Op<'_>],
) -> Result<Vec<Outcome>, LedgerError> {
    // Holds to finish, and expired holds to sweep, are read first: their legs say which
    // accounts to lock. Legs never change, so reading them before the locks is safe; the
    // holds themselves (their status) are read under the locks.
    let mut sweeps: Vec<Vec<TransferId>> = Vec::new();
    let mut finishing: Vec<TransferId> = Vec::new();
    for op in batch {
        match op {
            Op::Finish { id, .. } => finishing.push(*id),
            Op::Sweep { now, limit } => {
                let due = store::expired_holds(conn, *now, *limit).await?;
                finishing.extend(&due);
                sweeps.push(due);
            }
            Op::Transfer(_) => {}
        }
    }
    finishing.sort_unstable();
    finishing.dedup();
    let legs: HashMap<TransferId, Vec<Leg>> = store::legs_of(conn, &finishing).await?;
    let mut ids: BTreeSet<AccountId> = BTreeSet::new();
    let mut keys: Vec<&IdempotencyKey> = Vec::new();
    for op in batch {
        if let Op::Transfer(checked) = op {
            ids.extend(checked.movements.keys());
            keys.push(&checked.request.key);
        }
    }
    for leg in legs.values().flatten() {
        ids.insert(leg.debit);
        ids.insert(leg.credit);
    }
    let ids: Vec<AccountId> = ids.into_iter().collect();
    let accounts = store::lock_accounts(conn, backend, &ids).await?;

    // Under the locks: every stored transfer the batch refers to, by key or by id, in one
    // query each. A transfer with one of these keys committed by another writer from now
    // on would have to touch the same accounts (same key and content) and so wait for our
    // locks; with other content, its insert and ours collide on the unique key, and the
    // batch is rerun.
    keys.sort_unstable_by(|a, b| (a.scope(), a.key()).cmp(&(b.scope(), b.key())));
    keys.dedup();
    let mut plan = Plan::new(now, accounts);
    for (transfer, hash) in store::transfers_by_keys(conn, &keys).await? {
        plan.known
            .insert(transfer.key.clone(), (Known::Stored(transfer.id), hash));
        plan.stored.insert(transfer.id, transfer);
    }
    for (transfer, _) in store::transfers_by_ids(conn, &finishing, &legs).await? {
        plan.stored.insert(transfer.id, transfer);
    }

    // Every command is decided in memory, in queue order, by the domain rules; a refused
    // command changes nothing in the plan, so it needs no savepoint.
    let mut sweeps = sweeps.into_iter();
    let mut outcomes = Vec::with_capacity(batch.len());
    for op in batch {
        let outcome = match op {
            Op::Transfer(checked) => Outcome::Transfer(plan.transfer(checked)),
            Op::Finish { id, post } => {
                let reason = (!post).then_some(VoidReason::Voided);
                Outcome::Finish(plan.finish(*id, reason))
            }
            Op::Sweep { now: sweep_now, .. } => {
                let mut voided = 0;
                for id in sweeps.next().unwrap_or_default() {
                    match plan.expire(id, *sweep_now) {
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

    plan.write(conn, backend).await?;
    Ok(outcomes)
}

/// Where a key's transfer is: stored before the batch, or new in it.
#[derive(Debug, Clone, Copy)]
enum Known {
    Stored(TransferId),
    New(usize),
}

/// A batch decided in memory: the balances as the commands so far left them, and what
/// to write. Written with a fixed handful of statements whatever the batch's size.
struct Plan {
    now: Timestamp,
    accounts: BTreeMap<AccountId, AccountState>,
    /// Accounts whose balance changed.
    dirty: BTreeSet<AccountId>,
    /// Stored transfers the batch refers to, as the batch has left them so far.
    stored: HashMap<TransferId, Transfer>,
    /// Keys already used, stored or in this batch, with their request hashes.
    known: HashMap<IdempotencyKey, (Known, String)>,
    /// New transfers to insert, with their request hashes.
    created: Vec<(Transfer, String)>,
    /// Holds finished in this batch, in order, with their new status and reason.
    finished: Vec<(TransferId, TransferStatus, Option<VoidReason>)>,
}

impl Plan {
    fn new(now: Timestamp, accounts: BTreeMap<AccountId, AccountState>) -> Self {
        Self {
            now,
            accounts,
            dirty: BTreeSet::new(),
            stored: HashMap::new(),
            known: HashMap::new(),
            created: Vec::new(),
            finished: Vec::new(),
        }
    }

    /// Takes a command's balance changes into the batch's view.
    fn apply(&mut self, changes: Vec<(AccountId, Balance)>) {
        for (id, balance) in changes {
            if let Some(state) = self.accounts.get_mut(&id) {
                state.balance = balance;
                self.dirty.insert(id);
            }
        }
    }

    fn transfer(&mut self, checked: &CheckedTransfer) -> Result<TransferOutcome, LedgerError> {
        let request = &checked.request;
        // The key is looked up before any rule runs: a retry of an accepted transfer must
        // get the original answer (as it stands now) even if the balances would refuse it
        // now. This also catches a duplicate queued behind the original in this batch.
        if let Some((known, hash)) = self.known.get(&request.key) {
            if *hash != checked.request_hash {
                return Err(LedgerError::IdempotencyKeyReused {
                    key: request.key.key().to_owned(),
                });
            }
            let transfer = match *known {
                Known::Stored(id) => self.stored.get(&id).cloned(),
                Known::New(i) => self.created.get(i).map(|(t, _)| t.clone()),
            }
            .ok_or_else(|| LedgerError::Inconsistent("a known key lost its transfer".into()))?;
            return Ok(TransferOutcome {
                transfer,
                replayed: true,
            });
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
        let changes = domain::apply_movements_in(
            &self.accounts,
            &checked.movements,
            &checked.units,
            request.unit,
            |s, m| match checked.mode {
                Mode::Post => s.post(m),
                Mode::Hold { .. } => s.hold(m),
            },
        )?;
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
        self.apply(changes);
        self.known.insert(
            request.key.clone(),
            (Known::New(self.created.len()), checked.request_hash.clone()),
        );
        self.created.push((transfer.clone(), checked.request_hash.clone()));
        Ok(TransferOutcome {
            transfer,
            replayed: false,
        })
    }

    /// Posts (`reason` None) or voids a hold.
    fn finish(&mut self, id: TransferId, reason: Option<VoidReason>) -> Result<Transfer, LedgerError> {
        let transfer = self
            .stored
            .get(&id)
            .ok_or_else(|| LedgerError::PendingNotFound(id.to_string()))?;
        transfer.check_open(self.now, reason.is_none())?;
        let changes = domain::apply_movements(
            &self.accounts,
            &transfer.movements()?,
            transfer.unit,
            |s, m| match reason {
                None => s.post_held(m),
                Some(_) => s.release(m),
            },
        )?;
        self.apply(changes);
        let transfer = self
            .stored
            .get_mut(&id)
            .ok_or_else(|| LedgerError::PendingNotFound(id.to_string()))?;
        match reason {
            None => {
                transfer.status = TransferStatus::Posted;
                transfer.posted_at = Some(self.now);
            }
            Some(r) => {
                transfer.status = TransferStatus::Voided;
                transfer.voided_at = Some(self.now);
                transfer.void_reason = Some(r);
            }
        }
        self.finished.push((id, transfer.status, reason));
        Ok(transfer.clone())
    }

    /// Voids one expired hold if it is still open and still due; false when another
    /// writer, a caller or an earlier command finished it first.
    fn expire(&mut self, id: TransferId, now: Timestamp) -> Result<bool, LedgerError> {
        let Some(transfer) = self.stored.get(&id) else {
            return Ok(false);
        };
        let due = transfer.status == TransferStatus::Pending && transfer.expires_at.is_some_and(|at| at <= now);
        if !due {
            return Ok(false);
        }
        let changes = domain::apply_movements(&self.accounts, &transfer.movements()?, transfer.unit, |s, m| {
            s.release(m)
        })?;
        self.apply(changes);
        if let Some(transfer) = self.stored.get_mut(&id) {
            transfer.status = TransferStatus::Voided;
            transfer.voided_at = Some(self.now);
            transfer.void_reason = Some(VoidReason::Expired);
        }
        self.finished
            .push((id, TransferStatus::Voided, Some(VoidReason::Expired)));
        Ok(true)
    }

    /// Writes the plan: the new transfers and their legs, the finished holds, the entries
    /// of everything posted, the balances; each a multi-row statement (chunked only past
    /// the bind-parameter limits).
    async fn write(&self, conn: &mut AnyConnection, backend: Backend) -> Result<(), LedgerError> {
        // Sorted by key, so two writers inserting overlapping keys take them in the same
        // order and wait for each other rather than deadlock.
        let mut created: Vec<(&Transfer, &str)> = self.created.iter().map(|(t, h)| (t, h.as_str())).collect();
        created.sort_unstable_by(|(a, _), (b, _)| (a.key.scope(), a.key.key()).cmp(&(b.key.scope(), b.key.key())));
        for (status, reason) in [
            (TransferStatus::Posted, None),
            (TransferStatus::Voided, Some(VoidReason::Voided)),
            (TransferStatus::Voided, Some(VoidReason::Expired)),
        ] {
            let ids: Vec<TransferId> = self
                .finished
                .iter()
                .filter(|(_, s, r)| *s == status && *r == reason)
                .map(|(id, _, _)| *id)
                .collect();
            if ids.is_empty() {
                continue;
            }
            if store::finish_pending(conn, &ids, status, reason, self.now).await? != ids.len() as u64 {
                return Err(LedgerError::Inconsistent(
                    "a hold changed under its account locks".into(),
                ));
            }
        }
        // Entries in command order: their ids, which order an account's postings, follow it.
        let posted: Vec<&Transfer> = self
            .created
            .iter()
            .map(|(t, _)| t)
            .filter(|t| t.status == TransferStatus::Posted)
            .chain(
                self.finished
                    .iter()
                    .filter(|(_, s, _)| *s == TransferStatus::Posted)
                    .filter_map(|(id, _, _)| self.stored.get(id)),
            )
            .collect();
        let balances: BTreeMap<AccountId, Balance> = self
            .dirty
            .iter()
            .filter_map(|id| self.accounts.get(id).map(|s| (*id, s.balance)))
            .collect();
        let inserted = match backend {
            Backend::Postgres => store::write_batch_postgres(conn, &created, &posted, &balances, self.now).await?,
            Backend::Sqlite => {
                // In-process: several statements cost little more than one.
                let inserted = store::insert_transfers(conn, &created).await?;
                if inserted == created.len() as u64 {
                    store::insert_entries(conn, &posted, self.now).await?;
                    store::save_balances(conn, &balances).await?;
                }
                inserted
            }
        };
        if inserted != created.len() as u64 {
            // Another writer committed one of these keys after our lookup (with other
            // content, or it would have waited for our locks). Rolling back and rerunning
            // the batch answers it from the stored transfer.
            return Err(LedgerError::Inconsistent(
                "an idempotency key was committed by another writer during the batch".into(),
            ));
        }
        Ok(())
    }
}
