//! The traffic-source enricher: where a visit came from, as CAoA works it out.
//!
//! - When the SDK reported a source (`_traffic_source_source` or `_utm_source`) but no
//!   category or channel group, only those two are computed from the rules.
//! - When it reported none, all ten `traffic_source_*` columns are derived from the page URL
//!   (UTM parameters, click ids such as `gclid`), the latest referrer and the page referrer:
//!   a known referrer gives its source, category and search terms; an unknown one its host as
//!   the source; nothing at all means `Direct` (or `Internal` for a referrer on the same host).
//! - Inferred media are written in parentheses: `(Organic)`, `(Referral)`, `(CPC)`, or `None`.
//!
//! Parity note: for SDK-reported sources, CAoA passes the page referrer where the page host
//! belongs and the host where the referrer belongs. Its published rows depend on that (an app
//! event with `host_name` gets the channel `Referral`), so we do the same; see docs/etl.md.

use std::{borrow::Cow, collections::HashMap, path::Path, sync::Arc, sync::LazyLock};

use regex::Regex;

use crate::{
    enrich::{EnrichFailure, Enricher, traffic_rules::{ChannelInput, RuleError, TrafficSourceRules}},
    java_hash_order::java_hash_map_from,
    json_text::write_jackson_string,
    rows::{EventRow, TrafficSourceColumns},
    url_parts::{UrlParts, parse_url},
};

/// The default rules plus the apps that have their own.
#[derive(Debug)]
pub struct TrafficRuleBook {
    default: Arc<TrafficSourceRules>,
    per_app: HashMap<String, Arc<TrafficSourceRules>>,
}

impl TrafficRuleBook {
    pub fn defaults_only() -> TrafficRuleBook {
        TrafficRuleBook { default: Arc::new(TrafficSourceRules::defaults()), per_app: HashMap::new() }
    }

    /// The built-in rules, overridden for each app that has a folder `<directory>/<app id>/`.
    pub fn load(directory: Option<&Path>) -> Result<TrafficRuleBook, RuleError> {
        let mut book = TrafficRuleBook::defaults_only();
        let Some(directory) = directory else {
            return Ok(book);
        };
        let entries = std::fs::read_dir(directory).map_err(|source| RuleError::Read { path: directory.display().to_string(), source })?;
        for entry in entries {
            let entry = entry.map_err(|source| RuleError::Read { path: directory.display().to_string(), source })?;
            if !entry.path().is_dir() {
                continue;
            }
            let app_id = entry.file_name().to_string_lossy().to_string();
            book.per_app.insert(app_id, Arc::new(TrafficSourceRules::load_directory(&entry.path())?));
        }
        Ok(book)
    }

    pub fn for_app(&self, app_id: &str) -> &TrafficSourceRules {
        self.per_app.get(app_id).unwrap_or(&self.default)
    }

    pub fn apps_with_own_rules(&self) -> usize {
        self.per_app.len()
    }
}

/// Attributions computed per run: a visitor's events share their referrers, and pages repeat.
const CACHE_ENTRIES: usize = 16 * 1024;

pub struct TrafficSourceEnricher {
    rules: Arc<TrafficRuleBook>,
    /// Attribution by its inputs (app, case, and the values the rules read).
    cache: lru::LruCache<String, Attribution>,
    key: String,
}

impl TrafficSourceEnricher {
    pub fn new(rules: Arc<TrafficRuleBook>) -> TrafficSourceEnricher {
        TrafficSourceEnricher { rules, cache: lru::LruCache::new(std::num::NonZeroUsize::new(CACHE_ENTRIES).expect("not zero")), key: String::new() }
    }
}

impl Enricher for TrafficSourceEnricher {
    fn name(&self) -> &str {
        "traffic_source"
    }

