//! Per-field checks of what users send. Each check adds `field path → reason` to a
//! [`FieldErrors`], so one response names every problem at once.

use std::collections::BTreeMap;

use clickstream_core::{
    Config,
    config::{APP_ID_PATTERN, KNOWN_ENRICHERS, PROJECT_ID_PATTERN, SinkKind, WarehouseKind, validate_cron},
    control_model::PipelineSpec,
};

/// Invalid fields by their JSON path, e.g. `spec.processing.schedule.interval_seconds`.
pub type FieldErrors = BTreeMap<String, String>;

/// The shortest ETL interval a pipeline may ask for.
pub const MIN_ETL_INTERVAL_SECONDS: u64 = 10;
pub const MAX_NAME_LENGTH: usize = 128;
pub const MAX_DESCRIPTION_LENGTH: usize = 2048;

pub fn check_project_id(id: &str, errors: &mut FieldErrors) {
    if !PROJECT_ID_PATTERN.is_match(id) {
        errors.insert("id".into(), "must be 1–127 lowercase letters, digits or `_`, starting with a letter".into());
    }
}

pub fn check_app_id(id: &str, errors: &mut FieldErrors) {
    if !APP_ID_PATTERN.is_match(id) {
        errors.insert("id".into(), "must be 1–127 letters, digits, `_` or `-`, starting with a letter".into());
    }
}

/// A plugin id follows the app id rules (it appears in specs and URLs).
pub fn check_plugin_id(id: &str, errors: &mut FieldErrors) {
    check_app_id(id, errors);
}

pub fn check_name(name: &str, errors: &mut FieldErrors) {
    if name.trim().is_empty() {
        errors.insert("name".into(), "must not be empty".into());
    } else if name.chars().count() > MAX_NAME_LENGTH {
        errors.insert("name".into(), format!("must be at most {MAX_NAME_LENGTH} characters"));
    }
}

pub fn check_description(description: &str, errors: &mut FieldErrors) {
    if description.chars().count() > MAX_DESCRIPTION_LENGTH {
        errors.insert("description".into(), format!("must be at most {MAX_DESCRIPTION_LENGTH} characters"));
    }
}

/// What every named record (project, app, plugin) asks of its name and description.
pub fn check_name_and_description(name: &str, description: &str, errors: &mut FieldErrors) {
    check_name(name, errors);
    check_description(description, errors);
}

pub fn check_timezone(timezone: &str, errors: &mut FieldErrors) {
    if timezone.parse::<chrono_tz::Tz>().is_err() {
        errors.insert("timezone".into(), format!("`{timezone}` is not an IANA time zone such as `UTC` or `Asia/Shanghai`"));
    }
}

/// Where a plugin's module may be: an object store URL or a local file.
pub fn check_module_uri(uri: &str, errors: &mut FieldErrors) {
    let known = ["s3://", "file://", "https://"].iter().any(|scheme| uri.starts_with(scheme) && uri.len() > scheme.len());
    if !known {
        errors.insert("module_uri".into(), "must be an s3://, file:// or https:// URL of the plugin's module".into());
    }
}

