//! Shared by the worker's integration tests.

use std::path::{Path, PathBuf};

use clickstream_core::{Config, ProjectConfig};

/// The enrichers' data that local/test installs and names in the environment.
pub fn enrichment_file(variable: &str) -> PathBuf {
    std::env::var(variable).unwrap_or_else(|_| panic!("{variable} is not set: run the tests through local/test, which installs the enrichers' data")).into()
}

/// A configuration with one project (`proj`, app `app-1`, no ETL buffer) over a local object
/// store under `root`, with the installed enrichers' data.
pub fn test_config(root: &Path) -> Config {
    let mut config = Config::default();
    config.storage.url = format!("file://{}/data", root.display());
    config.etl.user_agent_regexes = enrichment_file("CLICKSTREAM_ETL__USER_AGENT_REGEXES");
    config.etl.geo_database = enrichment_file("CLICKSTREAM_ETL__GEO_DATABASE");
    config.projects.push(ProjectConfig { id: "proj".into(), apps: vec!["app-1".into()], etl_buffer_seconds: 0, ..ProjectConfig::default() });
    config
}
