//! A property test of the whole ledger against an in-memory model: random sequences of
//! transfers, holds, posts, voids, replays, expiries and doomed commands are run against
//! the real store on both backends; after every step each balance equals the model's,
//! every result is the one the model predicts, and at the end the invariants hold.

use std::collections::BTreeMap;

use huoban_kit::{Backend, Clock, testing::BACKENDS};
use huoban_ledger::{
    AccountId, AccountType, Balance, LedgerError, NewAccount, Owner, OwnerKind, TransferId, TransferRequest, Unit,
};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

use crate::support::{Harness, amount, harness, key};

const HOLD_LIFETIME: SignedDuration = SignedDuration::from_mins(10);

#[derive(Debug, Clone)]
enum Op {
    Transfer {
        from: usize,
        to: usize,
        amount: i64,
    },
    Hold {
        from: usize,
        to: usize,
        amount: i64,
        expires: bool,
    },
    Post(usize),
    Void(usize),
    Replay(usize),
    ReuseKey(usize),
    ToUnknownAccount,
    UnitMismatch,
    Advance(i64),
    Sweep,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..4, 0usize..4, 1i64..1_500).prop_map(|(from, to, amount)| Op::Transfer { from, to, amount }),
        3 => (0usize..4, 0usize..4, 1i64..1_500, any::<bool>())
            .prop_map(|(from, to, amount, expires)| Op::Hold { from, to, amount, expires }),
        2 => (0usize..16).prop_map(Op::Post),
        2 => (0usize..16).prop_map(Op::Void),
        1 => (0usize..16).prop_map(Op::Replay),
        1 => (0usize..16).prop_map(Op::ReuseKey),
        1 => Just(Op::ToUnknownAccount),
        1 => Just(Op::UnitMismatch),
        1 => (1i64..25).prop_map(Op::Advance),
        1 => Just(Op::Sweep),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct ModelAccount {
    posted: i64,
    out: i64,
    into: i64,
    allow_negative: bool,
    max: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum HoldState {
    Open,
    Posted,
    Voided,
    Expired,
}

#[derive(Debug, Clone)]
struct ModelHold {
    id: TransferId,
    from: usize,
    to: usize,
    amount: i64,
    expires_at: Option<Timestamp>,
    state: HoldState,
}

struct Model {
    accounts: Vec<ModelAccount>,
    holds: Vec<ModelHold>,
    /// Accepted direct transfers: the request and the transfer id it got.
    transfers: Vec<(TransferRequest, TransferId)>,
}

impl Model {
    /// The slugs a transfer (or hold) of `amount` from `from` to `to` may be refused
    /// with, or an empty list when it must succeed. Both limits can be broken at once;
    /// the ledger then names whichever account it checks first.
    fn refusals(&self, from: usize, to: usize, amount: i64, hold: bool) -> Vec<&'static str> {
        if from == to {
            return vec!["same-account"];
        }
        let (f, t) = (&self.accounts[from], &self.accounts[to]);
        let mut refusals = Vec::new();
        let short = if hold {
            f.posted - f.out - amount < 0
        } else {
            f.posted - amount - f.out < 0
        };
        if short && !f.allow_negative {
            refusals.push("insufficient-funds");
        }
        if t.max.is_some_and(|max| t.posted + t.into + amount > max) {
            refusals.push("limit-exceeded");
        }
        refusals
    }
}

struct Run {
    h: Harness,
    ids: Vec<AccountId>,
    points: AccountId,
    model: Model,
    step: usize,
}

fn slug<T>(result: &Result<T, LedgerError>) -> Option<&'static str> {
    result.as_ref().err().map(LedgerError::slug)
}

impl Run {
    async fn start(backend: Backend) -> Option<Run> {
        let h = harness(backend).await?;
        let customer = |name: &str| Owner::new(OwnerKind::Customer, name).expect("owner");
        let clearing = h.clearing(Unit::Cny).await;
        let a = h.customer("a").await;
        let b = h.customer("b").await;
        let capped = h
            .open(NewAccount::new(Unit::Cny, customer("c"), AccountType::Savings).max_balance(3_000))
            .await
            .id;
        let points = h.clearing(Unit::Points).await;
        h.move_cny("seed-a", clearing, a, 2_000).await;
        h.move_cny("seed-b", clearing, b, 1_000).await;
        let plain = ModelAccount::default();
        let accounts = vec![
            ModelAccount {
                posted: -3_000,
                allow_negative: true,
                ..plain
            },
            ModelAccount { posted: 2_000, ..plain },
            ModelAccount { posted: 1_000, ..plain },
            ModelAccount {
                max: Some(3_000),
                ..plain
            },
        ];
        Some(Run {
            h,
            ids: vec![clearing, a, b, capped],
            points,
            model: Model {
                accounts,
                holds: Vec::new(),
                transfers: Vec::new(),
            },
            step: 0,
        })
    }

    fn request(&mut self, from: usize, to: usize, n: i64) -> TransferRequest {
        self.step += 1;
        TransferRequest::single(
            key(format!("op-{}", self.step)),
            Unit::Cny,
            self.ids[from],
            self.ids[to],
            amount(n),
        )
    }

