//! Cross-site request refusal (CSRF protection) for state-changing requests.
//!
//! The API authenticates with bearer tokens that a page must attach itself, so a forged
//! cross-site form or `fetch` cannot act as a customer today. A staff console signed in
//! with a cookie would change that; this layer closes the door before it opens: a POST,
//! PUT, PATCH or DELETE that a browser marks as coming from another site is answered 403
//! `cross-site-request` before any handler (or the idempotency store) runs, so nothing is
//! written.
//!
//! What a browser tells us, and how it is judged:
//! - `Sec-Fetch-Site` (Fetch Metadata, sent by current browsers, not settable by pages):
//!   `same-origin` and `none` (typed by the user) pass; `same-site` passes only when
//!   configured or when its `Origin` is allowed; `cross-site` passes only when its
//!   `Origin` is an allowed one (an H5 page served from another site, listed in
//!   `http.cors_origins`).
//! - `Origin` (sent on cross-origin requests and on same-origin POSTs): passes when it is
//!   an allowed origin or names this very host (the `Host` the browser addressed); `null`
//!   and any other origin are refused.
//! - Neither header: not a browser (server-to-server calls, curl, the benchmark client),
//!   or a browser too old to be attacked this way with a bearer token. It passes.
//!
//! Reads (GET, HEAD, OPTIONS) are never refused: they change nothing, and CORS decides
//! whether a cross-site page may see the answer.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{HeaderMap, Method, StatusCode, Uri, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::ApiError;

pub const SLUG: &str = "cross-site-request";

/// The guard's configuration: which origins may send state-changing requests.
#[derive(Debug, Clone)]
pub struct CrossSiteGuard {
    enabled: bool,
    /// Normalised origins (`scheme://host[:port]`, default ports left out).
    allowed: Vec<String>,
    /// `*` was configured: every origin is allowed.
    any_origin: bool,
    allow_same_site: bool,
}

impl CrossSiteGuard {
    /// `origins` are the configured browser origins (`http.cors_origins`, where `*` allows
    /// any) and the server's public URL; entries that are not URLs are ignored.
    pub fn new<'a>(enabled: bool, origins: impl IntoIterator<Item = &'a str>, allow_same_site: bool) -> Arc<Self> {
        let mut any_origin = false;
        let mut allowed = Vec::new();
        for o in origins {
            if o.trim() == "*" {
                any_origin = true;
            } else if let Some(n) = normalize(o) {
                allowed.push(n);
            }
        }
        Arc::new(Self {
            enabled,
            allowed,
            any_origin,
            allow_same_site,
        })
    }

    fn origin_allowed(&self, origin: &str, headers: &HeaderMap) -> bool {
        let Some(origin) = normalize(origin) else {
            return false;
        };
        if self.any_origin || self.allowed.contains(&origin) {
            return true;
        }
        // Same origin: the browser addressed this host, and says the page came from it.
        let scheme = origin.split_once("://").map_or("", |(s, _)| s);
        headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| normalize(&format!("{scheme}://{h}")))
            .is_some_and(|own| own == origin)
    }

    /// `None` when the request may go on; otherwise why it is refused.
    pub fn judge(&self, method: &Method, headers: &HeaderMap) -> Option<String> {
        if !self.enabled || !matches!(*method, Method::POST | Method::PUT | Method::PATCH | Method::DELETE) {
            return None;
        }
        let origin = headers.get(header::ORIGIN).map(|o| o.to_str().unwrap_or("null"));
        let site = headers
            .get("sec-fetch-site")
            .and_then(|s| s.to_str().ok())
            .map(str::to_ascii_lowercase);
        let origin_ok = origin.is_some_and(|o| self.origin_allowed(o, headers));
        match site.as_deref() {
            Some("same-origin") | Some("none") => None,
            Some("same-site") if self.allow_same_site || origin_ok => None,
            Some("same-site") => Some(format!(
                "The request came from another page of the same site ({}), which may not change anything here.",
                origin.unwrap_or("no origin")
            )),
            Some(_) if origin_ok => None,
            Some(other) => Some(format!(
                "The browser marked the request {other} ({}); only the bank's own pages may change anything here.",
                origin.unwrap_or("no origin")
            )),
            None => match origin {
                None => None,
                Some(_) if origin_ok => None,
                Some(o) => Some(format!(
                    "The request came from {o}, which is not one of the bank's pages."
                )),
            },
        }
    }
}

