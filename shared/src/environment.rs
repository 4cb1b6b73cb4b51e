//! Test environments: the shared resources runs are queued for.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EnvironmentState {
    Idle,
    Busy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Environment {
    pub id: i32,
    pub name: String,
    pub description: String,
    pub variables: BTreeMap<String, String>,
    /// Bounds each run on this environment; null means the service default.
    pub run_timeout_secs: Option<i32>,
    pub state: EnvironmentState,
    pub current_run_id: Option<i64>,
    /// How many runs wait for this environment.
    pub queued: i64,
}

/// Body of `POST /api/environments`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewEnvironment {
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100))]
    pub id: i32,
    /// Trimmed; no control characters.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    pub name: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 2000))]
    pub description: String,
    /// Names match `[A-Za-z_][A-Za-z0-9_]*`; at most 200 of them.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// Seconds, from 1 to 604800; null for the service default.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 604800))]
    pub run_timeout_secs: Option<i32>,
}

/// Body of `PUT /api/environments/{id}`: the environment's new settings.
/// A field left out keeps its current value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateEnvironment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(nullable = false, min_length = 1, max_length = 64)
    )]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 2000))]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<BTreeMap<String, String>>,
    /// `Some(None)` (JSON null) returns the environment to the default.
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<i32>, minimum = 1, maximum = 604800)
    )]
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub run_timeout_secs: Option<Option<i32>>,
}

/// Tells an absent field (`None`) from an explicit null (`Some(None)`).
mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<Option<i32>>, s: S) -> Result<S::Ok, S::Error> {
        value.flatten().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<i32>>, D::Error> {
        Option::<i32>::deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_tells_missing_timeout_from_null() {
        let missing: UpdateEnvironment =
            serde_json::from_str(r#"{"name": "x"}"#).unwrap_or_default();
        assert_eq!(missing.run_timeout_secs, None);
        let null: UpdateEnvironment =
            serde_json::from_str(r#"{"run_timeout_secs": null}"#).unwrap_or_default();
        assert_eq!(null.run_timeout_secs, Some(None));
        let set: UpdateEnvironment =
            serde_json::from_str(r#"{"run_timeout_secs": 60}"#).unwrap_or_default();
        assert_eq!(set.run_timeout_secs, Some(Some(60)));
    }
}
