//! Enrichers: components that add derived columns to a batch of events.
//!
//! Every enricher implements [`Enricher`] and works on a whole batch, so that one can also be
//! a plugin behind a batch call. A pipeline names its chain, in order, in its configuration
//! (`etl.enrichers`, or per project); [`EnrichmentResources`] holds what the enrichers share
//! (the user-agent regexes, the geo database, the traffic-source rules), loaded once per
//! process, and [`EnrichmentResources::chain`] makes the per-run instances with their caches.

use std::{num::NonZeroUsize, path::Path, sync::Arc};

use crate::rows::{EventRow, GeoInfo, UserAgentEnrichment, UserAgentInfo};

pub mod plugin;
pub mod traffic_rules;
pub mod traffic_source;

pub use traffic_source::{TrafficRuleBook, TrafficSourceEnricher};

/// Adds derived columns to a batch of events, in place.
pub trait Enricher: Send {
    /// The name the pipeline configuration uses for this enricher (a plugin's id).
    fn name(&self) -> &str;
    /// Enriches the batch. The built-in enrichers cannot fail; a plugin can, and then the
    /// whole batch is quarantined with the reason (see [`crate::job`]).
    fn enrich(&mut self, rows: &mut [EventRow<'_>]) -> Result<(), EnrichFailure>;
}

/// An enricher failed a batch: its rows are quarantined, the job goes on.
#[derive(Debug, Clone, thiserror::Error)]
#[error("enricher plugin `{enricher}` failed the batch: {reason}")]
pub struct EnrichFailure {
    pub enricher: String,
    pub reason: String,
}

/// The enrichers a pipeline can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EnricherKind {
    /// `page_view_page_url_path`, its query parameters, and the host when the SDK sent none.
    PageUrl,
    /// `traffic_source_*`: source, medium, campaign, category and channel group.
    TrafficSource,
    /// `device_ua_*` from the `User-Agent` header (uap-core); also finds bots.
    UserAgent,
    /// `geo_*` from the client IP (a MaxMind-format database).
    IpGeo,
}

impl EnricherKind {
    pub const ALL: [EnricherKind; 4] = [EnricherKind::PageUrl, EnricherKind::TrafficSource, EnricherKind::UserAgent, EnricherKind::IpGeo];

    pub fn name(self) -> &'static str {
        match self {
            EnricherKind::PageUrl => "page_url",
            EnricherKind::TrafficSource => "traffic_source",
            EnricherKind::UserAgent => "user_agent",
            EnricherKind::IpGeo => "ip_geo",
        }
    }

