//! Shared arrangements: a migrated database with a running ledger on a manual clock, and
//! short ways to open accounts and move value.

use std::sync::Arc;

use huoban_kit::{Backend, Db, ManualClock, db::DbOptions, testing::TestDb};
use huoban_ledger::{
    Account, AccountId, AccountType, Amount, IdempotencyKey, Ledger, MIGRATIONS, NewAccount, Owner, OwnerKind,
    TransferOutcome, TransferRequest, Unit,
};
use jiff::Timestamp;

/// An account's id and stored posted, pending-out and pending-in balances.
pub type AccountRow = (String, i64, i64, i64);

#[derive(Debug, PartialEq)]
pub struct Snapshot {
    pub accounts: Vec<AccountRow>,
    pub transfers: i64,
    pub entries: i64,
}

impl Snapshot {
    /// Accounts whose balances are not all zero.
    pub fn moved(&self) -> Vec<AccountRow> {
        self.accounts
            .iter()
            .filter(|a| a.1 != 0 || a.2 != 0 || a.3 != 0)
            .cloned()
            .collect()
    }
}

pub struct Harness {
    pub backend: Backend,
    pub db: Db,
    pub ledger: Ledger,
    pub clock: ManualClock,
    pub test_db: TestDb,
}

pub fn start_time() -> Timestamp {
    "2026-03-10T02:00:00Z".parse().expect("timestamp")
}

/// A fresh, migrated database with a ledger, or `None` when PostgreSQL is not reachable
/// outside CI (the kit's rule).
pub async fn harness(backend: Backend) -> Option<Harness> {
    let test_db = TestDb::fresh(backend).await?;
    let db = connect(&test_db).await;
    db.migrate(MIGRATIONS).await.expect("migrate");
    let clock = ManualClock::new(start_time());
    let ledger = Ledger::start(db.clone(), Arc::new(clock.clone()));
    Some(Harness {
        backend,
        db,
        ledger,
        clock,
        test_db,
    })
}

pub async fn connect(test_db: &TestDb) -> Db {
    Db::connect(
        &test_db.url,
        &DbOptions {
            max_connections: 8,
            ..Default::default()
        },
    )
    .await
    .expect("connect")
}

pub fn key(k: impl Into<String>) -> IdempotencyKey {
    IdempotencyKey::new("tests", k).expect("key")
}

pub fn amount(n: i64) -> Amount {
    Amount::new(n).expect("amount")
}

impl Harness {
    /// The bank's clearing account for a unit: it may go negative, as the source of
    /// issued value.
    pub async fn clearing(&self, unit: Unit) -> AccountId {
        let owner = Owner::new(OwnerKind::Bank, "bank").expect("owner");
        self.ledger
            .create_account(NewAccount::new(unit, owner, AccountType::Clearing).allow_negative())
            .await
            .expect("open clearing")
            .id
    }

    pub async fn customer(&self, name: &str) -> AccountId {
        self.open(NewAccount::new(
            Unit::Cny,
            Owner::new(OwnerKind::Customer, name).expect("owner"),
            AccountType::Current,
        ))
        .await
        .id
    }

    pub async fn open(&self, new: NewAccount) -> Account {
        self.ledger.create_account(new).await.expect("open account")
    }

    pub async fn move_cny(&self, k: &str, from: AccountId, to: AccountId, n: i64) -> TransferOutcome {
        self.ledger
            .transfer(TransferRequest::single(key(k), Unit::Cny, from, to, amount(n)))
            .await
            .expect("transfer")
    }

    pub async fn posted(&self, id: AccountId) -> i64 {
        self.ledger.balance(id).await.expect("balance").posted
    }

    pub async fn assert_consistent(&self) {
        let report = self.ledger.invariants().await.expect("invariants");
        assert!(report.is_ok(), "{:?}: {:?}", self.backend, report.violations);
    }

    /// Everything that records value, to prove a refusal moved nothing.
    pub async fn snapshot(&self) -> Snapshot {
        let accounts: Vec<AccountRow> =
            sqlx::query_as("SELECT id, posted, pending_out, pending_in FROM ledger_accounts ORDER BY id")
                .fetch_all(self.db.reader())
                .await
                .expect("accounts");
        let transfers: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ledger_transfers")
            .fetch_one(self.db.reader())
            .await
            .expect("count");
        let entries: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ledger_entries")
            .fetch_one(self.db.reader())
            .await
            .expect("count");
        Snapshot {
            accounts,
            transfers,
            entries,
        }
    }
}
