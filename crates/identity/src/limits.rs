//! Rate limits on the endpoints attackers hammer: sign-in (customer and staff), step-up
//! factors (`/api/v1/step-up/…`) and reward claims. Each is a keyed token bucket, per
//! client IP and per account where the account is known (the phone or username a sign-in
//! names, the signed-in customer of a step-up or claim). A refused request gets 429
//! problem `rate-limited` with `Retry-After`.
//!
//! Buckets live in the node's memory: with several nodes behind a load balancer each node
//! limits on its own, so the effective limit is at most the number of nodes times the
//! configured one. The clock is the injectable one, so tests move time instead of sleeping.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    body::{Body, to_bytes},
    extract::{ConnectInfo, Request, State},
    http::{HeaderValue, Method, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use huoban_kit::{ApiError, SharedClock, clock::to_micros};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{IdentityService, auth::bearer, domain::Phone, service::Principal};

/// A bucket of `burst` tokens refilled at `per_minute`; `burst = 0` turns the limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub burst: u32,
    pub per_minute: u32,
}

impl Rate {
    pub const OFF: Rate = Rate {
        burst: 0,
        per_minute: 0,
    };
    pub const fn new(burst: u32, per_minute: u32) -> Self {
        Self { burst, per_minute }
    }
}

/// Limits of one kind of endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    pub per_ip: Rate,
    pub per_account: Rate,
}

/// `[rate_limits]` in the configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSettings {
    pub enabled: bool,
    /// Take the client address from the first `X-Forwarded-For` entry (only behind a proxy
    /// that sets it); otherwise the peer address of the connection.
    pub trust_forwarded_for: bool,
    /// `POST /api/v1/sessions`, `/api/v1/sessions/idp`, `/api/v1/staff/sessions`.
    pub sign_in: Limit,
    /// Every non-GET request under `/api/v1/step-up/`.
    pub step_up: Limit,
    /// `POST /api/v1/rewards/{id}/claims`.
    pub claims: Limit,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            trust_forwarded_for: false,
            // Mobile carriers put many customers behind one address, so per-IP limits are
            // generous and the tight limits are per account.
            sign_in: Limit {
                per_ip: Rate::new(120, 120),
                per_account: Rate::new(10, 5),
            },
            // Above the factors' own lockout (five failures, each a challenge and a
            // verify), so a customer meets the clearer "locked" answer first.
            step_up: Limit {
                per_ip: Rate::new(120, 120),
                per_account: Rate::new(20, 20),
            },
            claims: Limit {
                per_ip: Rate::OFF,
                per_account: Rate::new(30, 60),
            },
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: i64,
}

/// Keyed token buckets. Pure apart from the lock: `take` is given the time.
#[derive(Debug, Default)]
pub struct Buckets {
    map: HashMap<String, Bucket>,
}

impl Buckets {
    /// Takes one token from `key`'s bucket at time `now` (micros); when empty, returns how
    /// many seconds until the next token.
    pub fn take(&mut self, key: &str, rate: Rate, now: i64) -> Result<(), u64> {
        if rate.burst == 0 {
            return Ok(());
        }
        let per_micro = f64::from(rate.per_minute) / 60_000_000.0;
        let bucket = self.map.entry(key.to_owned()).or_insert(Bucket {
            tokens: f64::from(rate.burst),
            at: now,
        });
        let elapsed = (now - bucket.at).max(0) as f64;
        bucket.tokens = (bucket.tokens + elapsed * per_micro).min(f64::from(rate.burst));
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        if per_micro <= 0.0 {
            return Err(3600);
        }
        // (A hair off the exact figure so float noise does not add a second.)
        let wait = ((1.0 - bucket.tokens) / per_micro / 1_000_000.0 - 1e-6).ceil() as u64;
        Err(wait.max(1))
    }

    /// Forgets buckets that have refilled completely (they behave like new ones).
    pub fn prune(&mut self, now: i64, full_after_micros: i64) {
        self.map.retain(|_, b| now - b.at < full_after_micros);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[derive(Debug, Clone)]
pub struct RateLimiter {
    settings: Arc<RateLimitSettings>,
    buckets: Arc<Mutex<Buckets>>,
    clock: SharedClock,
    identity: IdentityService,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    SignIn,
    StepUp,
    Claims,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::SignIn => "sign_in",
            Kind::StepUp => "step_up",
            Kind::Claims => "claims",
        }
    }
}

fn classify(method: &Method, path: &str) -> Option<Kind> {
    if method == Method::GET || method == Method::HEAD || method == Method::OPTIONS {
        return None;
    }
    match path {
        "/api/v1/sessions" | "/api/v1/sessions/idp" | "/api/v1/staff/sessions" if method == Method::POST => {
            Some(Kind::SignIn)
        }
        p if p.starts_with("/api/v1/step-up/") || p == "/api/v1/step-up" => Some(Kind::StepUp),
        p if method == Method::POST && p.starts_with("/api/v1/rewards/") && p.ends_with("/claims") => {
            Some(Kind::Claims)
        }
        _ => None,
    }
}

