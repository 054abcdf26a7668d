//! Custom enricher plugins in the chain: each batch of rows goes to the plugin as
//! [`clickstream_plugins::Event`]s, and the custom parameters it answers are set on the rows.

use std::sync::Arc;

use clickstream_plugins::{Event, LoadedPlugin, Parameter, PluginError, PluginSession, Value};

use super::{EnrichFailure, Enricher};
use crate::{
    custom_parameters::{ParameterType, ParameterValue},
    rows::EventRow,
};

/// A loaded plugin with the configuration a project registered for it.
#[derive(Clone)]
pub struct ChainPlugin {
    pub id: String,
    pub plugin: Arc<LoadedPlugin>,
    pub config: String,
}

impl std::fmt::Debug for ChainPlugin {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("ChainPlugin").field("id", &self.id).field("sha256", &self.plugin.sha256).finish()
    }
}

/// A plugin and the instance one job calls it in, batch after batch (enricher or transformer
/// alike). A failed call drops the instance, so the next batch gets a fresh one.
pub struct PluginCaller {
    pub chain_plugin: ChainPlugin,
    session: Option<PluginSession>,
}

impl PluginCaller {
    pub fn new(chain_plugin: ChainPlugin) -> PluginCaller {
        PluginCaller { chain_plugin, session: None }
    }

    /// Calls the plugin with its registered configuration, in the kept instance or a new one.
    pub fn call<T>(&mut self, call: impl FnOnce(&mut PluginSession, &str) -> Result<T, PluginError>) -> Result<T, PluginError> {
        let mut session = match self.session.take() {
            Some(session) => session,
            None => self.chain_plugin.plugin.session()?,
        };
        // `?` returns before the session is put back: a failure drops it.
        let answer = call(&mut session, &self.chain_plugin.config)?;
        self.session = Some(session);
        Ok(answer)
    }
}

/// Runs one enricher plugin over each batch.
pub struct PluginEnricher {
    caller: PluginCaller,
}

impl PluginEnricher {
    pub fn new(chain_plugin: ChainPlugin) -> PluginEnricher {
        PluginEnricher { caller: PluginCaller::new(chain_plugin) }
    }
}

impl Enricher for PluginEnricher {
    fn name(&self) -> &str {
        &self.caller.chain_plugin.id
    }

    fn enrich(&mut self, rows: &mut [EventRow<'_>]) -> Result<(), EnrichFailure> {
        if rows.is_empty() {
            return Ok(());
        }
        let events: Vec<Event> = rows.iter().map(event_of_row).collect();
        let plugin_id = self.caller.chain_plugin.id.clone();
        let failure = |reason: PluginError| EnrichFailure { enricher: plugin_id.clone(), reason: reason.to_string() };
        let enrichments = self.caller.call(|session, config| session.enrich(config, &events)).map_err(failure)?;
        for (row, enrichment) in rows.iter_mut().zip(enrichments) {
            set_parameters(row, enrichment.set_parameters).map_err(|reason| failure(PluginError::Malformed(reason)))?;
        }
        Ok(())
    }
}

/// What the plugin sees of a row.
fn event_of_row(row: &EventRow<'_>) -> Event {
    let sdk = &row.sdk;
    let attributes = sdk.attributes.as_ref();
    let owned = |text: Option<&std::borrow::Cow<'_, str>>| text.map(|text| text.to_string());
    Event {
        event_id: sdk.event_id.to_string(),
        event_name: sdk.event_name.to_string(),
        app_id: sdk.app_id.to_string(),
        platform: owned(sdk.platform.as_ref()),
        event_time_msec: row.event_time_msec,
        user_pseudo_id: sdk.user_pseudo_id.as_deref().unwrap_or_default().to_string(),
        user_id: row.user_id().map(str::to_string),
        session_id: owned(attributes.and_then(|attributes| attributes.session_id.as_ref())),
        page_url: owned(attributes.and_then(|attributes| attributes.page_url.as_ref())),
        page_referrer: owned(attributes.and_then(|attributes| attributes.page_referrer.as_ref())),
        page_title: owned(attributes.and_then(|attributes| attributes.page_title.as_ref())),
        screen_name: owned(attributes.and_then(|attributes| attributes.screen_name.as_ref())),
        user_agent: owned(row.record.ua.as_ref()),
        client_ip: row.record.first_ip().map(str::to_string),
        geo_country: row.geo.as_ref().and_then(|geo| geo.country.clone()),
        custom_parameters: row.custom_parameters.entries.iter().map(|(name, value)| Parameter { name: name.clone(), value: value_of_parameter(value) }).collect(),
    }
}

/// A custom parameter as the plugin sees it: numbers as integers when they are whole,
/// objects as their JSON text.
fn value_of_parameter(value: &ParameterValue) -> Value {
    match value.kind {
        ParameterType::String | ParameterType::Object => Value::Text(value.value.clone()),
        ParameterType::Boolean => Value::Boolean(value.value == "true"),
        ParameterType::Number => match value.value.parse::<i64>() {
            Ok(integer) => Value::Integer(integer),
            Err(_) => Value::Float(value.value.parse::<f64>().unwrap_or(f64::NAN)),
        },
    }
}

/// Sets a plugin's parameters on the row (replacing those of the same name) and rebuilds
/// `custom_parameters_json_str`. Public for the plugin benchmark's built-in counterpart.
pub fn set_parameters(row: &mut EventRow<'_>, parameters: Vec<Parameter>) -> Result<(), String> {
    if parameters.is_empty() {
        return Ok(());
    }
    for parameter in parameters {
        if parameter.name.is_empty() {
            return Err("a parameter has an empty name".into());
        }
        let value = match parameter.value {
            Value::Text(text) => ParameterValue { value: text, kind: ParameterType::String },
            Value::Integer(integer) => ParameterValue { value: integer.to_string(), kind: ParameterType::Number },
            Value::Float(float) if float.is_finite() => ParameterValue { value: crate::json_text::java_double_to_string(float), kind: ParameterType::Number },
            Value::Float(float) => return Err(format!("parameter `{}` is {float}, which JSON cannot hold", parameter.name)),
            Value::Boolean(flag) => ParameterValue { value: flag.to_string(), kind: ParameterType::Boolean },
        };
        let entries = &mut row.custom_parameters.entries;
        match entries.iter_mut().find(|(name, _)| *name == parameter.name) {
            Some((_, existing)) => *existing = value,
            None => entries.push((parameter.name, value)),
        }
    }
    row.custom_parameters_json = row.custom_parameters.json_string();
    Ok(())
}
