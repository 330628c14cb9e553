//! Huoban's ledger: every change of value — money in fen, points, goal pockets, budgets —
//! is a balanced transfer between accounts, recorded once, immutable, and durable before
//! it is acknowledged.
//!
//! - [`domain`]: the rules (accounts, legs, balances, limits, holds), pure.
//! - [`store`]: the SQL for both backends, reads and the invariant check.
//! - [`writer`]: the group-commit writer through which every change goes.
//! - [`Ledger`]: the handle the rest of Huoban uses (cheap to clone).
//! - [`error`]: [`LedgerError`] and its mapping to problem+json.
//!
//! Design notes:
//! - **Legs, stored as signed entries.** A request is a list of legs (debit one account,
//!   credit another, positive amount, one unit per transfer), so it is balanced by
//!   construction and there is no "unbalanced transfer" error. Each posted leg becomes two
//!   rows in `ledger_entries` (`-amount`, `+amount`); all entries of a unit sum to zero.
//! - **Balances on the account row** (`posted`, `pending_out`, `pending_in`), written in
//!   the same transaction as the entries; [`invariants`] proves they match.
//! - **Idempotency is native** rather than the kit's HTTP middleware: the scoped key, the
//!   SHA-256 of the canonical request and the transfer are one row, written in the same
//!   transaction as the value it moves (`UNIQUE (scope, idem_key)`), so a retry can never
//!   apply twice and the writer's batched commit is kept.
//! - **Group commit, decided in memory.** A writer batch locks its accounts, looks up all
//!   its keys at once, applies every command with the pure rules to in-memory balances,
//!   then writes everything with a few multi-row statements and commits once; callers are
//!   answered only after the commit (see [`writer`]).
//! - **Holds** (two-phase transfers) keep their expiry in the database; any node's
//!   [`Ledger::void_expired`] voids them when due, and they cannot be posted after it.
//!
//! Tables: `ledger_accounts`, `ledger_transfers` (one row per transfer, with its key,
//! request hash, status and metadata), `ledger_legs` (a transfer's legs, kept for
//! holds), `ledger_entries` (posted value; immutable, enforced by triggers).

pub mod domain;
pub mod error;
pub mod store;
pub mod writer;

use std::sync::Arc;

use huoban_kit::{Db, MigrationSpec, SharedClock, page::Page};
use jiff::{SignedDuration, Timestamp};
use tokio::sync::{mpsc, oneshot};

pub use domain::{
    Account, AccountId, AccountType, Amount, Balance, Direction, IdempotencyKey, Leg, Limits, NewAccount, Owner,
    OwnerKind, Posting, Transfer, TransferId, TransferMeta, TransferOutcome, TransferRequest, TransferStatus, Unit,
    VoidReason,
};
pub use error::LedgerError;
pub use store::{CategoryTotal, InvariantReport, PostingQuery, Statement, invariants};
pub use writer::{WriterConfig, WriterStats};

use crate::{
    domain::{Mode, check_transfer},
    writer::Command,
};

/// The ledger's schema; the server applies it with the other capabilities' migrations.
pub const MIGRATIONS: &[MigrationSpec] = &[
    MigrationSpec {
        version: 2026112210,
        name: "ledger_tables",
        sqlite: include_str!("../migrations/sqlite/ledger_tables.sql"),
        postgres: include_str!("../migrations/postgres/ledger_tables.sql"),
    },
    MigrationSpec {
        version: 2026120660,
        name: "ledger_posted_order",
        sqlite: include_str!("../migrations/sqlite/ledger_posted_order.sql"),
        postgres: include_str!("../migrations/postgres/ledger_posted_order.sql"),
    },
];

/// Most expired holds one sweep pass voids; [`Ledger::void_expired`] repeats passes.
const SWEEP_PASS: i64 = 500;

/// The ledger service: writes go through the group-commit writer, reads through the
/// database's read pool. Clones share the writer; it stops when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct Ledger {
    db: Db,
    clock: SharedClock,
    commands: mpsc::Sender<Command>,
    stats: Arc<writer::WriterCounters>,
    posted: tokio::sync::broadcast::Sender<Arc<Transfer>>,
}

