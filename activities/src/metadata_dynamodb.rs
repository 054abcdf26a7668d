//! The production metadata store: a DynamoDB table (partition key `pk`, sort key `sk`, both
//! strings). An app's metadata is one item per event, parameter and user attribute, so an app
//! with thousands of them stays far below DynamoDB's 400 KB item limit, and each can later
//! carry its display name:
//!
//! | pk                  | sk                                        | document            |
//! |---------------------|-------------------------------------------|---------------------|
//! | `<project>#<app>`   | `scan`                                    | app id, scan time   |
//! | `<project>#<app>`   | `event#<name>`                            | [`EventMetadata`]   |
//! | `<project>#<app>`   | `parameter#<event>#<name>#<type>`         | [`ParameterMetadata`] |
//! | `<project>#<app>`   | `attribute#<name>#<type>`                 | [`AttributeMetadata`] |
//! | `<project>`         | `last_scan`                               | `at_ms`             |

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::{
    Client,
    types::{AttributeValue, DeleteRequest, PutRequest, WriteRequest},
};
use clickstream_core::config::MetadataConfig;

use crate::{
    errors::ActivityFailure,
    metadata::{AppMetadata, AttributeMetadata, EventMetadata, MetadataStore, ParameterMetadata},
};

/// BatchWriteItem takes at most 25 requests.
const WRITES_PER_BATCH: usize = 25;

pub struct DynamoDbMetadata {
    client: Client,
    table: String,
}

fn store_error(action: &'static str) -> impl Fn(String) -> ActivityFailure {
    move |reason| ActivityFailure::MetadataStore { action, reason }
}

fn text(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_string())
}

impl DynamoDbMetadata {
    pub async fn connect(config: &MetadataConfig) -> DynamoDbMetadata {
        let sdk_config = crate::aws::sdk_config(&config.dynamodb_region, &config.dynamodb_endpoint).await;
        DynamoDbMetadata { client: Client::new(&sdk_config), table: config.dynamodb_table.clone() }
    }

    /// Creates the table (on demand capacity) unless it exists; production stacks create it
    /// with CloudFormation, the dev stack and tests through this.
    pub async fn ensure_table(&self) -> Result<(), ActivityFailure> {
        clickstream_control::dynamodb::ensure_pk_sk_table(&self.client, &self.table).await.map_err(store_error("CreateTable"))
    }

    fn app_partition(project_id: &str, app_id: &str) -> String {
        format!("{project_id}#{app_id}")
    }

    /// Every item of a partition (all pages).
    async fn query_partition(&self, partition: &str) -> Result<Vec<HashMap<String, AttributeValue>>, ActivityFailure> {
        clickstream_control::dynamodb::query_partition(&self.client, &self.table, partition).await.map_err(store_error("Query"))
    }

    /// Sends writes in batches of 25, sending again what DynamoDB left unprocessed (throttling).
    async fn write_all(&self, requests: Vec<WriteRequest>) -> Result<(), ActivityFailure> {
        for batch in requests.chunks(WRITES_PER_BATCH) {
            let mut pending = batch.to_vec();
            let mut pause = std::time::Duration::from_millis(50);
            while !pending.is_empty() {
                let written = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(|error| store_error("BatchWriteItem")(aws_sdk_dynamodb::error::DisplayErrorContext(error).to_string()))?;
                pending = written.unprocessed_items().and_then(|unprocessed| unprocessed.get(&self.table)).cloned().unwrap_or_default();
                if !pending.is_empty() {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_secs(5));
                }
            }
        }
        Ok(())
    }
}

fn string_attribute<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|value| value.as_s().ok()).map(String::as_str)
}

fn document<T: serde::de::DeserializeOwned>(item: &HashMap<String, AttributeValue>, table: &str) -> Result<T, ActivityFailure> {
    let sort_key = string_attribute(item, "sk").unwrap_or_default().to_string();
    let json = string_attribute(item, "document").ok_or_else(|| ActivityFailure::CorruptDocument { key: format!("{table}:{sort_key}"), what: "metadata item", reason: "no `document` attribute".into() })?;
    serde_json::from_str(json).map_err(|error| ActivityFailure::CorruptDocument { key: format!("{table}:{sort_key}"), what: "metadata item", reason: error.to_string() })
}

