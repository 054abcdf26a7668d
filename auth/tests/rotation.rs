//! Key rotation against a JWKS server started by the test. The RSA keys in tests/keys/ are
//! test-only keys made with `openssl genrsa`; their public halves are the `.jwk.json` files.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{Json, Router, extract::State, routing::get};
use clickstream_auth::{AuthError, OidcSettings, TokenValidator};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const ISSUER: &str = "https://issuer.test";

fn key_file(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/keys/{name}", std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR when it runs tests"))).unwrap()
}

fn token(signing_key: &str, key_id: &str, issuer: &str, audience: &str, expires_in_seconds: i64) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key_id.into());
    let claims = json!({"iss": issuer, "aud": audience, "sub": "user-1", "iat": now, "exp": now + expires_in_seconds});
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_rsa_pem(key_file(signing_key).as_bytes()).unwrap()).unwrap()
}

struct Issuer {
    keys: Arc<Mutex<Vec<Value>>>,
    jwks_requests: Arc<Mutex<u32>>,
    discovery_url: String,
}

async fn start_issuer() -> Issuer {
    let keys: Arc<Mutex<Vec<Value>>> = Arc::new(Mutex::new(vec![serde_json::from_str(&key_file("a.jwk.json")).unwrap()]));
    let jwks_requests = Arc::new(Mutex::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let jwks_uri = format!("{base}/jwks.json");
    let state = (keys.clone(), jwks_requests.clone());
    let router = Router::new()
        .route("/.well-known/openid-configuration", get(move || std::future::ready(Json(json!({"issuer": ISSUER, "jwks_uri": jwks_uri})))))
        .route(
            "/jwks.json",
            get(|State((keys, requests)): State<(Arc<Mutex<Vec<Value>>>, Arc<Mutex<u32>>)>| async move {
                *requests.lock().unwrap() += 1;
                Json(json!({"keys": keys.lock().unwrap().clone()}))
            }),
        )
        .with_state(state);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Issuer { keys, jwks_requests, discovery_url: format!("{base}/.well-known/openid-configuration") }
}

fn validator(discovery_url: &str, min_refetch_interval: Duration) -> TokenValidator {
    TokenValidator::new(OidcSettings {
        issuer: ISSUER.into(),
        discovery_url: discovery_url.into(),
        audience: "sdk".into(),
        cache_ttl: Duration::from_secs(3600),
        min_refetch_interval,
    })
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_and_claims_are_checked() {
    let issuer = start_issuer().await;
    let validator = validator(&issuer.discovery_url, Duration::ZERO);

    let claims = validator.validate(&token("a.pem", "key-a", ISSUER, "sdk", 60)).await.unwrap();
    assert_eq!(claims["sub"], "user-1");
    // Cached: a second token signed with the same key does not fetch again.
    validator.validate(&token("a.pem", "key-a", ISSUER, "sdk", 60)).await.unwrap();
    assert_eq!(*issuer.jwks_requests.lock().unwrap(), 1);

    // The issuer rotates: key b appears. A token signed with b makes the validator refetch.
    issuer.keys.lock().unwrap().push(serde_json::from_str(&key_file("b.jwk.json")).unwrap());
    validator.validate(&token("b.pem", "key-b", ISSUER, "sdk", 60)).await.unwrap();
    assert_eq!(*issuer.jwks_requests.lock().unwrap(), 2);

    // Wrong issuer, wrong audience, expired, and a key id that claims a key it was not signed with.
    for (bad, what) in [
        (token("a.pem", "key-a", "https://other.test", "sdk", 60), "issuer"),
        (token("a.pem", "key-a", ISSUER, "other", 60), "audience"),
        (token("a.pem", "key-a", ISSUER, "sdk", -120), "expiry"),
        (token("a.pem", "key-b", ISSUER, "sdk", 60), "signature"),
    ] {
        assert!(matches!(validator.validate(&bad).await, Err(AuthError::InvalidToken(_))), "{what} must be checked");
    }
}

#[tokio::test]
async fn unknown_key_ids_cannot_flood_the_issuer() {
    let issuer = start_issuer().await;
    let validator = validator(&issuer.discovery_url, Duration::from_secs(60));
    validator.validate(&token("a.pem", "key-a", ISSUER, "sdk", 60)).await.unwrap();
    for _ in 0..20 {
        let forged = token("b.pem", "key-forged", ISSUER, "sdk", 60);
        assert!(matches!(validator.validate(&forged).await, Err(AuthError::InvalidToken(_))));
    }
    assert_eq!(*issuer.jwks_requests.lock().unwrap(), 1);
}

#[tokio::test]
async fn an_unreachable_issuer_is_a_retryable_error() {
    let validator = validator("http://127.0.0.1:9/.well-known/openid-configuration", Duration::ZERO);
    let error = validator.validate(&token("a.pem", "key-a", ISSUER, "sdk", 60)).await.unwrap_err();
    assert!(error.is_retryable(), "{error}");
}
