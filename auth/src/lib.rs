//! OIDC bearer-token validation: signature against the issuer's JWKS, `iss`, `exp` and,
//! when configured, `aud`.
//!
//! Keys are fetched from the issuer's discovery document (`jwks_uri`) and cached. A token
//! signed with a key id not in the cache makes the validator fetch the JWKS again (the issuer
//! rotated its keys), at most once per `min_refetch_interval` so that forged key ids cannot
//! turn into a flood of requests to the issuer. The whole set is also refreshed after
//! `cache_ttl`.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use jsonwebtoken::{DecodingKey, Validation, jwk::JwkSet};
use serde::Deserialize;
use tokio::sync::RwLock;

/// Unknown key ids trigger at most one JWKS fetch per this interval, by default.
pub const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct OidcSettings {
    /// The expected `iss` claim.
    pub issuer: String,
    /// Where the discovery document is; `<issuer>/.well-known/openid-configuration` when empty.
    pub discovery_url: String,
    /// The expected `aud` claim; not checked when empty (Cognito access tokens carry none).
    pub audience: String,
    pub cache_ttl: Duration,
    /// Unknown key ids refetch the keys at most this often ([`MIN_REFETCH_INTERVAL`]).
    pub min_refetch_interval: Duration,
}

/// Why a request was not authenticated.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum AuthError {
    /// No token in the request: 401.
    #[error("no bearer token or session cookie")]
    MissingToken,
    /// The token is not acceptable (malformed, expired, wrong issuer or audience, bad
    /// signature, unknown key): 401. Retrying the same token never helps.
    #[error("invalid token: {0}")]
    InvalidToken(String),
    /// The issuer's keys cannot be fetched: 503, retrying later can help.
    #[error("cannot fetch the issuer's keys: {0}")]
    IssuerUnavailable(String),
}

impl AuthError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, AuthError::IssuerUnavailable(_))
    }
}

#[derive(Default)]
struct KeyCache {
    keys_by_id: HashMap<String, (DecodingKey, jsonwebtoken::Algorithm)>,
    fetched_at: Option<Instant>,
}

pub struct TokenValidator {
    settings: OidcSettings,
    http: reqwest::Client,
    cache: RwLock<KeyCache>,
}

#[derive(Deserialize)]
struct DiscoveryDocument {
    jwks_uri: String,
}

impl TokenValidator {
    pub fn new(settings: OidcSettings) -> TokenValidator {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("an HTTP client builds");
        TokenValidator { settings, http, cache: RwLock::new(KeyCache::default()) }
    }

