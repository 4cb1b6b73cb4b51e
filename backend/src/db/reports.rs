//! A finished run's JUnit XML report, as pytest wrote it.

use diesel::prelude::*;

use super::schema::run_reports;
use crate::error::ApiError;

/// The report of a run; 404 if the run does not exist or has none (yet).
pub fn junit_xml(conn: &mut PgConnection, run_id: i64) -> Result<String, ApiError> {
    let run = super::runs::find(conn, run_id)?;
    let report: Option<String> = run_reports::table
        .find(run_id)
        .select(run_reports::junit_xml)
        .first(conn)
        .optional()?;
    report.ok_or_else(|| {
        let why = if run.status().is_finished() {
            "pytest wrote no JUnit report for it"
        } else {
            "it is not finished yet"
        };
        ApiError::NotFound(format!("run {run_id} has no JUnit report: {why}"))
    })
}

/// Stores a report, inside the transaction that finishes its run.
pub fn store(conn: &mut PgConnection, run_id: i64, junit_xml: &str) -> QueryResult<usize> {
    diesel::insert_into(run_reports::table)
        .values((
            run_reports::run_id.eq(run_id),
            run_reports::junit_xml.eq(junit_xml),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
}