    async fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let ledger = self.h.ledger.clone();
        let now = self.h.clock.now();
        match *op {
            Op::Transfer { from, to, amount: n } => {
                let expected = self.model.refusals(from, to, n, false);
                let request = self.request(from, to, n);
                let result = ledger.transfer(request.clone()).await;
                match &result {
                    Ok(outcome) => {
                        prop_assert!(expected.is_empty(), "{op:?} succeeded, expected {expected:?}");
                        self.model.accounts[from].posted -= n;
                        self.model.accounts[to].posted += n;
                        self.model.transfers.push((request, outcome.transfer.id));
                    }
                    Err(e) => prop_assert!(expected.contains(&e.slug()), "{op:?}: {e}, expected {expected:?}"),
                }
            }
            Op::Hold {
                from,
                to,
                amount: n,
                expires,
            } => {
                let expected = self.model.refusals(from, to, n, true);
                let request = self.request(from, to, n);
                let result = ledger.create_pending(request, expires.then_some(HOLD_LIFETIME)).await;
                match &result {
                    Ok(outcome) => {
                        prop_assert!(expected.is_empty(), "{op:?} succeeded, expected {expected:?}");
                        self.model.accounts[from].out += n;
                        self.model.accounts[to].into += n;
                        self.model.holds.push(ModelHold {
                            id: outcome.transfer.id,
                            from,
                            to,
                            amount: n,
                            expires_at: expires.then(|| now + HOLD_LIFETIME),
                            state: HoldState::Open,
                        });
                    }
                    Err(e) => prop_assert!(expected.contains(&e.slug()), "{op:?}: {e}, expected {expected:?}"),
                }
            }
            Op::Post(i) | Op::Void(i) => {
                if self.model.holds.is_empty() {
                    return Ok(());
                }
                let post = matches!(op, Op::Post(_));
                let index = i % self.model.holds.len();
                let hold = self.model.holds[index].clone();
                let result = if post {
                    ledger.post_pending(hold.id).await
                } else {
                    ledger.void_pending(hold.id).await
                };
                let expired_now = hold.expires_at.is_some_and(|at| at <= now);
                let expected = match hold.state {
                    HoldState::Open if post && expired_now => Some("pending-expired"),
                    HoldState::Open => None,
                    HoldState::Posted => Some("pending-already-posted"),
                    HoldState::Voided => Some("pending-already-voided"),
                    HoldState::Expired => Some("pending-expired"),
                };
                prop_assert_eq!(slug(&result), expected, "{:?} of {:?}", op, hold);
                if result.is_ok() {
                    let accounts = &mut self.model.accounts;
                    accounts[hold.from].out -= hold.amount;
                    accounts[hold.to].into -= hold.amount;
                    if post {
                        accounts[hold.from].posted -= hold.amount;
                        accounts[hold.to].posted += hold.amount;
                    }
                    self.model.holds[index].state = if post { HoldState::Posted } else { HoldState::Voided };
                }
            }
            Op::Replay(i) | Op::ReuseKey(i) => {
                if self.model.transfers.is_empty() {
                    return Ok(());
                }
                let (request, id) = self.model.transfers[i % self.model.transfers.len()].clone();
                if matches!(op, Op::Replay(_)) {
                    let outcome = ledger.transfer(request).await;
                    prop_assert!(
                        matches!(&outcome, Ok(o) if o.replayed && o.transfer.id == id),
                        "replay: {:?}",
                        outcome
                    );
                } else {
                    let changed = TransferRequest {
                        legs: vec![huoban_ledger::Leg {
                            amount: amount(request.legs[0].amount.get() + 1),
                            ..request.legs[0]
                        }],
                        ..request
                    };
                    prop_assert_eq!(slug(&ledger.transfer(changed).await), Some("idempotency-key-mismatch"));
                }
            }
            Op::ToUnknownAccount => {
                let mut request = self.request(1, 2, 1);
                request.legs[0].credit = AccountId::new();
                prop_assert_eq!(slug(&ledger.transfer(request).await), Some("unknown-account"));
            }
            Op::UnitMismatch => {
                let mut request = self.request(1, 2, 1);
                request.legs[0].debit = self.points;
                prop_assert_eq!(slug(&ledger.transfer(request).await), Some("unit-mismatch"));
            }
            Op::Advance(minutes) => self.h.clock.advance(SignedDuration::from_mins(minutes)),
            Op::Sweep => {
                let voided = ledger.void_expired(now).await;
                let mut expected = 0;
                for hold in &mut self.model.holds {
                    if hold.state == HoldState::Open && hold.expires_at.is_some_and(|at| at <= now) {
                        hold.state = HoldState::Expired;
                        self.model.accounts[hold.from].out -= hold.amount;
                        self.model.accounts[hold.to].into -= hold.amount;
                        expected += 1;
                    }
                }
                prop_assert_eq!(voided.ok(), Some(expected));
            }
        }
        self.check_balances(op).await
    }

    async fn check_balances(&self, op: &Op) -> Result<(), TestCaseError> {
        let mut actual = BTreeMap::new();
        let mut expected = BTreeMap::new();
        for (i, id) in self.ids.iter().enumerate() {
            let m = self.model.accounts[i];
            actual.insert(i, self.h.ledger.balance(*id).await.expect("balance"));
            expected.insert(
                i,
                Balance {
                    posted: m.posted,
                    pending_out: m.out,
                    pending_in: m.into,
                },
            );
        }
        prop_assert_eq!(actual, expected, "after {:?} on {:?}", op, self.h.backend);
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, max_shrink_iters: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_ledger_agrees_with_a_model_under_random_commands(ops in proptest::collection::vec(op(), 30)) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            for backend in BACKENDS {
                let Some(mut run) = Run::start(backend).await else { continue };
                for op in &ops {
                    run.apply(op).await?;
                }
                let report = run.h.ledger.invariants().await.expect("invariants");
                prop_assert!(report.is_ok(), "{:?}: {:?}", backend, report.violations);
            }
            Ok(())
        })?;
    }
}
