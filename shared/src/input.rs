//! Request fields as they were sent. A body is deserialized whole even when
//! some of its fields have the wrong JSON type, so that validation can name
//! every bad field in one answer instead of stopping at the first.

use serde::de::{DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use std::str::FromStr;

/// One field of a request body: left out, of the wrong JSON type, or given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Input<T> {
    #[default]
    Missing,
    /// Present but not of the expected type; says what was expected.
    Wrong(String),
    Given(T),
}

impl<T> Input<T> {
    pub fn is_missing(&self) -> bool {
        matches!(self, Input::Missing)
    }

    pub fn given(&self) -> Option<&T> {
        match self {
            Input::Given(value) => Some(value),
            _ => None,
        }
    }

    /// The value, or why there is none: `missing` when left out.
    pub fn require(&self, missing: &str) -> Result<&T, String> {
        match self {
            Input::Given(value) => Ok(value),
            Input::Wrong(why) => Err(why.clone()),
            Input::Missing => Err(missing.to_string()),
        }
    }

    /// `None` when left out, the value when given, why when of the wrong type.
    pub fn optional(&self) -> Result<Option<&T>, String> {
        match self {
            Input::Given(value) => Ok(Some(value)),
            Input::Wrong(why) => Err(why.clone()),
            Input::Missing => Ok(None),
        }
    }
}

impl<T> From<T> for Input<T> {
    fn from(value: T) -> Self {
        Input::Given(value)
    }
}

/// What a field's JSON should look like, in words for an error message.
pub trait Expected {
    const EXPECTED: &'static str;
}

macro_rules! expected {
    ($($ty:ty => $words:literal),* $(,)?) => {
        $(impl Expected for $ty { const EXPECTED: &'static str = $words; })*
    };
}

expected! {
    String => "a string",
    bool => "true or false",
    i32 => "a whole number",
    i64 => "a whole number",
    Vec<String> => "a list of strings",
    std::collections::BTreeMap<String, String> => "an object of name to string value",
    Option<i32> => "a whole number or null",
    Option<bool> => "true, false or null",
    Option<String> => "a string or null",
    Option<std::collections::BTreeMap<String, String>> => "an object of name to string value",
    Option<Vec<String>> => "a list of strings or null",
    Option<chrono::DateTime<chrono::Utc>> => "an RFC 3339 time (2026-12-31T18:00:00Z) or null",
}

impl<'de, T: DeserializeOwned + Expected> Deserialize<'de> for Input<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        Ok(match serde_json::from_value::<T>(value) {
            Ok(value) => Input::Given(value),
            Err(_) => Input::Wrong(format!("must be {}", T::EXPECTED)),
        })
    }
}

impl<T: Serialize> Serialize for Input<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Input::Given(value) => value.serialize(serializer),
            _ => serializer.serialize_none(),
        }
    }
}

/// A query parameter read as `T`: absent or empty (`?status=`, as an HTML
/// form sends it) is `None`; a value that does not parse is an error.
pub fn query_value<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
{
    let raw = Option::<String>::deserialize(deserializer)?;
    match raw.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => text
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("{text:?} is not a valid value"))),
    }
}

/// A yes/no query parameter (see [`crate::query::parse_bool`]); empty is `None`.
pub fn query_flag<'de, D>(deserializer: D) -> Result<Option<bool>, D::Error>
where
    D: Deserializer<'de>,
{
    let raw = Option::<String>::deserialize(deserializer)?;
    match raw {
        None => Ok(None),
        Some(text) => crate::query::parse_bool(&text).map_err(serde::de::Error::custom),
    }
}

/// A text query parameter, trimmed; empty is `None`. A NUL byte is refused:
/// PostgreSQL cannot hold it in text.
pub fn query_text<'de, D>(deserializer: D) -> Result<Option<String>, D::Error>
where
    D: Deserializer<'de>,
{
    let raw = Option::<String>::deserialize(deserializer)?;
    match raw.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) if text.contains('\0') => {
            Err(serde::de::Error::custom("must not contain a NUL byte"))
        }
        Some(text) => Ok(Some(text.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Body {
        #[serde(default)]
        name: Input<String>,
        #[serde(default)]
        count: Input<i32>,
        #[serde(default)]
        limit: Input<Option<i32>>,
    }

    #[test]
    fn every_field_is_read_whatever_the_others_hold() {
        let body: Body = serde_json::from_str(r#"{"name": 5, "count": "x"}"#).unwrap();
        assert_eq!(body.name, Input::Wrong("must be a string".into()));
        assert_eq!(body.count, Input::Wrong("must be a whole number".into()));
        assert_eq!(body.limit, Input::Missing);
        let body: Body = serde_json::from_str(r#"{"name": "a", "limit": null}"#).unwrap();
        assert_eq!(body.name, Input::Given("a".into()));
        assert_eq!(body.limit, Input::Given(None));
        assert_eq!(body.count.require("is required"), Err("is required".into()));
    }

    #[test]
    fn only_the_given_value_is_written() {
        #[derive(Serialize)]
        struct Out {
            #[serde(skip_serializing_if = "Input::is_missing")]
            a: Input<i32>,
            #[serde(skip_serializing_if = "Input::is_missing")]
            b: Input<i32>,
        }
        let out = Out {
            a: 3.into(),
            b: Input::Missing,
        };
        assert_eq!(serde_json::to_string(&out).unwrap(), r#"{"a":3}"#);
    }

    #[derive(Debug, Deserialize)]
    struct Query {
        #[serde(default, deserialize_with = "query_value")]
        page: Option<i64>,
        #[serde(default, deserialize_with = "query_text")]
        user: Option<String>,
    }

    #[test]
    fn empty_query_values_are_absent_and_bad_ones_refused() {
        let parse = |q: &str| serde_json::from_value::<Query>(serde_json::from_str(q).unwrap());
        let query = parse(r#"{"page": "", "user": "  "}"#).unwrap();
        assert_eq!((query.page, query.user), (None, None));
        let query = parse(r#"{"page": "2", "user": " al "}"#).unwrap();
        assert_eq!((query.page, query.user.as_deref()), (Some(2), Some("al")));
        assert!(parse(r#"{"page": "two"}"#).is_err());
        assert!(parse(r#"{"user": "a\u0000b"}"#).is_err());
    }
}
