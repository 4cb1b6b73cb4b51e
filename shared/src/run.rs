//! Test runs: their status, summary, log and per-test results.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
}

impl RunSummary {
    /// Tests done so far, whatever their outcome.
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
    pub environment_id: i32,
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
}

/// Body of `POST /api/runs`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewRun {
    /// Trimmed; no control characters.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 64, example = "alice")
    )]
    pub username: String,
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100, example = 7))]
    pub environment_id: i32,
    /// Test files or directories relative to the tests root, each
    /// optionally with a pytest node id suffix (`smoke/test_x.py::test_a`).
    #[cfg_attr(
        feature = "openapi",
        schema(min_items = 1, max_items = 1000, example = json!(["smoke/test_fast.py"]))
    )]
    pub paths: Vec<String>,
}

/// Query of `GET /api/runs`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct RunListQuery {
    /// Only runs with this status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RunStatus>,
    /// Only runs of this user (exact, after trimming).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Only runs on this environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment_id: Option<i32>,
    /// Page number, from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 1000000))]
    pub page: Option<i64>,
    /// Runs per page, 50 unless given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 500))]
    pub per_page: Option<i64>,
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
#[serde(rename_all = "snake_case")]
pub enum CaseOutcome {
    Passed,
    Failed,
    Skipped,
    Error,
}

impl CaseOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CaseOutcome::Passed => "passed",
            CaseOutcome::Failed => "failed",
            CaseOutcome::Skipped => "skipped",
            CaseOutcome::Error => "error",
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
            other => Err(format!("unknown outcome {other:?}")),
        }
    }
}

/// One test's result, from pytest's JUnit report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CaseResult {
    pub nodeid: String,
    pub outcome: CaseOutcome,
    pub duration_ms: i64,
    pub message: Option<String>,
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
        };
        assert_eq!(summary.done(), 7);
    }
}
