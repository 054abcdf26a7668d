//! Traffic-source rules: the channel-group rules and the source-category list, as data files.
//!
//! The files have CAoA's format and names (`traffic_source_channel_rule_v1.json`,
//! `traffic_source_category_rule_v1.json`), so rules a CAoA user edited for an app can be
//! dropped in unchanged. Our defaults (in `etl/rules/`) are compiled in; a rules directory can
//! override them per app with `<dir>/<app id>/<file name>`.
//!
//! Channel rules are tried in order; the first whose condition holds names the channel group,
//! and none means `Unassigned`. A condition is `{"op::and": […]}` or `{"op::or": […]}` over
//! leaves `{"field", "op", "value" | "values"}` (or nested conditions). Comparisons ignore case;
//! the value `__empty__` stands for the empty string, which is also what a missing field reads as.

use std::{collections::HashMap, path::Path};

use regex::Regex;
use serde::Deserialize;
use serde_json::Value;

pub const CHANNEL_RULES_FILE: &str = "traffic_source_channel_rule_v1.json";
pub const CATEGORY_RULES_FILE: &str = "traffic_source_category_rule_v1.json";

const DEFAULT_CHANNEL_RULES: &str = include_str!("../../rules/traffic_source_channel_rule_v1.json");
const DEFAULT_CATEGORY_RULES: &str = include_str!("../../rules/traffic_source_category_rule_v1.json");

/// A rule file that cannot be used; the message names the file and what is wrong in it.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("cannot read traffic-source rules {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("invalid traffic-source rules {origin}: {reason}")]
    Invalid { origin: String, reason: String },
}

/// The fields a channel rule may test (the discriminant indexes [`LoweredInput`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelField {
    Category = 0,
    Source,
    Medium,
    Campaign,
    CampaignId,
    Content,
    Term,
    Clid,
    ClidPlatform,
    LatestReferrer,
    LatestReferrerHost,
}

impl ChannelField {
    fn parse(name: &str) -> Option<ChannelField> {
        Some(match name {
            "traffic_source_category" => ChannelField::Category,
            "traffic_source_source" => ChannelField::Source,
            "traffic_source_medium" => ChannelField::Medium,
            "traffic_source_campaign" => ChannelField::Campaign,
            "traffic_source_campaign_id" => ChannelField::CampaignId,
            "traffic_source_content" => ChannelField::Content,
            "traffic_source_term" => ChannelField::Term,
            "traffic_source_clid" => ChannelField::Clid,
            "traffic_source_clid_platform" => ChannelField::ClidPlatform,
            "page_view_latest_referrer" => ChannelField::LatestReferrer,
            "page_view_latest_referrer_host" => ChannelField::LatestReferrerHost,
            _ => return None,
        })
    }
}

/// What a channel rule sees of an event.
#[derive(Debug, Clone, Default)]
pub struct ChannelInput<'a> {
    /// `None` when the category is unknown (`Unassigned` is passed as unknown).
    pub category: Option<&'a str>,
    pub source: Option<&'a str>,
    /// Without the parentheses of inferred media (`(Organic)` reads as `organic`).
    pub medium: Option<&'a str>,
    pub campaign: Option<&'a str>,
    pub campaign_id: Option<&'a str>,
    pub content: Option<&'a str>,
    pub term: Option<&'a str>,
    pub clid: Option<&'a str>,
    pub clid_platform: Option<&'a str>,
    pub latest_referrer: Option<&'a str>,
    pub latest_referrer_host: Option<&'a str>,
}

impl<'a> ChannelInput<'a> {
    fn field(&self, field: ChannelField) -> Option<&'a str> {
        match field {
            ChannelField::Category => self.category,
            ChannelField::Source => self.source,
            ChannelField::Medium => self.medium,
            ChannelField::Campaign => self.campaign,
            ChannelField::CampaignId => self.campaign_id,
            ChannelField::Content => self.content,
            ChannelField::Term => self.term,
            ChannelField::Clid => self.clid,
            ChannelField::ClidPlatform => self.clid_platform,
            ChannelField::LatestReferrer => self.latest_referrer,
            ChannelField::LatestReferrerHost => self.latest_referrer_host,
        }
    }
}

#[derive(Debug)]
enum Comparison {
    Equals(String),
    Contains(String),
    StartsWith(String),
    EndsWith(String),
    Matches(Regex),
    In(Vec<String>),
}

#[derive(Debug)]
enum Condition {
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Leaf { field: ChannelField, comparison: Comparison, negated: bool },
}

