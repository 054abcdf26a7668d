//! One JSON value read in passing, as what CAoA's parser makes of it.
//!
//! The event parser reads every value exactly once, straight from the request body: a
//! [`ScalarValue`] is what a known field's value turned out to be (objects and arrays are
//! skipped and only remembered as such), and the `as_*` readers apply CAoA's coercions: text
//! fields take numbers and booleans as their text, "safe" numbers turn anything unreadable
//! into null. Strings without escapes stay borrowed from the body.

use std::{borrow::Cow, fmt};

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

#[derive(Debug, Clone, PartialEq)]
pub enum ScalarValue<'a> {
    Null,
    Bool(bool),
    Integer(i64),
    /// An integer above `i64::MAX`.
    Unsigned(u64),
    Float(f64),
    Text(Cow<'a, str>),
    /// An object or an array (skipped).
    Structure,
}

impl<'de> Deserialize<'de> for ScalarValue<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = ScalarValue<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a JSON value")
    }
    fn visit_bool<E>(self, value: bool) -> Result<Self::Value, E> {
        Ok(ScalarValue::Bool(value))
    }
    fn visit_i64<E>(self, value: i64) -> Result<Self::Value, E> {
        Ok(ScalarValue::Integer(value))
    }
    fn visit_u64<E>(self, value: u64) -> Result<Self::Value, E> {
        Ok(i64::try_from(value).map_or(ScalarValue::Unsigned(value), ScalarValue::Integer))
    }
    fn visit_f64<E>(self, value: f64) -> Result<Self::Value, E> {
        Ok(ScalarValue::Float(value))
    }
    fn visit_borrowed_str<E>(self, value: &'de str) -> Result<Self::Value, E> {
        Ok(ScalarValue::Text(Cow::Borrowed(value)))
    }
    fn visit_str<E>(self, value: &str) -> Result<Self::Value, E> {
        Ok(ScalarValue::Text(Cow::Owned(value.to_string())))
    }
    fn visit_string<E>(self, value: String) -> Result<Self::Value, E> {
        Ok(ScalarValue::Text(Cow::Owned(value)))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(ScalarValue::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(ScalarValue::Null)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(ScalarValue::Structure)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(ScalarValue::Structure)
    }
}

/// The value is an object or an array where CAoA expects a scalar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAScalar;

impl<'a> ScalarValue<'a> {
    /// A text field: strings as they are, numbers and booleans as their text (as Jackson
    /// reads them into a Java `String`), null as absent.
    pub fn into_text(self) -> Result<Option<Cow<'a, str>>, NotAScalar> {
        Ok(match self {
            ScalarValue::Null => None,
            ScalarValue::Text(text) => Some(text),
            ScalarValue::Bool(value) => Some(Cow::Borrowed(if value { "true" } else { "false" })),
            ScalarValue::Integer(value) => Some(Cow::Owned(value.to_string())),
            ScalarValue::Unsigned(value) => Some(Cow::Owned(value.to_string())),
            ScalarValue::Float(value) => Some(Cow::Owned(crate::json_text::java_double_to_string(value))),
            ScalarValue::Structure => return Err(NotAScalar),
        })
    }

    /// CAoA's "safe" long: an integer, or text that is one; anything else is null.
    pub fn safe_i64(&self) -> Option<i64> {
        match self {
            ScalarValue::Integer(value) => Some(*value),
            ScalarValue::Text(text) => text.trim().parse().ok(),
            _ => None,
        }
    }

    /// CAoA's "safe" int: as [`Self::safe_i64`], null outside the 32-bit range.
    pub fn safe_i32(&self) -> Option<i32> {
        self.safe_i64().and_then(|value| i32::try_from(value).ok())
    }

    /// CAoA's "safe" double: any number, or text that is one (`NaN` and `Infinity` too).
    pub fn safe_f64(&self) -> Option<f64> {
        match self {
            ScalarValue::Integer(value) => Some(*value as f64),
            ScalarValue::Unsigned(value) => Some(*value as f64),
            ScalarValue::Float(value) => Some(*value),
            ScalarValue::Text(text) => match text.trim() {
                "NaN" => Some(f64::NAN),
                "Infinity" | "+Infinity" => Some(f64::INFINITY),
                "-Infinity" => Some(f64::NEG_INFINITY),
                other => other.parse().ok(),
            },
            _ => None,
        }
    }

    /// CAoA's "safe" boolean: `1` is true, `0` false, `""` and `"null"` null, otherwise
    /// `true` ignoring case.
    pub fn safe_bool(&self) -> Option<bool> {
        match self {
            ScalarValue::Bool(value) => Some(*value),
            ScalarValue::Integer(value) => Some(*value == 1),
            ScalarValue::Text(text) => match text.as_ref() {
                "" | "null" => None,
                "1" => Some(true),
                "0" => Some(false),
                other => Some(other.eq_ignore_ascii_case("true")),
            },
            ScalarValue::Null | ScalarValue::Structure => None,
            ScalarValue::Unsigned(_) | ScalarValue::Float(_) => Some(false),
        }
    }

    /// A millisecond count: integers, decimals (truncated), and text that is either, as
    /// Jackson reads a Java `long`; anything else is null.
    pub fn lenient_i64(&self) -> Option<i64> {
        match self {
            ScalarValue::Integer(value) => Some(*value),
            ScalarValue::Float(value) if value.is_finite() => Some(value.trunc() as i64),
            ScalarValue::Text(text) => {
                let text = text.trim();
                text.parse::<i64>().ok().or_else(|| text.parse::<f64>().ok().filter(|value| value.is_finite()).map(|value| value.trunc() as i64))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> ScalarValue<'_> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn text_fields_accept_scalars_and_refuse_structures() {
        assert_eq!(read(r#""a\"b""#).into_text().unwrap().unwrap(), "a\"b");
        assert!(matches!(read(r#""plain""#).into_text().unwrap().unwrap(), Cow::Borrowed(_)));
        assert_eq!(read("12").into_text().unwrap().unwrap(), "12");
        assert_eq!(read("1.5").into_text().unwrap().unwrap(), "1.5");
        assert_eq!(read("true").into_text().unwrap().unwrap(), "true");
        assert_eq!(read("null").into_text().unwrap(), None);
        assert_eq!(read(r#"{"a":[1,{"b":2}]}"#).into_text(), Err(NotAScalar));
        assert_eq!(read("[1,2]").into_text(), Err(NotAScalar));
    }

    #[test]
    fn safe_numbers_turn_bad_input_into_null() {
        assert_eq!(read(r#""123""#).safe_i64(), Some(123));
        assert_eq!(read("1.5").safe_i64(), None);
        assert_eq!(read("3000000000").safe_i32(), None);
        assert_eq!(read(r#""abc""#).safe_f64(), None);
        assert_eq!(read("19").safe_f64(), Some(19.0));
        assert_eq!(read(r#""1""#).safe_bool(), Some(true));
        assert_eq!(read(r#""TRUE""#).safe_bool(), Some(true));
        assert_eq!(read(r#""""#).safe_bool(), None);
        assert_eq!(read("false").safe_bool(), Some(false));
        assert_eq!(read("12.9").lenient_i64(), Some(12));
        assert_eq!(read(r#""12""#).lenient_i64(), Some(12));
        assert_eq!(read(r#""x""#).lenient_i64(), None);
        assert_eq!(read("{}").lenient_i64(), None);
    }
}