    fn enrich(&mut self, rows: &mut [EventRow<'_>]) -> Result<(), EnrichFailure> {
        for row in rows {
            let rules = self.rules.for_app(&row.sdk.app_id);
            enrich_row(rules, &mut self.cache, &mut self.key, row);
        }
        Ok(())
    }
}

/// The cache key of an attribution: its inputs, separated by a byte no URL contains.
fn cache_key(key: &mut String, parts: &[Option<&str>]) {
    key.clear();
    for part in parts {
        match part {
            Some(text) => key.push_str(text),
            None => key.push('\u{2}'),
        }
        key.push('\u{1}');
    }
}

fn cached(cache: &mut lru::LruCache<String, Attribution>, key: &str, compute: impl FnOnce() -> Attribution) -> Attribution {
    if let Some(found) = cache.get(key) {
        return found.clone();
    }
    let attribution = compute();
    cache.put(key.to_string(), attribution.clone());
    attribution
}

fn enrich_row(rules: &TrafficSourceRules, cache: &mut lru::LruCache<String, Attribution>, key: &mut String, row: &mut EventRow<'_>) {
    let Some(attributes) = row.sdk.attributes.as_ref() else {
        return;
    };
    match row.traffic_source.source.as_deref() {
        Some("") => {}
        Some(_) => {
            if row.traffic_source.category.is_some() && row.traffic_source.channel_group.is_some() {
                return;
            }
            let hostname = match row.page.hostname.as_deref() {
                Some(hostname) => Some(hostname.to_string()),
                None => row.page.page_url_parts(attributes.page_url.as_deref()).and_then(|parts| parts.host.clone()),
            };
            let utm = Utm::of_columns(&row.traffic_source);
            let traffic = &row.traffic_source;
            cache_key(
                key,
                &[
                    Some(&row.sdk.app_id),
                    Some("sdk"),
                    traffic.source.as_deref(),
                    traffic.medium.as_deref(),
                    traffic.campaign.as_deref(),
                    traffic.content.as_deref(),
                    traffic.term.as_deref(),
                    traffic.campaign_id.as_deref(),
                    traffic.clid_platform.as_deref(),
                    traffic.clid.as_deref(),
                    row.page.referrer.as_deref(),
                    hostname.as_deref(),
                    row.page.latest_referrer.as_deref(),
                    row.page.latest_referrer_host.as_deref(),
                ],
            );
            // CAoA's argument order, reproduced on purpose (see the module documentation).
            let result = cached(cache, key, || {
                attribute_visit(rules, utm, row.page.referrer.as_deref(), hostname.as_deref(), row.page.latest_referrer.as_deref(), row.page.latest_referrer_host.as_deref())
            });
            row.traffic_source.category = result.category.map(Cow::Owned);
            row.traffic_source.channel_group = result.channel.map(Cow::Owned);
        }
        None => {
            let (page_url, page_referrer, latest_referrer, latest_referrer_host) =
                (attributes.page_url.as_deref(), attributes.page_referrer.as_deref(), attributes.latest_referrer.as_deref(), attributes.latest_referrer_host.as_deref());
            cache_key(key, &[Some(&row.sdk.app_id), Some("urls"), page_url, page_referrer, latest_referrer, latest_referrer_host]);
            let result = cached(cache, key, || attribute_from_urls(rules, page_url, page_referrer, latest_referrer, latest_referrer_host));
            row.traffic_source = result.into_columns();
        }
    }
}

/// Source, medium, campaign and the other UTM values of a visit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Utm {
    pub source: Option<String>,
    pub medium: Option<String>,
    pub campaign: Option<String>,
    pub content: Option<String>,
    pub term: Option<String>,
    pub campaign_id: Option<String>,
    pub clid_platform: Option<String>,
    pub clid: Option<String>,
}

impl Utm {
    fn of_columns(columns: &TrafficSourceColumns<'_>) -> Utm {
        let owned = |text: &Option<Cow<'_, str>>| text.as_deref().map(str::to_string);
        Utm {
            source: owned(&columns.source),
            medium: owned(&columns.medium),
            campaign: owned(&columns.campaign),
            content: owned(&columns.content),
            term: owned(&columns.term),
            campaign_id: owned(&columns.campaign_id),
            clid_platform: owned(&columns.clid_platform),
            clid: owned(&columns.clid),
        }
    }

