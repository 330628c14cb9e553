//! Account endpoints for customers (accounts, history, statements, transfers, balance
//! alerts) and the staff views of a customer's accounts. Handlers only translate between
//! HTTP and [`AccountsService`].
//!
//! `POST /api/v1/transfers` keeps its `Idempotency-Key` in the ledger, in the same
//! transaction as the transfer: the server lists it in the kit middleware's `native`
//! routes, or every transfer would pay for two extra writes outside the ledger's batch.

use axum::{
    extract::{FromRef, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use huoban_identity::{CustomerAuth, IdentityService, Permission, StaffAuth};
use huoban_kit::{
    ApiError, ApiJson, ApiPath, ApiQuery, Page,
    idempotency::{self, RequiredKey},
    problem::Problem,
};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::service::{
    AccountView, AccountsService, AlertView, HistoryQuery, NewAlert, NewTransfer, StatementQuery, StatementView,
    TransactionView, TransferView, Viewer,
};

pub const TAG: &str = "accounts";

impl FromRef<AccountsService> for IdentityService {
    fn from_ref(s: &AccountsService) -> Self {
        s.identity().clone()
    }
}

pub fn router(service: AccountsService) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(list_accounts))
        .routes(routes!(account_transactions))
        .routes(routes!(account_statement))
        .routes(routes!(create_transfer))
        .routes(routes!(list_alerts, create_alert))
        .routes(routes!(delete_alert))
        .routes(routes!(staff_customer_accounts))
        .routes(routes!(staff_account_transactions))
        .with_state(service)
}

#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct AccountList {
    pub items: Vec<AccountView>,
}

#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct AlertList {
    pub items: Vec<AlertView>,
}

/// Your accounts with their balances. The standard current, savings and points accounts
/// are opened on the first call.
#[utoipa::path(get, path = "/api/v1/accounts", tag = TAG, security(("bearer" = [])),
    responses((status = 200, body = AccountList), (status = 401, body = Problem), (status = 403, body = Problem)))]
#[tracing::instrument(skip_all, fields(customer = %auth.customer_id))]
async fn list_accounts(State(s): State<AccountsService>, auth: CustomerAuth) -> Result<ApiJson<AccountList>, ApiError> {
    Ok(ApiJson(AccountList {
        items: s.my_accounts(auth.customer_id).await?,
    }))
}

/// An account's transactions, newest first, filtered by dates (RFC 3339 or `YYYY-MM-DD` in
/// your time zone), direction and category.
#[utoipa::path(get, path = "/api/v1/accounts/{id}/transactions", tag = TAG, security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Account id"), HistoryQuery),
    responses((status = 200, body = Page<TransactionView>),
              (status = 400, description = "invalid-query", body = Problem),
              (status = 403, description = "not-your-account", body = Problem),
              (status = 404, description = "unknown-account", body = Problem),
              (status = 422, description = "validation: a bad date, direction, category, limit or cursor", body = Problem)))]
#[tracing::instrument(skip_all, fields(customer = %auth.customer_id, account = %id))]
async fn account_transactions(
    State(s): State<AccountsService>,
    auth: CustomerAuth,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<ApiJson<Page<TransactionView>>, ApiError> {
    Ok(ApiJson(
        s.transactions(Viewer::Customer(auth.customer_id), id, q).await?,
    ))
}

/// A monthly statement: opening and closing balance, totals in and out, and spending by
/// category, in your time zone.
#[utoipa::path(get, path = "/api/v1/accounts/{id}/statement", tag = TAG, security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Account id"), StatementQuery),
    responses((status = 200, body = StatementView),
              (status = 403, description = "not-your-account", body = Problem),
              (status = 404, description = "unknown-account", body = Problem),
              (status = 422, description = "validation: a bad month", body = Problem)))]
#[tracing::instrument(skip_all, fields(customer = %auth.customer_id, account = %id))]
async fn account_statement(
    State(s): State<AccountsService>,
    auth: CustomerAuth,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<StatementQuery>,
) -> Result<ApiJson<StatementView>, ApiError> {
    Ok(ApiJson(s.statement(auth.customer_id, id, q.month.as_deref()).await?))
}

/// Move money to another of your accounts (`to_account`) or to another customer by phone
/// (`to_phone`). `Idempotency-Key` is required: a retry with the same key and body answers
/// the first transfer again (`Idempotent-Replayed: true`) and moves nothing.
#[utoipa::path(post, path = "/api/v1/transfers", tag = TAG, security(("bearer" = [])), request_body = NewTransfer,
    params(("Idempotency-Key" = String, Header, description = "Required; unique per transfer"),
           ("X-Device-Id" = Option<String>, Header, description = "The device's id, for adaptive security"),
           ("X-Geo" = Option<String>, Header, description = "Coarse location \"lat,lon\""),
           ("X-Step-Up-Token" = Option<String>, Header, description = "A step-up token answering a step-up-required challenge")),
    responses((status = 201, description = "Posted, or `pending` with `risk` when delayed or held", body = TransferView),
              (status = 400, description = "idempotency-key-required, invalid-idempotency-key, malformed-json", body = Problem),
              (status = 403, description = "not-your-account, step-up-required, step-up-invalid, risk-denied, account-frozen", body = Problem),
              (status = 404, description = "unknown-account, unknown-payee", body = Problem),
              (status = 409, description = "insufficient-funds", body = Problem),
              (status = 422, description = "invalid-amount, unit-mismatch, same-account, idempotency-key-mismatch, validation, invalid-body", body = Problem)))]