/// `scheme://host[:port]` in lower case with the scheme's default port left out, as
/// browsers send `Origin`; `None` for `null` or anything that is not an absolute URL.
fn normalize(origin: &str) -> Option<String> {
    let uri: Uri = origin.trim().parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let authority = uri.authority()?;
    let host = authority.host().to_ascii_lowercase();
    let port = authority.port_u16();
    let default = match scheme.as_str() {
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    };
    Some(match port {
        Some(p) if Some(p) != default => format!("{scheme}://{host}:{p}"),
        _ => format!("{scheme}://{host}"),
    })
}

pub async fn middleware(State(guard): State<Arc<CrossSiteGuard>>, request: Request, next: Next) -> Response {
    if let Some(detail) = guard.judge(request.method(), request.headers()) {
        tracing::info!(method = %request.method(), path = %request.uri().path(), "cross-site request refused");
        return ApiError::new(StatusCode::FORBIDDEN, SLUG, "Cross-site request refused")
            .detail(detail)
            .into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().expect("header value"));
        }
        h
    }

    fn guard() -> Arc<CrossSiteGuard> {
        CrossSiteGuard::new(
            true,
            ["https://h5.bank.example", "https://huoban.bank.example:443/"],
            false,
        )
    }

    #[test]
    fn origins_are_normalised_as_browsers_send_them() {
        assert_eq!(
            normalize("HTTPS://Huoban.Bank.Example:443/x").as_deref(),
            Some("https://huoban.bank.example")
        );
        assert_eq!(
            normalize("http://127.0.0.1:8080").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(normalize("null"), None);
        assert_eq!(normalize("h5.bank.example"), None);
    }

    #[test]
    fn judges_browser_marks() {
        let g = guard();
        let post = Method::POST;
        assert!(g.judge(&post, &headers(&[])).is_none(), "no browser headers");
        assert!(
            g.judge(
                &Method::GET,
                &headers(&[("sec-fetch-site", "cross-site"), ("origin", "https://evil.example")])
            )
            .is_none()
        );
        assert!(
            g.judge(
                &post,
                &headers(&[("sec-fetch-site", "cross-site"), ("origin", "https://evil.example")])
            )
            .is_some()
        );
        assert!(g.judge(&post, &headers(&[("sec-fetch-site", "cross-site")])).is_some());
        assert!(
            g.judge(
                &post,
                &headers(&[("sec-fetch-site", "cross-site"), ("origin", "https://h5.bank.example")])
            )
            .is_none()
        );
        assert!(
            g.judge(
                &post,
                &headers(&[("sec-fetch-site", "same-site"), ("origin", "https://x.bank.example")])
            )
            .is_some()
        );
        assert!(
            g.judge(
                &post,
                &headers(&[
                    ("sec-fetch-site", "same-origin"),
                    ("origin", "https://huoban.bank.example")
                ])
            )
            .is_none()
        );
        assert!(
            g.judge(&post, &headers(&[("origin", "https://evil.example")]))
                .is_some()
        );
        assert!(g.judge(&post, &headers(&[("origin", "null")])).is_some());
        assert!(
            g.judge(&post, &headers(&[("origin", "https://huoban.bank.example")]))
                .is_none()
        );
        // Same origin by the Host the browser addressed.
        assert!(
            g.judge(
                &Method::DELETE,
                &headers(&[("origin", "http://10.0.0.5:8080"), ("host", "10.0.0.5:8080")])
            )
            .is_none()
        );
        assert!(
            g.judge(
                &Method::DELETE,
                &headers(&[("origin", "https://api.example"), ("host", "api.example:443")])
            )
            .is_none()
        );
        assert!(
            g.judge(
                &Method::DELETE,
                &headers(&[("origin", "http://10.0.0.6:8080"), ("host", "10.0.0.5:8080")])
            )
            .is_some()
        );
        let lax = CrossSiteGuard::new(true, ["https://h5.bank.example"], true);
        assert!(
            lax.judge(
                &post,
                &headers(&[("sec-fetch-site", "same-site"), ("origin", "https://x.bank.example")])
            )
            .is_none()
        );
        let off = CrossSiteGuard::new(false, [], false);
        assert!(
            off.judge(&post, &headers(&[("sec-fetch-site", "cross-site")]))
                .is_none()
        );
        let any = CrossSiteGuard::new(true, ["*"], false);
        assert!(
            any.judge(
                &post,
                &headers(&[("sec-fetch-site", "cross-site"), ("origin", "https://x.example")])
            )
            .is_none()
        );
        assert!(
            any.judge(&post, &headers(&[("sec-fetch-site", "cross-site")]))
                .is_some()
        );
    }
}
