//! Auditors' endpoints (`ReadAudit`), and the middleware that records every staff action.

use axum::{
    extract::{FromRef, MatchedPath, Request, State},
    http::Method,
    middleware::Next,
    response::Response,
};
use huoban_identity::{IdentityService, Permission, StaffAuth, auth::bearer, service::Principal};
use huoban_kit::{ApiError, ApiJson, ApiQuery, Page, PageQuery, problem::Problem};
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    service::{Actor, AuditEntry, AuditLog, VerifyReport},
    store::EntryFilter,
};

pub const TAG: &str = "audit";

#[derive(Debug, Clone, FromRef)]
pub struct AuditState {
    pub audit: AuditLog,
    pub identity: IdentityService,
}

pub fn router(state: AuditState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(verify))
        .with_state(state)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only entries by this actor (a staff or customer id).
    pub actor_id: Option<String>,
    /// Only entries with this action, e.g. `customers.view`, `staff.request`, `session.sign_in_failed`.
    pub action: Option<String>,
    /// Only entries about this subject, e.g. `customer:<uuid>`.
    pub subject: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// The audit trail, newest first: staff actions, staff access to customer data, sign-ins
/// and security decisions. Each entry carries the hash of the one before.
#[utoipa::path(get, path = "/api/v1/staff/audit", tag = TAG, security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, body = Page<AuditEntry>),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "permission-denied, staff-only", body = Problem),
              (status = 422, description = "validation (with `field`)", body = Problem)))]
async fn list(
    State(s): State<AuditState>,
    auth: StaffAuth,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<ApiJson<Page<AuditEntry>>, ApiError> {
    auth.require(Permission::ReadAudit)?;
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    let filter = EntryFilter {
        actor_id: q.actor_id,
        action: q.action,
        subject: q.subject,
    };
    Ok(ApiJson(s.audit.list(&filter, page.after()?, page.limit()?).await?))
}

/// Check the whole chain and the signed checkpoints, as `huoban audit verify` does.
#[utoipa::path(get, path = "/api/v1/staff/audit/verify", tag = TAG, security(("bearer" = [])),
    responses((status = 200, body = VerifyReport),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "permission-denied, staff-only", body = Problem)))]
async fn verify(State(s): State<AuditState>, auth: StaffAuth) -> Result<ApiJson<VerifyReport>, ApiError> {
    auth.require(Permission::ReadAudit)?;
    Ok(ApiJson(s.audit.verify(|_, _| {}).await?))
}

/// Records every staff request that changes something (`/api/v1/staff/…`, not GET/HEAD/
/// OPTIONS): who (the staff id, or anonymous), method, route template and status. Reads of
/// customer data are recorded by the capabilities themselves, with the customer.
pub async fn record_staff_actions(State(s): State<AuditState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if !path.starts_with("/api/v1/staff/") || matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS)
    {
        return next.run(request).await;
    }
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| path.to_owned());
    let target = path.to_owned();
    let actor = match request.extensions().get::<Principal>().cloned() {
        Some(p) => Some(p),
        None => {
            let (parts, body) = request.into_parts();
            let principal = match bearer(&parts) {
                Ok(token) => s.identity.authenticate(token).await.ok(),
                Err(_) => None,
            };
            let request = Request::from_parts(parts, body);
            return finish(s, request, next, principal, method, route, target).await;
        }
    };
    finish(s, request, next, actor, method, route, target).await
}

async fn finish(
    s: AuditState,
    request: Request,
    next: Next,
    principal: Option<Principal>,
    method: String,
    route: String,
    target: String,
) -> Response {
    let response = next.run(request).await;
    let actor = match principal {
        Some(Principal::Staff { id, .. }) => Actor::staff(id),
        Some(Principal::Customer { id, .. }) => Actor::customer(id),
        None => Actor::anonymous(),
    };
    let details = serde_json::json!({
        "method": method,
        "route": route,
        "path": target,
        "status": response.status().as_u16(),
    });
    if let Err(e) = s
        .audit
        .record(
            actor,
            "staff.request",
            Some(&format!("route:{method} {route}")),
            details,
        )
        .await
    {
        tracing::error!(error = %e, %route, "staff action not recorded in the audit trail");
    }
    response
}
