//! Every refusal, each with bad input, each proving that nothing moved.

use futures::future::join_all;
use huoban_kit::testing::BACKENDS;
use huoban_ledger::{
    AccountId, AccountType, Amount, IdempotencyKey, LedgerError, Leg, NewAccount, Owner, OwnerKind, TransferId,
    TransferMeta, TransferRequest, Unit,
};

use crate::support::{amount, harness, key};

fn slug<T: std::fmt::Debug>(result: Result<T, LedgerError>) -> &'static str {
    result.expect_err("refused").slug()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_has_its_slug_and_moves_nothing() {
    for backend in BACKENDS {
        let Some(h) = harness(backend).await else {
            continue;
        };
        let ledger = &h.ledger;
        let bank = h.clearing(Unit::Cny).await;
        let points_bank = h.clearing(Unit::Points).await;
        let alice = h.customer("alice").await;
        let bob = h.customer("bob").await;
        let owner = Owner::new(OwnerKind::Customer, "carol").expect("owner");
        let capped = h
            .open(NewAccount::new(Unit::Cny, owner.clone(), AccountType::Savings).max_balance(1_000))
            .await
            .id;
        let rich = h.customer("rich").await;
        let mint = h.clearing(Unit::Cny).await;
        h.move_cny("fund", bank, alice, 500).await;
        h.move_cny("fund-rich", mint, rich, i64::MAX - 10).await;
        let direct = h.move_cny("direct", bank, bob, 5).await.transfer.id;
        let one = |k: &str, from: AccountId, to: AccountId, n: i64| {
            TransferRequest::single(key(k), Unit::Cny, from, to, amount(n))
        };
        let before = h.snapshot().await;

        // unknown-account: in a transfer, and when read.
        let ghost = AccountId::new();
        assert_eq!(
            slug(ledger.transfer(one("e1", alice, ghost, 1)).await),
            "unknown-account"
        );
        assert_eq!(
            slug(ledger.create_pending(one("e1b", ghost, alice, 1), None).await),
            "unknown-account"
        );
        assert_eq!(slug(ledger.account(ghost).await), "unknown-account");

        // invalid-amount: a zero or negative amount cannot even be built or parsed.
        assert_eq!(slug(Amount::new(0)), "invalid-amount");
        assert_eq!(slug(Amount::new(-1)), "invalid-amount");
        let json = serde_json::json!({
            "key": {"scope": "s", "key": "k"}, "unit": "CNY",
            "legs": [{"debit": alice, "credit": bob, "amount": 0}]
        });
        assert!(serde_json::from_value::<TransferRequest>(json).is_err());

        // amount-overflow: legs whose sum leaves i64, and a balance that would.
        let huge = amount(i64::MAX);
        let two_huge = TransferRequest {
            key: key("e2"),
            unit: Unit::Cny,
            legs: vec![Leg::new(bank, alice, huge), Leg::new(bank, alice, huge)],
            meta: TransferMeta::default(),
        };
        assert_eq!(slug(ledger.transfer(two_huge).await), "amount-overflow");
        assert_eq!(
            slug(ledger.transfer(one("e3", mint, rich, 11)).await),
            "amount-overflow"
        );

        // invalid-transfer: no legs.
        let empty = TransferRequest {
            key: key("e4"),
            unit: Unit::Cny,
            legs: vec![],
            meta: TransferMeta::default(),
        };
        assert_eq!(slug(ledger.transfer(empty).await), "invalid-transfer");

        // unit-mismatch: points moved by a CNY transfer, or CNY accounts in a points one.
        assert_eq!(
            slug(ledger.transfer(one("e5", points_bank, alice, 1)).await),
            "unit-mismatch"
        );
        let in_points = TransferRequest::single(key("e5b"), Unit::Points, bank, alice, amount(1));
        assert_eq!(slug(ledger.transfer(in_points).await), "unit-mismatch");

        // same-account.
        assert_eq!(slug(ledger.transfer(one("e6", alice, alice, 1)).await), "same-account");

        // insufficient-funds, directly and as a hold.
        assert_eq!(
            slug(ledger.transfer(one("e7", alice, bob, 501)).await),
            "insufficient-funds"
        );
        assert_eq!(
            slug(ledger.create_pending(one("e7b", alice, bob, 501), None).await),
            "insufficient-funds"
        );

        // limit-exceeded.
        assert_eq!(
            slug(ledger.transfer(one("e8", bank, capped, 1_001)).await),
            "limit-exceeded"
        );

        // idempotency-key-mismatch.
        assert_eq!(
            slug(ledger.transfer(one("fund", bank, alice, 501)).await),
            "idempotency-key-mismatch"
        );

        // pending-not-found: no such transfer, or one that was never a hold.
        assert_eq!(slug(ledger.post_pending(TransferId::new()).await), "pending-not-found");
        assert_eq!(slug(ledger.void_pending(direct).await), "pending-not-found");
        assert_eq!(slug(ledger.post_pending(direct).await), "pending-not-found");

        // transfer-not-found on reads.
        assert_eq!(slug(ledger.get_transfer(TransferId::new()).await), "transfer-not-found");
        assert_eq!(slug(ledger.transfer_by_key(&key("never")).await), "transfer-not-found");

        // invalid-account and account-reference-reused.
        let points_in_cny = NewAccount::new(Unit::Cny, owner.clone(), AccountType::Points);
        assert_eq!(slug(ledger.create_account(points_in_cny).await), "invalid-account");
        let negative_cap = NewAccount::new(Unit::Cny, owner.clone(), AccountType::Current).max_balance(-1);
        assert_eq!(slug(ledger.create_account(negative_cap).await), "invalid-account");
        let referenced = NewAccount::new(Unit::Cny, owner.clone(), AccountType::Current).external_ref("ref-1");
        ledger.create_account(referenced).await.expect("open by reference");
        let before_accounts = h.snapshot().await;
        let other = NewAccount::new(Unit::Cny, owner.clone(), AccountType::Savings).external_ref("ref-1");
        assert_eq!(slug(ledger.create_account(other).await), "account-reference-reused");
        assert_eq!(h.snapshot().await, before_accounts);

        // validation: malformed keys and ids.
        assert_eq!(slug(IdempotencyKey::new("s", "has space")), "validation");
        assert_eq!(slug(IdempotencyKey::new("", "k")), "validation");
        assert_eq!(slug("not-a-uuid".parse::<AccountId>()), "validation");

        // Nothing moved but the one account opened by reference.
        let after = h.snapshot().await;
        assert_eq!(after.transfers, before.transfers, "{backend:?}: no transfer recorded");
        assert_eq!(after.entries, before.entries, "{backend:?}: no entry recorded");
        assert_eq!(after.moved(), before.moved(), "{backend:?}: no balance changed");
        h.assert_consistent().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_command_rolls_back_alone_within_a_batch() {
    for backend in BACKENDS {
        let Some(h) = harness(backend).await else {
            continue;
        };
        let bank = h.clearing(Unit::Cny).await;
        let alice = h.customer("alice").await;
        let bob = h.customer("bob").await;
        // Sent together, these land in one or a few batches: every refusal must leave its
        // neighbours committed.
        let commands = (0..40).map(|i| {
            let ledger = h.ledger.clone();
            let request = if i % 2 == 0 {
                TransferRequest::single(key(format!("ok-{i}")), Unit::Cny, bank, alice, amount(1))
            } else {
                TransferRequest::single(key(format!("no-{i}")), Unit::Cny, bob, alice, amount(1_000))
            };
            tokio::spawn(async move { ledger.transfer(request).await })
        });
        let results: Vec<_> = join_all(commands).await.into_iter().map(|r| r.expect("task")).collect();
        for (i, result) in results.iter().enumerate() {
            match result {
                Ok(_) => assert_eq!(i % 2, 0),
                Err(e) => assert_eq!((i % 2, e.slug()), (1, "insufficient-funds")),
            }
        }
        assert_eq!(h.posted(alice).await, 20);
        assert_eq!(h.posted(bob).await, 0);
        h.assert_consistent().await;
    }
}
