//! `custom_parameters` (a map of `{value, type}`) and `custom_parameters_json_str`, built from
//! the keys of an event, item or user that have no column of their own.
//!
//! As in CAoA: strings keep their text (type `string`), numbers print as Java prints them
//! (`number`), booleans as `true`/`false` (`boolean`), anything else (objects, arrays, null)
//! as compact JSON (`object`). The JSON string lists the members in Java HashMap order, see
//! [`crate::java_hash_order`]. Neither is written when there is nothing custom.

use std::borrow::Cow;

use serde_json::value::RawValue;

use crate::{
    java_hash_order::{JavaHashMapOrder, java_hash_map_from},
    json_text::{JsonKind, compact_json, java_number_text, kind_of, unescape_string, write_jackson_string},
};

/// The type names CAoA writes in `custom_parameters[…].type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParameterType {
    String,
    Number,
    Boolean,
    Object,
}

impl ParameterType {
    pub fn name(self) -> &'static str {
        match self {
            ParameterType::String => "string",
            ParameterType::Number => "number",
            ParameterType::Boolean => "boolean",
            ParameterType::Object => "object",
        }
    }
}

/// One converted value: its text and type.
#[derive(Debug, Clone, PartialEq)]
pub struct ParameterValue {
    pub value: String,
    pub kind: ParameterType,
}

impl ParameterValue {
    pub fn from_json(raw: &RawValue) -> ParameterValue {
        match kind_of(raw) {
            JsonKind::String => ParameterValue { value: unescape_string(raw).into_owned(), kind: ParameterType::String },
            JsonKind::Number => ParameterValue { value: java_number_text(raw.get()).into_owned(), kind: ParameterType::Number },
            JsonKind::Boolean => ParameterValue { value: raw.get().to_string(), kind: ParameterType::Boolean },
            JsonKind::Null | JsonKind::Object | JsonKind::Array => ParameterValue { value: compact_json(raw).into_owned(), kind: ParameterType::Object },
        }
    }

    /// Appends the value as Jackson writes it: strings quoted, booleans bare, numbers as a long
    /// when they are one, else as a double, objects as their JSON text.
    pub fn write_json(&self, out: &mut String) {
        match self.kind {
            ParameterType::String => write_jackson_string(out, &self.value),
            ParameterType::Boolean | ParameterType::Object => out.push_str(&self.value),
            ParameterType::Number => {
                if self.value.parse::<i64>().is_ok() {
                    out.push_str(&self.value);
                } else {
                    match self.value.parse::<f64>() {
                        Ok(double) => out.push_str(&crate::json_text::java_double_to_string(double)),
                        Err(_) => out.push_str(&self.value),
                    }
                }
            }
        }
    }
}

/// The custom parameters of one event or item, in CAoA's (Java HashMap) order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomParameters {
    pub entries: Vec<(String, ParameterValue)>,
}

impl CustomParameters {
    /// Builds the map from one or more groups of members (the top level, then `attributes`):
    /// each group goes through its own HashMap, then all are `putAll` into one, later groups
    /// winning on equal keys, as CAoA's parser does.
    pub fn from_groups<'a>(groups: &[&[(Cow<'a, str>, &'a RawValue)]]) -> CustomParameters {
        let mut combined: JavaHashMapOrder<ParameterValue> = JavaHashMapOrder::new();
        for members in groups {
            if members.is_empty() {
                continue;
            }
            // Jackson collects unknown keys into a HashMap; CAoA converts them into another.
            let collected = java_hash_map_from(members.iter().map(|(key, value)| (key.to_string(), *value)));
            let converted = java_hash_map_from(collected.into_entries().into_iter().map(|(key, value)| (key, ParameterValue::from_json(value))));
            combined.put_all(converted.into_entries());
        }
        CustomParameters { entries: combined.into_entries() }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `custom_parameters_json_str`; `None` when there is nothing custom.
    pub fn json_string(&self) -> Option<String> {
        if self.entries.is_empty() {
            return None;
        }
        let mut out = String::with_capacity(32 * self.entries.len());
        out.push('{');
        for (index, (key, value)) in self.entries.iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            write_jackson_string(&mut out, key);
            out.push(':');
            value.write_json(&mut out);
        }
        out.push('}');
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json_text::JsonMembers;

    #[test]
    fn values_are_typed_as_caoa_types_them() {
        let members = JsonMembers::parse(r#"{"s":"x","n":2,"d":1.50,"b":true,"z":null,"o":{ "a" : 1 }}"#).unwrap();
        let parameters = CustomParameters::from_groups(&[&members.0]);
        let find = |key: &str| parameters.entries.iter().find(|(name, _)| name == key).unwrap().1.clone();
        assert_eq!(find("s"), ParameterValue { value: "x".into(), kind: ParameterType::String });
        assert_eq!(find("n"), ParameterValue { value: "2".into(), kind: ParameterType::Number });
        assert_eq!(find("d"), ParameterValue { value: "1.5".into(), kind: ParameterType::Number });
        assert_eq!(find("b"), ParameterValue { value: "true".into(), kind: ParameterType::Boolean });
        assert_eq!(find("z"), ParameterValue { value: "null".into(), kind: ParameterType::Object });
        assert_eq!(find("o"), ParameterValue { value: r#"{"a":1}"#.into(), kind: ParameterType::Object });
        let json = parameters.json_string().unwrap();
        let reparsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(reparsed["o"]["a"], 1);
        assert_eq!(reparsed["d"], 1.5);
        assert_eq!(reparsed["z"], serde_json::Value::Null);
    }

    #[test]
    fn nothing_custom_writes_nothing() {
        let parameters = CustomParameters::from_groups(&[&[], &[]]);
        assert!(parameters.is_empty());
        assert_eq!(parameters.json_string(), None);
    }

    #[test]
    fn attributes_win_over_top_level_keys() {
        let top = JsonMembers::parse(r#"{"k":"top"}"#).unwrap();
        let attributes = JsonMembers::parse(r#"{"k":"attribute"}"#).unwrap();
        let parameters = CustomParameters::from_groups(&[&top.0, &attributes.0]);
        assert_eq!(parameters.entries.len(), 1);
        assert_eq!(parameters.entries[0].1.value, "attribute");
    }
}
