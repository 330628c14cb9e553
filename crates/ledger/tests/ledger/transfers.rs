//! Posting transfers, reading them back, listing postings and monthly statements.

use huoban_kit::testing::BACKENDS;
use huoban_ledger::{
    AccountType, Direction, Leg, NewAccount, Owner, OwnerKind, PostingQuery, TransferMeta, TransferRequest,
    TransferStatus, Unit,
};
use jiff::SignedDuration;

use crate::support::{amount, harness, key};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_moves_value_and_can_be_read_back() {
    for backend in BACKENDS {
        let Some(h) = harness(backend).await else {
            continue;
        };
        let bank = h.clearing(Unit::Cny).await;
        let alice = h.customer("alice").await;
        let meta = TransferMeta {
            description: Some("salary".into()),
            merchant_category: None,
            channel: Some("batch".into()),
            event_id: Some("evt-1".into()),
            metadata: Some(serde_json::json!({"payroll": "2026-03"})),
        };
        let outcome = h
            .ledger
            .transfer(
                TransferRequest::single(key("pay-1"), Unit::Cny, bank, alice, amount(10_000)).with_meta(meta.clone()),
            )
            .await
            .expect("transfer");
        assert!(!outcome.replayed);
        assert_eq!(outcome.transfer.status, TransferStatus::Posted);
        assert_eq!(h.posted(alice).await, 10_000);
        assert_eq!(h.posted(bank).await, -10_000);

        let stored = h.ledger.get_transfer(outcome.transfer.id).await.expect("by id");
        assert_eq!(
            stored, outcome.transfer,
            "{backend:?}: the stored transfer is what was acknowledged"
        );
        assert_eq!(stored.meta, meta);
        let by_key = h.ledger.transfer_by_key(&key("pay-1")).await.expect("by key");
        assert_eq!(by_key.id, outcome.transfer.id);
        h.assert_consistent().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_leg_transfer_splits_a_payment_atomically() {
    for backend in BACKENDS {
        let Some(h) = harness(backend).await else {
            continue;
        };
        let bank = h.clearing(Unit::Cny).await;
        let (alice, shop, fees) = (
            h.customer("alice").await,
            h.customer("shop").await,
            h.customer("fees").await,
        );
        h.move_cny("fund", bank, alice, 1_000).await;
        let split = TransferRequest {
            key: key("buy"),
            unit: Unit::Cny,
            legs: vec![Leg::new(alice, shop, amount(970)), Leg::new(alice, fees, amount(30))],
            meta: TransferMeta::default(),
        };
        h.ledger.transfer(split.clone()).await.expect("split");
        assert_eq!(
            (h.posted(alice).await, h.posted(shop).await, h.posted(fees).await),
            (0, 970, 30)
        );
        // One more fen than alice has, across two legs: refused as a whole.
        h.move_cny("refund", shop, alice, 1).await;
        let too_much = TransferRequest {
            key: key("buy-2"),
            legs: vec![Leg::new(alice, shop, amount(1)), Leg::new(alice, fees, amount(1))],
            ..split
        };
        assert!(h.ledger.transfer(too_much).await.is_err());
        assert_eq!(
            (h.posted(alice).await, h.posted(shop).await, h.posted(fees).await),
            (1, 969, 30)
        );
        h.assert_consistent().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_transfer_moves_two_units_all_or_nothing() {
    for backend in BACKENDS {
        let Some(h) = harness(backend).await else {
            continue;
        };
        let (bank_cny, bank_points) = (h.clearing(Unit::Cny).await, h.clearing(Unit::Points).await);
        let pocket = h.customer("alice-pocket").await;
        let points = h
            .open(NewAccount::new(
                Unit::Points,
                Owner::new(OwnerKind::Customer, "alice").expect("owner"),
                AccountType::Points,
            ))
            .await
            .id;
        h.ledger
            .transfer(TransferRequest::single(
                key("grant"),
                Unit::Points,
                bank_points,
                points,
                amount(500),
            ))
            .await
            .expect("points granted");
        // 300 points in, ¥3 out to the pocket: one transfer in CNY with a points leg.
        let convert = |k: &str, pts: i64, fen: i64| TransferRequest {
            key: key(k),
            unit: Unit::Cny,
            legs: vec![
                Leg::in_unit(Unit::Points, points, bank_points, amount(pts)),
                Leg::new(bank_cny, pocket, amount(fen)),
            ],
            meta: TransferMeta::default(),
        };
        let done = h
            .ledger
            .transfer(convert("convert-1", 300, 300))
            .await
            .expect("converted");
        assert_eq!((h.posted(points).await, h.posted(pocket).await), (200, 300));
        assert_eq!((h.posted(bank_points).await, h.posted(bank_cny).await), (-200, -300));
        // Read back with each leg's unit; a replay moves nothing more.
        let stored = h.ledger.get_transfer(done.transfer.id).await.expect("stored");
        assert_eq!(stored.legs[0].unit, Some(Unit::Points), "{backend:?}");
        assert_eq!(stored.legs[1].unit, None);
        let again = h.ledger.transfer(convert("convert-1", 300, 300)).await.expect("replay");
        assert!(again.replayed);
        assert_eq!(h.posted(points).await, 200);
        // Too few points: neither unit moves.
        let before = h.snapshot().await;
        let refused = h.ledger.transfer(convert("convert-2", 300, 300)).await;
        assert!(
            matches!(refused, Err(huoban_ledger::LedgerError::InsufficientFunds { .. })),
            "{refused:?}"
        );
        assert_eq!(h.snapshot().await, before, "nothing moved");
        // A leg whose accounts hold another unit, and an account in legs of two units.
        let wrong = TransferRequest {
            legs: vec![Leg::in_unit(Unit::Points, bank_cny, pocket, amount(1))],
            ..convert("convert-3", 1, 1)
        };
        assert!(matches!(
            h.ledger.transfer(wrong).await,
            Err(huoban_ledger::LedgerError::UnitMismatch { .. })
        ));
        let mixed = TransferRequest {
            legs: vec![
                Leg::in_unit(Unit::Points, points, bank_points, amount(1)),
                Leg::new(points, pocket, amount(1)),
            ],
            ..convert("convert-4", 1, 1)
        };
        assert!(matches!(
            h.ledger.transfer(mixed).await,
            Err(huoban_ledger::LedgerError::InvalidTransfer(_))
        ));
        // Holds stay in one unit.
        assert!(matches!(
            h.ledger.create_pending(convert("convert-5", 1, 1), None).await,
            Err(huoban_ledger::LedgerError::InvalidTransfer(_))
        ));
        h.assert_consistent().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postings_are_listed_newest_first_with_filters_and_cursors() {
    for backend in BACKENDS {
        let Some(h) = harness(backend).await else {
            continue;
        };
        let bank = h.clearing(Unit::Cny).await;
        let alice = h.customer("alice").await;
        let shop = h.customer("shop").await;
        h.move_cny("fund", bank, alice, 10_000).await;
        let mut spends = Vec::new();
        for (i, category) in ["food", "travel", "food", "food", "books"].iter().enumerate() {
            h.clock.advance(SignedDuration::from_hours(1));
            let meta = TransferMeta {
                merchant_category: Some((*category).into()),
                description: Some(format!("spend {i}")),
                ..TransferMeta::default()
            };
            let t = h
                .ledger
                .transfer(
                    TransferRequest::single(
                        key(format!("spend-{i}")),
                        Unit::Cny,
                        alice,
                        shop,
                        amount(100 + i as i64),
                    )
                    .with_meta(meta),
                )
                .await
                .expect("spend");
            spends.push(t.transfer);
        }

        let all = h.ledger.postings(alice, &PostingQuery::default()).await.expect("list");
        assert_eq!(all.items.len(), 6);
        assert!(all.next_cursor.is_none());
        assert_eq!(all.items[0].transfer_id, spends[4].id, "newest first");
        assert_eq!(all.items[0].direction, Direction::Debit);
        assert_eq!(all.items[0].amount, 104);
        assert_eq!(all.items[0].description.as_deref(), Some("spend 4"));
        assert_eq!(all.items[5].direction, Direction::Credit);

        let food = h
            .ledger
            .postings(
                alice,
                &PostingQuery {
                    merchant_category: Some("food".into()),
                    ..PostingQuery::default()
                },
            )
            .await
            .expect("food");
        assert_eq!(
            food.items.iter().map(|p| p.amount).collect::<Vec<_>>(),
            vec![103, 102, 100]
        );

        let credits = h
            .ledger
            .postings(
                alice,
                &PostingQuery {
                    direction: Some(Direction::Credit),
                    ..PostingQuery::default()
                },
            )
            .await
            .expect("credits");
        assert_eq!(credits.items.len(), 1);
        assert_eq!(credits.items[0].amount, 10_000);

        // The window [spend 1, spend 3) by time.
        let window = h
            .ledger
            .postings(
                alice,
                &PostingQuery {
                    from: spends[1].posted_at,
                    to: spends[3].posted_at,
                    ..PostingQuery::default()
                },
            )
            .await
            .expect("window");
        assert_eq!(
            window.items.iter().map(|p| p.amount).collect::<Vec<_>>(),
            vec![102, 101]
        );

        // Pages of two, following cursors, cover every posting once.
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = h
                .ledger
                .postings(
                    alice,
                    &PostingQuery {
                        limit: 2,
                        after: after.clone(),
                        ..PostingQuery::default()
                    },
                )
                .await
                .expect("page");
            assert!(page.items.len() <= 2);
            seen.extend(page.items.iter().map(|p| p.id.clone()));
            match page.next_cursor {
                Some(cursor) => after = Some(huoban_kit::page::decode_cursor(&cursor).expect("cursor")),
                None => break,
            }
        }
        assert_eq!(seen, all.items.iter().map(|p| p.id.clone()).collect::<Vec<_>>());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monthly_statement_follows_the_customers_time_zone() {
    for backend in BACKENDS {
        let Some(h) = harness(backend).await else {
            continue;
        };
        let bank = h.clearing(Unit::Cny).await;
        let alice = h.customer("alice").await;
        let shop = h.customer("shop").await;
        let spend = |k: &'static str, n: i64, category: Option<&'static str>| {
            TransferRequest::single(key(k), Unit::Cny, alice, shop, amount(n)).with_meta(TransferMeta {
                merchant_category: category.map(str::to_owned),
                ..TransferMeta::default()
            })
        };
        h.clock.set("2026-01-20T00:00:00Z".parse().expect("ts"));
        h.move_cny("fund", bank, alice, 50_000).await;
        // 17:30 UTC on 31 January is 01:30 on 1 February in Shanghai.
        h.clock.set("2026-01-31T17:30:00Z".parse().expect("ts"));
        h.ledger.transfer(spend("s1", 1_000, Some("food"))).await.expect("s1");
        h.clock.set("2026-02-14T12:00:00Z".parse().expect("ts"));
        h.ledger.transfer(spend("s2", 3_000, Some("gifts"))).await.expect("s2");
        h.ledger.transfer(spend("s3", 500, Some("food"))).await.expect("s3");
        h.ledger.transfer(spend("s4", 200, None)).await.expect("s4");
        h.move_cny("bonus", bank, alice, 800).await;
        h.clock.set("2026-03-01T00:30:00Z".parse().expect("ts"));
        h.ledger.transfer(spend("s5", 7, Some("food"))).await.expect("s5");

        let feb = h
            .ledger
            .statement(alice, 2026, 2, "Asia/Shanghai")
            .await
            .expect("statement");
        assert_eq!(feb.opening_balance, 50_000);
        assert_eq!(feb.total_in, 800);
        assert_eq!(feb.total_out, 1_000 + 3_000 + 500 + 200);
        assert_eq!(feb.closing_balance, 50_000 + 800 - 4_700);
        let by_category: Vec<(Option<&str>, i64)> = feb
            .spending_by_category
            .iter()
            .map(|c| (c.merchant_category.as_deref(), c.amount))
            .collect();
        assert_eq!(
            by_category,
            vec![(Some("gifts"), 3_000), (Some("food"), 1_500), (None, 200)]
        );
        // 00:30 UTC on 1 March is already March in Shanghai.
        assert_eq!(
            h.ledger
                .statement(alice, 2026, 3, "Asia/Shanghai")
                .await
                .expect("march")
                .total_out,
            7
        );

        let feb_utc = h.ledger.statement(alice, 2026, 2, "UTC").await.expect("utc");
        assert_eq!(
            feb_utc.total_out,
            3_000 + 500 + 200,
            "s1 is January and s5 March in UTC"
        );
        assert!(h.ledger.statement(alice, 2026, 13, "Asia/Shanghai").await.is_err());
        assert!(h.ledger.statement(alice, 2026, 2, "Mars/Olympus").await.is_err());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_an_account_by_reference_is_idempotent() {
    for backend in BACKENDS {
        let Some(h) = harness(backend).await else {
            continue;
        };
        let owner = Owner::new(OwnerKind::Customer, "c-42").expect("owner");
        let new = NewAccount::new(Unit::Points, owner.clone(), AccountType::Points)
            .max_balance(1_000_000)
            .external_ref("points:c-42");
        let first = h.open(new.clone()).await;
        let again = h.open(new.clone()).await;
        assert_eq!(first.id, again.id);
        assert_eq!(first.limits.max_balance, Some(1_000_000));
        let pocket = h
            .open(NewAccount::new(Unit::Cny, owner.clone(), AccountType::GoalPocket).label("Trip to Chengdu"))
            .await;
        let mine = h.ledger.accounts_of(&owner).await.expect("owner's accounts");
        assert_eq!(mine.len(), 2);
        assert!(
            mine.iter()
                .any(|a| a.id == pocket.id && a.label.as_deref() == Some("Trip to Chengdu"))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_hear_of_each_posted_transfer_once_after_commit() {
    for backend in BACKENDS {
        let Some(h) = harness(backend).await else {
            continue;
        };
        let mut heard = h.ledger.subscribe();
        let bank = h.clearing(Unit::Cny).await;
        let alice = h.customer("alice").await;
        let first = h.move_cny("listen-1", bank, alice, 1_500).await;
        let replay = h.move_cny("listen-1", bank, alice, 1_500).await;
        assert!(replay.replayed);
        let mut ids = Vec::new();
        while let Ok(Ok(t)) = tokio::time::timeout(std::time::Duration::from_millis(200), heard.recv()).await {
            ids.push(t.id);
        }
        assert_eq!(ids, vec![first.transfer.id], "announced once; the replay is not news");
    }
}
