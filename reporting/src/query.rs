//! The typed queries a user builds in the console: five explorations and the filters, fields
//! and date ranges they share. They arrive as JSON, are checked (`crate::check`) against the
//! app's metadata catalog, and become SQL in one builder per dialect (`crate::build`).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Days in the app's timezone, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DateRange {
    #[schema(value_type = String, format = Date, example = "2026-11-01")]
    pub from: NaiveDate,
    #[schema(value_type = String, format = Date, example = "2026-11-30")]
    pub to: NaiveDate,
}

/// Longest date range a query may cover (a guard against accidental full scans of years).
pub const MAX_RANGE_DAYS: i64 = 366;

/// How results over time are bucketed (weeks start on Monday, in both dialects).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    #[default]
    Day,
    Week,
    Month,
}

/// The `event_v2` columns a query may filter or group on. An allow-list: these are the only
/// column names that ever reach the SQL text, so no user text becomes an identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Column {
    EventName,
    Platform,
    AppVersion,
    SdkName,
    GeoCountry,
    GeoRegion,
    GeoCity,
    DeviceOperatingSystem,
    DeviceOperatingSystemVersion,
    DeviceMobileBrandName,
    DeviceMobileModelName,
    DeviceUaBrowser,
    DeviceUaDeviceCategory,
    /// `<width>x<height>` of the screen.
    ScreenResolution,
    TrafficSourceSource,
    TrafficSourceMedium,
    TrafficSourceCampaign,
    TrafficSourceChannelGroup,
    TrafficSourceCategory,
    PageViewPageTitle,
    PageViewPageUrlPath,
    PageViewHostname,
    ScreenViewScreenName,
    UserId,
}

impl Column {
    pub const ALL: [Column; 24] = [
        Column::EventName,
        Column::Platform,
        Column::AppVersion,
        Column::SdkName,
        Column::GeoCountry,
        Column::GeoRegion,
        Column::GeoCity,
        Column::DeviceOperatingSystem,
        Column::DeviceOperatingSystemVersion,
        Column::DeviceMobileBrandName,
        Column::DeviceMobileModelName,
        Column::DeviceUaBrowser,
        Column::DeviceUaDeviceCategory,
        Column::ScreenResolution,
        Column::TrafficSourceSource,
        Column::TrafficSourceMedium,
        Column::TrafficSourceCampaign,
        Column::TrafficSourceChannelGroup,
        Column::TrafficSourceCategory,
        Column::PageViewPageTitle,
        Column::PageViewPageUrlPath,
        Column::PageViewHostname,
        Column::ScreenViewScreenName,
        Column::UserId,
    ];

    /// The column's name in `event_v2` (and in the API).
    pub fn name(self) -> &'static str {
        match self {
            Column::EventName => "event_name",
            Column::Platform => "platform",
            Column::AppVersion => "app_version",
            Column::SdkName => "sdk_name",
            Column::GeoCountry => "geo_country",
            Column::GeoRegion => "geo_region",
            Column::GeoCity => "geo_city",
            Column::DeviceOperatingSystem => "device_operating_system",
            Column::DeviceOperatingSystemVersion => "device_operating_system_version",
            Column::DeviceMobileBrandName => "device_mobile_brand_name",
            Column::DeviceMobileModelName => "device_mobile_model_name",
            Column::DeviceUaBrowser => "device_ua_browser",
            Column::DeviceUaDeviceCategory => "device_ua_device_category",
            Column::ScreenResolution => "screen_resolution",
            Column::TrafficSourceSource => "traffic_source_source",
            Column::TrafficSourceMedium => "traffic_source_medium",
            Column::TrafficSourceCampaign => "traffic_source_campaign",
            Column::TrafficSourceChannelGroup => "traffic_source_channel_group",
            Column::TrafficSourceCategory => "traffic_source_category",
            Column::PageViewPageTitle => "page_view_page_title",
            Column::PageViewPageUrlPath => "page_view_page_url_path",
            Column::PageViewHostname => "page_view_hostname",
            Column::ScreenViewScreenName => "screen_view_screen_name",
            Column::UserId => "user_id",
        }
    }
}

/// What a filter or a grouping reads: a column of `event_v2`, a custom parameter of the event,
/// or an attribute of the user (from `user_v2`). JSON: `{"column": "geo_country"}`,
/// `{"event_parameter": "price"}`, `{"user_attribute": "plan"}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Column(Column),
    EventParameter(String),
    UserAttribute(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    /// Equal to `values[0]`.
    Equals,
    NotEquals,
    /// Equal to one of `values`.
    In,
    /// Contains `values[0]` (case-sensitive).
    Contains,
    /// Numerically greater than `values[0]` (values that are not numbers never match).
    GreaterThan,
    LessThan,
    IsNull,
    IsNotNull,
}

/// One filter; a query keeps the events that match every one of its conditions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Condition {
    pub field: Field,
    pub operator: Operator,
    /// Compared as text, or as numbers for `greater_than` / `less_than`. Bound as query
    /// parameters, never pasted into the SQL.
    #[serde(default)]
    pub values: Vec<String>,
}

