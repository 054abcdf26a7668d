//! The reporting step's QuickSight assets against moto's QuickSight (completed by the harness's
//! moto wrapper with data sets, templates, analyses and dashboards it lacks): what is created
//! per app, a second run updating in place (a new dashboard version published), and removal.

use clickstream_worker::lifecycle::quicksight::{PublishedApp, QuickSightPublisher, QuickSightTarget};

const ACCOUNT: &str = "123456789012";

fn target() -> QuickSightTarget {
    QuickSightTarget {
        asset_id_prefix: "clickstream_shop".into(),
        principal_arn: format!("arn:aws:quicksight:us-east-1:{ACCOUNT}:user/default/admin"),
        data_source_role_arn: format!("arn:aws:iam::{ACCOUNT}:role/clickstream-qs-1"),
        redshift_host: "clickstream.123456789012.us-east-1.redshift-serverless.amazonaws.com".into(),
        redshift_port: 5439,
        redshift_database: "dev".into(),
        vpc_connection_arn: Some(format!("arn:aws:quicksight:us-east-1:{ACCOUNT}:vpcConnection/clickstream")),
    }
}

fn custom_sql(data_set: &aws_sdk_quicksight::types::DataSet) -> String {
    let table = data_set.physical_table_map().and_then(|tables| tables.values().next()).expect("one physical table");
    let aws_sdk_quicksight::types::PhysicalTable::CustomSql(sql) = table else { panic!("not custom SQL: {table:?}") };
    sql.sql_query().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_reporting_step_publishes_each_apps_dashboard_and_removes_it() {
    clickstream_e2e::use_test_aws_credentials();
    let directory = tempfile::tempdir().unwrap();
    let moto = clickstream_e2e::MotoServer::start(directory.path());
    let client = aws_sdk_quicksight::Client::new(&clickstream_control::dynamodb::sdk_config("us-east-1", &moto.endpoint()).await);
    let publisher = QuickSightPublisher { client: client.clone() };
    let mut apps = vec![PublishedApp { app_id: "shop_web".into(), timezone: "Asia/Shanghai".into() }, PublishedApp { app_id: "shop_ios".into(), timezone: "UTC".into() }];

    let published = publisher.publish(&target(), &apps).await.unwrap();
    assert_eq!(published.data_source, "clickstream_shop_redshift");
    assert_eq!(published.dashboards, ["clickstream_shop_shop_web", "clickstream_shop_shop_ios"]);
    assert_eq!(published.data_sets, ["clickstream_shop_shop_web_sessions", "clickstream_shop_shop_web_events", "clickstream_shop_shop_ios_sessions", "clickstream_shop_shop_ios_events"]);

    // The data source: Redshift through the VPC connection.
    let source = client.describe_data_source().aws_account_id(ACCOUNT).data_source_id("clickstream_shop_redshift").send().await.unwrap();
    let source = source.data_source().unwrap();
    assert_eq!(source.r#type().map(|kind| kind.as_str()), Some("REDSHIFT"));
    assert!(source.vpc_connection_properties().is_some_and(|vpc| vpc.vpc_connection_arn().ends_with("vpcConnection/clickstream")), "{source:?}");

    // The data sets read the app's aggregates, with local times in the app's zone.
    let sessions = client.describe_data_set().aws_account_id(ACCOUNT).data_set_id("clickstream_shop_shop_web_sessions").send().await.unwrap();
    let sql = custom_sql(sessions.data_set().unwrap());
    assert!(sql.contains("FROM \"shop_web\".report_session_activity") && sql.contains("CONVERT_TIMEZONE('UTC', 'Asia/Shanghai'"), "{sql}");
    let events = client.describe_data_set().aws_account_id(ACCOUNT).data_set_id("clickstream_shop_shop_ios_events").send().await.unwrap();
    let sql = custom_sql(events.data_set().unwrap());
    assert!(sql.contains("FROM \"shop_ios\".report_event_activity") && !sql.contains("CONVERT_TIMEZONE"), "{sql}");

    // Template, analysis and dashboard per app; the dashboard is made from the template.
    let template = client.describe_template().aws_account_id(ACCOUNT).template_id("clickstream_shop_shop_web").send().await.unwrap();
    let template_arn = template.template().and_then(|template| template.arn()).unwrap().to_string();
    client.describe_analysis().aws_account_id(ACCOUNT).analysis_id("clickstream_shop_shop_web").send().await.unwrap();
    let dashboard = client.describe_dashboard().aws_account_id(ACCOUNT).dashboard_id("clickstream_shop_shop_web").send().await.unwrap();
    let version = dashboard.dashboard().and_then(|dashboard| dashboard.version()).unwrap();
    assert_eq!((version.version_number(), version.source_entity_arn()), (Some(1), Some(template_arn.as_str())));

    // Run again with a changed time zone: everything is updated in place and the dashboard's
    // new version is the published one.
    apps[0].timezone = "Europe/Berlin".into();
    publisher.publish(&target(), &apps).await.unwrap();
    let sessions = client.describe_data_set().aws_account_id(ACCOUNT).data_set_id("clickstream_shop_shop_web_sessions").send().await.unwrap();
    assert!(custom_sql(sessions.data_set().unwrap()).contains("'Europe/Berlin'"));
    let dashboard = client.describe_dashboard().aws_account_id(ACCOUNT).dashboard_id("clickstream_shop_shop_web").send().await.unwrap();
    assert_eq!(dashboard.dashboard().and_then(|dashboard| dashboard.version()).and_then(|version| version.version_number()), Some(2));

    // Removal deletes every asset; removing again finds nothing to do.
    publisher.remove(&target(), &apps).await.unwrap();
    assert!(client.describe_dashboard().aws_account_id(ACCOUNT).dashboard_id("clickstream_shop_shop_web").send().await.is_err());
    assert!(client.describe_template().aws_account_id(ACCOUNT).template_id("clickstream_shop_shop_ios").send().await.is_err());
    assert!(client.describe_data_set().aws_account_id(ACCOUNT).data_set_id("clickstream_shop_shop_ios_events").send().await.is_err());
    assert!(client.describe_data_source().aws_account_id(ACCOUNT).data_source_id("clickstream_shop_redshift").send().await.is_err());
    publisher.remove(&target(), &apps).await.unwrap();

    // A principal that is not an ARN is refused before any call, for good.
    let refused = publisher.publish(&QuickSightTarget { principal_arn: "admin".into(), ..target() }, &apps).await.unwrap_err();
    assert!(!refused.is_retryable() && refused.to_string().contains("not a QuickSight principal ARN"), "{refused}");
}
