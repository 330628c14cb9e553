//! Posting inside a caller's transaction (`Ledger::transfer_in`): value moves only if the
//! caller commits, each request is decided on its own against the locked balances, a
//! budget account never goes below zero, keys replay, and listeners hear of a transfer
//! only when the caller announces it after the commit.

use std::sync::Arc;

use huoban_kit::testing::BACKENDS;
use huoban_ledger::{AccountType, LedgerError, NewAccount, Owner, OwnerKind, TransferRequest, Unit};

use crate::support::{amount, harness, key};

fn budget() -> NewAccount {
    NewAccount::new(
        Unit::Points,
        Owner::new(OwnerKind::Campaign, "spring").expect("owner"),
        AccountType::Budget,
    )
}

fn points_of(name: &str) -> NewAccount {
    NewAccount::new(
        Unit::Points,
        Owner::new(OwnerKind::Customer, name).expect("owner"),
        AccountType::Points,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_in_a_rolled_back_transaction_move_nothing_and_a_committed_one_moves_all() {
    for backend in BACKENDS {
        let Some(h) = harness(backend).await else {
            continue;
        };
        let bank = h.clearing(Unit::Points).await;
        let budget = h.open(budget()).await.id;
        let alice = h.open(points_of("alice")).await.id;
        let before = h.snapshot().await;

        let mut tx = h.db.begin().await.expect("begin");
        let answer = h
            .ledger
            .transfer_in(
                &mut tx,
                vec![TransferRequest::single(
                    key("fund"),
                    Unit::Points,
                    bank,
                    budget,
                    amount(100),
                )],
            )
            .await
            .expect("in transaction");
        assert!(answer.results[0].is_ok());
        tx.rollback().await.expect("rollback");
        assert_eq!(
            h.snapshot().await,
            before,
            "{backend:?}: a rollback takes the transfer with it"
        );
        assert!(
            h.ledger.transfer_by_key(&key("fund")).await.is_err(),
            "the key stays free"
        );

        let mut listener = h.ledger.subscribe();
        let mut tx = h.db.begin().await.expect("begin");
        let answer = h
            .ledger
            .transfer_in(
                &mut tx,
                vec![
                    TransferRequest::single(key("fund"), Unit::Points, bank, budget, amount(100)),
                    TransferRequest::single(key("award-1"), Unit::Points, budget, alice, amount(60)),
                    // Decided against the balance the batch has left: 40 cannot pay 50.
                    TransferRequest::single(key("award-2"), Unit::Points, budget, alice, amount(50)),
                    TransferRequest::single(key("award-3"), Unit::Points, budget, alice, amount(40)),
                ],
            )
            .await
            .expect("in transaction");
        let refused: Vec<bool> = answer.results.iter().map(Result::is_err).collect();
        assert_eq!(refused, [false, false, true, false], "{backend:?}");
        assert!(matches!(answer.results[2], Err(LedgerError::InsufficientFunds { .. })));
        assert!(listener.try_recv().is_err(), "nothing is announced before the commit");
        tx.commit().await.expect("commit");
        h.ledger.announce(&answer);
        let mut heard = Vec::new();
        while let Ok(t) = listener.try_recv() {
            heard.push(Arc::clone(&t).key.key().to_owned());
        }
        assert_eq!(heard, ["fund", "award-1", "award-3"]);
        assert_eq!(h.posted(budget).await, 0);
        assert_eq!(h.posted(alice).await, 100);

        // A retry of a committed key replays and moves nothing, even where the balance
        // would now refuse it; it is not announced again.
        let mut tx = h.db.begin().await.expect("begin");
        let again = h
            .ledger
            .transfer_in(
                &mut tx,
                vec![TransferRequest::single(
                    key("award-1"),
                    Unit::Points,
                    budget,
                    alice,
                    amount(60),
                )],
            )
            .await
            .expect("in transaction");
        tx.commit().await.expect("commit");
        h.ledger.announce(&again);
        assert!(again.results[0].as_ref().expect("replay").replayed);
        assert!(listener.try_recv().is_err());
        assert_eq!(h.posted(alice).await, 100);
        h.assert_consistent().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_transaction_posts_and_the_writer_share_a_budget_without_passing_it() {
    for backend in BACKENDS {
        let Some(h) = harness(backend).await else {
            continue;
        };
        let bank = h.clearing(Unit::Points).await;
        let budget = h.open(budget()).await.id;
        h.ledger
            .transfer(TransferRequest::single(
                key("fund"),
                Unit::Points,
                bank,
                budget,
                amount(500),
            ))
            .await
            .expect("fund");
        let customers: Vec<_> = futures::future::join_all((0..8).map(|i| h.open(points_of(&format!("c{i}")))))
            .await
            .into_iter()
            .map(|a| a.id)
            .collect();
        // 8 callers through the writer and 8 transactions of their own, each wanting 7 × 10.
        let mut tasks = Vec::new();
        for (i, customer) in customers.iter().copied().enumerate() {
            let ledger = h.ledger.clone();
            tasks.push(tokio::spawn(async move {
                let mut paid = 0;
                for n in 0..7 {
                    let r =
                        TransferRequest::single(key(format!("w{i}-{n}")), Unit::Points, budget, customer, amount(10));
                    if ledger.transfer(r).await.is_ok() {
                        paid += 10;
                    }
                }
                paid
            }));
            let (ledger, db) = (h.ledger.clone(), h.db.clone());
            tasks.push(tokio::spawn(async move {
                let mut tx = db.begin().await.expect("begin");
                let requests = (0..7)
                    .map(|n| {
                        TransferRequest::single(key(format!("t{i}-{n}")), Unit::Points, budget, customer, amount(10))
                    })
                    .collect();
                let answer = ledger.transfer_in(&mut tx, requests).await.expect("in transaction");
                tx.commit().await.expect("commit");
                answer.results.iter().filter(|r| r.is_ok()).count() as i64 * 10
            }));
        }
        let mut paid = 0;
        for t in tasks {
            paid += t.await.expect("task");
        }
        assert_eq!(paid, 500, "{backend:?}: exactly the budget is paid, never more");
        assert_eq!(h.posted(budget).await, 0);
        let received: i64 = futures::future::join_all(customers.iter().map(|c| h.posted(*c)))
            .await
            .into_iter()
            .sum();
        assert_eq!(received, 500);
        h.assert_consistent().await;
    }
}
