//! Extractors that authenticate the caller from `Authorization: Bearer <token>`.
//! A handler that takes [`CustomerAuth`] can only be reached by a signed-in customer, one
//! that takes [`StaffAuth`] only by staff; staff permissions are then checked with
//! [`StaffAuth::require`], which every staff handler calls first.

use axum::{
    extract::{FromRef, FromRequestParts},
    http::{StatusCode, header, request::Parts},
};
use huoban_kit::ApiError;
use uuid::Uuid;

use crate::{
    domain::{Channel, Permission, Role},
    service::{IdentityService, Principal},
};

#[derive(Debug, Clone)]
pub struct CustomerAuth {
    pub customer_id: Uuid,
    pub channel: Channel,
    pub token_hash: String,
}

#[derive(Debug, Clone)]
pub struct StaffAuth {
    pub staff_id: Uuid,
    pub role: Role,
    pub username: String,
    pub token_hash: String,
}

impl StaffAuth {
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if self.role.grants(permission) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "permission-denied",
                "Your role does not allow this",
            )
            .detail(format!(
                "The {} role lacks the {:?} permission.",
                self.role.as_str(),
                permission
            ))
            .with(
                "required_permission",
                serde_json::to_value(permission).unwrap_or_default(),
            ))
        }
    }
}

/// The session token from `Authorization: Bearer`, or — for event streams only, because a
/// browser's `EventSource` cannot send headers — from an `access_token` query parameter.
pub fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let wants_stream = parts
        .headers
        .get(header::ACCEPT)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if wants_stream && parts.headers.get(header::AUTHORIZATION).is_none() {
        let from_query = parts
            .uri
            .query()
            .unwrap_or_default()
            .split('&')
            .find_map(|pair| pair.strip_prefix("access_token="))
            .filter(|t| !t.is_empty());
        if let Some(token) = from_query {
            return Ok(token);
        }
    }
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthenticated("Send the session token as Authorization: Bearer <token>."))?;
    value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthenticated("The Authorization header must be Bearer <token>."))
}

/// Any signed-in principal, customer or staff.
#[derive(Debug, Clone)]
pub struct AnyAuth(pub Principal);

impl<S> FromRequestParts<S> for AnyAuth
where
    IdentityService: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(p) = parts.extensions.get::<Principal>() {
            return Ok(AnyAuth(p.clone()));
        }
        let token = bearer(parts)?;
        let principal = IdentityService::from_ref(state).authenticate(token).await?;
        parts.extensions.insert(principal.clone());
        Ok(AnyAuth(principal))
    }
}

impl<S> FromRequestParts<S> for CustomerAuth
where
    IdentityService: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match AnyAuth::from_request_parts(parts, state).await?.0 {
            Principal::Customer {
                id,
                channel,
                token_hash,
            } => Ok(CustomerAuth {
                customer_id: id,
                channel,
                token_hash,
            }),
            Principal::Staff { .. } => {
                Err(
                    ApiError::new(StatusCode::FORBIDDEN, "customers-only", "Only customers can do this")
                        .detail("This endpoint acts for a signed-in customer; staff use /api/v1/staff."),
                )
            }
        }
    }
}

impl<S> FromRequestParts<S> for StaffAuth
where
    IdentityService: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match AnyAuth::from_request_parts(parts, state).await?.0 {
            Principal::Staff {
                id,
                role,
                username,
                token_hash,
            } => Ok(StaffAuth {
                staff_id: id,
                role,
                username,
                token_hash,
            }),
            Principal::Customer { .. } => {
                Err(
                    ApiError::new(StatusCode::FORBIDDEN, "staff-only", "Only staff can do this")
                        .detail("A customer session cannot use staff endpoints."),
                )
            }
        }
    }
}
