//! Redshift through its Data API: statements are submitted (`BatchExecuteStatement`, one
//! transaction) and polled (`DescribeStatement`); query results are read with
//! `GetStatementResult`. Loads are polled by the load workflow with durable timers; the other
//! operations wait inside their activity, which heartbeats meanwhile.

use std::{collections::BTreeMap, time::Duration};

use aws_sdk_redshiftdata::{
    Client,
    error::DisplayErrorContext,
    operation::{describe_statement::DescribeStatementOutput, get_statement_result::GetStatementResultOutput},
    types::StatusString,
};
use clickstream_core::{config::RedshiftConfig, storage::Storage};
use clickstream_workflows::types::{ExpiredRows, LoadBatch, LoadOutcome, LoadSummary, SubmittedLoad};

use crate::{
    errors::ActivityFailure,
    etl_activities::{file_key_of_entry, read_manifest},
    manifest::LoadManifest,
    metadata::{AppMetadata, EventCountRow, ValueCountRow, assemble_app_metadata},
    object_io::{put_json, stable_id},
    redshift_sql::{self, TableLoad},
    warehouses::{Warehouse, add_table_rows, app_and_table_of_key},
};

/// How long a report (an exploration or a dashboard panel) may run on Redshift.
const REPORT_DEADLINE: Duration = Duration::from_secs(120);

pub struct RedshiftWarehouse {
    client: Client,
    settings: RedshiftConfig,
    storage: Storage,
}

fn data_api_error(action: &'static str) -> impl Fn(String) -> ActivityFailure {
    move |reason| ActivityFailure::Redshift { action, reason }
}

/// A statement's state as the Data API describes it.
#[derive(Debug, Clone, PartialEq)]
pub enum StatementState {
    Running,
    /// Row counts of the sub-statements, in order (-1 where Redshift reports none).
    Finished { sub_statement_rows: Vec<i64> },
    Failed { reason: String },
}

/// Reads a DescribeStatement answer.
pub fn statement_state(described: &DescribeStatementOutput) -> StatementState {
    match described.status() {
        Some(StatusString::Finished) => {
            let sub_statement_rows = described.sub_statements().iter().map(|sub| sub.result_rows()).collect();
            StatementState::Finished { sub_statement_rows }
        }
        Some(StatusString::Failed) | Some(StatusString::Aborted) => {
            let failed_sub = described.sub_statements().iter().find_map(|sub| sub.error().map(|error| format!("{}: {error}", sub.query_string().unwrap_or_default())));
            let reason = described.error().map(str::to_string).or(failed_sub).unwrap_or_else(|| format!("statement {:?}", described.status()));
            StatementState::Failed { reason }
        }
        _ => StatementState::Running,
    }
}

impl RedshiftWarehouse {
    pub async fn connect(settings: &RedshiftConfig, storage: Storage) -> RedshiftWarehouse {
        let sdk_config = crate::aws::sdk_config(&settings.region, &settings.endpoint).await;
        RedshiftWarehouse { client: Client::new(&sdk_config), settings: settings.clone(), storage }
    }

    /// Submits statements as one transaction. `idempotency_parts`, when given, make the client
    /// token, so a retried submission (the activity died after Redshift accepted it) returns
    /// the same statement instead of starting a second one.
    async fn submit(&self, statements: Vec<String>, idempotency_parts: Option<&[&str]>) -> Result<String, ActivityFailure> {
        let settings = &self.settings;
        let optional = |text: &str| (!text.is_empty()).then(|| text.to_string());
        let submitted = self
            .client
            .batch_execute_statement()
            .set_sqls(Some(statements))
            .database(&settings.database)
            .set_workgroup_name(optional(&settings.workgroup_name))
            .set_cluster_identifier(optional(&settings.cluster_identifier))
            .set_db_user(optional(&settings.db_user))
            .set_secret_arn(optional(&settings.secret_arn))
            .set_client_token(idempotency_parts.map(|parts| stable_id(parts.iter().copied())))
            .statement_name("clickstream")
            .send()
            .await
            .map_err(|error| data_api_error("BatchExecuteStatement")(DisplayErrorContext(error).to_string()))?;
        submitted.id().map(str::to_string).ok_or_else(|| data_api_error("BatchExecuteStatement")("the answer has no statement id".into()))
    }

    async fn describe(&self, statement_id: &str) -> Result<DescribeStatementOutput, ActivityFailure> {
        self.client.describe_statement().id(statement_id).send().await.map_err(|error| data_api_error("DescribeStatement")(DisplayErrorContext(error).to_string()))
    }

