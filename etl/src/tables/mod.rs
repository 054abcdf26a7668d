//! The four processed tables as Arrow: their schemas (the CAoA Spark schemas in
//! `shared/fixtures/caoa/schema/`, column for column) and how rows become record batches.
//!
//! Each table lists its columns once, with [`define_table!`]: name, kind, and how to read the
//! value from a row. The macro turns that list into the schema and into a column-at-a-time
//! batch builder, so the schema and the data can never disagree. Text columns carry CAoA's
//! byte limits (255, 2048, 65535) and are cut at a character boundary when longer.

use std::sync::Arc;

use arrow::{
    array::{ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int32Builder, Int64Builder, MapArray, StringBuilder, StructArray, TimestampMicrosecondBuilder},
    buffer::{NullBuffer, OffsetBuffer},
    datatypes::{DataType, Field, Fields, TimeUnit},
};

use crate::custom_parameters::ParameterValue;

pub mod event_v2;
pub mod item_v2;
pub mod session;
pub mod user_v2;

/// What every row of one output batch shares: the run's identity and time.
#[derive(Debug, Clone)]
pub struct BatchContext {
    /// `process_info.process_job_id`: the id of the ETL run (chunk) that wrote the row.
    pub process_job_id: String,
    /// `process_info.process_time`, Java `Instant.toString()` form.
    pub process_time: String,
    /// `created_time`, µs since the epoch.
    pub created_time_micros: i64,
}

/// Cuts `text` to at most `max_bytes` bytes of UTF-8, at a character boundary.
pub fn truncate_to_bytes(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A custom user property in `user_properties`: CAoA's `{value, type, set_time_msec}`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UserPropertyValue {
    pub value: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub set_time_msec: Option<i64>,
}

/// Writes the entries of one `map<string,string>` cell. A column is built in two passes over
/// its rows, first counting entries and bytes, then appending them: buffers sized up front
/// are never copied to grow.
pub struct TextMapWriter<'b> {
    target: MapTarget<'b>,
    count: usize,
}

enum MapTarget<'b> {
    Counting { bytes: &'b mut usize },
    Appending { keys: &'b mut StringBuilder, values: &'b mut StringBuilder },
}

impl TextMapWriter<'_> {
    pub fn entry(&mut self, key: &str, value: Option<&str>) {
        self.count += 1;
        match &mut self.target {
            MapTarget::Counting { bytes } => **bytes += key.len() + value.map_or(0, str::len),
            MapTarget::Appending { keys, values } => {
                keys.append_value(key);
                values.append_option(value);
            }
        }
    }
}

/// Column kinds: the Arrow type of each, and how a column of that kind is built from rows.
/// The accessor receives the row and the batch context.
pub mod kinds {
    use super::*;

    fn utc_timestamp() -> DataType {
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    }

    /// Map columns are written as Spark writes them: a `key_value` group of `key` and `value`.
    fn map_type(value_type: DataType) -> DataType {
        DataType::Map(Arc::new(Field::new("key_value", DataType::Struct(map_entry_fields(value_type)), false)), false)
    }

    fn map_entry_fields(value_type: DataType) -> Fields {
        Fields::from(vec![Field::new("key", DataType::Utf8, false), Field::new("value", value_type, true)])
    }

    fn parameter_struct_fields() -> Fields {
        Fields::from(vec![Field::new("value", DataType::Utf8, true), Field::new("type", DataType::Utf8, true)])
    }

    fn user_property_struct_fields() -> Fields {
        Fields::from(vec![Field::new("value", DataType::Utf8, true), Field::new("type", DataType::Utf8, true), Field::new("set_time_msec", DataType::Int64, true)])
    }

    /// Assembles a map column from its flattened entries.
    fn map_array(value_type: DataType, offsets: Vec<i32>, valid: Vec<bool>, keys: ArrayRef, values: ArrayRef) -> ArrayRef {
        let entries = StructArray::new(map_entry_fields(value_type.clone()), vec![keys, values], None);
        let DataType::Map(field, _) = map_type(value_type) else { unreachable!("map_type returns a map") };
        let nulls = valid.iter().any(|valid| !valid).then(|| NullBuffer::from(valid));
        Arc::new(MapArray::new(field, OffsetBuffer::new(offsets.into()), entries, nulls, false))
    }

