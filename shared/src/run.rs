//! Test runs: their status, summary, log and per-test results.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use crate::input::{query_flag, query_text, query_value, Input};
use crate::validate::{self, Fields, TestPath};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(
    feature = "sql",
    derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow)
)]
#[cfg_attr(feature = "sql", diesel(sql_type = diesel::sql_types::Text))]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Queued,
    Running,
    Success,
    Failed,
    Error,
    Cancelled,
}

impl RunStatus {
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Success,
        RunStatus::Failed,
        RunStatus::Error,
        RunStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Success => "success",
            RunStatus::Failed => "failed",
            RunStatus::Error => "error",
            RunStatus::Cancelled => "cancelled",
        }
    }

    /// A finished run never changes status again.
    pub fn is_finished(self) -> bool {
        !matches!(self, RunStatus::Queued | RunStatus::Running)
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RunStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| {
                format!("unknown status {s:?}; expected one of queued, running, success, failed, error, cancelled")
            })
    }
}

/// Counts of a run's tests. Each is null until known; while the run is
/// running they show its progress so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunSummary {
    pub total: Option<i32>,
    pub passed: Option<i32>,
    pub failed: Option<i32>,
    pub skipped: Option<i32>,
    pub errors: Option<i32>,
    /// Expected failures (`xfail`), which pytest counts apart from skips.
    #[serde(default)]
    pub xfailed: Option<i32>,
    /// Unexpected passes of `xfail` tests.
    #[serde(default)]
    pub xpassed: Option<i32>,
    /// Subtests that passed (pytest's `subtests` fixture); failed subtests
    /// count as failed, as pytest's closing line counts them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtests_passed: Option<i32>,
    /// Tests finished so far, each counted once whatever its phases gave
    /// (a test that fails and then errors in teardown is one): the
    /// progress of a running run, out of `total`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed: Option<i32>,
}

impl RunSummary {
    /// Tests finished so far: `completed` when pytest reported it, else
    /// the verdicts counted so far.
    pub fn finished_tests(&self) -> i32 {
        self.completed.unwrap_or_else(|| self.done())
    }

    /// Verdicts counted so far, whatever their outcome (a test may give
    /// two: a failure, then an error in its teardown).
    pub fn done(&self) -> i32 {
        [
            self.passed,
            self.failed,
            self.skipped,
            self.errors,
            self.xfailed,
            self.xpassed,
        ]
        .iter()
        .map(|count| count.unwrap_or(0))
        .sum()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Run {
    pub id: i64,
    pub username: String,
    /// Where it runs; null while a run for a pool (`environment_label`)
    /// waits for a free environment of that label.
    pub environment_id: Option<i32>,
    /// The pool it was queued for: any environment with this label.
    #[serde(default)]
    pub environment_label: Option<String>,
    pub paths: Vec<String>,
    pub status: RunStatus,
    pub status_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
    pub exit_code: Option<i32>,
    /// 1 for the next run to start on its environment, while queued.
    pub queue_position: Option<i64>,
    pub summary: RunSummary,
    /// The run this one repeats, if it was created by a re-run.
    #[serde(default)]
    pub rerun_of: Option<i64>,
    /// If the run fails, its environment is held for its user this long.
    #[serde(default)]
    pub hold_on_failure_minutes: Option<i32>,
    /// While queued: when it should start, from the recent durations of
    /// what is ahead of it (runs and holds); null when unknown.
    #[serde(default)]
    pub estimated_start_at: Option<DateTime<Utc>>,
    /// The run group it is a shard of, and which shard (from 1).
    #[serde(default)]
    pub run_group_id: Option<i64>,
    #[serde(default)]
    pub shard: Option<i32>,
    /// The schedule that queued it, if one did.
    #[serde(default)]
    pub schedule_id: Option<i64>,
    /// The fire time it was queued for, if a schedule queued it.
    #[serde(default)]
    pub scheduled_for: Option<DateTime<Utc>>,
    /// What the schedule has to say about this run (a fire missed while no
    /// instance was up, run late once).
    #[serde(default)]
    pub schedule_note: Option<String>,
    /// pytest `-k`: only tests whose names match this expression.
    #[serde(default)]
    pub keyword: Option<String>,
    /// pytest `-m`: only tests whose markers match this expression.
    #[serde(default)]
    pub markers: Option<String>,
    /// Kept whatever the retention (`RETENTION_DAYS`).
    #[serde(default)]
    pub pinned: bool,
    /// When retention removed its log, cases and artifacts; its summary
    /// stays.
    #[serde(default)]
    pub details_removed_at: Option<DateTime<Utc>>,
}

/// Where a run goes: one environment, or the first free one of a pool.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RunTarget {
    Environment(i32),
    Pool(String),
}

impl RunTarget {
    /// Checks `environment_id` and `environment_label` together: exactly
    /// one of them, valid. Problems go to the field concerned.
    pub fn check(
        environment_id: &Input<Option<i32>>,
        environment_label: &Input<Option<String>>,
        fields: &mut Fields,
    ) -> Option<RunTarget> {
        let id = fields.check(
            "environment_id",
            environment_id.optional().map(|id| id.copied().flatten()),
        );
        let label = fields.check(
            "environment_label",
            environment_label
                .optional()
                .map(|label| label.cloned().flatten()),
        );
        match (id?, label?) {
            (Some(_), Some(_)) => {
                fields.add(
                    "environment_label",
                    "give environment_id or environment_label, not both",
                );
                None
            }
            (Some(id), None) => fields
                .check("environment_id", validate::environment_id(i64::from(id)))
                .map(RunTarget::Environment),
            (None, Some(label)) => fields
                .check(
                    "environment_label",
                    validate::label_name(label.trim()).map(|()| label.trim().to_string()),
                )
                .map(RunTarget::Pool),
            (None, None) => {
                fields.add(
                    "environment_id",
                    "is required (or environment_label, for any free environment with that label)",
                );
                None
            }
        }
    }

