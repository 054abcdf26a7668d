//! Custom enricher plugins in the chain: each batch of rows goes to the plugin as columns
//! ([`clickstream_plugins::EventBatch`]), and the parameter columns it answers are set on the
//! rows.

use std::sync::Arc;

use clickstream_plugins::{AnsweredValue, Column, ColumnValues, EventBatch, EventField, LoadedPlugin, ParameterColumn, PluginError, PluginSession, ReadFields, TextColumn};

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
        let batch = batch_of_rows(rows, &read_fields);
        let answer = self.caller.call(|session, config| session.enrich(config, &batch)).map_err(failure)?;
        set_answer(rows, &answer);
        Ok(())
    }
}

/// What the plugin sees of the rows: a column per field it reads, filled in one pass over the
/// rows (a row is large, so reading each once keeps the batch in cache).
fn batch_of_rows(rows: &[EventRow<'_>], read_fields: &ReadFields) -> EventBatch {
    let mut columns: Vec<Column> = read_fields
        .fields()
        .map(|field| {
            let values = match field {
                EventField::EventTimeMsec => ColumnValues::Integers(Vec::with_capacity(rows.len())),
                _ => ColumnValues::Text(TextColumn::with_capacity(rows.len())),
            };
            Column { field, values }
        })
        .collect();
    for row in rows {
        for column in &mut columns {
            match &mut column.values {
                ColumnValues::Integers(times) => times.push(row.event_time_msec),
                ColumnValues::Text(texts) => texts.push(text_of_row(row, column.field)),
            }
        }
    }
    EventBatch::of_columns(rows.len(), columns)
}

/// A row's value of a text field (every field but `event-time-msec`).
fn text_of_row<'r>(row: &'r EventRow<'_>, field: EventField) -> Option<&'r str> {
    let sdk = &row.sdk;
    let attributes = sdk.attributes.as_ref();
    match field {
        EventField::EventId => Some(&*sdk.event_id),
        EventField::EventName => Some(&*sdk.event_name),
        EventField::AppId => Some(&*sdk.app_id),
        EventField::Platform => sdk.platform.as_deref(),
        EventField::EventTimeMsec => None,
        EventField::UserPseudoId => Some(sdk.user_pseudo_id.as_deref().unwrap_or_default()),
        EventField::UserId => row.user_id(),
        EventField::SessionId => attributes.and_then(|attributes| attributes.session_id.as_deref()),
        EventField::PageUrl => attributes.and_then(|attributes| attributes.page_url.as_deref()),
        EventField::PageReferrer => attributes.and_then(|attributes| attributes.page_referrer.as_deref()),
        EventField::PageTitle => attributes.and_then(|attributes| attributes.page_title.as_deref()),
        EventField::ScreenName => attributes.and_then(|attributes| attributes.screen_name.as_deref()),
        EventField::UserAgent => row.record.ua.as_deref(),
        EventField::ClientIp => row.record.first_ip(),
        EventField::GeoCountry => row.geo.as_ref().and_then(|geo| geo.country.as_deref()),
        EventField::CustomParameters => row.custom_parameters_json.as_deref(),
    }
}

/// Sets a checked answer's parameters on the rows, row by row (each column's events ascend,
/// so one cursor per column walks it beside the rows, and each row is visited once), and
/// rebuilds the `custom_parameters_json_str` of each row that got one. Where two columns set
/// the same name on a row, the later one wins. Columns without events are skipped, and
/// `check_answer` caps how many columns an answer may have, so the work stays in proportion
/// to the batch whatever the plugin answers.
fn set_answer(rows: &mut [EventRow<'_>], answer: &[ParameterColumn]) {
    let mut columns: Vec<_> = answer.iter().filter(|column| !column.events.is_empty()).map(|column| (column.name.as_str(), column.entries().peekable())).collect();
    for (index, row) in rows.iter_mut().enumerate() {
        let mut changed = false;
        for (name, entries) in &mut columns {
            if let Some((_, value)) = entries.next_if(|(event, _)| *event == index) {
                set_custom_parameter(row, name, parameter_value(value));
                changed = true;
            }
        }
        if changed {
            refresh_custom_parameters_json(row);
        }
    }
}

/// An answered value as the row keeps it (CAoA's types: string, number, boolean).
fn parameter_value(value: AnsweredValue<'_>) -> ParameterValue {
    match value {
        AnsweredValue::Text(text) => ParameterValue { value: text.to_string(), kind: ParameterType::String },
        AnsweredValue::Integer(integer) => ParameterValue { value: integer.to_string(), kind: ParameterType::Number },
        // Checked finite by the host (JSON holds no NaN).
        AnsweredValue::Float(float) => ParameterValue { value: crate::json_text::java_double_to_string(float), kind: ParameterType::Number },
        AnsweredValue::Boolean(flag) => ParameterValue { value: flag.to_string(), kind: ParameterType::Boolean },
    }
}

/// Sets one custom parameter on the row: added, or replacing the one of the same name. Call
/// [`refresh_custom_parameters_json`] after the row's last one. Public for the plugin
/// benchmark's built-in counterpart, which sets parameters the same way.
pub fn set_custom_parameter(row: &mut EventRow<'_>, name: &str, value: ParameterValue) {
    let entries = &mut row.custom_parameters.entries;
    match entries.iter_mut().find(|(existing_name, _)| existing_name == name) {
        Some((_, existing)) => *existing = value,
        None => entries.push((name.to_string(), value)),
    }
}

/// Rebuilds the row's `custom_parameters_json_str` after its parameters changed.
pub fn refresh_custom_parameters_json(row: &mut EventRow<'_>) {
    row.custom_parameters_json = row.custom_parameters.json_string();
}
