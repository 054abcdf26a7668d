//! The CAoA wire protocol: query parameters and request bodies as the SDKs send them.

use std::io::Read;

use base64::Engine;
use serde::Deserialize;

/// Query parameters of `POST /collect`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CollectQuery {
    #[serde(rename = "appId")]
    pub app_id: Option<String>,
    pub platform: Option<String>,
    pub event_bundle_sequence_id: Option<String>,
    pub upload_timestamp: Option<String>,
    #[serde(rename = "hashCode")]
    pub hash_code: Option<String>,
    pub compression: Option<String>,
}

/// Why a request body could not be read. Retrying the same body never helps.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BodyError {
    #[error("body is empty")]
    Empty,
    #[error("body is not valid base64 (compression=gzip expects base64 text of gzip bytes): {0}")]
    Base64(String),
    #[error("body is not valid gzip: {0}")]
    Gzip(String),
    #[error("decompressed body exceeds {limit} bytes")]
    TooLargeDecompressed { limit: usize },
    #[error("body is not a JSON array of events: {0}")]
    NotJsonArray(String),
    #[error("event {index} is missing the required field `{field}`")]
    MissingField { index: usize, field: &'static str },
}

/// Fields every event must carry (DESIGN §3.1).
pub const REQUIRED_EVENT_FIELDS: [&str; 4] = ["event_type", "event_id", "app_id", "timestamp"];

/// Turns a body as stored in a raw record's `data` into the JSON bytes of the event array.
///
/// `compression=gzip` means base64 text of gzip bytes. A body that already starts with `[` is
/// taken as plain JSON whatever the flag says: CAoA's own fixtures contain such records.
/// `max_decompressed_bytes` guards against gzip bombs.
/// A plain body is returned borrowed: no copy on the collector's hot path.
pub fn decode_body(data: &[u8], compressed: bool, max_decompressed_bytes: usize) -> Result<std::borrow::Cow<'_, [u8]>, BodyError> {
    let trimmed = data.trim_ascii();
    if trimmed.is_empty() {
        return Err(BodyError::Empty);
    }
    if !compressed || trimmed.first() == Some(&b'[') {
        return Ok(std::borrow::Cow::Borrowed(trimmed));
    }
    let gzip_bytes = base64::engine::general_purpose::STANDARD
        .decode(trimmed)
        .map_err(|error| BodyError::Base64(error.to_string()))?;
    gunzip(&gzip_bytes, max_decompressed_bytes).map(std::borrow::Cow::Owned)
}

/// Decompresses a binary gzip body (`Content-Encoding: gzip`), refusing more than
/// `max_decompressed_bytes` (gzip bomb guard).
pub fn gunzip(bytes: &[u8], max_decompressed_bytes: usize) -> Result<Vec<u8>, BodyError> {
    let mut decoder = flate2::read::GzDecoder::new(bytes).take((max_decompressed_bytes as u64).saturating_add(1));
    let mut decompressed = Vec::new();
    decoder.read_to_end(&mut decompressed).map_err(|error| BodyError::Gzip(error.to_string()))?;
    if decompressed.len() > max_decompressed_bytes {
        return Err(BodyError::TooLargeDecompressed { limit: max_decompressed_bytes });
    }
    Ok(decompressed)
}

/// The required fields of one event, borrowed from the body: checking a request this way
/// allocates nothing per field, which matters on the collector's hot path.
#[derive(Deserialize)]
struct RequiredEventFields<'a> {
    #[serde(borrow)]
    event_type: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    event_id: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    app_id: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    timestamp: Option<&'a serde_json::value::RawValue>,
}

/// Checks that the body is a JSON array of events carrying the required fields, and returns
/// how many events it holds. Same verdicts as [`parse_events`], without building the events.
pub fn count_valid_events(json: &[u8]) -> Result<usize, BodyError> {
    let events: Vec<RequiredEventFields<'_>> = serde_json::from_slice(json).map_err(|error| BodyError::NotJsonArray(error.to_string()))?;
    for (index, event) in events.iter().enumerate() {
        let fields = [("event_type", event.event_type), ("event_id", event.event_id), ("app_id", event.app_id), ("timestamp", event.timestamp)];
        for (field, value) in fields {
            if value.is_none_or(|raw| raw.get() == "null") {
                return Err(BodyError::MissingField { index, field });
            }
        }
    }
    Ok(events.len())
}

