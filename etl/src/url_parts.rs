//! URL helpers with CAoA's semantics: Java's `URLDecoder` for titles and referrers, and
//! `java.net.URI` parts (host, decoded path, query parameters) for page URLs.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

/// Java's `URLDecoder.decode(text, UTF-8)`: `+` is a space and `%XX` a byte; text with a
/// malformed escape comes back unchanged (CAoA catches the exception and keeps the input).
pub fn java_url_decode(text: &str) -> Cow<'_, str> {
    if !text.bytes().any(|byte| byte == b'%' || byte == b'+') {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => {
                decoded.push(b' ');
                index += 1;
            }
            b'%' => {
                let hex = bytes.get(index + 1..index + 3).and_then(|pair| std::str::from_utf8(pair).ok());
                let Some(byte) = hex.and_then(|pair| u8::from_str_radix(pair, 16).ok()) else {
                    return Cow::Borrowed(text);
                };
                decoded.push(byte);
                index += 3;
            }
            other => {
                decoded.push(other);
                index += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&decoded).into_owned())
}

/// The parts of a page URL that `event_v2` keeps.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UrlParts {
    /// Host as written (IPv6 literals keep their brackets); `None` when there is none.
    pub host: Option<String>,
    /// Percent-decoded path; empty when the URL has none (`https://a.com?x=1`).
    pub path: String,
    /// Query parameters in order; a parameter without `=value` has no value.
    pub query: Vec<(String, Option<String>)>,
}

impl UrlParts {
    /// The first non-empty value of a query parameter.
    pub fn first_value(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(key, _)| key == name).and_then(|(_, value)| value.as_deref()).filter(|value| !value.is_empty())
    }

    /// `key → values joined by ","` (a value-less parameter counts as the text `null`), as
    /// CAoA's `page_view_page_url_query_parameters`; `None` without parameters.
    pub fn query_map(&self) -> Option<Vec<(String, String)>> {
        if self.query.is_empty() {
            return None;
        }
        let mut joined: Vec<(String, String)> = Vec::new();
        for (key, value) in &self.query {
            let value = value.as_deref().unwrap_or("null");
            match joined.iter_mut().find(|(existing, _)| existing == key) {
                Some((_, values)) => {
                    values.push(',');
                    values.push_str(value);
                }
                None => joined.push((key.clone(), value.to_string())),
            }
        }
        Some(joined)
    }
}

/// Parses a URL as CAoA does: `https://` is assumed when no scheme appears in the first 15
/// characters. `None` for empty or unparsable input.
pub fn parse_url(text: &str) -> Option<UrlParts> {
    if text.is_empty() {
        return None;
    }
    let has_scheme = text.char_indices().take_while(|(index, _)| *index < 15).any(|(index, _)| text[index..].starts_with("://"));
    let absolute: Cow<str> = if has_scheme { Cow::Borrowed(text) } else { Cow::Owned(format!("https://{text}")) };
    let parsed = url::Url::parse(&absolute).ok()?;
    let path = if has_explicit_path(&absolute) { percent_decode_str(parsed.path()).decode_utf8_lossy().into_owned() } else { String::new() };
    Some(UrlParts {
        host: parsed.host_str().map(str::to_string),
        path,
        query: parsed.query().map(query_parameters).unwrap_or_default(),
    })
}

/// Whether a `scheme://authority…` string has a path after its authority (Java's `getPath`
/// is empty otherwise, while the url crate reports `/`).
fn has_explicit_path(absolute: &str) -> bool {
    let Some((_, after_scheme)) = absolute.split_once("://") else {
        return true;
    };
    after_scheme.find(['/', '?', '#']).is_some_and(|position| after_scheme.as_bytes()[position] == b'/')
}

/// Query parameters as CAoA reads them: the query is percent-decoded once, split on `&` and
/// `=`, and each value decoded a second time with Java's `URLDecoder`.
pub fn query_parameters(raw_query: &str) -> Vec<(String, Option<String>)> {
    let decoded = percent_decode_str(raw_query).decode_utf8_lossy();
    decoded
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.find('=') {
            Some(position) if position > 0 => {
                let value = &pair[position + 1..];
                let value = (!value.is_empty()).then(|| java_url_decode(value).into_owned());
                (pair[..position].to_string(), value)
            }
            _ => (pair.to_string(), None),
        })
        .collect()
}

/// One query parameter of a request URI such as `/collect?appId=a&event_bundle_sequence_id=7`.
pub fn uri_query_parameter(uri: &str, name: &str) -> Option<String> {
    let query = uri.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    query_parameters(query).into_iter().find(|(key, _)| key == name).and_then(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_decoding_follows_java() {
        assert_eq!(java_url_decode("a+b%20c"), "a b c");
        assert_eq!(java_url_decode("caf%C3%A9"), "café");
        assert_eq!(java_url_decode("100%"), "100%");
        assert_eq!(java_url_decode("%zz+x"), "%zz+x");
        assert!(matches!(java_url_decode("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn page_urls_split_into_host_path_and_query() {
        let parts = parse_url("https://www.example.com/a%20b/c?q=abc&q=007&flag&utm_source=x%2By").unwrap();
        assert_eq!(parts.host.as_deref(), Some("www.example.com"));
        assert_eq!(parts.path, "/a b/c");
        assert_eq!(
            parts.query_map().unwrap(),
            vec![("q".to_string(), "abc,007".to_string()), ("flag".into(), "null".into()), ("utm_source".into(), "x y".into())]
        );
        assert_eq!(parts.first_value("q"), Some("abc"));
    }

    #[test]
    fn urls_without_scheme_or_path_parse_as_caoa_does() {
        let parts = parse_url("host-name-001.com").unwrap();
        assert_eq!(parts.host.as_deref(), Some("host-name-001.com"));
        assert_eq!(parts.path, "");
        assert!(parts.query_map().is_none());
        assert_eq!(parse_url("https://a.com?x=1").unwrap().path, "");
        assert_eq!(parse_url("https://a.com/").unwrap().path, "/");
        assert!(parse_url("").is_none());
    }

    #[test]
    fn request_uris_give_their_parameters() {
        let uri = "/collect?appId=uba-app&event_bundle_sequence_id=111&upload_timestamp=";
        assert_eq!(uri_query_parameter(uri, "event_bundle_sequence_id").as_deref(), Some("111"));
        assert_eq!(uri_query_parameter(uri, "upload_timestamp"), None);
        assert_eq!(uri_query_parameter(uri, "missing"), None);
        assert_eq!(uri_query_parameter("/collect", "appId"), None);
    }
}
