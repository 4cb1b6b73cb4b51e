//! Rows as read from and written to the database, apart from the API's
//! shapes in `shared`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use shared::{
    CaseOutcome, CaseResult, Environment, EnvironmentState, Hold, Maintenance, Reservation,
    ReservationKind, ReservationState, Run, RunStatus, RunSummary,
};
use std::collections::BTreeMap;

use super::schema::{environments, reservations, run_cases, test_runs};

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = test_runs, check_for_backend(diesel::pg::Pg))]
pub struct RunRow {
    pub id: i64,
    pub username: String,
    /// `None` while a pool's run waits for an environment.
    pub environment_id: Option<i32>,
    pub paths: serde_json::Value,
    pub status: RunStatus,
    pub status_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub exit_code: Option<i32>,
    pub total: Option<i32>,
    pub passed: Option<i32>,
    pub failed: Option<i32>,
    pub skipped: Option<i32>,
    pub errors: Option<i32>,
    pub xfailed: Option<i32>,
    pub xpassed: Option<i32>,
    pub log_bytes: i64,
    pub rerun_of: Option<i64>,
    pub subtests_passed: Option<i32>,
    pub completed: Option<i32>,
    /// Cases stored so far: what the next write expects to be there.
    pub case_count: i32,
    pub hold_on_failure_minutes: Option<i32>,
    pub environment_label: Option<String>,
    pub run_group_id: Option<i64>,
    pub shard: Option<i32>,
    pub schedule_id: Option<i64>,
    pub scheduled_for: Option<DateTime<Utc>>,
    pub schedule_note: Option<String>,
    /// `{"keyword": ..., "markers": ...}` (see [`Selection`]).
    pub selection: Option<serde_json::Value>,
    pub pinned: bool,
    pub details_removed_at: Option<DateTime<Utc>>,
    /// The API token the run was asked for with, if any.
    pub token_id: Option<i64>,
}

/// A run's test selection: pytest expressions for `-k` and `-m`, stored
/// together in one column.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Selection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyword: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub markers: Option<String>,
}

impl Selection {
    /// The column's value: null when nothing is selected.
    pub fn to_column(&self) -> Option<serde_json::Value> {
        if self.keyword.is_none() && self.markers.is_none() {
            return None;
        }
        serde_json::to_value(self).ok()
    }
}

impl RunRow {
    pub fn paths(&self) -> Vec<String> {
        RunRow::paths_of(self.paths.clone())
    }

    /// A run's `paths` column as the list it was written from.
    pub fn paths_of(column: serde_json::Value) -> Vec<String> {
        serde_json::from_value(column).unwrap_or_default()
    }

    pub fn selection(&self) -> Selection {
        self.selection
            .clone()
            .and_then(|value| serde_json::from_value(value).ok())
            .unwrap_or_default()
    }

    pub fn into_run(self, queue_position: Option<i64>) -> Run {
        let status = self.status;
        let duration_ms = match (self.started_at, self.finished_at) {
            (Some(start), Some(end)) => Some((end - start).num_milliseconds().max(0)),
            _ => None,
        };
        let selection = self.selection();
        Run {
            id: self.id,
            paths: self.paths(),
            username: self.username,
            environment_id: self.environment_id,
            environment_label: self.environment_label,
            status,
            status_reason: self.status_reason,
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            duration_ms,
            exit_code: self.exit_code,
            queue_position: if status == RunStatus::Queued {
                queue_position
            } else {
                None
            },
            summary: RunSummary {
                total: self.total,
                passed: self.passed,
                failed: self.failed,
                skipped: self.skipped,
                errors: self.errors,
                xfailed: self.xfailed,
                xpassed: self.xpassed,
                subtests_passed: self.subtests_passed,
                completed: self.completed,
            },
            rerun_of: self.rerun_of,
            hold_on_failure_minutes: self.hold_on_failure_minutes,
            estimated_start_at: None,
            run_group_id: self.run_group_id,
            shard: self.shard,
            schedule_id: self.schedule_id,
            scheduled_for: self.scheduled_for,
            schedule_note: self.schedule_note,
            keyword: selection.keyword,
            markers: selection.markers,
            pinned: self.pinned,
            details_removed_at: self.details_removed_at,
        }
    }
}

/// Every column left out is NULL by default, so a `None` is bound as
/// NULL rather than written `DEFAULT`: the statement's text is then always
/// the same, and prepared once per connection instead of at every insert.
#[derive(Debug, Insertable)]
#[diesel(table_name = test_runs, treat_none_as_default_value = false)]
pub struct NewRunRow {
    pub username: String,
    pub environment_id: Option<i32>,
    pub environment_label: Option<String>,
    pub paths: serde_json::Value,
    pub rerun_of: Option<i64>,
    pub hold_on_failure_minutes: Option<i32>,
    pub run_group_id: Option<i64>,
    pub shard: Option<i32>,
    pub schedule_id: Option<i64>,
    pub scheduled_for: Option<DateTime<Utc>>,
    pub schedule_note: Option<String>,
    pub selection: Option<serde_json::Value>,
    /// The API token the run was asked for with, if any.
    pub token_id: Option<i64>,
}

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = environments, check_for_backend(diesel::pg::Pg))]
pub struct EnvironmentRow {
    pub id: i32,
    pub name: String,
    pub description: String,
    pub variables: serde_json::Value,
    pub run_timeout_secs: Option<i32>,
    pub labels: Vec<String>,
    pub maintenance_reason: Option<String>,
    pub maintenance_since: Option<DateTime<Utc>>,
    pub maintenance_until: Option<DateTime<Utc>>,
    pub protected: bool,
    pub allowed_users: Vec<String>,
}

