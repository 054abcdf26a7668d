//! Prometheus metrics of the ETL activities (served on the worker's `/metrics`).

use clickstream_etl::{job::TableRows, transform::QualityCounters};

/// Adds one transformed chunk's counts: records and events in, each filter, the quarantine,
/// and the rows written per table.
pub fn record_transform(project_id: &str, counters: &QualityCounters, rows: &TableRows) {
    let project = project_id.to_string();
    metrics::counter!("clickstream_etl_raw_records_total", "project" => project.clone()).increment(counters.raw_records);
    metrics::counter!("clickstream_etl_events_in_total", "project" => project.clone()).increment(counters.events_in);
    for (reason, count) in [
        ("unknown_app", counters.filtered_unknown_app),
        ("stale", counters.filtered_stale),
        ("future", counters.filtered_future),
        ("bot", counters.filtered_bot),
    ] {
        metrics::counter!("clickstream_etl_events_filtered_total", "project" => project.clone(), "reason" => reason).increment(count);
    }
    metrics::counter!("clickstream_etl_quarantined_total", "project" => project.clone(), "what" => "record").increment(counters.quarantined_records);
    metrics::counter!("clickstream_etl_quarantined_total", "project" => project.clone(), "what" => "event").increment(counters.quarantined_events);
    metrics::counter!("clickstream_etl_time_corrected_total", "project" => project.clone()).increment(counters.time_corrected);
    for (table, count) in [("event_v2", rows.event_v2), ("item_v2", rows.item_v2), ("session", rows.session)] {
        metrics::counter!("clickstream_etl_rows_written_total", "project" => project.clone(), "table" => table).increment(count);
    }
}
