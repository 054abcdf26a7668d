//! Optional OIDC on the collector, against a real issuer: moto's Cognito user pool signs the
//! tokens and serves the discovery document and JWKS.

use std::time::Duration;

use clickstream_e2e::{MotoServer, free_port, start_clickstream};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn with_oidc_on_only_requests_with_a_valid_token_are_accepted() {
    let directory = tempfile::tempdir().unwrap();
    let moto = MotoServer::start(directory.path());
    let pool_id = moto.cognito("CreateUserPool", json!({"PoolName": "sdk-users"})).await["UserPool"]["Id"].as_str().unwrap().to_string();
    let client_id = moto
        .cognito("CreateUserPoolClient", json!({"UserPoolId": pool_id, "ClientName": "web-sdk", "ExplicitAuthFlows": ["ALLOW_ADMIN_USER_PASSWORD_AUTH"]}))
        .await["UserPoolClient"]["ClientId"]
        .as_str()
        .unwrap()
        .to_string();
    let id_token = moto.cognito_id_token(&pool_id, &client_id, "app-user", None).await;

    let port = free_port();
    let config = directory.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[ingest]
listen = "127.0.0.1:{port}"
spool_dir = "{spool}"
[ingest.oidc]
enabled = true
issuer = "https://cognito-idp.us-east-1.amazonaws.com/{pool_id}"
discovery_url = "{moto}/{pool_id}/.well-known/openid-configuration"
audience = "{client_id}"
cookie_name = "clickstream_token"
[storage]
url = "file://{data}"
[[projects]]
id = "p"
apps = ["app"]
"#,
            spool = directory.path().join("spool").display(),
            data = directory.path().join("data").display(),
            moto = moto.endpoint(),
        ),
    )
    .unwrap();
    let mut collector = start_clickstream(&config, "ingest", port, directory.path());
    let url = format!("http://127.0.0.1:{port}/collect?appId=app");
    let events = r#"[{"event_type":"e","event_id":"1","app_id":"app","timestamp":1}]"#;
    let http = reqwest::Client::new();
    let status = |request: reqwest::RequestBuilder| async move { request.body(events).send().await.unwrap().status().as_u16() };

    assert_eq!(status(http.post(&url)).await, 401, "no token");
    assert_eq!(status(http.post(&url).bearer_auth("not-a-token")).await, 401, "garbage");
    // A token whose signature does not match its content.
    let mut tampered = id_token.clone();
    tampered.replace_range(tampered.len() - 6.., "AAAAAA");
    assert_eq!(status(http.post(&url).bearer_auth(&tampered)).await, 401, "tampered");
    assert_eq!(status(http.post(&url).bearer_auth(&id_token)).await, 200, "bearer token");
    assert_eq!(status(http.post(&url).header("cookie", format!("other=1; clickstream_token={id_token}"))).await, 200, "cookie");
    // Health and ping need no token.
    assert_eq!(http.get(format!("http://127.0.0.1:{port}/ping")).send().await.unwrap().status().as_u16(), 200);
    assert!(collector.terminate(Duration::from_secs(30)).success(), "{}", collector.log());
}
