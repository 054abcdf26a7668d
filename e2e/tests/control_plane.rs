//! The control plane over HTTP, as a user drives it: OIDC tokens from a real issuer (moto's
//! Cognito, roles from `cognito:groups`), projects, apps and a pipeline created through the
//! API, the pipeline's lifecycle workflow deploying it on the dev stack (local provisioner),
//! events sent to the new app and counted, an update, a delete, and the OpenAPI document
//! checked by a validator.

use std::{process::Command, time::Duration};

use clickstream_control::{ControlPlane, ControlStore, sqlite::SqliteStore};
use clickstream_core::control_model::{PipelineLevel, StackStatus};
use clickstream_e2e::{DevPorts, DevStack, JsonApi, MotoServer, TemporalDevServer, eventually, tool_path};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn a_user_creates_a_pipeline_through_the_api_and_its_events_are_counted() {
    let directory = tempfile::tempdir().unwrap();
    let temporal = TemporalDevServer::start(directory.path());
    let moto = MotoServer::start(directory.path());
    let pool_id = moto.cognito("CreateUserPool", json!({"PoolName": "console-users"})).await["UserPool"]["Id"].as_str().unwrap().to_string();
    let client_id = moto
        .cognito("CreateUserPoolClient", json!({"UserPoolId": pool_id, "ClientName": "console", "ExplicitAuthFlows": ["ALLOW_ADMIN_USER_PASSWORD_AUTH"]}))
        .await["UserPoolClient"]["ClientId"]
        .as_str()
        .unwrap()
        .to_string();
    for group in ["admin", "operator", "analyst"] {
        moto.cognito("CreateGroup", json!({"UserPoolId": pool_id, "GroupName": group})).await;
    }
    let admin = moto.cognito_id_token(&pool_id, &client_id, "ada", Some("admin")).await;
    let operator = moto.cognito_id_token(&pool_id, &client_id, "otto", Some("operator")).await;
    let analyst = moto.cognito_id_token(&pool_id, &client_id, "ann", Some("analyst")).await;
    let nobody = moto.cognito_id_token(&pool_id, &client_id, "nora", None).await;

    let stack = DevStack::start(
        directory.path(),
        &temporal,
        DevPorts::free(),
        &format!(
            r#"
[console.oidc]
enabled = true
issuer = "https://cognito-idp.us-east-1.amazonaws.com/{pool_id}"
discovery_url = "{moto}/{pool_id}/.well-known/openid-configuration"
client_id = "{client_id}"
roles_claim = "cognito:groups"
"#,
            moto = moto.endpoint(),
        ),
    );
    let ingest_port = stack.ports.ingest;
    let api = JsonApi::new(stack.console_url());
    use reqwest::Method;

    // Who may do what.
    assert_eq!(api.call(Method::GET, "/health", None, None).await.0, 200);
    let (status, auth) = api.call(Method::GET, "/api/v1/auth/config", None, None).await;
    assert_eq!((status, auth["enabled"].as_bool(), auth["client_id"].as_str()), (200, Some(true), Some(client_id.as_str())));
    assert_eq!(api.call(Method::GET, "/api/v1/projects", None, None).await.0, 401, "no token");
    assert_eq!(api.call(Method::GET, "/api/v1/projects", Some("not-a-token"), None).await.0, 401, "garbage");
    assert_eq!(api.call(Method::GET, "/api/v1/projects", Some(&nobody), None).await.0, 403, "no role");
    let (status, me) = api.call(Method::GET, "/api/v1/me", Some(&analyst), None).await;
    assert_eq!((status, me["roles"].clone(), me["auth_enabled"].clone()), (200, json!(["analyst"]), json!(true)));
    assert_eq!(api.call(Method::GET, "/api/v1/projects", Some(&analyst), None).await, (200, json!([])));
    let shop = json!({"id": "shop", "name": "Shop", "environment": "dev"});
    assert_eq!(api.call(Method::POST, "/api/v1/projects", Some(&analyst), Some(shop.clone())).await.0, 403, "analysts read");

    // Projects: validation, creation, conflicts.
    let (status, refused) = api.call(Method::POST, "/api/v1/projects", Some(&operator), Some(json!({"id": "Bad Id", "name": ""}))).await;
    assert_eq!(status, 400, "{refused}");
    assert!(refused["fields"]["id"].is_string() && refused["fields"]["name"].is_string(), "every invalid field is named: {refused}");
    assert_eq!(api.call(Method::POST, "/api/v1/projects", Some(&operator), Some(json!({"id": 7}))).await.0, 400, "malformed JSON");
    let (status, project) = api.call(Method::POST, "/api/v1/projects", Some(&operator), Some(shop.clone())).await;
    assert_eq!((status, project["version"].as_u64()), (201, Some(1)), "{project}");
    assert_eq!(api.call(Method::POST, "/api/v1/projects", Some(&operator), Some(shop)).await.0, 409, "taken");
    assert_eq!(api.call(Method::GET, "/api/v1/projects/nope", Some(&analyst), None).await.0, 404);
    let rename = |version: u64| json!({"name": "Shop!", "environment": "prod", "version": version});
    assert_eq!(api.call(Method::PUT, "/api/v1/projects/shop", Some(&operator), Some(rename(1))).await.0, 200);
    assert_eq!(api.call(Method::PUT, "/api/v1/projects/shop", Some(&operator), Some(rename(1))).await.0, 409, "stale version");

    // An app, with its endpoint.
    let (status, app) = api.call(Method::POST, "/api/v1/projects/shop/apps", Some(&operator), Some(json!({"id": "shop_web", "name": "Web", "platform": "web", "timezone": "Asia/Shanghai"}))).await;
    assert_eq!(status, 201, "{app}");
    assert_eq!(app["endpoint"].as_str(), Some(format!("http://127.0.0.1:{ingest_port}/collect").as_str()));
    let collect = format!("http://127.0.0.1:{ingest_port}/collect?appId=shop_web");
    let timestamp = chrono::Utc::now().timestamp_millis() - 60_000;
    let events: Vec<Value> = (0..6).map(|index| json!({"event_type": "_page_view", "event_id": format!("e{index}"), "app_id": "shop_web", "timestamp": timestamp, "unique_id": "u1"})).collect();
    let send = || api.http.post(&collect).json(&events).send();
    assert_eq!(send().await.unwrap().status().as_u16(), 403, "no pipeline yet: the app is not served");

    // A pipeline: invalid, then valid; the lifecycle workflow makes it active.
    let mut spec = api.call(Method::GET, "/api/v1/pipelines/default-spec", Some(&analyst), None).await.1;
    spec["processing"]["schedule"] = json!({"interval_seconds": 0});
    let (status, refused) = api.call(Method::POST, "/api/v1/pipelines", Some(&operator), Some(json!({"project_id": "shop", "spec": spec}))).await;
    assert_eq!(status, 400);
    assert!(refused["fields"]["spec.processing.schedule.interval_seconds"].is_string(), "{refused}");
    spec["processing"]["schedule"] = json!({"interval_seconds": 10});
    spec["processing"]["buffer_seconds"] = json!(1);
    let (status, pipeline) = api.call(Method::POST, "/api/v1/pipelines", Some(&operator), Some(json!({"project_id": "shop", "spec": spec}))).await;
    assert_eq!(status, 201, "{pipeline}");
    assert_eq!(pipeline["id"], "pipeline-shop");
    assert!(pipeline["workflow_url"].as_str().unwrap().ends_with("/workflows/pipeline-shop"), "{pipeline}");
    assert_eq!(api.call(Method::POST, "/api/v1/pipelines", Some(&operator), Some(json!({"project_id": "shop", "spec": spec}))).await.0, 409, "one per project");
    let phase_of = || async { api.call(Method::GET, "/api/v1/pipelines/pipeline-shop", Some(&analyst), None).await.1 };
    let active = eventually("the pipeline becomes active", Duration::from_secs(60), Duration::from_millis(500), || async {
        let pipeline = phase_of().await;
        (pipeline["status"]["phase"] == "active").then_some(pipeline)
    })
    .await;
    let levels: Vec<&str> = active["status"]["levels"].as_array().unwrap().iter().map(|level| level["state"].as_str().unwrap()).collect();
    assert_eq!(levels, ["deployed", "deployed", "deployed"], "{active}");
    assert_eq!(api.call(Method::POST, "/api/v1/pipelines/pipeline-shop/retry", Some(&operator), None).await.0, 409, "nothing to retry");

    // Events of the new app are accepted and counted.
    eventually("the collector accepts the new app", Duration::from_secs(20), Duration::from_millis(300), || async { (send().await.unwrap().status().as_u16() == 200).then_some(()) }).await;
    eventually("6 events counted", Duration::from_secs(90), Duration::from_secs(1), || async {
        let (_, counted) = api.call(Method::GET, "/api/v1/apps/shop_web/events/count", Some(&analyst), None).await;
        (counted["count"] == 6).then_some(())
    })
    .await;

    // Display names: analysts may set them.
    let names = json!([{"kind": "event", "name": "_page_view", "display_name": "Page view"}]);
    assert_eq!(api.call(Method::PUT, "/api/v1/apps/shop_web/metadata/display-names", Some(&analyst), Some(names)).await.0, 200);

    // An update (reporting off) with the version read, then with a stale one.
    spec["reporting"]["enabled"] = json!(false);
    let (status, updated) = api.call(Method::PUT, "/api/v1/pipelines/pipeline-shop", Some(&operator), Some(json!({"spec": spec, "version": 1}))).await;
    assert_eq!(status, 202, "{updated}");
    assert_eq!(api.call(Method::PUT, "/api/v1/pipelines/pipeline-shop", Some(&operator), Some(json!({"spec": spec, "version": 1}))).await.0, 409);
    eventually("the update is deployed", Duration::from_secs(60), Duration::from_millis(500), || async {
        let pipeline = phase_of().await;
        (pipeline["status"]["phase"] == "active" && pipeline["status"]["spec_version"] == 2 && pipeline["status"]["levels"][2]["state"] == "deleted").then_some(())
    })
    .await;

    // With CloudFormation the lifecycle records the ingestion stack's outputs: the app's
    // endpoint is then the pipeline's own load balancer, not the configured collector.
    let store = ControlStore::new(std::sync::Arc::new(SqliteStore::open(&directory.path().join("control.sqlite")).unwrap()));
    let control = ControlPlane::new(store, std::sync::Arc::new(clickstream_core::Config::default()));
    let mut deployed = control.pipeline_status("pipeline-shop").await.unwrap();
    let load_balancer = "http://clickstream-shop-1234.us-east-1.elb.amazonaws.com/collect";
    let ingestion_stack = StackStatus { name: "clickstream-shop-ingestion".into(), state: "CREATE_COMPLETE".into(), outputs: [("IngestEndpoint".to_string(), load_balancer.to_string())].into(), ..Default::default() };
    deployed.level_mut(PipelineLevel::IngestionProcessing).stacks = vec![ingestion_stack];
    control.record_status("pipeline-shop", &deployed).await.unwrap();
    let (status, app) = api.call(Method::GET, "/api/v1/apps/shop_web", Some(&analyst), None).await;
    assert_eq!((status, app["endpoint"].as_str()), (200, Some(load_balancer)), "{app}");
    let (_, apps) = api.call(Method::GET, "/api/v1/projects/shop/apps", Some(&analyst), None).await;
    assert_eq!(apps[0]["endpoint"].as_str(), Some(load_balancer), "{apps}");

    // The OpenAPI document validates.
    let (status, document) = api.call(Method::GET, "/api/v1/openapi.json", Some(&analyst), None).await;
    assert_eq!(status, 200);
    assert!(document["paths"]["/api/v1/pipelines/{pipeline_id}/retry"]["post"].is_object(), "generated from the handlers");
    let document_path = directory.path().join("openapi.json");
    std::fs::write(&document_path, document.to_string()).unwrap();
    let python = tool_path("moto_server").with_file_name("python3");
    let validated = Command::new(python).args(["-m", "openapi_spec_validator"]).arg(&document_path).output().unwrap();
    assert!(validated.status.success(), "the OpenAPI document is invalid:\n{}{}", String::from_utf8_lossy(&validated.stdout), String::from_utf8_lossy(&validated.stderr));

    // Delete: the project cannot go first; the pipeline goes, then the project (admins only).
    assert_eq!(api.call(Method::DELETE, "/api/v1/projects/shop", Some(&admin), None).await.0, 409, "it has a pipeline");
    assert_eq!(api.call(Method::DELETE, "/api/v1/pipelines/pipeline-shop", Some(&operator), None).await.0, 202);
    eventually("the pipeline is deleted", Duration::from_secs(60), Duration::from_millis(500), || async {
        (api.call(Method::GET, "/api/v1/pipelines/pipeline-shop", Some(&analyst), None).await.0 == 404).then_some(())
    })
    .await;
    assert_eq!(api.call(Method::DELETE, "/api/v1/projects/shop", Some(&operator), None).await.0, 403, "admins delete projects");
    assert_eq!(api.call(Method::DELETE, "/api/v1/projects/shop", Some(&admin), None).await.0, 204);
    let mut dev = stack.process;
    assert!(dev.terminate(Duration::from_secs(30)).success(), "{}", dev.log());
}
