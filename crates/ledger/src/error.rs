//! The ledger's one error type, [`LedgerError`], and its mapping to HTTP problems.
//!
//! When to use what: every ledger operation returns `LedgerError`. Refusals by a rule get
//! their own variant and a stable slug (part of the API contract: clients branch on it,
//! never rename one); a refused write has moved nothing. Storage failures travel as
//! [`LedgerError::Storage`] and keep the kit's `DbError` mapping (404/409/503/500).
//! [`LedgerError::Inconsistent`] means stored data broke an invariant: a bug, answered 500.

use http::StatusCode;
use huoban_kit::{DbError, problem::ApiError};

use crate::domain::Unit;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("account {0} does not exist")]
    UnknownAccount(String),
    #[error("amount must be a positive number of minor units, got {0}")]
    InvalidAmount(i64),
    #[error("the amounts do not fit in 64-bit minor units")]
    AmountOverflow,
    #[error("the transfer is not valid: {0}")]
    InvalidTransfer(String),
    #[error("account {account} holds {actual}, the transfer moves {expected}")]
    UnitMismatch {
        account: String,
        expected: Unit,
        actual: Unit,
    },
    #[error("a leg debits and credits the same account {0}")]
    SameAccount(String),
    #[error("account {account} has {available} available, {requested} requested")]
    InsufficientFunds {
        account: String,
        available: i64,
        requested: i64,
    },
    #[error("account {account} may hold at most {max_balance}; {requested} more would exceed it")]
    LimitExceeded {
        account: String,
        max_balance: i64,
        requested: i64,
    },
    #[error("idempotency key {key:?} was already used for a different request")]
    IdempotencyKeyReused { key: String },
    #[error("no pending transfer {0}")]
    PendingNotFound(String),
    #[error("pending transfer {0} was already posted")]
    PendingAlreadyPosted(String),
    #[error("pending transfer {0} was already voided")]
    PendingAlreadyVoided(String),
    #[error("pending transfer {0} has expired")]
    PendingExpired(String),
    #[error("transfer {0} does not exist")]
    TransferNotFound(String),
    #[error("the account cannot be opened: {0}")]
    InvalidAccount(String),
    #[error("external reference {0:?} already names a different account")]
    AccountReferenceReused(String),
    #[error("{0}")]
    InvalidInput(String),
    #[error("the ledger writer has stopped")]
    Unavailable,
    /// The batch this command was in could not be committed; nothing it did is kept, so
    /// retrying with the same idempotency key is safe.
    #[error("the ledger could not commit: {0}")]
    WriteFailed(String),
    #[error(transparent)]
    Storage(#[from] DbError),
    #[error("ledger data is inconsistent: {0}")]
    Inconsistent(String),
}