/// Checks a pipeline spec; `known_plugins` are the ids of the stored custom plugins.
pub fn check_pipeline_spec(spec: &PipelineSpec, config: &Config, known_plugins: &[String], errors: &mut FieldErrors) {
    let mut error = |field: &str, reason: String| {
        errors.insert(format!("spec.{field}"), reason);
    };
    let ingestion = &spec.ingestion;
    match ingestion.sink {
        SinkKind::S3 => {
            if !(1024..=1024 * 1024 * 1024).contains(&ingestion.s3_buffer.max_bytes) {
                error("ingestion.s3_buffer.max_bytes", "must be between 1 KiB and 1 GiB".into());
            }
            if !(1..=3600).contains(&ingestion.s3_buffer.max_age_seconds) {
                error("ingestion.s3_buffer.max_age_seconds", "must be between 1 and 3600 seconds".into());
            }
        }
        SinkKind::Kafka => {
            if !(1..=10_000).contains(&ingestion.kafka.partitions) {
                error("ingestion.kafka.partitions", "must be between 1 and 10000".into());
            }
            if !ingestion.kafka.topic.is_empty() && !ingestion.kafka.topic.chars().all(|character| character.is_ascii_alphanumeric() || "._-".contains(character)) {
                error("ingestion.kafka.topic", "may only hold letters, digits, `.`, `_` and `-`".into());
            }
        }
        SinkKind::Kinesis => {
            if !(1..=500).contains(&ingestion.kinesis.shard_count) {
                error("ingestion.kinesis.shard_count", "must be between 1 and 500".into());
            }
        }
    }
    let processing = &spec.processing;
    match (&processing.schedule.interval_seconds, &processing.schedule.cron) {
        (Some(_), Some(_)) | (None, None) => error("processing.schedule", "set exactly one of `interval_seconds` and `cron`".into()),
        (Some(seconds), None) if *seconds < MIN_ETL_INTERVAL_SECONDS => {
            error("processing.schedule.interval_seconds", format!("must be at least {MIN_ETL_INTERVAL_SECONDS} seconds"));
        }
        (None, Some(cron)) => {
            if let Err(reason) = validate_cron(cron) {
                error("processing.schedule.cron", reason);
            }
        }
        _ => {}
    }
    if processing.buffer_seconds > 3600 {
        error("processing.buffer_seconds", "must be at most 3600 seconds".into());
    }
    if processing.data_freshness_hours == 0 {
        error("processing.data_freshness_hours", "must be greater than 0".into());
    }
    if processing.retention_days == 0 {
        error("processing.retention_days", "must be greater than 0".into());
    }
    let mut seen = std::collections::HashSet::new();
    for name in &processing.enrichers {
        if !KNOWN_ENRICHERS.contains(&name.as_str()) {
            error("processing.enrichers", format!("unknown enricher `{name}`; known: {}", KNOWN_ENRICHERS.join(", ")));
        } else if !seen.insert(name) {
            error("processing.enrichers", format!("enricher `{name}` is listed twice"));
        }
    }
    for plugin in &processing.plugins {
        if !known_plugins.contains(plugin) {
            error("processing.plugins", format!("no plugin `{plugin}`; create it first"));
        }
    }
    if spec.modeling.engine == WarehouseKind::Redshift
        && let Err(problem) = config.validate_redshift("spec.modeling.engine")
    {
        error("modeling.engine", format!("Redshift is not set up for this deployment: {problem}"));
    }
    if spec.modeling.athena && !config.storage.url.starts_with("s3://") {
        error("modeling.athena", "Athena reads S3: it needs storage.url = \"s3://…\"".into());
    }
    if spec.reporting.enabled && !spec.processing.enabled {
        error("reporting.enabled", "reporting reads the modeled data: enable processing too".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_errors(change: impl FnOnce(&mut PipelineSpec)) -> FieldErrors {
        let mut spec = PipelineSpec::default();
        change(&mut spec);
        let mut errors = FieldErrors::new();
        check_pipeline_spec(&spec, &Config::default(), &["known".to_string()], &mut errors);
        errors
    }

    #[test]
    fn the_default_spec_is_valid() {
        assert_eq!(spec_errors(|_| {}), FieldErrors::new());
    }

    #[test]
    fn each_invalid_field_is_named() {
        let errors = spec_errors(|spec| {
            spec.processing.schedule.interval_seconds = Some(0);
            spec.processing.enrichers.push("nope".into());
            spec.processing.plugins.push("missing".into());
            spec.processing.retention_days = 0;
        });
        let fields: Vec<&str> = errors.keys().map(String::as_str).collect();
        assert_eq!(fields, ["spec.processing.enrichers", "spec.processing.plugins", "spec.processing.retention_days", "spec.processing.schedule.interval_seconds"]);
        let errors = spec_errors(|spec| spec.processing.schedule = clickstream_core::control_model::ScheduleSpec { interval_seconds: None, cron: Some("* * *".into()) });
        assert!(errors["spec.processing.schedule.cron"].contains("3 fields"), "{errors:?}");
        let errors = spec_errors(|spec| spec.modeling.engine = WarehouseKind::Redshift);
        assert!(errors["spec.modeling.engine"].contains("Redshift is not set up"), "{errors:?}");
    }

    #[test]
    fn ids_names_and_time_zones() {
        let mut errors = FieldErrors::new();
        check_project_id("Bad Id", &mut errors);
        check_timezone("Mars/Olympus", &mut errors);
        check_name(" ", &mut errors);
        assert_eq!(errors.len(), 3, "{errors:?}");
        let mut errors = FieldErrors::new();
        check_project_id("shop_1", &mut errors);
        check_app_id("shop-web", &mut errors);
        check_timezone("Asia/Shanghai", &mut errors);
        check_name("Shop", &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
    }
}
