//! Partitioned Parquet output in a local staging directory.
//!
//! Files are laid out as CAoA's: `<table>/partition_app=A/partition_year=YYYY/
//! partition_month=MM/partition_day=DD/<job>-<part>.parquet`, snappy-compressed. One writer
//! stays open per partition; when more than [`MAX_OPEN_WRITERS`] are open (a backfill spanning
//! many days), the least recently used is closed and a later row of its partition starts the
//! next part. Row groups are cut at [`MAX_ROW_GROUP_BYTES`], so memory stays bounded whatever
//! the input size. The same input in the same order always gives the same files.

use std::{
    collections::HashMap,
    fs::File,
    path::{Path, PathBuf},
};

use arrow::{array::RecordBatch, datatypes::SchemaRef};
use chrono::{Datelike, NaiveDate};
use parquet::{
    arrow::ArrowWriter,
    basic::Compression,
    file::properties::{EnabledStatistics, WriterProperties},
    schema::types::ColumnPath,
};

/// Partitions written to at once before the least recently used is closed.
pub const MAX_OPEN_WRITERS: usize = 32;
/// A row group is flushed to disk once its encoded size reaches this.
pub const MAX_ROW_GROUP_BYTES: usize = 32 * 1024 * 1024;
/// …or once it has this many rows.
pub const MAX_ROW_GROUP_ROWS: usize = 256 * 1024;
/// Memory all open writers may hold in unfinished row groups together. Past it, the writer
/// holding the most flushes its row group early: without this bound, 32 open partitions of
/// 32 MB row groups could hold a gigabyte.
pub const BUFFERED_BYTES_BUDGET: usize = 160 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot write {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("cannot encode Parquet for {path}: {source}")]
    Parquet { path: String, source: parquet::errors::ParquetError },
}

/// Where rows go: a table and one of its partitions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionKey {
    pub table: &'static str,
    pub app_id: String,
    pub day: NaiveDate,
}

impl PartitionKey {
    /// The partition's directory, relative to the processed-data root.
    pub fn directory(&self) -> String {
        format!(
            "{}/partition_app={}/partition_year={:04}/partition_month={:02}/partition_day={:02}",
            self.table,
            self.app_id,
            self.day.year(),
            self.day.month(),
            self.day.day()
        )
    }
}

/// The UTC day of an instant, which names its partition.
pub fn utc_day_of(epoch_ms: i64) -> NaiveDate {
    chrono::DateTime::from_timestamp_millis(epoch_ms).unwrap_or_default().date_naive()
}

/// A finished file.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WrittenFile {
    pub table: String,
    pub app_id: String,
    /// Path relative to the processed-data root (and to the staging directory).
    pub relative_path: String,
    pub rows: u64,
    pub bytes: u64,
}

struct OpenWriter {
    writer: ArrowWriter<File>,
    relative_path: String,
    rows: u64,
    last_used: u64,
}

/// Writes record batches into partitioned Parquet files under a staging directory.
pub struct PartitionedWriter {
    staging: PathBuf,
    job_id: String,
    open: HashMap<PartitionKey, OpenWriter>,
    next_part: HashMap<PartitionKey, u32>,
    finished: Vec<WrittenFile>,
    clock: u64,
    memory_budget: usize,
}

/// Columns that queries filter on: they keep min/max statistics per page, so readers skip
/// what a filter excludes. Every other column goes without: computing statistics for all 111
/// columns of `event_v2` took a third of the Parquet writing time (docs/benchmarks.md).
const FILTERED_COLUMNS: [&str; 18] = [
    "event_timestamp",
    "event_time_msec",
    "event_id",
    "event_name",
    "ingest_time_msec",
    "app_id",
    "project_id",
    "platform",
    "user_pseudo_id",
    "user_id",
    "session_id",
    "item_id",
    "geo_country",
    "device_operating_system",
    "traffic_source_source",
    "traffic_source_channel_group",
    "session_source",
    "first_touch_time_msec",
];

