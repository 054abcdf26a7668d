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

/// Runs one plugin over each batch, in one instance until a batch fails.
pub struct PluginEnricher {
    chain_plugin: ChainPlugin,
    session: Option<PluginSession>,
}

impl PluginEnricher {
    pub fn new(chain_plugin: ChainPlugin) -> PluginEnricher {
        PluginEnricher { chain_plugin, session: None }
    }
}

impl Enricher for PluginEnricher {
    fn name(&self) -> &str {
        &self.chain_plugin.id
    }

    fn enrich(&mut self, rows: &mut [EventRow<'_>]) -> Result<(), EnrichFailure> {
        if rows.is_empty() {
            return Ok(());
        }
        let events: Vec<Event> = rows.iter().map(event_of_row).collect();
        let plugin_id = self.chain_plugin.id.clone();
        let failure = |reason: PluginError| EnrichFailure { enricher: plugin_id.clone(), reason: reason.to_string() };
        let mut session = match self.session.take() {
            Some(session) => session,
            None => self.chain_plugin.plugin.session().map_err(failure)?,
        };
        // A failed call drops the session (`?` before it is put back): the next batch gets a
        // fresh instance.
        let enrichments = session.enrich(&self.chain_plugin.config, &events).map_err(failure)?;
        self.session = Some(session);
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