    pub fn environment_id(&self) -> Option<i32> {
        match self {
            RunTarget::Environment(id) => Some(*id),
            RunTarget::Pool(_) => None,
        }
    }

    pub fn label(&self) -> Option<&str> {
        match self {
            RunTarget::Environment(_) => None,
            RunTarget::Pool(label) => Some(label),
        }
    }
}

impl fmt::Display for RunTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunTarget::Environment(id) => write!(f, "environment {id}"),
            RunTarget::Pool(label) => write!(f, "any environment labelled {label}"),
        }
    }
}

/// Body of `POST /api/runs`. Each field is kept as sent, so that
/// [`NewRun::check`] can name every bad one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewRun {
    /// Trimmed; no control characters.
    #[serde(default, skip_serializing_if = "Input::is_missing")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = String, required = true, min_length = 1, max_length = 64, example = "alice")
    )]
    pub username: Input<String>,
    /// The environment to run on; or leave it out and give
    /// `environment_label`.
    #[serde(default, skip_serializing_if = "Input::is_missing")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<i32>, minimum = 1, maximum = 100, example = 7)
    )]
    pub environment_id: Input<Option<i32>>,
    /// Instead of `environment_id`: the first free environment with this
    /// label (FIFO across all of them). `[a-z0-9_-]{1,32}`.
    #[serde(default, skip_serializing_if = "Input::is_missing")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "staging"))]
    pub environment_label: Input<Option<String>>,
    /// Test files or directories relative to the tests root, each
    /// optionally with a pytest node id suffix (`smoke/test_x.py::test_a`).
    #[serde(default, skip_serializing_if = "Input::is_missing")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Vec<String>, required = true, min_items = 1, max_items = 1000,
            example = json!(["smoke/test_fast.py"]))
    )]
    pub paths: Input<Vec<String>>,
    /// If the run ends `failed` or `error`, its environment is held for its
    /// user this many minutes (1 to 120), for a look at what went wrong.
    #[serde(default, skip_serializing_if = "Input::is_missing")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i32>, minimum = 1, maximum = 120))]
    pub hold_on_failure_minutes: Input<Option<i32>>,
    /// pytest `-k` expression (`smoke and not slow`): names joined by
    /// `and`, `or`, `not` and parentheses; at most 1000 characters.
    #[serde(default, skip_serializing_if = "Input::is_missing")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "login and not slow"))]
    pub keyword: Input<Option<String>>,
    /// pytest `-m` expression over markers (`smoke and not slow`), same
    /// rules as `keyword`.
    #[serde(default, skip_serializing_if = "Input::is_missing")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "smoke"))]
    pub markers: Input<Option<String>>,
}