impl LedgerError {
    /// The stable identifier of this kind of refusal.
    pub fn slug(&self) -> &'static str {
        match self {
            LedgerError::UnknownAccount(_) => "unknown-account",
            LedgerError::InvalidAmount(_) => "invalid-amount",
            LedgerError::AmountOverflow => "amount-overflow",
            LedgerError::InvalidTransfer(_) => "invalid-transfer",
            LedgerError::UnitMismatch { .. } => "unit-mismatch",
            LedgerError::SameAccount(_) => "same-account",
            LedgerError::InsufficientFunds { .. } => "insufficient-funds",
            LedgerError::LimitExceeded { .. } => "limit-exceeded",
            LedgerError::IdempotencyKeyReused { .. } => "idempotency-key-mismatch",
            LedgerError::PendingNotFound(_) => "pending-not-found",
            LedgerError::PendingAlreadyPosted(_) => "pending-already-posted",
            LedgerError::PendingAlreadyVoided(_) => "pending-already-voided",
            LedgerError::PendingExpired(_) => "pending-expired",
            LedgerError::TransferNotFound(_) => "transfer-not-found",
            LedgerError::InvalidAccount(_) => "invalid-account",
            LedgerError::AccountReferenceReused(_) => "account-reference-reused",
            LedgerError::InvalidInput(_) => "validation",
            LedgerError::Unavailable | LedgerError::WriteFailed(_) => "unavailable",
            LedgerError::Storage(_) => "storage",
            LedgerError::Inconsistent(_) => "internal",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            LedgerError::UnknownAccount(_) => "No such account",
            LedgerError::InvalidAmount(_) => "The amount is not valid",
            LedgerError::AmountOverflow => "The amount is too large",
            LedgerError::InvalidTransfer(_) => "The transfer is not valid",
            LedgerError::UnitMismatch { .. } => "The accounts hold a different unit",
            LedgerError::SameAccount(_) => "A leg moves value from an account to itself",
            LedgerError::InsufficientFunds { .. } => "Insufficient funds",
            LedgerError::LimitExceeded { .. } => "The account's balance limit would be exceeded",
            LedgerError::IdempotencyKeyReused { .. } => "This idempotency key was used for a different request",
            LedgerError::PendingNotFound(_) => "No such pending transfer",
            LedgerError::PendingAlreadyPosted(_) => "The pending transfer was already posted",
            LedgerError::PendingAlreadyVoided(_) => "The pending transfer was already voided",
            LedgerError::PendingExpired(_) => "The pending transfer has expired",
            LedgerError::TransferNotFound(_) => "No such transfer",
            LedgerError::InvalidAccount(_) => "The account is not valid",
            LedgerError::AccountReferenceReused(_) => "The external reference names another account",
            LedgerError::InvalidInput(_) => "The request is not valid",
            LedgerError::Unavailable | LedgerError::WriteFailed(_) => "Service unavailable",
            LedgerError::Storage(_) | LedgerError::Inconsistent(_) => "Internal error",
        }
    }

    /// The HTTP status for a refusal: 404 for what does not exist, 422 for a request that
    /// can never succeed as written, 409 for one refused by the current state (it may
    /// succeed later, or is a replay of a finished action).
    pub fn status(&self) -> StatusCode {
        match self {
            LedgerError::UnknownAccount(_) | LedgerError::PendingNotFound(_) | LedgerError::TransferNotFound(_) => {
                StatusCode::NOT_FOUND
            }
            LedgerError::InvalidAmount(_)
            | LedgerError::AmountOverflow
            | LedgerError::InvalidTransfer(_)
            | LedgerError::UnitMismatch { .. }
            | LedgerError::SameAccount(_)
            | LedgerError::IdempotencyKeyReused { .. }
            | LedgerError::InvalidAccount(_)
            | LedgerError::InvalidInput(_) => StatusCode::UNPROCESSABLE_ENTITY,
            LedgerError::InsufficientFunds { .. }
            | LedgerError::LimitExceeded { .. }
            | LedgerError::PendingAlreadyPosted(_)
            | LedgerError::PendingAlreadyVoided(_)
            | LedgerError::PendingExpired(_)
            | LedgerError::AccountReferenceReused(_) => StatusCode::CONFLICT,
            LedgerError::Unavailable | LedgerError::WriteFailed(_) => StatusCode::SERVICE_UNAVAILABLE,
            LedgerError::Storage(_) | LedgerError::Inconsistent(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<LedgerError> for ApiError {
    fn from(err: LedgerError) -> Self {
        match err {
            LedgerError::Storage(db) => ApiError::from(db),
            LedgerError::Inconsistent(_) => ApiError::internal(err),
            LedgerError::Unavailable | LedgerError::WriteFailed(_) => {
                tracing::warn!(error = %err, "ledger write not committed");
                ApiError::unavailable("The ledger could not commit; retry with the same idempotency key.")
            }
            _ => {
                let detail = err.to_string();
                let problem = ApiError::new(err.status(), err.slug(), err.title()).detail(detail);
                match err {
                    LedgerError::InsufficientFunds {
                        account,
                        available,
                        requested,
                    } => problem
                        .with("account", account)
                        .with("available", available)
                        .with("requested", requested),
                    LedgerError::LimitExceeded {
                        account,
                        max_balance,
                        requested,
                    } => problem
                        .with("account", account)
                        .with("max_balance", max_balance)
                        .with("requested", requested),
                    LedgerError::UnknownAccount(account)
                    | LedgerError::SameAccount(account)
                    | LedgerError::UnitMismatch { account, .. } => problem.with("account", account),
                    LedgerError::PendingNotFound(id)
                    | LedgerError::PendingAlreadyPosted(id)
                    | LedgerError::PendingAlreadyVoided(id)
                    | LedgerError::PendingExpired(id) => problem.with("transfer", id),
                    _ => problem,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_map_to_their_slug_and_a_client_error() {
        let cases = [
            LedgerError::UnknownAccount("a".into()),
            LedgerError::InvalidAmount(0),
            LedgerError::AmountOverflow,
            LedgerError::UnitMismatch {
                account: "a".into(),
                expected: Unit::Cny,
                actual: Unit::Points,
            },
            LedgerError::SameAccount("a".into()),
            LedgerError::InsufficientFunds {
                account: "a".into(),
                available: 1,
                requested: 2,
            },
            LedgerError::LimitExceeded {
                account: "a".into(),
                max_balance: 1,
                requested: 2,
            },
            LedgerError::IdempotencyKeyReused { key: "k".into() },
            LedgerError::PendingNotFound("t".into()),
            LedgerError::PendingAlreadyPosted("t".into()),
            LedgerError::PendingAlreadyVoided("t".into()),
            LedgerError::PendingExpired("t".into()),
        ];
        for err in cases {
            let slug = err.slug();
            let api = ApiError::from(err);
            assert_eq!(api.slug, slug);
            assert!(api.status.is_client_error(), "{slug} -> {}", api.status);
        }
        let api = ApiError::from(LedgerError::InsufficientFunds {
            account: "a".into(),
            available: 1,
            requested: 2,
        });
        assert_eq!(api.extensions.get("available"), Some(&serde_json::json!(1)));
    }
}