    pub mod timestamp {
        use super::*;
        pub fn data_type() -> DataType {
            utc_timestamp()
        }
        /// Values are µs since the epoch.
        pub fn build<R, C>(rows: &[&R], context: &C, value: impl Fn(&R, &C) -> Option<i64>) -> ArrayRef {
            let mut builder = TimestampMicrosecondBuilder::with_capacity(rows.len()).with_timezone("UTC");
            for &row in rows {
                builder.append_option(value(row, context));
            }
            Arc::new(builder.finish())
        }
    }

    pub mod date {
        use super::*;
        pub fn data_type() -> DataType {
            DataType::Date32
        }
        /// Values are days since the epoch.
        pub fn build<R, C>(rows: &[&R], context: &C, value: impl Fn(&R, &C) -> Option<i32>) -> ArrayRef {
            let mut builder = Date32Builder::with_capacity(rows.len());
            for &row in rows {
                builder.append_option(value(row, context));
            }
            Arc::new(builder.finish())
        }
    }

    pub mod text {
        use super::*;
        pub fn data_type() -> DataType {
            DataType::Utf8
        }
        pub fn build<R, C, F>(rows: &[&R], context: &C, max_bytes: usize, value: F) -> ArrayRef
        where
            F: for<'r> Fn(&'r R, &'r C) -> Option<&'r str>,
        {
            // Sized in a first pass: growing the value buffer would copy it again and again.
            let bytes: usize = rows.iter().map(|&row| value(row, context).map_or(0, |text| text.len().min(max_bytes))).sum();
            let mut builder = StringBuilder::with_capacity(rows.len(), bytes);
            for &row in rows {
                builder.append_option(value(row, context).map(|text| truncate_to_bytes(text, max_bytes)));
            }
            Arc::new(builder.finish())
        }
    }

    /// A column of a primitive type: one builder per type, the same loop for all.
    macro_rules! primitive_column {
        ($module:ident, $data_type:expr, $builder:ty, $value:ty) => {
            pub mod $module {
                use super::*;
                pub fn data_type() -> DataType {
                    $data_type
                }
                pub fn build<R, C>(rows: &[&R], context: &C, value: impl Fn(&R, &C) -> Option<$value>) -> ArrayRef {
                    let mut builder = <$builder>::with_capacity(rows.len());
                    for &row in rows {
                        builder.append_option(value(row, context));
                    }
                    Arc::new(builder.finish())
                }
            }
        };
    }
    primitive_column!(long, DataType::Int64, Int64Builder, i64);
    primitive_column!(integer, DataType::Int32, Int32Builder, i32);
    primitive_column!(double, DataType::Float64, Float64Builder, f64);
    primitive_column!(boolean, DataType::Boolean, BooleanBuilder, bool);

    /// `map<string,string>`: the accessor writes the entries and returns false for a null map.
    pub mod text_map {
        use super::*;
        pub fn data_type() -> DataType {
            map_type(DataType::Utf8)
        }
        pub fn build<R, C>(rows: &[&R], context: &C, value: impl Fn(&R, &C, &mut TextMapWriter<'_>) -> bool) -> ArrayRef {
            let (mut entries, mut bytes) = (0, 0);
            for &row in rows {
                let mut counter = TextMapWriter { target: MapTarget::Counting { bytes: &mut bytes }, count: 0 };
                value(row, context, &mut counter);
                entries += counter.count;
            }
            let mut keys = StringBuilder::with_capacity(entries, bytes);
            let mut values = StringBuilder::with_capacity(entries, bytes);
            let mut offsets = Vec::with_capacity(rows.len() + 1);
            let mut valid = Vec::with_capacity(rows.len());
            let mut total = 0i32;
            offsets.push(0);
            for &row in rows {
                let mut writer = TextMapWriter { target: MapTarget::Appending { keys: &mut keys, values: &mut values }, count: 0 };
                let present = value(row, context, &mut writer);
                total += writer.count as i32;
                offsets.push(total);
                valid.push(present);
            }
            map_array(DataType::Utf8, offsets, valid, Arc::new(keys.finish()), Arc::new(values.finish()))
        }
    }