    pub fn parse(name: &str) -> Option<EnricherKind> {
        EnricherKind::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

/// Why the enrichers' shared data could not be loaded. Retrying does not help: the
/// configuration or the installed files must be fixed.
#[derive(Debug, thiserror::Error)]
pub enum EnrichmentError {
    #[error("the user_agent enricher needs uap-core's regexes.yaml: set etl.user_agent_regexes (local/up installs it)")]
    NoUserAgentRegexes,
    #[error("cannot read the user-agent regexes {path}: {reason}")]
    UserAgentRegexes { path: String, reason: String },
    #[error("the ip_geo enricher needs a MaxMind-format city database: set etl.geo_database (local/up installs GeoLite2-City)")]
    NoGeoDatabase,
    #[error("cannot open the geo database {path}: {reason}")]
    GeoDatabase { path: String, reason: String },
    #[error(transparent)]
    TrafficRules(#[from] traffic_rules::RuleError),
}

/// Where the enrichers' data lives.
#[derive(Debug, Clone, Default)]
pub struct EnrichmentFiles<'a> {
    pub user_agent_regexes: Option<&'a Path>,
    pub geo_database: Option<&'a Path>,
    pub traffic_source_rules_dir: Option<&'a Path>,
}

/// What the enrichers share, loaded once.
pub struct EnrichmentResources {
    user_agent: Option<Arc<UserAgentParser>>,
    geo: Option<Arc<maxminddb::Reader<Vec<u8>>>>,
    traffic_rules: Arc<TrafficRuleBook>,
}

/// Entries of each enricher's cache (user agents, IP addresses).
const CACHE_ENTRIES: usize = 16 * 1024;

impl EnrichmentResources {
    /// Loads what the named enrichers need (and nothing else).
    pub fn load(files: &EnrichmentFiles<'_>, kinds: &[EnricherKind]) -> Result<EnrichmentResources, EnrichmentError> {
        let user_agent = if kinds.contains(&EnricherKind::UserAgent) {
            let path = files.user_agent_regexes.ok_or(EnrichmentError::NoUserAgentRegexes)?;
            Some(Arc::new(UserAgentParser::from_file(path)?))
        } else {
            None
        };
        let geo = if kinds.contains(&EnricherKind::IpGeo) {
            let path = files.geo_database.ok_or(EnrichmentError::NoGeoDatabase)?;
            let reader = maxminddb::Reader::open_readfile(path).map_err(|error| EnrichmentError::GeoDatabase { path: path.display().to_string(), reason: error.to_string() })?;
            Some(Arc::new(reader))
        } else {
            None
        };
        let traffic_rules = Arc::new(TrafficRuleBook::load(files.traffic_source_rules_dir)?);
        Ok(EnrichmentResources { user_agent, geo, traffic_rules })
    }

    /// Resources built from data in memory (tests, benchmarks).
    pub fn from_parts(user_agent: Option<UserAgentParser>, geo: Option<maxminddb::Reader<Vec<u8>>>, traffic_rules: TrafficRuleBook) -> EnrichmentResources {
        EnrichmentResources { user_agent: user_agent.map(Arc::new), geo: geo.map(Arc::new), traffic_rules: Arc::new(traffic_rules) }
    }

    /// Fresh enricher instances for one run, in the given order.
    ///
    /// Panics if a kind's data was not loaded: [`Self::load`] with the same kinds guarantees it.
    pub fn chain(&self, kinds: &[EnricherKind]) -> Vec<Box<dyn Enricher>> {
        kinds
            .iter()
            .map(|kind| -> Box<dyn Enricher> {
                match kind {
                    EnricherKind::PageUrl => Box::new(PageUrlEnricher),
                    EnricherKind::TrafficSource => Box::new(TrafficSourceEnricher::new(self.traffic_rules.clone())),
                    EnricherKind::UserAgent => Box::new(UserAgentEnricher::new(self.user_agent.clone().expect("user-agent regexes are loaded for this chain"))),
                    EnricherKind::IpGeo => Box::new(IpGeoEnricher::new(self.geo.clone().expect("the geo database is loaded for this chain"))),
                }
            })
            .collect()
    }
}

fn cache_size() -> NonZeroUsize {
    NonZeroUsize::new(CACHE_ENTRIES).expect("the cache size is not zero")
}

/// Splits the page URL into path, query parameters and host.
pub struct PageUrlEnricher;

impl Enricher for PageUrlEnricher {
    fn name(&self) -> &str {
        "page_url"
    }

    fn enrich(&mut self, rows: &mut [EventRow<'_>]) -> Result<(), EnrichFailure> {
        for row in rows {
            let raw_page_url = row.sdk.attributes.as_ref().and_then(|attributes| attributes.page_url.as_deref());
            let Some(parts) = row.page.page_url_parts(raw_page_url) else {
                continue;
            };
            let path = parts.path.clone();
            let query = parts.query_map();
            let host = parts.host.clone();
            row.page.url_path = Some(path);
            row.page.url_query_parameters = query;
            if row.page.hostname.is_none() {
                row.page.hostname = host.map(std::borrow::Cow::Owned);
            }
        }
        Ok(())
    }
}

/// uap-core's regexes, compiled.
pub struct UserAgentParser {
    extractor: ua_parser::Extractor<'static>,
}

impl UserAgentParser {
    pub fn from_file(path: &Path) -> Result<UserAgentParser, EnrichmentError> {
        let failure = |reason: String| EnrichmentError::UserAgentRegexes { path: path.display().to_string(), reason };
        let text = std::fs::read_to_string(path).map_err(|error| failure(error.to_string()))?;
        UserAgentParser::from_yaml(&text).map_err(failure)
    }

    pub fn from_yaml(text: &str) -> Result<UserAgentParser, String> {
        let regexes: ua_parser::Regexes<'static> = serde_yaml_ng::from_str(text).map_err(|error| format!("not uap-core regexes: {error}"))?;
        let extractor = ua_parser::Extractor::try_from(regexes).map_err(|error| format!("cannot compile the regexes: {error}"))?;
        Ok(UserAgentParser { extractor })
    }

    /// The browser, OS and device of a user agent, as CAoA fills `device_ua_*`.
    pub fn parse(&self, user_agent: &str) -> UserAgentInfo {
        let (browser, os, device) = self.extractor.extract(user_agent);
        let browser_family = browser.as_ref().map_or("Other", |browser| browser.family.as_ref()).to_string();
        let (browser_major, browser_minor, browser_patch) = match &browser {
            Some(browser) => (browser.major, browser.minor, browser.patch),
            None => (None, None, None),
        };
        let os_family = os.as_ref().map_or("Other", |os| os.os.as_ref()).to_string();
        let (os_major, os_minor, os_patch, os_patch_minor) = match &os {
            Some(os) => (os.major.as_deref(), os.minor.as_deref(), os.patch.as_deref(), os.patch_minor.as_deref()),
            None => (None, None, None, None),
        };
        let device_family = device.as_ref().map_or("Other", |device| device.device.as_ref()).to_string();

        let mut user_agent_json = String::from("{\"family\":");
        write_json_text(&mut user_agent_json, Some(&browser_family));
        for (name, value) in [("major", browser_major), ("minor", browser_minor), ("patch", browser_patch)] {
            user_agent_json.push_str(&format!(",\"{name}\":"));
            write_json_text(&mut user_agent_json, value);
        }
        user_agent_json.push('}');
        let mut os_json = String::from("{\"family\":");
        write_json_text(&mut os_json, Some(&os_family));
        for (name, value) in [("major", os_major), ("minor", os_minor), ("patch", os_patch), ("patchMinor", os_patch_minor)] {
            os_json.push_str(&format!(",\"{name}\":"));
            write_json_text(&mut os_json, value);
        }
        os_json.push('}');
        let mut device_json = String::from("{\"family\":");
        write_json_text(&mut device_json, Some(&device_family));
        device_json.push('}');

        UserAgentInfo {
            browser_version: joined_version(browser_major, browser_minor, browser_patch),
            os_version: joined_version(os_major, os_minor, os_patch),
            device_category: Some(device_category(&device_family)),
            browser: Some(browser_family),
            os: Some(os_family),
            device: Some(device_family),
            user_agent_json,
            os_json,
            device_json,
        }
    }
}

fn write_json_text(out: &mut String, value: Option<&str>) {
    match value {
        Some(value) => crate::json_text::write_jackson_string(out, value),
        None => out.push_str("null"),
    }
}

/// `major.minor.patch`, as far as the parts go from the left.
fn joined_version(major: Option<&str>, minor: Option<&str>, patch: Option<&str>) -> Option<String> {
    match (major, minor, patch) {
        (Some(major), Some(minor), Some(patch)) => Some(format!("{major}.{minor}.{patch}")),
        (Some(major), Some(minor), None) => Some(format!("{major}.{minor}")),
        (Some(major), _, _) => Some(major.to_string()),
        _ => None,
    }
}

/// CAoA's device categories, from the uap-core device family (crawlers are `Spider`).
pub fn device_category(family: &str) -> &'static str {
    let lowered = family.to_lowercase();
    if lowered.contains("bot") || family == "Spider" || family == "Crawler" {
        "Bot"
    } else if lowered.contains("mobile") || lowered.contains("phone") {
        "Mobile"
    } else if lowered.contains("tablet") || lowered.contains("pad") || lowered.contains("kindle") {
        "Tablet"
    } else if lowered.contains("pc") || lowered.contains("mac") || lowered.contains("linux") {
        "PC"
    } else {
        "Other"
    }
}

/// Parses `User-Agent` headers, caching by header (a client sends the same one every time).
pub struct UserAgentEnricher {
    parser: Arc<UserAgentParser>,
    cache: lru::LruCache<String, Arc<UserAgentInfo>>,
}

impl UserAgentEnricher {
    pub fn new(parser: Arc<UserAgentParser>) -> UserAgentEnricher {
        UserAgentEnricher { parser, cache: lru::LruCache::new(cache_size()) }
    }
}

impl Enricher for UserAgentEnricher {
    fn name(&self) -> &str {
        "user_agent"
    }

    fn enrich(&mut self, rows: &mut [EventRow<'_>]) -> Result<(), EnrichFailure> {
        for row in rows {
            let Some(user_agent) = row.record.ua.as_deref().filter(|user_agent| !user_agent.is_empty()) else {
                row.user_agent = UserAgentEnrichment::NoUserAgent;
                continue;
            };
            let parser = &self.parser;
            let info = self.cache.get_or_insert_ref(user_agent, || Arc::new(parser.parse(user_agent)));
            row.user_agent = UserAgentEnrichment::Parsed(info.clone());
        }
        Ok(())
    }
}

/// Looks client addresses up in a MaxMind-format city database, caching by address.
pub struct IpGeoEnricher {
    reader: Arc<maxminddb::Reader<Vec<u8>>>,
    cache: lru::LruCache<String, Option<Arc<GeoInfo>>>,
}

impl IpGeoEnricher {
    pub fn new(reader: Arc<maxminddb::Reader<Vec<u8>>>) -> IpGeoEnricher {
        IpGeoEnricher { reader, cache: lru::LruCache::new(cache_size()) }
    }
}

/// The English names CAoA writes (continent, country, city), plus the first subdivision as the
/// region and the metro code, which CAoA leaves empty although the database has them.
pub fn look_up_geo(reader: &maxminddb::Reader<Vec<u8>>, address: &str) -> Option<GeoInfo> {
    let ip: std::net::IpAddr = address.parse().ok()?;
    let city: maxminddb::geoip2::City = reader.lookup(ip).ok()?.decode().ok()??;
    let name = |names: &maxminddb::geoip2::Names<'_>| names.english.map(str::to_string);
    Some(GeoInfo {
        continent: name(&city.continent.names),
        sub_continent: None,
        country: name(&city.country.names),
        region: city.subdivisions.first().and_then(|subdivision| name(&subdivision.names)),
        metro: city.location.metro_code.map(|code| code.to_string()),
        city: name(&city.city.names),
    })
}

impl Enricher for IpGeoEnricher {
    fn name(&self) -> &str {
        "ip_geo"
    }

    fn enrich(&mut self, rows: &mut [EventRow<'_>]) -> Result<(), EnrichFailure> {
        for row in rows {
            let Some(address) = row.record.first_ip() else {
                row.geo = None;
                continue;
            };
            let reader = &self.reader;
            row.geo = self.cache.get_or_insert_ref(address, || look_up_geo(reader, address).map(Arc::new)).clone();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_categories_follow_caoa() {
        assert_eq!(device_category("iPhone"), "Mobile");
        assert_eq!(device_category("iPad"), "Tablet");
        assert_eq!(device_category("Mac"), "PC");
        assert_eq!(device_category("Spider"), "Bot");
        assert_eq!(device_category("Googlebot"), "Bot");
        assert_eq!(device_category("Other"), "Other");
    }

    #[test]
    fn versions_join_from_the_left() {
        assert_eq!(joined_version(Some("1"), Some("2"), Some("3")).as_deref(), Some("1.2.3"));
        assert_eq!(joined_version(Some("1"), None, Some("3")).as_deref(), Some("1"));
        assert_eq!(joined_version(None, Some("2"), None), None);
    }

    #[test]
    fn enricher_names_round_trip() {
        for kind in EnricherKind::ALL {
            assert_eq!(EnricherKind::parse(kind.name()), Some(kind));
        }
        assert_eq!(EnricherKind::parse("nope"), None);
    }
}
