//! A query's answer as a plain table (column names, rows of JSON values), the same for every
//! exploration and dashboard panel; the console charts it and exports it as CSV.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::sql::{SqlValue, Statement};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, Default)]
pub struct ResultTable {
    pub columns: Vec<String>,
    /// Values in column order: text, numbers or null.
    #[schema(value_type = Vec<Vec<Object>>)]
    pub rows: Vec<Vec<serde_json::Value>>,
}

impl ResultTable {
    /// The table as CSV (RFC 4180: a header line, fields quoted when they need it). Text that
    /// a spreadsheet would take for a formula (`=`, `+`, `-`, `@`, tab, carriage return first)
    /// gets a leading `'`: event and parameter text comes from anyone who can reach the
    /// collector, and must not run in an analyst's spreadsheet.
    pub fn to_csv(&self) -> Result<String, csv::Error> {
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(&self.columns)?;
        for row in &self.rows {
            writer.write_record(row.iter().map(|value| match value {
                serde_json::Value::Null => String::new(),
                serde_json::Value::String(text) if text.starts_with(['=', '+', '-', '@', '\t', '\r']) => format!("'{text}"),
                serde_json::Value::String(text) => text.clone(),
                other => other.to_string(),
            }))?;
        }
        let bytes = writer.into_inner().map_err(|error| error.into_error())?;
        Ok(String::from_utf8(bytes).expect("CSV of UTF-8 text is UTF-8"))
    }

    /// The index of a column, for readers of a known table shape.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|column| column == name)
    }
}

impl duckdb::ToSql for SqlValue {
    fn to_sql(&self) -> duckdb::Result<duckdb::types::ToSqlOutput<'_>> {
        Ok(match self {
            SqlValue::Text(text) => duckdb::types::ToSqlOutput::from(text.as_str()),
            SqlValue::Integer(number) => duckdb::types::ToSqlOutput::from(*number),
            SqlValue::Float(number) => duckdb::types::ToSqlOutput::from(*number),
        })
    }
}

fn json_of_duckdb_value(value: duckdb::types::Value) -> serde_json::Value {
    use duckdb::types::Value;
    let float = |number: f64| serde_json::Number::from_f64(number).map_or(serde_json::Value::Null, serde_json::Value::Number);
    match value {
        Value::Null => serde_json::Value::Null,
        Value::Boolean(flag) => flag.into(),
        Value::TinyInt(number) => number.into(),
        Value::SmallInt(number) => number.into(),
        Value::Int(number) => number.into(),
        Value::BigInt(number) => number.into(),
        Value::UTinyInt(number) => number.into(),
        Value::USmallInt(number) => number.into(),
        Value::UInt(number) => number.into(),
        Value::UBigInt(number) => number.into(),
        Value::HugeInt(number) => i64::try_from(number).map_or_else(|_| float(number as f64), Into::into),
        Value::Float(number) => float(f64::from(number)),
        Value::Double(number) => float(number),
        Value::Decimal(number) => float(number.to_string().parse().unwrap_or(f64::NAN)),
        Value::Text(text) => text.into(),
        other => format!("{other:?}").into(),
    }
}

/// Runs a DuckDB statement and reads every row.
pub fn run_on_duckdb(connection: &duckdb::Connection, statement: &Statement) -> Result<ResultTable, duckdb::Error> {
    let mut prepared = connection.prepare(&statement.sql)?;
    let mut rows = prepared.query(duckdb::params_from_iter(statement.parameters.iter()))?;
    let columns: Vec<String> = rows.as_ref().map(|statement| statement.column_names()).unwrap_or_default();
    let mut table = ResultTable { columns, rows: Vec::new() };
    while let Some(row) = rows.next()? {
        let values = (0..table.columns.len()).map(|index| row.get::<_, duckdb::types::Value>(index).map(json_of_duckdb_value)).collect::<Result<Vec<_>, _>>()?;
        table.rows.push(values);
    }
    Ok(table)
}