/// Gzip at the fast level: raw objects and spooled batches are written once and read once,
/// so compression speed matters more than size.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = gzip_encoder();
    encoder.get_mut().reserve(bytes.len() / 4);
    encoder.write_all(bytes).expect("writing to memory cannot fail");
    encoder.finish().expect("writing to memory cannot fail")
}

/// A gzip encoder into memory, with the level every raw object is written at (the fastest:
/// the collector compresses on the request path's core).
pub fn gzip_encoder() -> flate2::write::GzEncoder<Vec<u8>> {
    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast())
}

/// A body as the mobile SDKs send it with `compression=gzip`: base64 text of gzip bytes (the
/// inverse of [`decode_body`]).
pub fn encode_gzip_base64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(gzip(text.as_bytes()))
}

/// Parses the event array and checks the required fields of every event.
pub fn parse_events(json: &[u8]) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, BodyError> {
    let events: Vec<serde_json::Map<String, serde_json::Value>> =
        serde_json::from_slice(json).map_err(|error| BodyError::NotJsonArray(error.to_string()))?;
    for (index, event) in events.iter().enumerate() {
        for field in REQUIRED_EVENT_FIELDS {
            if event.get(field).is_none_or(serde_json::Value::is_null) {
                return Err(BodyError::MissingField { index, field });
            }
        }
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip_base64(text: &str) -> String {
        encode_gzip_base64(text)
    }

    const ONE_EVENT: &str = r#"[{"event_type":"_page_view","event_id":"e1","app_id":"a","timestamp":1}]"#;

    #[test]
    fn plain_and_gzip_bodies_decode_to_the_same_events() {
        let plain = decode_body(ONE_EVENT.as_bytes(), false, 1 << 20).unwrap();
        let encoded = gzip_base64(ONE_EVENT);
        let gzip = decode_body(encoded.as_bytes(), true, 1 << 20).unwrap();
        assert_eq!(plain, gzip);
        assert_eq!(parse_events(&plain).unwrap().len(), 1);
    }

    #[test]
    fn a_plain_body_flagged_as_gzip_is_still_read() {
        assert!(decode_body(ONE_EVENT.as_bytes(), true, 1 << 20).is_ok());
    }

    #[test]
    fn bad_bodies_say_why() {
        assert_eq!(decode_body(b"  ", false, 10), Err(BodyError::Empty));
        assert!(matches!(decode_body(b"!!!", true, 10), Err(BodyError::Base64(_))));
        let not_gzip = base64::engine::general_purpose::STANDARD.encode(b"hello");
        assert!(matches!(decode_body(not_gzip.as_bytes(), true, 10), Err(BodyError::Gzip(_))));
        assert!(matches!(parse_events(b"{}"), Err(BodyError::NotJsonArray(_))));
        assert!(matches!(count_valid_events(b"{}"), Err(BodyError::NotJsonArray(_))));
        assert_eq!(
            count_valid_events(br#"[{"event_type":"x","event_id":"e","app_id":"a","timestamp":null}]"#),
            Err(BodyError::MissingField { index: 0, field: "timestamp" })
        );
        assert_eq!(count_valid_events(ONE_EVENT.as_bytes()), Ok(1));
        assert_eq!(
            parse_events(br#"[{"event_type":"x","event_id":"e","app_id":"a"}]"#),
            Err(BodyError::MissingField { index: 0, field: "timestamp" })
        );
    }

    #[test]
    fn an_unlimited_gunzip_does_not_overflow() {
        let compressed = gzip(ONE_EVENT.as_bytes());
        assert_eq!(gunzip(&compressed, usize::MAX).unwrap(), ONE_EVENT.as_bytes());
    }

    #[test]
    fn a_gzip_bomb_is_cut_at_the_limit() {
        let bomb = gzip_base64(&"[".repeat(100_000));
        assert_eq!(decode_body(bomb.as_bytes(), true, 1000), Err(BodyError::TooLargeDecompressed { limit: 1000 }));
    }
}