/// The fields of a [`NewRun`] that passed their checks; the others are
/// `None` and named in the [`Fields`] the check filled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckedRun {
    pub username: Option<String>,
    pub target: Option<RunTarget>,
    pub paths: Option<Vec<TestPath>>,
    /// `Some(None)` when left out.
    pub hold_on_failure_minutes: Option<Option<i32>>,
    /// `Some(None)` when left out or empty.
    pub keyword: Option<Option<String>>,
    pub markers: Option<Option<String>>,
}

impl NewRun {
    pub fn new(username: &str, environment_id: i32, paths: Vec<String>) -> NewRun {
        NewRun::to(username, RunTarget::Environment(environment_id), paths)
    }

    pub fn to(username: &str, target: RunTarget, paths: Vec<String>) -> NewRun {
        let (environment_id, environment_label) = match target {
            RunTarget::Environment(id) => (Input::Given(Some(id)), Input::Missing),
            RunTarget::Pool(label) => (Input::Missing, Input::Given(Some(label))),
        };
        NewRun {
            username: username.to_string().into(),
            environment_id,
            environment_label,
            paths: paths.into(),
            hold_on_failure_minutes: Input::Missing,
            keyword: Input::Missing,
            markers: Input::Missing,
        }
    }

    /// Checks every field, recording each problem in `fields`. Whether the
    /// environment and the paths exist is for the service to add.
    pub fn check(&self, fields: &mut Fields) -> CheckedRun {
        CheckedRun {
            username: fields.check(
                "username",
                self.username
                    .require("is required")
                    .and_then(|raw| validate::username(raw)),
            ),
            target: RunTarget::check(&self.environment_id, &self.environment_label, fields),
            paths: fields.check(
                "paths",
                self.paths
                    .require("is required")
                    .and_then(|raw| validate::run_paths(raw)),
            ),
            hold_on_failure_minutes: fields.check(
                "hold_on_failure_minutes",
                self.hold_on_failure_minutes
                    .optional()
                    .map(|m| m.copied().flatten())
                    .and_then(|m| m.map(validate::hold_minutes).transpose()),
            ),
            keyword: fields.check("keyword", selection_expression(&self.keyword)),
            markers: fields.check("markers", selection_expression(&self.markers)),
        }
    }
}

/// A `keyword` or `markers` field: absent, null and blank all mean no
/// selection.
fn selection_expression(raw: &Input<Option<String>>) -> Result<Option<String>, String> {
    match raw.optional()?.cloned().flatten() {
        Some(text) => crate::selection::expression(&text),
        None => Ok(None),
    }
}

/// Query of `GET /api/runs`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct RunListQuery {
    /// Only runs with this status.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "query_value"
    )]
    pub status: Option<RunStatus>,
    /// Only runs of this user (exact, after trimming).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "query_text"
    )]
    pub username: Option<String>,
    /// Only runs on this environment.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "query_value"
    )]
    pub environment_id: Option<i32>,
    /// Page number, from 1.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "query_value"
    )]
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 1000000))]
    pub page: Option<i64>,
    /// Runs per page, 50 unless given.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "query_value"
    )]
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 500))]
    pub per_page: Option<i64>,
}

impl RunListQuery {
    /// The page and its size, defaults applied and ranges checked.
    pub fn page_and_size(&self) -> Result<(i64, i64), String> {
        page_and_size(self.page, self.per_page)
    }
}

/// A listing's page and its size, defaults applied and ranges checked:
/// the one rule of every paged query.
pub fn page_and_size(page: Option<i64>, per_page: Option<i64>) -> Result<(i64, i64), String> {
    let page = page.unwrap_or(1);
    let per_page = per_page.unwrap_or(crate::DEFAULT_PER_PAGE);
    if !(1..=MAX_PAGE).contains(&page) {
        return Err(format!("page must be from 1 to {MAX_PAGE}, not {page}"));
    }
    if !(1..=crate::MAX_PER_PAGE).contains(&per_page) {
        return Err(format!(
            "per_page must be from 1 to {}, not {per_page}",
            crate::MAX_PER_PAGE
        ));
    }
    Ok((page, per_page))
}

