//! The invariant check must find what it claims to check: a balance that no longer equals
//! its entries, a hold the balance does not reflect, and value that does not sum to zero.

use huoban_kit::testing::BACKENDS;
use huoban_ledger::{TransferRequest, Unit};

use crate::support::{amount, harness, key};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_invariant_check_finds_tampered_balances_holds_and_entries() {
    for backend in BACKENDS {
        let Some(h) = harness(backend).await else {
            continue;
        };
        let bank = h.clearing(Unit::Cny).await;
        let alice = h.customer("alice").await;
        let bob = h.customer("bob").await;
        h.move_cny("fund", bank, alice, 10_000).await;
        h.ledger
            .create_pending(
                TransferRequest::single(key("hold"), Unit::Cny, alice, bob, amount(300)),
                None,
            )
            .await
            .expect("hold");
        h.assert_consistent().await;

        // A balance edited behind the ledger's back.
        sqlx::query("UPDATE ledger_accounts SET posted = posted + 1 WHERE id = $1")
            .bind(alice.to_string())
            .execute(h.db.writer())
            .await
            .expect("tamper");
        let report = h.ledger.invariants().await.expect("check");
        assert!(
            report
                .violations
                .iter()
                .any(|v| v.contains(&alice.to_string()) && v.contains("entries sum")),
            "{backend:?}: {:?}",
            report.violations
        );
        sqlx::query("UPDATE ledger_accounts SET posted = posted - 1 WHERE id = $1")
            .bind(alice.to_string())
            .execute(h.db.writer())
            .await
            .expect("undo");
        h.assert_consistent().await;

        // A hold that the paying balance no longer reflects.
        sqlx::query("UPDATE ledger_accounts SET pending_out = 0 WHERE id = $1")
            .bind(alice.to_string())
            .execute(h.db.writer())
            .await
            .expect("tamper");
        let report = h.ledger.invariants().await.expect("check");
        assert!(
            report
                .violations
                .iter()
                .any(|v| v.contains(&alice.to_string()) && v.contains("open holds are 300/0")),
            "{backend:?}: {:?}",
            report.violations
        );
        sqlx::query("UPDATE ledger_accounts SET pending_out = 300 WHERE id = $1")
            .bind(alice.to_string())
            .execute(h.db.writer())
            .await
            .expect("undo");
        h.assert_consistent().await;

        // Value from nowhere: an entry without its balancing twin.
        let fund: (String,) = sqlx::query_as("SELECT transfer_id FROM ledger_entries WHERE account_id = $1")
            .bind(alice.to_string())
            .fetch_one(h.db.reader())
            .await
            .expect("query");
        sqlx::query(
            "INSERT INTO ledger_entries (id, account_id, transfer_id, leg, unit, amount, merchant_category, at) \
             SELECT 'ffffffff-ffff-7fff-bfff-ffffffffffff', account_id, transfer_id, leg, unit, amount, merchant_category, at \
             FROM ledger_entries WHERE account_id = $1 AND transfer_id = $2",
        )
        .bind(alice.to_string())
        .bind(&fund.0)
        .execute(h.db.writer())
        .await
        .expect("forged entry");
        let report = h.ledger.invariants().await.expect("check");
        assert!(
            report
                .violations
                .iter()
                .any(|v| v.contains("sum to") && v.contains("not 0")),
            "{backend:?}: {:?}",
            report.violations
        );
        assert!(
            report
                .violations
                .iter()
                .any(|v| v.contains(&fund.0) && v.contains("entries do not match")),
            "{backend:?}: {:?}",
            report.violations
        );
    }
}
