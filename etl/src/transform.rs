//! Raw records → [`EventRow`]s, with the quality rules.
//!
//! For each event of a record: read it ([`SdkEvent::parse`]; a defect quarantines that event),
//! drop it if its app is not one of the project's, correct its time for the client's clock
//! skew, drop it if it lies in the future or is older than the freshness window (`_first_open`,
//! `_first_visit` and `_profile_set` are exempt), then map it onto the `event_v2` fields. Every
//! drop is counted; nothing disappears without a count or a quarantine record.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::{
    custom_parameters::CustomParameters,
    raw_record::{DecodedRecord, RecordContext},
    rows::{EventRow, PageFields, TimeAdjustment, TrafficSourceColumns, UserAgentEnrichment},
    sdk_event::{EventDefect, SdkEvent, Text},
    url_parts::{java_url_decode, parse_url},
};

/// Events that may be old or in the future: they describe the first contact with a user,
/// which an SDK may report late or from a device with a wrong clock.
pub const TIME_RULE_EXEMPT_EVENTS: [&str; 3] = ["_first_open", "_first_visit", "_profile_set"];

/// A client clock further than this from the server's is corrected; an event up to this far
/// after its request arrived is still accepted.
pub const CLOCK_SKEW_TOLERANCE_MSEC: i64 = 10 * 60 * 1000;

/// The quality rules of one pipeline.
#[derive(Debug, Clone)]
pub struct QualityRules {
    pub project_id: String,
    /// Events of other apps are filtered.
    pub apps: HashSet<String>,
    /// Events older than this when they arrived are filtered (default 72 h).
    pub freshness_msec: i64,
    /// Shift event times by the difference between the server's and the client's clock when the
    /// request carries `upload_timestamp` and the clocks differ by more than 10 minutes.
    pub correct_clock_skew: bool,
}

/// Counts of one run: what came in, what was filtered by which rule, what was quarantined.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QualityCounters {
    pub raw_records: u64,
    /// Events found in readable records.
    pub events_in: u64,
    pub quarantined_records: u64,
    pub quarantined_events: u64,
    pub filtered_unknown_app: u64,
    pub filtered_stale: u64,
    pub filtered_future: u64,
    pub filtered_bot: u64,
    /// Events whose time was corrected (clock skew, or a future exempt event).
    pub time_corrected: u64,
    /// Events written to `event_v2`.
    pub events_out: u64,
}

impl QualityCounters {
    pub fn add(&mut self, other: &QualityCounters) {
        self.raw_records += other.raw_records;
        self.events_in += other.events_in;
        self.quarantined_records += other.quarantined_records;
        self.quarantined_events += other.quarantined_events;
        self.filtered_unknown_app += other.filtered_unknown_app;
        self.filtered_stale += other.filtered_stale;
        self.filtered_future += other.filtered_future;
        self.filtered_bot += other.filtered_bot;
        self.time_corrected += other.time_corrected;
        self.events_out += other.events_out;
    }
}

/// A record or event set aside, with the reason and everything needed to reprocess it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quarantined {
    pub reason: String,
    /// The raw object it came from.
    pub input: String,
    /// Which event of the request, when only that event was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_index: Option<usize>,
    /// The raw record (the NDJSON line) as it was read.
    pub original: String,
}

/// Turns the events of one decoded record into rows, applying the quality rules.
pub fn event_rows_of_record<'a>(
    record: &'a DecodedRecord<'a>,
    events: Vec<Result<SdkEvent<'a>, EventDefect>>,
    rules: &'a QualityRules,
    line: &str,
    counters: &mut QualityCounters,
    quarantine: &mut Vec<Quarantined>,
    rows: &mut Vec<EventRow<'a>>,
) {
    let context = &record.context;
    for (index, event) in events.into_iter().enumerate() {
        counters.events_in += 1;
        let event = match event {
            Ok(event) => event,
            Err(defect) => {
                counters.quarantined_events += 1;
                quarantine.push(Quarantined { reason: defect.to_string(), input: context.input_name.to_string(), event_index: Some(index), original: line.to_string() });
                continue;
            }
        };
        if !rules.apps.contains(event.app_id.as_ref()) {
            counters.filtered_unknown_app += 1;
            continue;
        }
        let timing = match event_timing(&event, context, rules) {
            Ok(timing) => timing,
            Err(TimeFilter::Future) => {
                counters.filtered_future += 1;
                continue;
            }
            Err(TimeFilter::Stale) => {
                counters.filtered_stale += 1;
                continue;
            }
        };
        if timing.adjustment.is_some() {
            counters.time_corrected += 1;
        }
        rows.push(event_row(event, context, &rules.project_id, timing));
    }
}

/// The event time after correction.
struct EventTiming {
    event_time_msec: i64,
    shift_msec: i64,
    adjustment: Option<TimeAdjustment>,
}

