//! The production store: a DynamoDB table with partition key `pk` (the record kind) and sort
//! key `sk` (the record key); `version` and `body` attributes. Creation and replacement are
//! conditional writes, so the version check is atomic.

use std::collections::HashMap;

use aws_sdk_dynamodb::{
    Client,
    error::DisplayErrorContext,
    types::{AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType},
};

use crate::store::{RawRecord, RecordStore, StoreError};

/// The SDK configuration for one AWS service: credentials and retries from the environment,
/// the region given, and the endpoint when it is not empty (moto).
pub async fn sdk_config(region: &str, endpoint: &str) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).region(aws_config::Region::new(region.to_string()));
    if !endpoint.is_empty() {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

/// Creates a table keyed by string attributes `pk` and `sk` (on-demand capacity) unless it
/// exists. Production stacks create their tables with CloudFormation; the dev stack and the
/// tests through this. Errors are the API's words.
pub async fn ensure_pk_sk_table(client: &Client, table: &str) -> Result<(), String> {
    match client.describe_table().table_name(table).send().await {
        Ok(_) => return Ok(()),
        Err(error) if error.as_service_error().is_some_and(|service| service.is_resource_not_found_exception()) => {}
        Err(error) => return Err(format!("DescribeTable {table}: {}", DisplayErrorContext(error))),
    }
    let attribute = |name: &str| AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build().expect("name and type are set");
    let key = |name: &str, key_type: KeyType| KeySchemaElement::builder().attribute_name(name).key_type(key_type).build().expect("name and type are set");
    let created = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk"))
        .attribute_definitions(attribute("sk"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .send()
        .await;
    match created {
        Ok(_) => Ok(()),
        // Another process created it meanwhile.
        Err(error) if error.as_service_error().is_some_and(|service| service.is_resource_in_use_exception()) => Ok(()),
        Err(error) => Err(format!("CreateTable {table}: {}", DisplayErrorContext(error))),
    }
}

/// Every item of one partition of a `pk`/`sk` table, all pages.
pub async fn query_partition(client: &Client, table: &str, partition: &str) -> Result<Vec<HashMap<String, AttributeValue>>, String> {
    let mut items = Vec::new();
    let mut start_key = None;
    loop {
        let page = client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(partition.to_string()))
            .set_exclusive_start_key(start_key)
            .send()
            .await
            .map_err(|error| format!("Query {table}: {}", DisplayErrorContext(error)))?;
        items.extend(page.items().iter().cloned());
        start_key = page.last_evaluated_key().cloned();
        if start_key.is_none() {
            return Ok(items);
        }
    }
}

pub struct DynamoDbStore {
    client: Client,
    table: String,
}

fn text(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_string())
}

fn number(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn raw_record(item: &HashMap<String, AttributeValue>) -> Result<RawRecord, StoreError> {
    let string = |name: &str| item.get(name).and_then(|value| value.as_s().ok()).cloned();
    let key = string("sk").unwrap_or_default();
    let corrupt = |reason: &str| StoreError::Corrupt { kind: string("pk").unwrap_or_default(), key: key.clone(), reason: reason.into() };
    let version = item.get("version").and_then(|value| value.as_n().ok()).and_then(|value| value.parse().ok()).ok_or_else(|| corrupt("no numeric `version`"))?;
    let body = string("body").ok_or_else(|| corrupt("no `body`"))?;
    Ok(RawRecord { key, version, body })
}

impl DynamoDbStore {
    pub async fn connect(region: &str, endpoint: &str, table: &str) -> DynamoDbStore {
        DynamoDbStore { client: Client::new(&sdk_config(region, endpoint).await), table: table.to_string() }
    }

    pub async fn ensure_table(&self) -> Result<(), StoreError> {
        ensure_pk_sk_table(&self.client, &self.table).await.map_err(StoreError::Unavailable)
    }

    fn item(kind: &str, record: &RawRecord) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".to_string(), text(kind)),
            ("sk".to_string(), text(&record.key)),
            ("version".to_string(), number(record.version)),
            ("body".to_string(), text(&record.body)),
        ])
    }
}

#[async_trait::async_trait]
impl RecordStore for DynamoDbStore {
    async fn insert(&self, kind: &str, record: RawRecord) -> Result<(), StoreError> {
        let written = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::item(kind, &record)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match written {
            Ok(_) => Ok(()),
            Err(error) if error.as_service_error().is_some_and(|service| service.is_conditional_check_failed_exception()) => {
                Err(StoreError::AlreadyExists { kind: kind.into(), key: record.key })
            }
            Err(error) => Err(StoreError::Unavailable(format!("PutItem: {}", DisplayErrorContext(error)))),
        }
    }

    async fn replace(&self, kind: &str, record: RawRecord, expected_version: u64) -> Result<(), StoreError> {
        let written = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::item(kind, &record)))
            .condition_expression("version = :expected")
            .expression_attribute_values(":expected", number(expected_version))
            .send()
            .await;
        match written {
            Ok(_) => Ok(()),
            Err(error) if error.as_service_error().is_some_and(|service| service.is_conditional_check_failed_exception()) => {
                Err(StoreError::VersionConflict { kind: kind.into(), key: record.key, expected: expected_version })
            }
            Err(error) => Err(StoreError::Unavailable(format!("PutItem: {}", DisplayErrorContext(error)))),
        }
    }

    async fn get(&self, kind: &str, key: &str) -> Result<Option<RawRecord>, StoreError> {
        let found = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", text(kind))
            .key("sk", text(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| StoreError::Unavailable(format!("GetItem: {}", DisplayErrorContext(error))))?;
        found.item().map(raw_record).transpose()
    }

    async fn list(&self, kind: &str) -> Result<Vec<RawRecord>, StoreError> {
        let items = query_partition(&self.client, &self.table, kind).await.map_err(StoreError::Unavailable)?;
        items.iter().map(raw_record).collect()
    }

    async fn delete(&self, kind: &str, key: &str) -> Result<bool, StoreError> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", text(kind))
            .key("sk", text(key))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|error| StoreError::Unavailable(format!("DeleteItem: {}", DisplayErrorContext(error))))?;
        Ok(deleted.attributes().is_some_and(|attributes| !attributes.is_empty()))
    }
}