/// The last page number the run list accepts.
pub const MAX_PAGE: i64 = 1_000_000;

/// Query of `GET /api/runs/{id}/log`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct LogQuery {
    /// Byte offset to read from (0 unless given); then `next_offset`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "query_value"
    )]
    #[cfg_attr(feature = "openapi", param(minimum = 0))]
    pub offset: Option<i64>,
}

impl LogQuery {
    pub fn offset(&self) -> Result<i64, String> {
        match self.offset.unwrap_or(0) {
            offset if offset < 0 => Err(format!("offset must be 0 or more, not {offset}")),
            offset => Ok(offset),
        }
    }
}

/// Query of `POST /api/runs/{id}/rerun`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct RerunQuery {
    /// Only the failed and errored tests of the run.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "query_flag"
    )]
    pub failed_only: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunPage {
    pub items: Vec<Run>,
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
}

/// A slice of a run's log, by byte offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogChunk {
    pub offset: i64,
    pub next_offset: i64,
    pub content: String,
    /// True once the run is finished and this answer reaches the log's end.
    pub complete: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(
    feature = "sql",
    derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow)
)]
#[cfg_attr(feature = "sql", diesel(sql_type = diesel::sql_types::Text))]
#[serde(rename_all = "snake_case")]
pub enum CaseOutcome {
    Passed,
    Failed,
    Skipped,
    Error,
    /// Failed as expected (`xfail`).
    Xfailed,
    /// Passed although expected to fail (a non-strict `xfail`).
    Xpassed,
}

impl CaseOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CaseOutcome::Passed => "passed",
            CaseOutcome::Failed => "failed",
            CaseOutcome::Skipped => "skipped",
            CaseOutcome::Error => "error",
            CaseOutcome::Xfailed => "xfailed",
            CaseOutcome::Xpassed => "xpassed",
        }
    }

    /// Failures and errors are what a "re-run failed" repeats.
    pub fn is_failure(self) -> bool {
        matches!(self, CaseOutcome::Failed | CaseOutcome::Error)
    }
}

impl FromStr for CaseOutcome {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "passed" => Ok(CaseOutcome::Passed),
            "failed" => Ok(CaseOutcome::Failed),
            "skipped" => Ok(CaseOutcome::Skipped),
            "error" => Ok(CaseOutcome::Error),
            "xfailed" => Ok(CaseOutcome::Xfailed),
            "xpassed" => Ok(CaseOutcome::Xpassed),
            other => Err(format!("unknown outcome {other:?}")),
        }
    }
}

/// One test's result, as pytest reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CaseResult {
    pub nodeid: String,
    pub outcome: CaseOutcome,
    pub duration_ms: i64,
    pub message: Option<String>,
    /// Artifacts of the run this test named with a `[[ATTACHMENT|path]]`
    /// line in its output (paths as `GET /api/runs/{id}/artifacts` lists
    /// them).
    #[serde(default)]
    pub attachments: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips_through_its_name() {
        for status in RunStatus::ALL {
            assert_eq!(status.as_str().parse::<RunStatus>(), Ok(status));
            assert_eq!(
                serde_json::to_string(&status).ok(),
                Some(format!("\"{status}\""))
            );
        }
        assert!("done".parse::<RunStatus>().is_err());
    }

    #[test]
    fn only_queued_and_running_are_unfinished() {
        let unfinished: Vec<_> = RunStatus::ALL
            .into_iter()
            .filter(|s| !s.is_finished())
            .collect();
        assert_eq!(unfinished, vec![RunStatus::Queued, RunStatus::Running]);
    }

    #[test]
    fn summary_done_adds_every_outcome() {
        let summary = RunSummary {
            total: Some(10),
            passed: Some(3),
            failed: Some(2),
            skipped: Some(1),
            errors: None,
            xfailed: Some(1),
            xpassed: None,
            ..RunSummary::default()
        };
        assert_eq!(summary.done(), 7);
    }
}
