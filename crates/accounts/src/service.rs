//! [`AccountsService`]: what a customer (or a staff member with `ViewAccounts`) can do with
//! accounts — list them with balances, read history and statements, move money, and keep
//! balance alerts. It checks ownership and the domain rules, then calls the ledger, which
//! alone changes balances; the API types it answers with live here too.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::http::StatusCode;
use huoban_identity::{IdentityService, domain::Phone};
use huoban_inbox::InboxService;
use huoban_kit::{
    ApiError, Db, DbError, Page, PageQuery, SharedClock,
    clock::{from_micros, to_micros},
};
use huoban_ledger::{
    Account, AccountId, Amount, IdempotencyKey, Ledger, LedgerError, PostingQuery, Transfer, TransferMeta,
    TransferRequest, Unit,
};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    domain::{self, AlertRule, Bound, MAX_ALERTS_PER_CUSTOMER, Month, Payee, Refusal, StandardKind, customer_owner},
    store::{AlertRow, AlertStore},
};

/// The time zone used when a customer's profile names none the server knows.
const FALLBACK_TIME_ZONE: &str = "Asia/Shanghai";

/// The ids of a customer's three standard accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StandardAccounts {
    pub current: AccountId,
    pub savings: AccountId,
    pub points: AccountId,
}

/// An account's balances in minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BalanceView {
    /// Sum of everything posted.
    pub posted: i64,
    /// What can be spent now: posted minus outgoing holds.
    pub available: i64,
    /// Held for outgoing pending transfers.
    pub pending_out: i64,
    /// Promised by incoming pending transfers.
    pub pending_in: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AccountView {
    pub id: Uuid,
    /// `current`, `savings`, `points`, `goal_pocket`…
    #[serde(rename = "type")]
    pub account_type: String,
    /// `CNY` (amounts in fen) or `POINTS`.
    pub currency: String,
    pub label: Option<String>,
    pub balance: BalanceView,
    pub created_at: String,
}

/// One posting on an account: a transfer as this account saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TransactionView {
    pub id: String,
    pub transfer_id: Uuid,
    /// `debit` (money out) or `credit` (money in).
    pub direction: String,
    /// Positive, in minor units.
    pub amount: i64,
    pub currency: String,
    pub category: Option<String>,
    pub description: Option<String>,
    pub channel: Option<String>,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CategorySpend {
    /// `null` for spending without a category.
    pub category: Option<String>,
    pub amount: i64,
}

/// A calendar month of one account in the customer's time zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StatementView {
    pub account_id: Uuid,
    pub currency: String,
    /// `YYYY-MM`.
    pub month: String,
    pub time_zone: String,
    pub period_start: String,
    pub period_end: String,
    pub opening_balance: i64,
    pub closing_balance: i64,
    pub total_in: i64,
    pub total_out: i64,
    /// Outgoing totals by category, largest first.
    pub spending_by_category: Vec<CategorySpend>,
}

/// A transfer request. Give `to_account` (another of your accounts) or `to_phone`
/// (another customer, paid into their current account).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTransfer {
    pub from_account: Uuid,
    #[serde(default)]
    pub to_account: Option<Uuid>,
    #[serde(default)]
    #[schema(example = "13800000002")]
    pub to_phone: Option<String>,
    /// Minor units (fen), positive.
    pub amount: i64,
    #[schema(example = "CNY")]
    pub currency: String,
    #[serde(default)]
    pub description: Option<String>,
    /// One of salary, groceries, dining, transport, utilities, shopping, entertainment,
    /// health, education, transfer (the default).
    #[serde(default)]
    pub category: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TransferView {
    pub id: Uuid,
    /// `posted`.
    pub status: String,
    pub amount: i64,
    pub currency: String,
    pub from_account: Uuid,
    pub to_account: Uuid,
    pub description: Option<String>,
    pub category: Option<String>,
    pub created_at: String,
    /// Set when adaptive security delayed or held the transfer (status `pending`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<crate::gate::TransferRisk>,
}

