//! Per-field checks of what users send. Each check adds `field path → reason` to a
//! [`FieldErrors`], so one response names every problem at once.

use std::collections::BTreeMap;

use clickstream_core::{
    Config,
    config::{APP_ID_PATTERN, KNOWN_ENRICHERS, PROJECT_ID_PATTERN, ProvisionerKind, SinkKind, WarehouseKind, validate_cron},
    control_model::{PipelineSpec, Plugin, PluginKind},
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
    // Empty until a module is uploaded (the upload sets the object-store key itself); a
    // file:// path is for deployments that ship their plugins on the worker's disk.
    let acceptable = uri.is_empty() || uri.strip_prefix("file://").is_some_and(|path| path.starts_with('/') && path.len() > 1);
    if !acceptable {
        errors.insert("module_uri".into(), "upload the module (PUT /api/v1/plugins/{id}/module), or give a file:///absolute/path.wasm on the workers".into());
    }
}

/// Checks a pipeline spec; `known_plugins` are the stored custom plugins.
pub fn check_pipeline_spec(spec: &PipelineSpec, config: &Config, known_plugins: &[Plugin], errors: &mut FieldErrors) {
    let mut error = |field: &str, reason: String| {
        errors.insert(format!("spec.{field}"), reason);
    };
    let ingestion = &spec.ingestion;
    // Every sink: the collector's raw objects (sink `s3`) or the bridge's (`kafka`, `kinesis`).
    if !(1024..=1024 * 1024 * 1024).contains(&ingestion.s3_buffer.max_bytes) {
        error("ingestion.s3_buffer.max_bytes", "must be between 1 KiB and 1 GiB".into());
    }
    if !(1..=3600).contains(&ingestion.s3_buffer.max_age_seconds) {
        error("ingestion.s3_buffer.max_age_seconds", "must be between 1 and 3600 seconds".into());
    }
    match ingestion.sink {
        SinkKind::S3 => {}
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
    for (index, plugin_id) in processing.plugins.iter().enumerate() {
        let Some(plugin) = known_plugins.iter().find(|plugin| plugin.id == *plugin_id) else {
            error("processing.plugins", format!("no plugin `{plugin_id}`; create it first"));
            continue;
        };
        if plugin.kind != PluginKind::Enrichment {
            error("processing.plugins", format!("plugin `{plugin_id}` is a transformer; the enrichment chain takes enrichment plugins"));
        } else if plugin.module_uri.is_empty() {
            error("processing.plugins", format!("plugin `{plugin_id}` has no module yet; upload it first"));
        } else if processing.plugins[..index].contains(plugin_id) {
            error("processing.plugins", format!("plugin `{plugin_id}` is listed twice"));
        }
    }
    if let Some(transformer_id) = &processing.transformer {
        match known_plugins.iter().find(|plugin| plugin.id == *transformer_id) {
            None => error("processing.transformer", format!("no plugin `{transformer_id}`; create it first")),
            Some(plugin) if plugin.kind != PluginKind::Transformer => error("processing.transformer", format!("plugin `{transformer_id}` is an enrichment plugin, not a transformer")),
            Some(plugin) if plugin.module_uri.is_empty() => error("processing.transformer", format!("plugin `{transformer_id}` has no module yet; upload it first")),
            Some(_) => {}
        }
    }
    // Pipelines deployed with CloudFormation have a bucket of their own, and their modeling
    // stack makes the COPY role; local ones load from this process's storage.
    let deployed_with_cloudformation = config.control.provisioner == ProvisionerKind::Cloudformation;
    let redshift_problem = match deployed_with_cloudformation {
        true => config.validate_redshift_target().err(),
        false => config.validate_redshift("spec.modeling.engine").err(),
    };
    if spec.modeling.engine == WarehouseKind::Redshift
        && let Some(problem) = redshift_problem
    {
        error("modeling.engine", format!("Redshift is not set up for this deployment: {problem}"));
    }
    // A deployed pipeline's workers read the uploaded modules from the control plane's bucket.
    let chooses_plugins = !processing.plugins.is_empty() || processing.transformer.is_some();
    if chooses_plugins && deployed_with_cloudformation && !config.storage.url.starts_with("s3://") {
        let field = if processing.plugins.is_empty() { "processing.transformer" } else { "processing.plugins" };
        error(field, format!("deployed pipelines read plugin modules from the control plane's storage, which must be on S3 (storage.url = \"s3://…\", not {})", config.storage.url));
    }
    if spec.modeling.athena && !deployed_with_cloudformation && !config.storage.url.starts_with("s3://") {
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
        check_pipeline_spec(&spec, &Config::default(), &stored_plugins(), &mut errors);
        errors
    }

    /// An uploaded enricher, one with no module yet, and a transformer.
    fn stored_plugins() -> Vec<Plugin> {
        let plugin = |id: &str, kind: PluginKind, module_uri: &str| Plugin {
            id: id.into(),
            name: id.into(),
            description: String::new(),
            kind,
            module_uri: module_uri.into(),
            module_sha256: String::new(),
            config: String::new(),
            built_in: false,
            stamp: Default::default(),
        };
        vec![plugin("known", PluginKind::Enrichment, "_plugins/known/ab.wasm"), plugin("empty", PluginKind::Enrichment, ""), plugin("reader", PluginKind::Transformer, "_plugins/reader/cd.wasm")]
    }

    #[test]
    fn the_chain_takes_uploaded_enrichment_plugins_once() {
        assert_eq!(spec_errors(|spec| spec.processing.plugins = vec!["known".into()]), FieldErrors::new());
        for (chosen, expected) in [
            (vec!["missing"], "no plugin `missing`; create it first"),
            (vec!["empty"], "plugin `empty` has no module yet; upload it first"),
            (vec!["reader"], "plugin `reader` is a transformer; the enrichment chain takes enrichment plugins"),
            (vec!["known", "known"], "plugin `known` is listed twice"),
        ] {
            let errors = spec_errors(|spec| spec.processing.plugins = chosen.iter().map(|id| id.to_string()).collect());
            assert_eq!(errors.get("spec.processing.plugins").map(String::as_str), Some(expected));
        }
        assert_eq!(spec_errors(|spec| spec.processing.transformer = Some("reader".into())), FieldErrors::new());
        for (chosen, expected) in [("missing", "no plugin `missing`; create it first"), ("known", "plugin `known` is an enrichment plugin, not a transformer")] {
            let errors = spec_errors(|spec| spec.processing.transformer = Some(chosen.into()));
            assert_eq!(errors.get("spec.processing.transformer").map(String::as_str), Some(expected));
        }
    }

    #[test]
    fn the_raw_object_buffer_is_checked_for_every_sink() {
        for sink in [SinkKind::S3, SinkKind::Kafka, SinkKind::Kinesis] {
            let errors = spec_errors(|spec| {
                spec.ingestion.sink = sink;
                spec.ingestion.s3_buffer.max_bytes = 0;
                spec.ingestion.s3_buffer.max_age_seconds = 0;
            });
            let fields: Vec<&str> = errors.keys().map(String::as_str).collect();
            assert_eq!(fields, ["spec.ingestion.s3_buffer.max_age_seconds", "spec.ingestion.s3_buffer.max_bytes"], "{sink:?}");
        }
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

    /// With CloudFormation a Redshift pipeline needs only the workgroup (or cluster) and the
    /// database: its stacks make the bucket and the COPY role. Locally the storage must be S3
    /// and the COPY role given.
    #[test]
    fn redshift_pipelines_need_what_their_provisioner_does_not_make() {
        let check = |provisioner: ProvisionerKind, workgroup: &str| {
            let mut config = Config::default();
            config.control.provisioner = provisioner;
            config.warehouse.redshift.workgroup_name = workgroup.into();
            config.warehouse.redshift.database = "dev".into();
            let mut spec = PipelineSpec::default();
            spec.modeling.engine = WarehouseKind::Redshift;
            let mut errors = FieldErrors::new();
            check_pipeline_spec(&spec, &config, &stored_plugins(), &mut errors);
            errors.get("spec.modeling.engine").cloned()
        };
        assert_eq!(check(ProvisionerKind::Cloudformation, "clickstream"), None);
        assert!(check(ProvisionerKind::Cloudformation, "").is_some_and(|error| error.contains("workgroup_name")));
        assert!(check(ProvisionerKind::Local, "clickstream").is_some_and(|error| error.contains("s3://")));
    }

    /// A deployed pipeline's workers read the modules from the control plane's bucket; a local
    /// one from the same storage as the console.
    #[test]
    fn deployed_pipelines_with_plugins_need_the_control_planes_storage_on_s3() {
        let check = |provisioner: ProvisionerKind, storage_url: &str, plugins: &[&str], transformer: Option<&str>| {
            let mut config = Config::default();
            config.control.provisioner = provisioner;
            config.storage.url = storage_url.into();
            let mut spec = PipelineSpec::default();
            spec.processing.plugins = plugins.iter().map(|id| id.to_string()).collect();
            spec.processing.transformer = transformer.map(str::to_string);
            let mut errors = FieldErrors::new();
            check_pipeline_spec(&spec, &config, &stored_plugins(), &mut errors);
            errors
        };
        let errors = check(ProvisionerKind::Cloudformation, "file:///var/lib/clickstream", &["known"], None);
        assert!(errors.get("spec.processing.plugins").is_some_and(|error| error.contains("must be on S3")), "{errors:?}");
        let errors = check(ProvisionerKind::Cloudformation, "file:///var/lib/clickstream", &[], Some("reader"));
        assert!(errors.get("spec.processing.transformer").is_some_and(|error| error.contains("must be on S3")), "{errors:?}");
        assert_eq!(check(ProvisionerKind::Cloudformation, "s3://control-bucket", &["known"], Some("reader")), FieldErrors::new());
        assert_eq!(check(ProvisionerKind::Local, "file:///var/lib/clickstream", &["known"], Some("reader")), FieldErrors::new());
        assert_eq!(check(ProvisionerKind::Cloudformation, "file:///var/lib/clickstream", &[], None), FieldErrors::new());
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
