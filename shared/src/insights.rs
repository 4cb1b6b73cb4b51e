//! Test history and insights across runs.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::input::{query_text, query_value};
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
    /// Changes counted over all environments but the suspect ones (see
    /// environment health), both runs within the window.
    pub flips: i64,
    pub last_flip_at: Option<DateTime<Utc>>,
    /// The runs on either side of each change, newest first (at most 50).
    pub run_ids: Vec<i64>,
    /// Changes on suspect environments, left out of `flips`: the
    /// environment explains them, not the test.
    #[serde(default)]
    pub flips_on_suspect_environments: i64,
    /// Failed and errored results of the test on suspect environments
    /// within the window.
    #[serde(default)]
    pub failures_on_suspect_environments: i64,
    /// The suspect environments it failed on, by id.
    #[serde(default)]
    pub suspect_environment_ids: Vec<i32>,
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

/// Query of `GET /api/tests/history`: one of `nodeid` and `path`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct HistoryQuery {
    /// One test's node id (give this or `path`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "query_text"
    )]
    pub nodeid: Option<String>,
    /// A test file: every test of it (give this or `nodeid`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "query_text"
    )]
    pub path: Option<String>,
    /// How many results, 50 unless given.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "query_value"
    )]
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 500))]
    pub limit: Option<i64>,
}

/// The most results a history answers with.
pub const MAX_HISTORY: i64 = 500;
/// The longest window of insights, in days.
pub const MAX_INSIGHT_DAYS: i32 = 366;

impl HistoryQuery {
    pub fn limit(&self) -> Result<i64, String> {
        match self.limit.unwrap_or(50) {
            limit if (1..=MAX_HISTORY).contains(&limit) => Ok(limit),
            limit => Err(format!(
                "limit must be from 1 to {MAX_HISTORY}, not {limit}"
            )),
        }
    }
}

/// Query of `GET /api/insights`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct InsightsQuery {
    /// The window, 7 days unless given.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "query_value"
    )]
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 366))]
    pub days: Option<i32>,
}

impl InsightsQuery {
    pub fn days(&self) -> Result<i32, String> {
        match self.days.unwrap_or(7) {
            days if (1..=MAX_INSIGHT_DAYS).contains(&days) => Ok(days),
            days => Err(format!(
                "days must be from 1 to {MAX_INSIGHT_DAYS}, not {days}"
            )),
        }
    }
}