/// History filters. Dates are RFC 3339 instants or `YYYY-MM-DD` in the customer's time
/// zone; `to` is exclusive for an instant and covers the whole day for a date.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    /// `debit` or `credit`.
    pub direction: Option<String>,
    pub category: Option<String>,
    /// 1 to 200, default 50.
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatementQuery {
    /// `YYYY-MM`; default the current month in the customer's time zone.
    pub month: Option<String>,
}

/// A balance alert subscription request.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAlert {
    /// `balance_below` (needs `threshold`), `debit_above` (needs `amount`) or
    /// `salary_received`.
    pub kind: String,
    pub account_id: Uuid,
    #[serde(default)]
    pub threshold: Option<i64>,
    #[serde(default)]
    pub amount: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AlertView {
    pub id: Uuid,
    pub kind: String,
    pub account_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
    pub created_at: String,
}

impl From<&AlertRow> for AlertView {
    fn from(row: &AlertRow) -> Self {
        let (threshold, amount) = match row.rule {
            AlertRule::BalanceBelow { threshold } => (Some(threshold), None),
            AlertRule::DebitAbove { amount } => (None, Some(amount)),
            AlertRule::SalaryReceived => (None, None),
        };
        AlertView {
            id: row.id,
            kind: row.rule.kind().to_owned(),
            account_id: row.account_id,
            threshold,
            amount,
            created_at: from_micros(row.created_at).to_string(),
        }
    }
}

/// Who reads an account's history.
#[derive(Debug, Clone, Copy)]
pub enum Viewer {
    /// A customer, who may read only their own accounts.
    Customer(Uuid),
    /// A staff member whose `ViewAccounts` permission was checked; the access is recorded.
    Staff(Uuid),
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        let detail = r.to_string();
        match r {
            Refusal::InvalidAmount(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-amount",
                "The amount is not valid",
            )
            .detail(detail)
            .with("field", "amount"),
            Refusal::InvalidField { field, detail } => ApiError::invalid_field(field, detail),
            Refusal::SameAccount => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "same-account",
                "Money cannot move from an account to itself",
            )
            .detail(detail),
        }
    }
}

pub fn not_your_account(id: Uuid) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "not-your-account", "This account is not yours")
        .detail(format!(
            "Account {id} belongs to someone else; pay other customers with to_phone."
        ))
        .with("account", id.to_string())
}

fn unknown_payee() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown-payee",
        "No customer has this phone number",
    )
    .detail("Check the payee's mobile number.")
    .with("field", "to_phone")
}

fn unknown_alert(id: Uuid) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "unknown-alert", "No such alert").detail(format!("You have no alert {id}."))
}

fn time_zone(name: &str) -> TimeZone {
    TimeZone::get(name)
        .or_else(|_| TimeZone::get(FALLBACK_TIME_ZONE))
        .unwrap_or(TimeZone::UTC)
}

pub(crate) fn account_view(a: &Account) -> AccountView {
    let clamp = |v: i128| i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX });
    AccountView {
        id: a.id.as_uuid(),
        account_type: a.account_type.as_str().to_owned(),
        currency: a.unit.as_str().to_owned(),
        label: a.label.clone(),
        balance: BalanceView {
            posted: a.balance.posted,
            available: clamp(a.balance.available()),
            pending_out: a.balance.pending_out,
            pending_in: a.balance.pending_in,
        },
        created_at: a.created_at.to_string(),
    }
}

fn transfer_view(t: &Transfer) -> Result<TransferView, ApiError> {
    // Customer transfers have one leg; anything else was not made by this endpoint.
    let [leg] = t.legs.as_slice() else {
        return Err(ApiError::internal(format!(
            "transfer {} has {} legs",
            t.id,
            t.legs.len()
        )));
    };
    Ok(TransferView {
        id: t.id.as_uuid(),
        status: t.status.as_str().to_owned(),
        amount: leg.amount.get(),
        currency: t.unit.as_str().to_owned(),
        from_account: leg.debit.as_uuid(),
        to_account: leg.credit.as_uuid(),
        description: t.meta.description.clone(),
        category: t.meta.merchant_category.clone(),
        // Stored instants keep microseconds; a fresh transfer still has nanoseconds, and a
        // replay must answer byte for byte what the first attempt answered.
        created_at: from_micros(to_micros(t.created_at)).to_string(),
        risk: None,
    })
}

