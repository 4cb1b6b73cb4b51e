//! Test environments: the shared resources runs are queued for.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::input::Input;
use crate::validate::{self, Fields};
use crate::FieldErrors;

/// What an environment is doing: `idle`, `busy` (a run holds it), `held`
/// (a reservation or a hold keeps it for one person), `draining` (in
/// maintenance, its last run still going) or `offline` (in maintenance).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EnvironmentState {
    Idle,
    Busy,
    Held,
    Draining,
    Offline,
}

impl EnvironmentState {
    pub fn as_str(self) -> &'static str {
        match self {
            EnvironmentState::Idle => "idle",
            EnvironmentState::Busy => "busy",
            EnvironmentState::Held => "held",
            EnvironmentState::Draining => "draining",
            EnvironmentState::Offline => "offline",
        }
    }
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
    /// What kind of environment it is (`staging`, `eu`, …); each
    /// `[a-z0-9_-]{1,32}`.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Out of rotation, why, and until when (if said).
    #[serde(default)]
    pub maintenance: Option<Maintenance>,
    /// The reservation or hold that keeps it for one person now.
    #[serde(default)]
    pub hold: Option<Hold>,
    /// Reservations waiting in its queue, between its runs.
    #[serde(default)]
    pub reservations_waiting: i64,
    /// When everything running, held and queued on it now should be done,
    /// from recent durations; null when unknown (maintenance without end).
    #[serde(default)]
    pub estimated_free_at: Option<DateTime<Utc>>,
    /// Only admins and `allowed_users` may start runs here.
    #[serde(default)]
    pub protected: bool,
    /// Who else may start runs on it while it is protected.
    #[serde(default)]
    pub allowed_users: Vec<String>,
}

/// An environment out of rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Maintenance {
    pub reason: String,
    pub since: DateTime<Utc>,
    /// It ends by itself then; null: until someone ends it.
    pub until: Option<DateTime<Utc>>,
}

/// Who holds an environment, why, and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Hold {
    pub reservation_id: i64,
    pub owner: String,
    pub reason: String,
    pub until: DateTime<Utc>,
}

/// A reservation (asked for) or a hold (after a failed run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReservationKind {
    Reservation,
    Hold,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReservationState {
    /// In its environment's queue.
    Waiting,
    /// Holding its environment now.
    Active,
    Ended,
}

impl ReservationState {
    pub fn as_str(self) -> &'static str {
        match self {
            ReservationState::Waiting => "waiting",
            ReservationState::Active => "active",
            ReservationState::Ended => "ended",
        }
    }
}

impl std::str::FromStr for ReservationState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "waiting" => Ok(ReservationState::Waiting),
            "active" => Ok(ReservationState::Active),
            "ended" => Ok(ReservationState::Ended),
            other => Err(format!("unknown reservation state {other:?}")),
        }
    }
}

/// A person's claim on an environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reservation {
    pub id: i64,
    pub environment_id: i32,
    pub owner: String,
    pub reason: String,
    pub kind: ReservationKind,
    pub state: ReservationState,
    /// How long it holds the environment once active.
    pub minutes: i32,
    /// 1 when it is next in its environment's queue, while waiting.
    pub queue_position: Option<i64>,
    /// When it began holding, or (waiting) when it should, if known.
    pub starts_at: Option<DateTime<Utc>>,
    /// When it ends by itself (active), or should (waiting).
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    /// Why it ended: `expired`, `released`, `ended by <admin>`.
    pub end_reason: Option<String>,
    /// For a hold: the run that failed.
    pub run_id: Option<i64>,
}

/// When a reservation should begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReservationWhen {
    /// At once: refused (409) while the environment is busy or held.
    Now,
    /// As the next in line: it waits in the environment's queue.
    Next,
}

impl crate::input::Expected for ReservationWhen {
    const EXPECTED: &'static str = "now or next";
}

/// Body of `POST /api/environments/{id}/reservations`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewReservation {
    /// How long it holds the environment, 1 to 480.
    #[serde(default, skip_serializing_if = "Input::is_missing")]
    #[cfg_attr(feature = "openapi", schema(value_type = i32, required = true, minimum = 1, maximum = 480))]
    pub minutes: Input<i32>,
    /// Why, for the people waiting behind it.
    #[serde(default, skip_serializing_if = "Input::is_missing")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, max_length = 500))]
    pub reason: Input<Option<String>>,
    #[serde(default, skip_serializing_if = "Input::is_missing")]
    #[cfg_attr(feature = "openapi", schema(value_type = ReservationWhen, required = true))]
    pub when: Input<ReservationWhen>,
    /// Who it is for: the caller's user name (it may be left out; given,
    /// it must be the caller's).
    #[serde(default, skip_serializing_if = "Input::is_missing")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, max_length = 64))]
    pub owner: Input<Option<String>>,
}

/// A reservation's fields, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationRequest {
    pub minutes: i32,
    pub reason: String,
    pub when: ReservationWhen,
    /// Who it is for, if the body said.
    pub owner: Option<String>,
}

