//! How tests behaved over time: one test's or file's history, and the
//! flaky, failing and slowest tests of a window.

use diesel::prelude::*;
use shared::{FailingTest, FlakyTest, HistoryItem, HistoryQuery, SlowTest};

use super::ServiceError;
use crate::db;
use crate::db::insights::HistoryOf;

pub fn history(
    conn: &mut PgConnection,
    query: &HistoryQuery,
) -> Result<Vec<HistoryItem>, ServiceError> {
    let of = history_of(query)?;
    let limit = query.limit().map_err(ServiceError::BadRequest)?;
    Ok(db::insights::history(conn, &of, limit)?)
}

/// What a history query asks for: exactly one of a test and a file.
pub fn history_of(query: &HistoryQuery) -> Result<HistoryOf, ServiceError> {
    match (&query.nodeid, &query.path) {
        (Some(nodeid), None) => Ok(HistoryOf::Test(nodeid.clone())),
        (None, Some(path)) => Ok(HistoryOf::File(path.trim_end_matches('/').to_string())),
        _ => Err(ServiceError::BadRequest(
            "give either nodeid (one test) or path (every test of a file)".into(),
        )),
    }
}

/// The flaky tests of a window, with their failures on suspect
/// environments (see `health`) told apart: one half of the insights,
/// environment health first.
pub fn flaky(conn: &mut PgConnection, days: i32) -> Result<Vec<FlakyTest>, ServiceError> {
    let suspects = super::health::suspects(conn, days)?;
    let mut flaky = db::insights::flaky(conn, days, &suspects.environments)?;
    for test in &mut flaky {
        if let Some((failures, environment_ids)) = suspects.failures.get(&test.nodeid) {
            test.failures_on_suspect_environments = *failures;
            test.suspect_environment_ids = environment_ids.clone();
        }
    }
    Ok(flaky)
}

/// The failing and the slowest tests of a window: the other half, which
/// needs nothing of the first.
pub fn failing_and_slowest(
    conn: &mut PgConnection,
    days: i32,
) -> Result<(Vec<FailingTest>, Vec<SlowTest>), ServiceError> {
    Ok(db::insights::failing_and_slowest(conn, days)?)
}