#[derive(Debug)]
struct Inner {
    ledger: Ledger,
    identity: IdentityService,
    inbox: InboxService,
    clock: SharedClock,
    alerts: AlertStore,
    /// Clearing accounts never change once opened, so their ids are remembered instead
    /// of asking the database on every funding.
    clearing: Mutex<HashMap<Unit, AccountId>>,
    /// The checks transfers pass through (adaptive security), installed once at start.
    gate: std::sync::OnceLock<Arc<dyn crate::gate::TransferGate>>,
}

/// The accounts capability's handle; cheap to clone.
#[derive(Debug, Clone)]
pub struct AccountsService(Arc<Inner>);

impl AccountsService {
    pub fn new(db: Db, ledger: Ledger, identity: IdentityService, inbox: InboxService, clock: SharedClock) -> Self {
        Self(Arc::new(Inner {
            ledger,
            identity,
            inbox,
            clock,
            alerts: AlertStore::new(db),
            clearing: Mutex::new(HashMap::new()),
            gate: std::sync::OnceLock::new(),
        }))
    }

    /// Installs the transfer gate; only the first call counts.
    pub fn set_gate(&self, gate: Arc<dyn crate::gate::TransferGate>) {
        let _ = self.0.gate.set(gate);
    }

    pub fn ledger(&self) -> &Ledger {
        &self.0.ledger
    }

    pub fn identity(&self) -> &IdentityService {
        &self.0.identity
    }

    pub(crate) fn inbox(&self) -> &InboxService {
        &self.0.inbox
    }

    pub(crate) fn alert_store(&self) -> &AlertStore {
        &self.0.alerts
    }

    /// Opens (idempotently) whichever of the customer's current, savings and points
    /// accounts do not exist yet and returns all three. A read comes first, so the
    /// common case — all three exist — writes nothing.
    pub async fn ensure_standard_accounts(&self, customer: Uuid) -> Result<StandardAccounts, ApiError> {
        let existing = self.0.ledger.accounts_of(&customer_owner(customer)).await?;
        let mut ids = [None; 3];
        for (slot, kind) in ids.iter_mut().zip(StandardKind::ALL) {
            let reference = kind.external_ref(customer);
            *slot = existing
                .iter()
                .find(|a| a.external_ref.as_deref() == Some(reference.as_str()))
                .map(|a| a.id);
            if slot.is_none() {
                *slot = Some(self.0.ledger.create_account(kind.new_account(customer)).await?.id);
            }
        }
        match ids {
            [Some(current), Some(savings), Some(points)] => Ok(StandardAccounts {
                current,
                savings,
                points,
            }),
            _ => Err(ApiError::internal("standard accounts missing after opening")),
        }
    }

    /// The bank's clearing account for a unit (`bank:clearing:CNY`, `bank:clearing:POINTS`),
    /// opened on first use.
    pub async fn clearing(&self, unit: Unit) -> Result<AccountId, ApiError> {
        if let Some(id) = self.cached_clearing(unit) {
            return Ok(id);
        }
        let id = self.0.ledger.create_account(domain::clearing_account(unit)).await?.id;
        self.0
            .clearing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(unit, id);
        Ok(id)
    }