    /// Empty values, and `Direct` as a source, medium or campaign, count as absent.
    fn normalized(mut self) -> Utm {
        let drop_empty_or_direct = |value: &mut Option<String>| {
            if value.as_deref().is_some_and(|text| text.is_empty() || text.eq_ignore_ascii_case("direct")) {
                *value = None;
            }
        };
        let drop_empty = |value: &mut Option<String>| {
            if value.as_deref().is_some_and(str::is_empty) {
                *value = None;
            }
        };
        drop_empty_or_direct(&mut self.source);
        drop_empty_or_direct(&mut self.medium);
        drop_empty_or_direct(&mut self.campaign);
        drop_empty(&mut self.content);
        drop_empty(&mut self.term);
        drop_empty(&mut self.campaign_id);
        drop_empty(&mut self.clid_platform);
        if self.clid.as_deref().is_some_and(|clid| clid.is_empty() || clid == "{}") {
            self.clid = None;
        }
        self
    }

    /// The UTM parameters and click id of a URL.
    fn of_url(url: Option<&str>) -> Utm {
        let Some(url) = url.filter(|url| !url.is_empty()) else {
            return Utm::default();
        };
        let with_scheme: Cow<str> = if url.contains("://") { Cow::Borrowed(url) } else { Cow::Owned(format!("http://{url}")) };
        let Some(parts) = parse_url(&with_scheme) else {
            return Utm::default();
        };
        let first = |name: &str| first_value(&parts, name);
        let mut utm = Utm {
            source: first("utm_source"),
            medium: first("utm_medium"),
            campaign: first("utm_campaign"),
            content: first("utm_content"),
            term: first("utm_term"),
            campaign_id: first("utm_id"),
            clid_platform: first("utm_source_platform"),
            clid: None,
        };
        let Some((clid_type, clid_value)) = click_id(&parts) else {
            return utm;
        };
        if utm.source.is_none() {
            utm.source = Some(if clid_type == "gclid" { "Google".to_string() } else { clid_type.clone() });
            if utm.medium.as_deref().is_none_or(str::is_empty) {
                utm.medium = Some("(CPC)".into());
            }
        }
        let mut json = String::from("{\"type\":");
        write_jackson_string(&mut json, &clid_type);
        json.push_str(",\"value\":");
        match clid_value {
            Some(value) => write_jackson_string(&mut json, &value),
            None => json.push_str("null"),
        }
        json.push('}');
        utm.clid = Some(json);
        utm
    }
}

/// The value of the first occurrence of a parameter; absent when that one is empty.
fn first_value(parts: &UrlParts, name: &str) -> Option<String> {
    parts.query.iter().find(|(key, _)| key == name).and_then(|(_, value)| value.clone()).filter(|value| !value.is_empty())
}

/// `gclid` if present, else the first parameter (in Java HashMap order, as CAoA iterates
/// them) whose name ends with `clid`: `(name, value)`.
fn click_id(parts: &UrlParts) -> Option<(String, Option<String>)> {
    if parts.query.iter().any(|(key, _)| key == "gclid") {
        return Some(("gclid".into(), first_value(parts, "gclid")));
    }
    let names = java_hash_map_from(parts.query.iter().map(|(key, _)| (key.clone(), ())));
    let name = names.into_entries().into_iter().map(|(key, _)| key).find(|key| key.ends_with("clid"))?;
    let value = first_value(parts, &name);
    Some((name, value))
}

/// The full attribution of a visit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attribution {
    pub utm: Utm,
    pub category: Option<String>,
    pub channel: Option<String>,
}

impl Attribution {
    fn into_columns(self) -> TrafficSourceColumns<'static> {
        let text = |value: Option<String>| value.map(Cow::Owned);
        TrafficSourceColumns {
            source: text(self.utm.source),
            medium: text(self.utm.medium),
            campaign: text(self.utm.campaign),
            content: text(self.utm.content),
            term: text(self.utm.term),
            campaign_id: text(self.utm.campaign_id),
            clid_platform: text(self.utm.clid_platform),
            clid: text(self.utm.clid),
            channel_group: text(self.channel),
            category: text(self.category),
        }
    }
}

