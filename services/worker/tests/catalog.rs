//! The Glue catalog against moto: the project's database, the four tables and the raw table,
//! and a partition per app and day (per hour for raw) — created once, found again after.

use aws_sdk_glue::Client;
use clickstream_activities::catalog::{GlueCatalog, PROCESSED_TABLES, RAW_TABLE, glue_database_name};
use clickstream_core::{config::CatalogConfig, layout, storage::Storage};
use clickstream_e2e::MotoServer;
use object_store::{ObjectStore, PutPayload, path::Path};

async fn glue_client(endpoint: &str) -> Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).region(aws_config::Region::new("us-east-1")).endpoint_url(endpoint).load().await;
    Client::new(&config)
}

#[tokio::test(flavor = "multi_thread")]
async fn glue_gets_the_tables_and_each_partition_once() {
    clickstream_e2e::use_test_aws_credentials();
    let directory = tempfile::tempdir().unwrap();
    let moto = MotoServer::start(directory.path());
    moto.create_bucket("lake").await;
    let storage = Storage::open(&clickstream_core::config::StorageConfig { url: "s3://lake/data".into(), endpoint: moto.endpoint(), region: "us-east-1".into() }).unwrap();
    // Processed files of two apps over two days, and raw objects of two hours.
    let processed = layout::processed_prefix("shop");
    for (app, day) in [("web", "01"), ("web", "02"), ("ios", "02")] {
        for table in PROCESSED_TABLES {
            let key = format!("{processed}/{table}/partition_app={app}/partition_year=2026/partition_month=11/partition_day={day}/part-0000.parquet");
            storage.store.put(&Path::from(key), PutPayload::from_static(b"PAR1")).await.unwrap();
        }
    }
    for hour in [9, 10] {
        let at = chrono::DateTime::parse_from_rfc3339(&format!("2026-11-02T{hour:02}:30:00Z")).unwrap().with_timezone(&chrono::Utc);
        storage.store.put(&Path::from(layout::raw_object_key("shop", at, "u1")), PutPayload::from_static(b"{}")).await.unwrap();
    }

    let catalog = GlueCatalog::connect(&CatalogConfig { kind: clickstream_core::config::CatalogKind::Glue, glue_endpoint: moto.endpoint(), glue_region: "us-east-1".into() }, storage.clone()).await;
    let first = catalog.register("shop").await.unwrap();
    assert_eq!(first.tables, 5);
    assert_eq!(first.partitions_found, 4 * 3 + 2);
    assert_eq!(first.partitions_created, 4 * 3 + 2);
    let again = catalog.register("shop").await.unwrap();
    assert_eq!(again.partitions_created, 0, "existing partitions are not created twice");

    let glue = glue_client(&moto.endpoint()).await;
    let database = glue_database_name("shop");
    let table = glue.get_table().database_name(&database).name("event_v2").send().await.unwrap();
    let table = table.table().unwrap();
    let descriptor = table.storage_descriptor().unwrap();
    assert_eq!(descriptor.location(), Some("s3://lake/data/shop/data/processed/event_v2/"));
    assert_eq!(descriptor.columns().len(), clickstream_etl::tables::event_v2::schema().fields().len());
    let keys: Vec<&str> = table.partition_keys().iter().map(|column| column.name()).collect();
    assert_eq!(keys, ["partition_app", "partition_year", "partition_month", "partition_day"]);
    let partitions = glue.get_partitions().database_name(&database).table_name("item_v2").send().await.unwrap();
    let mut values: Vec<Vec<String>> = partitions.partitions().iter().map(|partition| partition.values().to_vec()).collect();
    values.sort();
    assert_eq!(values, [["ios", "2026", "11", "02"], ["web", "2026", "11", "01"], ["web", "2026", "11", "02"]]);
    let raw = glue.get_partitions().database_name(&database).table_name(RAW_TABLE).send().await.unwrap();
    assert_eq!(raw.partitions().len(), 2);
    let raw_location = raw.partitions()[0].storage_descriptor().unwrap().location().unwrap().to_string();
    assert!(raw_location.starts_with("s3://lake/data/shop/data/buffer/year=2026/month=11/day=02/hour="), "{raw_location}");
}