    fn cached_clearing(&self, unit: Unit) -> Option<AccountId> {
        self.0
            .clearing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&unit)
            .copied()
    }

    async fn time_zone_of(&self, customer: Uuid) -> Result<TimeZone, ApiError> {
        Ok(time_zone(&self.0.identity.profile(customer).await?.time_zone))
    }

    /// The account, if it exists (404 `unknown-account`) and is the customer's (403
    /// `not-your-account`).
    pub async fn owned_account(&self, customer: Uuid, id: Uuid) -> Result<Account, ApiError> {
        let account = self.0.ledger.account(AccountId::from(id)).await?;
        if account.owner != customer_owner(customer) {
            return Err(not_your_account(id));
        }
        Ok(account)
    }

    async fn views(&self, mut accounts: Vec<Account>, customer: Uuid) -> Vec<AccountView> {
        accounts.sort_by_key(|a| (domain::display_rank(a.external_ref.as_deref(), customer), a.id));
        accounts.iter().map(account_view).collect()
    }

    /// The customer's accounts with balances, opening the standard ones on first call.
    pub async fn my_accounts(&self, customer: Uuid) -> Result<Vec<AccountView>, ApiError> {
        let owner = customer_owner(customer);
        let mut accounts = self.0.ledger.accounts_of(&owner).await?;
        let complete = StandardKind::ALL.iter().all(|k| {
            let reference = k.external_ref(customer);
            accounts
                .iter()
                .any(|a| a.external_ref.as_deref() == Some(reference.as_str()))
        });
        if !complete {
            self.ensure_standard_accounts(customer).await?;
            accounts = self.0.ledger.accounts_of(&owner).await?;
        }
        Ok(self.views(accounts, customer).await)
    }

    /// A customer's accounts as staff see them: read only, nothing is opened, and the
    /// look is recorded.
    pub async fn customer_accounts_for_staff(&self, staff: Uuid, customer: Uuid) -> Result<Vec<AccountView>, ApiError> {
        self.0.identity.profile(customer).await?;
        let accounts = self.0.ledger.accounts_of(&customer_owner(customer)).await?;
        self.0
            .identity
            .record_access(staff, "accounts.view", Some(customer))
            .await?;
        Ok(self.views(accounts, customer).await)
    }

    /// An account's postings, newest first, filtered and paginated.
    pub async fn transactions(
        &self,
        viewer: Viewer,
        account_id: Uuid,
        q: HistoryQuery,
    ) -> Result<Page<TransactionView>, ApiError> {
        let (account, holder) = match viewer {
            Viewer::Customer(customer) => (self.owned_account(customer, account_id).await?, Some(customer)),
            Viewer::Staff(_) => {
                let account = self.0.ledger.account(AccountId::from(account_id)).await?;
                let holder = (account.owner.kind == huoban_ledger::OwnerKind::Customer)
                    .then(|| Uuid::parse_str(&account.owner.id).ok())
                    .flatten();
                (account, holder)
            }
        };
        let tz = match holder {
            Some(c) => self.time_zone_of(c).await?,
            None => time_zone(FALLBACK_TIME_ZONE),
        };
        let from = q
            .from
            .as_deref()
            .map(|t| domain::parse_bound(t, &tz, Bound::From))
            .transpose()?;
        let to =
            q.to.as_deref()
                .map(|t| domain::parse_bound(t, &tz, Bound::To))
                .transpose()?;
        domain::check_range(from, to)?;
        let direction = q.direction.as_deref().map(domain::parse_direction).transpose()?;
        let category = q.category.as_deref().map(domain::parse_category_filter).transpose()?;
        let page = PageQuery {
            limit: q.limit,
            cursor: q.cursor,
        };
        let query = PostingQuery {
            from,
            to,
            direction,
            merchant_category: category,
            limit: page.limit()?,
            after: page.after()?,
        };
        let postings = self.0.ledger.postings(account.id, &query).await?;
        if let Viewer::Staff(staff) = viewer {
            self.0
                .identity
                .record_access(staff, "accounts.transactions", holder)
                .await?;
        }
        Ok(Page {
            items: postings
                .items
                .iter()
                .map(|p| TransactionView {
                    id: p.id.clone(),
                    transfer_id: p.transfer_id.as_uuid(),
                    direction: p.direction.as_str().to_owned(),
                    amount: p.amount,
                    currency: p.unit.as_str().to_owned(),
                    category: p.merchant_category.clone(),
                    description: p.description.clone(),
                    channel: p.channel.clone(),
                    at: p.at.to_string(),
                })
                .collect(),
            next_cursor: postings.next_cursor,
        })
    }

    /// A month of one of the customer's accounts, in their time zone.
    pub async fn statement(
        &self,
        customer: Uuid,
        account_id: Uuid,
        month: Option<&str>,
    ) -> Result<StatementView, ApiError> {
        let month = month.map(Month::parse).transpose()?;
        let account = self.owned_account(customer, account_id).await?;
        let profile = self.0.identity.profile(customer).await?;
        let tz = time_zone(&profile.time_zone);
        let tz_name = tz.iana_name().unwrap_or(FALLBACK_TIME_ZONE).to_owned();
        let month = month.unwrap_or_else(|| Month::containing(self.0.clock.now(), &tz));
        let s = self
            .0
            .ledger
            .statement(account.id, month.year, month.month, &tz_name)
            .await?;
        Ok(StatementView {
            account_id,
            currency: s.unit.as_str().to_owned(),
            month: month.to_string(),
            time_zone: s.time_zone,
            period_start: s.period_start.to_string(),
            period_end: s.period_end.to_string(),
            opening_balance: s.opening_balance,
            closing_balance: s.closing_balance,
            total_in: s.total_in,
            total_out: s.total_out,
            spending_by_category: s
                .spending_by_category
                .into_iter()
                .map(|c| CategorySpend {
                    category: c.merchant_category,
                    amount: c.amount,
                })
                .collect(),
        })
    }

    /// Moves money for a customer. The idempotency key is the ledger's own, scoped to the
    /// customer, so the key and the transfer commit together. Returns the transfer and
    /// whether this was a replay of an earlier request.
    pub async fn transfer(
        &self,
        customer: Uuid,
        channel: &str,
        idempotency_key: &str,
        order: NewTransfer,
        context: crate::gate::RawContext,
    ) -> Result<(TransferView, bool), ApiError> {
        let key = IdempotencyKey::new(format!("customer:{}", customer.hyphenated()), idempotency_key)?;
        let amount = domain::parse_amount(order.amount)?;
        let unit = domain::parse_currency(&order.currency)?;
        let description = domain::parse_description(order.description.as_deref())?;
        let category = domain::parse_category(order.category.as_deref())?;
        let payee = domain::parse_payee(order.to_account, order.to_phone)?;

        let gate = self.0.gate.get();
        // The gate reads ahead while the accounts are resolved: its round trip overlaps
        // theirs instead of adding to the request's time.
        let prepare = async {
            match gate {
                Some(g) => g.prepare(customer, idempotency_key).await.map(Some),
                None => Ok(None),
            }
        };
        let resolve = async {
            let from = self.owned_account(customer, order.from_account).await?;
            let to = match payee {
                Payee::OwnAccount(id) => self.owned_account(customer, id).await?,
                Payee::Phone(phone) => {
                    let phone = Phone::parse(&phone).map_err(|e| ApiError::invalid_field("to_phone", e))?;
                    let row = self
                        .0
                        .identity
                        .store()
                        .customer_by_phone(phone.as_str())
                        .await?
                        .ok_or_else(unknown_payee)?;
                    let payee = Uuid::parse_str(&row.id).map_err(ApiError::internal)?;
                    let current = self.ensure_standard_accounts(payee).await?.current;
                    self.0.ledger.account(current).await?
                }
            };
            Ok::<_, ApiError>((from, to))
        };
        let (resolved, prepared) = tokio::join!(resolve, prepare);
        let (from, to) = resolved?;
        let prepared = prepared?;
        if from.id == to.id {
            return Err(Refusal::SameAccount.into());
        }
        for account in [&from, &to] {
            if account.unit != unit {
                return Err(LedgerError::UnitMismatch {
                    account: account.id.to_string(),
                    expected: unit,
                    actual: account.unit,
                }
                .into());
            }
        }
        let request =
            TransferRequest::single(key, unit, from.id, to.id, Amount::new(amount)?).with_meta(TransferMeta {
                description,
                merchant_category: Some(category),
                channel: Some(channel.to_owned()),
                ..TransferMeta::default()
            });
        let (Some(gate), Some(prepared)) = (gate, prepared) else {
            let outcome = self.0.ledger.transfer(request).await?;
            return Ok((transfer_view(&outcome.transfer)?, outcome.replayed));
        };
        let attempt = crate::gate::TransferAttempt {
            customer,
            channel: channel.to_owned(),
            idempotency_key: idempotency_key.to_owned(),
            amount,
            currency: unit.as_str().to_owned(),
            from_account: from.id.as_uuid(),
            to_account: to.id.as_uuid(),
            context,
        };
        let verdict = gate.check(&attempt, prepared).await?;
        let outcome = match verdict {
            crate::gate::Verdict::Allow { .. } => self.0.ledger.transfer(request).await?,
            _ => self.0.ledger.create_pending(request, None).await?,
        };
        gate.done(&attempt, &verdict, outcome.transfer.id.as_uuid(), outcome.replayed)
            .await?;
        let mut view = transfer_view(&outcome.transfer)?;
        view.risk = verdict.view();
        Ok((view, outcome.replayed))
    }

    pub async fn alerts(&self, customer: Uuid) -> Result<Vec<AlertView>, ApiError> {
        Ok(self
            .0
            .alerts
            .list(customer)
            .await?
            .iter()
            .map(AlertView::from)
            .collect())
    }

    pub async fn create_alert(&self, customer: Uuid, new: NewAlert) -> Result<AlertView, ApiError> {
        let rule = AlertRule::parse(&new.kind, new.threshold, new.amount)?;
        self.owned_account(customer, new.account_id).await?;
        if self.0.alerts.count_of(customer).await? >= MAX_ALERTS_PER_CUSTOMER {
            return Err(ApiError::conflict("too-many-alerts", "You have too many alerts")
                .detail(format!("Delete one first; at most {MAX_ALERTS_PER_CUSTOMER} are kept.")));
        }
        let row = self
            .0
            .alerts
            .insert(customer, new.account_id, rule, self.0.clock.now())
            .await
            .map_err(|e| match e {
                DbError::Conflict { .. } => ApiError::conflict("alert-exists", "You already have this alert")
                    .detail("An alert of this kind and amount exists on the account."),
                other => other.into(),
            })?;
        Ok(AlertView::from(&row))
    }

    pub async fn delete_alert(&self, customer: Uuid, id: Uuid) -> Result<(), ApiError> {
        if self.0.alerts.delete(customer, id).await? {
            Ok(())
        } else {
            Err(unknown_alert(id))
        }
    }
}

