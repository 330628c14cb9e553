//! Two-phase transfers: holds, posting, voiding, expiry and the sweeper.

use huoban_kit::{Clock, testing::BACKENDS};
use huoban_ledger::{
    AccountType, Balance, LedgerError, NewAccount, Owner, OwnerKind, TransferRequest, TransferStatus, Unit, VoidReason,
};
use jiff::SignedDuration;

use crate::support::{amount, harness, key};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_reserves_then_posts_or_voids() {
    for backend in BACKENDS {
        let Some(h) = harness(backend).await else {
            continue;
        };
        let bank = h.clearing(Unit::Cny).await;
        let alice = h.customer("alice").await;
        let shop = h.customer("shop").await;
        h.move_cny("fund", bank, alice, 1_000).await;

        let hold = h
            .ledger
            .create_pending(
                TransferRequest::single(key("h1"), Unit::Cny, alice, shop, amount(600)),
                None,
            )
            .await
            .expect("hold");
        assert_eq!(hold.transfer.status, TransferStatus::Pending);
        let held = h.ledger.balance(alice).await.expect("balance");
        assert_eq!(
            held,
            Balance {
                posted: 1_000,
                pending_out: 600,
                pending_in: 0
            }
        );
        assert_eq!(held.available(), 400);
        assert_eq!(h.ledger.balance(shop).await.expect("shop").pending_in, 600);
        // The held amount cannot be spent twice.
        let err = h
            .ledger
            .transfer(TransferRequest::single(
                key("spend"),
                Unit::Cny,
                alice,
                shop,
                amount(401),
            ))
            .await
            .expect_err("only 400 available");
        assert_eq!(err.slug(), "insufficient-funds");
        h.assert_consistent().await;

        let posted = h.ledger.post_pending(hold.transfer.id).await.expect("post");
        assert_eq!(posted.status, TransferStatus::Posted);
        assert!(posted.posted_at.is_some());
        assert_eq!((h.posted(alice).await, h.posted(shop).await), (400, 600));
        assert_eq!(h.ledger.balance(alice).await.expect("b").pending_out, 0);
        assert_eq!(
            h.ledger.get_transfer(hold.transfer.id).await.expect("read").status,
            TransferStatus::Posted
        );

        let second = h
            .ledger
            .create_pending(
                TransferRequest::single(key("h2"), Unit::Cny, alice, shop, amount(400)),
                None,
            )
            .await
            .expect("hold 2");
        let voided = h.ledger.void_pending(second.transfer.id).await.expect("void");
        assert_eq!(voided.status, TransferStatus::Voided);
        assert_eq!(voided.void_reason, Some(VoidReason::Voided));
        assert_eq!(
            h.ledger.balance(alice).await.expect("b"),
            Balance {
                posted: 400,
                pending_out: 0,
                pending_in: 0
            }
        );
        h.assert_consistent().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_hold_cannot_be_finished_again() {
    for backend in BACKENDS {
        let Some(h) = harness(backend).await else {
            continue;
        };
        let bank = h.clearing(Unit::Cny).await;
        let alice = h.customer("alice").await;
        let hold = |k: &'static str| {
            h.ledger.create_pending(
                TransferRequest::single(key(k), Unit::Cny, bank, alice, amount(10)),
                None,
            )
        };
        let posted = hold("p").await.expect("hold").transfer.id;
        h.ledger.post_pending(posted).await.expect("post");
        let voided = hold("v").await.expect("hold").transfer.id;
        h.ledger.void_pending(voided).await.expect("void");
        let before = h.snapshot().await;

        let slug = |r: Result<_, LedgerError>| r.expect_err("refused").slug();
        assert_eq!(slug(h.ledger.post_pending(posted).await), "pending-already-posted");
        assert_eq!(slug(h.ledger.void_pending(posted).await), "pending-already-posted");
        assert_eq!(slug(h.ledger.post_pending(voided).await), "pending-already-voided");
        assert_eq!(slug(h.ledger.void_pending(voided).await), "pending-already-voided");
        assert_eq!(h.snapshot().await, before, "{backend:?}: nothing moved");
        assert_eq!(h.posted(alice).await, 10);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_hold_is_voided_by_the_sweeper_and_cannot_be_posted() {
    for backend in BACKENDS {
        let Some(h) = harness(backend).await else {
            continue;
        };
        let bank = h.clearing(Unit::Cny).await;
        let alice = h.customer("alice").await;
        let shop = h.customer("shop").await;
        h.move_cny("fund", bank, alice, 1_000).await;
        let request = |k: &'static str| TransferRequest::single(key(k), Unit::Cny, alice, shop, amount(300));
        let expiring = h
            .ledger
            .create_pending(request("exp"), Some(SignedDuration::from_mins(10)))
            .await
            .expect("hold");
        let lasting = h
            .ledger
            .create_pending(request("later"), Some(SignedDuration::from_hours(2)))
            .await
            .expect("hold");
        assert_eq!(
            expiring.transfer.expires_at,
            Some(h.clock.now() + SignedDuration::from_mins(10))
        );

        // Nothing is due yet.
        assert_eq!(h.ledger.void_expired(h.clock.now()).await.expect("sweep"), 0);

        h.clock.advance(SignedDuration::from_mins(11));
        // Past its expiry a hold cannot be posted, even before the sweeper has run.
        let err = h.ledger.post_pending(expiring.transfer.id).await.expect_err("expired");
        assert_eq!(err.slug(), "pending-expired");
        assert_eq!(h.ledger.balance(alice).await.expect("b").pending_out, 600);

        assert_eq!(h.ledger.void_expired(h.clock.now()).await.expect("sweep"), 1);
        let swept = h.ledger.get_transfer(expiring.transfer.id).await.expect("read");
        assert_eq!(
            (swept.status, swept.void_reason),
            (TransferStatus::Voided, Some(VoidReason::Expired))
        );
        assert_eq!(h.ledger.balance(alice).await.expect("b").pending_out, 300);
        for result in [
            h.ledger.post_pending(expiring.transfer.id).await,
            h.ledger.void_pending(expiring.transfer.id).await,
        ] {
            assert_eq!(result.expect_err("expired").slug(), "pending-expired");
        }
        // A second sweep finds nothing more; the other hold is still open and postable.
        assert_eq!(h.ledger.void_expired(h.clock.now()).await.expect("sweep"), 0);
        h.ledger
            .post_pending(lasting.transfer.id)
            .await
            .expect("post the other");
        assert_eq!((h.posted(alice).await, h.posted(shop).await), (700, 300));
        h.assert_consistent().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incoming_hold_counts_against_the_ceiling() {
    for backend in BACKENDS {
        let Some(h) = harness(backend).await else {
            continue;
        };
        let bank = h.clearing(Unit::Cny).await;
        let owner = Owner::new(OwnerKind::Customer, "alice").expect("owner");
        let pocket = h
            .open(NewAccount::new(Unit::Cny, owner, AccountType::GoalPocket).max_balance(1_000))
            .await
            .id;
        h.ledger
            .create_pending(
                TransferRequest::single(key("h"), Unit::Cny, bank, pocket, amount(800)),
                None,
            )
            .await
            .expect("hold");
        let err = h
            .ledger
            .transfer(TransferRequest::single(key("t"), Unit::Cny, bank, pocket, amount(201)))
            .await
            .expect_err("ceiling");
        assert_eq!(err.slug(), "limit-exceeded");
        h.move_cny("fits", bank, pocket, 200).await;
        h.assert_consistent().await;
    }
}
