//! Schedules: runs queued by a 5-field cron expression in a time zone.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::input::Input;
use crate::run::RunTarget;
use crate::validate::{self, Fields, TestPath};

pub const MAX_SCHEDULE_NAME_CHARS: usize = 100;
/// Who a schedule's runs belong to when the schedule names nobody.
pub const DEFAULT_SCHEDULE_USERNAME: &str = "scheduler";

/// Body of `POST /api/schedules` and `PUT /api/schedules/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewSchedule {
    /// 1 to 100 characters.
    #[serde(default, skip_serializing_if = "Input::is_missing")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = String, required = true, example = "nightly regression")
    )]
    pub name: Input<String>,
    /// Five fields: minute, hour, day of month, month, day of week
    /// (`0 2 * * 1-5`: 02:00 on weekdays).
    #[serde(default, skip_serializing_if = "Input::is_missing")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = String, required = true, example = "0 2 * * 1-5")
    )]
    pub cron: Input<String>,
    /// An IANA time zone the expression is read in; `UTC` if left out.
    #[serde(default, skip_serializing_if = "Input::is_missing")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "Europe/Berlin"))]
    pub timezone: Input<Option<String>>,
    #[serde(default, skip_serializing_if = "Input::is_missing")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<i32>, minimum = 1, maximum = 100, example = 7)
    )]
    pub environment_id: Input<Option<i32>>,
    /// Instead of `environment_id`: the first free environment with this label.
    #[serde(default, skip_serializing_if = "Input::is_missing")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub environment_label: Input<Option<String>>,
    /// What each run runs, as `POST /api/runs` takes it.
    #[serde(default, skip_serializing_if = "Input::is_missing")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Vec<String>, required = true, example = json!(["smoke"]))
    )]
    pub paths: Input<Vec<String>>,
    /// `true` unless given.
    #[serde(default, skip_serializing_if = "Input::is_missing")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<bool>))]
    pub enabled: Input<bool>,
    /// Whose runs they are; `scheduler` if left out.
    #[serde(default, skip_serializing_if = "Input::is_missing")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "alice"))]
    pub username: Input<Option<String>>,
    /// As on `POST /api/runs`.
    #[serde(default, skip_serializing_if = "Input::is_missing")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i32>, minimum = 1, maximum = 120))]
    pub hold_on_failure_minutes: Input<Option<i32>>,
}

/// The fields of a [`NewSchedule`] that need nothing but the body to
/// check; the cron expression and time zone are parsed by the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedSchedule {
    pub name: String,
    pub cron: String,
    pub timezone: String,
    pub target: RunTarget,
    pub paths: Vec<TestPath>,
    pub enabled: bool,
    pub username: String,
    pub hold_on_failure_minutes: Option<i32>,
}

impl NewSchedule {
    /// Checks every field, the problems going to `fields`.
    pub fn check(&self, fields: &mut Fields) -> Option<CheckedSchedule> {
        let name = fields.check(
            "name",
            self.name
                .require("is required")
                .and_then(|n| schedule_name(n)),
        );
        let cron = fields.check(
            "cron",
            self.cron
                .require("is required")
                .and_then(|c| cron_fields(c)),
        );
        let timezone = fields.check(
            "timezone",
            self.timezone.optional().map(|tz| {
                tz.cloned()
                    .flatten()
                    .map(|tz| tz.trim().to_string())
                    .filter(|tz| !tz.is_empty())
                    .unwrap_or_else(|| "UTC".to_string())
            }),
        );
        let target = RunTarget::check(&self.environment_id, &self.environment_label, fields);
        let paths = fields.check(
            "paths",
            self.paths
                .require("is required")
                .and_then(|raw| validate::run_paths(raw)),
        );
        let enabled = fields.check(
            "enabled",
            self.enabled.optional().map(|e| e.copied().unwrap_or(true)),
        );
        let username = fields.check(
            "username",
            self.username
                .optional()
                .and_then(|u| match u.cloned().flatten() {
                    Some(name) => validate::username(&name),
                    None => Ok(DEFAULT_SCHEDULE_USERNAME.to_string()),
                }),
        );
        let hold_on_failure_minutes = fields.check(
            "hold_on_failure_minutes",
            self.hold_on_failure_minutes
                .optional()
                .map(|m| m.copied().flatten())
                .and_then(|m| m.map(validate::hold_minutes).transpose()),
        );
        Some(CheckedSchedule {
            name: name?,
            cron: cron?,
            timezone: timezone?,
            target: target?,
            paths: paths?,
            enabled: enabled?,
            username: username?,
            hold_on_failure_minutes: hold_on_failure_minutes?,
        })
    }
}

pub fn schedule_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.chars().count() > MAX_SCHEDULE_NAME_CHARS {
        return Err(format!(
            "must be at most {MAX_SCHEDULE_NAME_CHARS} characters"
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(name.to_string())
}

/// Exactly five fields separated by spaces, normalised to single spaces;
/// what each field may hold is for the cron parser to say.
pub fn cron_fields(raw: &str) -> Result<String, String> {
    let fields: Vec<&str> = raw.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "must have 5 fields (minute hour day-of-month month day-of-week, e.g. \"0 2 * * 1-5\"), not {}",
            fields.len()
        ));
    }
    Ok(fields.join(" "))
}

/// A schedule as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Schedule {
    pub id: i64,
    pub name: String,
    pub cron: String,
    pub timezone: String,
    pub environment_id: Option<i32>,
    pub environment_label: Option<String>,
    pub paths: Vec<String>,
    pub username: String,
    pub hold_on_failure_minutes: Option<i32>,
    pub enabled: bool,
    /// When it fires next; null while disabled.
    pub next_run_at: Option<DateTime<Utc>>,
    /// The run its last fire queued.
    pub last_run_id: Option<i64>,
    pub last_fired_at: Option<DateTime<Utc>>,
    /// Why its last fire queued no run (its environment or paths went).
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_expressions_have_five_fields() {
        assert_eq!(cron_fields(" 0  2 * * 1-5 ").unwrap(), "0 2 * * 1-5");
        assert!(cron_fields("0 0 2 * * 1").unwrap_err().contains("5 fields"));
        assert!(cron_fields("@daily").is_err());
    }

    #[test]
    fn a_schedule_names_every_bad_field() {
        let new: NewSchedule = serde_json::from_value(serde_json::json!({
            "name": "", "cron": "* *", "paths": [], "enabled": "yes"
        }))
        .unwrap();
        let mut fields = Fields::default();
        assert!(new.check(&mut fields).is_none());
        let fields = fields.into_inner();
        for name in ["name", "cron", "paths", "enabled", "environment_id"] {
            assert!(fields.contains_key(name), "{name}: {fields:?}");
        }
    }
}
