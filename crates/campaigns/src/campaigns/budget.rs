//! Campaign budgets on the ledger.
//!
//! A campaign's points budget is a ledger account of its own (owner `campaign`, type
//! `budget`, POINTS, never below zero), funded from the bank's points clearing account in
//! the transaction that creates the campaign or changes a draft's budget. Every award
//! the campaign makes — a rule firing, a task claim — is a ledger transfer out of that
//! account, posted inside the transaction that records the award
//! ([`huoban_ledger::Ledger::transfer_in`]). The ledger decides each transfer against the
//! locked balance, so the campaign can never pay more than its budget, whoever pays and
//! however many nodes race on the last points; points used and left are read from the
//! account's balance.
//!
//! Coupon budgets are counts (`coupons_used` against `coupon_cap` on the campaign row),
//! taken by a guarded update in the same transaction that grants the coupons.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use huoban_accounts::{AccountsService, StandardKind};
use huoban_kit::{ApiError, ids::new_id};
use huoban_ledger::{
    AccountId, AccountType, Amount, IdempotencyKey, InTransaction, Ledger, NewAccount, Owner, OwnerKind, TransferMeta,
    TransferRequest, Unit,
};
use serde_json::json;
use uuid::Uuid;

/// The ledger category of points paid by campaigns (counted toward levels).
pub const REWARDS_CATEGORY: &str = "rewards";
/// Idempotency scope of the transfers that fund a budget.
pub const FUND_SCOPE: &str = "campaign-budget";
/// Most customers' points accounts remembered between batches.
const ACCOUNT_CACHE: usize = 1_000_000;

/// The budget account a campaign opens (idempotent by its external reference).
pub fn account_spec(campaign: Uuid) -> NewAccount {
    NewAccount::new(
        Unit::Points,
        Owner {
            kind: OwnerKind::Campaign,
            id: campaign.hyphenated().to_string(),
        },
        AccountType::Budget,
    )
    .label("活动积分预算 Campaign points budget")
    .external_ref(format!("campaign:{}:points", campaign.hyphenated()))
}

/// The answer of an in-transaction posting whose every transfer must go through: the
/// first refusal becomes the problem (the caller's transaction is then dropped, which
/// rolls it back).
pub fn all_posted(answer: InTransaction) -> Result<InTransaction, ApiError> {
    if answer.results.iter().all(Result::is_ok) {
        return Ok(answer);
    }
    Err(answer
        .results
        .into_iter()
        .find_map(Result::err)
        .map_or_else(|| ApiError::internal("a transfer was refused"), ApiError::from))
}

/// Ledger access for budgets; cheap to clone.
#[derive(Debug, Clone)]
pub struct Budgets {
    ledger: Ledger,
    accounts: AccountsService,
    /// Customer → points account: accounts never change, so one lookup serves for good.
    points: Arc<Mutex<HashMap<Uuid, AccountId>>>,
}

impl Budgets {
    pub fn new(ledger: Ledger, accounts: AccountsService) -> Self {
        Self {
            ledger,
            accounts,
            points: Arc::default(),
        }
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Opens (or finds) the campaign's budget account.
    pub async fn open(&self, campaign: Uuid) -> Result<AccountId, ApiError> {
        Ok(self.ledger.create_account(account_spec(campaign)).await?.id)
    }

    /// The transfer that moves `delta` points into the budget (out of it when negative),
    /// from or to the bank's points clearing account; `None` for no change.
    pub async fn funding(
        &self,
        campaign: Uuid,
        account: AccountId,
        delta: i64,
    ) -> Result<Option<TransferRequest>, ApiError> {
        if delta == 0 {
            return Ok(None);
        }
        let clearing = self.accounts.clearing(Unit::Points).await?;
        let (from, to) = if delta > 0 {
            (clearing, account)
        } else {
            (account, clearing)
        };
        // Each funding is its own transfer, committed with the campaign row it belongs to,
        // so a fresh key cannot double anything.
        let key = IdempotencyKey::new(FUND_SCOPE, format!("{campaign}:{}", new_id()))?;
        Ok(Some(
            TransferRequest::single(key, Unit::Points, from, to, Amount::new(delta.abs())?).with_meta(TransferMeta {
                description: Some("Campaign budget".to_owned()),
                metadata: Some(json!({ "source": "campaign_budget", "campaign": campaign })),
                ..TransferMeta::default()
            }),
        ))
    }

    /// Posts a [`Self::funding`] transfer inside the caller's transaction, all or nothing
    /// ([`all_posted`]); announce the answer once the transaction commits. (The funding is
    /// prepared before the transaction: it may open the clearing account, a write of its
    /// own.)
    pub async fn fund_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        funding: Option<TransferRequest>,
    ) -> Result<InTransaction, ApiError> {
        all_posted(self.ledger.transfer_in(conn, funding.into_iter().collect()).await?)
    }

    /// An award of `points` from a budget account to a customer's points account.
    pub fn award(
        key: IdempotencyKey,
        budget: AccountId,
        customer_points: AccountId,
        points: i64,
        description: &str,
        metadata: serde_json::Value,
    ) -> Result<TransferRequest, ApiError> {
        Ok(
            TransferRequest::single(key, Unit::Points, budget, customer_points, Amount::new(points)?).with_meta(
                TransferMeta {
                    description: Some(description.to_owned()),
                    merchant_category: Some(REWARDS_CATEGORY.to_owned()),
                    metadata: Some(metadata),
                    ..TransferMeta::default()
                },
            ),
        )
    }

    /// Points left in these budget accounts (what they can still pay).
    pub async fn left(&self, accounts: &[AccountId]) -> Result<HashMap<AccountId, i64>, ApiError> {
        Ok(self
            .ledger
            .accounts(accounts)
            .await?
            .into_iter()
            .map(|a| (a.id, i64::try_from(a.balance.available()).unwrap_or(0).max(0)))
            .collect())
    }

    /// The points accounts of these customers, opened where missing: one read for those
    /// not seen before.
    pub async fn points_accounts(&self, customers: &[Uuid]) -> Result<HashMap<Uuid, AccountId>, ApiError> {
        let mut found = HashMap::with_capacity(customers.len());
        let mut missing = Vec::new();
        {
            let cache = self.points.lock().unwrap_or_else(|e| e.into_inner());
            for c in customers {
                match cache.get(c) {
                    Some(a) => {
                        found.insert(*c, *a);
                    }
                    None => missing.push(*c),
                }
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let refs: Vec<String> = missing.iter().map(|c| StandardKind::Points.external_ref(*c)).collect();
        let mut by_ref: HashMap<String, AccountId> = self
            .ledger
            .accounts_by_refs(&refs)
            .await?
            .into_iter()
            .filter_map(|a| Some((a.external_ref?, a.id)))
            .collect();
        let mut learned = Vec::with_capacity(missing.len());
        for (c, r) in missing.iter().zip(&refs) {
            let account = match by_ref.remove(r) {
                Some(a) => a,
                None => self.accounts.ensure_standard_accounts(*c).await?.points,
            };
            found.insert(*c, account);
            learned.push((*c, account));
        }
        let mut cache = self.points.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() + learned.len() > ACCOUNT_CACHE {
            cache.clear();
        }
        cache.extend(learned);
        Ok(found)
    }
}