/// Attribution from the page URL and the referrers alone (the SDK reported no source).
pub fn attribute_from_urls(rules: &TrafficSourceRules, page_url: Option<&str>, page_referrer: Option<&str>, latest_referrer: Option<&str>, latest_referrer_host: Option<&str>) -> Attribution {
    let (utm, page_host) = match page_url.filter(|url| !url.is_empty()) {
        Some(url) => (Utm::of_url(Some(url)), parse_url(url).and_then(|parts| parts.host)),
        None => (Utm::default(), None),
    };
    attribute_visit(rules, utm, page_host.as_deref(), page_referrer, latest_referrer, latest_referrer_host)
}

fn non_empty(text: Option<&str>) -> Option<&str> {
    text.filter(|text| !text.is_empty())
}

/// Attribution of a visit with known UTM values, page host and referrers.
pub fn attribute_visit(
    rules: &TrafficSourceRules,
    utm: Utm,
    page_host: Option<&str>,
    page_referrer: Option<&str>,
    latest_referrer: Option<&str>,
    latest_referrer_host: Option<&str>,
) -> Attribution {
    let page_referrer = non_empty(page_referrer);
    let latest_referrer = non_empty(latest_referrer);
    let mut utm = utm.normalized();
    if utm.source.is_none() {
        utm = Utm::of_url(latest_referrer);
    }
    if utm.source.is_none() {
        utm = Utm::of_url(page_referrer);
    }
    let page_referrer_host = page_referrer.and_then(parse_url).and_then(|parts| parts.host);
    let same_host = |host: Option<&str>| matches!((page_host, host), (Some(page), Some(other)) if page.eq_ignore_ascii_case(other));
    let internal_page_referrer = same_host(page_referrer_host.as_deref());
    let internal_latest_referrer = same_host(latest_referrer_host);

    let mut attribution = if latest_referrer.is_some() && !internal_latest_referrer {
        attribute_referrer(rules, utm, latest_referrer, latest_referrer_host)
    } else if page_referrer.is_some() && !internal_page_referrer {
        attribute_referrer(rules, utm, page_referrer, page_referrer_host.as_deref())
    } else {
        attribute_referrer(rules, utm, None, None)
    };

    if attribution.utm.source.is_some() {
        attribution.category.get_or_insert_with(|| "Unassigned".into());
        attribution.channel.get_or_insert_with(|| "Unassigned".into());
    }
    let from_internal = if latest_referrer.is_some() { internal_latest_referrer } else { page_referrer.is_some() && internal_page_referrer };
    if attribution.utm.source.is_none() {
        attribution.utm.source = Some("Direct".into());
        attribution.category = Some("Direct".into());
        attribution.channel = Some(if from_internal { "Internal" } else { "Direct" }.into());
    }
    if attribution.utm.medium.is_none() {
        let no_referrer = latest_referrer.is_none() && page_referrer.is_none();
        attribution.utm.medium = Some(if no_referrer || from_internal { "None" } else { "(Referral)" }.into());
    }
    attribution
}

