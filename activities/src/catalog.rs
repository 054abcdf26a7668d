//! The catalog of the processed data, for queries outside the warehouse: in production a Glue
//! database per project (`clickstream_<project>`) that Athena reads — the four CAoA tables and
//! the raw table, with their partitions — and locally DuckDB views over the same Parquet files.
//! Registering is idempotent: tables are created or updated, partitions that exist are skipped.

use std::collections::BTreeSet;

use arrow::datatypes::{DataType, SchemaRef};
use aws_sdk_glue::types::{Column, DatabaseInput, PartitionInput, SerDeInfo, StorageDescriptor, TableInput};
use clickstream_core::{config::CatalogConfig, layout, storage::Storage};
use clickstream_etl::tables::{event_v2, item_v2, session, user_v2};
use clickstream_workflows::types::CatalogSummary;

use crate::{errors::ActivityFailure, object_io::list_objects};

/// The processed tables and how their rows are partitioned.
pub const PROCESSED_TABLES: [&str; 4] = [event_v2::TABLE_NAME, item_v2::TABLE_NAME, user_v2::TABLE_NAME, session::TABLE_NAME];
pub const PROCESSED_PARTITION_KEYS: [&str; 4] = ["partition_app", "partition_year", "partition_month", "partition_day"];
/// The raw layer, as the collector writes it (gzip NDJSON by arrival hour).
pub const RAW_TABLE: &str = "raw_events";
pub const RAW_PARTITION_KEYS: [&str; 4] = ["year", "month", "day", "hour"];
/// BatchCreatePartition takes at most 100 partitions per call.
const PARTITIONS_PER_CALL: usize = 100;

const PARQUET_INPUT: &str = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat";
const PARQUET_OUTPUT: &str = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat";
const PARQUET_SERDE: &str = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe";
const TEXT_INPUT: &str = "org.apache.hadoop.mapred.TextInputFormat";
const TEXT_OUTPUT: &str = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat";
const JSON_SERDE: &str = "org.openx.data.jsonserde.JsonSerDe";

/// The Glue database of a project.
pub fn glue_database_name(project_id: &str) -> String {
    format!("clickstream_{project_id}")
}

/// The Arrow schema of a processed table.
pub fn processed_table_schema(table: &str) -> Option<SchemaRef> {
    match table {
        event_v2::TABLE_NAME => Some(event_v2::schema()),
        item_v2::TABLE_NAME => Some(item_v2::schema()),
        user_v2::TABLE_NAME => Some(user_v2::schema()),
        session::TABLE_NAME => Some(session::schema()),
        _ => None,
    }
}

/// The Hive type (what Glue and Athena use) of an Arrow type.
pub fn hive_type(data_type: &DataType) -> String {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 => "string".into(),
        DataType::Int64 => "bigint".into(),
        DataType::Int32 => "int".into(),
        DataType::Float64 => "double".into(),
        DataType::Float32 => "float".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Timestamp(..) => "timestamp".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::List(item) | DataType::LargeList(item) => format!("array<{}>", hive_type(item.data_type())),
        DataType::Struct(fields) => format!("struct<{}>", fields.iter().map(|field| format!("{}:{}", field.name(), hive_type(field.data_type()))).collect::<Vec<_>>().join(",")),
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(fields) if fields.len() == 2 => format!("map<{},{}>", hive_type(fields[0].data_type()), hive_type(fields[1].data_type())),
            other => unreachable!("a map's entries are a key/value struct, not {other}"),
        },
        other => unreachable!("no clickstream table has a column of type {other}"),
    }
}

/// Columns of the raw table: the raw record's fields (DESIGN §3.2).
fn raw_columns() -> Vec<(&'static str, &'static str)> {
    vec![
        ("data", "string"),
        ("uri", "string"),
        ("ua", "string"),
        ("ip", "string"),
        ("rid", "string"),
        ("method", "string"),
        ("date", "string"),
        ("appId", "string"),
        ("platform", "string"),
        ("compression", "string"),
        ("ingest_time", "bigint"),
        ("server_ingest_time", "bigint"),
        ("client_timestamp", "bigint"),
    ]
}

fn column(name: &str, column_type: &str) -> Result<Column, ActivityFailure> {
    Column::builder().name(name).r#type(column_type).build().map_err(|error| ActivityFailure::InvalidInput(error.to_string()))
}