impl Ledger {
    /// Starts the writer with default batching. Needs a Tokio runtime. The schema must be
    /// migrated ([`MIGRATIONS`]).
    pub fn start(db: Db, clock: SharedClock) -> Self {
        Self::start_with(db, clock, &WriterConfig::default())
    }

    pub fn start_with(db: Db, clock: SharedClock, config: &WriterConfig) -> Self {
        let stats = Arc::new(writer::WriterCounters::default());
        let (posted, _) = tokio::sync::broadcast::channel(4096);
        let commands = writer::spawn(db.clone(), clock.clone(), config, stats.clone(), posted.clone());
        Self {
            db,
            clock,
            commands,
            stats,
            posted,
        }
    }

    /// Transfers as they are posted on this node (new transfers and posted holds), each
    /// once and only after its commit. A slow listener may lag and miss some; the entries
    /// in the database remain the record.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<Transfer>> {
        self.posted.subscribe()
    }

    /// A listener for posted transfers that takes them in groups (whatever arrived while
    /// the previous group was handled), for capabilities that react to money moving
    /// (balance alerts, goal progress). Subscribes now, so nothing posted after this call
    /// is missed unless the listener falls so far behind that the channel drops some —
    /// which it logs under `name`.
    pub fn listen(&self, name: &'static str) -> PostedListener {
        PostedListener {
            posted: self.posted.subscribe(),
            name,
        }
    }

    /// Posted transfers after `after` — a `posted_at` and, for transfers posted at that very
    /// instant, the last id already seen — up to `until` (inclusive), oldest first, at most
    /// `limit`: the committed record of what [`Ledger::listen`] announces, for a listener
    /// catching up on what it missed.
    pub async fn posted_since(
        &self,
        after: (Timestamp, Option<TransferId>),
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<Transfer>, LedgerError> {
        store::posted_since(&self.db, after, until, limit).await
    }

    /// Batches and commands this node's writer has committed.
    pub fn writer_stats(&self) -> WriterStats {
        self.stats.snapshot()
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    async fn send<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, LedgerError>>) -> Command,
    ) -> Result<T, LedgerError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(make(reply))
            .await
            .map_err(|_| LedgerError::Unavailable)?;
        answer.await.map_err(|_| LedgerError::Unavailable)?
    }

    /// Opens an account. Account opening moves no value, so it does not wait for a batch.
    pub async fn create_account(&self, new: NewAccount) -> Result<Account, LedgerError> {
        store::create_account(&self.db, &new, self.clock.now()).await
    }

    pub async fn account(&self, id: AccountId) -> Result<Account, LedgerError> {
        store::account(self.db.reader(), id).await
    }

    /// The accounts among `ids` that exist, in one read (per few hundred ids).
    pub async fn accounts(&self, ids: &[AccountId]) -> Result<Vec<Account>, LedgerError> {
        store::accounts_by_ids(&self.db, ids).await
    }

    /// The accounts opened with these external references, in one read.
    pub async fn accounts_by_refs(&self, refs: &[String]) -> Result<Vec<Account>, LedgerError> {
        store::accounts_by_refs(&self.db, refs).await
    }

    pub async fn balance(&self, id: AccountId) -> Result<Balance, LedgerError> {
        Ok(self.account(id).await?.balance)
    }

    pub async fn accounts_of(&self, owner: &Owner) -> Result<Vec<Account>, LedgerError> {
        store::accounts_of_owner(&self.db, owner).await
    }

    /// Removes the free text an owner's erasure must not leave behind (PIPL art. 47): the
    /// labels of their accounts (a goal pocket carries the goal's name) and the
    /// descriptions of transfers that involve no other customer (their own moves, goal
    /// deposits, the bank's credits). Value is untouched: entries, legs, amounts, accounts
    /// and times stay, so every invariant holds; a transfer with another customer keeps
    /// its description, which is that customer's record too. Idempotent. Returns
    /// (labels, descriptions) cleared.
    pub async fn scrub_owner_text(&self, owner: &Owner) -> Result<(u64, u64), LedgerError> {
        store::scrub_owner_text(&self.db, owner).await
    }

    /// Posts a transfer at once. A retry with the same key and content moves nothing and
    /// returns the original transfer, as it stands now, with `replayed: true`; the same
    /// key with other content is refused. A refused request stores nothing, so its key
    /// stays free and a retry is evaluated afresh.
    pub async fn transfer(&self, request: TransferRequest) -> Result<TransferOutcome, LedgerError> {
        let checked = Box::new(check_transfer(request, Mode::Post)?);
        self.send(|reply| Command::Transfer { checked, reply }).await
    }

    /// Posts transfers inside the caller's open transaction, so that value moves in the
    /// same commit as the caller's own rows (a rules batch's effects, a task claim). The
    /// same rules decide as in the writer: the accounts are locked (PostgreSQL: `FOR
    /// UPDATE`, in sorted id order), the keys looked up, every request decided in memory
    /// in order against the running balances, the result written with the writer's
    /// multi-row statements. Each request gets its own answer — a refused one (say
    /// `insufficient-funds` on a budget account) writes nothing and does not stop the
    /// others — while `Err` means the transaction must be rolled back.
    ///
    /// Call it once per transaction, before taking other row locks the writer's batches
    /// could wait behind, so that every transaction locks accounts in one sorted step.
    /// Nothing is announced to listeners until the caller has committed and passes the
    /// answer to [`Ledger::announce`].
    pub async fn transfer_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        requests: Vec<TransferRequest>,
    ) -> Result<InTransaction, LedgerError> {
        let checked: Vec<Result<domain::CheckedTransfer, LedgerError>> =
            requests.into_iter().map(|r| check_transfer(r, Mode::Post)).collect();
        let ops: Vec<writer::Op<'_>> = checked
            .iter()
            .filter_map(|c| c.as_ref().ok().map(writer::Op::Transfer))
            .collect();
        let mut applied = if ops.is_empty() {
            Vec::new()
        } else {
            writer::apply_on(conn, self.db.backend(), self.clock.now(), &ops).await?
        }
        .into_iter();
        let mut results = Vec::with_capacity(checked.len());
        for c in checked {
            results.push(match c {
                Err(e) => Err(e),
                Ok(_) => match applied.next() {
                    Some(writer::Outcome::Transfer(r)) => r,
                    _ => Err(LedgerError::Inconsistent(
                        "an in-transaction batch lost an answer".into(),
                    )),
                },
            });
        }
        Ok(InTransaction { results })
    }

    /// Tells this node's listeners about transfers posted by [`Ledger::transfer_in`] once
    /// their transaction has committed (never before: a rolled-back transfer is not news).
    /// Like the writer's announcements, this is per node and not durable.
    pub fn announce(&self, committed: &InTransaction) {
        if self.posted.receiver_count() == 0 {
            return;
        }
        for outcome in committed.results.iter().flatten() {
            if !outcome.replayed && outcome.transfer.status == TransferStatus::Posted {
                let _ = self.posted.send(Arc::new(outcome.transfer.clone()));
            }
        }
    }

    /// Holds a transfer: debited accounts lose availability now, nothing is posted until
    /// [`Ledger::post_pending`]. With `expires_after`, the hold is voided by
    /// [`Ledger::void_expired`] once due and can no longer be posted.
    pub async fn create_pending(
        &self,
        request: TransferRequest,
        expires_after: Option<SignedDuration>,
    ) -> Result<TransferOutcome, LedgerError> {
        let checked = Box::new(check_transfer(request, Mode::Hold { expires_after })?);
        self.send(|reply| Command::Transfer { checked, reply }).await
    }

    pub async fn post_pending(&self, id: TransferId) -> Result<Transfer, LedgerError> {
        self.send(|reply| Command::Finish { id, post: true, reply }).await
    }

    pub async fn void_pending(&self, id: TransferId) -> Result<Transfer, LedgerError> {
        self.send(|reply| Command::Finish { id, post: false, reply }).await
    }

    /// Voids every hold whose expiry is at or before `now`; returns how many. The server
    /// calls it periodically; expiries live in the database, so nothing is lost across
    /// restarts, and several nodes may sweep at once.
    pub async fn void_expired(&self, now: Timestamp) -> Result<u64, LedgerError> {
        let mut total = 0;
        loop {
            let voided = self
                .send(|reply| Command::Sweep {
                    now,
                    limit: SWEEP_PASS,
                    reply,
                })
                .await?;
            total += voided;
            if voided < SWEEP_PASS as u64 {
                return Ok(total);
            }
        }
    }

    pub async fn get_transfer(&self, id: TransferId) -> Result<Transfer, LedgerError> {
        let mut conn = self
            .db
            .reader()
            .acquire()
            .await
            .map_err(|e| LedgerError::Storage(e.into()))?;
        store::load_transfer(&mut conn, id)
            .await?
            .map(|(t, _)| t)
            .ok_or_else(|| LedgerError::TransferNotFound(id.to_string()))
    }

    pub async fn transfer_by_key(&self, key: &IdempotencyKey) -> Result<Transfer, LedgerError> {
        let mut conn = self
            .db
            .reader()
            .acquire()
            .await
            .map_err(|e| LedgerError::Storage(e.into()))?;
        store::load_transfer_by_key(&mut conn, key)
            .await?
            .map(|(t, _)| t)
            .ok_or_else(|| LedgerError::TransferNotFound(format!("with key {:?}", key.key())))
    }

    /// An account's postings, newest first, filtered and paginated by cursor.
    pub async fn postings(&self, account: AccountId, query: &PostingQuery) -> Result<Page<Posting>, LedgerError> {
        store::postings(&self.db, account, query).await
    }

    /// Totals in and out and spending by merchant category for a calendar month in an
    /// IANA time zone (e.g. `Asia/Shanghai`).
    pub async fn statement(
        &self,
        account: AccountId,
        year: i16,
        month: i8,
        time_zone: &str,
    ) -> Result<Statement, LedgerError> {
        store::statement(&self.db, account, year, month, time_zone).await
    }

    pub async fn invariants(&self) -> Result<InvariantReport, LedgerError> {
        store::invariants(&self.db).await
    }
}

