//! Idempotency keys: a retry replays, a reuse is refused, concurrent retries apply once.

use futures::future::join_all;
use huoban_kit::testing::BACKENDS;
use huoban_ledger::{IdempotencyKey, LedgerError, TransferMeta, TransferRequest, Unit};

use crate::support::{amount, harness, key};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_with_the_same_key_returns_the_original_and_moves_value_once() {
    for backend in BACKENDS {
        let Some(h) = harness(backend).await else {
            continue;
        };
        let bank = h.clearing(Unit::Cny).await;
        let alice = h.customer("alice").await;
        let bob = h.customer("bob").await;
        h.move_cny("fund", bank, alice, 500).await;

        let request = TransferRequest::single(key("gift"), Unit::Cny, alice, bob, amount(500));
        let first = h.ledger.transfer(request.clone()).await.expect("first");
        let retry = h.ledger.transfer(request.clone()).await.expect("retry");
        assert!(!first.replayed);
        assert!(retry.replayed);
        assert_eq!(retry.transfer, first.transfer);
        assert_eq!((h.posted(alice).await, h.posted(bob).await), (0, 500));
        // Alice could not afford it now; the replay still answers with the original.
        let late = h.ledger.transfer(request).await.expect("late retry");
        assert_eq!(late.transfer.id, first.transfer.id);
        h.assert_consistent().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_with_different_content_is_refused() {
    for backend in BACKENDS {
        let Some(h) = harness(backend).await else {
            continue;
        };
        let bank = h.clearing(Unit::Cny).await;
        let alice = h.customer("alice").await;
        let bob = h.customer("bob").await;
        h.move_cny("fund", bank, alice, 1_000).await;
        let request = TransferRequest::single(key("k"), Unit::Cny, alice, bob, amount(100));
        h.ledger.transfer(request.clone()).await.expect("first");
        let before = h.snapshot().await;

        let other_amount = TransferRequest::single(key("k"), Unit::Cny, alice, bob, amount(101));
        let other_meta = request.clone().with_meta(TransferMeta {
            description: Some("changed".into()),
            ..TransferMeta::default()
        });
        for changed in [other_amount, other_meta] {
            let err = h.ledger.transfer(changed).await.expect_err("reused key");
            assert!(
                matches!(err, LedgerError::IdempotencyKeyReused { .. }),
                "{backend:?}: {err}"
            );
        }
        // A hold is different content too.
        let err = h
            .ledger
            .create_pending(request.clone(), None)
            .await
            .expect_err("as a hold");
        assert_eq!(err.slug(), "idempotency-key-mismatch");
        assert_eq!(h.snapshot().await, before, "{backend:?}: nothing moved");

        // Keys are scoped: the same key from another principal is another transfer.
        let elsewhere = TransferRequest {
            key: IdempotencyKey::new("other-principal", "k").expect("key"),
            ..request
        };
        assert!(!h.ledger.transfer(elsewhere).await.expect("other scope").replayed);
        assert_eq!(h.posted(bob).await, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_retries_of_one_key_apply_once() {
    for backend in BACKENDS {
        let Some(h) = harness(backend).await else {
            continue;
        };
        let bank = h.clearing(Unit::Cny).await;
        let alice = h.customer("alice").await;
        let request = TransferRequest::single(key("storm"), Unit::Cny, bank, alice, amount(42));
        let attempts = (0..20).map(|_| {
            let ledger = h.ledger.clone();
            let request = request.clone();
            tokio::spawn(async move { ledger.transfer(request).await })
        });
        let outcomes: Vec<_> = join_all(attempts)
            .await
            .into_iter()
            .map(|r| r.expect("task").expect("transfer"))
            .collect();
        let id = outcomes[0].transfer.id;
        assert!(outcomes.iter().all(|o| o.transfer.id == id));
        assert_eq!(outcomes.iter().filter(|o| !o.replayed).count(), 1, "{backend:?}");
        assert_eq!(h.posted(alice).await, 42);
        h.assert_consistent().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_through_two_nodes_apply_once() {
    // Two ledgers on one database stand for two server nodes, each with its own writers.
    for backend in BACKENDS {
        let Some(h) = harness(backend).await else {
            continue;
        };
        let bank = h.clearing(Unit::Cny).await;
        let alice = h.customer("alice").await;
        let other_node = huoban_ledger::Ledger::start(
            crate::support::connect(&h.test_db).await,
            std::sync::Arc::new(h.clock.clone()),
        );
        let attempts = (0..40).map(|i| {
            let ledger = if i % 2 == 0 {
                h.ledger.clone()
            } else {
                other_node.clone()
            };
            let request = TransferRequest::single(key(format!("k{}", i % 10)), Unit::Cny, bank, alice, amount(1));
            tokio::spawn(async move { ledger.transfer(request).await })
        });
        for result in join_all(attempts).await {
            result.expect("task").expect("transfer");
        }
        assert_eq!(h.posted(alice).await, 10, "{backend:?}: ten keys, ten transfers");
        h.assert_consistent().await;
    }
}