impl Condition {
    fn holds(&self, input: &LoweredInput) -> bool {
        match self {
            Condition::All(conditions) => conditions.iter().all(|condition| condition.holds(input)),
            Condition::Any(conditions) => conditions.iter().any(|condition| condition.holds(input)),
            Condition::Leaf { field, comparison, negated } => {
                let (present, lowered) = &input.values[*field as usize];
                let result = match comparison {
                    Comparison::Equals(value) => lowered == value,
                    Comparison::Contains(value) => lowered.contains(value.as_str()),
                    Comparison::StartsWith(value) => lowered.starts_with(value.as_str()),
                    Comparison::EndsWith(value) => lowered.ends_with(value.as_str()),
                    Comparison::Matches(pattern) => pattern.is_match(lowered),
                    // A missing value is in no list.
                    Comparison::In(values) => *present && values.contains(lowered),
                };
                result != *negated
            }
        }
    }
}

/// The input with every field lower-cased once (a missing field reads as empty).
struct LoweredInput {
    values: [(bool, String); FIELD_COUNT],
}

const FIELD_COUNT: usize = 11;

impl LoweredInput {
    fn of(input: &ChannelInput<'_>) -> LoweredInput {
        let fields = [
            ChannelField::Category,
            ChannelField::Source,
            ChannelField::Medium,
            ChannelField::Campaign,
            ChannelField::CampaignId,
            ChannelField::Content,
            ChannelField::Term,
            ChannelField::Clid,
            ChannelField::ClidPlatform,
            ChannelField::LatestReferrer,
            ChannelField::LatestReferrerHost,
        ];
        LoweredInput {
            values: fields.map(|field| {
                let value = input.field(field);
                (value.is_some(), value.unwrap_or_default().to_lowercase())
            }),
        }
    }
}

#[derive(Debug)]
struct ChannelRule {
    channel: String,
    condition: Condition,
}

/// One entry of the category list: a referrer URL (host, or host and path) and what it is.
#[derive(Debug, Clone, Deserialize)]
pub struct CategoryItem {
    pub url: String,
    pub source: String,
    pub category: String,
    /// Query parameters of this referrer that carry the search terms.
    #[serde(default)]
    pub params: Vec<String>,
}

/// The rules of one app (or the defaults).
#[derive(Debug)]
pub struct TrafficSourceRules {
    channel_rules: Vec<ChannelRule>,
    categories_by_url: HashMap<String, CategoryItem>,
    /// Source name → category; a source listed twice takes its last category.
    category_of_source: HashMap<String, String>,
}

impl TrafficSourceRules {
    pub fn defaults() -> TrafficSourceRules {
        TrafficSourceRules::parse(DEFAULT_CHANNEL_RULES, "built-in channel rules", DEFAULT_CATEGORY_RULES, "built-in category rules")
            .expect("the built-in traffic-source rules are valid (tested)")
    }

    pub fn parse(channel_text: &str, channel_origin: &str, category_text: &str, category_origin: &str) -> Result<TrafficSourceRules, RuleError> {
        let invalid = |origin: &str, reason: String| RuleError::Invalid { origin: origin.to_string(), reason };
        let channel_json: Vec<Value> = serde_json::from_str(channel_text).map_err(|error| invalid(channel_origin, error.to_string()))?;
        let mut channel_rules = Vec::with_capacity(channel_json.len());
        for (index, rule) in channel_json.iter().enumerate() {
            let name = rule.get("id").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| format!("#{index}"));
            let channel = rule.get("channel").and_then(Value::as_str).ok_or_else(|| invalid(channel_origin, format!("rule {name} has no `channel`")))?;
            let condition = rule.get("condition").ok_or_else(|| invalid(channel_origin, format!("rule {name} has no `condition`")))?;
            let condition = parse_condition(condition).map_err(|reason| invalid(channel_origin, format!("rule {name}: {reason}")))?;
            channel_rules.push(ChannelRule { channel: channel.to_string(), condition });
        }
        let items: Vec<CategoryItem> = serde_json::from_str(category_text).map_err(|error| invalid(category_origin, error.to_string()))?;
        let mut categories_by_url = HashMap::with_capacity(items.len());
        let mut category_of_source = HashMap::new();
        for item in items {
            category_of_source.insert(item.source.clone(), item.category.clone());
            categories_by_url.insert(item.url.clone(), item);
        }
        Ok(TrafficSourceRules { channel_rules, categories_by_url, category_of_source })
    }

    /// Reads an app's two rule files from `directory`; a missing file takes the default.
    pub fn load_directory(directory: &Path) -> Result<TrafficSourceRules, RuleError> {
        let read = |name: &str, default: &'static str| -> Result<(String, String), RuleError> {
            let path = directory.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => Ok((text, path.display().to_string())),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok((default.to_string(), format!("built-in {name}"))),
                Err(source) => Err(RuleError::Read { path: path.display().to_string(), source }),
            }
        };
        let (channel_text, channel_origin) = read(CHANNEL_RULES_FILE, DEFAULT_CHANNEL_RULES)?;
        let (category_text, category_origin) = read(CATEGORY_RULES_FILE, DEFAULT_CATEGORY_RULES)?;
        TrafficSourceRules::parse(&channel_text, &channel_origin, &category_text, &category_origin)
    }

    /// The channel group of an event: the first rule that holds, else `Unassigned`.
    pub fn channel_group(&self, input: &ChannelInput<'_>) -> &str {
        let lowered = LoweredInput::of(input);
        self.channel_rules.iter().find(|rule| rule.condition.holds(&lowered)).map_or("Unassigned", |rule| rule.channel.as_str())
    }

    pub fn category_item(&self, url: &str) -> Option<&CategoryItem> {
        self.categories_by_url.get(url)
    }

    pub fn category_of_source(&self, source: &str) -> Option<&str> {
        self.category_of_source.get(source).map(String::as_str)
    }
}

