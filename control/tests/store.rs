//! The store contract, run against both backends: SQLite (embedded) and DynamoDB on moto.

use std::sync::Arc;

use clickstream_control::{
    ControlError, ControlPlane, ControlStore, StoreError,
    dynamodb::DynamoDbStore,
    live::projects_of_store,
    service::{AppChanges, NewApp, NewPipeline, NewPlugin, NewProject, ProjectChanges},
    sqlite::SqliteStore,
};
use clickstream_core::{
    Config,
    control_model::{DisplayName, MetadataKind, PipelinePhase, PipelineSpec, PipelineStatus, Platform, Project},
};
use clickstream_e2e::{MotoServer, use_test_aws_credentials};

fn new_project(id: &str) -> NewProject {
    NewProject { id: id.into(), name: format!("Project {id}"), description: String::new(), environment: Default::default() }
}

fn new_app(id: &str) -> NewApp {
    NewApp { id: id.into(), name: id.into(), description: String::new(), platform: Platform::Web, timezone: "Asia/Shanghai".into() }
}

/// Everything the control plane asks of a store, on one backend.
async fn exercise(store: ControlStore) {
    let control = ControlPlane::new(store.clone(), Arc::new(Config::default()));

    // Create, read, list.
    let shop = control.create_project(new_project("shop")).await.unwrap();
    assert_eq!(shop.stamp.version, 1);
    control.create_project(new_project("blog")).await.unwrap();
    assert!(matches!(control.create_project(new_project("shop")).await, Err(ControlError::Conflict(_))), "an id is taken once");
    let listed: Vec<String> = control.list_projects().await.unwrap().into_iter().map(|project| project.id).collect();
    assert_eq!(listed, ["blog", "shop"]);
    assert!(matches!(control.project("nope").await, Err(ControlError::NotFound(_))));

    // Versioned updates: the second writer of version 1 loses.
    let changes = |name: &str| ProjectChanges { name: name.into(), description: String::new(), environment: Default::default(), version: 1 };
    let updated = control.update_project("shop", changes("Shop v2")).await.unwrap();
    assert_eq!((updated.stamp.version, updated.name.as_str()), (2, "Shop v2"));
    assert!(updated.stamp.updated_at >= updated.stamp.created_at);
    let stale = control.update_project("shop", changes("lost update")).await;
    assert!(matches!(stale, Err(ControlError::Conflict(ref message)) if message.contains("version 1")), "{stale:?}");
    assert_eq!(control.project("shop").await.unwrap().name, "Shop v2");

    // Concurrent writers of one version: exactly one wins.
    let racers = (0..4).map(|index| {
        let control = control.clone();
        tokio::spawn(async move { control.update_project("blog", ProjectChanges { name: format!("racer {index}"), description: String::new(), environment: Default::default(), version: 1 }).await })
    });
    let results = futures::future::join_all(racers).await;
    let winners = results.iter().filter(|result| result.as_ref().unwrap().is_ok()).count();
    assert_eq!(winners, 1, "{results:?}");

    // Apps: ids unique across projects; time zones checked.
    control.create_app("shop", new_app("shop_web")).await.unwrap();
    let taken = control.create_app("blog", new_app("shop_web")).await;
    assert!(matches!(taken, Err(ControlError::Conflict(ref message)) if message.contains("unique across projects")), "{taken:?}");
    let bad_zone = control.create_app("shop", NewApp { timezone: "Mars/Base".into(), ..new_app("shop_ios") }).await;
    assert!(matches!(bad_zone, Err(ControlError::Invalid(ref fields)) if fields.contains_key("timezone")), "{bad_zone:?}");
    assert!(matches!(control.create_app("nope", new_app("x_app")).await, Err(ControlError::NotFound(_))));
    let app = control.update_app("shop_web", AppChanges { name: "Web".into(), description: String::new(), platform: Platform::Web, timezone: "UTC".into(), version: 1 }).await.unwrap();
    assert_eq!(app.timezone, "UTC");

    // Pipelines: one per project; status kept apart from the spec's version; live projects.
    let pipeline = control.create_pipeline(NewPipeline { project_id: "shop".into(), spec: PipelineSpec::default() }).await.unwrap();
    assert_eq!(pipeline.id, "pipeline-shop");
    assert!(matches!(control.create_pipeline(NewPipeline { project_id: "shop".into(), spec: PipelineSpec::default() }).await, Err(ControlError::Conflict(_))));
    let unknown_project = control.create_pipeline(NewPipeline { project_id: "nope".into(), spec: PipelineSpec::default() }).await;
    assert!(matches!(unknown_project, Err(ControlError::Invalid(ref fields)) if fields.contains_key("project_id")), "{unknown_project:?}");
    control.record_status(&pipeline.id, &PipelineStatus { phase: PipelinePhase::Active, ..PipelineStatus::default() }).await.unwrap();
    assert_eq!(control.pipeline_status(&pipeline.id).await.unwrap().phase, PipelinePhase::Active);
    assert_eq!(control.pipeline(&pipeline.id).await.unwrap().stamp.version, 1, "recording a status leaves the spec's version");
    let live = projects_of_store(&store).await.unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!((live[0].id.as_str(), live[0].apps.clone(), live[0].etl_interval_seconds), ("shop", vec!["shop_web".to_string()], 60));
    assert!(matches!(control.delete_project("shop").await, Err(ControlError::Conflict(ref message)) if message.contains("pipeline")));

    // Plugins: built-ins listed and protected; custom ones in use cannot go.
    let bad_plugin = control.create_plugin(NewPlugin { id: "p1".into(), name: "P".into(), description: String::new(), kind: Default::default(), module_uri: "ftp://x".into(), config: String::new() }).await;
    assert!(matches!(bad_plugin, Err(ControlError::Invalid(ref fields)) if fields.contains_key("module_uri")), "{bad_plugin:?}");
    control.create_plugin(NewPlugin { id: "p1".into(), name: "P".into(), description: String::new(), kind: Default::default(), module_uri: "file:///plugins/p1.wasm".into(), config: String::new() }).await.unwrap();
    let plugins: Vec<(String, bool)> = control.list_plugins().await.unwrap().into_iter().map(|plugin| (plugin.id, plugin.built_in)).collect();
    assert_eq!(plugins.len(), 5);
    assert_eq!(plugins[4], ("p1".to_string(), false));
    assert!(matches!(control.delete_plugin("user_agent").await, Err(ControlError::Conflict(_))));

    // Display names: upserted per app.
    let name = |kind, name: &str, display: &str| DisplayName { kind, name: name.into(), display_name: display.into(), description: String::new() };
    control.put_display_names("shop_web", vec![name(MetadataKind::Event, "_page_view", "Page view")]).await.unwrap();
    let names = control.put_display_names("shop_web", vec![name(MetadataKind::Event, "_page_view", "Page viewed"), name(MetadataKind::UserAttribute, "plan", "Plan")]).await.unwrap();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&name(MetadataKind::Event, "_page_view", "Page viewed")));
    assert!(control.display_names("other_app").await.unwrap().is_empty());

    // Removing the pipeline lets the project go, with its apps.
    control.remove_pipeline(&pipeline.id).await.unwrap();
    control.delete_project("shop").await.unwrap();
    assert!(matches!(control.app("shop_web").await, Err(ControlError::NotFound(_))));
    assert!(!store.delete::<Project>("shop").await.unwrap(), "already gone");
}

