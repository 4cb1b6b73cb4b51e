//! Test environments: the shared resources runs are queued for.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::input::Input;
use crate::validate::{self, Fields};

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

/// Body of `POST /api/environments`, each field as sent (see [`Input`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewEnvironment {
    #[serde(default, skip_serializing_if = "Input::is_missing")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = i32, required = true, minimum = 1, maximum = 100)
    )]
    pub id: Input<i32>,
    #[serde(flatten)]
    pub settings: EnvironmentSettings,
}

/// Body of `PUT /api/environments/{id}`: the environment's new settings.
/// A field left out keeps its current value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateEnvironment {
    /// May only repeat the environment's own id.
    #[serde(default, skip_serializing_if = "Input::is_missing")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i32>, nullable = false))]
    pub id: Input<i64>,
    #[serde(flatten)]
    pub settings: EnvironmentSettings,
}

/// The settings fields of an environment's create or update body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnvironmentSettings {
    /// Trimmed; no control characters. Required on create.
    #[serde(default, skip_serializing_if = "Input::is_missing")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<String>, nullable = false, min_length = 1, max_length = 64)
    )]
    pub name: Input<String>,
    /// Null is the empty description.
    #[serde(default, skip_serializing_if = "Input::is_missing")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, max_length = 2000))]
    pub description: Input<Option<String>>,
    /// Names match `[A-Za-z_][A-Za-z0-9_]*`; at most 200 of them. Null is none.
    #[serde(default, skip_serializing_if = "Input::is_missing")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<BTreeMap<String, String>>))]
    pub variables: Input<Option<BTreeMap<String, String>>>,
    /// Seconds, from 1 to 604800; null for the service default.
    #[serde(default, skip_serializing_if = "Input::is_missing")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<i32>, minimum = 1, maximum = 604800)
    )]
    pub run_timeout_secs: Input<Option<i32>>,
}

/// Checked settings: `None` for a field left out (or bad, and named in the
/// [`Fields`] of the check).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub variables: Option<BTreeMap<String, String>>,
    pub run_timeout_secs: Option<Option<i32>>,
}

impl EnvironmentSettings {
    /// Every setting given, as a form sends them.
    pub fn all(
        name: String,
        description: String,
        variables: BTreeMap<String, String>,
        run_timeout_secs: Option<i32>,
    ) -> EnvironmentSettings {
        EnvironmentSettings {
            name: name.into(),
            description: Some(description).into(),
            variables: Some(variables).into(),
            run_timeout_secs: run_timeout_secs.into(),
        }
    }

    /// Checks each field that is present, recording problems in `fields`.
    pub fn check(&self, fields: &mut Fields) -> SettingsChanges {
        SettingsChanges {
            name: fields
                .check("name", self.name.optional())
                .flatten()
                .and_then(|raw| fields.check("name", validate::environment_name(raw))),
            description: fields
                .check("description", self.description.optional())
                .flatten()
                .map(|raw| raw.as_deref().unwrap_or(""))
                .and_then(|raw| fields.check("description", validate::description(raw))),
            variables: fields
                .check("variables", self.variables.optional())
                .flatten()
                .map(|vars| vars.clone().unwrap_or_default())
                .and_then(|vars| {
                    fields.check("variables", validate::variables(&vars).map(|()| vars))
                }),
            run_timeout_secs: fields
                .check("run_timeout_secs", self.run_timeout_secs.optional())
                .flatten()
                .and_then(|secs| {
                    fields.check("run_timeout_secs", validate::run_timeout_secs(*secs))
                }),
        }
    }
}

impl NewEnvironment {
    /// The id and settings of a new environment; every problem is in `fields`.
    pub fn check(&self, fields: &mut Fields) -> Option<(i32, SettingsChanges)> {
        let id = fields.check(
            "id",
            self.id
                .require("is required")
                .and_then(|id| validate::environment_id(i64::from(*id))),
        );
        if self.settings.name.is_missing() {
            fields.add("name", "is required");
        }
        let settings = self.settings.check(fields);
        Some((id?, settings)).filter(|_| fields.is_empty())
    }
}

impl UpdateEnvironment {
    /// The changes to environment `id`; every problem is in `fields`.
    pub fn check(&self, id: i32, fields: &mut Fields) -> SettingsChanges {
        if !self.id.is_missing() && self.id.given() != Some(&i64::from(id)) {
            fields.add("id", "cannot be changed");
        }
        self.settings.check(fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(json: &str) -> (SettingsChanges, Fields) {
        let update: UpdateEnvironment = serde_json::from_str(json).unwrap_or_default();
        let mut fields = Fields::default();
        (update.check(7, &mut fields), fields)
    }

    #[test]
    fn update_tells_missing_timeout_from_null() {
        assert_eq!(changes(r#"{"name": "x"}"#).0.run_timeout_secs, None);
        assert_eq!(
            changes(r#"{"run_timeout_secs": null}"#).0.run_timeout_secs,
            Some(None)
        );
        assert_eq!(
            changes(r#"{"run_timeout_secs": 60}"#).0.run_timeout_secs,
            Some(Some(60))
        );
    }

    #[test]
    fn every_bad_field_is_named() {
        let (_, fields) = changes(
            r#"{"id": 8, "name": 3, "description": "\u0000", "variables": {"1x": "v"}, "run_timeout_secs": 0}"#,
        );
        let named: Vec<String> = fields.into_inner().into_keys().collect();
        assert_eq!(
            named,
            ["description", "id", "name", "run_timeout_secs", "variables"]
        );
        let (_, fields) = changes(r#"{"id": 7, "description": null, "variables": null}"#);
        assert!(fields.is_empty());
    }

    #[test]
    fn a_new_environment_needs_an_id_and_a_name() {
        let new: NewEnvironment =
            serde_json::from_str(r#"{"description": "d"}"#).unwrap_or_default();
        let mut fields = Fields::default();
        assert_eq!(new.check(&mut fields), None);
        let named: Vec<String> = fields.into_inner().into_keys().collect();
        assert_eq!(named, ["id", "name"]);
        let new: NewEnvironment =
            serde_json::from_str(r#"{"id": 3, "name": " e "}"#).unwrap_or_default();
        let mut fields = Fields::default();
        let (id, settings) = new.check(&mut fields).unwrap_or_default();
        assert_eq!((id, settings.name.as_deref()), (3, Some("e")));
    }
}
