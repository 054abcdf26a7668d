//! The Redshift dialect: the SQL that loads a batch (COPY of a manifest into a staging table,
//! then a merge on the tables' natural keys), rebuilds the reporting aggregates, deletes expired
//! rows and scans metadata. Pure functions from names to statements, so each is checked
//! against a golden file (`activities/tests/golden/redshift/`).
//!
//! Each list of statements is sent as one Data API `BatchExecuteStatement`, which Redshift runs
//! as one transaction: a load that fails leaves nothing behind and can be sent again.

use arrow::datatypes::DataType;

use clickstream_reporting::{Dialect, aggregates};

use crate::{
    catalog::processed_table_schema,
    warehouse::{MergeRule, quote_identifier},
};

/// One table's share of a load batch: its files, listed in a COPY manifest of their own.
#[derive(Debug, Clone, PartialEq)]
pub struct TableLoad {
    pub app_id: String,
    pub table: String,
    /// `s3://…` URL of the manifest listing this table's files of the batch.
    pub manifest_url: String,
}

/// Statements to run as one transaction, and which of them count rows of which table.
#[derive(Debug, Clone, PartialEq)]
pub struct CountedStatements {
    pub statements: Vec<String>,
    /// (index into `statements`, table) of the statement whose row count is the table's.
    pub counted: Vec<(u32, String)>,
}

/// Redshift's type for an Arrow column type. Nested values (maps, structs, lists) become
/// SUPER, which `COPY … SERIALIZETOJSON` fills from Parquet.
pub fn redshift_type(data_type: &DataType) -> &'static str {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 => "VARCHAR(65535)",
        DataType::Int64 => "BIGINT",
        DataType::Int32 => "INTEGER",
        DataType::Float64 => "DOUBLE PRECISION",
        DataType::Float32 => "REAL",
        DataType::Boolean => "BOOLEAN",
        DataType::Timestamp(..) => "TIMESTAMP",
        DataType::Date32 | DataType::Date64 => "DATE",
        DataType::List(_) | DataType::LargeList(_) | DataType::Struct(_) | DataType::Map(..) => "SUPER",
        other => unreachable!("no clickstream table has a column of type {other}"),
    }
}

fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A table's columns in file order (COPY from Parquet maps columns by position).
fn columns_of(table: &str) -> Vec<(String, &'static str)> {
    let schema = processed_table_schema(table).unwrap_or_else(|| unreachable!("`{table}` is one of the four processed tables"));
    schema.fields().iter().map(|field| (field.name().clone(), redshift_type(field.data_type()))).collect()
}

fn column_definitions(table: &str) -> String {
    columns_of(table).iter().map(|(name, column_type)| format!("{} {column_type}", quote_identifier(name))).collect::<Vec<_>>().join(", ")
}

fn column_list(table: &str, alias: Option<&str>) -> String {
    let prefix = alias.map(|alias| format!("{alias}.")).unwrap_or_default();
    columns_of(table).iter().map(|(name, _)| format!("{prefix}{}", quote_identifier(name))).collect::<Vec<_>>().join(", ")
}

/// `left = right`, also when both are NULL (Redshift has no `IS NOT DISTINCT FROM`).
fn null_safe_equal(left: &str, right: &str) -> String {
    format!("({left} = {right} OR ({left} IS NULL AND {right} IS NULL))")
}

/// Holds when the `incoming` row is preferred to, or ranks equal with, `existing`.
fn incoming_preferred_or_equal(preference: &[(&str, &str)]) -> String {
    let side = |expression: &str, row: &str| expression.replace("{row}", row);
    let mut clauses = Vec::new();
    for (index, (expression, direction)) in preference.iter().enumerate() {
        let better = if *direction == "DESC" { ">" } else { "<" };
        let mut clause: Vec<String> = preference[..index].iter().map(|(earlier, _)| null_safe_equal(&side(earlier, "incoming"), &side(earlier, "existing"))).collect();
        clause.push(format!("{} {better} {}", side(expression, "incoming"), side(expression, "existing")));
        clauses.push(format!("({})", clause.join(" AND ")));
    }
    let all_equal: Vec<String> = preference.iter().map(|(expression, _)| null_safe_equal(&side(expression, "incoming"), &side(expression, "existing"))).collect();
    clauses.push(format!("({})", all_equal.join(" AND ")));
    clauses.join(" OR ")
}

/// The schema and table, created when missing.
fn create_table_statements(app_id: &str, table: &str) -> Vec<String> {
    let schema = quote_identifier(app_id);
    vec![
        format!("CREATE SCHEMA IF NOT EXISTS {schema}"),
        format!("CREATE TABLE IF NOT EXISTS {schema}.{} ({})", quote_identifier(table), column_definitions(table)),
    ]
}