/// The customer's accounts, their whole history and their alerts, for the data export;
/// erasure removes the alerts and the free text the ledger holds about them (account
/// labels, descriptions of transfers with no other customer), while every account,
/// balance and entry stays: they are the bank's books.
impl huoban_kit::personal::PersonalData for AccountsService {
    fn section(&self) -> &'static str {
        "accounts"
    }

    fn export<'a>(
        &'a self,
        customer: Uuid,
    ) -> huoban_kit::personal::BoxFuture<'a, Result<serde_json::Value, ApiError>> {
        Box::pin(async move {
            let accounts = self.0.ledger.accounts_of(&customer_owner(customer)).await?;
            let mut out = Vec::new();
            for view in self.views(accounts, customer).await {
                let mut transactions = Vec::new();
                let mut cursor = None;
                loop {
                    let page = self
                        .transactions(
                            Viewer::Customer(customer),
                            view.id,
                            HistoryQuery {
                                limit: Some(200),
                                cursor: cursor.take(),
                                ..HistoryQuery::default()
                            },
                        )
                        .await?;
                    transactions.extend(page.items);
                    match page.next_cursor {
                        Some(c) => cursor = Some(c),
                        None => break,
                    }
                }
                out.push(serde_json::json!({ "account": view, "transactions": transactions }));
            }
            let alerts = self.alerts(customer).await?;
            Ok(serde_json::json!({ "accounts": out, "alerts": alerts }))
        })
    }

    fn erase<'a>(&'a self, customer: Uuid) -> huoban_kit::personal::BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(async move {
            self.0.alerts.delete_all(customer).await?;
            self.0.ledger.scrub_owner_text(&customer_owner(customer)).await?;
            Ok(())
        })
    }
}
