//! Reading SDK JSON values the way CAoA's parser reads them, without building a JSON tree.
//!
//! Events are parsed into members whose values stay as borrowed [`RawValue`] text; each known
//! key is then read with the coercion CAoA applies to it (strings accept numbers, "safe"
//! numbers turn bad input into null), and unknown keys keep their text for
//! `custom_parameters`. Strings without escapes are borrowed from the request body, so the
//! common case allocates nothing per field.
//!
//! CAoA wrote its JSON columns with Jackson (Java), so numbers are printed the way Java prints
//! them and strings escaped the way Jackson escapes them; [`java_number_text`] and
//! [`write_jackson_string`] reproduce that, keeping our files byte-identical to CAoA's.

use std::{borrow::Cow, fmt};

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// The members of a JSON object in document order, values unparsed.
#[derive(Debug, Default)]
pub struct JsonMembers<'a>(pub Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for JsonMembers<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = JsonMembers<'de>;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some(key) = map.next_key::<MemberName<'de>>()? {
                    members.push((key.0, map.next_value::<&'de RawValue>()?));
                }
                Ok(JsonMembers(members))
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

/// A member name, borrowed from the input unless it contains escapes.
pub struct MemberName<'a>(pub Cow<'a, str>);

impl<'de> Deserialize<'de> for MemberName<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = MemberName<'de>;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, value: &'de str) -> Result<Self::Value, E> {
                Ok(MemberName(Cow::Borrowed(value)))
            }
            fn visit_str<E>(self, value: &str) -> Result<Self::Value, E> {
                Ok(MemberName(Cow::Owned(value.to_string())))
            }
            fn visit_string<E>(self, value: String) -> Result<Self::Value, E> {
                Ok(MemberName(Cow::Owned(value)))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

impl<'a> JsonMembers<'a> {
    /// Parses the text of a JSON object.
    pub fn parse(text: &'a str) -> Result<JsonMembers<'a>, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// What kind of JSON value a raw value is, read from its first character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonKind {
    String,
    Number,
    Boolean,
    Null,
    Object,
    Array,
}

pub fn kind_of(raw: &RawValue) -> JsonKind {
    match raw.get().as_bytes().first() {
        Some(b'"') => JsonKind::String,
        Some(b'{') => JsonKind::Object,
        Some(b'[') => JsonKind::Array,
        Some(b't' | b'f') => JsonKind::Boolean,
        Some(b'n') => JsonKind::Null,
        _ => JsonKind::Number,
    }
}

/// The content of a JSON string token, borrowed when it has no escapes.
pub fn unescape_string(raw: &RawValue) -> Cow<'_, str> {
    let text = raw.get();
    let inner = &text[1..text.len() - 1];
    if !inner.contains('\\') {
        return Cow::Borrowed(inner);
    }
    // The parser already validated the token, so this cannot fail.
    Cow::Owned(serde_json::from_str::<String>(text).unwrap_or_default())
}

/// A field of a JSON type CAoA refuses for it: the event is quarantined with this reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}` {problem}")]
pub struct FieldTypeError {
    pub field: String,
    pub problem: &'static str,
}

impl FieldTypeError {
    pub fn new(field: &str, problem: &'static str) -> FieldTypeError {
        FieldTypeError { field: field.to_string(), problem }
    }
}

/// The token text of a scalar with a string's quotes removed.
fn scalar_text(raw: &RawValue) -> Option<Cow<'_, str>> {
    match kind_of(raw) {
        JsonKind::String => Some(unescape_string(raw)),
        JsonKind::Number | JsonKind::Boolean => Some(Cow::Borrowed(raw.get())),
        _ => None,
    }
}

/// A millisecond count: integers, numeric strings, and decimals (truncated), as Jackson reads
/// a Java `long`. Text that is no number reads as null (CAoA would quarantine the event; the
/// rest of the event is worth keeping).
pub fn lenient_i64(raw: &RawValue) -> Option<i64> {
    let text = scalar_text(raw)?;
    let text = text.trim();
    if let Ok(value) = text.parse::<i64>() {
        return Some(value);
    }
    let value = text.parse::<f64>().ok()?;
    value.is_finite().then_some(value.trunc() as i64)
}

/// The text of a JSON value with the whitespace between tokens removed (Jackson writes nested
/// objects compactly and in their original member order).
pub fn compact_json(raw: &RawValue) -> Cow<'_, str> {
    let text = raw.get();
    if !text.bytes().any(|byte| byte.is_ascii_whitespace()) {
        return Cow::Borrowed(text);
    }
    let mut compact = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for character in text.chars() {
        if in_string {
            compact.push(character);
            if escaped {
                escaped = false;
            } else if character == '\\' {
                escaped = true;
            } else if character == '"' {
                in_string = false;
            }
            continue;
        }
        if character == '"' {
            in_string = true;
        }
        if !character.is_ascii_whitespace() {
            compact.push(character);
        }
    }
    Cow::Owned(compact)
}