fn hashed(s: &str) -> String {
    hex::encode(&Sha256::digest(s.as_bytes())[..12])
}

impl RateLimiter {
    pub fn new(settings: RateLimitSettings, clock: SharedClock, identity: IdentityService) -> Self {
        Self {
            settings: Arc::new(settings),
            buckets: Arc::default(),
            clock,
            identity,
        }
    }

    fn limit(&self, kind: Kind) -> Limit {
        match kind {
            Kind::SignIn => self.settings.sign_in,
            Kind::StepUp => self.settings.step_up,
            Kind::Claims => self.settings.claims,
        }
    }

    fn client_ip(&self, request: &Request) -> String {
        if self.settings.trust_forwarded_for
            && let Some(first) = request
                .headers()
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        {
            return first.to_owned();
        }
        request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string())
            .unwrap_or_else(|| "unknown".to_owned())
    }

    fn check(&self, keys: &[(String, Rate)]) -> Result<(), u64> {
        let now = to_micros(self.clock.now());
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > 100_000 {
            buckets.prune(now, 3_600_000_000);
        }
        // Every bucket pays, so hammering one account also drains the address's bucket.
        let mut wait = None;
        for (key, rate) in keys {
            if let Err(w) = buckets.take(key, *rate, now) {
                wait = Some(wait.map_or(w, |x: u64| x.max(w)));
            }
        }
        wait.map_or(Ok(()), Err)
    }
}

/// The account a sign-in names, from its JSON body (hashed; the phone is never kept).
fn sign_in_account(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    if let Some(phone) = value.get("phone").and_then(|p| p.as_str()) {
        let normal = Phone::parse(phone)
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|_| phone.to_owned());
        return Some(format!("phone:{}", hashed(&normal)));
    }
    value
        .get("username")
        .and_then(|u| u.as_str())
        .map(|u| format!("staff:{}", hashed(&u.to_lowercase())))
}

/// The middleware; mount it on the API router.
pub async fn middleware(State(limiter): State<RateLimiter>, request: Request, next: Next) -> Response {
    if !limiter.settings.enabled {
        return next.run(request).await;
    }
    let Some(kind) = classify(request.method(), request.uri().path()) else {
        return next.run(request).await;
    };
    let limit = limiter.limit(kind);
    let ip = limiter.client_ip(&request);
    let mut keys = vec![(format!("{}:ip:{ip}", kind.name()), limit.per_ip)];
    let request = if kind == Kind::SignIn {
        let (parts, body) = request.into_parts();
        let Ok(bytes) = to_bytes(body, 64 * 1024).await else {
            return ApiError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                "Request body too large",
            )
            .into_response();
        };
        if let Some(account) = sign_in_account(&bytes) {
            keys.push((format!("{}:{account}", kind.name()), limit.per_account));
        }
        Request::from_parts(parts, Body::from(bytes))
    } else {
        let (mut parts, body) = request.into_parts();
        if let Ok(token) = bearer(&parts)
            && let Ok(principal) = limiter.identity.authenticate(token).await
        {
            let id = match &principal {
                Principal::Customer { id, .. } | Principal::Staff { id, .. } => *id,
            };
            keys.push((format!("{}:account:{id}", kind.name()), limit.per_account));
            // The handler's extractor reuses it instead of looking the token up again.
            parts.extensions.insert(principal);
        }
        Request::from_parts(parts, body)
    };
    match limiter.check(&keys) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            tracing::info!(kind = kind.name(), retry_after = wait, "rate limited");
            let mut response = ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many attempts",
            )
            .detail(format!("Too many attempts; try again in {wait} seconds."))
            .with("retry_after_seconds", wait)
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let mut b = Buckets::default();
        let rate = Rate::new(3, 6); // one token every 10 s
        for _ in 0..3 {
            assert!(b.take("k", rate, 0).is_ok());
        }
        assert_eq!(b.take("k", rate, 0), Err(10));
        assert_eq!(b.take("k", rate, 4_000_000), Err(6));
        assert!(b.take("k", rate, 10_000_000).is_ok());
        assert!(b.take("other", rate, 10_000_000).is_ok(), "keys are separate");
        assert!(b.take("k", Rate::OFF, 0).is_ok(), "burst 0 is no limit");
    }

    #[test]
    fn only_the_limited_endpoints_are_classified() {
        assert_eq!(classify(&Method::POST, "/api/v1/sessions"), Some(Kind::SignIn));
        assert_eq!(classify(&Method::POST, "/api/v1/staff/sessions"), Some(Kind::SignIn));
        assert_eq!(classify(&Method::DELETE, "/api/v1/sessions"), None);
        assert_eq!(
            classify(&Method::POST, "/api/v1/step-up/pin/verify"),
            Some(Kind::StepUp)
        );
        assert_eq!(classify(&Method::GET, "/api/v1/step-up/factors"), None);
        assert_eq!(classify(&Method::POST, "/api/v1/rewards/x/claims"), Some(Kind::Claims));
        assert_eq!(classify(&Method::POST, "/api/v1/transfers"), None);
    }
}
