//! Custom enricher plugins in the chain: each batch of rows goes to the plugin as
//! [`clickstream_plugins::Event`]s, and the custom parameters it answers are set on the rows.

use std::sync::Arc;

use clickstream_plugins::{Event, EventField, LoadedPlugin, Parameter, PluginError, PluginSession, ReadFields, Value};

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
    /// The fields the plugin declared it reads, asked once per job (its configuration does not
    /// change within a job).
    read_fields: Option<ReadFields>,
}

impl PluginEnricher {
    pub fn new(chain_plugin: ChainPlugin) -> PluginEnricher {
        PluginEnricher { caller: PluginCaller::new(chain_plugin), read_fields: None }
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
        let plugin_id = self.caller.chain_plugin.id.clone();
        let failure = |reason: PluginError| EnrichFailure { enricher: plugin_id.clone(), reason: reason.to_string() };
        let read_fields = match self.read_fields {
            Some(read_fields) => read_fields,
            None => {
                let read_fields = self.caller.call(|session, config| session.reads(config)).map_err(failure)?;
                *self.read_fields.insert(read_fields)
            }
        };
        let events: Vec<Event> = rows.iter().map(|row| event_of_row(row, &read_fields)).collect();
        let enrichments = self.caller.call(|session, config| session.enrich(config, &events)).map_err(failure)?;
        for (row, enrichment) in rows.iter_mut().zip(enrichments) {
            set_parameters(row, enrichment.set_parameters).map_err(|reason| failure(PluginError::Malformed(reason)))?;
        }
        Ok(())
    }
}

/// What the plugin sees of a row: the fields it reads, the others `none`.
fn event_of_row(row: &EventRow<'_>, read_fields: &ReadFields) -> Event {
    let sdk = &row.sdk;
    let attributes = sdk.attributes.as_ref();
    let reads = |field: EventField| read_fields.contains(field);
    let optional = |field: EventField, value: Option<&str>| if reads(field) { value.map(str::to_string) } else { None };
    let attribute = |field: EventField, pick: for<'a> fn(&'a crate::sdk_event::SdkAttributes<'a>) -> Option<&'a std::borrow::Cow<'a, str>>| {
        optional(field, attributes.and_then(pick).map(|value| value.as_ref()))
    };
    Event {
        event_id: optional(EventField::EventId, Some(&sdk.event_id)),
        event_name: optional(EventField::EventName, Some(&sdk.event_name)),
        app_id: optional(EventField::AppId, Some(&sdk.app_id)),
        platform: optional(EventField::Platform, sdk.platform.as_deref()),
        event_time_msec: reads(EventField::EventTimeMsec).then_some(row.event_time_msec),
        user_pseudo_id: optional(EventField::UserPseudoId, Some(sdk.user_pseudo_id.as_deref().unwrap_or_default())),
        user_id: optional(EventField::UserId, row.user_id()),
        session_id: attribute(EventField::SessionId, |attributes| attributes.session_id.as_ref()),
        page_url: attribute(EventField::PageUrl, |attributes| attributes.page_url.as_ref()),
        page_referrer: attribute(EventField::PageReferrer, |attributes| attributes.page_referrer.as_ref()),
        page_title: attribute(EventField::PageTitle, |attributes| attributes.page_title.as_ref()),
        screen_name: attribute(EventField::ScreenName, |attributes| attributes.screen_name.as_ref()),
        user_agent: optional(EventField::UserAgent, row.record.ua.as_deref()),
        client_ip: optional(EventField::ClientIp, row.record.first_ip()),
        geo_country: optional(EventField::GeoCountry, row.geo.as_ref().and_then(|geo| geo.country.as_deref())),
        custom_parameters: reads(EventField::CustomParameters)
            .then(|| row.custom_parameters.entries.iter().map(|(name, value)| Parameter { name: name.clone(), value: value_of_parameter(value) }).collect()),
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