/// The statements that load a batch: per table, COPY its manifest into a staging table, keep
/// one row per natural key, then store what is new (events, items) or preferred (users,
/// sessions) with the table's [`MergeRule`], the same rules as DuckDB's.
///
/// Redshift's MERGE cannot leave a matched row alone when it is preferred (no conditions on
/// `WHEN MATCHED`), so the rows that lose to what is stored are removed from the staging
/// table first; facts then need only an INSERT of the new keys. `LOCK` serialises concurrent
/// loads of a table (a backfill beside the schedule) so both never insert the same key.
pub fn load_statements(loads: &[TableLoad], copy_role_arn: &str) -> CountedStatements {
    let mut statements = Vec::new();
    let mut counted = Vec::new();
    for (index, load) in loads.iter().enumerate() {
        let target = format!("{}.{}", quote_identifier(&load.app_id), quote_identifier(&load.table));
        let staging = format!("clickstream_staging_{index}");
        let incoming = format!("clickstream_incoming_{index}");
        statements.extend(create_table_statements(&load.app_id, &load.table));
        // The reporting aggregates exist whenever the events do (see DuckDB's load).
        if load.table == clickstream_etl::tables::event_v2::TABLE_NAME {
            statements.extend(aggregates::create_statements(&load.app_id, Dialect::Redshift));
        }
        statements.push(format!("LOCK {target}"));
        statements.push(format!("CREATE TEMP TABLE {staging} ({})", column_definitions(&load.table)));
        statements.push(format!(
            "COPY {staging} FROM {} IAM_ROLE {} FORMAT AS PARQUET SERIALIZETOJSON MANIFEST",
            quote_literal(&load.manifest_url),
            quote_literal(copy_role_arn)
        ));
        let columns = column_list(&load.table, None);
        match MergeRule::of_table(&load.table) {
            MergeRule::InsertNew { key, first_by } => {
                let key_list = key.join(", ");
                let matches = key.iter().map(|column| format!("existing.{column} = {incoming}.{column}")).collect::<Vec<_>>().join(" AND ");
                statements.push(format!(
                    "CREATE TEMP TABLE {incoming} AS SELECT {columns} FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY {key_list} ORDER BY {first_by}) AS clickstream_rank FROM {staging}) WHERE clickstream_rank = 1"
                ));
                statements.push(format!("DELETE FROM {incoming} USING {target} AS existing WHERE {matches}"));
                counted.push((statements.len() as u32, load.table.clone()));
                statements.push(format!("INSERT INTO {target} ({columns}) SELECT {columns} FROM {incoming}"));
            }
            MergeRule::KeepPreferred { key, preference } => {
                let key_list = key.join(", ");
                let order = preference.iter().map(|(expression, direction)| format!("{} {direction}", expression.replace("{row}.", ""))).collect::<Vec<_>>().join(", ");
                statements.push(format!(
                    "CREATE TEMP TABLE {incoming} AS SELECT {columns} FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY {key_list} ORDER BY {order}) AS clickstream_rank FROM {staging}) WHERE clickstream_rank = 1"
                ));
                let same_key = key.iter().map(|column| format!("existing.{column} = incoming.{column}")).collect::<Vec<_>>().join(" AND ");
                // `incoming` names the staging rows in the preference expressions.
                let loses = format!("NOT ({})", incoming_preferred_or_equal(&preference));
                statements.push(format!(
                    "DELETE FROM {incoming} USING {target} AS existing WHERE {} AND {}",
                    same_key.replace("incoming.", &format!("{incoming}.")),
                    loses.replace("incoming.", &format!("{incoming}."))
                ));
                let on = key.iter().map(|column| format!("{target}.{column} = incoming.{column}")).collect::<Vec<_>>().join(" AND ");
                // The key columns are equal by the join; the others take the incoming values.
                let updates = columns_of(&load.table)
                    .iter()
                    .filter(|(name, _)| !key.contains(&name.as_str()))
                    .map(|(name, _)| format!("{0} = incoming.{0}", quote_identifier(name)))
                    .collect::<Vec<_>>()
                    .join(", ");
                counted.push((statements.len() as u32, load.table.clone()));
                statements.push(format!(
                    "MERGE INTO {target} USING {incoming} AS incoming ON {on} WHEN MATCHED THEN UPDATE SET {updates} WHEN NOT MATCHED THEN INSERT ({columns}) VALUES ({})",
                    column_list(&load.table, Some("incoming"))
                ));
            }
        }
        statements.push(format!("DROP TABLE {incoming}"));
        statements.push(format!("DROP TABLE {staging}"));
    }
    CountedStatements { statements, counted }
}