/// Why the time rules filter an event.
enum TimeFilter {
    Future,
    Stale,
}

fn event_timing(event: &SdkEvent<'_>, context: &RecordContext<'_>, rules: &QualityRules) -> Result<EventTiming, TimeFilter> {
    let exempt = TIME_RULE_EXEMPT_EVENTS.contains(&event.event_name.as_ref());
    let client_time = event.timestamp_ms;
    let ingest = context.ingest_time_msec;
    let mut shift = 0;
    let mut reason = None;
    if rules.correct_clock_skew {
        if let Some(upload) = context.upload_time_msec {
            let difference = ingest - upload;
            // A correction that would put the event after its arrival is no correction: the
            // upload time is wrong (0, a counter), not the clock; the event keeps its time.
            let plausible = client_time + difference <= ingest + CLOCK_SKEW_TOLERANCE_MSEC;
            if difference.abs() > CLOCK_SKEW_TOLERANCE_MSEC && plausible {
                shift = difference;
                reason = Some(format!("ingestTimestamp is {difference} millis ahead of uploadTimestamp, isFutureEvent: {}", client_time > ingest));
            }
        }
    }
    let mut event_time = client_time + shift;
    if event_time > ingest + CLOCK_SKEW_TOLERANCE_MSEC {
        if !exempt {
            return Err(TimeFilter::Future);
        }
        reason = Some(format!("{}|eventTimestamp is in the future, set to ingestTimestamp", reason.unwrap_or_default()));
        event_time = ingest;
        shift = ingest - client_time;
    } else if !exempt && ingest - event_time > rules.freshness_msec {
        return Err(TimeFilter::Stale);
    }
    let adjustment = reason.map(|reason| TimeAdjustment { from_msec: client_time, to_msec: event_time, reason });
    Ok(EventTiming { event_time_msec: event_time, shift_msec: shift, adjustment })
}

/// A URL-decoded copy of an SDK text, borrowing the input when nothing changes.
fn decoded<'a>(text: &Option<Text<'a>>) -> Option<Text<'a>> {
    match text.as_ref()? {
        Text::Borrowed(borrowed) => Some(java_url_decode(borrowed)),
        Text::Owned(owned) => Some(Text::Owned(java_url_decode(owned).into_owned())),
    }
}

fn event_row<'a>(event: SdkEvent<'a>, context: &'a RecordContext<'a>, project_id: &'a str, timing: EventTiming) -> EventRow<'a> {
    let no_custom: &[(Text<'a>, &'a RawValue)] = &[];
    let attribute_custom = event.attributes.as_ref().map_or(no_custom, |attributes| attributes.custom.as_slice());
    let custom_parameters = CustomParameters::from_groups(&[&event.custom, attribute_custom]);
    let custom_parameters_json = custom_parameters.json_string();
    let mut page = PageFields::default();
    page.hostname = event.host_name.clone();
    let mut traffic_source = TrafficSourceColumns::default();
    if let Some(attributes) = &event.attributes {
        page.referrer = decoded(&attributes.page_referrer);
        page.referrer_title = decoded(&attributes.page_referrer_title);
        page.title = decoded(&attributes.page_title);
        page.url = decoded(&attributes.page_url);
        page.latest_referrer = decoded(&attributes.latest_referrer);
        page.latest_referrer_host = attributes
            .latest_referrer_host
            .clone()
            .or_else(|| attributes.latest_referrer.as_deref().and_then(parse_url).and_then(|parts| parts.host).map(Text::Owned));
        traffic_source = client_traffic_source(&attributes.traffic_source);
    }
    EventRow {
        sdk: event,
        record: context,
        project_id,
        event_time_msec: timing.event_time_msec,
        time_shift_msec: timing.shift_msec,
        time_adjustment: timing.adjustment,
        page,
        traffic_source,
        user_agent: UserAgentEnrichment::NotRun,
        geo: None,
        custom_parameters,
        custom_parameters_json,
    }
}