#[tracing::instrument(skip_all, fields(customer = %auth.customer_id))]
async fn create_transfer(
    State(s): State<AccountsService>,
    auth: CustomerAuth,
    RequiredKey(key): RequiredKey,
    headers: axum::http::HeaderMap,
    ApiJson(body): ApiJson<NewTransfer>,
) -> Result<Response, ApiError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let context = crate::gate::RawContext {
        device_id: header("x-device-id"),
        geo: header("x-geo"),
        forwarded_for: header("x-forwarded-for"),
        step_up_token: header("x-step-up-token"),
    };
    let (transfer, replayed) = s
        .transfer(auth.customer_id, auth.channel.as_str(), &key, body, context)
        .await?;
    let mut response = (StatusCode::CREATED, ApiJson(transfer)).into_response();
    if replayed {
        idempotency::mark_replayed(&mut response);
    }
    Ok(response)
}

/// Your balance alerts.
#[utoipa::path(get, path = "/api/v1/alerts", tag = TAG, security(("bearer" = [])),
    responses((status = 200, body = AlertList), (status = 401, body = Problem)))]
async fn list_alerts(State(s): State<AccountsService>, auth: CustomerAuth) -> Result<ApiJson<AlertList>, ApiError> {
    Ok(ApiJson(AlertList {
        items: s.alerts(auth.customer_id).await?,
    }))
}

/// Subscribe to a balance alert: `balance_below` (`threshold`), `debit_above` (`amount`)
/// or `salary_received`. Alerts arrive in the inbox (kind `balance_alert`).
#[utoipa::path(post, path = "/api/v1/alerts", tag = TAG, security(("bearer" = [])), request_body = NewAlert,
    responses((status = 201, body = AlertView),
              (status = 403, description = "not-your-account", body = Problem),
              (status = 404, description = "unknown-account", body = Problem),
              (status = 409, description = "alert-exists, too-many-alerts", body = Problem),
              (status = 422, description = "validation, invalid-body", body = Problem)))]
#[tracing::instrument(skip_all, fields(customer = %auth.customer_id))]
async fn create_alert(
    State(s): State<AccountsService>,
    auth: CustomerAuth,
    ApiJson(body): ApiJson<NewAlert>,
) -> Result<impl IntoResponse, ApiError> {
    let alert = s.create_alert(auth.customer_id, body).await?;
    Ok((StatusCode::CREATED, ApiJson(alert)))
}

/// Stop a balance alert.
#[utoipa::path(delete, path = "/api/v1/alerts/{id}", tag = TAG, security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Alert id")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "unknown-alert", body = Problem)))]
async fn delete_alert(
    State(s): State<AccountsService>,
    auth: CustomerAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    s.delete_alert(auth.customer_id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A customer's accounts and balances (staff with the accounts permission). The access is
/// recorded.
#[utoipa::path(get, path = "/api/v1/staff/customers/{id}/accounts", tag = "staff", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Customer id")),
    responses((status = 200, body = AccountList), (status = 403, body = Problem), (status = 404, body = Problem)))]
#[tracing::instrument(skip_all, fields(staff = %auth.staff_id, customer = %id))]
async fn staff_customer_accounts(
    State(s): State<AccountsService>,
    auth: StaffAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<ApiJson<AccountList>, ApiError> {
    auth.require(Permission::ViewAccounts)?;
    Ok(ApiJson(AccountList {
        items: s.customer_accounts_for_staff(auth.staff_id, id).await?,
    }))
}

/// Any account's transactions (staff with the accounts permission), with the customer's
/// filters. The access is recorded.
#[utoipa::path(get, path = "/api/v1/staff/accounts/{account_id}/transactions", tag = "staff", security(("bearer" = [])),
    params(("account_id" = Uuid, Path, description = "Account id"), HistoryQuery),
    responses((status = 200, body = Page<TransactionView>), (status = 400, body = Problem), (status = 403, body = Problem),
              (status = 404, description = "unknown-account", body = Problem), (status = 422, body = Problem)))]
#[tracing::instrument(skip_all, fields(staff = %auth.staff_id, account = %account_id))]
async fn staff_account_transactions(
    State(s): State<AccountsService>,
    auth: StaffAuth,
    ApiPath(account_id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<ApiJson<Page<TransactionView>>, ApiError> {
    auth.require(Permission::ViewAccounts)?;
    Ok(ApiJson(
        s.transactions(Viewer::Staff(auth.staff_id), account_id, q).await?,
    ))
}