/// The answers of [`Ledger::transfer_in`], one per request in order; hand them to
/// [`Ledger::announce`] after the commit.
#[derive(Debug, Default)]
#[must_use = "announce the transfers once the transaction has committed"]
pub struct InTransaction {
    pub results: Vec<Result<TransferOutcome, LedgerError>>,
}

/// Posted transfers for one listener; see [`Ledger::listen`].
#[derive(Debug)]
pub struct PostedListener {
    posted: tokio::sync::broadcast::Receiver<Arc<Transfer>>,
    name: &'static str,
}

impl PostedListener {
    /// Waits for at least one posted transfer and returns up to `max` of them; `None` once
    /// the ledger has stopped.
    pub async fn next_group(&mut self, max: usize) -> Option<Vec<Arc<Transfer>>> {
        use tokio::sync::broadcast::error::{RecvError, TryRecvError};
        let first = loop {
            match self.posted.recv().await {
                Ok(t) => break t,
                Err(RecvError::Lagged(missed)) => tracing::warn!(missed, listener = self.name, "listener fell behind"),
                Err(RecvError::Closed) => return None,
            }
        };
        let mut group = vec![first];
        while group.len() < max.max(1) {
            match self.posted.try_recv() {
                Ok(t) => group.push(t),
                Err(TryRecvError::Lagged(missed)) => {
                    tracing::warn!(missed, listener = self.name, "listener fell behind")
                }
                Err(_) => break,
            }
        }
        Some(group)
    }
}