    /// `map<string,struct<value,type>>`: `custom_parameters`.
    pub mod parameter_map {
        use super::*;
        pub fn data_type() -> DataType {
            map_type(DataType::Struct(parameter_struct_fields()))
        }
        pub fn build<R, C, F>(rows: &[&R], context: &C, value: F) -> ArrayRef
        where
            F: for<'r> Fn(&'r R, &'r C) -> Option<&'r [(String, ParameterValue)]>,
        {
            let (mut entries, mut bytes) = (0, 0);
            for &row in rows {
                for (key, parameter) in value(row, context).unwrap_or_default() {
                    entries += 1;
                    bytes += key.len() + parameter.value.len();
                }
            }
            let (mut keys, mut texts, mut types) = (StringBuilder::with_capacity(entries, bytes), StringBuilder::with_capacity(entries, bytes), StringBuilder::with_capacity(entries, entries * 7));
            let mut offsets = Vec::with_capacity(rows.len() + 1);
            let mut valid = Vec::with_capacity(rows.len());
            let mut total = 0i32;
            offsets.push(0);
            for &row in rows {
                let entries = value(row, context).filter(|entries| !entries.is_empty());
                for (key, parameter) in entries.unwrap_or_default() {
                    keys.append_value(key);
                    texts.append_value(&parameter.value);
                    types.append_value(parameter.kind.name());
                    total += 1;
                }
                offsets.push(total);
                valid.push(entries.is_some());
            }
            let values = StructArray::new(parameter_struct_fields(), vec![Arc::new(texts.finish()), Arc::new(types.finish())], None);
            map_array(DataType::Struct(parameter_struct_fields()), offsets, valid, Arc::new(keys.finish()), Arc::new(values))
        }
    }

    /// `map<string,struct<value,type,set_time_msec>>`: `user_properties`.
    pub mod user_property_map {
        use super::*;
        pub fn data_type() -> DataType {
            map_type(DataType::Struct(user_property_struct_fields()))
        }
        pub fn build<R, C, F>(rows: &[&R], context: &C, value: F) -> ArrayRef
        where
            F: for<'r> Fn(&'r R, &'r C) -> Option<&'r [(String, UserPropertyValue)]>,
        {
            let (mut entries, mut bytes) = (0, 0);
            for &row in rows {
                for (key, property) in value(row, context).unwrap_or_default() {
                    entries += 1;
                    bytes += key.len() + property.value.len();
                }
            }
            let (mut keys, mut texts, mut types, mut times) =
                (StringBuilder::with_capacity(entries, bytes), StringBuilder::with_capacity(entries, bytes), StringBuilder::with_capacity(entries, entries * 7), Int64Builder::with_capacity(entries));
            let mut offsets = Vec::with_capacity(rows.len() + 1);
            let mut valid = Vec::with_capacity(rows.len());
            let mut total = 0i32;
            offsets.push(0);
            for &row in rows {
                let entries = value(row, context).filter(|entries| !entries.is_empty());
                for (key, property) in entries.unwrap_or_default() {
                    keys.append_value(key);
                    texts.append_value(&property.value);
                    types.append_value(&property.kind);
                    times.append_option(property.set_time_msec);
                    total += 1;
                }
                offsets.push(total);
                valid.push(entries.is_some());
            }
            let values = StructArray::new(user_property_struct_fields(), vec![Arc::new(texts.finish()), Arc::new(types.finish()), Arc::new(times.finish())], None);
            map_array(DataType::Struct(user_property_struct_fields()), offsets, valid, Arc::new(keys.finish()), Arc::new(values))
        }
    }
}

/// Declares a table: `name: kind = accessor` per column, in schema order. Text columns give
/// their byte limit: `name: text(255) = …`. Generates `schema()` and `record_batch(rows, ctx)`.
macro_rules! define_table {
    ($row:ty, $context:ty { $( $column:ident : $kind:ident $( ( $limit:expr ) )? = $value:expr ),+ $(,)? }) => {
        /// The table's Arrow schema, in CAoA's column order; every column is nullable.
        pub fn schema() -> arrow::datatypes::SchemaRef {
            std::sync::Arc::new(arrow::datatypes::Schema::new(vec![
                $( arrow::datatypes::Field::new(stringify!($column), $crate::tables::kinds::$kind::data_type(), true) ),+
            ]))
        }

        /// One record batch of these rows.
        pub fn record_batch(rows: &[&$row], context: &$context) -> arrow::array::RecordBatch {
            let columns: Vec<arrow::array::ArrayRef> = vec![
                $( $crate::tables::kinds::$kind::build(rows, context $(, $limit)?, $value) ),+
            ];
            arrow::array::RecordBatch::try_new(schema(), columns).expect("the columns follow the schema they are declared with")
        }
    };
}
pub(crate) use define_table;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_respects_character_boundaries() {
        assert_eq!(truncate_to_bytes("abc", 5), "abc");
        assert_eq!(truncate_to_bytes("abcdef", 3), "abc");
        assert_eq!(truncate_to_bytes("aé", 2), "a");
    }
}