pub fn writer_properties() -> WriterProperties {
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(MAX_ROW_GROUP_ROWS))
        .set_max_row_group_bytes(Some(MAX_ROW_GROUP_BYTES))
        .set_statistics_enabled(EnabledStatistics::None);
    for column in FILTERED_COLUMNS {
        builder = builder.set_column_statistics_enabled(ColumnPath::from(column), EnabledStatistics::Page);
    }
    builder.build()
}

impl PartitionedWriter {
    pub fn new(staging: &Path, job_id: &str) -> PartitionedWriter {
        PartitionedWriter::with_memory_budget(staging, job_id, BUFFERED_BYTES_BUDGET)
    }

    /// A writer whose open files hold at most `memory_budget` bytes of unfinished row groups.
    pub fn with_memory_budget(staging: &Path, job_id: &str, memory_budget: usize) -> PartitionedWriter {
        PartitionedWriter {
            staging: staging.to_path_buf(),
            job_id: job_id.to_string(),
            open: HashMap::new(),
            next_part: HashMap::new(),
            finished: Vec::new(),
            clock: 0,
            memory_budget,
        }
    }

    /// Appends a batch to a partition's current file.
    pub fn write(&mut self, key: &PartitionKey, schema: &SchemaRef, batch: &RecordBatch) -> Result<(), OutputError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.clock += 1;
        if !self.open.contains_key(key) {
            if self.open.len() >= MAX_OPEN_WRITERS {
                self.close_least_recently_used()?;
            }
            let writer = self.open_writer(key, schema)?;
            self.open.insert(key.clone(), writer);
        }
        let open = self.open.get_mut(key).expect("opened above");
        open.last_used = self.clock;
        open.rows += batch.num_rows() as u64;
        let path = open.relative_path.clone();
        open.writer.write(batch).map_err(|source| OutputError::Parquet { path, source })?;
        self.keep_within_memory_budget()
    }

    /// Flushes the largest unfinished row groups until the open writers hold no more than
    /// the memory budget ([`BUFFERED_BYTES_BUDGET`] by default).
    fn keep_within_memory_budget(&mut self) -> Result<(), OutputError> {
        let mut buffered: usize = self.open.values().map(|open| open.writer.memory_size()).sum();
        while buffered > self.memory_budget {
            let Some(largest) = self.open.values_mut().max_by_key(|open| open.writer.memory_size()) else {
                return Ok(());
            };
            let before = largest.writer.memory_size();
            if before == 0 {
                return Ok(());
            }
            largest.writer.flush().map_err(|source| OutputError::Parquet { path: largest.relative_path.clone(), source })?;
            buffered = buffered - before + largest.writer.memory_size();
        }
        Ok(())
    }

    fn open_writer(&mut self, key: &PartitionKey, schema: &SchemaRef) -> Result<OpenWriter, OutputError> {
        let part = self.next_part.entry(key.clone()).or_insert(0);
        let relative_path = format!("{}/{}-{:04}.parquet", key.directory(), self.job_id, part);
        *part += 1;
        let path = self.staging.join(&relative_path);
        let io_error = |source| OutputError::Io { path: path.display().to_string(), source };
        std::fs::create_dir_all(path.parent().expect("a partition file has a directory")).map_err(io_error)?;
        let file = File::create(&path).map_err(io_error)?;
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(writer_properties())).map_err(|source| OutputError::Parquet { path: relative_path.clone(), source })?;
        Ok(OpenWriter { writer, relative_path, rows: 0, last_used: self.clock })
    }

    fn close_least_recently_used(&mut self) -> Result<(), OutputError> {
        let Some(oldest) = self.open.iter().min_by_key(|(_, open)| open.last_used).map(|(key, _)| key.clone()) else {
            return Ok(());
        };
        let open = self.open.remove(&oldest).expect("the key was just found");
        self.close(&oldest, open)
    }

    fn close(&mut self, key: &PartitionKey, open: OpenWriter) -> Result<(), OutputError> {
        let path = open.relative_path.clone();
        open.writer.close().map_err(|source| OutputError::Parquet { path: path.clone(), source })?;
        let bytes = std::fs::metadata(self.staging.join(&path)).map_err(|source| OutputError::Io { path: path.clone(), source })?.len();
        self.finished.push(WrittenFile { table: key.table.to_string(), app_id: key.app_id.clone(), relative_path: path, rows: open.rows, bytes });
        Ok(())
    }

    /// Closes every file and returns them all, sorted by path.
    pub fn finish(mut self) -> Result<Vec<WrittenFile>, OutputError> {
        let mut keys: Vec<PartitionKey> = self.open.keys().cloned().collect();
        keys.sort();
        for key in keys {
            let open = self.open.remove(&key).expect("listed above");
            self.close(&key, open)?;
        }
        self.finished.sort_by(|left, right| left.relative_path.cmp(&right.relative_path));
        Ok(self.finished)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::{
        array::Int64Array,
        datatypes::{DataType, Field, Schema},
    };

    use super::*;

    fn batch(values: &[i64]) -> (SchemaRef, RecordBatch) {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, true)]));
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(values.to_vec()))]).unwrap();
        (schema, batch)
    }

    fn key(app: &str, day: u32) -> PartitionKey {
        PartitionKey { table: "t", app_id: app.into(), day: NaiveDate::from_ymd_opt(2026, 1, day).unwrap() }
    }

    #[test]
    fn open_writers_stay_within_the_memory_budget() {
        let staging = tempfile::tempdir().unwrap();
        let budget = 1024 * 1024;
        let mut writer = PartitionedWriter::with_memory_budget(staging.path(), "job", budget);
        let values: Vec<i64> = (0..50_000).collect();
        let (schema, rows) = batch(&values);
        for day in 1..=20 {
            writer.write(&key("a", day), &schema, &rows).unwrap();
            let buffered: usize = writer.open.values().map(|open| open.writer.memory_size()).sum();
            assert!(buffered <= budget, "{buffered} bytes buffered after {day} partitions");
        }
        assert!(writer.open.values().any(|open| !open.writer.flushed_row_groups().is_empty()), "some row group was flushed early");
        let files = writer.finish().unwrap();
        assert_eq!(files.len(), 20);
        assert_eq!(files.iter().map(|file| file.rows).sum::<u64>(), 1_000_000);
    }

    #[test]
    fn batches_of_a_partition_share_a_file() {
        let staging = tempfile::tempdir().unwrap();
        let mut writer = PartitionedWriter::new(staging.path(), "job");
        let (schema, rows) = batch(&[1, 2, 3]);
        writer.write(&key("a", 1), &schema, &rows).unwrap();
        writer.write(&key("a", 1), &schema, &rows).unwrap();
        writer.write(&key("b", 2), &schema, &rows).unwrap();
        let files = writer.finish().unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].relative_path, "t/partition_app=a/partition_year=2026/partition_month=01/partition_day=01/job-0000.parquet");
        assert_eq!(files[0].rows, 6);
        assert!(staging.path().join(&files[1].relative_path).exists());
    }

    #[test]
    fn too_many_open_partitions_close_the_oldest_and_continue_in_a_new_part() {
        let staging = tempfile::tempdir().unwrap();
        let mut writer = PartitionedWriter::new(staging.path(), "job");
        let (schema, rows) = batch(&[1]);
        for app in 0..=MAX_OPEN_WRITERS {
            writer.write(&key(&format!("app{app}"), 1), &schema, &rows).unwrap();
        }
        writer.write(&key("app0", 1), &schema, &rows).unwrap();
        let files = writer.finish().unwrap();
        let first_app: Vec<&str> = files.iter().filter(|file| file.app_id == "app0").map(|file| file.relative_path.as_str()).collect();
        assert_eq!(first_app.len(), 2, "{first_app:?}");
        assert!(first_app[1].ends_with("job-0001.parquet"));
        assert_eq!(files.iter().map(|file| file.rows).sum::<u64>(), MAX_OPEN_WRITERS as u64 + 2);
    }
}
