//! The user-agent and IP-geo enrichers on real data: uap-core's published regexes (installed
//! by local/test from npm; the path arrives as `CLICKSTREAM_ETL__USER_AGENT_REGEXES`) and a
//! MaxMind-format city database this test builds. Events go through a whole job and are read
//! back from the Parquet it writes.

use std::path::PathBuf;

use arrow::array::{Array, AsArray, RecordBatch};
use clickstream_etl::{
    enrich::{EnricherKind, EnrichmentResources, TrafficRuleBook, UserAgentParser},
    job::{EtlJob, JobSettings},
    transform::QualityRules,
};
use maxminddb::geoip2;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

const CHROME_ON_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.109 Safari/537.36";
const SAFARI_ON_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1";
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
const JAVA_CLIENT: &str = "Apache-HttpClient/4.5.12 (Java/11.0.15)";

fn user_agent_parser() -> UserAgentParser {
    let path = std::env::var("CLICKSTREAM_ETL__USER_AGENT_REGEXES")
        .expect("CLICKSTREAM_ETL__USER_AGENT_REGEXES names uap-core's regexes.yaml: run the tests through local/test, which installs it");
    UserAgentParser::from_file(&PathBuf::from(path)).expect("uap-core's regexes load")
}

#[test]
fn user_agents_are_parsed_as_caoa_fills_device_ua() {
    let parser = user_agent_parser();
    let chrome = parser.parse(CHROME_ON_WINDOWS);
    assert_eq!(chrome.browser.as_deref(), Some("Chrome"));
    assert_eq!(chrome.browser_version.as_deref(), Some("120.0.6099"));
    assert_eq!(chrome.os.as_deref(), Some("Windows"));
    assert_eq!(chrome.device_category, Some("Other"));

    let iphone = parser.parse(SAFARI_ON_IPHONE);
    assert_eq!((iphone.browser.as_deref(), iphone.browser_version.as_deref()), (Some("Mobile Safari"), Some("16.6")));
    assert_eq!((iphone.os.as_deref(), iphone.os_version.as_deref()), (Some("iOS"), Some("16.6.1")));
    assert_eq!((iphone.device.as_deref(), iphone.device_category), (Some("iPhone"), Some("Mobile")));

    // CAoA's upstream example for its fixtures' user agent.
    let java = parser.parse(JAVA_CLIENT);
    assert_eq!((java.browser.as_deref(), java.browser_version.as_deref()), (Some("Apache-HttpClient"), Some("4.5.12")));
    assert_eq!((java.os.as_deref(), java.os_version.as_deref(), java.device.as_deref()), (Some("Other"), None, Some("Other")));
    assert_eq!(java.os_json, r#"{"family":"Other","major":null,"minor":null,"patch":null,"patchMinor":null}"#);

    assert!(parser.parse(GOOGLEBOT).is_bot());
}

/// A city database with two networks, written with MaxMind's record layout.
fn geo_database() -> maxminddb::Reader<Vec<u8>> {
    let names = |english: &'static str| geoip2::Names { english: Some(english), ..Default::default() };
    let mut singapore = geoip2::City::default();
    singapore.continent.names = names("Asia");
    singapore.country.names = names("Singapore");
    singapore.city.names = names("Singapore");
    let mut milton = geoip2::City::default();
    milton.continent.names = names("North America");
    milton.country.names = names("United States");
    milton.subdivisions = vec![geoip2::city::Subdivision { names: names("Washington"), ..Default::default() }];
    milton.city.names = names("Milton");
    milton.location.metro_code = Some(819);
    let mut writer = mmdb_writer::Writer::new("GeoIP2-City");
    writer.insert("13.212.229.0/24".parse::<mmdb_writer::ipnet::IpNet>().unwrap(), &singapore).unwrap();
    writer.insert("216.160.83.0/24".parse::<mmdb_writer::ipnet::IpNet>().unwrap(), &milton).unwrap();
    maxminddb::Reader::from_source(writer.to_bytes().unwrap()).unwrap()
}

fn raw_line(user_agent: &str, ip: &str, event_id: &str) -> String {
    let now = chrono::Utc::now().timestamp_millis();
    let events = serde_json::json!([{"event_type": "_page_view", "event_id": event_id, "app_id": "app", "timestamp": now, "unique_id": "u1",
        "attributes": {"_session_id": "s1", "_page_url": "https://shop.example.com/a?utm_source=news&utm_medium=email"}}]);
    serde_json::json!({"data": events.to_string(), "ingest_time": now, "ua": user_agent, "ip": ip, "uri": "/collect?appId=app"}).to_string()
}

fn events_written(staging: &std::path::Path) -> Vec<RecordBatch> {
    let mut batches = Vec::new();
    let mut stack = vec![staging.join("event_v2")];
    while let Some(directory) = stack.pop() {
        for entry in std::fs::read_dir(directory).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap()).unwrap().build().unwrap();
                batches.extend(reader.map(Result::unwrap));
            }
        }
    }
    batches
}

