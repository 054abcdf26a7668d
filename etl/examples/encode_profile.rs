//! Scratch: time event_v2 column building per column kind.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::io::BufRead;
use clickstream_etl::{raw_record::DecodedRecord, transform::*, enrich::*, tables::*};

fn main() {
    let file = std::fs::File::open("/tmp/bench_raw/raw-00001.gz").unwrap();
    let reader = std::io::BufReader::new(flate2::read::GzDecoder::new(file));
    let lines: Vec<String> = reader.lines().take(512).map(|l| l.unwrap()).collect();
    let rules = QualityRules { project_id: "p".into(), apps: ["shop-web".to_string(), "shop-app".to_string()].into(), freshness_msec: i64::MAX/4, correct_clock_skew: true };
    let records: Vec<(String, DecodedRecord)> = lines.iter().map(|l| (l.clone(), DecodedRecord::decode(l, "x").unwrap())).collect();
    let mut rows = Vec::new();
    let (mut c, mut q) = (QualityCounters::default(), Vec::new());
    for (line, record) in &records { let ev = record.events().unwrap(); event_rows_of_record(record, ev, &rules, line, &mut c, &mut q, &mut rows); }
    let resources = EnrichmentResources::from_parts(None, None, TrafficRuleBook::defaults_only());
    for mut e in resources.chain(&[EnricherKind::PageUrl, EnricherKind::TrafficSource]) { e.enrich(&mut rows); }
    let refs: Vec<_> = rows.iter().collect();
    let ctx = BatchContext { process_job_id: "j".into(), process_time: "t".into(), created_time_micros: 0 };
    let start = std::time::Instant::now();
    for _ in 0..200 { let b = event_v2::record_batch(&refs, &ctx); std::hint::black_box(b); }
    println!("{} rows: record_batch {:?} per row", refs.len(), start.elapsed() / (200 * refs.len() as u32));
    if std::env::var("WRITES").is_err() { return; }
    let b = event_v2::record_batch(&refs, &ctx);
    let schema = b.schema();
    for (i, f) in schema.fields().iter().enumerate() {
        let sub = arrow::array::RecordBatch::try_new(std::sync::Arc::new(arrow::datatypes::Schema::new(vec![f.clone()])), vec![b.column(i).clone()]).unwrap();
        let start = std::time::Instant::now();
        let mut w = parquet::arrow::ArrowWriter::try_new(Vec::new(), sub.schema(), None).unwrap();
        for _ in 0..5 { w.write(&sub).unwrap(); }
        w.close().unwrap();
        let per = start.elapsed() / (5 * refs.len() as u32);
        if per.as_nanos() > 100 { println!("write {} {:?}", f.name(), per); }
    }
}
