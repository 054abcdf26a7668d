//! The task-queue backlog metric: a workflow waiting on a queue no worker polls is counted by
//! Temporal (dev server) and published to CloudWatch (moto), where the pipelines' worker
//! autoscaling reads it.

mod common;

use std::time::Duration;

use clickstream_e2e::{MotoServer, TemporalDevServer};
use clickstream_workflows::{
    LoadDataWorkflow,
    types::{LoadInput, LoadSummary},
};
use temporalio_client::WorkflowStartOptions;

#[tokio::test(flavor = "multi_thread")]
async fn the_backlog_of_a_queue_without_workers_reaches_cloudwatch() {
    clickstream_e2e::use_test_aws_credentials();
    let directory = tempfile::tempdir().unwrap();
    let moto = MotoServer::start(directory.path());
    let temporal = TemporalDevServer::start(directory.path());
    let mut config = common::test_config(directory.path());
    config.temporal.address = temporal.address();
    config.temporal.task_queue = "backlog-test".into();
    config.control.cloudwatch_endpoint = moto.endpoint();
    // Pipelines deployed with CloudFormation: the store's project `shop` has workers of its own.
    config.control.provisioner = clickstream_core::config::ProvisionerKind::Cloudformation;
    config.live_projects.replace(vec![clickstream_core::config::ProjectConfig { id: "shop".into(), apps: vec!["shop_web".into()], ..Default::default() }]);
    let client = clickstream_worker::connect(&config, Duration::from_secs(30)).await.unwrap();
    let publisher = clickstream_worker::backlog_publisher(&config, &client).await;
    assert_eq!(publisher.queues(), ["backlog-test", config.temporal.warehouse_task_queue.as_str(), "clickstream-etl-shop"]);

    // Nothing waits yet.
    assert_eq!(publisher.backlog("backlog-test").await.unwrap(), 0);
    // Two workflows on the queue, one on the pipeline's, no worker: their workflow tasks wait.
    for (task_queue, id) in [("backlog-test", "waiting-1"), ("backlog-test", "waiting-2"), ("clickstream-etl-shop", "waiting-shop")] {
        let input = LoadInput { project_id: "proj".into(), max_files_per_batch: 1, warehouse_task_queue: "nobody".into(), carried_over: LoadSummary::default(), metadata_scan: None };
        client.start_workflow(LoadDataWorkflow::run, input, WorkflowStartOptions::new(task_queue, id).build()).await.unwrap();
    }
    // Temporal refreshes its approximate counts every few seconds.
    let mut published = Vec::new();
    for _ in 0..60 {
        published = publisher.publish_once().await.unwrap();
        if published[0].1 == 2 && published[2].1 == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(published[0], ("backlog-test".to_string(), 2), "{published:?}");
    assert_eq!(published[2], ("clickstream-etl-shop".to_string(), 1), "the pipeline's own queue: {published:?}");

    // CloudWatch has the datapoints, by queue.
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&clickstream_control::dynamodb::sdk_config("us-east-1", &moto.endpoint()).await);
    let now = aws_sdk_cloudwatch::primitives::DateTime::from(std::time::SystemTime::now());
    let hour_ago = aws_sdk_cloudwatch::primitives::DateTime::from_secs(now.secs() - 3600);
    let statistics = cloudwatch
        .get_metric_statistics()
        .namespace("Clickstream")
        .metric_name("TaskQueueBacklog")
        .dimensions(aws_sdk_cloudwatch::types::Dimension::builder().name("TaskQueue").value("backlog-test").build())
        .start_time(hour_ago)
        .end_time(aws_sdk_cloudwatch::primitives::DateTime::from_secs(now.secs() + 60))
        .period(60)
        .statistics(aws_sdk_cloudwatch::types::Statistic::Maximum)
        .send()
        .await
        .unwrap();
    let maximum = statistics.datapoints().iter().filter_map(|point| point.maximum()).fold(f64::MIN, f64::max);
    assert_eq!(maximum, 2.0, "{statistics:?}");
}
