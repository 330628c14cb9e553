//! The balance alert listener: hears every transfer this node's ledger posts, finds the
//! alert subscriptions on the accounts it touched, evaluates the rules in
//! [`crate::domain::evaluate`] and leaves an inbox message (which the inbox pushes live
//! over SSE).
//!
//! It runs beside the API ([`AccountsService::spawn_alert_listener`]). Transfers that
//! arrive together are handled as one group with one subscription query, so the listener
//! keeps up with group-committed bursts; the inbox dedupe key
//! `alert:{subscription}:{transfer}` makes a message land at most once per subscription
//! and transfer even if a transfer were heard twice.

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
};

use huoban_identity::Locale;
use huoban_inbox::NewMessage;
use huoban_kit::ApiError;
use huoban_ledger::{Account, AccountId, PostingQuery, Transfer, TransferId};
use uuid::Uuid;

use crate::{
    domain::{self, AccountEvent},
    service::AccountsService,
    store::AlertRow,
};

/// Most transfers handled as one group.
const GROUP: usize = 512;
/// How many of an account's newest postings are searched for a transfer when working out
/// the balance right after it.
const BALANCE_LOOKBACK: u32 = 100;

impl AccountsService {
    /// Subscribes now (so nothing posted after this call is missed) and handles posted
    /// transfers until the ledger stops.
    pub fn spawn_alert_listener(&self) -> tokio::task::JoinHandle<()> {
        let mut posted = self.ledger().listen("balance alerts");
        let service = self.clone();
        tokio::spawn(async move {
            while let Some(group) = posted.next_group(GROUP).await {
                if let Err(e) = service.handle_posted(&group).await {
                    tracing::warn!(error = %e, transfers = group.len(), "balance alerts not evaluated");
                }
            }
        })
    }

    /// Evaluates every subscription on the accounts the transfers touched.
    #[tracing::instrument(skip_all, fields(transfers = transfers.len()))]
    pub async fn handle_posted(&self, transfers: &[Arc<Transfer>]) -> Result<usize, ApiError> {
        let touched: BTreeSet<String> = transfers
            .iter()
            .flat_map(|t| t.legs.iter().flat_map(|l| [l.debit.to_string(), l.credit.to_string()]))
            .collect();
        let touched: Vec<String> = touched.into_iter().collect();
        let subscriptions = self.alert_store().on_accounts(&touched).await?;
        if subscriptions.is_empty() {
            return Ok(0);
        }
        let mut by_account: HashMap<Uuid, Vec<&AlertRow>> = HashMap::new();
        for s in &subscriptions {
            by_account.entry(s.account_id).or_default().push(s);
        }
        let mut accounts: HashMap<Uuid, Account> = HashMap::new();
        let mut locales: HashMap<Uuid, Locale> = HashMap::new();
        let mut delivered = 0;
        for transfer in transfers {
            let movements = match transfer.movements() {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, transfer = %transfer.id, "transfer movements unreadable");
                    continue;
                }
            };
            for (account_id, movement) in movements {
                let Some(subs) = by_account.get(&account_id.as_uuid()) else {
                    continue;
                };
                let mut event = AccountEvent {
                    debited: movement.out,
                    credited: movement.r#in,
                    category: transfer.meta.merchant_category.as_deref(),
                    balance_after: None,
                };
                if subs.iter().any(|s| s.rule.needs_balance(&event)) {
                    event.balance_after = self.balance_after(account_id, transfer.id).await?;
                }
                for sub in subs {
                    let Some(firing) = domain::evaluate(&sub.rule, &event) else {
                        continue;
                    };
                    // One customer's failure (say, a profile that cannot be read) must not
                    // cost the other subscriptions of the group their messages.
                    match self
                        .deliver_alert(sub, transfer, &firing, &mut accounts, &mut locales)
                        .await
                    {
                        Ok(fresh) => delivered += usize::from(fresh),
                        Err(e) => {
                            tracing::warn!(error = %e, alert = %sub.id, transfer = %transfer.id, "alert not delivered")
                        }
                    }
                }
            }
        }
        Ok(delivered)
    }

    /// Leaves the inbox message of a fired alert; false when it had been left before.
    async fn deliver_alert(
        &self,
        sub: &AlertRow,
        transfer: &Transfer,
        firing: &domain::Firing,
        accounts: &mut HashMap<Uuid, Account>,
        locales: &mut HashMap<Uuid, Locale>,
    ) -> Result<bool, ApiError> {
        let account = match accounts.get(&sub.account_id) {
            Some(a) => a.clone(),
            None => {
                let a = self.ledger().account(AccountId::from(sub.account_id)).await?;
                accounts.insert(sub.account_id, a.clone());
                a
            }
        };
        let locale = match locales.get(&sub.customer_id) {
            Some(l) => *l,
            None => {
                let l = self.identity().profile(sub.customer_id).await?.locale;
                locales.insert(sub.customer_id, l);
                l
            }
        };
        let label = account.label.as_deref().unwrap_or(account.account_type.as_str());
        let (title, body) = domain::alert_message(firing, label, account.unit, locale);
        let mut data = domain::alert_data(firing);
        if let Some(fields) = data.as_object_mut() {
            fields.insert("alert_id".into(), sub.id.to_string().into());
            fields.insert("alert_kind".into(), sub.rule.kind().into());
            fields.insert("account_id".into(), sub.account_id.to_string().into());
            fields.insert("transfer_id".into(), transfer.id.to_string().into());
            fields.insert("currency".into(), account.unit.as_str().into());
        }
        let message = self
            .inbox()
            .deliver(NewMessage {
                customer_id: sub.customer_id,
                kind: "balance_alert".into(),
                title,
                body,
                link: Some(format!("/accounts/{}", sub.account_id)),
                data,
                dedupe_key: Some(domain::alert_dedupe_key(sub.id, transfer.id)),
            })
            .await?;
        Ok(message.is_some())
    }

    /// The account's posted balance right after `transfer`: its balance now, less what
    /// was posted to it since. The balance is read before and after the postings and the
    /// pair is only trusted when nothing moved in between; `None` when the transfer is
    /// no longer among the newest postings or the account keeps moving (the alert is then
    /// skipped rather than guessed).
    async fn balance_after(&self, account: AccountId, transfer: TransferId) -> Result<Option<i64>, ApiError> {
        for _ in 0..3 {
            let before = self.ledger().balance(account).await?.posted;
            let newest = self
                .ledger()
                .postings(
                    account,
                    &PostingQuery {
                        limit: BALANCE_LOOKBACK,
                        ..PostingQuery::default()
                    },
                )
                .await?;
            let after = self.ledger().balance(account).await?.posted;
            if before != after {
                continue;
            }
            let mut since: i64 = 0;
            for p in &newest.items {
                if p.transfer_id == transfer {
                    return Ok(after.checked_sub(since));
                }
                since = since.saturating_add(match p.direction {
                    huoban_ledger::Direction::Debit => -p.amount,
                    huoban_ledger::Direction::Credit => p.amount,
                });
            }
            return Ok(None);
        }
        Ok(None)
    }
}
