//! An example clickstream transformer plugin: it accepts request bodies in a simple JSON
//! format that is not the CAoA SDKs',
//! ```json
//! {"user": "u-42", "events": [
//!   {"id": "e-1", "name": "page_view", "time": 1764547200000, "url": "https://shop.example/a",
//!    "properties": {"plan": "pro"}}
//! ]}
//! ```
//! and turns each into CAoA SDK events (`page_view` becomes `_page_view`, `url` becomes
//! `_page_url`, the properties become attributes), which the ETL then processes like any
//! other request. A body that is not in this format is refused for that request alone, with
//! the reason, and quarantined.

use serde_json::{Map, Value, json};

/// The CAoA SDK events of one request body, as a JSON array text.
pub fn sdk_events(app_id: &str, body: &[u8]) -> Result<String, String> {
    let request: Value = serde_json::from_slice(body).map_err(|error| format!("the body is not JSON: {error}"))?;
    let user = request.get("user").and_then(Value::as_str).ok_or("the body has no `user` text")?;
    let events = request.get("events").and_then(Value::as_array).ok_or("the body has no `events` list")?;
    let mut converted = Vec::with_capacity(events.len());
    for (index, event) in events.iter().enumerate() {
        let field = |name: &str| event.get(name).ok_or_else(|| format!("event {index} has no `{name}`"));
        let id = field("id")?.as_str().ok_or_else(|| format!("event {index}: `id` is not text"))?;
        let name = field("name")?.as_str().ok_or_else(|| format!("event {index}: `name` is not text"))?;
        let time = field("time")?.as_i64().ok_or_else(|| format!("event {index}: `time` is not milliseconds"))?;
        let mut attributes: Map<String, Value> = event.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
        if let Some(url) = event.get("url").and_then(Value::as_str) {
            attributes.insert("_page_url".into(), json!(url));
        }
        let event_type = match name {
            "page_view" => "_page_view",
            "session_start" => "_session_start",
            other => other,
        };
        converted.push(json!({
            "event_type": event_type, "event_id": id, "app_id": app_id, "timestamp": time,
            "unique_id": user, "platform": "Web", "sdk_name": "simple-events", "attributes": attributes,
        }));
    }
    Ok(Value::from(converted).to_string())
}

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ path: "../../wit", world: "transformer" });

    struct SimpleEvents;

    impl Guest for SimpleEvents {
        fn transform(_config: String, requests: Vec<RawRequest>) -> Result<Vec<Result<String, String>>, String> {
            Ok(requests.iter().map(|request| super::sdk_events(&request.app_id, &request.body)).collect())
        }
    }

    export!(SimpleEvents);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_events_become_sdk_events() {
        let body = br#"{"user":"u1","events":[{"id":"e1","name":"page_view","time":5,"url":"https://x.example/a","properties":{"plan":"pro"}}]}"#;
        let events: Value = serde_json::from_str(&sdk_events("app", body).unwrap()).unwrap();
        assert_eq!(events[0]["event_type"], "_page_view");
        assert_eq!(events[0]["attributes"]["_page_url"], "https://x.example/a");
        assert_eq!(events[0]["attributes"]["plan"], "pro");
        assert_eq!(sdk_events("app", br#"{"events":[]}"#).unwrap_err(), "the body has no `user` text");
    }
}