/// The traffic source as the SDK reported it (`_traffic_source_*`, else the `_utm_*` it saw).
pub fn client_traffic_source<'a>(sdk: &crate::sdk_event::SdkTrafficSource<'a>) -> TrafficSourceColumns<'a> {
    let first = |preferred: &Option<Text<'a>>, fallback: &Option<Text<'a>>| preferred.clone().or_else(|| fallback.clone());
    TrafficSourceColumns {
        source: first(&sdk.source, &sdk.utm_source),
        medium: first(&sdk.medium, &sdk.utm_medium),
        campaign: first(&sdk.campaign, &sdk.utm_campaign),
        content: first(&sdk.content, &sdk.utm_content),
        term: first(&sdk.term, &sdk.utm_term),
        campaign_id: first(&sdk.campaign_id, &sdk.utm_id),
        clid_platform: first(&sdk.clid_platform, &sdk.utm_source_platform),
        // CAoA builds this JSON by concatenation, without escaping; so do we, for parity.
        clid: sdk.clid.clone().or_else(|| sdk.gclid.as_ref().map(|gclid| Text::Owned(format!("{{\"type\":\"gclid\",\"value\":\"{gclid}\"}}")))),
        channel_group: sdk.channel_group.clone(),
        category: sdk.category.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(apps: &[&str]) -> QualityRules {
        QualityRules { project_id: "p".into(), apps: apps.iter().map(|app| app.to_string()).collect(), freshness_msec: 72 * 3_600_000, correct_clock_skew: true }
    }

    fn line(events: &str, ingest_time: i64, upload_time: Option<i64>) -> String {
        let mut record = serde_json::json!({"data": events, "ingest_time": ingest_time, "uri": "/collect?appId=a"});
        if let Some(upload) = upload_time {
            record["client_timestamp"] = upload.into();
        }
        record.to_string()
    }

    fn run(line: &str, rules: &QualityRules) -> (Vec<(String, i64)>, QualityCounters, Vec<Quarantined>) {
        let record = DecodedRecord::decode(line, "input").unwrap();
        let events = record.events().unwrap();
        let (mut counters, mut quarantine, mut rows) = (QualityCounters::default(), Vec::new(), Vec::new());
        event_rows_of_record(&record, events, rules, line, &mut counters, &mut quarantine, &mut rows);
        let kept = rows.iter().map(|row| (row.sdk.event_id.to_string(), row.event_time_msec)).collect();
        (kept, counters, quarantine)
    }

    const HOUR: i64 = 3_600_000;

    #[test]
    fn stale_future_and_foreign_events_are_filtered_and_counted() {
        let now = 1_700_000_000_000i64;
        let events = format!(
            r#"[{{"event_type":"a","event_id":"fresh","app_id":"a","timestamp":{fresh}}},
                {{"event_type":"a","event_id":"stale","app_id":"a","timestamp":{stale}}},
                {{"event_type":"_first_open","event_id":"old-first-open","app_id":"a","timestamp":{stale}}},
                {{"event_type":"a","event_id":"future","app_id":"a","timestamp":{future}}},
                {{"event_type":"_profile_set","event_id":"future-profile","app_id":"a","timestamp":{future}}},
                {{"event_type":"a","event_id":"other-app","app_id":"b","timestamp":{fresh}}},
                {{"event_type":"a","app_id":"a","timestamp":{fresh}}}]"#,
            fresh = now - HOUR,
            stale = now - 73 * HOUR,
            future = now + 2 * HOUR,
        );
        let (kept, counters, quarantine) = run(&line(&events, now, None), &rules(&["a"]));
        assert_eq!(kept, vec![("fresh".to_string(), now - HOUR), ("old-first-open".into(), now - 73 * HOUR), ("future-profile".into(), now)]);
        assert_eq!(counters.events_in, 7);
        assert_eq!(counters.filtered_stale, 1);
        assert_eq!(counters.filtered_future, 1);
        assert_eq!(counters.filtered_unknown_app, 1);
        assert_eq!(counters.quarantined_events, 1);
        assert_eq!(counters.time_corrected, 1);
        assert_eq!(quarantine[0].event_index, Some(6));
        assert!(quarantine[0].reason.contains("event_id"), "{}", quarantine[0].reason);
    }

    #[test]
    fn a_skewed_client_clock_is_corrected_from_upload_timestamp() {
        let now = 1_700_000_000_000i64;
        // The device clock is 3 hours behind: it uploaded at "now - 3h" and the event happened
        // a minute before the upload.
        let device_upload = now - 3 * HOUR;
        let events = format!(r#"[{{"event_type":"a","event_id":"e","app_id":"a","timestamp":{}}}]"#, device_upload - 60_000);
        let (kept, counters, _) = run(&line(&events, now, Some(device_upload)), &rules(&["a"]));
        assert_eq!(kept, vec![("e".to_string(), now - 60_000)]);
        assert_eq!(counters.time_corrected, 1);

        // An upload time that is no clock reading (here 1 ms after the epoch) corrects nothing.
        let (kept, counters, _) = run(&line(&events, now, Some(1)), &rules(&["a"]));
        assert_eq!(kept, vec![("e".to_string(), device_upload - 60_000)]);
        assert_eq!(counters.time_corrected, 0);

        let mut without_correction = rules(&["a"]);
        without_correction.correct_clock_skew = false;
        let (kept, _, _) = run(&line(&events, now, Some(device_upload)), &without_correction);
        assert_eq!(kept, vec![("e".to_string(), device_upload - 60_000)]);
    }
}