impl NewReservation {
    pub fn check(&self, fields: &mut Fields) -> Option<ReservationRequest> {
        let minutes = fields.check(
            "minutes",
            self.minutes
                .require("is required")
                .and_then(|m| validate::reservation_minutes(*m)),
        );
        let reason = fields.check(
            "reason",
            self.reason
                .optional()
                .map(|r| r.cloned().flatten().unwrap_or_default())
                .and_then(|r| validate::reason(&r)),
        );
        let when = fields.check(
            "when",
            self.when.require("is required: now or next").copied(),
        );
        let owner = fields.check(
            "owner",
            self.owner
                .optional()
                .map(|o| o.cloned().flatten())
                .and_then(|o| o.map(|name| validate::username(&name)).transpose()),
        );
        Some(ReservationRequest {
            minutes: minutes?,
            reason: reason?,
            when: when?,
            owner: owner?,
        })
    }
}

/// Body of `POST /api/reservations/{id}/extend`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExtendReservation {
    /// Minutes added, 1 to 480; it never holds more than 480 minutes ahead.
    #[serde(default, skip_serializing_if = "Input::is_missing")]
    #[cfg_attr(feature = "openapi", schema(value_type = i32, required = true, minimum = 1, maximum = 480))]
    pub minutes: Input<i32>,
}

impl ExtendReservation {
    pub fn check(&self) -> Result<i32, String> {
        self.minutes
            .require("is required")
            .and_then(|m| validate::reservation_minutes(*m))
    }
}

/// Body of `POST /api/environments/{id}/maintenance`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewMaintenance {
    /// Why, shown to everyone whose runs wait.
    #[serde(default, skip_serializing_if = "Input::is_missing")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, required = true, min_length = 1, max_length = 500))]
    pub reason: Input<String>,
    /// When it ends by itself; absent or null: until someone ends it.
    #[serde(default, skip_serializing_if = "Input::is_missing")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<DateTime<Utc>>))]
    pub until: Input<Option<DateTime<Utc>>>,
}

impl NewMaintenance {
    /// The reason and the end, if valid; `now` is the server's time.
    pub fn check(
        &self,
        now: DateTime<Utc>,
    ) -> Result<(String, Option<DateTime<Utc>>), FieldErrors> {
        let mut fields = Fields::default();
        let reason = fields.check(
            "reason",
            self.reason
                .require("is required")
                .and_then(|r| validate::reason(r))
                .and_then(|r| {
                    if r.trim().is_empty() {
                        Err("must say why".to_string())
                    } else {
                        Ok(r)
                    }
                }),
        );
        let until = fields.check(
            "until",
            self.until
                .optional()
                .map(|u| u.copied().flatten())
                .and_then(|until| match until {
                    Some(at) if at <= now => Err("must be in the future".to_string()),
                    other => Ok(other),
                }),
        );
        match (reason, until) {
            (Some(reason), Some(until)) if fields.is_empty() => Ok((reason, until)),
            _ => Err(fields.into_inner()),
        }
    }
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
    /// Each `[a-z0-9_-]{1,32}`, at most 20; null is none.
    #[serde(default, skip_serializing_if = "Input::is_missing")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<String>>))]
    pub labels: Input<Option<Vec<String>>>,
    /// Only admins and `allowed_users` may start runs on it.
    #[serde(default, skip_serializing_if = "Input::is_missing")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<bool>))]
    pub protected: Input<Option<bool>>,
    /// User names, at most 200; null is none.
    #[serde(default, skip_serializing_if = "Input::is_missing")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<String>>))]
    pub allowed_users: Input<Option<Vec<String>>>,
}

/// Checked settings: `None` for a field left out (or bad, and named in the
/// [`Fields`] of the check).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub variables: Option<BTreeMap<String, String>>,
    pub run_timeout_secs: Option<Option<i32>>,
    pub labels: Option<Vec<String>>,
    pub protected: Option<bool>,
    pub allowed_users: Option<Vec<String>>,
}

/// The user names of an allow-list: each an account name, no repeats,
/// sorted.
fn allowed_users(raw: &[String]) -> Result<Vec<String>, String> {
    if raw.len() > 200 {
        return Err("must name at most 200 users".into());
    }
    let mut names = raw
        .iter()
        .map(|name| crate::identity::account_name(name).map_err(|why| format!("{name:?} {why}")))
        .collect::<Result<Vec<_>, _>>()?;
    names.sort();
    names.dedup();
    Ok(names)
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
            labels: Input::Missing,
            protected: Input::Missing,
            allowed_users: Input::Missing,
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
            labels: fields
                .check("labels", self.labels.optional())
                .flatten()
                .map(|labels| labels.clone().unwrap_or_default())
                .and_then(|labels| fields.check("labels", validate::labels(&labels))),
            protected: fields
                .check("protected", self.protected.optional())
                .flatten()
                .map(|protected| protected.unwrap_or(false)),
            allowed_users: fields
                .check("allowed_users", self.allowed_users.optional())
                .flatten()
                .map(|names| names.clone().unwrap_or_default())
                .and_then(|names| fields.check("allowed_users", allowed_users(&names))),
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