/// How Java prints a JSON number token Jackson read: integers as written, decimals as
/// `Double.toString` prints them (`1.5`, `1000.0`, `1.0E10`).
pub fn java_number_text(token: &str) -> Cow<'_, str> {
    if !token.bytes().any(|byte| matches!(byte, b'.' | b'e' | b'E')) {
        return Cow::Borrowed(token);
    }
    match token.parse::<f64>() {
        Ok(value) => Cow::Owned(java_double_to_string(value)),
        Err(_) => Cow::Borrowed(token),
    }
}

/// Java's `Double.toString`: plain notation for 10⁻³ ≤ |x| < 10⁷ (always with a fraction
/// digit), otherwise `d.dddE±n`. Digits are the shortest that round-trip.
pub fn java_double_to_string(value: f64) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    let sign = if value.is_sign_negative() { "-" } else { "" };
    if value == 0.0 {
        return format!("{sign}0.0");
    }
    let scientific = format!("{:e}", value.abs());
    let (mantissa, exponent) = scientific.split_once('e').expect("{:e} always has an exponent");
    let exponent: i32 = exponent.parse().expect("{:e} prints an integer exponent");
    let digits: String = mantissa.chars().filter(|character| *character != '.').collect();
    if (-3..7).contains(&exponent) {
        if exponent < 0 {
            let zeros = "0".repeat((-exponent - 1) as usize);
            return format!("{sign}0.{zeros}{digits}");
        }
        let point = exponent as usize + 1;
        if digits.len() <= point {
            let zeros = "0".repeat(point - digits.len());
            return format!("{sign}{digits}{zeros}.0");
        }
        return format!("{sign}{}.{}", &digits[..point], &digits[point..]);
    }
    let fraction = if digits.len() > 1 { &digits[1..] } else { "0" };
    format!("{sign}{}.{fraction}E{exponent}", &digits[..1])
}

/// Appends `text` as a JSON string the way Jackson escapes it: `"` and `\`, the short forms
/// of control characters, other control characters as `\u00XX` with upper-case hex.
pub fn write_jackson_string(out: &mut String, text: &str) {
    out.push('"');
    for character in text.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0C}' => out.push_str("\\f"),
            control if (control as u32) < 0x20 => {
                out.push_str(&format!("\\u{:04X}", control as u32));
            }
            other => out.push(other),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_string()).unwrap()
    }

    #[test]
    fn members_keep_document_order_and_borrow_plain_names() {
        let text = r#"{"b": 1, "a": "x", "c\u0041": {"n": [1, 2]}}"#;
        let members = JsonMembers::parse(text).unwrap();
        let names: Vec<&str> = members.0.iter().map(|(name, _)| name.as_ref()).collect();
        assert_eq!(names, ["b", "a", "cA"]);
        assert!(matches!(members.0[0].0, Cow::Borrowed(_)));
        assert_eq!(members.0[2].1.get(), r#"{"n": [1, 2]}"#);
        assert!(JsonMembers::parse("[1]").is_err());
    }

    #[test]
    fn lenient_numbers_truncate_decimals_and_turn_text_into_null() {
        assert_eq!(lenient_i64(&raw("12.9")), Some(12));
        assert_eq!(lenient_i64(&raw(r#""x""#)), None);
    }

    #[test]
    fn numbers_print_as_java_prints_them() {
        assert_eq!(java_number_text("2"), "2");
        assert_eq!(java_number_text("123.45"), "123.45");
        assert_eq!(java_number_text("1.50"), "1.5");
        assert_eq!(java_number_text("1e3"), "1000.0");
        assert_eq!(java_double_to_string(1.0e10), "1.0E10");
        assert_eq!(java_double_to_string(1.0e-5), "1.0E-5");
        assert_eq!(java_double_to_string(0.001), "0.001");
        assert_eq!(java_double_to_string(1234567.0), "1234567.0");
        assert_eq!(java_double_to_string(12345678.9), "1.23456789E7");
        assert_eq!(java_double_to_string(-0.5), "-0.5");
        assert_eq!(java_double_to_string(0.0), "0.0");
    }

    #[test]
    fn nested_json_is_compacted_outside_strings() {
        assert_eq!(compact_json(&raw(r#"{ "a" : [1, 2], "b": "x y" }"#)), r#"{"a":[1,2],"b":"x y"}"#);
    }

    #[test]
    fn strings_are_escaped_as_jackson_does() {
        let mut out = String::new();
        write_jackson_string(&mut out, "a\"\\\n\u{1}é/");
        assert_eq!(out, "\"a\\\"\\\\\\n\\u0001é/\"");
    }
}