fn parse_condition(value: &Value) -> Result<Condition, String> {
    let object = value.as_object().ok_or("a condition must be an object")?;
    if let Some(items) = object.get("op::and") {
        return Ok(Condition::All(parse_conditions(items)?));
    }
    if let Some(items) = object.get("op::or") {
        return Ok(Condition::Any(parse_conditions(items)?));
    }
    let field_name = object.get("field").and_then(Value::as_str).ok_or("a leaf condition needs `field`")?;
    let field = ChannelField::parse(field_name).ok_or_else(|| format!("unknown field `{field_name}`"))?;
    let operator = object.get("op").and_then(Value::as_str).ok_or("a leaf condition needs `op`")?;
    let (negated, base) = match operator.strip_prefix("not_") {
        Some(base) => (true, base),
        None => (false, operator),
    };
    let single_value = || -> Result<String, String> {
        let value = object.get("value").and_then(Value::as_str).ok_or_else(|| format!("`{operator}` needs a string `value`"))?;
        Ok(if value == "__empty__" { String::new() } else { value.to_lowercase() })
    };
    let comparison = match base {
        "eq" => Comparison::Equals(single_value()?),
        "contain" => Comparison::Contains(single_value()?),
        "start_with" => Comparison::StartsWith(single_value()?),
        "end_with" => Comparison::EndsWith(single_value()?),
        "match" => {
            let pattern = single_value()?;
            Comparison::Matches(Regex::new(&format!("^(?:{pattern})$")).map_err(|error| format!("bad pattern `{pattern}`: {error}"))?)
        }
        "in" => {
            let values = object.get("values").and_then(Value::as_array).ok_or_else(|| format!("`{operator}` needs an array `values`"))?;
            Comparison::In(values.iter().filter_map(Value::as_str).map(str::to_lowercase).collect())
        }
        _ => return Err(format!("unknown op `{operator}`")),
    };
    Ok(Condition::Leaf { field, comparison, negated })
}

fn parse_conditions(items: &Value) -> Result<Vec<Condition>, String> {
    items.as_array().ok_or("`op::and` and `op::or` take an array")?.iter().map(parse_condition).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_rules_load() {
        let rules = TrafficSourceRules::defaults();
        assert_eq!(rules.channel_rules.len(), 16);
        assert_eq!(rules.category_item("www.baidu.com").unwrap().source, "Baidu");
        assert_eq!(rules.category_of_source("Google"), Some("Search"));
    }

    #[test]
    fn channels_follow_the_first_matching_rule() {
        let rules = TrafficSourceRules::defaults();
        let channel = |input: ChannelInput<'_>| rules.channel_group(&input).to_string();
        assert_eq!(channel(ChannelInput::default()), "Direct");
        assert_eq!(channel(ChannelInput { category: Some("Search"), source: Some("Google"), medium: Some("cpc"), ..Default::default() }), "Paid Search");
        assert_eq!(channel(ChannelInput { category: Some("Search"), source: Some("Google"), medium: Some("organic"), ..Default::default() }), "Organic Search");
        assert_eq!(channel(ChannelInput { source: Some("newsletter"), medium: Some("email"), ..Default::default() }), "Email");
        assert_eq!(channel(ChannelInput { source: Some("x"), medium: Some("social"), ..Default::default() }), "Organic Social");
        assert_eq!(channel(ChannelInput { source: Some("TSS"), medium: Some("TSM"), latest_referrer: Some("h.com"), latest_referrer_host: Some("h.com"), ..Default::default() }), "Referral");
        assert_eq!(channel(ChannelInput { source: Some("TSS"), medium: Some("TSM"), ..Default::default() }), "Unassigned");
    }

    #[test]
    fn a_bad_rule_file_names_the_rule() {
        let error = TrafficSourceRules::parse(r#"[{"id":"r1","channel":"X","condition":{"field":"nope","op":"eq","value":"a"}}]"#, "test.json", "[]", "c.json").unwrap_err();
        assert!(error.to_string().contains("test.json") && error.to_string().contains("r1") && error.to_string().contains("nope"), "{error}");
    }
}