/// Attribution through one referrer (or none): its category, source, search terms and the
/// channel group the rules give.
fn attribute_referrer(rules: &TrafficSourceRules, utm: Utm, referrer: Option<&str>, referrer_host: Option<&str>) -> Attribution {
    let mut utm = utm.normalized();
    let referrer = non_empty(referrer);
    let found = referrer.map(|referrer| categorize_referrer(rules, referrer)).unwrap_or_default();
    if utm.source.is_none() {
        utm.source = found.source;
    }
    if utm.term.is_none() {
        utm.term = found.terms;
    }
    let mut category = found.category;
    if let Some(source) = &utm.source {
        if category.as_deref().is_none_or(|category| category == "Unassigned") {
            category = rules.category_of_source(source).map(str::to_string);
        }
    }
    if utm.medium.as_deref().is_none_or(str::is_empty) {
        if let Some(category) = category.as_deref() {
            let inferred = if utm.clid.as_deref().is_some_and(|clid| !clid.is_empty()) {
                Some("(CPC)")
            } else if category == "Search" {
                Some("(Organic)")
            } else if ["Social", "Video", "Shopping", "Referral"].contains(&category) {
                Some("(Referral)")
            } else {
                None
            };
            if let Some(inferred) = inferred {
                utm.medium = Some(inferred.into());
            }
        }
    }
    let medium_without_parentheses = utm.medium.as_deref().map(|medium| medium.replace(['(', ')'], ""));
    let channel = rules
        .channel_group(&ChannelInput {
            category: category.as_deref().filter(|category| *category != "Unassigned"),
            source: utm.source.as_deref(),
            medium: medium_without_parentheses.as_deref(),
            campaign: utm.campaign.as_deref(),
            campaign_id: utm.campaign_id.as_deref(),
            content: utm.content.as_deref(),
            term: utm.term.as_deref(),
            clid: utm.clid.as_deref(),
            clid_platform: utm.clid_platform.as_deref(),
            latest_referrer: referrer,
            latest_referrer_host: referrer_host,
        })
        .to_string();
    let mut attribution = Attribution { utm, category, channel: Some(channel) };
    if attribution.utm.source.is_none() {
        match referrer {
            Some(_) => attribution.utm.source = referrer_host.map(str::to_string),
            None => attribution.utm.campaign = Some("Direct".into()),
        }
    }
    attribution
}

/// What the category list says of a referrer.
#[derive(Debug, Default)]
struct ReferrerCategory {
    source: Option<String>,
    category: Option<String>,
    terms: Option<String>,
}

/// `google.co.uk` → `google.co`: a host with its two-letter country suffix removed.
static COUNTRY_SUFFIX: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^(.*\.[a-z]{2,3})\.[a-z]{2}$").expect("static regex"));

