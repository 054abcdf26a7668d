//! `user_v2`: one row per user, stateful across runs.
//!
//! A user's row combines everything seen of them so far: the highest `user_id`, the time of
//! their latest event, the properties of their latest `_profile_set` event, and the first-touch
//! values (first visit, first traffic source, install source) of their earliest `_first_open`,
//! `_first_visit`, `_session_start` or `_screen_view` event. Each part is a maximum or a
//! minimum, so [`UserState::merge`] is commutative, associative and idempotent: states from
//! chunks, runs and retries combine into the same row in any order, and merging a state twice
//! changes nothing. The cross-run store of these states is [`crate::user_state`].

use std::collections::HashMap;

use chrono::Datelike;
use serde::{Deserialize, Serialize};

use crate::{
    custom_parameters::ParameterValue,
    java_hash_order::{JavaHashMapOrder, java_hash_map_from},
    json_text::write_jackson_string,
    rows::EventRow,
    sdk_event::SdkUser,
    sessions::TrafficSnapshot,
    tables::UserPropertyValue,
};

/// Events whose values are a user's first touch.
pub const FIRST_TOUCH_EVENTS: [&str; 4] = ["_first_open", "_first_visit", "_session_start", "_screen_view"];
/// The event that sets user properties.
pub const PROFILE_SET_EVENT: &str = "_profile_set";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserProfile {
    pub event_time_msec: i64,
    pub event_id: String,
    pub properties: Vec<(String, UserPropertyValue)>,
    pub properties_json: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FirstTouch {
    pub event_time_msec: i64,
    pub event_id: String,
    pub event_name: String,
    pub first_touch_time_msec: Option<i64>,
    /// Days since the epoch (UTC) of `first_touch_time_msec`.
    pub first_visit_date: Option<i32>,
    pub first_referrer: Option<String>,
    pub traffic: TrafficSnapshot,
    pub app_install_source: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserState {
    pub app_id: String,
    pub user_pseudo_id: String,
    pub user_id: Option<String>,
    pub last_event_time_msec: i64,
    pub profile: Option<UserProfile>,
    pub first_touch: Option<FirstTouch>,
}

impl UserState {
    /// What one event says about its user; `None` for events without a `user_pseudo_id`.
    pub fn of_event(row: &EventRow<'_>) -> Option<UserState> {
        let user_pseudo_id = row.sdk.user_pseudo_id.as_deref()?;
        let mut state = UserState {
            app_id: row.sdk.app_id.to_string(),
            user_pseudo_id: user_pseudo_id.to_string(),
            user_id: None,
            last_event_time_msec: i64::MIN,
            profile: None,
            first_touch: None,
        };
        state.absorb(row);
        Some(state)
    }

    /// Merges what one event says into this state: `merge(of_event(row))`, allocating only
    /// for the parts the event changes (most events change none).
    pub fn absorb(&mut self, row: &EventRow<'_>) {
        if let Some(user_id) = row.user_id() {
            if self.user_id.as_deref().is_none_or(|current| user_id > current) {
                self.user_id = Some(user_id.to_string());
            }
        }
        self.last_event_time_msec = self.last_event_time_msec.max(row.event_time_msec);
        let event_name = row.sdk.event_name.as_ref();
        let event_id = row.sdk.event_id.as_ref();
        if event_name == PROFILE_SET_EVENT {
            let newer = self.profile.as_ref().is_none_or(|current| (row.event_time_msec, event_id) > (current.event_time_msec, current.event_id.as_str()));
            if newer {
                if let Some(profile) = row.sdk.user.as_ref().and_then(|user| user_profile(row, user)) {
                    self.profile = Some(profile);
                }
            }
        }
        if FIRST_TOUCH_EVENTS.contains(&event_name) {
            let earlier = self.first_touch.as_ref().is_none_or(|current| (row.event_time_msec, event_id) < (current.event_time_msec, current.event_id.as_str()));
            if earlier {
                self.first_touch = Some(first_touch(row));
            }
        }
    }

    /// Combines two states of the same user (see the module documentation).
    pub fn merge(&mut self, other: UserState) {
        if other.user_id > self.user_id {
            self.user_id = other.user_id;
        }
        self.last_event_time_msec = self.last_event_time_msec.max(other.last_event_time_msec);
        if let Some(profile) = other.profile {
            let newer = match &self.profile {
                Some(current) => (profile.event_time_msec, &profile.event_id) > (current.event_time_msec, &current.event_id),
                None => true,
            };
            if newer {
                self.profile = Some(profile);
            }
        }
        if let Some(first_touch) = other.first_touch {
            let earlier = match &self.first_touch {
                Some(current) => (first_touch.event_time_msec, &first_touch.event_id) < (current.event_time_msec, &current.event_id),
                None => true,
            };
            if earlier {
                self.first_touch = Some(first_touch);
            }
        }
    }
}

fn first_touch(row: &EventRow<'_>) -> FirstTouch {
    let first_touch_time_msec = row.shifted(row.sdk.user.as_ref().and_then(|user| user.first_touch_timestamp.value));
    FirstTouch {
        event_time_msec: row.event_time_msec,
        event_id: row.sdk.event_id.to_string(),
        event_name: row.sdk.event_name.to_string(),
        first_touch_time_msec,
        first_visit_date: first_touch_time_msec.and_then(days_since_epoch),
        first_referrer: row.page.referrer.as_deref().map(str::to_string),
        traffic: TrafficSnapshot::of(row),
        app_install_source: row.sdk.attributes.as_ref().and_then(|attributes| attributes.app_install_channel.as_deref()).map(str::to_string),
    }
}

fn days_since_epoch(epoch_ms: i64) -> Option<i32> {
    let date = chrono::DateTime::from_timestamp_millis(epoch_ms)?.date_naive();
    Some(date.num_days_from_ce() - chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?.num_days_from_ce())
}

/// The user properties of a `_profile_set` event, in CAoA's order: the four reserved ones
/// first, then the app's own through a HashMap (Jackson collects them into one).
fn user_profile(row: &EventRow<'_>, user: &SdkUser<'_>) -> Option<UserProfile> {
    let mut properties: JavaHashMapOrder<UserPropertyValue> = JavaHashMapOrder::new();
    let reserved = |value: String, kind: &str, set_time_msec: Option<i64>| UserPropertyValue { value, kind: kind.to_string(), set_time_msec };
    if let Some(user_id) = &user.user_id.value {
        properties.put("_user_id".into(), reserved(user_id.to_string(), "string", user.user_id.set_timestamp));
    }
    if let Some(user_name) = &user.user_name.value {
        properties.put("_user_name".into(), reserved(user_name.to_string(), "string", user.user_name.set_timestamp));
    }
    if let Some(age) = user.user_age.value {
        properties.put("_user_age".into(), reserved(age.to_string(), "number", user.user_age.set_timestamp));
    }
    if let Some(first_touch) = user.first_touch_timestamp.value {
        properties.put("_user_first_touch_timestamp".into(), reserved(first_touch.to_string(), "number", user.first_touch_timestamp.set_timestamp));
    }
    let custom = java_hash_map_from(user.custom.iter().map(|(key, property)| {
        let converted = ParameterValue::from_json(property.value);
        (key.to_string(), UserPropertyValue { value: converted.value, kind: converted.kind.name().to_string(), set_time_msec: property.set_timestamp })
    }));
    properties.put_all(custom.into_entries());
    if properties.is_empty() {
        return None;
    }
    let properties = properties.into_entries();
    Some(UserProfile {
        event_time_msec: row.event_time_msec,
        event_id: row.sdk.event_id.to_string(),
        properties_json: user_properties_json(&properties),
        properties,
    })
}

/// `user_properties_json_str`: `{"key":{"set_time_msec":…,"value":…},…}`, values typed as in
/// `custom_parameters_json_str`.
fn user_properties_json(properties: &[(String, UserPropertyValue)]) -> String {
    let mut out = String::from("{");
    for (index, (key, property)) in properties.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        write_jackson_string(&mut out, key);
        out.push_str(":{\"set_time_msec\":");
        match property.set_time_msec {
            Some(time) => out.push_str(&time.to_string()),
            None => out.push_str("null"),
        }
        out.push_str(",\"value\":");
        let kind = match property.kind.as_str() {
            "number" => crate::custom_parameters::ParameterType::Number,
            "boolean" => crate::custom_parameters::ParameterType::Boolean,
            "object" => crate::custom_parameters::ParameterType::Object,
            _ => crate::custom_parameters::ParameterType::String,
        };
        ParameterValue { value: property.value.clone(), kind }.write_json(&mut out);
        out.push('}');
    }
    out.push('}');
    out
}

/// The merged state of every user seen so far in a run, by app and user.
#[derive(Debug, Default)]
pub struct UserCollector {
    users: HashMap<String, UserState>,
    /// Reused to build lookup keys without allocating.
    key: String,
}

fn user_key(key: &mut String, app_id: &str, user_pseudo_id: &str) {
    key.clear();
    key.push_str(app_id);
    key.push('\u{1}');
    key.push_str(user_pseudo_id);
}

impl UserCollector {
    pub fn add(&mut self, state: UserState) {
        user_key(&mut self.key, &state.app_id, &state.user_pseudo_id);
        match self.users.get_mut(self.key.as_str()) {
            Some(current) => current.merge(state),
            None => {
                self.users.insert(self.key.clone(), state);
            }
        }
    }

    pub fn add_events(&mut self, rows: &[&EventRow<'_>]) {
        for &row in rows {
            let Some(user_pseudo_id) = row.sdk.user_pseudo_id.as_deref() else {
                continue;
            };
            user_key(&mut self.key, &row.sdk.app_id, user_pseudo_id);
            match self.users.get_mut(self.key.as_str()) {
                Some(current) => current.absorb(row),
                None => {
                    let state = UserState::of_event(row).expect("the event has a user_pseudo_id");
                    self.users.insert(self.key.clone(), state);
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The states collected so far, in a stable order; the collector is emptied.
    pub fn take_states(&mut self) -> Vec<UserState> {
        let mut states: Vec<UserState> = self.users.drain().map(|(_, state)| state).collect();
        states.sort_by(|left, right| (&left.app_id, &left.user_pseudo_id).cmp(&(&right.app_id, &right.user_pseudo_id)));
        states
    }
}

/// Day of the epoch → `NaiveDate`, for partitioning.
pub fn date_of_days(days: i32) -> Option<chrono::NaiveDate> {
    chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?.checked_add_signed(chrono::Duration::days(days as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(user_id: Option<&str>, last: i64, profile_at: Option<i64>, first_at: Option<i64>) -> UserState {
        UserState {
            app_id: "a".into(),
            user_pseudo_id: "u".into(),
            user_id: user_id.map(str::to_string),
            last_event_time_msec: last,
            profile: profile_at.map(|time| UserProfile { event_time_msec: time, event_id: format!("p{time}"), properties: Vec::new(), properties_json: format!("{time}") }),
            first_touch: first_at.map(|time| FirstTouch {
                event_time_msec: time,
                event_id: format!("f{time}"),
                event_name: "_first_open".into(),
                first_touch_time_msec: Some(time),
                first_visit_date: None,
                first_referrer: None,
                traffic: TrafficSnapshot::default(),
                app_install_source: None,
            }),
        }
    }

    #[test]
    fn merging_keeps_the_latest_profile_and_the_first_touch_in_any_order() {
        let parts = [state(Some("b"), 10, Some(10), None), state(Some("a"), 30, None, Some(5)), state(None, 20, Some(20), Some(8))];
        for rotation in 0..parts.len() {
            let mut merged = parts[rotation].clone();
            for index in 1..parts.len() {
                merged.merge(parts[(index + rotation) % parts.len()].clone());
            }
            assert_eq!(merged.user_id.as_deref(), Some("b"));
            assert_eq!(merged.last_event_time_msec, 30);
            assert_eq!(merged.profile.as_ref().unwrap().event_time_msec, 20);
            assert_eq!(merged.first_touch.as_ref().unwrap().event_time_msec, 5);
            // Merging again changes nothing.
            let again = merged.clone();
            let mut twice = merged.clone();
            twice.merge(again);
            assert_eq!(twice, merged);
        }
    }

    #[test]
    fn epoch_days_round_trip() {
        let days = days_since_epoch(1667877267895).unwrap();
        assert_eq!(date_of_days(days).unwrap().to_string(), "2022-11-08");
    }
}
