//! CORS for the web SDK: browsers on allowed origins may post with credentials.
//!
//! Origins are configured exactly (`https://shop.example.com`) or with `*` wildcards that match
//! within the origin (`http://localhost:*`, `https://*.example.com`). A preflight from an allowed
//! origin gets 204 with the allowance; one from any other origin gets 403. Responses to allowed
//! origins carry `Access-Control-Allow-Origin` (the origin itself, as credentials require).

use std::sync::Arc;

use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

#[derive(Debug, Clone)]
pub struct AllowedOrigins {
    patterns: Vec<String>,
}

impl AllowedOrigins {
    pub fn new(patterns: &[String]) -> AllowedOrigins {
        AllowedOrigins { patterns: patterns.to_vec() }
    }

    pub fn allows(&self, origin: &str) -> bool {
        self.patterns.iter().any(|pattern| wildcard_match(pattern.as_bytes(), origin.as_bytes()))
    }
}

/// `*` matches any run of characters except `/` (an origin has no path; this keeps a wildcard
/// from reaching across the scheme separator).
fn wildcard_match(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).take_while(|&skip| skip == 0 || text[skip - 1] != b'/').any(|skip| wildcard_match(rest, &text[skip..])),
        Some((first, rest)) => text.first() == Some(first) && wildcard_match(rest, &text[1..]),
    }
}

pub async fn cors(State(allowed): State<Arc<AllowedOrigins>>, request: Request, next: Next) -> Response {
    let origin = request.headers().get(header::ORIGIN).and_then(|value| value.to_str().ok()).map(str::to_string);
    let Some(origin) = origin else {
        return next.run(request).await; // not a browser cross-origin request
    };
    let is_allowed = allowed.allows(&origin);
    if request.method() == Method::OPTIONS {
        if !is_allowed {
            metrics::counter!("clickstream_ingest_requests_total", "status" => "403", "reason" => "origin_not_allowed").increment(1);
            return (StatusCode::FORBIDDEN, format!("origin {origin} is not allowed")).into_response();
        }
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::NO_CONTENT;
        let requested_headers = request.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS).cloned();
        add_allowance(response.headers_mut(), &origin);
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST, GET, OPTIONS"));
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested_headers.unwrap_or(HeaderValue::from_static("content-type")));
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
        return response;
    }
    let mut response = next.run(request).await;
    if is_allowed {
        add_allowance(response.headers_mut(), &origin);
    }
    response
}

fn add_allowance(headers: &mut HeaderMap, origin: &str) {
    if let Ok(value) = HeaderValue::from_str(origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        headers.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_exactly_or_by_wildcard() {
        let allowed = AllowedOrigins::new(&["http://localhost:*".into(), "https://*.example.com".into(), "https://exact.org".into()]);
        assert!(allowed.allows("http://localhost:5173"));
        assert!(allowed.allows("https://shop.example.com"));
        assert!(allowed.allows("https://exact.org"));
        assert!(!allowed.allows("https://exact.org.evil.com"));
        assert!(!allowed.allows("http://localhost.evil.com/x:1"));
        assert!(!allowed.allows("https://example.com.evil.net"));
        assert!(!allowed.allows("http://shop.example.com"));
    }
}
