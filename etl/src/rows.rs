//! The rows the transform produces before they are encoded as Arrow columns.
//!
//! An [`EventRow`] keeps the parsed SDK event (borrowing the request body) and adds what is
//! derived from it: the corrected event time, the decoded page fields, the traffic source, and
//! the enrichers' results. The `event_v2` columns are read from it in
//! [`crate::tables::event_v2`]; `item_v2` rows borrow from it; `user_v2` and `session` rows are
//! owned, because they are aggregated across batches.

use std::sync::Arc;

use crate::{
    custom_parameters::CustomParameters,
    raw_record::RecordContext,
    sdk_event::{SdkEvent, SdkItem, Text},
    url_parts::{UrlParts, parse_url},
};

/// A corrected event time, recorded in `process_info`.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeAdjustment {
    pub from_msec: i64,
    pub to_msec: i64,
    pub reason: String,
}

/// The ten `traffic_source_*` columns. Borrowed from the request while an event is
/// transformed; owned (`'static`) where it outlives the request, in sessions and users.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TrafficSourceColumns<'a> {
    pub source: Option<Text<'a>>,
    pub medium: Option<Text<'a>>,
    pub campaign: Option<Text<'a>>,
    pub content: Option<Text<'a>>,
    pub term: Option<Text<'a>>,
    pub campaign_id: Option<Text<'a>>,
    pub clid_platform: Option<Text<'a>>,
    pub clid: Option<Text<'a>>,
    pub channel_group: Option<Text<'a>>,
    pub category: Option<Text<'a>>,
}

impl TrafficSourceColumns<'_> {
    /// The same values, owned.
    pub fn to_owned_columns(&self) -> TrafficSourceColumns<'static> {
        let owned = |text: &Option<Text<'_>>| text.as_deref().map(|text| Text::Owned(text.to_string()));
        TrafficSourceColumns {
            source: owned(&self.source),
            medium: owned(&self.medium),
            campaign: owned(&self.campaign),
            content: owned(&self.content),
            term: owned(&self.term),
            campaign_id: owned(&self.campaign_id),
            clid_platform: owned(&self.clid_platform),
            clid: owned(&self.clid),
            channel_group: owned(&self.channel_group),
            category: owned(&self.category),
        }
    }
}

/// The `page_view_*` columns. Titles and URLs are URL-decoded, as CAoA does.
#[derive(Debug, Clone, Default)]
pub struct PageFields<'a> {
    pub referrer: Option<Text<'a>>,
    pub referrer_title: Option<Text<'a>>,
    pub title: Option<Text<'a>>,
    pub url: Option<Text<'a>>,
    pub latest_referrer: Option<Text<'a>>,
    /// The SDK's `host_name`, else the host of the page URL.
    pub hostname: Option<Text<'a>>,
    /// The SDK's `_latest_referrer_host`, else the host of the latest referrer.
    pub latest_referrer_host: Option<Text<'a>>,
    pub url_path: Option<String>,
    pub url_query_parameters: Option<Vec<(String, String)>>,
    /// The page URL split, once, by whichever enricher needs it first.
    parsed_url: Option<Option<UrlParts>>,
}

impl<'a> PageFields<'a> {
    /// The parts of the SDK's raw `_page_url` (parsed on first use).
    pub fn page_url_parts(&mut self, raw_page_url: Option<&str>) -> Option<&UrlParts> {
        self.parsed_url.get_or_insert_with(|| raw_page_url.and_then(parse_url)).as_ref()
    }
}

/// What the user-agent enricher found (shared by every event with the same header).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserAgentInfo {
    pub browser: Option<String>,
    pub browser_version: Option<String>,
    pub os: Option<String>,
    pub os_version: Option<String>,
    pub device: Option<String>,
    pub device_category: Option<&'static str>,
    /// The `device_ua` map entries besides `string`: `userAgent`, `os`, `device` as JSON text.
    pub user_agent_json: String,
    pub os_json: String,
    pub device_json: String,
}

impl UserAgentInfo {
    pub fn is_bot(&self) -> bool {
        self.device_category == Some("Bot")
    }
}

/// The user-agent enricher's result for one event.
#[derive(Debug, Clone, Default)]
pub enum UserAgentEnrichment {
    /// The enricher is not in the pipeline's chain: `device_ua` only holds the header.
    #[default]
    NotRun,
    /// The request had no `User-Agent`.
    NoUserAgent,
    Parsed(Arc<UserAgentInfo>),
}

impl UserAgentEnrichment {
    pub fn is_bot(&self) -> bool {
        matches!(self, UserAgentEnrichment::Parsed(info) if info.is_bot())
    }
}

/// What the IP enricher found (shared by every event from the same address).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GeoInfo {
    pub continent: Option<String>,
    pub sub_continent: Option<String>,
    pub country: Option<String>,
    pub region: Option<String>,
    pub metro: Option<String>,
    pub city: Option<String>,
}

/// One event, ready to be enriched and written.
#[derive(Debug)]
pub struct EventRow<'a> {
    pub sdk: SdkEvent<'a>,
    pub record: &'a RecordContext<'a>,
    pub project_id: &'a str,
    /// Event time after clock-skew correction, ms.
    pub event_time_msec: i64,
    /// What was added to every client timestamp of the event (0 without correction).
    pub time_shift_msec: i64,
    pub time_adjustment: Option<TimeAdjustment>,
    pub page: PageFields<'a>,
    pub traffic_source: TrafficSourceColumns<'a>,
    pub user_agent: UserAgentEnrichment,
    pub geo: Option<Arc<GeoInfo>>,
    pub custom_parameters: CustomParameters,
    pub custom_parameters_json: Option<String>,
}

impl<'a> EventRow<'a> {
    pub fn shifted(&self, client_time_msec: Option<i64>) -> Option<i64> {
        client_time_msec.map(|time| time + self.time_shift_msec)
    }

    /// The event's value is only meaningful for these event names (CAoA fills the columns
    /// only for them).
    pub fn only_for(&self, event_name: &str) -> bool {
        self.sdk.event_name == event_name
    }

    pub fn user_id(&self) -> Option<&str> {
        self.sdk.user.as_ref().and_then(|user| user.user_id.value.as_deref())
    }
}

/// One `item_v2` row: an item of an event that was kept.
#[derive(Debug)]
pub struct ItemRow<'r, 'a> {
    pub event: &'r EventRow<'a>,
    pub item: &'r SdkItem<'a>,
    pub custom_parameters: CustomParameters,
    pub custom_parameters_json: Option<String>,
}