fn put_request(partition: &str, sort_key: String, document: &impl serde::Serialize) -> WriteRequest {
    let item = HashMap::from([
        ("pk".to_string(), text(partition)),
        ("sk".to_string(), AttributeValue::S(sort_key)),
        ("document".to_string(), AttributeValue::S(serde_json::to_string(document).expect("metadata serialises"))),
    ]);
    WriteRequest::builder().put_request(PutRequest::builder().set_item(Some(item)).build().expect("the item is set")).build()
}

#[async_trait::async_trait]
impl MetadataStore for DynamoDbMetadata {
    async fn last_successful_scan_ms(&self, project_id: &str) -> Result<Option<i64>, ActivityFailure> {
        let found = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", text(project_id))
            .key("sk", text("last_scan"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| store_error("GetItem")(aws_sdk_dynamodb::error::DisplayErrorContext(error).to_string()))?;
        Ok(found.item().and_then(|item| item.get("at_ms")).and_then(|value| value.as_n().ok()).and_then(|number| number.parse().ok()))
    }

    async fn save_app(&self, project_id: &str, metadata: &AppMetadata) -> Result<(), ActivityFailure> {
        let partition = Self::app_partition(project_id, &metadata.app_id);
        let mut requests = vec![put_request(&partition, "scan".into(), &serde_json::json!({"app_id": metadata.app_id, "scanned_at_ms": metadata.scanned_at_ms}))];
        for event in &metadata.events {
            requests.push(put_request(&partition, format!("event#{}", event.name), event));
        }
        for parameter in &metadata.event_parameters {
            requests.push(put_request(&partition, format!("parameter#{}#{}#{}", parameter.event_name, parameter.name, parameter.value_type), parameter));
        }
        for attribute in &metadata.user_attributes {
            requests.push(put_request(&partition, format!("attribute#{}#{}", attribute.name, attribute.value_type), attribute));
        }
        // What an earlier scan found and this one did not (expired data) is removed.
        let written: HashSet<String> = requests.iter().filter_map(|request| request.put_request()).filter_map(|put| put.item().get("sk")).filter_map(|value| value.as_s().ok().cloned()).collect();
        let stale: Vec<WriteRequest> = self
            .query_partition(&partition)
            .await?
            .iter()
            .filter_map(|item| string_attribute(item, "sk").map(str::to_string))
            .filter(|sort_key| !written.contains(sort_key))
            .map(|sort_key| {
                let key = HashMap::from([("pk".to_string(), text(&partition)), ("sk".to_string(), AttributeValue::S(sort_key))]);
                WriteRequest::builder().delete_request(DeleteRequest::builder().set_key(Some(key)).build().expect("the key is set")).build()
            })
            .collect();
        requests.extend(stale);
        self.write_all(requests).await
    }

    async fn record_successful_scan(&self, project_id: &str, at_ms: i64) -> Result<(), ActivityFailure> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", text(project_id))
            .item("sk", text("last_scan"))
            .item("at_ms", AttributeValue::N(at_ms.to_string()))
            .send()
            .await
            .map_err(|error| store_error("PutItem")(aws_sdk_dynamodb::error::DisplayErrorContext(error).to_string()))?;
        Ok(())
    }

    async fn app(&self, project_id: &str, app_id: &str) -> Result<Option<AppMetadata>, ActivityFailure> {
        let items = self.query_partition(&Self::app_partition(project_id, app_id)).await?;
        let mut metadata = AppMetadata { app_id: app_id.to_string(), ..AppMetadata::default() };
        let mut scanned = false;
        for item in &items {
            let sort_key = string_attribute(item, "sk").unwrap_or_default();
            if sort_key == "scan" {
                let scan: serde_json::Value = document(item, &self.table)?;
                metadata.scanned_at_ms = scan["scanned_at_ms"].as_i64().unwrap_or_default();
                scanned = true;
            } else if sort_key.starts_with("event#") {
                metadata.events.push(document::<EventMetadata>(item, &self.table)?);
            } else if sort_key.starts_with("parameter#") {
                metadata.event_parameters.push(document::<ParameterMetadata>(item, &self.table)?);
            } else if sort_key.starts_with("attribute#") {
                metadata.user_attributes.push(document::<AttributeMetadata>(item, &self.table)?);
            }
        }
        Ok(scanned.then_some(metadata))
    }
}