    /// Validates a token and returns its claims.
    pub async fn validate(&self, token: &str) -> Result<serde_json::Map<String, serde_json::Value>, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|error| AuthError::InvalidToken(error.to_string()))?;
        let key_id = header.kid.ok_or_else(|| AuthError::InvalidToken("the token names no key (kid)".into()))?;
        let (key, algorithm) = self.key(&key_id).await?;
        if header.alg != algorithm {
            return Err(AuthError::InvalidToken(format!("the token is signed with {:?}, its key is for {algorithm:?}", header.alg)));
        }
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&self.settings.issuer]);
        if self.settings.audience.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&[&self.settings.audience]);
        }
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(token, &key, &validation)
            .map_err(|error| AuthError::InvalidToken(error.to_string()))?;
        Ok(data.claims)
    }

    async fn key(&self, key_id: &str) -> Result<(DecodingKey, jsonwebtoken::Algorithm), AuthError> {
        {
            let cache = self.cache.read().await;
            let fresh = cache.fetched_at.is_some_and(|fetched| fetched.elapsed() < self.settings.cache_ttl);
            if fresh && let Some(found) = cache.keys_by_id.get(key_id) {
                return Ok(found.clone());
            }
        }
        let mut cache = self.cache.write().await;
        // Another request may have refreshed the keys while this one waited for the lock.
        let recently = cache.fetched_at.is_some_and(|fetched| fetched.elapsed() < self.settings.min_refetch_interval);
        if !recently {
            cache.keys_by_id = self.fetch_keys().await?;
            cache.fetched_at = Some(Instant::now());
        }
        cache.keys_by_id.get(key_id).cloned().ok_or_else(|| AuthError::InvalidToken(format!("the issuer has no key `{key_id}`")))
    }

    async fn fetch_keys(&self) -> Result<HashMap<String, (DecodingKey, jsonwebtoken::Algorithm)>, AuthError> {
        let discovery_url = if self.settings.discovery_url.is_empty() {
            format!("{}/.well-known/openid-configuration", self.settings.issuer.trim_end_matches('/'))
        } else {
            self.settings.discovery_url.clone()
        };
        let unavailable = |what: &str, error: reqwest::Error| AuthError::IssuerUnavailable(format!("{what}: {error}"));
        let discovery: DiscoveryDocument = self
            .http
            .get(&discovery_url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|error| unavailable(&discovery_url, error))?
            .json()
            .await
            .map_err(|error| unavailable(&discovery_url, error))?;
        let key_set: JwkSet = self
            .http
            .get(&discovery.jwks_uri)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|error| unavailable(&discovery.jwks_uri, error))?
            .json()
            .await
            .map_err(|error| unavailable(&discovery.jwks_uri, error))?;
        let mut keys = HashMap::new();
        for jwk in &key_set.keys {
            let (Some(key_id), Ok(key)) = (jwk.common.key_id.clone(), DecodingKey::from_jwk(jwk)) else {
                continue; // a key we cannot use (no id, unsupported type) is skipped
            };
            let algorithm = jwk
                .common
                .key_algorithm
                .and_then(|algorithm| algorithm.to_string().parse().ok())
                .unwrap_or(match jwk.algorithm {
                    jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => jsonwebtoken::Algorithm::ES256,
                    _ => jsonwebtoken::Algorithm::RS256,
                });
            keys.insert(key_id, (key, algorithm));
        }
        tracing::info!(keys = keys.len(), jwks_uri = %discovery.jwks_uri, "fetched the issuer's signing keys");
        Ok(keys)
    }
}

/// The token of a request: `Authorization: Bearer <token>`, else the named cookie.
pub fn token_from_headers<'a>(headers: &'a reqwest::header::HeaderMap, cookie_name: &str) -> Option<&'a str> {
    if let Some(bearer) = headers
        .get(reqwest::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")))
    {
        return Some(bearer.trim());
    }
    if cookie_name.is_empty() {
        return None;
    }
    headers.get_all(reqwest::header::COOKIE).iter().filter_map(|value| value.to_str().ok()).flat_map(|value| value.split(';')).find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == cookie_name).then_some(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_come_from_the_bearer_header_or_the_cookie() {
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(token_from_headers(&headers, "session"), None);
        headers.insert(reqwest::header::COOKIE, "a=1; session=tok2".parse().unwrap());
        assert_eq!(token_from_headers(&headers, "session"), Some("tok2"));
        assert_eq!(token_from_headers(&headers, ""), None);
        headers.insert(reqwest::header::AUTHORIZATION, "Bearer tok1".parse().unwrap());
        assert_eq!(token_from_headers(&headers, "session"), Some("tok1"));
    }

    #[tokio::test]
    async fn malformed_tokens_are_refused_without_asking_the_issuer() {
        let validator = TokenValidator::new(OidcSettings {
            issuer: "http://127.0.0.1:9/nowhere".into(),
            discovery_url: String::new(),
            audience: String::new(),
            cache_ttl: Duration::from_secs(60),
            min_refetch_interval: MIN_REFETCH_INTERVAL,
        });
        assert!(matches!(validator.validate("not.a.jwt").await, Err(AuthError::InvalidToken(_))));
    }
}
