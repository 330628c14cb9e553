//! Security headers on every response: `X-Content-Type-Options: nosniff`, a
//! `Referrer-Policy`, framing refused (`X-Frame-Options: DENY` and CSP `frame-ancestors`),
//! a Content-Security-Policy (the configured page policy on HTML, a deny-all policy on
//! everything else) and `Strict-Transport-Security` when configured. A handler that sets
//! one of these itself keeps its own value.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{HeaderName, HeaderValue, header},
    middleware::Next,
    response::Response,
};

/// The policy for pages unless configured otherwise: only this origin's scripts, styles
/// (inline styles allowed), images and API calls; no plugins; never framed.
pub const DEFAULT_PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; \
frame-ancestors 'none'";
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

#[derive(Debug, Clone)]
pub struct SecurityHeaders {
    page_csp: HeaderValue,
    hsts: Option<HeaderValue>,
}

impl SecurityHeaders {
    /// `hsts_max_age_secs = 0` sends no HSTS (plain-HTTP demos); set it when served over TLS.
    pub fn new(page_csp: &str, hsts_max_age_secs: u64) -> Result<Arc<Self>, String> {
        let page_csp = HeaderValue::from_str(page_csp).map_err(|e| format!("content_security_policy: {e}"))?;
        let hsts = (hsts_max_age_secs > 0)
            .then(|| HeaderValue::from_str(&format!("max-age={hsts_max_age_secs}; includeSubDomains")))
            .transpose()
            .map_err(|e| e.to_string())?;
        Ok(Arc::new(Self { page_csp, hsts }))
    }
}

pub async fn middleware(State(policy): State<Arc<SecurityHeaders>>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let headers = response.headers_mut();
    let mut set = |name: HeaderName, value: HeaderValue| {
        headers.entry(name).or_insert(value);
    };
    set(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    set(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    set(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    set(
        header::CONTENT_SECURITY_POLICY,
        if html {
            policy.page_csp.clone()
        } else {
            HeaderValue::from_static(API_CSP)
        },
    );
    if let Some(hsts) = &policy.hsts {
        set(header::STRICT_TRANSPORT_SECURITY, hsts.clone());
    }
    response
}
