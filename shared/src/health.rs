//! Environment health: telling a broken environment from a broken test.

use serde::{Deserialize, Serialize};

/// A test that failed on an environment while it passed on at least one
/// other environment in the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnvironmentSpecificFailure {
    pub nodeid: String,
    /// Its failed and errored results on this environment.
    pub failed_here: i64,
    /// How many other environments it passed on at least once.
    pub passed_elsewhere: i64,
    /// How many other environments it failed or errored on at least once:
    /// 0 means it fails here only, which points at this environment.
    #[serde(default)]
    pub failed_elsewhere: i64,
}

/// How one environment did over a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnvironmentHealth {
    pub environment_id: i32,
    /// Runs finished here in the window as success, failed or error.
    pub runs: i64,
    /// Of those, the failed and errored ones.
    #[serde(default)]
    pub failed_runs: i64,
    /// failed_runs / runs (0 without runs).
    pub failure_rate: f64,
    /// Failed or errored runs in a row ending with the latest run here,
    /// counting runs in the window only.
    #[serde(default)]
    pub failure_streak: i64,
    /// Failed and errored test results here in the window.
    #[serde(default)]
    pub failed_results: i64,
    /// Of those, the results of tests that passed on another environment
    /// and failed on no other one.
    #[serde(default)]
    pub failures_only_here: i64,
    /// 0 to 1; 1 is healthy.
    pub score: f64,
    /// Its failures point at the environment rather than at the tests.
    pub suspect: bool,
    /// What the score and the suspicion rest on, in words.
    pub reasons: Vec<String>,
    /// The most frequent first, at most 20.
    pub env_specific_failures: Vec<EnvironmentSpecificFailure>,
}

/// Where a failed test of a run passed in the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PassedElsewhere {
    pub nodeid: String,
    /// How many environments other than the run's it passed on.
    pub passed_elsewhere: i64,
    /// Those environments, by id.
    pub environment_ids: Vec<i32>,
}

/// The thresholds of suspicion, shared so that the SPA explains them with
/// the same numbers.
pub mod rules {
    /// Failures only here must be at least this many, and more than half
    /// of the environment's failed results.
    pub const MIN_FAILURES_ONLY_HERE: i64 = 3;
    /// A failure streak this long, while another environment's latest run
    /// succeeded, makes an environment suspect.
    pub const SUSPECT_STREAK: i64 = 5;
    /// Most environment-specific failures listed per environment.
    pub const MAX_LISTED_FAILURES: usize = 20;
}
