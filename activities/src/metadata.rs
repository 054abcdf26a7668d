//! What a project's data contains, as the metadata scan finds it: event names with daily
//! counts, platforms and SDKs; event parameters with value types and their most frequent
//! values; user attributes with theirs. The console lists them (and, later, lets users name
//! them). Kept in a [`MetadataStore`]: JSON documents in the object store for the dev stack,
//! a DynamoDB table in production.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::{
    errors::ActivityFailure,
    object_io::{get_json, put_json},
};

/// Values kept per parameter or attribute: the most frequent ones.
pub const TOP_VALUES: usize = 20;
/// Days of daily counts kept per event: the most recent ones.
pub const DAILY_COUNT_DAYS: usize = 90;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AppMetadata {
    pub app_id: String,
    pub scanned_at_ms: i64,
    pub events: Vec<EventMetadata>,
    pub event_parameters: Vec<ParameterMetadata>,
    pub user_attributes: Vec<AttributeMetadata>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventMetadata {
    pub name: String,
    pub total: u64,
    pub platforms: Vec<String>,
    /// SDK names as the events carry them (`aws-solution-clickstream-sdk`, …).
    pub sdks: Vec<String>,
    /// Oldest first, at most [`DAILY_COUNT_DAYS`].
    pub daily_counts: Vec<DayCount>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DayCount {
    pub day: String,
    pub count: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ParameterMetadata {
    pub event_name: String,
    pub name: String,
    /// CAoA's value type: `string`, `number`, `boolean` or `object`.
    pub value_type: String,
    /// Most frequent first, at most [`TOP_VALUES`].
    pub top_values: Vec<ValueCount>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AttributeMetadata {
    pub name: String,
    pub value_type: String,
    pub top_values: Vec<ValueCount>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ValueCount {
    pub value: Option<String>,
    pub count: u64,
}

/// One row of the event query: events of one name, day, platform and SDK.
#[derive(Debug, Clone, PartialEq)]
pub struct EventCountRow {
    pub event_name: String,
    pub day: String,
    pub platform: Option<String>,
    pub sdk_name: Option<String>,
    pub count: u64,
}

/// One row of the parameter and attribute queries: how often a value occurs (the query
/// already keeps the top [`TOP_VALUES`] per name and type). `event_name` is empty for user
/// attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueCountRow {
    pub event_name: String,
    pub name: String,
    pub value_type: String,
    pub value: Option<String>,
    pub count: u64,
}

/// Builds an app's metadata from the rows of the three scan queries (the same for every
/// warehouse dialect).
pub fn assemble_app_metadata(app_id: &str, scanned_at_ms: i64, events: Vec<EventCountRow>, parameters: Vec<ValueCountRow>, attributes: Vec<ValueCountRow>) -> AppMetadata {
    let mut by_event: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>, BTreeMap<String, u64>)> = BTreeMap::new();
    for row in events {
        let (platforms, sdks, days) = by_event.entry(row.event_name).or_default();
        platforms.extend(row.platform);
        sdks.extend(row.sdk_name);
        *days.entry(row.day).or_default() += row.count;
    }
    let events = by_event
        .into_iter()
        .map(|(name, (platforms, sdks, days))| {
            let total = days.values().sum();
            let skip = days.len().saturating_sub(DAILY_COUNT_DAYS);
            let daily_counts = days.into_iter().skip(skip).map(|(day, count)| DayCount { day, count }).collect();
            EventMetadata { name, total, platforms: platforms.into_iter().collect(), sdks: sdks.into_iter().collect(), daily_counts }
        })
        .collect();
    let event_parameters = group_values(parameters).into_iter().map(|((event_name, name, value_type), top_values)| ParameterMetadata { event_name, name, value_type, top_values }).collect();
    let user_attributes = group_values(attributes).into_iter().map(|((_, name, value_type), top_values)| AttributeMetadata { name, value_type, top_values }).collect();
    AppMetadata { app_id: app_id.to_string(), scanned_at_ms, events, event_parameters, user_attributes }
}

/// Groups value rows by (event, name, type), most frequent values first, at most [`TOP_VALUES`].
fn group_values(rows: Vec<ValueCountRow>) -> BTreeMap<(String, String, String), Vec<ValueCount>> {
    let mut grouped: BTreeMap<(String, String, String), Vec<ValueCount>> = BTreeMap::new();
    for row in rows {
        grouped.entry((row.event_name, row.name, row.value_type)).or_default().push(ValueCount { value: row.value, count: row.count });
    }
    for values in grouped.values_mut() {
        values.sort_by(|left, right| right.count.cmp(&left.count).then_with(|| left.value.cmp(&right.value)));
        values.truncate(TOP_VALUES);
    }
    grouped
}

/// Where scan results are kept and read from.
#[async_trait::async_trait]
pub trait MetadataStore: Send + Sync {
    /// When the project's last scan finished successfully, in ms since the epoch.
    async fn last_successful_scan_ms(&self, project_id: &str) -> Result<Option<i64>, ActivityFailure>;
    /// Replaces what is stored for the app by this scan's result.
    async fn save_app(&self, project_id: &str, metadata: &AppMetadata) -> Result<(), ActivityFailure>;
    async fn record_successful_scan(&self, project_id: &str, at_ms: i64) -> Result<(), ActivityFailure>;
    async fn app(&self, project_id: &str, app_id: &str) -> Result<Option<AppMetadata>, ActivityFailure>;
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LastScan {
    at_ms: i64,
}

/// The dev stack's store: one JSON document per app in the object store.
pub struct ObjectStoreMetadata {
    pub storage: clickstream_core::storage::Storage,
}

impl ObjectStoreMetadata {
    fn app_key(project_id: &str, app_id: &str) -> String {
        format!("{project_id}/metadata/apps/{app_id}.json")
    }

    fn last_scan_key(project_id: &str) -> String {
        format!("{project_id}/metadata/last-scan.json")
    }
}

#[async_trait::async_trait]
impl MetadataStore for ObjectStoreMetadata {
    async fn last_successful_scan_ms(&self, project_id: &str) -> Result<Option<i64>, ActivityFailure> {
        let last: Option<LastScan> = get_json(self.storage.store.as_ref(), &Self::last_scan_key(project_id), "metadata scan record").await?;
        Ok(last.map(|last| last.at_ms))
    }

    async fn save_app(&self, project_id: &str, metadata: &AppMetadata) -> Result<(), ActivityFailure> {
        put_json(self.storage.store.as_ref(), &Self::app_key(project_id, &metadata.app_id), metadata).await
    }

    async fn record_successful_scan(&self, project_id: &str, at_ms: i64) -> Result<(), ActivityFailure> {
        put_json(self.storage.store.as_ref(), &Self::last_scan_key(project_id), &LastScan { at_ms }).await
    }

    async fn app(&self, project_id: &str, app_id: &str) -> Result<Option<AppMetadata>, ActivityFailure> {
        get_json(self.storage.store.as_ref(), &Self::app_key(project_id, app_id), "app metadata").await
    }
}

/// Opens the configured store.
pub async fn open_metadata_store(config: &clickstream_core::Config, storage: clickstream_core::storage::Storage) -> std::sync::Arc<dyn MetadataStore> {
    match config.metadata.store {
        clickstream_core::config::MetadataStoreKind::Local => std::sync::Arc::new(ObjectStoreMetadata { storage }),
        clickstream_core::config::MetadataStoreKind::Dynamodb => {
            let store = crate::metadata_dynamodb::DynamoDbMetadata::connect(&config.metadata).await;
            // Production stacks create the table; the dev stack gets it here. A failure now (the
            // endpoint is down) is logged, and reads and writes report it when they happen.
            if let Err(error) = store.ensure_table().await {
                tracing::warn!(%error, table = %config.metadata.dynamodb_table, "cannot check or create the metadata table");
            }
            std::sync::Arc::new(store)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(event_name: &str, name: &str, value: &str, count: u64) -> ValueCountRow {
        ValueCountRow { event_name: event_name.into(), name: name.into(), value_type: "string_value".into(), value: Some(value.into()), count }
    }

    #[test]
    fn rows_become_events_parameters_and_attributes() {
        let events = vec![
            EventCountRow { event_name: "_page_view".into(), day: "2026-01-02".into(), platform: Some("Web".into()), sdk_name: Some("web-sdk".into()), count: 3 },
            EventCountRow { event_name: "_page_view".into(), day: "2026-01-01".into(), platform: Some("Android".into()), sdk_name: Some("android-sdk".into()), count: 2 },
            EventCountRow { event_name: "_page_view".into(), day: "2026-01-02".into(), platform: Some("Android".into()), sdk_name: None, count: 1 },
        ];
        let mut parameters: Vec<ValueCountRow> = (0..25).map(|index| value("buy", "item", &format!("v{index:02}"), 100 - index)).collect();
        parameters.push(value("buy", "color", "red", 1));
        let metadata = assemble_app_metadata("app", 7, events, parameters, vec![value("", "plan", "gold", 4)]);
        let page_view = &metadata.events[0];
        assert_eq!((page_view.name.as_str(), page_view.total), ("_page_view", 6));
        assert_eq!(page_view.platforms, ["Android", "Web"]);
        assert_eq!(page_view.sdks, ["android-sdk", "web-sdk"]);
        assert_eq!(page_view.daily_counts, [DayCount { day: "2026-01-01".into(), count: 2 }, DayCount { day: "2026-01-02".into(), count: 4 }]);
        assert_eq!(metadata.event_parameters.len(), 2);
        let item = metadata.event_parameters.iter().find(|parameter| parameter.name == "item").unwrap();
        assert_eq!(item.top_values.len(), TOP_VALUES, "the top 20 values");
        assert_eq!(item.top_values[0].value.as_deref(), Some("v00"));
        assert_eq!(metadata.user_attributes[0].name, "plan");
    }
}
