//! Who is calling, and may they: OIDC bearer tokens (the console sends its ID token) and the
//! roles of a configurable claim, checked per route in one table ([`required_role`]).
//!
//! Public: `/health`, `/metrics`, `/api/v1/auth/config` and the web console's files (the
//! sign-in page). Everything else under `/api/` needs a valid token. With
//! `console.oidc.enabled = false` every caller is an admin and `/api/v1/me` says auth is off.

use std::{sync::Arc, time::Duration};

use axum::{
    extract::{Request, State},
    http::{Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use clickstream_auth::{AuthError, OidcSettings, TokenValidator};
use clickstream_core::config::ConsoleOidcConfig;
use serde::Serialize;
use utoipa::ToSchema;

use crate::{ConsoleState, api::ApiError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Analyst,
    Operator,
    Admin,
}

impl Role {
    fn parse(value: &str) -> Option<Role> {
        match value.trim().to_ascii_lowercase().as_str() {
            "analyst" => Some(Role::Analyst),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// The authenticated caller, available to handlers as an extension.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Caller {
    pub subject: String,
    pub roles: Vec<Role>,
    pub auth_enabled: bool,
}

impl Caller {
    /// Roles are ranked: an admin may do what an operator may, an operator what an analyst may.
    pub fn may(&self, needed: Role) -> bool {
        self.roles.iter().any(|role| *role >= needed)
    }
}

pub fn token_validator(oidc: &ConsoleOidcConfig) -> Option<TokenValidator> {
    oidc.enabled.then(|| {
        TokenValidator::new(OidcSettings {
            issuer: oidc.issuer.clone(),
            discovery_url: oidc.discovery_url.clone(),
            audience: if oidc.audience.is_empty() { oidc.client_id.clone() } else { oidc.audience.clone() },
            cache_ttl: Duration::from_secs(oidc.jwks_cache_seconds),
            min_refetch_interval: clickstream_auth::MIN_REFETCH_INTERVAL,
        })
    })
}

/// The roles named by `claim`: an array of strings, or one string of names separated by
/// spaces or commas. A dotted claim (`realm_access.roles`) is looked up as a path when no
/// claim has that exact name. Unknown role names are ignored.
pub fn roles_of(claims: &serde_json::Map<String, serde_json::Value>, claim: &str) -> Vec<Role> {
    let value = claims.get(claim).or_else(|| {
        let mut parts = claim.split('.');
        let first = claims.get(parts.next()?)?;
        parts.try_fold(first, |value, part| value.get(part))
    });
    let names: Vec<String> = match value {
        Some(serde_json::Value::Array(items)) => items.iter().filter_map(|item| item.as_str().map(str::to_string)).collect(),
        Some(serde_json::Value::String(text)) => text.split([' ', ',']).map(str::to_string).collect(),
        _ => Vec::new(),
    };
    let mut roles: Vec<Role> = names.iter().filter_map(|name| Role::parse(name)).collect();
    roles.sort();
    roles.dedup();
    roles
}

/// The role a request needs; `None` for public routes.
pub fn required_role(method: &Method, path: &str) -> Option<Role> {
    if !path.starts_with("/api/") || path == "/api/v1/auth/config" {
        return None; // health, metrics, the web console's files
    }
    if *method == Method::GET || *method == Method::HEAD {
        return Some(Role::Analyst);
    }
    if path.ends_with("/metadata/display-names") {
        return Some(Role::Analyst); // analysts curate the names they read
    }
    let segments: Vec<&str> = path.split('/').collect();
    if matches!(segments.as_slice(), ["", "api", "v1", "apps", _, "explorations", ..]) {
        return Some(Role::Analyst); // running and saving explorations is an analyst's work
    }
    let is_project = path.strip_prefix("/api/v1/projects/").is_some_and(|rest| !rest.contains('/'));
    if *method == Method::DELETE && is_project {
        return Some(Role::Admin);
    }
    Some(Role::Operator)
}

fn refuse(status: StatusCode, message: String) -> Response {
    ApiError { status, message, fields: None }.into_response()
}

/// Authenticates and authorizes every request before its handler.
pub async fn authenticate(State(state): State<Arc<ConsoleState>>, mut request: Request, next: Next) -> Response {
    let Some(needed) = required_role(request.method(), request.uri().path()) else {
        return next.run(request).await;
    };
    let caller = match &state.token_validator {
        None => Caller { subject: "anonymous".into(), roles: vec![Role::Admin], auth_enabled: false },
        Some(validator) => {
            let Some(token) = clickstream_auth::token_from_headers(request.headers(), "") else {
                return refuse(StatusCode::UNAUTHORIZED, AuthError::MissingToken.to_string());
            };
            let claims = match validator.validate(token).await {
                Ok(claims) => claims,
                Err(error) if error.is_retryable() => return refuse(StatusCode::SERVICE_UNAVAILABLE, error.to_string()),
                Err(error) => return refuse(StatusCode::UNAUTHORIZED, error.to_string()),
            };
            let subject = claims.get("sub").and_then(|value| value.as_str()).unwrap_or_default().to_string();
            Caller { subject, roles: roles_of(&claims, &state.config.console.oidc.roles_claim), auth_enabled: true }
        }
    };
    if !caller.may(needed) {
        let message = format!("`{}` needs the {:?} role; you have {:?} (claim `{}`)", request.uri().path(), needed, caller.roles, state.config.console.oidc.roles_claim);
        return refuse(StatusCode::FORBIDDEN, message.to_lowercase());
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_route_needs_its_role() {
        assert_eq!(required_role(&Method::GET, "/health"), None);
        assert_eq!(required_role(&Method::GET, "/projects/shop"), None, "web console pages are public");
        assert_eq!(required_role(&Method::GET, "/api/v1/auth/config"), None);
        assert_eq!(required_role(&Method::GET, "/api/v1/projects"), Some(Role::Analyst));
        assert_eq!(required_role(&Method::PUT, "/api/v1/apps/web/metadata/display-names"), Some(Role::Analyst));
        assert_eq!(required_role(&Method::POST, "/api/v1/projects"), Some(Role::Operator));
        assert_eq!(required_role(&Method::DELETE, "/api/v1/apps/web"), Some(Role::Operator));
        assert_eq!(required_role(&Method::POST, "/api/v1/apps/web/explorations/run"), Some(Role::Analyst));
        assert_eq!(required_role(&Method::DELETE, "/api/v1/apps/web/explorations/e1"), Some(Role::Analyst));
        assert_eq!(required_role(&Method::DELETE, "/api/v1/apps/explorations_web"), Some(Role::Operator), "an app named like the route is still an app");
        assert_eq!(required_role(&Method::DELETE, "/api/v1/projects/shop"), Some(Role::Admin));
        assert_eq!(required_role(&Method::POST, "/api/v1/pipelines/pipeline-shop/retry"), Some(Role::Operator));
    }

    #[test]
    fn roles_come_from_arrays_strings_and_paths() {
        let claims: serde_json::Map<String, serde_json::Value> = serde_json::from_value(serde_json::json!({
            "roles": ["Operator", "viewer"], "cognito:groups": "admin analyst", "realm_access": {"roles": ["analyst"]}
        }))
        .unwrap();
        assert_eq!(roles_of(&claims, "roles"), [Role::Operator]);
        assert_eq!(roles_of(&claims, "cognito:groups"), [Role::Analyst, Role::Admin]);
        assert_eq!(roles_of(&claims, "realm_access.roles"), [Role::Analyst]);
        assert!(roles_of(&claims, "missing").is_empty());
    }
}
