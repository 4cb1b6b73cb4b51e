//! A finished run's JUnit XML report, as pytest wrote it.

use diesel::prelude::*;

use super::schema::run_reports;

/// The report of a run, if it has one.
pub fn junit_xml(conn: &mut PgConnection, run_id: i64) -> QueryResult<Option<String>> {
    run_reports::table
        .find(run_id)
        .select(run_reports::junit_xml)
        .first(conn)
        .optional()
}
