//! The one HTTP error type: [`ApiError`] renders RFC 9457 `application/problem+json`.
//!
//! When to use what:
//! - A handler or domain rule refused the request: return an [`ApiError`] with a stable
//!   slug (`ApiError::new(StatusCode::…, "insufficient-funds", "…")`). The slug becomes the
//!   `type` URI `urn:huoban:problem:<slug>` and is part of the API contract: clients branch
//!   on it, so never rename one.
//! - Storage failed: `?` on a [`DbError`] maps `NotFound` to 404, `Conflict` to 409 and
//!   anything else to a logged 500/503 whose body says nothing internal.
//! - Something unexpected: [`ApiError::internal`] logs the error chain and answers a
//!   generic 500.
//! - Responses that axum or a tower layer produces by itself (unknown route, wrong method,
//!   timeout, oversized body) are rewritten into problem+json by [`normalize_errors`].

use axum::{
    body::Body,
    extract::Request,
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::db::DbError;

pub const PROBLEM_JSON: &str = "application/problem+json";
pub const TYPE_PREFIX: &str = "urn:huoban:problem:";

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub slug: &'static str,
    pub title: &'static str,
    pub detail: Option<String>,
    pub extensions: Map<String, Value>,
}

/// The body of every error response (documented in the OpenAPI document as `Problem`).
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Problem {
    /// Stable identifier of the kind of problem, `urn:huoban:problem:<slug>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, slug: &'static str, title: &'static str) -> Self {
        Self {
            status,
            slug,
            title,
            detail: None,
            extensions: Map::new(),
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Adds a member beside the standard ones (RFC 9457 §3.2), e.g. the invalid field.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extensions.insert(key.to_owned(), value.into());
        self
    }

    pub fn type_uri(&self) -> String {
        format!("{TYPE_PREFIX}{}", self.slug)
    }

    pub fn validation(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "The request is not valid",
        )
        .detail(detail)
    }

    pub fn invalid_field(field: &str, detail: impl Into<String>) -> Self {
        Self::validation(detail).with("field", field)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found").detail(format!("{what} was not found"))
    }

    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", "Sign-in required").detail(detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Not allowed").detail(detail)
    }

    pub fn conflict(slug: &'static str, title: &'static str) -> Self {
        Self::new(StatusCode::CONFLICT, slug, title)
    }

    /// Logs the full error chain and answers a generic 500 that leaks nothing.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error")
            .detail("Something went wrong on our side; the request can be retried.")
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Service unavailable").detail(detail)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.slug)?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

impl From<DbError> for ApiError {
    fn from(err: DbError) -> Self {
        match err {
            DbError::NotFound => ApiError::not_found("The resource"),
            DbError::Conflict { constraint } => {
                tracing::debug!(%constraint, "constraint refused write");
                ApiError::conflict("conflict", "The request conflicts with existing data")
            }
            DbError::Unavailable(e) => {
                tracing::error!(error = %e, "database unavailable");
                ApiError::unavailable("The database is not reachable; retry shortly.")
            }
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        body.insert("type".into(), Value::String(self.type_uri()));
        body.insert("title".into(), Value::String(self.title.into()));
        body.insert("status".into(), Value::from(self.status.as_u16()));
        if let Some(detail) = self.detail {
            body.insert("detail".into(), Value::String(detail));
        }
        for (k, v) in self.extensions {
            body.entry(k).or_insert(v);
        }
        let bytes = serde_json::to_vec(&Value::Object(body)).unwrap_or_default();
        let mut response = (self.status, bytes).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}

/// Middleware: any error response that is not already problem+json (an unknown route, a
/// wrong method, a timeout or an oversized body answered by a layer) is rewritten so that
/// every 4xx/5xx has the same shape.
pub async fn normalize_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if is_problem {
        return response;
    }
    let error = match status {
        StatusCode::NOT_FOUND => ApiError::new(status, "not-found", "Not found").detail("No such resource or route."),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(status, "method-not-allowed", "Method not allowed"),
        StatusCode::REQUEST_TIMEOUT => ApiError::new(status, "timeout", "Request timed out")
            .detail("The request took too long and was abandoned; it can be retried."),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(status, "body-too-large", "Request body too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(status, "unsupported-media-type", "Unsupported media type"),
        s if s.is_server_error() => ApiError::new(s, "internal", "Internal error"),
        s => ApiError::new(s, "bad-request", "Bad request"),
    };
    let (mut parts, _) = response.into_parts();
    let fresh = error.into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    let (_, body) = fresh.into_parts();
    Response::from_parts(parts, Body::new(body))
}
