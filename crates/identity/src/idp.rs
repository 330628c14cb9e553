//! Sign-in through the bank's identity provider: the bank's app or H5 gateway, which has
//! already authenticated the customer, hands Huoban a signed JWT assertion (RS256 or
//! ES256), and Huoban exchanges it for its own session.
//!
//! Keys come from configuration (PEM) or from the provider's JWKS URL. The key set is
//! cached and fetched again when an assertion names a key id the cache does not have (key
//! rotation), at most once per [`REFRESH_COOLDOWN`] so forged key ids cannot make Huoban
//! hammer the provider.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use serde::Deserialize;
use tokio::sync::RwLock;

pub const REFRESH_COOLDOWN: Duration = Duration::from_secs(30);
const ALLOWED: [Algorithm; 2] = [Algorithm::RS256, Algorithm::ES256];

#[derive(Debug, Clone, Default, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdpSettings {
    /// Expected `iss` claim.
    pub issuer: String,
    /// Expected `aud` claim.
    pub audience: String,
    /// Where the provider publishes its keys (JWKS).
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// Public keys in PEM (RSA or EC P-256), for providers without a JWKS endpoint.
    #[serde(default)]
    pub public_keys_pem: Vec<String>,
    /// Create a Huoban customer on first sign-in of an unknown subject.
    #[serde(default = "yes")]
    pub provision: bool,
}

fn yes() -> bool {
    true
}

/// Claims Huoban reads from an assertion. `sub` identifies the customer at the bank.
#[derive(Debug, Clone, Deserialize)]
pub struct AssertionClaims {
    pub sub: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub phone_number: Option<String>,
    #[serde(default)]
    pub birthdate: Option<String>,
    #[serde(default)]
    pub locale: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum IdpError {
    #[error("identity-provider sign-in is not configured")]
    NotConfigured,
    #[error("the assertion is not valid: {0}")]
    Invalid(String),
    #[error("the identity provider's keys could not be fetched: {0}")]
    KeysUnavailable(String),
}

#[derive(Default)]
struct KeyCache {
    by_kid: HashMap<String, (Algorithm, DecodingKey)>,
    fetched_at: Option<Instant>,
}

pub struct IdpVerifier {
    settings: IdpSettings,
    static_keys: Vec<(Algorithm, DecodingKey)>,
    cache: RwLock<KeyCache>,
    http: reqwest::Client,
}

impl std::fmt::Debug for IdpVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdpVerifier")
            .field("issuer", &self.settings.issuer)
            .field("jwks_url", &self.settings.jwks_url)
            .field("static_keys", &self.static_keys.len())
            .finish()
    }
}

fn parse_pem(pem: &str) -> Result<(Algorithm, DecodingKey), String> {
    if let Ok(k) = DecodingKey::from_rsa_pem(pem.as_bytes()) {
        return Ok((Algorithm::RS256, k));
    }
    DecodingKey::from_ec_pem(pem.as_bytes())
        .map(|k| (Algorithm::ES256, k))
        .map_err(|e| format!("not an RSA or EC public key in PEM: {e}"))
}

impl IdpVerifier {
    pub fn new(settings: IdpSettings) -> Result<Self, String> {
        if settings.issuer.is_empty() || settings.audience.is_empty() {
            return Err("identity provider needs both issuer and audience".into());
        }
        if settings.jwks_url.is_none() && settings.public_keys_pem.is_empty() {
            return Err("identity provider needs a jwks_url or public_keys_pem".into());
        }
        let static_keys = settings
            .public_keys_pem
            .iter()
            .map(|p| parse_pem(p))
            .collect::<Result<Vec<_>, _>>()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            settings,
            static_keys,
            cache: RwLock::new(KeyCache::default()),
            http,
        })
    }

    pub fn settings(&self) -> &IdpSettings {
        &self.settings
    }

    async fn refresh(&self) -> Result<(), IdpError> {
        let Some(url) = &self.settings.jwks_url else {
            return Ok(());
        };
        {
            let cache = self.cache.read().await;
            if cache.fetched_at.is_some_and(|t| t.elapsed() < REFRESH_COOLDOWN) {
                return Ok(());
            }
        }
        let mut cache = self.cache.write().await;
        if cache.fetched_at.is_some_and(|t| t.elapsed() < REFRESH_COOLDOWN) {
            return Ok(());
        }
        cache.fetched_at = Some(Instant::now());
        let set: JwkSet = self
            .http
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| IdpError::KeysUnavailable(e.to_string()))?
            .json()
            .await
            .map_err(|e| IdpError::KeysUnavailable(e.to_string()))?;
        cache.by_kid.clear();
        for jwk in &set.keys {
            let (Some(kid), Ok(key)) = (jwk.common.key_id.clone(), DecodingKey::from_jwk(jwk)) else {
                continue;
            };
            let alg = match &jwk.algorithm {
                jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
                _ => Algorithm::RS256,
            };
            cache.by_kid.insert(kid, (alg, key));
        }
        tracing::info!(keys = cache.by_kid.len(), "fetched identity-provider keys");
        Ok(())
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.set_issuer(&[&self.settings.issuer]);
        v.set_audience(&[&self.settings.audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.leeway = 30;
        v
    }

    /// Checks signature, issuer, audience and expiry, and returns the claims.
    pub async fn verify(&self, assertion: &str) -> Result<AssertionClaims, IdpError> {
        let header = jsonwebtoken::decode_header(assertion).map_err(|e| IdpError::Invalid(e.to_string()))?;
        if !ALLOWED.contains(&header.alg) {
            return Err(IdpError::Invalid(format!(
                "algorithm {:?} is not accepted; use RS256 or ES256",
                header.alg
            )));
        }
        let mut candidates: Vec<(Algorithm, DecodingKey)> = Vec::new();
        if let Some(kid) = &header.kid
            && self.settings.jwks_url.is_some()
        {
            let known = self.cache.read().await.by_kid.get(kid).cloned();
            let found = match known {
                Some(k) => Some(k),
                None => {
                    self.refresh().await?;
                    self.cache.read().await.by_kid.get(kid).cloned()
                }
            };
            candidates.extend(found);
        }
        candidates.extend(self.static_keys.iter().cloned());
        let mut last = IdpError::Invalid("no key of the identity provider matches the assertion".into());
        for (alg, key) in candidates.into_iter().filter(|(alg, _)| *alg == header.alg) {
            match jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &self.validation(alg)) {
                Ok(data) => return Ok(data.claims),
                Err(e) => last = IdpError::Invalid(e.to_string()),
            }
        }
        Err(last)
    }
}
