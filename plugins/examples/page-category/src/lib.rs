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
//! `component` module at the end, which reads the batch's columns and writes one answer
//! column per parameter.

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

/// The parameters one event gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageParameters<'r> {
    /// `page_category`: the first matching rule's category, else `other`.
    pub category: &'r str,
    /// `page_depth`: how many segments the path has.
    pub depth: i64,
    /// `referrer_host`: the referrer's host, when the event has a referrer with one.
    pub referrer_host: Option<String>,
}

/// The parameters of an event with this page URL and referrer; `None` without a parseable
/// page URL (the event then gets no parameters).
pub fn page_parameters<'r>(rules: &'r [Rule], page_url: Option<&str>, page_referrer: Option<&str>) -> Option<PageParameters<'r>> {
    let page = url::Url::parse(page_url?).ok()?;
    let path = page.path();
    let category = rules.iter().find(|rule| path.starts_with(&rule.prefix)).map_or("other", |rule| rule.category.as_str());
    let depth = path.split('/').filter(|segment| !segment.is_empty()).count() as i64;
    let referrer_host = page_referrer.and_then(|text| url::Url::parse(text).ok()).and_then(|referrer| referrer.host_str().map(str::to_string));
    Some(PageParameters { category, depth, referrer_host })
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

    // The world's `use` brings `EventBatch`, `EventField` and `ParameterColumn` into this
    // module already.
    use clickstream::plugin::types::{ColumnValues, ParameterValues, TextColumn, Texts};

    /// Reading a batch's columns and writing answer columns; a plugin author can copy this
    /// module as it is.
    mod columns {
        use super::{ColumnValues, EventBatch, EventField, TextColumn, Texts};

        impl Texts {
            pub fn new() -> Texts {
                Texts { bytes: String::new(), ends: Vec::new() }
            }

            pub fn push(&mut self, text: &str) {
                self.bytes.push_str(text);
                self.ends.push(self.bytes.len() as u32);
            }

            /// Text `index` (`None` past the last one).
            pub fn get(&self, index: usize) -> Option<&str> {
                let end = *self.ends.get(index)? as usize;
                let start = if index == 0 { 0 } else { self.ends[index - 1] as usize };
                self.bytes.get(start..end)
            }
        }

        impl TextColumn {
            /// Event `index`'s text, or `None` where it has none.
            pub fn get(&self, index: usize) -> Option<&str> {
                if !*self.present.get(index)? {
                    return None;
                }
                self.values.get(index)
            }
        }

        impl EventBatch {
            /// The text column of a field the plugin declared in `reads`.
            pub fn text_column(&self, field: EventField) -> Option<&TextColumn> {
                self.columns.iter().find(|column| column.field == field).and_then(|column| match &column.values {
                    ColumnValues::Text(texts) => Some(texts),
                    ColumnValues::Integers(_) => None,
                })
            }
        }
    }

    struct PageCategory;

    impl Guest for PageCategory {
        // Only these two columns are copied into the plugin.
        fn reads(_config: String) -> Vec<EventField> {
            vec![EventField::PageUrl, EventField::PageReferrer]
        }

        fn enrich(config: String, batch: EventBatch) -> Result<Vec<ParameterColumn>, String> {
            let rules = super::parse_rules(&config)?;
            let page_urls = batch.text_column(EventField::PageUrl);
            let referrers = batch.text_column(EventField::PageReferrer);
            // One column per parameter: the events that get it, and their values.
            let (mut categorised, mut categories) = (Vec::new(), Texts::new());
            let (mut depths, mut with_referrer, mut referrer_hosts) = (Vec::new(), Vec::new(), Texts::new());
            for event in 0..batch.size as usize {
                let page_url = page_urls.and_then(|column| column.get(event));
                let referrer = referrers.and_then(|column| column.get(event));
                let Some(parameters) = super::page_parameters(&rules, page_url, referrer) else {
                    continue;
                };
                categorised.push(event as u32);
                categories.push(parameters.category);
                depths.push(parameters.depth);
                if let Some(host) = &parameters.referrer_host {
                    with_referrer.push(event as u32);
                    referrer_hosts.push(host);
                }
            }
            Ok(vec![
                ParameterColumn { name: "page_category".into(), events: categorised.clone(), values: ParameterValues::Text(categories) },
                ParameterColumn { name: "page_depth".into(), events: categorised, values: ParameterValues::Integer(depths) },
                ParameterColumn { name: "referrer_host".into(), events: with_referrer, values: ParameterValues::Text(referrer_hosts) },
            ])
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
        assert_eq!(parameters, Some(PageParameters { category: "product", depth: 2, referrer_host: Some("www.google.com".into()) }));
        assert_eq!(page_parameters(&rules, Some("https://shop.example/"), None), Some(PageParameters { category: "other", depth: 0, referrer_host: None }));
        assert_eq!(page_parameters(&rules, None, None), None);
        assert!(parse_rules("products=product").unwrap_err().contains("must start with `/`"));
    }
}
