//! The `event_v2` table: Arrow schema and Parquet (snappy) encoding of [`EventRow`]s.

use std::sync::Arc;

use arrow::{
    array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray},
    datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit},
};
use parquet::{arrow::ArrowWriter, basic::Compression, file::properties::WriterProperties};

use crate::{errors::ActivityFailure, transform::EventRow};

pub const EVENT_TABLE_NAME: &str = "event_v2";

pub fn event_schema() -> SchemaRef {
    let timestamp = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("event_timestamp", timestamp.clone(), false),
        Field::new("event_id", DataType::Utf8, false),
        Field::new("event_time_msec", DataType::Int64, false),
        Field::new("event_name", DataType::Utf8, false),
        Field::new("event_bundle_sequence_id", DataType::Int64, true),
        Field::new("ingest_time_msec", DataType::Int64, true),
        Field::new("platform", DataType::Utf8, true),
        Field::new("project_id", DataType::Utf8, false),
        Field::new("app_id", DataType::Utf8, false),
        Field::new("user_pseudo_id", DataType::Utf8, true),
        Field::new("session_id", DataType::Utf8, true),
        Field::new("sdk_name", DataType::Utf8, true),
        Field::new("sdk_version", DataType::Utf8, true),
        Field::new("app_version", DataType::Utf8, true),
        Field::new("device_operating_system", DataType::Utf8, true),
        Field::new("ua", DataType::Utf8, true),
        Field::new("ip", DataType::Utf8, true),
        Field::new("custom_parameters_json_str", DataType::Utf8, true),
        Field::new("created_time", timestamp, false),
    ]))
}

/// Encodes rows as one snappy Parquet file. `created_time_micros` is the run's time.
pub fn encode_parquet(rows: &[&EventRow], created_time_micros: i64) -> Result<Vec<u8>, ActivityFailure> {
    let strings = |pick: fn(&EventRow) -> Option<&str>| -> ArrayRef { Arc::new(rows.iter().map(|row| pick(row)).collect::<StringArray>()) };
    let longs = |pick: fn(&EventRow) -> Option<i64>| -> ArrayRef { Arc::new(rows.iter().map(|row| pick(row)).collect::<Int64Array>()) };
    let timestamps = |values: Vec<i64>| -> ArrayRef { Arc::new(TimestampMicrosecondArray::from(values).with_timezone("UTC")) };

    let columns: Vec<ArrayRef> = vec![
        timestamps(rows.iter().map(|row| row.event_timestamp_micros).collect()),
        strings(|row| Some(&row.event_id)),
        longs(|row| Some(row.event_time_msec)),
        strings(|row| Some(&row.event_name)),
        longs(|row| row.event_bundle_sequence_id),
        longs(|row| row.ingest_time_msec),
        strings(|row| row.platform.as_deref()),
        strings(|row| Some(&row.project_id)),
        strings(|row| Some(&row.app_id)),
        strings(|row| row.user_pseudo_id.as_deref()),
        strings(|row| row.session_id.as_deref()),
        strings(|row| row.sdk_name.as_deref()),
        strings(|row| row.sdk_version.as_deref()),
        strings(|row| row.app_version.as_deref()),
        strings(|row| row.device_operating_system.as_deref()),
        strings(|row| row.ua.as_deref()),
        strings(|row| row.ip.as_deref()),
        strings(|row| row.custom_parameters_json_str.as_deref()),
        timestamps(vec![created_time_micros; rows.len()]),
    ];
    let batch = RecordBatch::try_new(event_schema(), columns).map_err(|error| ActivityFailure::Parquet(error.to_string()))?;
    let properties = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
    let mut buffer = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buffer, event_schema(), Some(properties)).map_err(|error| ActivityFailure::Parquet(error.to_string()))?;
    writer.write(&batch).map_err(|error| ActivityFailure::Parquet(error.to_string()))?;
    writer.close().map_err(|error| ActivityFailure::Parquet(error.to_string()))?;
    Ok(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    #[test]
    fn rows_survive_a_parquet_round_trip() {
        let row = EventRow::for_tests("e1", 1_700_000_000_000);
        let bytes = encode_parquet(&[&row, &row], 5).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(bytes)).unwrap().build().unwrap();
        let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().unwrap();
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 2);
        assert_eq!(batches[0].schema().fields().len(), event_schema().fields().len());
    }
}