#[tokio::test]
async fn the_embedded_store_keeps_the_contract_and_survives_a_restart() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("control.sqlite");
    exercise(ControlStore::new(Arc::new(SqliteStore::open(&path).unwrap()))).await;

    // A second handle on the same file (another process of the dev stack) and a reopen see
    // the same records.
    let first = ControlStore::new(Arc::new(SqliteStore::open(&path).unwrap()));
    let second = ControlStore::new(Arc::new(SqliteStore::open(&path).unwrap()));
    let control = ControlPlane::new(first, Arc::new(Config::default()));
    control.create_project(new_project("kept")).await.unwrap();
    assert_eq!(second.get::<Project>("kept").await.unwrap().unwrap().name, "Project kept");
    drop((control, second));
    let reopened = ControlStore::new(Arc::new(SqliteStore::open(&path).unwrap()));
    assert!(reopened.get::<Project>("kept").await.unwrap().is_some());
}

#[tokio::test]
async fn the_dynamodb_store_keeps_the_contract() {
    use_test_aws_credentials();
    let logs = tempfile::tempdir().unwrap();
    let moto = MotoServer::start(logs.path());
    let store = DynamoDbStore::connect("us-east-1", &moto.endpoint(), "clickstream-control").await;
    store.ensure_table().await.unwrap();
    store.ensure_table().await.unwrap(); // idempotent
    exercise(ControlStore::new(Arc::new(store))).await;
}

#[tokio::test]
async fn an_unreachable_dynamodb_is_a_retryable_error() {
    use_test_aws_credentials();
    let store = DynamoDbStore::connect("us-east-1", &format!("http://127.0.0.1:{}", clickstream_e2e::free_port()), "t").await;
    let error = ControlStore::new(Arc::new(store)).get::<Project>("x").await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)) && error.is_retryable(), "{error:?}");
}
