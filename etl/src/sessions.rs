//! `session`: one row per session, carrying the traffic source the session came from.
//!
//! As in CAoA, a session takes its values from its earliest event whose traffic source is
//! not Direct, and only when it has none from its earliest event. The choice is a minimum over
//! `(is Direct, event time, event id)`, so it can be made in any order and again when rows of
//! the same session meet later (the warehouse merge makes the same choice across runs).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::rows::EventRow;

/// Events that describe a session (others do not choose its traffic source).
pub const SESSION_EVENTS: [&str; 5] = ["_session_start", "_page_view", "_user_engagement", "_screen_view", "_app_end"];

/// The ten traffic-source values, owned (they outlive the request they came from).
pub type TrafficSnapshot = crate::rows::TrafficSourceColumns<'static>;

impl TrafficSnapshot {
    pub fn of(row: &EventRow<'_>) -> TrafficSnapshot {
        row.traffic_source.to_owned_columns()
    }

    /// No source, or the source `Direct`.
    pub fn is_direct(&self) -> bool {
        self.source.as_deref().is_none_or(|source| source == "Direct")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRow {
    pub app_id: String,
    pub user_pseudo_id: Option<String>,
    pub session_id: String,
    /// Time of the event the session's values come from.
    pub event_time_msec: i64,
    pub event_id: String,
    pub event_name: String,
    pub user_id: Option<String>,
    pub session_number: Option<i64>,
    pub session_start_time_msec: Option<i64>,
    pub traffic: TrafficSnapshot,
    /// The chosen event's `process_info` entries (where it came from).
    pub event_process_info: Vec<(String, String)>,
}

impl SessionRow {
    /// The order in which candidates are preferred: non-Direct first, then earliest.
    fn preference(&self) -> (bool, i64, &str) {
        (self.traffic.is_direct(), self.event_time_msec, &self.event_id)
    }

    /// The session row an event suggests, if it is a session event with a session id.
    pub fn candidate(row: &EventRow<'_>) -> Option<SessionRow> {
        if !SESSION_EVENTS.contains(&row.sdk.event_name.as_ref()) {
            return None;
        }
        let attributes = row.sdk.attributes.as_ref()?;
        let session_id = attributes.session_id.as_deref()?;
        let record = row.record;
        let mut event_process_info = vec![("rid".to_string(), record.rid.as_deref().unwrap_or_default().to_string())];
        event_process_info.push(("ingest_time".into(), record.ingest_time_text.clone()));
        event_process_info.push(("input_file_name".into(), record.input_name.to_string()));
        if let Some(ip) = record.ip.as_deref() {
            event_process_info.push(("source_ip".into(), ip.to_string()));
        }
        event_process_info.push(("event_name".into(), row.sdk.event_name.to_string()));
        Some(SessionRow {
            app_id: row.sdk.app_id.to_string(),
            user_pseudo_id: row.sdk.user_pseudo_id.as_deref().map(str::to_string),
            session_id: session_id.to_string(),
            event_time_msec: row.event_time_msec,
            event_id: row.sdk.event_id.to_string(),
            event_name: row.sdk.event_name.to_string(),
            user_id: row.user_id().map(str::to_string),
            session_number: attributes.session_number,
            session_start_time_msec: row.shifted(attributes.session_start_time_msec),
            traffic: TrafficSnapshot::of(row),
            event_process_info,
        })
    }
}

/// The preferred row of every session seen so far, by app, user and session id.
#[derive(Debug, Default)]
pub struct SessionCollector {
    sessions: HashMap<String, SessionRow>,
    /// Reused to build lookup keys: most events of a session change nothing, and finding that
    /// out must not allocate.
    key: String,
}

fn session_key(key: &mut String, app_id: &str, user_pseudo_id: Option<&str>, session_id: &str) {
    key.clear();
    key.push_str(app_id);
    key.push('\u{1}');
    match user_pseudo_id {
        Some(user) => key.push_str(user),
        None => key.push('\u{2}'),
    }
    key.push('\u{1}');
    key.push_str(session_id);
}

impl SessionCollector {
    pub fn add(&mut self, candidate: SessionRow) {
        session_key(&mut self.key, &candidate.app_id, candidate.user_pseudo_id.as_deref(), &candidate.session_id);
        match self.sessions.get_mut(self.key.as_str()) {
            Some(current) if current.preference() <= candidate.preference() => {}
            Some(current) => *current = candidate,
            None => {
                self.sessions.insert(self.key.clone(), candidate);
            }
        }
    }

    /// Considers one event; its row is built only if it becomes the session's preferred one.
    pub fn add_event(&mut self, row: &EventRow<'_>) {
        if !SESSION_EVENTS.contains(&row.sdk.event_name.as_ref()) {
            return;
        }
        let Some(session_id) = row.sdk.attributes.as_ref().and_then(|attributes| attributes.session_id.as_deref()) else {
            return;
        };
        session_key(&mut self.key, &row.sdk.app_id, row.sdk.user_pseudo_id.as_deref(), session_id);
        let is_direct = row.traffic_source.source.as_deref().is_none_or(|source| source == "Direct");
        match self.sessions.get_mut(self.key.as_str()) {
            Some(current) if current.preference() <= (is_direct, row.event_time_msec, row.sdk.event_id.as_ref()) => {}
            Some(current) => *current = SessionRow::candidate(row).expect("a session event with a session id"),
            None => {
                let candidate = SessionRow::candidate(row).expect("a session event with a session id");
                self.sessions.insert(self.key.clone(), candidate);
            }
        }
    }

    pub fn add_events(&mut self, rows: &[&EventRow<'_>]) {
        for &row in rows {
            self.add_event(row);
        }
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// The rows collected so far, in a stable order; the collector is emptied.
    pub fn take_rows(&mut self) -> Vec<SessionRow> {
        let mut rows: Vec<SessionRow> = self.sessions.drain().map(|(_, row)| row).collect();
        rows.sort_by(|left, right| (&left.app_id, &left.user_pseudo_id, &left.session_id).cmp(&(&right.app_id, &right.user_pseudo_id, &right.session_id)));
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(source: Option<&str>, time: i64, event_id: &str) -> SessionRow {
        SessionRow {
            app_id: "a".into(),
            user_pseudo_id: Some("u".into()),
            session_id: "s".into(),
            event_time_msec: time,
            event_id: event_id.into(),
            event_name: "_page_view".into(),
            user_id: None,
            session_number: Some(1),
            session_start_time_msec: Some(0),
            traffic: TrafficSnapshot { source: source.map(|source| source.to_string().into()), ..TrafficSnapshot::default() },
            event_process_info: Vec::new(),
        }
    }

    #[test]
    fn a_session_prefers_its_earliest_non_direct_source_in_any_order() {
        let candidates = [session(Some("Direct"), 1, "e1"), session(Some("google"), 5, "e5"), session(Some("bing"), 3, "e3"), session(None, 0, "e0")];
        for rotation in 0..candidates.len() {
            let mut collector = SessionCollector::default();
            for index in 0..candidates.len() {
                collector.add(candidates[(index + rotation) % candidates.len()].clone());
            }
            let rows = collector.take_rows();
            assert_eq!(rows.len(), 1);
            assert_eq!(rows[0].traffic.source.as_deref(), Some("bing"));
        }
    }

    #[test]
    fn a_direct_only_session_takes_its_earliest_event() {
        let mut collector = SessionCollector::default();
        collector.add(session(Some("Direct"), 9, "late"));
        collector.add(session(None, 2, "early"));
        assert_eq!(collector.take_rows()[0].event_id, "early");
    }
}
