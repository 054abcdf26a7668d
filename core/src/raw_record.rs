//! The raw record: one JSON object per HTTP request, stored as gzip NDJSON.
//!
//! Field names are those of the CAoA Vector record, so that raw data collected by CAoA can be
//! reprocessed here and the other way round. CAoA's own records name the method `m`; we write
//! `method` and accept both.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RawRecord {
    /// Server receive time, RFC 3339 with milliseconds.
    #[serde(default)]
    pub date: Option<String>,
    /// Request URI with its query string, as the SDK sent it.
    #[serde(default)]
    pub uri: Option<String>,
    /// User agent header.
    #[serde(default)]
    pub ua: Option<String>,
    /// Client IP: first element of X-Forwarded-For, else the socket address.
    #[serde(default)]
    pub ip: Option<String>,
    /// `upload_timestamp` query parameter (client clock, ms), for clock-skew correction.
    #[serde(default)]
    pub client_timestamp: Option<i64>,
    /// Request id.
    #[serde(default)]
    pub rid: Option<String>,
    #[serde(default, alias = "m")]
    pub method: Option<String>,
    /// The request body verbatim: a JSON array, or base64 of gzip bytes when compressed.
    pub data: Option<String>,
    /// Server receive time in ms.
    #[serde(default)]
    pub ingest_time: Option<i64>,
    /// Time the collector wrote the batch, ms.
    #[serde(default)]
    pub server_ingest_time: Option<i64>,
    #[serde(default, rename = "appId")]
    pub app_id: Option<String>,
    #[serde(default)]
    pub platform: Option<String>,
    #[serde(default)]
    pub compression: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub source_type: Option<String>,
    #[serde(default)]
    pub timestamp: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caoa_fixture_records_parse() {
        let line = r#"{"date":"2023-04-24T06:51:49.403Z","data":"[]","ip":"13.212.229.59","source_type":"http","rid":"07157da8","ua":"Apache-HttpClient/4.5.12","m":"POST","uri":"/collect?appId=uba-app","platform":"ANDROID","path":"/collect","appId":"uba-app","compression":"gzip","ingest_time":1682319109403,"timestamp":"2023-04-24T06:51:49.403Z"}"#;
        let record: RawRecord = serde_json::from_str(line).unwrap();
        assert_eq!(record.method.as_deref(), Some("POST"));
        assert_eq!(record.app_id.as_deref(), Some("uba-app"));
        assert_eq!(record.ingest_time, Some(1682319109403));
        let written = serde_json::to_string(&record).unwrap();
        assert!(written.contains("\"method\":\"POST\""));
        assert!(written.contains("\"appId\":\"uba-app\""));
    }
}
