//! An example clickstream enricher plugin.
//!
//! For every event with a page URL it sets three custom parameters:
//! - `page_category`: the category of the first rule whose path prefix the page's path starts
//!   with (`other` when none does);
//! - `page_depth`: how many segments the path has (`/` is 0, `/shop/shoes` is 2);
//! - `referrer_host`: the host of the page referrer, when there is one.
//!
//! The rules come from the configuration registered with the plugin: one `prefix=category`
//! pair per line, e.g.
//! ```text
//! /products=product
//! /blog=content
//! ```
//! With no configuration, [`DEFAULT_RULES`] apply.
//!
//! The logic is plain Rust ([`page_parameters`]); the WebAssembly component is the thin
//! `component` module at the end, which only converts between the WIT types and these.

/// The rules used when the plugin is registered without a configuration.
pub const DEFAULT_RULES: &str = "/products=product\n/product=product\n/cart=checkout\n/checkout=checkout\n/blog=content\n/help=support";

/// One `prefix=category` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub prefix: String,
    pub category: String,
}

/// Parses the configuration; blank lines and lines starting with `#` are skipped.
pub fn parse_rules(config: &str) -> Result<Vec<Rule>, String> {
    let text = if config.trim().is_empty() { DEFAULT_RULES } else { config };
    let mut rules = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((prefix, category)) = line.split_once('=') else {
            return Err(format!("configuration line {}: expected `prefix=category`, got `{line}`", index + 1));
        };
        if !prefix.starts_with('/') {
            return Err(format!("configuration line {}: the prefix `{prefix}` must start with `/`", index + 1));
        }
        rules.push(Rule { prefix: prefix.trim().to_string(), category: category.trim().to_string() });
    }
    Ok(rules)
}

/// A parameter value, as the WIT `value` variant has it.
#[derive(Debug, Clone, PartialEq)]
pub enum ParameterValue {
    Text(String),
    Integer(i64),
}

/// The parameters one event gets (none without a parseable page URL).
pub fn page_parameters(rules: &[Rule], page_url: Option<&str>, page_referrer: Option<&str>) -> Vec<(String, ParameterValue)> {
    let Some(page) = page_url.and_then(|text| url::Url::parse(text).ok()) else {
        return Vec::new();
    };
    let path = page.path();
    let category = rules.iter().find(|rule| path.starts_with(&rule.prefix)).map_or("other", |rule| rule.category.as_str());
    let depth = path.split('/').filter(|segment| !segment.is_empty()).count() as i64;
    let mut parameters = vec![("page_category".to_string(), ParameterValue::Text(category.to_string())), ("page_depth".to_string(), ParameterValue::Integer(depth))];
    if let Some(host) = page_referrer.and_then(|text| url::Url::parse(text).ok()).and_then(|referrer| referrer.host_str().map(str::to_string)) {
        parameters.push(("referrer_host".to_string(), ParameterValue::Text(host)));
    }
    parameters
}

#[cfg(target_arch = "wasm32")]
mod batch_arena;

/// Batch calls free everything they allocate, so the component allocates from an arena that
/// starts over between calls (see the module for why and when it falls back).
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: batch_arena::BatchArena = batch_arena::BatchArena::new();

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ path: "../../wit", world: "enricher" });

    // The world's `use` brings `Event`, `EventField` and `Enrichment` into this module already.
    use clickstream::plugin::types::{Parameter, Value};

    struct PageCategory;

    impl Guest for PageCategory {
        // Only these two fields are copied into the plugin; the rest of each event arrives empty.
        fn reads(_config: String) -> Vec<EventField> {
            vec![EventField::PageUrl, EventField::PageReferrer]
        }

        fn enrich(config: String, events: Vec<Event>) -> Result<Vec<Enrichment>, String> {
            let rules = super::parse_rules(&config)?;
            let enrichments = events
                .iter()
                .map(|event| {
                    let set_parameters = super::page_parameters(&rules, event.page_url.as_deref(), event.page_referrer.as_deref())
                        .into_iter()
                        .map(|(name, value)| Parameter {
                            name,
                            value: match value {
                                super::ParameterValue::Text(text) => Value::Text(text),
                                super::ParameterValue::Integer(number) => Value::Integer(number),
                            },
                        })
                        .collect();
                    Enrichment { set_parameters }
                })
                .collect();
            Ok(enrichments)
        }
    }

    export!(PageCategory);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_depth_and_referrer_host() {
        let rules = parse_rules("").unwrap();
        let parameters = page_parameters(&rules, Some("https://shop.example/products/shoes?id=1"), Some("https://www.google.com/search?q=x"));
        assert_eq!(
            parameters,
            vec![
                ("page_category".to_string(), ParameterValue::Text("product".into())),
                ("page_depth".to_string(), ParameterValue::Integer(2)),
                ("referrer_host".to_string(), ParameterValue::Text("www.google.com".into())),
            ]
        );
        assert_eq!(page_parameters(&rules, Some("https://shop.example/"), None)[0].1, ParameterValue::Text("other".into()));
        assert!(page_parameters(&rules, None, None).is_empty());
        assert!(parse_rules("products=product").unwrap_err().contains("must start with `/`"));
    }
}
