//! Rows as read from and written to the database, apart from the API's
//! shapes in `shared`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use shared::{CaseOutcome, CaseResult, Environment, EnvironmentState, Run, RunStatus, RunSummary};
use std::collections::BTreeMap;

use super::schema::{environments, run_cases, test_runs};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = test_runs, check_for_backend(diesel::pg::Pg))]
pub struct RunRow {
    pub id: i64,
    pub username: String,
    pub environment_id: i32,
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
}

impl RunRow {
    pub fn paths(&self) -> Vec<String> {
        serde_json::from_value(self.paths.clone()).unwrap_or_default()
    }

    pub fn into_run(self, queue_position: Option<i64>) -> Run {
        let status = self.status;
        let duration_ms = match (self.started_at, self.finished_at) {
            (Some(start), Some(end)) => Some((end - start).num_milliseconds().max(0)),
            _ => None,
        };
        Run {
            id: self.id,
            paths: self.paths(),
            username: self.username,
            environment_id: self.environment_id,
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
        }
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = test_runs)]
pub struct NewRunRow {
    pub username: String,
    pub environment_id: i32,
    pub paths: serde_json::Value,
    pub rerun_of: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = environments, check_for_backend(diesel::pg::Pg))]
pub struct EnvironmentRow {
    pub id: i32,
    pub name: String,
    pub description: String,
    pub variables: serde_json::Value,
    pub run_timeout_secs: Option<i32>,
}

impl EnvironmentRow {
    pub fn variables(&self) -> BTreeMap<String, String> {
        serde_json::from_value(self.variables.clone()).unwrap_or_default()
    }

    pub fn into_environment(self, current_run_id: Option<i64>, queued: i64) -> Environment {
        Environment {
            variables: self.variables(),
            id: self.id,
            name: self.name,
            description: self.description,
            run_timeout_secs: self.run_timeout_secs,
            state: if current_run_id.is_some() {
                EnvironmentState::Busy
            } else {
                EnvironmentState::Idle
            },
            current_run_id,
            queued,
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