/// What the event analysis measures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// Number of events.
    #[default]
    Count,
    /// Distinct users (`user_pseudo_id`).
    Users,
    /// Sum of `event_value`, or of a numeric event parameter when one is named.
    Sum { event_parameter: Option<String> },
}

/// Events over time: count, users or a sum, by day / week / month, optionally per group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventAnalysis {
    pub range: DateRange,
    /// The events measured; empty measures every event.
    #[serde(default)]
    pub events: Vec<String>,
    #[serde(default)]
    pub measure: Measure,
    #[serde(default)]
    pub granularity: Granularity,
    #[serde(default)]
    pub group_by: Option<Field>,
    #[serde(default)]
    pub filters: Vec<Condition>,
}

/// Users who did the steps in order, each step after the previous one and every step within
/// `window_seconds` of the user's first step. A user starts at their first step-1 event in the
/// range (per group when grouped: the group is that of the step-1 event).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FunnelAnalysis {
    pub range: DateRange,
    /// Event names, 2 to 10.
    pub steps: Vec<String>,
    pub window_seconds: u32,
    #[serde(default)]
    pub group_by: Option<Field>,
    #[serde(default)]
    pub filters: Vec<Condition>,
}

/// What a node of a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum PathNode {
    /// The event name.
    #[default]
    Event,
    /// The page's URL path (`_page_view` events).
    Page,
    /// The screen's name (`_screen_view` events).
    Screen,
}

/// How a user's events are cut into paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PathSplit {
    /// One path per SDK session (`session_id`).
    Session,
    /// A new path after `gap_seconds` without an event.
    Gap { gap_seconds: u32 },
}

/// The flows between consecutive nodes (a sankey): step `n` → step `n + 1`, counted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PathAnalysis {
    pub range: DateRange,
    #[serde(default)]
    pub node: PathNode,
    pub split: PathSplit,
    /// Paths start at the first occurrence of this node (an event name, page path or screen
    /// name); without it, at the path's first node.
    #[serde(default)]
    pub start: Option<String>,
    /// Steps followed from the start, 2 to 10.
    pub max_steps: u32,
    /// Keep the most frequent flows of each step (1 to 100).
    #[serde(default = "default_top_flows")]
    pub top_flows_per_step: u32,
    #[serde(default)]
    pub filters: Vec<Condition>,
}

fn default_top_flows() -> u32 {
    20
}

/// Cohorts of users by the period of their first `start_event` in the range; for each later
/// period (0 to `periods`), how many of them did `return_event`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RetentionAnalysis {
    pub range: DateRange,
    pub start_event: String,
    pub return_event: String,
    #[serde(default)]
    pub granularity: Granularity,
    /// Periods after the cohort's, 1 to 52.
    pub periods: u32,
    #[serde(default)]
    pub filters: Vec<Condition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttributionModel {
    /// All the credit to the first touch point.
    FirstTouch,
    /// All the credit to the last touch point.
    LastTouch,
    /// Equal shares.
    Linear,
    /// Shares halving every `half_life_seconds` before the conversion.
    TimeDecay { half_life_seconds: u32 },
    /// 40 % to the first, 40 % to the last, 20 % shared by the ones between (50/50 for two).
    PositionBased,
}

/// Credits each `conversion_event` to the touch-point events the same user did in the
/// `window_seconds` before it, by `model`. A conversion without touch points is not credited.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AttributionAnalysis {
    pub range: DateRange,
    pub conversion_event: String,
    /// Touch-point event names, 1 to 20.
    pub touchpoints: Vec<String>,
    pub model: AttributionModel,
    pub window_seconds: u32,
    /// A numeric parameter of the conversion event whose value is shared out too (else
    /// `event_value`).
    #[serde(default)]
    pub value_parameter: Option<String>,
    #[serde(default)]
    pub filters: Vec<Condition>,
}

/// One exploration. JSON: `{"type": "funnel", "range": …, "steps": […], …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Exploration {
    Event(EventAnalysis),
    Funnel(FunnelAnalysis),
    Path(PathAnalysis),
    Retention(RetentionAnalysis),
    Attribution(AttributionAnalysis),
}

impl Exploration {
    pub fn range(&self) -> DateRange {
        match self {
            Exploration::Event(query) => query.range,
            Exploration::Funnel(query) => query.range,
            Exploration::Path(query) => query.range,
            Exploration::Retention(query) => query.range,
            Exploration::Attribution(query) => query.range,
        }
    }

    pub fn filters(&self) -> &[Condition] {
        match self {
            Exploration::Event(query) => &query.filters,
            Exploration::Funnel(query) => &query.filters,
            Exploration::Path(query) => &query.filters,
            Exploration::Retention(query) => &query.filters,
            Exploration::Attribution(query) => &query.filters,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Exploration::Event(_) => "event",
            Exploration::Funnel(_) => "funnel",
            Exploration::Path(_) => "path",
            Exploration::Retention(_) => "retention",
            Exploration::Attribution(_) => "attribution",
        }
    }
}
