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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlakyTest {
    pub nodeid: String,
    pub flips: i64,
    pub last_flip_at: Option<DateTime<Utc>>,
    pub run_ids: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FailingTest {
    pub nodeid: String,
    pub failures: i64,
    pub run_ids: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SlowTest {
    pub nodeid: String,
    pub median_ms: i64,
    pub run_ids: Vec<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Insights {
    pub flaky: Vec<FlakyTest>,
    pub failing: Vec<FailingTest>,
    pub slowest: Vec<SlowTest>,
}