fn storage_descriptor(location: String, columns: Vec<Column>, raw: bool) -> StorageDescriptor {
    let (input, output, serde) = if raw { (TEXT_INPUT, TEXT_OUTPUT, JSON_SERDE) } else { (PARQUET_INPUT, PARQUET_OUTPUT, PARQUET_SERDE) };
    StorageDescriptor::builder()
        .set_columns(Some(columns))
        .location(location)
        .input_format(input)
        .output_format(output)
        .serde_info(SerDeInfo::builder().serialization_library(serde).build())
        .build()
}

/// Partition values of a key under a table's root: the `name=value` segments, in order.
fn partition_values(relative_key: &str, names: &[&str]) -> Option<Vec<String>> {
    let segments: Vec<&str> = relative_key.split('/').collect();
    names
        .iter()
        .enumerate()
        .map(|(index, name)| segments.get(index)?.strip_prefix(name)?.strip_prefix('=').map(str::to_string))
        .collect()
}

/// A project's Glue database.
pub struct GlueCatalog {
    client: aws_sdk_glue::Client,
    storage: Storage,
}

impl GlueCatalog {
    pub async fn connect(config: &CatalogConfig, storage: Storage) -> GlueCatalog {
        let sdk_config = crate::aws::sdk_config(&config.glue_region, &config.glue_endpoint).await;
        GlueCatalog { client: aws_sdk_glue::Client::new(&sdk_config), storage }
    }

    fn glue_error(action: &'static str, error: impl std::fmt::Display) -> ActivityFailure {
        ActivityFailure::Catalog { action, reason: error.to_string() }
    }

    /// Creates or updates the project's database, tables and partitions.
    pub async fn register(&self, project_id: &str) -> Result<CatalogSummary, ActivityFailure> {
        let database = glue_database_name(project_id);
        self.ensure_database(&database, project_id).await?;
        let mut summary = CatalogSummary::default();
        for table in PROCESSED_TABLES {
            let schema = processed_table_schema(table).expect("a processed table");
            let columns = schema.fields().iter().map(|field| column(field.name(), &hive_type(field.data_type()))).collect::<Result<Vec<_>, _>>()?;
            let root = format!("{}/{table}", layout::processed_prefix(project_id));
            self.ensure_table(&database, table, &root, columns, &PROCESSED_PARTITION_KEYS, false).await?;
            self.add_partitions(&database, table, &root, &PROCESSED_PARTITION_KEYS, false, &mut summary).await?;
            summary.tables += 1;
        }
        let raw_columns = raw_columns().into_iter().map(|(name, column_type)| column(name, column_type)).collect::<Result<Vec<_>, _>>()?;
        let raw_root = layout::raw_prefix(project_id).trim_end_matches('/').to_string();
        self.ensure_table(&database, RAW_TABLE, &raw_root, raw_columns, &RAW_PARTITION_KEYS, true).await?;
        self.add_partitions(&database, RAW_TABLE, &raw_root, &RAW_PARTITION_KEYS, true, &mut summary).await?;
        summary.tables += 1;
        tracing::info!(project = %project_id, %database, ?summary, "registered the Glue catalog");
        Ok(summary)
    }

    async fn ensure_database(&self, database: &str, project_id: &str) -> Result<(), ActivityFailure> {
        if self.client.get_database().name(database).send().await.is_ok() {
            return Ok(());
        }
        let input = DatabaseInput::builder()
            .name(database)
            .description(format!("clickstream project {project_id}: event_v2, item_v2, user_v2, session and the raw events"))
            .build()
            .map_err(|error| Self::glue_error("CreateDatabase", error))?;
        match self.client.create_database().database_input(input).send().await {
            Ok(_) => Ok(()),
            Err(error) if error.as_service_error().is_some_and(|service| service.is_already_exists_exception()) => Ok(()),
            Err(error) => Err(Self::glue_error("CreateDatabase", aws_sdk_glue::error::DisplayErrorContext(error))),
        }
    }

    async fn ensure_table(&self, database: &str, table: &str, root: &str, columns: Vec<Column>, partition_keys: &[&str], raw: bool) -> Result<(), ActivityFailure> {
        let partition_columns = partition_keys.iter().map(|name| column(name, "string")).collect::<Result<Vec<_>, _>>()?;
        let input = TableInput::builder()
            .name(table)
            .table_type("EXTERNAL_TABLE")
            .parameters("classification", if raw { "json" } else { "parquet" })
            .set_partition_keys(Some(partition_columns))
            .storage_descriptor(storage_descriptor(format!("{}/", self.storage.location.url_of_key(root)), columns, raw))
            .build()
            .map_err(|error| Self::glue_error("CreateTable", error))?;
        match self.client.create_table().database_name(database).table_input(input.clone()).send().await {
            Ok(_) => Ok(()),
            // Exists: bring its columns in line with this version's schema.
            Err(error) if error.as_service_error().is_some_and(|service| service.is_already_exists_exception()) => self
                .client
                .update_table()
                .database_name(database)
                .table_input(input)
                .send()
                .await
                .map(|_| ())
                .map_err(|error| Self::glue_error("UpdateTable", aws_sdk_glue::error::DisplayErrorContext(error))),
            Err(error) => Err(Self::glue_error("CreateTable", aws_sdk_glue::error::DisplayErrorContext(error))),
        }
    }