/// Rebuilds an app's reporting aggregates from its `event_v2` (the statements DuckDB runs too,
/// in Redshift's dialect); the last two INSERTs' row counts are the aggregates' rows.
pub fn refresh_reporting_statements(app_id: &str) -> CountedStatements {
    let mut statements = create_table_statements(app_id, clickstream_etl::tables::event_v2::TABLE_NAME);
    statements.extend(aggregates::refresh_statements(app_id, Dialect::Redshift));
    let last = statements.len() as u32 - 1;
    let counted = vec![(last - 1, aggregates::SESSION_ACTIVITY_TABLE.to_string()), (last, aggregates::EVENT_ACTIVITY_TABLE.to_string())];
    CountedStatements { statements, counted }
}

/// Deletes an app's rows whose `event_timestamp` is before the cutoff, in every table.
pub fn delete_expired_statements(app_id: &str, cutoff_ms: i64) -> CountedStatements {
    let schema = quote_identifier(app_id);
    let (mut statements, mut counted) = (Vec::new(), Vec::new());
    for table in crate::catalog::PROCESSED_TABLES {
        statements.extend(create_table_statements(app_id, table));
        counted.push((statements.len() as u32, table.to_string()));
        statements.push(format!("DELETE FROM {schema}.{} WHERE event_timestamp < TIMESTAMP 'epoch' + {cutoff_ms} * INTERVAL '1 millisecond'", quote_identifier(table)));
    }
    CountedStatements { statements, counted }
}

/// The metadata scan's queries over an app's tables, in the order of
/// [`crate::metadata::assemble_app_metadata`]'s arguments: events per name, day, platform and
/// SDK; the top values of each event parameter (from the parameters' JSON); the top values of
/// each user attribute. Each returns the columns the row types of [`crate::metadata`] read.
pub fn metadata_scan_statements(app_id: &str) -> Vec<String> {
    let schema = quote_identifier(app_id);
    let top = crate::metadata::TOP_VALUES;
    let mut statements = create_table_statements(app_id, "event_v2");
    statements.extend(create_table_statements(app_id, "user_v2"));
    statements.push(format!(
        "SELECT event_name, TO_CHAR(event_timestamp, 'YYYY-MM-DD') AS day, platform, sdk_name, COUNT(*) AS occurrences FROM {schema}.event_v2 WHERE event_name IS NOT NULL GROUP BY 1, 2, 3, 4"
    ));
    let value_of = |alias: &str| format!("CASE WHEN JSON_TYPEOF({alias}) = 'string' THEN CAST({alias} AS VARCHAR) ELSE JSON_SERIALIZE({alias}) END");
    statements.push(format!(
        "SELECT event_name, name, value_type, value, occurrences FROM (SELECT event_name, name, value_type, value, COUNT(*) AS occurrences, ROW_NUMBER() OVER (PARTITION BY event_name, name, value_type ORDER BY COUNT(*) DESC, value) AS value_rank FROM (SELECT app_event.event_name, CAST(name AS VARCHAR) AS name, JSON_TYPEOF(parameter) AS value_type, {} AS value FROM {schema}.event_v2 AS app_event, UNPIVOT JSON_PARSE(app_event.custom_parameters_json_str) AS parameter AT name WHERE app_event.event_name IS NOT NULL) GROUP BY 1, 2, 3, 4) WHERE value_rank <= {top}",
        value_of("parameter")
    ));
    // A user attribute's JSON is `{"name": {"set_time_msec": …, "value": …}}`, the value typed.
    statements.push(format!(
        "SELECT '' AS event_name, name, value_type, value, occurrences FROM (SELECT name, value_type, value, COUNT(*) AS occurrences, ROW_NUMBER() OVER (PARTITION BY name, value_type ORDER BY COUNT(*) DESC, value) AS value_rank FROM (SELECT CAST(name AS VARCHAR) AS name, JSON_TYPEOF(property.value) AS value_type, {} AS value FROM {schema}.user_v2 AS app_user, UNPIVOT JSON_PARSE(app_user.user_properties_json_str) AS property AT name) GROUP BY 1, 2, 3) WHERE value_rank <= {top}",
        value_of("property.value")
    ));
    statements
}

/// How many statements of [`metadata_scan_statements`] precede its three queries.
pub const METADATA_SCAN_SETUP_STATEMENTS: usize = 4;
