//! `Idempotency-Key` on POST: the first response is stored and a retry with the same key
//! gets it again (marked `Idempotent-Replayed: true`); the same key with a different
//! request is refused with 422 `idempotency-key-mismatch`; a retry that arrives while the
//! first attempt is still running gets 409 `idempotency-key-in-flight`.
//!
//! Keys are scoped to the caller (a hash of the `Authorization` header), so two customers
//! can never see each other's responses. Stored responses may hold personal data or fresh
//! tokens (a registration's profile, a hand-off token), so the database keeps only a hash
//! of the key and the body encrypted (AES-256-GCM) under a key derived from the caller's
//! `Authorization` header and the Idempotency-Key itself: only the retrying client can
//! have its response opened, and the database alone reveals nothing. Server errors (5xx) are not stored, so a retry
//! after an outage runs again. Routes that keep their own key inside the same transaction
//! as their effect (ledger transfers) are listed in `native` and skipped here, because a
//! separate bookkeeping write would cost them their batched commits.

use std::sync::Arc;

use aes_gcm::{
    Aes256Gcm, KeyInit,
    aead::{Aead, Payload},
};
use axum::{
    body::{Body, to_bytes},
    extract::{MatchedPath, Request, State},
    http::{HeaderName, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use sha2::{Digest, Sha256};

use crate::{
    clock::{SharedClock, to_micros},
    db::Db,
    problem::ApiError,
};

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED: &str = "idempotent-replayed";
/// An attempt that has held its key this long without finishing is presumed dead (the
/// node crashed), and a retry may take the key over.
const STALE_AFTER_MICROS: i64 = 60_000_000;

#[derive(Debug, Clone)]
pub struct Idempotency {
    pub db: Db,
    pub clock: SharedClock,
    pub body_limit: usize,
    /// Route templates that implement the key themselves.
    pub native: Arc<[&'static str]>,
}

/// Checks a key's shape: 1 to 255 visible ASCII characters.
pub fn parse_key(value: &HeaderValue) -> Result<String, ApiError> {
    let text = value.to_str().unwrap_or_default();
    if text.is_empty() || text.len() > 255 || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-idempotency-key",
            "The Idempotency-Key header is not valid",
        )
        .detail("Use 1 to 255 visible ASCII characters, e.g. a UUID."));
    }
    Ok(text.to_owned())
}

/// The `Idempotency-Key` of a route that requires one and keeps it itself, in the same
/// transaction as its effect (transfers, deposits, claims). Extracted before the body, so a
/// missing key is reported even when the body is also wrong.
#[derive(Debug, Clone)]
pub struct RequiredKey(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for RequiredKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        let value = parts.headers.get(HEADER).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "idempotency-key-required",
                "This request needs an Idempotency-Key header",
            )
            .detail("Value moves at most once per key: send a new unique key (e.g. a UUID) and reuse it only to retry.")
        })?;
        parse_key(value).map(RequiredKey)
    }
}

/// Marks a response as the replay of an earlier request with the same key.
pub fn mark_replayed(response: &mut Response) {
    response
        .headers_mut()
        .insert(HeaderName::from_static(REPLAYED), HeaderValue::from_static("true"));
}

pub fn mismatch() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency-key-mismatch",
        "This Idempotency-Key was used for a different request",
    )
    .detail("Use a new key for a new request; reuse a key only to retry the very same request.")
}

/// The key a stored body is sealed with: known only to whoever sends the same
/// `Authorization` header and Idempotency-Key again.
fn body_key(authorization: &[u8], key: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in [b"huoban-idempotent-body-v1".as_slice(), authorization, key.as_bytes()] {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    h.finalize().into()
}

fn seal_body(key: &[u8; 32], aad: &str, body: &[u8]) -> Option<String> {
    let cipher = Aes256Gcm::new_from_slice(key).ok()?;
    let nonce: [u8; 12] = rand_nonce();
    let sealed = cipher
        .encrypt(
            &aes_gcm::aead::Nonce::<Aes256Gcm>::from(nonce),
            Payload {
                msg: body,
                aad: aad.as_bytes(),
            },
        )
        .ok()?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Some(format!("v1:{}", STANDARD.encode(out)))
}

fn open_body(key: &[u8; 32], aad: &str, stored: &str) -> Option<Vec<u8>> {
    let bytes = STANDARD.decode(stored.strip_prefix("v1:")?).ok()?;
    if bytes.len() < 12 {
        return None;
    }
    let (nonce, body) = bytes.split_at(12);
    let nonce: [u8; 12] = nonce.try_into().ok()?;
    Aes256Gcm::new_from_slice(key)
        .ok()?
        .decrypt(
            &aes_gcm::aead::Nonce::<Aes256Gcm>::from(nonce),
            Payload {
                msg: body,
                aad: aad.as_bytes(),
            },
        )
        .ok()
}

fn rand_nonce() -> [u8; 12] {
    // A v4 UUID is 122 random bits from the OS generator; 96 of them make the nonce.
    let mut n = [0u8; 12];
    n.copy_from_slice(&uuid::Uuid::new_v4().as_bytes()[..12]);
    n
}

fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())
}