/// Looks a referrer up in the category list, most specific candidate first: the URL without
/// its scheme, host and path, the host, the host without `www.`, without a country suffix.
fn categorize_referrer(rules: &TrafficSourceRules, referrer: &str) -> ReferrerCategory {
    let parts = parse_url(referrer).unwrap_or_default();
    let host = parts.host.clone().unwrap_or_default();
    let path = match parts.path.as_str() {
        "" | "/" => String::new(),
        path if path.starts_with('/') => path.to_string(),
        path => format!("/{path}"),
    };
    let mut candidates: Vec<String> = Vec::with_capacity(8);
    let mut add = |candidate: String| {
        if !candidate.is_empty() && !candidates.contains(&candidate) {
            candidates.push(candidate);
        }
    };
    add(referrer.split_once("://").map_or(referrer, |(_, rest)| rest).to_string());
    if !path.is_empty() {
        add(format!("{host}{path}"));
    }
    add(host.clone());
    let without_www = host.strip_prefix("www.").unwrap_or(&host).to_string();
    add(without_www.clone());
    if !path.is_empty() {
        add(format!("{without_www}{path}"));
    }
    for name in [&host, &without_www] {
        if let Some(captures) = COUNTRY_SUFFIX.captures(name) {
            add(captures[1].to_string());
        }
    }
    if referrer.contains(".google.") {
        add("google.com".into());
    }
    candidates.sort_by_key(|candidate| std::cmp::Reverse(candidate.len()));
    let Some(item) = candidates.iter().find_map(|candidate| rules.category_item(candidate)) else {
        return ReferrerCategory { source: (!host.is_empty()).then_some(host), category: Some("Unassigned".into()), terms: None };
    };
    let mut terms: Vec<&str> = parts
        .query
        .iter()
        .filter(|(key, _)| item.params.contains(key))
        .filter_map(|(_, value)| value.as_deref())
        .collect();
    terms.sort_unstable();
    terms.dedup();
    ReferrerCategory {
        source: Some(item.source.clone()),
        category: Some(item.category.clone()),
        terms: (!terms.is_empty()).then(|| terms.join(",")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> TrafficSourceRules {
        TrafficSourceRules::defaults()
    }

    fn some(text: &str) -> Option<String> {
        Some(text.to_string())
    }

    #[test]
    fn a_search_engine_referrer_is_organic_search() {
        // CAoA's web example: the latest referrer is Baidu.
        let attribution = attribute_from_urls(&rules(), Some("http://www.example.com/?q=abc"), Some("https://www2.inbox.com?q=abc&q=007"), Some("https://www.baidu.com/s?wd=shoes&wd=boots"), Some("www.baidu.com"));
        assert_eq!(attribution.utm.source, some("Baidu"));
        assert_eq!(attribution.utm.medium, some("(Organic)"));
        assert_eq!(attribution.utm.term, some("boots,shoes"));
        assert_eq!(attribution.category, some("Search"));
        assert_eq!(attribution.channel, some("Organic Search"));
    }

    #[test]
    fn utm_parameters_and_click_ids_of_the_page_url_win() {
        let attribution = attribute_from_urls(&rules(), Some("https://shop.example.com/p?utm_source=newsletter&utm_medium=email&utm_campaign=spring"), None, None, None);
        assert_eq!((attribution.utm.source, attribution.utm.medium, attribution.utm.campaign), (some("newsletter"), some("email"), some("spring")));
        assert_eq!(attribution.channel, some("Email"));

        let paid = attribute_from_urls(&rules(), Some("https://shop.example.com/?gclid=abc"), None, None, None);
        assert_eq!((paid.utm.source.as_deref(), paid.utm.medium.as_deref()), (Some("Google"), Some("(CPC)")));
        assert_eq!(paid.utm.clid.as_deref(), Some(r#"{"type":"gclid","value":"abc"}"#));
        assert_eq!(paid.category, some("Search"));
        assert_eq!(paid.channel, some("Paid Search"));
    }

    #[test]
    fn no_referrer_is_direct_and_the_same_host_is_internal() {
        let direct = attribute_from_urls(&rules(), Some("https://shop.example.com/"), None, None, None);
        assert_eq!((direct.utm.source, direct.utm.medium, direct.category, direct.channel), (some("Direct"), some("None"), some("Direct"), some("Direct")));
        let internal = attribute_from_urls(&rules(), Some("https://shop.example.com/b"), Some("https://shop.example.com/a"), None, None);
        assert_eq!((internal.utm.source, internal.channel, internal.utm.medium), (some("Direct"), some("Internal"), some("None")));
    }

    #[test]
    fn an_unknown_referrer_is_a_referral_from_its_host() {
        let referral = attribute_from_urls(&rules(), Some("https://shop.example.com/"), Some("https://blog.other.org/post"), None, None);
        assert_eq!(referral.utm.source, some("blog.other.org"));
        assert_eq!(referral.utm.medium, some("(Referral)"));
        assert_eq!(referral.category, some("Unassigned"));
        assert_eq!(referral.channel, some("Referral"));
        let social = attribute_from_urls(&rules(), Some("https://shop.example.com/"), Some("https://l.facebook.com/l.php"), None, None);
        assert_eq!((social.utm.source, social.category, social.channel), (some("Facebook"), some("Social"), some("Organic Social")));
        let country = attribute_from_urls(&rules(), Some("https://shop.example.com/"), Some("https://www.google.co.uk/"), None, None);
        assert_eq!((country.utm.source, country.channel), (some("Google"), some("Organic Search")));
    }

    #[test]
    fn an_sdk_source_with_a_host_name_is_a_referral_as_in_caoa() {
        // The fixture case: source TSS, medium TSM, host_name set, no referrer. CAoA's swapped
        // arguments make the host name act as the referrer.
        let utm = Utm { source: some("TSS"), medium: some("TSM"), ..Utm::default() };
        let with_host = attribute_visit(&rules(), utm.clone(), None, Some("host-name-001.com"), None, None);
        assert_eq!((with_host.category.as_deref(), with_host.channel.as_deref()), (Some("Unassigned"), Some("Referral")));
        let without_host = attribute_visit(&rules(), utm, None, None, None, None);
        assert_eq!((without_host.category.as_deref(), without_host.channel.as_deref()), (Some("Unassigned"), Some("Unassigned")));
    }
}
