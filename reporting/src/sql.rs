//! What differs between the two warehouses' SQL, in one place: placeholders, time zones,
//! date functions, JSON access to parameters, numeric casts. The builders (`crate::build`)
//! write everything else once for both.

use serde::{Deserialize, Serialize};

use crate::query::Granularity;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    /// The local warehouse (embedded, the dev stack).
    DuckDb,
    /// Production, through the Redshift Data API (named parameters `:p1`, `:p2`, …).
    Redshift,
}

/// A value bound to a placeholder. The Redshift Data API takes every value as text and casts
/// it where it is used; DuckDB binds it with its type.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum SqlValue {
    Text(String),
    Integer(i64),
    Float(f64),
}

impl SqlValue {
    /// The text the Redshift Data API sends for this value.
    pub fn as_text(&self) -> String {
        match self {
            SqlValue::Text(text) => text.clone(),
            SqlValue::Integer(number) => number.to_string(),
            SqlValue::Float(number) => number.to_string(),
        }
    }
}

impl From<&str> for SqlValue {
    fn from(text: &str) -> Self {
        SqlValue::Text(text.to_string())
    }
}

impl From<&String> for SqlValue {
    fn from(text: &String) -> Self {
        SqlValue::Text(text.clone())
    }
}

impl From<i64> for SqlValue {
    fn from(number: i64) -> Self {
        SqlValue::Integer(number)
    }
}

impl From<f64> for SqlValue {
    fn from(number: f64) -> Self {
        SqlValue::Float(number)
    }
}

/// A statement ready to run: SQL text in which every user value is a placeholder, and the
/// values in placeholder order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Statement {
    pub sql: String,
    pub parameters: Vec<SqlValue>,
}

/// Quotes an identifier (a schema named after an app id may hold `-`).
pub fn quote_identifier(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// Collects the bound values of one statement and hands out their placeholders.
#[derive(Debug)]
pub struct Binder {
    pub dialect: Dialect,
    values: Vec<SqlValue>,
}

impl Binder {
    pub fn new(dialect: Dialect) -> Binder {
        Binder { dialect, values: Vec::new() }
    }

    /// Binds a value and returns its placeholder (`$n` for DuckDB, `:pn` for Redshift).
    pub fn bind(&mut self, value: impl Into<SqlValue>) -> String {
        self.values.push(value.into());
        let position = self.values.len();
        match self.dialect {
            Dialect::DuckDb => format!("${position}"),
            Dialect::Redshift => format!(":p{position}"),
        }
    }

    /// Binds a text value typed as text (a placeholder alone in a SELECT list has no type
    /// DuckDB could infer).
    pub fn bind_text(&mut self, text: &str) -> String {
        let placeholder = self.bind(text);
        format!("CAST({placeholder} AS {})", self.dialect.text_type())
    }

    /// `(p1, p2, …)` for an IN list.
    pub fn bind_list(&mut self, texts: &[String]) -> String {
        let placeholders: Vec<String> = texts.iter().map(|text| self.bind(text)).collect();
        format!("({})", placeholders.join(", "))
    }

    pub fn finish(self, sql: String) -> Statement {
        Statement { sql, parameters: self.values }
    }
}

impl Dialect {
    /// The event time in the app's time zone as a timestamp, from `event_time_msec`. `zone` is
    /// an IANA name already checked against chrono-tz's list (so it is safe as a literal).
    pub fn local_time(self, millis: &str, zone: &str) -> String {
        match (self, zone) {
            (Dialect::DuckDb, "UTC") => format!("epoch_ms({millis})"),
            (Dialect::DuckDb, zone) => format!("timezone('{zone}', to_timestamp({millis} / 1000.0))"),
            (Dialect::Redshift, "UTC") => format!("(TIMESTAMP 'epoch' + {millis} / 1000 * INTERVAL '1 second')"),
            (Dialect::Redshift, zone) => format!("CONVERT_TIMEZONE('UTC', '{zone}', TIMESTAMP 'epoch' + {millis} / 1000 * INTERVAL '1 second')"),
        }
    }

    /// The first day of the period holding a timestamp or date, as a DATE.
    pub fn period_start(self, granularity: Granularity, time: &str) -> String {
        let unit = match granularity {
            Granularity::Day => "day",
            Granularity::Week => "week",
            Granularity::Month => "month",
        };
        format!("CAST(DATE_TRUNC('{unit}', {time}) AS DATE)")
    }

    /// How many periods lie between two period starts (DATE).
    pub fn periods_between(self, granularity: Granularity, earlier: &str, later: &str) -> String {
        let (unit, divisor) = match granularity {
            Granularity::Day => ("day", 1),
            Granularity::Week => ("day", 7),
            Granularity::Month => ("month", 1),
        };
        let difference = match self {
            Dialect::DuckDb => format!("date_diff('{unit}', {earlier}, {later})"),
            Dialect::Redshift => format!("DATEDIFF({unit}, {earlier}, {later})"),
        };
        if divisor == 1 { difference } else { format!("({difference} / {divisor})") }
    }

    /// A DATE as `YYYY-MM-DD` text.
    pub fn date_text(self, date: &str) -> String {
        match self {
            Dialect::DuckDb => format!("strftime({date}, '%Y-%m-%d')"),
            Dialect::Redshift => format!("TO_CHAR({date}, 'YYYY-MM-DD')"),
        }
    }

    /// A timestamp's `HH:MM`.
    pub fn minute_text(self, time: &str) -> String {
        match self {
            Dialect::DuckDb => format!("strftime({time}, '%H:%M')"),
            Dialect::Redshift => format!("TO_CHAR({time}, 'HH24:MI')"),
        }
    }

    /// A custom parameter of the event (`e` is `event_v2`) as text.
    pub fn event_parameter(self, placeholder: &str) -> String {
        match self {
            Dialect::DuckDb => format!("e.custom_parameters[{placeholder}].value"),
            Dialect::Redshift => format!("JSON_EXTRACT_PATH_TEXT(e.custom_parameters_json_str, {placeholder})"),
        }
    }

    /// A user attribute (`u` is `user_v2`) as text.
    pub fn user_attribute(self, placeholder: &str) -> String {
        match self {
            Dialect::DuckDb => format!("u.user_properties[{placeholder}].value"),
            Dialect::Redshift => format!("JSON_EXTRACT_PATH_TEXT(u.user_properties_json_str, {placeholder}, 'value')"),
        }
    }

    /// Text as a number; text that is not a number gives NULL (never an error mid-query).
    pub fn number_or_null(self, text: &str) -> String {
        match self {
            Dialect::DuckDb => format!("TRY_CAST({text} AS DOUBLE)"),
            Dialect::Redshift => format!("CASE WHEN {text} ~ '^[[:space:]]*[-+]?[0-9]+([.][0-9]+)?([eE][-+]?[0-9]+)?[[:space:]]*$' THEN CAST({text} AS DOUBLE PRECISION) END"),
        }
    }

    /// Text of any length (Redshift's bare VARCHAR holds 256 bytes).
    pub fn text_type(self) -> &'static str {
        match self {
            Dialect::DuckDb => "VARCHAR",
            Dialect::Redshift => "VARCHAR(65535)",
        }
    }

    pub fn float_type(self) -> &'static str {
        match self {
            Dialect::DuckDb => "DOUBLE",
            Dialect::Redshift => "DOUBLE PRECISION",
        }
    }

    /// A bound date (text `YYYY-MM-DD`) as a DATE.
    pub fn date_parameter(self, placeholder: &str) -> String {
        format!("CAST({placeholder} AS DATE)")
    }
}