pub async fn middleware(State(state): State<Idempotency>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let Some(raw_key) = request.headers().get(HEADER) else {
        return next.run(request).await;
    };
    if let Some(path) = request.extensions().get::<MatchedPath>()
        && state.native.contains(&path.as_str())
    {
        return next.run(request).await;
    }
    let key = match parse_key(raw_key) {
        Ok(k) => k,
        Err(e) => return e.into_response(),
    };
    match run(state, key, request, next).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn run(state: Idempotency, key: String, request: Request, next: Next) -> Result<Response, ApiError> {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes)
        .unwrap_or(b"anonymous")
        .to_vec();
    let scope = sha256_hex(&[&authorization]);
    let sealing_key = body_key(&authorization, &key);
    // Only a hash of the key is stored.
    let key = sha256_hex(&[b"idempotency-key", key.as_bytes()]);
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, state.body_limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "Request body too large",
        )
    })?;
    let target = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let request_hash = sha256_hex(&[parts.method.as_str().as_bytes(), target.as_bytes(), &bytes]);
    let now = to_micros(state.clock.now());

    let claimed = sqlx::query(
        "INSERT INTO idempotency_keys (scope, idem_key, request_hash, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (scope, idem_key) DO NOTHING",
    )
    .bind(&scope)
    .bind(&key)
    .bind(&request_hash)
    .bind(now)
    .execute(state.db.writer())
    .await
    .map_err(crate::db::DbError::from)?
    .rows_affected()
        == 1;

    if !claimed {
        let row: (String, Option<i64>, Option<String>, Option<String>, i64) = sqlx::query_as(
            "SELECT request_hash, status, content_type, body, created_at FROM idempotency_keys \
             WHERE scope = $1 AND idem_key = $2",
        )
        .bind(&scope)
        .bind(&key)
        .fetch_one(state.db.writer())
        .await
        .map_err(crate::db::DbError::from)?;
        let (stored_hash, status, content_type, body, created_at) = row;
        if stored_hash != request_hash {
            return Err(mismatch());
        }
        match status {
            Some(status) => {
                let body = body
                    .as_deref()
                    .and_then(|b| open_body(&sealing_key, &request_hash, b))
                    .ok_or_else(|| ApiError::internal("a stored idempotent response does not open"))?;
                let mut response =
                    (StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK), body).into_response();
                let headers = response.headers_mut();
                if let Some(ct) = content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
                    headers.insert(header::CONTENT_TYPE, ct);
                }
                headers.insert(HeaderName::from_static(REPLAYED), HeaderValue::from_static("true"));
                return Ok(response);
            }
            None => {
                let took_over = created_at < now - STALE_AFTER_MICROS
                    && sqlx::query(
                        "UPDATE idempotency_keys SET created_at = $1 \
                         WHERE scope = $2 AND idem_key = $3 AND status IS NULL AND created_at = $4",
                    )
                    .bind(now)
                    .bind(&scope)
                    .bind(&key)
                    .bind(created_at)
                    .execute(state.db.writer())
                    .await
                    .map_err(crate::db::DbError::from)?
                    .rows_affected()
                        == 1;
                if !took_over {
                    return Err(ApiError::conflict(
                        "idempotency-key-in-flight",
                        "A request with this Idempotency-Key is still being processed",
                    )
                    .detail("Retry after a moment to get its result."));
                }
            }
        }
    }

    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    let status = response.status();
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        forget(&state, &scope, &key).await;
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let bytes = match to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            forget(&state, &scope, &key).await;
            return Err(ApiError::internal(e));
        }
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match seal_body(&sealing_key, &request_hash, &bytes) {
        Some(text) => {
            let stored = sqlx::query(
                "UPDATE idempotency_keys SET status = $1, content_type = $2, body = $3 \
                 WHERE scope = $4 AND idem_key = $5",
            )
            .bind(i64::from(status.as_u16()))
            .bind(content_type)
            .bind(text)
            .bind(&scope)
            .bind(&key)
            .execute(state.db.writer())
            .await;
            if let Err(e) = stored {
                tracing::warn!(error = %e, "could not store idempotent response; a retry will run again");
            }
        }
        None => forget(&state, &scope, &key).await,
    }
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

async fn forget(state: &Idempotency, scope: &str, key: &str) {
    let result = sqlx::query("DELETE FROM idempotency_keys WHERE scope = $1 AND idem_key = $2")
        .bind(scope)
        .bind(key)
        .execute(state.db.writer())
        .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "could not release idempotency key");
    }
}

/// Deletes stored responses older than `max_age_micros`; run periodically.
pub async fn purge(db: &Db, now_micros: i64, max_age_micros: i64) -> Result<u64, crate::db::DbError> {
    Ok(sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
        .bind(now_micros - max_age_micros)
        .execute(db.writer())
        .await?
        .rows_affected())
}

/// The table this module needs; the server adds it to its migrations.
pub const MIGRATION: crate::db::MigrationSpec = crate::db::MigrationSpec {
    version: 2026112201,
    name: "kit_idempotency_keys",
    sqlite: "CREATE TABLE idempotency_keys (
        scope TEXT NOT NULL,
        idem_key TEXT NOT NULL,
        request_hash TEXT NOT NULL,
        status INTEGER,
        content_type TEXT,
        body TEXT,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (scope, idem_key)
    );
    CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);",
    postgres: "CREATE TABLE idempotency_keys (
        scope TEXT NOT NULL,
        idem_key TEXT NOT NULL,
        request_hash TEXT NOT NULL,
        status BIGINT,
        content_type TEXT,
        body TEXT,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (scope, idem_key)
    );
    CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);",
};