    /// Submits statements and waits for them, for idempotent operations short enough to wait
    /// inside one activity (a retry runs them again). A failed transaction is an error a retry
    /// may fix (a concurrent load held a lock), so it is retryable.
    async fn run_to_completion(&self, statements: Vec<String>) -> Result<(String, Vec<i64>), ActivityFailure> {
        let statement_id = self.submit(statements, None).await?;
        let sub_statement_rows = self.wait_until_finished(&statement_id).await?;
        Ok((statement_id, sub_statement_rows))
    }

    /// Polls a statement (200 ms, doubling up to 5 s) until it finishes; its sub-statements'
    /// row counts.
    async fn wait_until_finished(&self, statement_id: &str) -> Result<Vec<i64>, ActivityFailure> {
        let mut pause = Duration::from_millis(200);
        loop {
            match statement_state(&self.describe(statement_id).await?) {
                StatementState::Finished { sub_statement_rows } => return Ok(sub_statement_rows),
                StatementState::Failed { reason } => return Err(data_api_error("statement")(reason)),
                StatementState::Running => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Runs one reporting statement (an exploration or a dashboard panel, named parameters
    /// `:p1`, `:p2`, … bound as the Data API's parameters) and reads its whole result.
    pub async fn run_report(&self, statement: &clickstream_reporting::Statement) -> Result<ReportAnswer, ActivityFailure> {
        let parameters = statement
            .parameters
            .iter()
            .enumerate()
            .map(|(index, value)| aws_sdk_redshiftdata::types::SqlParameter::builder().name(format!("p{}", index + 1)).value(value.as_text()).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| data_api_error("ExecuteStatement")(error.to_string()))?;
        let settings = &self.settings;
        let optional = |text: &str| (!text.is_empty()).then(|| text.to_string());
        let submitted = self
            .client
            .execute_statement()
            .sql(&statement.sql)
            .set_parameters((!parameters.is_empty()).then_some(parameters))
            .database(&settings.database)
            .set_workgroup_name(optional(&settings.workgroup_name))
            .set_cluster_identifier(optional(&settings.cluster_identifier))
            .set_db_user(optional(&settings.db_user))
            .set_secret_arn(optional(&settings.secret_arn))
            .statement_name("clickstream-report")
            .send()
            .await
            .map_err(|error| data_api_error("ExecuteStatement")(DisplayErrorContext(error).to_string()))?;
        let statement_id = submitted.id().map(str::to_string).ok_or_else(|| data_api_error("ExecuteStatement")("the answer has no statement id".into()))?;
        // A report nobody waits for any more must not keep Redshift busy: past the deadline
        // the statement is cancelled and the caller told so.
        match tokio::time::timeout(REPORT_DEADLINE, self.wait_until_finished(&statement_id)).await {
            Ok(finished) => {
                finished?;
            }
            Err(_) => {
                if let Err(error) = self.client.cancel_statement().id(&statement_id).send().await {
                    tracing::warn!(statement_id, error = %DisplayErrorContext(error), "could not cancel a report past its deadline");
                }
                return Err(data_api_error("statement")(format!("the report did not finish within {} s and was cancelled", REPORT_DEADLINE.as_secs())));
            }
        }
        let table = self.result_table(&statement_id).await?;
        Ok(ReportAnswer { statement_id, table })
    }

    /// Reads every page of a finished statement's result set, handing each to `take_page`.
    async fn for_each_result_page(&self, statement_id: &str, mut take_page: impl FnMut(&GetStatementResultOutput)) -> Result<(), ActivityFailure> {
        let mut next_token = None;
        loop {
            let page = self
                .client
                .get_statement_result()
                .id(statement_id)
                .set_next_token(next_token)
                .send()
                .await
                .map_err(|error| data_api_error("GetStatementResult")(DisplayErrorContext(error).to_string()))?;
            take_page(&page);
            next_token = page.next_token().map(str::to_string);
            if next_token.is_none() {
                return Ok(());
            }
        }
    }

    /// A finished statement's result set (all pages) as a table: column labels, JSON values.
    async fn result_table(&self, statement_id: &str) -> Result<clickstream_reporting::ResultTable, ActivityFailure> {
        use aws_sdk_redshiftdata::types::Field;
        let mut table = clickstream_reporting::ResultTable::default();
        self.for_each_result_page(statement_id, |page| {
            if table.columns.is_empty() {
                table.columns = page.column_metadata().iter().map(|column| column.label().or(column.name()).unwrap_or_default().to_string()).collect();
            }
            for record in page.records() {
                let row = record
                    .iter()
                    .map(|field| match field {
                        Field::LongValue(number) => serde_json::Value::from(*number),
                        Field::DoubleValue(number) => serde_json::Number::from_f64(*number).map_or(serde_json::Value::Null, serde_json::Value::Number),
                        Field::StringValue(text) => serde_json::Value::from(text.as_str()),
                        Field::BooleanValue(flag) => serde_json::Value::from(*flag),
                        _ => serde_json::Value::Null,
                    })
                    .collect();
                table.rows.push(row);
            }
        })
        .await?;
        Ok(table)
    }

    /// The rows of one sub-statement's result set (all pages), as text and numbers.
    async fn result_rows(&self, sub_statement_id: &str) -> Result<Vec<Vec<ResultValue>>, ActivityFailure> {
        let mut rows = Vec::new();
        self.for_each_result_page(sub_statement_id, |page| rows.extend(page.records().iter().map(|record| record.iter().map(ResultValue::of_field).collect()))).await?;
        Ok(rows)
    }

    /// Writes one COPY manifest per app and table of the batch, next to the batch's manifest
    /// (`<batch manifest>/<app>/<table>.json`): COPY loads one table at a time.
    async fn write_table_manifests(&self, batch: &LoadBatch) -> Result<Vec<TableLoad>, ActivityFailure> {
        let manifest = read_manifest(&self.storage, &batch.manifest_key).await?;
        let mut by_table: BTreeMap<(String, String), LoadManifest> = BTreeMap::new();
        for entry in &manifest.entries {
            let (app_id, table) = app_and_table_of_key(file_key_of_entry(&self.storage, entry)?)?;
            by_table.entry((app_id.to_string(), table.to_string())).or_insert_with(|| LoadManifest { entries: Vec::new() }).entries.push(entry.clone());
        }
        let mut loads = Vec::new();
        for ((app_id, table), table_manifest) in by_table {
            let key = format!("{}/{app_id}/{table}.json", batch.manifest_key.trim_end_matches(".json"));
            put_json(self.storage.store.as_ref(), &key, &table_manifest).await?;
            loads.push(TableLoad { app_id, table, manifest_url: self.storage.location.url_of_key(&key) });
        }
        Ok(loads)
    }
}

/// A reporting statement's answer from Redshift, with the Data API statement that ran it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportAnswer {
    pub statement_id: String,
    pub table: clickstream_reporting::ResultTable,
}

/// One field of a Data API result: text, a number, or NULL.
#[derive(Debug, Clone, PartialEq)]
pub enum ResultValue {
    Text(String),
    Number(i64),
    Null,
}

impl ResultValue {
    fn of_field(field: &aws_sdk_redshiftdata::types::Field) -> ResultValue {
        use aws_sdk_redshiftdata::types::Field;
        match field {
            Field::StringValue(text) => ResultValue::Text(text.clone()),
            Field::LongValue(number) => ResultValue::Number(*number),
            Field::DoubleValue(number) => ResultValue::Number(*number as i64),
            Field::BooleanValue(flag) => ResultValue::Text(flag.to_string()),
            _ => ResultValue::Null,
        }
    }

    fn text(&self) -> Option<String> {
        match self {
            ResultValue::Text(text) => Some(text.clone()),
            ResultValue::Number(number) => Some(number.to_string()),
            ResultValue::Null => None,
        }
    }

    fn count(&self) -> u64 {
        match self {
            ResultValue::Number(number) => (*number).max(0) as u64,
            ResultValue::Text(text) => text.parse().unwrap_or(0),
            ResultValue::Null => 0,
        }
    }
}

/// Rows of the event query of [`redshift_sql::metadata_scan_statements`].
pub fn event_count_rows(rows: &[Vec<ResultValue>]) -> Result<Vec<EventCountRow>, ActivityFailure> {
    rows.iter()
        .map(|row| match row.as_slice() {
            [name, day, platform, sdk, count] => Ok(EventCountRow { event_name: name.text().unwrap_or_default(), day: day.text().unwrap_or_default(), platform: platform.text(), sdk_name: sdk.text(), count: count.count() }),
            other => Err(data_api_error("GetStatementResult")(format!("the event query returned {} columns, expected 5", other.len()))),
        })
        .collect()
}

/// Rows of the parameter and attribute queries of [`redshift_sql::metadata_scan_statements`].
pub fn value_count_rows(rows: &[Vec<ResultValue>]) -> Result<Vec<ValueCountRow>, ActivityFailure> {
    rows.iter()
        .map(|row| match row.as_slice() {
            [event, name, value_type, value, count] => Ok(ValueCountRow {
                event_name: event.text().unwrap_or_default(),
                name: name.text().unwrap_or_default(),
                value_type: value_type.text().unwrap_or_default(),
                value: value.text(),
                count: count.count(),
            }),
            other => Err(data_api_error("GetStatementResult")(format!("a value query returned {} columns, expected 5", other.len()))),
        })
        .collect()
}

#[async_trait::async_trait]
impl Warehouse for RedshiftWarehouse {
    async fn submit_load(&self, batch: &LoadBatch, attempt: u32) -> Result<SubmittedLoad, ActivityFailure> {
        let loads = self.write_table_manifests(batch).await?;
        let planned = redshift_sql::load_statements(&loads, &self.settings.copy_role_arn);
        let statement_id = self.submit(planned.statements, Some(&[&batch.manifest_key, &attempt.to_string()])).await?;
        tracing::info!(project = %batch.project_id, manifest = %batch.manifest_key, %statement_id, attempt, "submitted a Redshift load");
        Ok(SubmittedLoad { batch: batch.clone(), statement_id: Some(statement_id), counted_statements: planned.counted, outcome: LoadOutcome::Running })
    }

    async fn check_load(&self, mut submitted: SubmittedLoad) -> Result<SubmittedLoad, ActivityFailure> {
        let Some(statement_id) = &submitted.statement_id else {
            return Ok(submitted);
        };
        submitted.outcome = match statement_state(&self.describe(statement_id).await?) {
            StatementState::Running => LoadOutcome::Running,
            StatementState::Failed { reason } => {
                tracing::warn!(project = %submitted.batch.project_id, %statement_id, %reason, "a Redshift load failed and was rolled back");
                LoadOutcome::Failed { reason }
            }
            StatementState::Finished { sub_statement_rows } => {
                let mut summary = LoadSummary { batches: 1, files: u64::from(submitted.batch.file_count), ..LoadSummary::default() };
                for (index, table) in &submitted.counted_statements {
                    let rows = sub_statement_rows.get(*index as usize).copied().unwrap_or_default().max(0) as u64;
                    add_table_rows(&mut summary, table, rows);
                }
                LoadOutcome::Finished(summary)
            }
        };
        Ok(submitted)
    }

    async fn refresh_reporting_aggregates(&self, app_ids: &[String]) -> Result<u64, ActivityFailure> {
        // All apps in one transaction; each app's counted statement is offset by those before it.
        let (mut statements, mut counted) = (Vec::new(), Vec::new());
        for app_id in app_ids {
            let app = redshift_sql::refresh_reporting_statements(app_id);
            let offset = statements.len() as u32;
            counted.extend(app.counted.iter().map(|(index, _)| offset + index));
            statements.extend(app.statements);
        }
        let (_, rows) = self.run_to_completion(statements).await?;
        Ok(counted.iter().map(|index| rows.get(*index as usize).copied().unwrap_or_default().max(0) as u64).sum())
    }

    async fn delete_rows_before(&self, app_id: &str, cutoff_ms: i64) -> Result<ExpiredRows, ActivityFailure> {
        let planned = redshift_sql::delete_expired_statements(app_id, cutoff_ms);
        let (_, rows) = self.run_to_completion(planned.statements).await?;
        let mut deleted = ExpiredRows::default();
        for (index, table) in &planned.counted {
            let count = rows.get(*index as usize).copied().unwrap_or_default().max(0) as u64;
            match table.as_str() {
                "event_v2" => deleted.events = count,
                "item_v2" => deleted.items = count,
                "session" => deleted.sessions = count,
                _ => deleted.users = count,
            }
        }
        Ok(deleted)
    }

    async fn scan_metadata(&self, app_id: &str, scanned_at_ms: i64) -> Result<AppMetadata, ActivityFailure> {
        let statements = redshift_sql::metadata_scan_statements(app_id);
        let (statement_id, _) = self.run_to_completion(statements).await?;
        // Sub-statements are `<id>:<n>`, numbered from 1.
        let query = |offset: usize| format!("{statement_id}:{}", redshift_sql::METADATA_SCAN_SETUP_STATEMENTS + offset + 1);
        let events = event_count_rows(&self.result_rows(&query(0)).await?)?;
        let parameters = value_count_rows(&self.result_rows(&query(1)).await?)?;
        let attributes = value_count_rows(&self.result_rows(&query(2)).await?)?;
        Ok(assemble_app_metadata(app_id, scanned_at_ms, events, parameters, attributes))
    }
}