    /// Finds the partitions under the table's root and creates those Glue does not have.
    async fn add_partitions(&self, database: &str, table: &str, root: &str, names: &[&str], raw: bool, summary: &mut CatalogSummary) -> Result<(), ActivityFailure> {
        let listed = list_objects(self.storage.store.as_ref(), root).await?;
        let found: BTreeSet<Vec<String>> = listed
            .iter()
            .filter_map(|object| object.location.as_ref().strip_prefix(root).map(|relative| relative.trim_start_matches('/')))
            .filter_map(|relative| partition_values(relative, names))
            .collect();
        summary.partitions_found += found.len() as u64;
        let existing = self.existing_partitions(database, table).await?;
        let missing: Vec<&Vec<String>> = found.iter().filter(|values| !existing.contains(*values)).collect();
        for batch in missing.chunks(PARTITIONS_PER_CALL) {
            let inputs: Vec<PartitionInput> = batch
                .iter()
                .map(|values| {
                    let path = names.iter().zip(values.iter()).map(|(name, value)| format!("{name}={value}")).collect::<Vec<_>>().join("/");
                    let location = format!("{}/", self.storage.location.url_of_key(&format!("{root}/{path}")));
                    PartitionInput::builder().set_values(Some((*values).clone())).storage_descriptor(storage_descriptor(location, Vec::new(), raw)).build()
                })
                .collect();
            let output = self
                .client
                .batch_create_partition()
                .database_name(database)
                .table_name(table)
                .set_partition_input_list(Some(inputs))
                .send()
                .await
                .map_err(|error| Self::glue_error("BatchCreatePartition", aws_sdk_glue::error::DisplayErrorContext(error)))?;
            // A partition created meanwhile by another run is not a failure.
            let failed: Vec<String> = output
                .errors()
                .iter()
                .filter(|error| error.error_detail().and_then(|detail| detail.error_code()) != Some("AlreadyExistsException"))
                .map(|error| format!("{:?}: {:?}", error.partition_values(), error.error_detail().and_then(|detail| detail.error_message())))
                .collect();
            if !failed.is_empty() {
                return Err(Self::glue_error("BatchCreatePartition", failed.join("; ")));
            }
            summary.partitions_created += (batch.len() - output.errors().len()) as u64;
        }
        Ok(())
    }

    async fn existing_partitions(&self, database: &str, table: &str) -> Result<BTreeSet<Vec<String>>, ActivityFailure> {
        let mut existing = BTreeSet::new();
        let mut pages = self.client.get_partitions().database_name(database).table_name(table).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|error| Self::glue_error("GetPartitions", aws_sdk_glue::error::DisplayErrorContext(error)))?;
            for partition in page.partitions() {
                existing.insert(partition.values().to_vec());
            }
        }
        Ok(existing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrow_types_map_to_hive_types() {
        let schema = event_v2::schema();
        let type_of = |name: &str| hive_type(schema.field_with_name(name).unwrap().data_type());
        assert_eq!(type_of("event_id"), "string");
        assert_eq!(type_of("event_time_msec"), "bigint");
        assert_eq!(type_of("event_timestamp"), "timestamp");
        assert_eq!(type_of("custom_parameters"), "map<string,struct<value:string,type:string>>");
        assert_eq!(type_of("process_info"), "map<string,string>");
        for table in PROCESSED_TABLES {
            let schema = processed_table_schema(table).unwrap();
            assert!(schema.fields().iter().all(|field| !hive_type(field.data_type()).is_empty()));
        }
    }

    #[test]
    fn partition_values_come_from_the_key() {
        let values = partition_values("partition_app=a/partition_year=2026/partition_month=01/partition_day=02/x.parquet", &PROCESSED_PARTITION_KEYS);
        assert_eq!(values.unwrap(), ["a", "2026", "01", "02"]);
        assert_eq!(partition_values("year=2026/month=01/day=02/hour=03/u.gz", &RAW_PARTITION_KEYS).unwrap(), ["2026", "01", "02", "03"]);
        assert!(partition_values("somewhere/else.parquet", &PROCESSED_PARTITION_KEYS).is_none());
    }
}