/// What an environment is busy with, besides its settings.
#[derive(Debug, Clone, Default)]
pub struct Occupancy {
    /// The run holding its lease.
    pub current_run_id: Option<i64>,
    pub queued: i64,
    /// Its active reservation or hold, if not expired.
    pub hold: Option<ReservationRow>,
    pub reservations_waiting: i64,
}

impl EnvironmentRow {
    pub fn variables(&self) -> BTreeMap<String, String> {
        serde_json::from_value(self.variables.clone()).unwrap_or_default()
    }

    /// Its maintenance, if it is out of rotation at `now` (a maintenance
    /// whose end passed is over, whether or not the sweep cleared it).
    pub fn maintenance(&self, now: DateTime<Utc>) -> Option<Maintenance> {
        let reason = self.maintenance_reason.clone()?;
        if self.maintenance_until.is_some_and(|until| until <= now) {
            return None;
        }
        Some(Maintenance {
            reason,
            since: self.maintenance_since.unwrap_or(now),
            until: self.maintenance_until,
        })
    }

    pub fn into_environment(self, occupancy: Occupancy, now: DateTime<Utc>) -> Environment {
        let maintenance = self.maintenance(now);
        let state = match (&maintenance, occupancy.current_run_id, &occupancy.hold) {
            (Some(_), Some(_), _) => EnvironmentState::Draining,
            (Some(_), None, _) => EnvironmentState::Offline,
            (None, Some(_), _) => EnvironmentState::Busy,
            (None, None, Some(_)) => EnvironmentState::Held,
            (None, None, None) => EnvironmentState::Idle,
        };
        Environment {
            variables: self.variables(),
            id: self.id,
            name: self.name,
            description: self.description,
            run_timeout_secs: self.run_timeout_secs,
            state,
            current_run_id: occupancy.current_run_id,
            queued: occupancy.queued,
            labels: self.labels,
            maintenance,
            hold: occupancy.hold.map(|hold| Hold {
                reservation_id: hold.id,
                owner: hold.owner,
                reason: hold.reason,
                until: hold.expires_at.unwrap_or(now),
            }),
            reservations_waiting: occupancy.reservations_waiting,
            estimated_free_at: None,
            protected: self.protected,
            allowed_users: self.allowed_users,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, QueryableByName)]
#[diesel(table_name = reservations, check_for_backend(diesel::pg::Pg))]
pub struct ReservationRow {
    pub id: i64,
    pub environment_id: i32,
    pub owner: String,
    pub reason: String,
    pub kind: String,
    pub state: String,
    pub minutes: i32,
    pub queue_order: i64,
    pub run_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub starts_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub end_reason: Option<String>,
}

impl ReservationRow {
    /// Its state at `now`: an active one past its end is ended.
    pub fn state(&self, now: DateTime<Utc>) -> ReservationState {
        match self.state.parse().unwrap_or(ReservationState::Ended) {
            ReservationState::Active if self.expires_at.is_some_and(|at| at <= now) => {
                ReservationState::Ended
            }
            state => state,
        }
    }

    pub fn into_reservation(self, queue_position: Option<i64>, now: DateTime<Utc>) -> Reservation {
        let state = self.state(now);
        let expired = state == ReservationState::Ended && self.ended_at.is_none();
        Reservation {
            id: self.id,
            environment_id: self.environment_id,
            owner: self.owner,
            reason: self.reason,
            kind: if self.kind == "hold" {
                ReservationKind::Hold
            } else {
                ReservationKind::Reservation
            },
            state,
            minutes: self.minutes,
            queue_position: queue_position.filter(|_| state == ReservationState::Waiting),
            starts_at: self.starts_at,
            expires_at: self.expires_at,
            created_at: self.created_at,
            ended_at: if expired {
                self.expires_at
            } else {
                self.ended_at
            },
            end_reason: if expired {
                Some("expired".into())
            } else {
                self.end_reason
            },
            run_id: self.run_id,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = run_cases, check_for_backend(diesel::pg::Pg))]
pub struct CaseRow {
    pub nodeid: String,
    pub outcome: CaseOutcome,
    pub duration_ms: i64,
    pub message: Option<String>,
}

impl From<CaseRow> for CaseResult {
    fn from(row: CaseRow) -> Self {
        CaseResult {
            nodeid: row.nodeid,
            outcome: row.outcome,
            duration_ms: row.duration_ms,
            message: row.message,
            attachments: Vec::new(),
        }
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = run_cases)]
pub struct NewCaseRow<'a> {
    pub run_id: i64,
    pub nodeid: &'a str,
    pub outcome: CaseOutcome,
    pub duration_ms: i64,
    pub message: Option<&'a str>,
}
