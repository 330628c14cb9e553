//! Many callers on a few hot accounts, through two ledger nodes on one database: every
//! acknowledged transfer is in the balances, nothing else is, and the invariants hold.

use std::{sync::Arc, time::Instant};

use futures::future::join_all;
use huoban_kit::testing::BACKENDS;
use huoban_ledger::{AccountType, Ledger, NewAccount, Owner, OwnerKind, TransferRequest, Unit};

use crate::support::{amount, connect, harness, key};

const TASKS: usize = 32;
const PER_TASK: usize = 50;
const HOT: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_transfers_among_hot_accounts_keep_every_balance_exact() {
    for backend in BACKENDS {
        let Some(h) = harness(backend).await else {
            continue;
        };
        let bank = h.clearing(Unit::Cny).await;
        let mut hot = Vec::new();
        for i in 0..HOT {
            let owner = Owner::new(OwnerKind::Customer, format!("hot-{i}")).expect("owner");
            let id = h
                .open(NewAccount::new(Unit::Cny, owner, AccountType::Current).max_balance(3_000))
                .await
                .id;
            h.move_cny(&format!("seed-{i}"), bank, id, 1_000).await;
            hot.push(id);
        }
        // A second node: its own pools and writers on the same database.
        let node2 = Ledger::start(connect(&h.test_db).await, Arc::new(h.clock.clone()));

        let started = Instant::now();
        let tasks = (0..TASKS).map(|task| {
            let ledger = if task % 2 == 0 { h.ledger.clone() } else { node2.clone() };
            let hot = hot.clone();
            tokio::spawn(async move {
                // A small deterministic generator per task: reproducible, no extra crate.
                let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ (task as u64 + 1);
                let mut next = move |bound: u64| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed % bound
                };
                let mut acknowledged = Vec::new();
                let mut refused = 0;
                for i in 0..PER_TASK {
                    let from = next(HOT as u64) as usize;
                    let to = (from + 1 + next(HOT as u64 - 1) as usize) % HOT;
                    let n = 1 + next(400) as i64;
                    let request =
                        TransferRequest::single(key(format!("t{task}-{i}")), Unit::Cny, hot[from], hot[to], amount(n));
                    match ledger.transfer(request).await {
                        Ok(outcome) => {
                            assert!(!outcome.replayed);
                            acknowledged.push((from, to, n));
                        }
                        Err(e) => {
                            assert!(
                                matches!(e.slug(), "insufficient-funds" | "limit-exceeded"),
                                "unexpected refusal: {e}"
                            );
                            refused += 1;
                        }
                    }
                }
                (acknowledged, refused)
            })
        });
        let results: Vec<_> = join_all(tasks).await.into_iter().map(|r| r.expect("task")).collect();
        let elapsed = started.elapsed();

        let mut expected = [1_000i64; HOT];
        let (mut accepted, mut refused) = (0, 0);
        for (acknowledged, r) in &results {
            refused += r;
            for &(from, to, n) in acknowledged {
                expected[from] -= n;
                expected[to] += n;
                accepted += 1;
            }
        }
        eprintln!(
            "{backend:?}: {accepted} transfers accepted, {refused} refused in {elapsed:?} ({:.0}/s)",
            (TASKS * PER_TASK) as f64 / elapsed.as_secs_f64()
        );
        for (i, id) in hot.iter().enumerate() {
            let balance = h.ledger.balance(*id).await.expect("balance");
            assert_eq!(balance.posted, expected[i], "{backend:?}: hot account {i}");
            assert!((0..=3_000).contains(&balance.posted));
        }
        assert!(accepted > TASKS * PER_TASK / 2, "most transfers should fit the limits");
        // Group commit groups: with 16 callers per node, batches carry several commands.
        let stats = h.ledger.writer_stats();
        eprintln!("{backend:?}: node 1 writer {stats:?}");
        assert_eq!(stats.failed_batches, 0);
        assert!(stats.largest_batch > 1, "{backend:?}: {stats:?}");
        assert!(stats.commands > stats.batches, "{backend:?}: {stats:?}");
        let transfers: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ledger_transfers")
            .fetch_one(h.db.reader())
            .await
            .expect("count");
        assert_eq!(
            transfers as usize,
            accepted + HOT,
            "{backend:?}: only acknowledged transfers exist"
        );
        h.assert_consistent().await;
    }
}
