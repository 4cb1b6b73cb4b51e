//! Test history and insights across runs.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::run::CaseOutcome;

/// One past result of a test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryItem {
    pub run_id: i64,
    pub environment_id: i32,
    pub nodeid: String,
    pub outcome: CaseOutcome,
    pub duration_ms: i64,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A test whose outcome changed between passed and failed (an error
/// counts as failed) from one run to the next on the same environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlakyTest {
    pub nodeid: String,
    /// Changes counted over all environments, both runs within the window.
    pub flips: i64,
    pub last_flip_at: Option<DateTime<Utc>>,
    /// The runs on either side of each change, newest first (at most 50).
    pub run_ids: Vec<i64>,
}

/// A test that failed or errored within the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FailingTest {
    pub nodeid: String,
    pub failures: i64,
    /// The runs it failed in, newest first (at most 50).
    pub run_ids: Vec<i64>,
}

/// A test by the median duration of its results other than skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SlowTest {
    pub nodeid: String,
    /// The lower median: one of the measured durations.
    pub median_ms: i64,
    /// The runs it ran in, newest first (at most 50).
    pub run_ids: Vec<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Insights {
    pub flaky: Vec<FlakyTest>,
    pub failing: Vec<FailingTest>,
    pub slowest: Vec<SlowTest>,
}