fn column_text(batch: &RecordBatch, column: &str, row: usize) -> Option<String> {
    let array = batch.column_by_name(column).unwrap().as_string::<i32>();
    (!array.is_null(row)).then(|| array.value(row).to_string())
}

#[test]
fn a_job_with_every_enricher_fills_device_geo_and_traffic_and_drops_bots() {
    let resources = EnrichmentResources::from_parts(Some(user_agent_parser()), Some(geo_database()), TrafficRuleBook::defaults_only());
    let settings = JobSettings {
        rules: QualityRules { project_id: "p".into(), apps: ["app".to_string()].into(), freshness_msec: 72 * 3_600_000, correct_clock_skew: true },
        enrichers: EnricherKind::ALL.to_vec(),
        plugins: Vec::new(),
        transformer: None,
        filter_bots: true,
        job_id: "job".into(),
    };
    let staging = tempfile::tempdir().unwrap();
    let mut job = EtlJob::new(settings, &resources, staging.path(), chrono::Utc::now());
    let lines = [
        raw_line(SAFARI_ON_IPHONE, "13.212.229.59", "from-singapore"),
        raw_line(CHROME_ON_WINDOWS, "216.160.83.56, 10.0.0.1", "from-milton"),
        raw_line(GOOGLEBOT, "66.249.66.1", "a-crawler"),
        raw_line(CHROME_ON_WINDOWS, "192.0.2.1", "unknown-address"),
    ];
    job.process_batch(&lines, "input").unwrap();
    let output = job.finish().unwrap();
    assert_eq!(output.counters.filtered_bot, 1);
    assert_eq!(output.counters.events_out, 3);
    assert_eq!(output.rows.session, 1, "the bot's event does not reach the session either");

    let batches = events_written(&output.staging);
    let batch = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    let row_of = |event_id: &str| (0..batch.num_rows()).find(|row| column_text(&batch, "event_id", *row).as_deref() == Some(event_id)).unwrap();

    let singapore = row_of("from-singapore");
    assert_eq!(column_text(&batch, "geo_continent", singapore).as_deref(), Some("Asia"));
    assert_eq!(column_text(&batch, "geo_city", singapore).as_deref(), Some("Singapore"));
    assert_eq!(column_text(&batch, "device_ua_device_category", singapore).as_deref(), Some("Mobile"));
    assert_eq!(column_text(&batch, "device_ua_os_version", singapore).as_deref(), Some("16.6.1"));
    assert_eq!(column_text(&batch, "traffic_source_source", singapore).as_deref(), Some("news"));
    assert_eq!(column_text(&batch, "traffic_source_channel_group", singapore).as_deref(), Some("Email"));
    assert_eq!(column_text(&batch, "page_view_page_url_path", singapore).as_deref(), Some("/a"));
    assert_eq!(column_text(&batch, "page_view_hostname", singapore).as_deref(), Some("shop.example.com"));

    let milton = row_of("from-milton");
    assert_eq!(column_text(&batch, "geo_country", milton).as_deref(), Some("United States"));
    assert_eq!(column_text(&batch, "geo_region", milton).as_deref(), Some("Washington"));
    assert_eq!(column_text(&batch, "geo_metro", milton).as_deref(), Some("819"));
    assert_eq!(column_text(&batch, "device_ua_browser", milton).as_deref(), Some("Chrome"));

    let unknown = row_of("unknown-address");
    assert_eq!(column_text(&batch, "geo_country", unknown), None);

    let device_ua = batch.column_by_name("device_ua").unwrap().as_map();
    let entries = device_ua.value(milton);
    let keys: Vec<String> = entries.column(0).as_string::<i32>().iter().map(|key| key.unwrap().to_string()).collect();
    assert_eq!(keys, ["userAgent", "os", "device", "string"]);
}
